"""Registration timing, study history and calendar features."""

from __future__ import annotations

from typing import Any

from waymark.models.features.query import Engine, query


def registration_features(
    registrations: Any,
    students: Any,
    *,
    presentations: Any,
    population: Any,
    attempts: Any = None,
    engine: Engine | None = None,
) -> Any:
    """Registration, history and calendar features per population row.

    ``prior_attempts`` adds the attempts recorded before the data starts to the student's
    registrations on the same module in presentations that started earlier: both are known at
    the cut-off, and neither counts the attempt being predicted.

    Parameters
    ----------
    registrations, students, presentations
        Contract tables.
    population
        Output of ``population``.
    attempts
        Every registration of the whole folder as (student_id, module_id, start_date)
        (``models.data.attempts_of``), when ``registrations`` hold some presentations only: an
        earlier attempt counts whichever presentations were chosen. None: ``registrations`` are
        all there are.
    engine
        Where to run (``query.Engine``); DuckDB over pandas frames when None.

    Returns
    -------
    The engine's table
        Keys plus reg_*, prior_attempts, credits*, weeks_elapsed and progress.
    """
    given = {} if attempts is None else {"attempts": attempts}
    return query(
        f"""
        WITH starts AS (SELECT r.student_id, r.module_id, r.presentation_id, p.start_date
                        FROM registrations r JOIN presentations p USING (module_id, presentation_id)),
        earlier AS (
            SELECT a.student_id, a.module_id, a.presentation_id, count(b.student_id) AS n
            FROM starts a LEFT JOIN {"starts" if attempts is None else "attempts"} b
                 ON b.student_id = a.student_id
                 AND b.module_id = a.module_id AND b.start_date < a.start_date
            GROUP BY a.student_id, a.module_id, a.presentation_id),
        cohorts AS (
            SELECT c.module_id, c.presentation_id, c.cutoff,
                   count(*) FILTER (WHERE r.unregistration_day < c.cutoff) / count(*) AS withdrawn_share
            FROM (SELECT DISTINCT module_id, presentation_id, cutoff FROM population) c
            JOIN registrations r ON r.module_id = c.module_id AND r.presentation_id = c.presentation_id
                 AND coalesce(r.registration_day, -1) < c.cutoff
            GROUP BY c.module_id, c.presentation_id, c.cutoff)
        SELECT p.student_id, p.module_id, p.presentation_id, p.week,
               CAST(coalesce(r.registration_day, 0) AS DOUBLE) AS reg_day,
               CAST(coalesce(r.registration_day > 0, false) AS INTEGER) AS reg_late,
               CAST(r.registration_day IS NULL AS INTEGER) AS reg_day_missing,
               CAST(coalesce(s.num_prev_attempts, 0) + e.n AS DOUBLE) AS prior_attempts,
               CAST(coalesce(s.credits, 0) AS DOUBLE) AS credits,
               CAST(s.credits IS NULL AS INTEGER) AS credits_missing,
               CAST(p.week AS DOUBLE) AS weeks_elapsed,
               p.cutoff / p.length_days AS progress,
               k.withdrawn_share AS cohort_withdrawn_share
        FROM population p
        JOIN registrations r USING (student_id, module_id, presentation_id)
        JOIN earlier e USING (student_id, module_id, presentation_id)
        LEFT JOIN students s USING (student_id)
        JOIN cohorts k ON k.module_id = p.module_id AND k.presentation_id = p.presentation_id
             AND k.cutoff = p.cutoff""",
        engine,
        registrations=registrations,
        students=students,
        presentations=presentations,
        population=population,
        **given,
    )
