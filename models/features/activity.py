"""Engagement features from daily activity counts, for every prediction week at once.

Activity is bucketed by week (days 7k..7k+6 are bucket k; everything before day -28 is one bucket),
laid on a dense registration x week grid, and summed with window functions. The row of bucket
W-1 then holds exactly what is known at the cut-off 7·W: nothing dated on or after it is read.
A population at one week (a scoring run) sums each registration's buckets before W directly
instead, which gives the same values (tested) for less work.
"""

from __future__ import annotations

from typing import Any

from waymark.models.data.sqltext import literal
from waymark.models.features.catalogue import CHANNELS, MIN_COHORT, SOURCES, VLE_TYPES
from waymark.models.features.query import Engine, query

FIRST_BUCKET = -5
#: The week (bucket) a registration's own weeks count from: the one it was registered in, or the first
#: (0) for a registration before the start or without a recorded day (which keeps every week).
FIRST_WEEK = "greatest(coalesce(CAST(floor(registration_day / 7) AS BIGINT), 0), 0)"
#: At week W, how many weeks before the last 14 days count towards the student's own earlier weekly
#: rate: buckets FIRST_WEEK .. W-3 (``f``: the registration's row of ``firsts``).
EARLIER_WEEKS = "(p.week - 2 - f.first_week)"
#: At week W, the weeks a registration has had: FIRST_WEEK .. W-1. A student who registered in week 5
#: has had 1 week at week 6, not 6, and is active in "1 of 1" if active then (``act_weeks_active_share``).
OWN_WEEKS = "(p.week - f.first_week)"
#: Where "days since the last activity" counts from for a student with none: the day they registered,
#: or 36 days before the start for one who registered earlier (or has no recorded day), as before.
#: A student who registered two days before the cut-off has been quiet two days, not the whole term.
REGISTERED_FROM = "greatest(coalesce(registration_day, -36), -36)"


def _channel_case() -> str:
    vle = " ".join(
        f"WHEN source = 'vle' AND activity_type IN ({', '.join(literal(t) for t in types)}) THEN '{ch}'"
        for ch, types in VLE_TYPES.items()
    )
    others = " ".join(f"WHEN source = '{s}' THEN '{s}'" for s in SOURCES if s != "vle")
    return f"CASE {vle} WHEN source = 'vle' THEN 'vle_content' {others} ELSE 'other' END"


def _log(expr: str) -> str:
    return f"ln(1 + {expr})"


def _z(column: str) -> str:
    """``column`` as a z-score within the module cohort at the same week (0 when all are equal).

    Rounded to 6 decimals: the cohort's mean and deviation are sums of floats in whatever order the
    engine's threads hand the rows over, so they differ in the 16th digit from run to run, and that
    was enough to change a tree's bins, and a model, between two runs with the same seed.
    """
    z = f"coalesce(({column} - avg({column}) OVER c) / nullif(stddev_pop({column}) OVER c, 0), 0.0)"
    return f"round({z}, 6)"


def _small(neutral: str, expr: str) -> str:
    """``expr``, or ``neutral`` in a cohort (window ``c``) of fewer than ``MIN_COHORT`` students."""
    return f"CASE WHEN count(*) OVER c < {MIN_COHORT} THEN {neutral} ELSE {expr} END"


def _weekly_sums(*, one_week: bool) -> str:
    """The ``run`` table: per registration and bucket b = W-1, what the features sum up to week W.

    Columns: the keys, ``b``, this week's and the three earlier weeks' counts (``c_all``, ``p1`` to
    ``p3``), active days this week and the one before (``d_all``, ``dp1``), running totals of counts,
    active days and pre-start counts (``cum_all``, ``cum_days``, ``cum_pre``), the latest active day
    (``last_seen``), weeks active since the start (``weeks_active``), and per channel its running total
    and its counts this week and the week before (``cum_c``, ``c_c``, ``p1_c``).
    """
    return _at_one_week() if one_week else _running_totals()


