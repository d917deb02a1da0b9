"""Data-quality report: what is in a data folder, what is missing, and what that means (CoP §8).

Written for two readers: a data scientist deciding whether the data can train a model, and an
ethics reviewer asking whom the gaps affect. Every figure is an aggregate; no student is named.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from waymark.models.data.contract import DEFAULT_SOURCE_LABELS, OUTCOMES_PENDING_SHARE, TABLES
from waymark.models.data.dataset import presentation_name
from waymark.models.data.notice import USED_ACTIVITY, declared, register_usable_sources, source_use
from waymark.models.data.sqltext import ident

SHOWN_WEEKS = (1, 2, 4, 8, 12, 16, 20, 24, 30, 36)
QUIET_WEEKS_SHOWN = 10
# A presentation with (nearly) no activity in more than its first this many weeks is listed.
QUIET_START_WEEKS = 2
#: A week counts as quiet on a presentation when at most this share of its registered students have any
#: activity in it: the week a cohort's explanations read as a break, no activity for
#: ``explain.typical.NEARLY_ALL`` of it (a test holds the two together). Counted as a week with anyone
#: active, a Nigerian university's eight-month strike, through which a few students logged in each week,
#: came out in fragments per course ("weeks 8 to 12", "week 15", ...: 272 lines at one date).
QUIET_ACTIVE_SHARE = 0.05
# A registration without an outcome, on a presentation still running on the data date (the latest day
# the activity reaches, as ``models.calendar.data_date``), and on one that had ended by then.
NOT_YET_KNOWN = "not yet known (presentation running)"
NOT_RECORDED = "not recorded (presentation ended)"
# ... on one that had ended with more than OUTCOMES_PENDING_SHARE of its outcomes empty: not entered yet.
NOT_ENTERED = f"not entered yet (presentation ended, over {OUTCOMES_PENDING_SHARE:.0%} of its outcomes empty)"
# Without any activity there is no data date: whether a presentation is running cannot be told.
NOT_DATED = "not known (no activity dates the data)"
# The data date as one row, column d: the latest date any presentation's activity reaches.
_REACH = (
    "SELECT max(CAST(p.start_date AS DATE) + CAST(a.day AS INTEGER)) AS d"
    " FROM t_activity a JOIN t_presentations p USING (module_id, presentation_id)"
)
# SQL over a registration ``r`` and a week ``w.week`` (days 7(w-1) to 7w-1): registered in that week, by its
# end, and not yet unregistered at its start.
_REGISTERED_IN_WEEK = (
    "coalesce(r.registration_day, 0) < 7 * w.week "
    "AND (r.unregistration_day IS NULL OR r.unregistration_day >= 7 * (w.week - 1))"
)
# SQL over a presentation ``p``: it had started by the data date (every presentation, without one).
# One not started yet can have no activity, so it is left out of the activity figures.
_STARTED = f"coalesce(CAST(p.start_date AS DATE) <= ({_REACH}), TRUE)"
# Columns whose missing values carry a meaning rather than a gap.
MEANINGFUL_MISSING = {
    ("registrations", "unregistration_day"): "still registered",
    ("registrations", "final_result"): "outcome not known yet, or not recorded (see Outcomes)",
    ("sources", "label"): "named by its neutral name",
    ("sources", "notice_given_on"): "a built-in source used without a date, any other not used",
    ("sources", "counts_as"): "read as its own kind",
}


@dataclass(frozen=True)
class QualityReport:
    """Aggregate data-quality figures and plain-language notes."""

    overview: dict[str, Any]
    missing_values: list[dict[str, Any]]
    no_activity: dict[str, Any]
    registration_timing: dict[str, Any]
    source_coverage_by_week: list[dict[str, Any]]
    sources_by_module: list[dict[str, Any]]
    consistency: dict[str, int]
    notes: list[str]
    # Each activity source: its rows and whether features use them (CoP §4: notice before a new source).
    source_use: list[dict[str, Any]] = field(default_factory=list)
    # Whole weeks in which at most QUIET_ACTIVE_SHARE of a presentation's students had activity from any
    # source, after its first active week (up to the data date): a break in the calendar, or days an
    # extract left out.
    quiet_weeks: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return asdict(self)

    def to_json(self) -> str:
        """JSON text."""
        return json.dumps(self.to_dict(), indent=2, default=str)

    def to_text(self) -> str:
        """Plain-text report."""
        o = self.overview
        lines = [
            "Data quality",
            f"  {o['registrations']:,} registrations of {o['students']:,} students on "
            f"{o['presentations']} presentations; {o['activity_rows']:,} activity rows",
            "  Outcomes: " + ", ".join(f"{k} {v:,}" for k, v in o["final_results"].items()),
            "",
            "Missing values",
        ]
        shown = [m for m in self.missing_values if m["missing"]]
        lines += [
            f"  {m['table']}.{m['column']}: {m['missing']:,} ({m['percent']:.1f}%)"
            + (f" = {m['meaning']}" if m["meaning"] else "")
            for m in shown
        ] or ["  none"]
        na = self.no_activity
        lines += [
            "",
            f"Registrations with no activity records: {na['registrations']:,} ({na['percent']:.1f}%)",
        ]
        rt = self.registration_timing
        lines += [
            f"Late registrations (after day 0): {rt['late']:,} ({rt['late_percent']:.1f}%); "
            f"registration day not recorded: {rt['missing']:,}"
        ]
        lines += ["", "Share of registrations still registered with activity from each source, by week"]
        lines += _coverage_lines(self.source_coverage_by_week)
        lines += ["", "Sources recorded per module (share of its registrations with any record)"]
        for row in self.sources_by_module:
            shares = ", ".join(f"{s} {v:.0%}" for s, v in row["sources"].items()) or "no source recorded"
            lines.append(f"  {row['module_id']}: {shares}")
        lines += ["", "Activity sources and their use for features"]
        lines += [f"  {u['source']}: {u['rows']:,} rows; {u['status']}" for u in self.source_use] or [
            "  none"
        ]
        lines += [
            "",
            f"Weeks in which {QUIET_ACTIVE_SHARE:.0%} or fewer of a presentation's students had activity "
            "from any source (after the first active week)",
        ]
        lines += [_quiet_line(q) for q in self.quiet_weeks[:QUIET_WEEKS_SHOWN]] or ["  none"]
        if len(self.quiet_weeks) > QUIET_WEEKS_SHOWN:
            lines.append(f"  ... and {len(self.quiet_weeks) - QUIET_WEEKS_SHOWN:,} more (all in --json)")
        lines += ["", "Consistency"]
        lines += [f"  {k.replace('_', ' ')}: {v:,}" for k, v in self.consistency.items()]
        lines += ["", "What the gaps mean for indicators"]
        lines += [f"  - {n}" for n in self.notes]
        return "\n".join(lines)


def _quiet_line(q: dict[str, Any]) -> str:
    first, last = q["first_week"], q["last_week"]
    weeks = f"week {first}" if first == last else f"weeks {first} to {last}"
    end = ", up to the data date" if q["to_data_end"] else ", up to its end" if q.get("to_its_end") else ""
    end = ", from its start" if q.get("from_start") else end
    most = q.get("most_active", 0)
    some = f"; at most {most:,} student{'' if most == 1 else 's'} active in a week" if most else ""
    return (
        f"  {q['module_id']} {q['presentation_id']}: {weeks} (days {q['first_day']} to {q['last_day']}){end}"
        f"{some}"
    )


def _coverage_lines(rows: list[dict[str, Any]]) -> list[str]:
    sources = sorted({r["source"] for r in rows})
    weeks = [w for w in SHOWN_WEEKS if any(r["week"] == w for r in rows)]
    table = {(r["source"], r["week"]): r["share"] for r in rows}
    lines = ["  " + "week".ljust(16) + "".join(f"{w:>6}" for w in weeks)]
    for s in sources:
        cells = "".join(f"{table.get((s, w), 0.0):>6.0%}" for w in weeks)
        lines.append("  " + s.ljust(16) + cells)
    return lines


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _has(con: duckdb.DuckDBPyConnection, view: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [view]).fetchone()[0])  # type: ignore[index]


def quality_report(con: duckdb.DuckDBPyConnection) -> QualityReport:
    """Build the report from the typed views of a validated folder (see ``validate_folder``).

    Parameters
    ----------
    con
        The connection ``validate_folder`` registered its ``t_<table>`` views on.

    Returns
    -------
    QualityReport
        Aggregates and notes.
    """
    overview = _overview(con)
    missing = _missing_values(con)
    no_act = _no_activity(con)
    timing = _timing(con, overview["registrations"])
    coverage = _coverage(con)
    by_module = _sources_by_module(con)
    consistency = _consistency(con)
    quiet = _quiet_weeks(con)
    notes = _marked_work_notes(overview) + _notes(
        missing,
        no_act,
        timing=timing,
        by_module=by_module,
        consistency=consistency,
        names=_names(con),
        registrations=overview["registrations"],
    )
    notes += _quiet_notes(quiet) + _outcome_notes(overview) + _mark_direction_notes(con)
    notes += _leavers_activity_notes(con) + _past_the_end_notes(con) + _programme_quiet_notes(con)
    notes = notes or ["No gaps large enough to change how indicators should be read."]
    return QualityReport(
        overview=overview,
        missing_values=missing,
        no_activity=no_act,
        registration_timing=timing,
        source_coverage_by_week=coverage,
        sources_by_module=by_module,
        consistency=consistency,
        notes=notes,
        source_use=[
            {"source": u.source, "rows": u.rows, "used_rows": u.used_rows, "status": u.status}
            for u in source_use(con)
        ],
        quiet_weeks=quiet,
    )


#: A programme's students on a presentation count as away in a week when at most this share of them has
#: activity while at least ``OTHERS_ACTIVE`` of the presentation's other students has; stretches of at
#: least ``AWAY_WEEKS`` such weeks, of programmes of at least ``AWAY_MIN_STUDENTS``, are noted.
AWAY_ACTIVE = 0.05
OTHERS_ACTIVE = 0.5
AWAY_WEEKS = 2
AWAY_MIN_STUDENTS = 5
AWAY_SHOWN = 5


def _programme_quiet_notes(con: duckdb.DuckDBPyConnection) -> list[str]:
    """A note naming weeks a programme's students on a presentation were away while the others worked.

    Placements staggered by programme inside one presentation, say.

    Explanations compare a student with the whole presentation: a nursing school's psychiatric and
    midwifery students, on placement for six weeks while the general-nursing students carried on, read
    "about 11% of your own earlier weekly rate, when students on this module were typically at about 87%
    of theirs", and nothing in the report said a programme had been away.
    """
    if "programme_id" not in {str(r[0]) for r in con.execute("DESCRIBE t_students").fetchall()}:
        return []  # an optional column (OULAD's students have none)
    register_usable_sources(con)
    rows = con.execute(f"""
        WITH reg AS (SELECT r.student_id, r.module_id, r.presentation_id, s.programme_id
                     FROM t_registrations r JOIN t_students s USING (student_id)
                     WHERE s.programme_id IS NOT NULL),
        sizes AS (SELECT module_id, presentation_id, programme_id, count(*) AS n FROM reg GROUP BY ALL),
        whole AS (SELECT module_id, presentation_id, count(*) AS n FROM reg GROUP BY ALL),
        act AS (SELECT DISTINCT t_activity.student_id, t_activity.module_id, t_activity.presentation_id,
                       CAST(floor(t_activity.day / 7) AS BIGINT) + 1 AS week
                FROM t_activity JOIN t_presentations pr USING (module_id, presentation_id)
                WHERE t_activity.day >= 0 AND t_activity.day < pr.length_days AND {USED_ACTIVITY}),
        weekly AS (SELECT reg.module_id, reg.presentation_id, reg.programme_id, act.week, count(*) AS active
                   FROM act JOIN reg USING (student_id, module_id, presentation_id) GROUP BY ALL),
        totals AS (SELECT module_id, presentation_id, week, sum(active) AS active FROM weekly GROUP BY ALL),
        away AS (SELECT s.module_id, s.presentation_id, s.programme_id, s.n, t.week
                 FROM sizes s JOIN whole w USING (module_id, presentation_id)
                 JOIN totals t USING (module_id, presentation_id)
                 LEFT JOIN weekly k ON k.module_id = s.module_id AND k.presentation_id = s.presentation_id
                      AND k.programme_id = s.programme_id AND k.week = t.week
                 WHERE s.n >= {AWAY_MIN_STUDENTS} AND s.n < w.n
                   AND coalesce(k.active, 0) <= {AWAY_ACTIVE} * s.n
                   AND t.active - coalesce(k.active, 0) >= {OTHERS_ACTIVE} * (w.n - s.n)),
        runs AS (SELECT *, week - row_number() OVER (
                     PARTITION BY module_id, presentation_id, programme_id ORDER BY week) AS run FROM away)
        SELECT module_id, presentation_id, programme_id, any_value(n), min(week), max(week)
        FROM runs GROUP BY module_id, presentation_id, programme_id, run
        HAVING count(*) >= {AWAY_WEEKS} ORDER BY 1, 2, 5, 3""").fetchall()
    if not rows:
        return []
    named = [
        f"{presentation_name(str(m), str(p))}, programme {g} ({int(n)} students): weeks {int(a)} to {int(b)}"
        for m, p, g, n, a, b in rows[:AWAY_SHOWN]
    ]
    more = f", and {len(rows) - AWAY_SHOWN} more" if len(rows) > AWAY_SHOWN else ""
    return [
        "The students of a programme on a presentation had nearly no activity for whole weeks while the "
        f"others worked (placements, say): {'; '.join(named)}{more}. Explanations compare a student with "
        "the whole presentation, so such weeks read as each of those students' own drop; see "
        'docs/bring-your-own-data.md, "Placement blocks inside one presentation".'
    ]


def _overview(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    results = con.execute(f"""
        WITH reach AS ({_REACH}),
        shares AS (
            SELECT module_id, presentation_id, avg(CAST(final_result IS NULL AS DOUBLE)) AS pending
            FROM t_registrations GROUP BY ALL)
        SELECT CASE WHEN r.final_result IS NOT NULL THEN r.final_result
                    WHEN (SELECT d FROM reach) IS NULL THEN '{NOT_DATED}'
                    WHEN CAST(p.start_date AS DATE) + CAST(p.length_days AS INTEGER) - 1
                         > (SELECT d FROM reach)
                    THEN '{NOT_YET_KNOWN}'
                    WHEN s.pending > {OUTCOMES_PENDING_SHARE} THEN '{NOT_ENTERED}'
                    ELSE '{NOT_RECORDED}' END, count(*)
        FROM t_registrations r LEFT JOIN t_presentations p USING (module_id, presentation_id)
        LEFT JOIN shares s USING (module_id, presentation_id)
        GROUP BY 1 ORDER BY 2 DESC, 1""").fetchall()
    return {
        "presentations": _scalar(con, "SELECT count(*) FROM t_presentations"),
        "students": _scalar(con, "SELECT count(*) FROM t_students"),
        "registrations": _scalar(con, "SELECT count(*) FROM t_registrations"),
        "activity_rows": _scalar(con, "SELECT count(*) FROM t_activity"),
        "assessments": _scalar(con, "SELECT count(*) FROM t_assessments"),
        "assessment_results": _scalar(con, "SELECT count(*) FROM t_assessment_results"),
        "final_results": {str(k): int(v) for k, v in results},
    }


def _missing_values(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    out = []
    for table in TABLES.values():
        if not table.feature_safe or not _has(con, f"t_{table.name}"):
            continue
        present = {r[0] for r in con.execute(f"DESCRIBE {ident('t_' + table.name)}").fetchall()}
        cols = [c.name for c in table.columns if c.nullable and c.name in present]
        if not cols:
            continue
        counts = ", ".join(f"count(*) - count({ident(c)})" for c in cols)
        row = con.execute(f"SELECT count(*), {counts} FROM {ident('t_' + table.name)}").fetchone()
        total = int(row[0]) if row else 0
        for c, n in zip(cols, row[1:] if row else (), strict=True):
            out.append(
                {
                    "table": table.name,
                    "column": c,
                    "missing": int(n),
                    "percent": 100.0 * int(n) / total if total else 0.0,
                    "meaning": MEANINGFUL_MISSING.get((table.name, c)),
                }
            )
    return out


def _no_activity(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    by_pres = con.execute(
        "SELECT module_id, presentation_id, count(*) FILTER (WHERE a.student_id IS NULL), "
        "count(*) FROM t_registrations r LEFT JOIN (SELECT DISTINCT student_id, module_id, "
        "presentation_id FROM t_activity) a USING (student_id, module_id, presentation_id) "
        f"JOIN t_presentations p USING (module_id, presentation_id) WHERE {_STARTED} "
        "GROUP BY ALL ORDER BY 1, 2"
    ).fetchall()
    n, started = sum(int(r[2]) for r in by_pres), sum(int(r[3]) for r in by_pres)
    return {
        "registrations": n,
        "percent": 100.0 * n / started if started else 0.0,  # of the registrations that could have any
        "by_presentation": [
            {
                "module_id": m,
                "presentation_id": p,
                "registrations": int(k),
                "percent": 100.0 * int(k) / int(t) if t else 0.0,
            }
            for m, p, k, t in by_pres
        ],
    }


def _timing(con: duckdb.DuckDBPyConnection, registrations: int) -> dict[str, Any]:
    late = _scalar(con, "SELECT count(*) FROM t_registrations WHERE registration_day > 0")
    missing = _scalar(con, "SELECT count(*) FROM t_registrations WHERE registration_day IS NULL")
    return {
        "late": late,
        "late_percent": 100.0 * late / registrations if registrations else 0.0,
        "missing": missing,
    }


def _coverage(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    rows = con.execute(f"""
        WITH reach AS ({_REACH}),
        pop AS (
            SELECT r.student_id, r.module_id, r.presentation_id, w.week
            FROM t_registrations r JOIN t_presentations p USING (module_id, presentation_id)
            CROSS JOIN range(1, 60) AS w(week)
            WHERE 7 * (w.week - 1) < p.length_days
              AND coalesce(CAST(p.start_date AS DATE) + CAST(7 * (w.week - 1) AS INTEGER)
                           <= (SELECT d FROM reach), TRUE)
              AND {_REGISTERED_IN_WEEK}),
        sizes AS (SELECT week, count(*) AS n FROM pop GROUP BY week),
        act AS (SELECT DISTINCT student_id, module_id, presentation_id, source,
                       CAST(floor(day / 7) AS BIGINT) + 1 AS week
                FROM t_activity WHERE day >= 0 AND count > 0)
        SELECT a.source, a.week, count(*) AS active, any_value(s.n) AS n
        FROM act a JOIN pop USING (student_id, module_id, presentation_id, week)
        JOIN sizes s ON s.week = a.week GROUP BY ALL ORDER BY 1, 2""").fetchall()
    return [
        {"source": s, "week": int(w), "active": int(a), "population": int(n), "share": int(a) / int(n)}
        for s, w, a, n in rows
    ]


def _quiet_weeks(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Stretches of whole weeks (days 7(w-1) to 7w-1) in which nearly nobody on a presentation was active.

    A week is quiet when at most ``QUIET_ACTIVE_SHARE`` of the students registered on the presentation
    that week have any activity in it, as explanations read a break; ``most_active`` is the most of
    them active in any week of a stretch. Only students registered that week count, as in the weekly
    coverage (a withdrawn student still logging in had hidden a strike). Activity counts as features
    read it: from sources that may be used (``notice``), within the presentation's days, a count
    above 0.

    Listed: quiet weeks from a presentation's first week with anyone active to its last, and after
    that up to the data date (the latest day any presentation's activity reaches,
    ``models.calendar.data_date``) or its own end, whichever is first; a presentation whose every
    week is quiet (a source few students use) is listed whole, and a slow start as quiet weeks. The
    weeks before its first week with anyone active, when that is later than week
    ``QUIET_START_WEEKS``, are ``from_start``: nobody at all, as a start date the official
    calendar's rather than the day teaching began reads, or an extract that begins late. A stretch
    after the last week above the share (any stretch, where no week is above it) that runs to the
    data date, on a presentation still running then, has ``to_data_end`` set: scored now, nearly
    nobody on it would show recent activity. One up to the end of a presentation that had ended has
    ``to_its_end`` set: an exam period reads so, or an extract that stopped early, and trained on,
    its last weeks read as nearly everyone inactive.
    """
    register_usable_sources(con)
    rows = con.execute(f"""
        WITH registered AS (SELECT r.student_id, r.module_id, r.presentation_id, w.week
                            FROM t_registrations r JOIN t_presentations p USING (module_id, presentation_id)
                            JOIN range(1, 1000) AS w(week) ON 7 * (w.week - 1) < p.length_days
                            WHERE {_REGISTERED_IN_WEEK}),
        sizes AS (SELECT module_id, presentation_id, week, count(*) AS n FROM registered GROUP BY ALL),
        acted AS (SELECT DISTINCT t_activity.student_id, t_activity.module_id, t_activity.presentation_id,
                         CAST(floor(t_activity.day / 7) AS BIGINT) + 1 AS week
                  FROM t_activity JOIN t_presentations pr USING (module_id, presentation_id)
                  WHERE t_activity.day >= 0 AND t_activity.day < pr.length_days AND t_activity.count > 0
                    AND {USED_ACTIVITY}),
        weekly AS (SELECT a.module_id, a.presentation_id, a.week, count(*) AS students, any_value(z.n) AS n
                   FROM acted a JOIN registered USING (student_id, module_id, presentation_id, week)
                   JOIN sizes z USING (module_id, presentation_id, week) GROUP BY ALL),
        busy AS (SELECT * FROM weekly WHERE students > {QUIET_ACTIVE_SHARE} * n),
        reach AS ({_REACH}),
        span AS (SELECT w.module_id, w.presentation_id, min(w.week) AS lo, max(w.week) AS hi,
                        max(b.week) AS busy_hi
                 FROM weekly w LEFT JOIN busy b USING (module_id, presentation_id, week) GROUP BY ALL),
        known AS (SELECT s.*, least(date_diff('day', CAST(p.start_date AS DATE), (SELECT d FROM reach)),
                                    CAST(p.length_days AS INTEGER) - 1) AS last_day,
                         date_diff('day', CAST(p.start_date AS DATE), (SELECT d FROM reach))
                             < CAST(p.length_days AS INTEGER) - 1 AS running
                  FROM span s JOIN t_presentations p USING (module_id, presentation_id)),
        gaps AS (SELECT k.module_id, k.presentation_id, w.week, w.week > coalesce(k.busy_hi, 0) AS to_end,
                        k.running, w.week < k.lo AS from_start
                 FROM known k JOIN range(1, 1000) AS w(week)
                      ON (w.week >= k.lo AND (w.week < k.hi OR 7 * w.week - 1 <= k.last_day))
                      OR (k.lo - 1 > {QUIET_START_WEEKS} AND w.week < k.lo)
                 ANTI JOIN busy a ON a.module_id = k.module_id
                      AND a.presentation_id = k.presentation_id AND a.week = w.week),
        runs AS (SELECT g.*, coalesce(k.students, 0) AS students, g.week - row_number() OVER (
                     PARTITION BY g.module_id, g.presentation_id ORDER BY g.week) AS run
                 FROM gaps g LEFT JOIN weekly k USING (module_id, presentation_id, week))
        SELECT module_id, presentation_id, min(week) AS first_week, max(week) AS last_week,
               bool_or(to_end) AS to_end, bool_or(running) AS running, bool_or(from_start) AS from_start,
               max(students) AS most_active
        FROM runs GROUP BY module_id, presentation_id, run ORDER BY 1, 2, 3""").fetchall()
    return [
        {
            "module_id": str(m),
            "presentation_id": str(p),
            "first_week": int(a),
            "last_week": int(b),
            "first_day": 7 * (int(a) - 1),
            "last_day": 7 * int(b) - 1,
            "to_data_end": bool(e and running),
            "to_its_end": bool(e and not running),
            "from_start": bool(start),
            "most_active": int(most),
        }
        for m, p, a, b, e, running, start, most in rows
    ]


