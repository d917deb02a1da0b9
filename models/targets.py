"""Prediction targets for each population row (student, presentation, week).

- ``not_completing``: the registration ended withdrawn or failed. Rows whose result is not yet
  known are left out.
- ``next_assessment_nonsubmission``: the next non-exam assessment due on or after the cut-off was
  not submitted by its due day (OU Analyse's task). Rows with no such assessment are left out. Of
  several due on the same day, the next is the heavier, then coursework before a quiz, then the lower
  assessment id, as the features describing it choose (``models.features.assessments``).

Neither target labels a presentation that had not ended when the data was taken and whose outcomes
are not all known (``models.calendar.unfinished``): its known outcomes are only its early leavers,
and its next assessments may not be due yet.
"""

from __future__ import annotations

from enum import StrEnum

import pandas as pd

from waymark.models.calendar import unfinished, without
from waymark.models.features.assessments import OWN_DUE, OWN_DUE_JOIN
from waymark.models.features.query import DUCKDB


class Target(StrEnum):
    """What a model predicts."""

    NOT_COMPLETING = "not_completing"
    NEXT_ASSESSMENT_NONSUBMISSION = "next_assessment_nonsubmission"


DEFAULT_NAMES = {
    Target.NOT_COMPLETING: "waymark-not-completing",
    Target.NEXT_ASSESSMENT_NONSUBMISSION: "waymark-next-assessment",
}


def not_completing(population: pd.DataFrame, registrations: pd.DataFrame) -> pd.DataFrame:
    """Label 1 when the registration's final result is withdrawn or fail."""
    return DUCKDB.query(
        """SELECT p.student_id, p.module_id, p.presentation_id, p.week,
                  CAST(r.final_result IN ('withdrawn', 'fail') AS INTEGER) AS label,
                  r.unregistration_day AS outcome_day
           FROM population p JOIN registrations r USING (student_id, module_id, presentation_id)
           WHERE r.final_result IS NOT NULL""",
        population=population,
        registrations=registrations,
    )


#: No student has a due day of their own (the contract's optional extensions table is absent).
NO_EXTENSIONS = pd.DataFrame(
    {
        "student_id": pd.Series(dtype="string"),
        "assessment_id": pd.Series(dtype="string"),
        "due_day": pd.Series(dtype="Int64"),
        "granted_day": pd.Series(dtype="Int64"),
    }
)


def next_assessment_nonsubmission(
    population: pd.DataFrame,
    assessments: pd.DataFrame,
    *,
    results: pd.DataFrame,
    extensions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Label 1 when the next non-exam assessment due from the cut-off on is not submitted by its due day.

    A student's own due day (``extensions``) counts as the features read it: the next assessment is
    chosen by the due day known at the cut-off, and whether it was submitted in time is judged by the
    student's own due day, granted when it may. A student on an extension who handed in after the
    assessment's day but before their own was labelled as not submitting.
    """
    return DUCKDB.query(
        f"""WITH nxt AS (
               SELECT p.student_id, p.module_id, p.presentation_id, p.week,
                      arg_min(a.assessment_id,
                              struct_pack(d := {OWN_DUE}, w := -a.weight,
                                          q := a.type = 'quiz', i := a.assessment_id)) AS assessment_id,
                      min({OWN_DUE}) AS due_day
               FROM population p JOIN assessments a USING (module_id, presentation_id)
               {OWN_DUE_JOIN}
               WHERE a.type <> 'exam' AND {OWN_DUE} >= p.cutoff
               GROUP BY p.student_id, p.module_id, p.presentation_id, p.week)
           SELECT n.student_id, n.module_id, n.presentation_id, n.week,
                  CAST(r.submitted_day IS NULL OR r.submitted_day > coalesce(y.due_day, n.due_day)
                       AS INTEGER) AS label,
                  coalesce(y.due_day, n.due_day) AS outcome_day
           FROM nxt n LEFT JOIN results r
             ON r.student_id = n.student_id AND r.assessment_id = n.assessment_id
           LEFT JOIN extensions y ON y.student_id = n.student_id AND y.assessment_id = n.assessment_id""",
        population=population,
        assessments=assessments,
        results=results,
        extensions=NO_EXTENSIONS if extensions is None else extensions,
    )


def labels(
    target: Target,
    population: pd.DataFrame,
    *,
    tables: dict[str, pd.DataFrame],
    running: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Labels for ``target``: keys, label (0/1) and outcome_day (withdrawal or due day).

    No row of an unfinished presentation is labelled: ``running`` names them (module_id,
    presentation_id), else ``models.calendar.unfinished`` finds them in ``tables``.
    """
    population = without(population, unfinished(tables) if running is None else running)
    if target is Target.NOT_COMPLETING:
        return not_completing(population, tables["registrations"])
    return next_assessment_nonsubmission(
        population,
        tables["assessments"],
        results=tables["assessment_results"],
        extensions=tables.get("extensions"),
    )