def _running_totals() -> str:
    """Running totals over a dense registration x bucket grid: every week's rows in one pass."""
    ch_dense = ", ".join(f"coalesce(c_{c}, 0) AS c_{c}" for c in CHANNELS)
    ch_run = ", ".join(f"sum(c_{c}) OVER w AS cum_{c}, lag(c_{c}, 1, 0) OVER v AS p1_{c}" for c in CHANNELS)
    return f"""
        regs AS (SELECT DISTINCT p.student_id, p.module_id, p.presentation_id, f.first_week
                 FROM population p
                 JOIN firsts f ON f.student_id = p.student_id AND f.module_id = p.module_id
                              AND f.presentation_id = p.presentation_id),
        grid AS (
            SELECT r.*, g.b FROM regs r
            CROSS JOIN (SELECT unnest(generate_series({FIRST_BUCKET}, (SELECT max(week) FROM population) - 1))
                        AS b) AS g),
        dense AS (
            SELECT grid.*, coalesce(c_all, 0) AS c_all, coalesce(d_all, 0) AS d_all, last_day,
                   coalesce(c_pre, 0) AS c_pre, {ch_dense}
            FROM grid LEFT JOIN wk USING (student_id, module_id, presentation_id, b)),
        run AS (
            SELECT *, sum(c_all) OVER w AS cum_all, sum(d_all) OVER w AS cum_days,
                   sum(c_pre) OVER w AS cum_pre, max(last_day) OVER w AS last_seen,
                   sum(CASE WHEN c_all > 0 AND b >= first_week THEN 1 ELSE 0 END) OVER w AS weeks_active,
                   lag(c_all, 1, 0) OVER v AS p1, lag(c_all, 2, 0) OVER v AS p2,
                   lag(c_all, 3, 0) OVER v AS p3, lag(d_all, 1, 0) OVER v AS dp1, {ch_run}
            FROM dense
            WINDOW w AS (PARTITION BY student_id, module_id, presentation_id ORDER BY b
                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
                   v AS (PARTITION BY student_id, module_id, presentation_id ORDER BY b))"""


def _at_one_week() -> str:
    """The same sums for a population at one week, as one aggregate of each registration's active weeks.

    A scoring run asks for one week: summing the weeks each registration was active (no grid, no
    window) gives the same numbers for less work. With many weeks, each registration's weeks would
    be read once per week, and the running totals are cheaper.
    """

    def back(column: str, weeks: int) -> str:
        return f"coalesce(sum(w.{column}) FILTER (WHERE w.b = p.week - {weeks}), 0)"

    ch_run = ", ".join(
        f"coalesce(sum(w.c_{c}), 0) AS cum_{c}, {back(f'c_{c}', 1)} AS c_{c}, {back(f'c_{c}', 2)} AS p1_{c}"
        for c in CHANNELS
    )
    return f"""
        run AS (
            SELECT p.student_id, p.module_id, p.presentation_id, p.week - 1 AS b,
                   coalesce(sum(w.c_all), 0) AS cum_all, coalesce(sum(w.d_all), 0) AS cum_days,
                   coalesce(sum(w.c_pre), 0) AS cum_pre, max(w.last_day) AS last_seen,
                   count(*) FILTER (WHERE w.c_all > 0 AND w.b >= f.first_week) AS weeks_active,
                   {back("c_all", 1)} AS c_all, {back("c_all", 2)} AS p1, {back("c_all", 3)} AS p2,
                   {back("c_all", 4)} AS p3, {back("d_all", 1)} AS d_all, {back("d_all", 2)} AS dp1,
                   {ch_run}
            FROM population p
            JOIN firsts f ON f.student_id = p.student_id AND f.module_id = p.module_id
                         AND f.presentation_id = p.presentation_id
            LEFT JOIN wk w ON w.student_id = p.student_id AND w.module_id = p.module_id
                          AND w.presentation_id = p.presentation_id AND w.b < p.week
            GROUP BY p.student_id, p.module_id, p.presentation_id, p.week, f.first_week)"""