def _outcome_notes(overview: dict[str, Any]) -> list[str]:
    undated = overview["final_results"].get(NOT_DATED, 0)
    if undated:
        return [
            f"{undated:,} {'registration has' if undated == 1 else 'registrations have'} no outcome, and "
            "the folder has no activity to date the data, so whether their presentations are still "
            "running or had ended cannot be told. Add the activity extract: it dates the data."
        ]
    notes = []
    unentered = overview["final_results"].get(NOT_ENTERED, 0)
    if unentered:
        notes.append(
            f"{unentered:,} {'registration' if unentered == 1 else 'registrations'} on presentations that "
            f"had ended by the data date {'has' if unentered == 1 else 'have'} no outcome, on presentations "
            f"where more than {OUTCOMES_PENDING_SHARE:.0%} have none: their outcomes are taken as not "
            "entered yet (an exam board to come, say), and those presentations give no training or "
            "evaluation labels until they are, since their known outcomes would be mostly early leavers."
        )
    unrecorded = overview["final_results"].get(NOT_RECORDED, 0)
    if unrecorded:
        notes.append(
            f"{unrecorded:,} {'registration' if unrecorded == 1 else 'registrations'} on presentations that "
            f"had ended by the data date {'has' if unrecorded == 1 else 'have'} no "
            "outcome: they are left out of training and evaluation, never guessed (deferrals, say). If the "
            "institution records an outcome for them, check how final_result was exported or mapped."
        )
    return notes


