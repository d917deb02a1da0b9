"""Assessment features: what was due, what was submitted, how it went, what comes next.

Submissions count once their submitted day is before the cut-off. Computer-marked quiz scores count
at once; other scores only from 14 days after submission (MARKING_DELAY_DAYS): a tutor's mark is
not known the day the work is handed in, and using it earlier would leak. The assessment calendar
itself is published before a presentation starts, so the next due day, its weight and type and how
many assessments remain are known at every cut-off. Whether the next one is already submitted, and the
share of the module cohort that has submitted it, count submissions before the cut-off only.
Ties are broken by value, so the result never depends on row order (or on the engine): the
latest mark of two on one day is the higher; of two assessments due on the next due day, the next is
the one of larger weight, then coursework before a quiz, then the lower assessment id: the same one
whose submission ``models.targets.next_assessment_nonsubmission`` labels.
"""

from __future__ import annotations

from typing import Any

from waymark.models.data.contract import final_exams_sql
from waymark.models.features.catalogue import MIN_COHORT
from waymark.models.features.query import Engine, query

MARKING_DELAY_DAYS = 14
# Which assessments are read. Every one due before the cut-off, exams included, but for each
# presentation's final exam (its last-due exam in its last quarter, ``FINAL_FROM``, and any exam with
# no due day): a mid-term exam is marked work like any other, and a college that types all its tests
# "exam" had no marks at all, while sitting the final or not is, in a module's last weeks, the
# outcome itself. Coursework or a
# quiz with no due day (self-paced work) counts once submitted, for its mark and the days since the
# last submission, never as due, missed, late or coming next. What comes next (days to it, its
# weight, how many remain) is the coursework and quizzes still to come, as the next-assessment target
# labels them (``models.targets``): an exam still to come is never read.
# Work due before the cut-off that nobody in its presentation has a submission of yet is not read as
# due: its results are not exported yet (a records system writing a row once the work is marked, three
# weeks on), and every student read as having missed it was untrue (a Scottish university's week 11:
# "1 of the 2 assessments due so far was submitted" in 185 of 625 indicators). Nobody's submission
# before the cut-off: known at the cut-off, so no leak.
# A final exam is due in its presentation's last quarter: a university that left its finals out of
# the assessments, as the outcome itself, had each module's Saturday semester test (weight 20, due
# in week 8 of 16) read as its final and never counted. And no later than ``FINAL_GRACE_DAYS`` after
# the presentation's last day: a Spanish university's July resit sitting, due months after the end,
# was read as the final, so the January final (the outcome for most) was read as marked work. Exams
# due after the final are not read either (where there is one).
# (``FINAL_FROM`` and ``FINAL_GRACE_DAYS`` are the contract's: an exam due up to 28 days after the
# presentation's last day can still be its final, a length that ends with teaching and the exams a week
# later; one later than that is a resit sitting.)
NEXT_DUE_CAP = 120
_FEATS_COLUMNS = (
    "student_id",
    "module_id",
    "presentation_id",
    "week",
    "asm_due",
    "asm_submitted",
    "asm_missed",
    "asm_submitted_share",
    "asm_late",
    "asm_mean_lateness",
    "asm_early_submissions",
    "asm_days_to_next",
    "asm_next_weight",
    "asm_next_quiz",
    "asm_next_submitted",
    "asm_remaining",
    "asm_weight_missed",
    "asm_days_since_submission",
    "asm_last_score",
    "asm_min_score",
)


#: A student's own due day (``extensions`` as ``x``) for population row ``p`` and assessment ``a``,
#: known from the week after it was granted: one granted after a missed deadline would otherwise hide,
#: in the earlier weeks of past years, a miss that was there to see (leakage). The features and the
#: next-assessment target (``models.targets``) read it alike.
OWN_DUE_JOIN = (
    "LEFT JOIN extensions x ON x.student_id = p.student_id AND x.assessment_id = a.assessment_id "
    "AND (x.granted_day IS NULL OR x.granted_day < p.cutoff)"
)
OWN_DUE = "coalesce(x.due_day, a.due_day)"