def activity_features(
    activity: Any,
    population: Any,
    *,
    registrations: Any,
    engine: Engine | None = None,
    one_week: bool = False,
) -> Any:
    """Engagement features per population row (see ``catalogue.FEATURES``).

    A student's own earlier weekly rate (``act_earlier_weekly_rate``, and ``act_recent_vs_own``
    against it) is over their weeks before the last 14 days counted from the week they registered
    in (``FIRST_WEEK``): a late registrant missed none of the weeks before. Actions before that week
    still count in its total, as actions before the start do. The comparison is made only with at
    least one such week (``EARLIER_WEEKS``); before that the ratio is 1.

    Parameters
    ----------
    activity
        The activity table.
    population
        Output of ``population``.
    registrations
        The registrations table (their ``registration_day``).
    engine
        Where to run (``query.Engine``); DuckDB over pandas frames when None.
    one_week
        The population holds one prediction week (a scoring run): the same features, summed a
        cheaper way for that case (``_at_one_week``).

    Returns
    -------
    The engine's table
        Keys plus the act_*, ch_* and src_* features.
    """
    ch_sums = ", ".join(f"sum(count) FILTER (WHERE channel = '{c}') AS c_{c}" for c in CHANNELS)
    ch_out = ", ".join(
        f"{_log(f'r.cum_{c}')} AS ch_{c}_total, {_log(f'r.c_{c} + r.p1_{c}')} AS ch_{c}_last14"
        for c in CHANNELS
    )
    src_first = ", ".join(f"min(day) FILTER (WHERE source = '{s}') AS first_{s}" for s in SOURCES)
    src_out = ", ".join(
        f"CAST(coalesce(s.first_{s} < p.cutoff, false) AS INTEGER) AS src_{s}_recorded" for s in SOURCES
    )
    trend = "(-1.5 * ln(1 + r.p3) - 0.5 * ln(1 + r.p2) + 0.5 * ln(1 + r.p1) + 1.5 * ln(1 + r.c_all)) / 5"
    earlier = f"(r.cum_all - r.c_all - r.p1) / greatest({EARLIER_WEEKS}, 1)"
    return query(
        f"""
        WITH act AS (
            SELECT student_id, module_id, presentation_id, day, count, source,
                   greatest(CAST(floor(day / 7) AS BIGINT), {FIRST_BUCKET}) AS b,
                   {_channel_case()} AS channel
            FROM activity
            -- Nothing on or after the latest cut-off can reach any feature; dropping it early
            -- keeps scoring at week W from reading the rest of the presentation.
            WHERE day < (SELECT max(cutoff) FROM population)),
        firsts AS (SELECT student_id, module_id, presentation_id, {FIRST_WEEK} AS first_week,
                          {REGISTERED_FROM} AS registered_from
                   FROM registrations),
        wk AS (
            SELECT student_id, module_id, presentation_id, b, sum(count) AS c_all,
                   count(DISTINCT day) AS d_all, max(day) AS last_day,
                   sum(count) FILTER (WHERE day < 0) AS c_pre, {ch_sums}
            FROM act GROUP BY student_id, module_id, presentation_id, b),
        {_weekly_sums(one_week=one_week)},
        sources AS (SELECT module_id, presentation_id, {src_first}
                    FROM act GROUP BY module_id, presentation_id),
        feats AS (
            SELECT p.student_id, p.module_id, p.presentation_id, p.week,
                   {_log("r.cum_all")} AS act_total,
                   CAST(r.cum_days AS DOUBLE) AS act_active_days,
                   r.weeks_active / greatest({OWN_WEEKS}, 1) AS act_weeks_active_share,
                   {_log(earlier)} AS act_earlier_weekly_rate,
                   {_log("r.cum_pre")} AS act_pre_start,
                   {_log("r.c_all")} AS act_last7,
                   {_log("r.c_all + r.p1")} AS act_last14,
                   CAST(r.d_all + r.dp1 AS DOUBLE) AS act_active_days_last14,
                   CASE WHEN {EARLIER_WEEKS} >= 1 THEN ((r.c_all + r.p1) / 2 + 1) / ({earlier} + 1)
                        ELSE 1.0 END AS act_recent_vs_own,
                   {trend} AS act_trend_4w,
                   CAST(p.cutoff - coalesce(r.last_seen, least(f.registered_from, p.cutoff - 1)) AS DOUBLE)
                       AS act_days_since_last,
                   CAST(r.last_seen IS NOT NULL AS INTEGER) AS act_any,
                   {ch_out}, {src_out}
            FROM population p
            JOIN run r ON r.student_id = p.student_id AND r.module_id = p.module_id
                      AND r.presentation_id = p.presentation_id AND r.b = p.week - 1
            JOIN firsts f ON f.student_id = p.student_id AND f.module_id = p.module_id
                         AND f.presentation_id = p.presentation_id
            LEFT JOIN sources s ON s.module_id = p.module_id AND s.presentation_id = p.presentation_id)
        SELECT *,
               {_small("0.5", "percent_rank() OVER c1")} AS act_total_pct,
               {_small("0.5", "percent_rank() OVER c2")} AS act_last14_pct,
               {_small("0.5", "percent_rank() OVER c3")} AS act_active_days_pct,
               {_small("0.0", _z("act_total"))} AS act_total_z,
               {_small("0.0", _z("act_last14"))} AS act_last14_z,
               median(act_total) OVER c AS cohort_activity_median
        FROM feats
        WINDOW c1 AS (PARTITION BY module_id, presentation_id, week ORDER BY act_total),
               c2 AS (PARTITION BY module_id, presentation_id, week ORDER BY act_last14),
               c3 AS (PARTITION BY module_id, presentation_id, week ORDER BY act_active_days),
               c AS (PARTITION BY module_id, presentation_id, week)""",
        engine,
        activity=activity,
        population=population,
        registrations=registrations,
    )