#: What a quiet week is, in the notes.
_FEW_ACTIVE = f"activity from {QUIET_ACTIVE_SHARE:.0%} or fewer of its students"


def _quiet_notes(quiet: list[dict[str, Any]]) -> list[str]:
    notes = []
    late = len({(q["module_id"], q["presentation_id"]) for q in quiet if q.get("from_start")})
    if late:
        notes.append(
            f"{late:,} {'presentation has' if late == 1 else 'presentations have'} no activity for any "
            f"student registered on it in more than its first {QUIET_START_WEEKS} weeks (listed above as "
            "'from its start'). A start_date that is the official calendar's rather than the day teaching "
            "began (a strike or a late start moves it) reads this way, and every week is then counted from "
            "the wrong day: give the presentation the day it began. An activity extract that starts late "
            "reads so too."
        )
    within = len(
        {
            (q["module_id"], q["presentation_id"])
            for q in quiet
            if not (q["to_data_end"] or q["to_its_end"] or q.get("from_start"))
        }
    )
    if within:
        notes.append(
            f"{within:,} {'presentation has' if within == 1 else 'presentations have'} whole "
            f"weeks with {_FEW_ACTIVE}, from any source "
            "(listed above). A break in the calendar reads this way (explanations say a break of two weeks "
            "or more once as the module's context, never as each student's recent activity), and so do "
            "days an extract left out. If any were left out, import them again before training or scoring."
        )
    ending = len({(q["module_id"], q["presentation_id"]) for q in quiet if q["to_data_end"]})
    if ending:
        notes.append(
            f"{ending:,} {'presentation has' if ending == 1 else 'presentations have'} had "
            f"{_FEW_ACTIVE}, from any source, for whole weeks up to the data date (listed above as "
            "'up to the data date'), while other presentations' activity goes on. A break still running "
            "reads this way, and so does an activity extract for that module that ends early: scored now, "
            "nearly every student on it would show no recent activity. Check the extract's last date before "
            "scoring."
        )
    ended = len({(q["module_id"], q["presentation_id"]) for q in quiet if q["to_its_end"]})
    if ended:
        notes.append(
            f"{ended:,} {'presentation' if ended == 1 else 'presentations'} that had ended by the data date "
            f"{'has' if ended == 1 else 'have'} {_FEW_ACTIVE}, from any source, in its "
            "last whole weeks (listed above as 'up to its end'). An exam period with nothing on the learning "
            "platform reads this way, and so does an activity extract that stopped early; trained on, "
            "those weeks read as nearly every student inactive. If the extract stopped early, import the "
            "rest."
        )
    return notes