def assessment_features(
    assessments: Any,
    results: Any,
    *,
    population: Any,
    registrations: Any,
    extensions: Any | None = None,
    engine: Engine | None = None,
) -> Any:
    """Assessment features per population row (see ``catalogue.FEATURES``).

    Parameters
    ----------
    assessments, results
        The assessments and assessment_results tables.
    population
        Output of ``population``.
    extensions
        Students' own due days (the extensions table), or None when nobody has one. A student's own
        due day replaces the assessment's for them alone: a UK evening university's students on an
        extension read "1 of the 2 assessments due so far was submitted" of work not yet due for them.
    engine
        Where to run (``query.Engine``); DuckDB over pandas frames when None.

    Returns
    -------
    The engine's table
        Keys plus the asm_* features.
    """
    marked = f"(type = 'quiz' OR submitted_day + {MARKING_DELAY_DAYS} < cutoff) AND score IS NOT NULL"
    own, due, tables = "", "a.due_day", {}
    if extensions is not None:
        own, due, tables = OWN_DUE_JOIN, OWN_DUE, {"extensions": extensions}
    # The students compared: those with something due, and those with a mark (each within the cohort).
    by_due = "PARTITION BY module_id, presentation_id, week, asm_due = 0"
    by_score = "PARTITION BY module_id, presentation_id, week, score_mean IS NULL"
    return query(
        f"""
        WITH lengths AS (SELECT DISTINCT module_id, presentation_id, length_days FROM population),
        finals AS ({final_exams_sql("assessments", "lengths")}),
        a AS (SELECT s.assessment_id, s.module_id, s.presentation_id, s.due_day, s.weight, s.type
              FROM assessments s LEFT JOIN finals f
                ON f.module_id = s.module_id AND f.presentation_id = s.presentation_id
              WHERE s.type <> 'exam'
                 OR (s.due_day IS NOT NULL AND (f.final_day IS NULL OR s.due_day < f.final_day))),
        cutoffs AS (SELECT DISTINCT module_id, presentation_id, cutoff FROM population),
        recorded AS (
            SELECT c.module_id, c.presentation_id, c.cutoff, a.assessment_id
            FROM cutoffs c JOIN a ON a.module_id = c.module_id AND a.presentation_id = c.presentation_id
            JOIN results r ON r.assessment_id = a.assessment_id
            WHERE r.submitted_day < c.cutoff
            GROUP BY c.module_id, c.presentation_id, c.cutoff, a.assessment_id),
        pa AS (
            SELECT p.student_id, p.module_id, p.presentation_id, p.week, p.cutoff,
                   a.assessment_id, {due} AS due_day, a.weight, a.type,
                   CASE WHEN r.submitted_day < p.cutoff THEN r.submitted_day END AS submitted_day,
                   CASE WHEN r.submitted_day < p.cutoff THEN r.score END AS score
            FROM population p JOIN a ON a.module_id = p.module_id AND a.presentation_id = p.presentation_id
            JOIN registrations g ON g.student_id = p.student_id AND g.module_id = p.module_id
                                AND g.presentation_id = p.presentation_id
            LEFT JOIN results r ON r.student_id = p.student_id AND r.assessment_id = a.assessment_id
            {own}
            LEFT JOIN recorded k ON k.module_id = p.module_id AND k.presentation_id = p.presentation_id
                                AND k.cutoff = p.cutoff AND k.assessment_id = a.assessment_id
            WHERE (a.type <> 'exam' OR {due} < p.cutoff)
              AND ({due} IS NULL OR {due} >= p.cutoff OR k.assessment_id IS NOT NULL)
              AND (g.registration_day IS NULL OR {due} >= g.registration_day
                   OR r.submitted_day < p.cutoff)),
        agg AS (
            SELECT student_id, module_id, presentation_id, week,
                count(*) FILTER (WHERE due_day < cutoff) AS due,
                count(*) FILTER (WHERE due_day < cutoff AND submitted_day IS NOT NULL) AS submitted,
                count(*) FILTER (WHERE submitted_day > due_day) AS late,
                avg(submitted_day - due_day) AS lateness,
                count(*) FILTER (WHERE due_day >= cutoff AND submitted_day IS NOT NULL) AS early,
                sum(score * greatest(weight, 1)) FILTER (WHERE {marked})
                    / sum(greatest(weight, 1)) FILTER (WHERE {marked}) AS score_mean,
                sum(weight) FILTER (WHERE due_day < cutoff AND submitted_day IS NULL) AS weight_missed,
                max(submitted_day) AS last_submitted,
                arg_max(score, struct_pack(d := submitted_day, s := score)) FILTER (WHERE {marked})
                    AS last_score,
                min(score) FILTER (WHERE {marked}) AS min_score,
                min(due_day - cutoff) FILTER (WHERE due_day >= cutoff) AS to_next,
                arg_min(weight, struct_pack(d := due_day, w := -weight)) FILTER (WHERE due_day >= cutoff)
                    AS next_weight,
                arg_min(CAST(type = 'quiz' AS DOUBLE),
                        struct_pack(d := due_day, w := -weight, q := type = 'quiz'))
                    FILTER (WHERE due_day >= cutoff) AS next_quiz,
                arg_min(CAST(submitted_day IS NOT NULL AS DOUBLE),
                        struct_pack(d := due_day, w := -weight, q := type = 'quiz', i := assessment_id))
                    FILTER (WHERE due_day >= cutoff) AS next_submitted,
                count(*) FILTER (WHERE due_day >= cutoff) AS remaining
            FROM pa GROUP BY student_id, module_id, presentation_id, week),
        feats AS (
            SELECT p.student_id, p.module_id, p.presentation_id, p.week,
                CAST(coalesce(g.due, 0) AS DOUBLE) AS asm_due,
                CAST(coalesce(g.submitted, 0) AS DOUBLE) AS asm_submitted,
                CAST(coalesce(g.due - g.submitted, 0) AS DOUBLE) AS asm_missed,
                CASE WHEN coalesce(g.due, 0) = 0 THEN 1.0 ELSE g.submitted / g.due END
                    AS asm_submitted_share,
                CAST(coalesce(g.late, 0) AS DOUBLE) AS asm_late,
                coalesce(g.lateness, 0.0) AS asm_mean_lateness,
                CAST(coalesce(g.early, 0) AS DOUBLE) AS asm_early_submissions,
                g.score_mean,
                CAST(least(coalesce(g.to_next, {NEXT_DUE_CAP}), {NEXT_DUE_CAP}) AS DOUBLE)
                    AS asm_days_to_next,
                coalesce(g.next_weight, 0.0) AS asm_next_weight,
                coalesce(g.next_quiz, 0.0) AS asm_next_quiz,
                coalesce(g.next_submitted, 0.0) AS asm_next_submitted,
                CAST(coalesce(g.remaining, 0) AS DOUBLE) AS asm_remaining,
                coalesce(g.weight_missed, 0.0) AS asm_weight_missed,
                CAST(least(p.cutoff - greatest(coalesce(g.last_submitted, 0), 0), {NEXT_DUE_CAP}) AS DOUBLE)
                    AS asm_days_since_submission,
                coalesce(g.last_score, 0.0) AS asm_last_score,
                coalesce(g.min_score, 0.0) AS asm_min_score
            FROM population p LEFT JOIN agg g USING (student_id, module_id, presentation_id, week))
        SELECT {", ".join(_FEATS_COLUMNS)},
            CASE WHEN asm_due = 0 OR count(*) OVER ({by_due}) < {MIN_COHORT} THEN 0.5
                 ELSE percent_rank() OVER ({by_due} ORDER BY asm_submitted_share) END AS asm_submitted_pct,
            coalesce(score_mean, 0.0) AS asm_score_mean,
            CASE WHEN score_mean IS NULL OR count(*) OVER ({by_score}) < {MIN_COHORT} THEN 0.5
                 ELSE percent_rank() OVER ({by_score} ORDER BY score_mean) END AS asm_score_pct,
            CAST(score_mean IS NOT NULL AS INTEGER) AS asm_has_score,
            avg(asm_next_submitted) OVER (PARTITION BY module_id, presentation_id, week)
                AS asm_cohort_next_submitted
        FROM feats""",
        engine,
        assessments=assessments,
        results=results,
        population=population,
        registrations=registrations,
        **tables,
    )