def _names(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Each source's name as the folder gives it (the ``sources`` table's label, else the built-in name)."""
    return dict(DEFAULT_SOURCE_LABELS) | {s: d.label for s, d in declared(con).items() if d.label}


def _sources_by_module(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    rows = con.execute(f"""
        WITH regs AS (SELECT module_id, count(*) AS n FROM t_registrations
                      JOIN t_presentations p USING (module_id, presentation_id) WHERE {_STARTED} GROUP BY 1),
        seen AS (SELECT module_id, source, count(DISTINCT (student_id, presentation_id)) AS k
                 FROM t_activity JOIN t_presentations p USING (module_id, presentation_id)
                 WHERE {_STARTED} GROUP BY ALL)
        SELECT module_id, source, k, n FROM regs LEFT JOIN seen USING (module_id)
        ORDER BY 1, 2""").fetchall()
    # A module recording no source at all is listed too (an Italian university's seven were left out,
    # four of them with no marked work either, where every student got the same estimate).
    modules: dict[str, dict[str, float]] = {}
    for module, source, k, n in rows:
        shares = modules.setdefault(str(module), {})
        if source is not None:
            shares[str(source)] = int(k) / int(n)
    assessed = {str(m) for (m,) in con.execute("SELECT DISTINCT module_id FROM t_assessments").fetchall()}
    return [{"module_id": m, "sources": s, "assessed": m in assessed} for m, s in modules.items()]


def _consistency(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    checks = {
        "withdrawn_without_unregistration_day": (
            "SELECT count(*) FROM t_registrations "
            "WHERE final_result = 'withdrawn' AND unregistration_day IS NULL"
        ),
        "unregistered_but_result_not_withdrawn": (
            "SELECT count(*) FROM t_registrations WHERE unregistration_day IS NOT NULL "
            "AND final_result IS NOT NULL AND final_result <> 'withdrawn'"
        ),
        "unregistration_after_presentation_end": (
            "SELECT count(*) FROM t_registrations r JOIN t_presentations p "
            "USING (module_id, presentation_id) WHERE r.unregistration_day >= p.length_days"
        ),
        # A student active well before registering is more often two calendars than keenness: day
        # numbers counted from different start dates in two exports (a week's grace for pre-reading).
        "activity_over_a_week_before_registration": (
            "SELECT count(*) FROM t_activity a JOIN t_registrations r "
            "USING (student_id, module_id, presentation_id) WHERE a.day < r.registration_day - 7"
        ),
        # A day still to come, or days counted from another start: until that day the student is
        # scored as still registered (a live run leaves out only those gone by the data date).
        "unregistration_after_data_date": (
            "SELECT count(*) FROM t_registrations r "
            "JOIN t_presentations p USING (module_id, presentation_id) "
            f"WHERE CAST(p.start_date AS DATE) + CAST(r.unregistration_day AS INTEGER) > ({_REACH})"
        ),
        # Activity after a student left is read by no weekly population (they are in none after it), so
        # it is harmless to features but names a cause: a course-wide source joined on the person alone,
        # or an unregistration day mapped from something else (a week's grace, as before registering).
        "activity_over_a_week_after_unregistration": (
            "SELECT count(*) FROM t_activity a JOIN t_registrations r "
            "USING (student_id, module_id, presentation_id) WHERE a.day > r.unregistration_day + 7"
        ),
        "results_without_score": "SELECT count(*) FROM t_assessment_results WHERE score IS NULL",
        # Scores are percentages (0 to 100): an assessment whose every one of five or more marks is at
        # most 20 is more often points out of 20 (or 10) than a test nobody passed.
        "assessments_scored_at_most_20": (
            "SELECT count(*) FROM (SELECT assessment_id FROM t_assessment_results WHERE score IS NOT NULL "
            "GROUP BY ALL HAVING count(*) >= 5 AND max(score) <= 20)"
        ),
        "assessments_without_due_day": "SELECT count(*) FROM t_assessments WHERE due_day IS NULL",
        "submissions_after_presentation_end": (
            "SELECT count(*) FROM t_assessment_results r JOIN t_assessments a "
            "USING (assessment_id) JOIN t_presentations p USING (module_id, presentation_id) "
            "WHERE r.submitted_day >= p.length_days"
        ),
    }
    return {k: _scalar(con, sql) for k, sql in checks.items()}


#: Registrations with marks needed on each side before marks are compared across outcomes.
MARK_DIRECTION_MIN = 20


def _mark_direction_notes(con: duckdb.DuckDBPyConnection) -> list[str]:
    """A note when students who completed have lower marks on average than students who did not.

    In any institution's data those who pass have the higher marks, so the reverse says the scale runs
    the other way: a German university's grades (1,0 the best, 5,0 a fail) imported as numbers read a
    failed exam as a better mark than the best one, and following the marks-at-most-20 note by
    multiplying kept them reversed. Marks are averaged per registration (one student, one module).
    """
    rows = con.execute("""
        WITH marks AS (
            SELECT r.student_id, a.module_id, a.presentation_id, avg(r.score) AS mark
            FROM t_assessment_results r JOIN t_assessments a USING (assessment_id)
            WHERE r.score IS NOT NULL GROUP BY ALL)
        SELECT g.final_result IN ('pass', 'distinction') AS completed, count(*), avg(m.mark)
        FROM marks m JOIN t_registrations g USING (student_id, module_id, presentation_id)
        WHERE g.final_result IS NOT NULL GROUP BY 1""").fetchall()
    by = {bool(completed): (int(n), float(mean)) for completed, n, mean in rows}
    (done, done_mean), (not_done, not_mean) = by.get(True, (0, 0.0)), by.get(False, (0, 0.0))
    if min(done, not_done) < MARK_DIRECTION_MIN or done_mean >= not_mean:
        return []
    return [
        f"Marks run against outcomes: the registrations that completed have a mean mark of {done_mean:.1f}, "
        f"those that did not {not_mean:.1f} ({done:,} and {not_done:,} registrations with marks). Scores are "
        "percentages where higher is better; a scale where lower is better (German grades, 1,0 the best and "
        "5,0 a fail) read as numbers makes the best work the worst mark, in features and explanations "
        "alike. Map each grade to a percentage with a value table (docs/mapping.md), never by multiplying."
    ]


def _past_the_end_notes(con: duckdb.DuckDBPyConnection) -> list[str]:
    """A note on registrations still open, with activity after their presentation ended: not scored.

    An online college's students on an extension, or back from a break that moved their own end date,
    worked on after the intake's last day; the contract has one last day per presentation, so they
    had no indicator in their last weeks and nothing said so.
    """
    if not _has(con, "t_activity"):
        return []
    (n,) = con.execute(f"""
        WITH reach AS ({_REACH}),
        ended AS (SELECT module_id, presentation_id, length_days FROM t_presentations p
                  WHERE CAST(p.start_date AS DATE) + CAST(p.length_days AS INTEGER) <= (SELECT d FROM reach)),
        late AS (SELECT DISTINCT a.student_id, a.module_id, a.presentation_id
                 FROM t_activity a JOIN ended e USING (module_id, presentation_id)
                 WHERE a.day >= e.length_days AND a.count > 0)
        SELECT count(*) FROM late JOIN t_registrations r USING (student_id, module_id, presentation_id)
        WHERE r.final_result IS NULL AND r.unregistration_day IS NULL""").fetchall()[0]
    if not n:
        return []
    return [
        f"{_counted(int(n), 'registration', many='registrations')} of presentations that had ended by the "
        "data date have no outcome yet and activity after their presentation's last day: students on an "
        "extension, or back from a break that moved their own end, read so. A presentation is scored "
        "only while it runs, so they have no indicator now; their tutors follow them as before "
        "(docs/bring-your-own-data.md, Extensions and breaks within an enrolment)."
    ]


#: Registrations that left after this day are expected to have some activity from a source their
#: presentation's students use; fewer than this many such registrations are not judged.
LEFT_AFTER_DAY, LEAVERS_MIN = 14, 10


def _leavers_activity_notes(con: duckdb.DuckDBPyConnection) -> list[str]:
    """A note per source far rarer among registrations that left after two weeks than among the rest.

    A student who left in week five worked in the weeks before, as the others did. An export or a join
    that keeps only current students' activity (a Canvas enrolment list without the enrolments a
    records feed deleted on withdrawal) loses exactly theirs: a Korean university's withdrawn students
    had none, the model learned that leaving students were active to the end and then vanished, and
    week-4 AUC read 0.953 against 0.900 with their activity kept. Per source, over the presentations
    where it has activity at all.
    """
    if not _has(con, "t_activity") or not _has(con, "t_registrations"):
        return []
    register_usable_sources(con)
    rows = con.execute(f"""
        WITH act AS (SELECT DISTINCT student_id, module_id, presentation_id, source FROM t_activity
                     WHERE count > 0 AND {USED_ACTIVITY}),
        used AS (SELECT DISTINCT module_id, presentation_id, source FROM act),
        regs AS (SELECT student_id, module_id, presentation_id,
                        CASE WHEN unregistration_day > {LEFT_AFTER_DAY} THEN 'left'
                             WHEN unregistration_day IS NULL AND final_result IS DISTINCT FROM 'withdrawn'
                             THEN 'stayed' END AS kind
                 FROM t_registrations),
        pairs AS (SELECT r.kind, u.source, a.student_id IS NOT NULL AS has
                  FROM regs r JOIN used u USING (module_id, presentation_id)
                  LEFT JOIN act a ON a.student_id = r.student_id AND a.module_id = r.module_id
                       AND a.presentation_id = r.presentation_id AND a.source = u.source
                  WHERE r.kind IS NOT NULL)
        SELECT source, count(*) FILTER (WHERE kind = 'left'),
               avg(CAST(has AS INTEGER)) FILTER (WHERE kind = 'left'),
               avg(CAST(has AS INTEGER)) FILTER (WHERE kind = 'stayed')
        FROM pairs GROUP BY source ORDER BY source""").fetchall()
    return [
        f"Activity from {source} is rare among registrations that left after day {LEFT_AFTER_DAY}: "
        f"{left:.0%} of {n:,} have any, against {stayed:.0%} of those still registered. Students who "
        "left worked before they left, as the others did; an export or a join that keeps only current "
        "students' activity (an enrolment list without the enrolments withdrawal deleted) reads so, and "
        "the model then learns that leaving students were active to the end. Check that the activity "
        "export keeps withdrawn students' history."
        for source, n, left, stayed in rows
        if n >= LEAVERS_MIN and stayed is not None and stayed >= 0.5 and left < stayed / 2
    ]


def _counted(n: int, one: str, *, many: str) -> str:
    """'1 activity row is' or '1,234 activity rows are'."""
    return f"1 {one}" if n == 1 else f"{n:,} {many}"


def _marked_work_notes(overview: dict[str, Any]) -> list[str]:
    if overview["assessment_results"]:
        return []
    what = (
        "No assessments are recorded"
        if not overview["assessments"]
        else "No submissions or marks are recorded"
    )
    return [
        f"{what}: assessment features are empty for every student, indicators rest on activity and "
        "registration data alone, and explanations will not mention marked work."
    ]


def _notes(
    missing: list[dict[str, Any]],
    no_act: dict[str, Any],
    *,
    timing: dict[str, Any],
    by_module: list[dict[str, Any]],
    names: dict[str, str],
    consistency: dict[str, int],
    registrations: int,
) -> list[str]:
    notes = []
    if no_act["registrations"]:
        notes.append(
            f"{no_act['percent']:.1f}% of registrations have no activity records at all. On a module "
            "whose sources record other students' activity, each of them reads as having done nothing "
            "(it is said so, as their own): check they are not students an import left out, such as ids "
            "missing from a crosswalk the activity was joined through (the import names the rows its "
            "joins matched nothing for). Only a source a module records for nobody is read as not "
            "recorded rather than as no activity."
        )
    all_sources = sorted({s for m in by_module for s in m["sources"]})
    unrecorded = [m["module_id"] for m in by_module if not m["sources"]]
    if unrecorded:
        blank = [m["module_id"] for m in by_module if not m["sources"] and not m.get("assessed", True)]
        listed = ", ".join(unrecorded[:10]) + (
            f" and {len(unrecorded) - 10:,} more" if len(unrecorded) > 10 else ""
        )
        notes.append(
            f"{_counted(len(unrecorded), 'module records', many='modules record')} no activity from any "
            f"source ({listed}): their students' indicators rest on their registrations and marked work "
            "alone."
            + (
                f" {_counted(len(blank), 'of them has', many='of them have')} no assessment either "
                f"({', '.join(blank[:10])}): every student there gets the same estimate, students placed "
                "equal share a support priority, and their order among themselves means nothing."
                if blank
                else ""
            )
        )
    for m in by_module:
        if not m["sources"]:
            continue
        absent = [s for s in all_sources if s not in m["sources"]]
        if absent:
            named = [names.get(a) or f"'{a}' records" for a in absent]
            listed = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} or {named[-1]}"
            notes.append(
                f"Module {m['module_id']} records no data from {listed}: indicators for its students "
                "cannot use those sources, and comparisons with other modules must allow for it."
            )
    if timing["late"]:
        notes.append(
            f"{timing['late']:,} registrations started after day 0: early-week "
            "indicators see less of their activity, so registration timing is a feature "
            "and not a judgement."
        )
    for m in missing:
        if m["percent"] >= 1.0 and not m["meaning"]:
            notes.append(
                f"{m['table']}.{m['column']} is missing for {m['percent']:.1f}% of rows; "
                "a feature that reads it treats it as not recorded rather than guessing a value."
            )
    if early := consistency["activity_over_a_week_before_registration"]:
        rows = _counted(early, "activity row is", many="activity rows are")
        notes.append(
            f"{rows} dated more than a week before the student registered. Check that activity.day and "
            "registrations.registration_day count days from the same start_date, and that a mapping join "
            "did not give one person's activity to each of their registrations (a course-wide source "
            "joined on the person alone reaches every intake they were on): features read the activity as "
            "it is dated, and count it for the registration it names."
        )
    if late := consistency["activity_over_a_week_after_unregistration"]:
        rows = _counted(late, "activity row is", many="activity rows are")
        notes.append(
            f"{rows} dated more than a week after the student unregistered. No week's features read them "
            "(a student leaves every weekly population from the day they unregistered), but they point to "
            "a cause worth checking: a mapping join that gave a course-wide source's rows to an intake the "
            "person had left, or registrations.unregistration_day mapped from something other than the day "
            "the student left."
        )
    if ahead := consistency["unregistration_after_data_date"]:
        rows = _counted(ahead, "registration has", many="registrations have")
        notes.append(
            f"{rows} an unregistration day after the data date (the latest day any activity reaches). "
            "Until that day the student is scored as still registered. If the day is one planned ahead, "
            "that is right; if it counts days from another start than presentations.start_date, map it "
            "from the same start."
        )
    if consistency["withdrawn_without_unregistration_day"]:
        notes.append(
            "Some withdrawals have no unregistration day: they stay in every weekly "
            "population, which makes the outcome look later than it was."
        )
    if low := consistency["assessments_scored_at_most_20"]:
        which = _counted(low, "assessment has", many="assessments have")
        notes.append(
            f"{which} five or more marks, none above 20. Scores are percentages (0 to 100); points out of "
            "20 or 10 read as very low marks. If the export gives points, map the score with out_of "
            "(its points possible), or multiply (docs/mapping.md). If lower is better (a grade scale such as "
            "1,0 to 5,0), multiplying keeps it reversed: map each grade to a percentage with a value table."
        )
    if left := consistency["unregistered_but_result_not_withdrawn"]:
        share = f" ({left / registrations:.0%} of all registrations)" if registrations else ""
        rows = _counted(left, "registration has", many="registrations have")
        notes.append(
            f"{rows} an unregistration day and an outcome other than withdrawn{share}. A student leaves "
            "every weekly population from the day they unregistered: they are neither scored nor trained "
            "on after it. If registrations.unregistration_day was mapped from something else (a last "
            "day of attendance, say), map it from the day the student left the module, or leave it empty."
        )
    return notes
