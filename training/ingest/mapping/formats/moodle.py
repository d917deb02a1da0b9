"""Moodle's downloads that the generic csv reader cannot use as they are.

- ``moodle_logs_report``: a course's Logs report (Reports > Logs > Download table data as CSV). It names
  the course only in the file name and writes times in the downloading user's language format.
- ``moodle_participants``: a course's participants download, used to turn the report's full names into
  ID numbers, since the report carries no user id.
- ``moodle_grading_worksheet``: an assignment's offline grading worksheet (Assignment > View all
  submissions > Download grading worksheet), which names its assignment only in the file name and
  writes dates as ``Monday, 9 March 2026, 2:05 PM``.

Every reader keeps the file's columns as text and adds a few derived ones, documented on each reader
and in docs/ready-mappings.md. Column names follow Moodle's English language pack.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from waymark.models.data.sqltext import ident, literal
from waymark.training.ingest.mapping.formats.export_errors import ExportFormatError, require_columns
from waymark.training.ingest.mapping.readers import register
from waymark.training.ingest.mapping.schema import InputSpec

LOGS_REPORT_COLUMNS = (
    "Time",
    "User full name",
    "Affected user",
    "Event context",
    "Component",
    "Event name",
    "Description",
    "Origin",
    "IP address",
)
# report/log/classes/table_log.php: downloads use strftimedatetimeshortaccurate (Moodle 4.x) or
# strftimedatetimeshort (earlier); lang/en/langconfig.php gives '%d/%m/%y, %H:%M:%S' and '%d/%m/%y, %H:%M'
LOGS_TIME_FORMATS = ("%d/%m/%y, %H:%M:%S", "%d/%m/%y, %H:%M")
# report/log: clean_filename('logs_' . course shortname . '_' . userdate(time(), backupnameformat))
_LOGS_FILE = re.compile(r"^logs_(?P<course>.+)_\d{8}-\d{4}$")
_PARTICIPANTS_FILE = re.compile(r"^participants_(?P<course>.+)$")
#: The participants' full name in the order the site's name display (``fullnamedisplay``) writes it.
FULL_NAME_ORDERS = {"first last": '"First name", "Last name"', "last first": '"Last name", "First name"'}
WORKSHEET_COLUMNS = ("Full name", "Status", "Grade", "Maximum grade", "Last modified (submission)")
# userdate() with strftimedaydatetime ('%A, %d %B %Y, %I:%M %p'); DuckDB reads unpadded day and hour too
WORKSHEET_TIME_FORMAT = "%A, %d %B %Y, %I:%M %p"
# mod/assign/feedback/offline: clean_filename('Grades-' . course . '-' . assignment . '-' . group- . cmid)
_WORKSHEET_FILE = re.compile(r"-(?P<cmid>\d+)$")


def _csv(con: duckdb.DuckDBPyConnection, path: Path, *, spec: InputSpec) -> duckdb.DuckDBPyRelation:
    options = "header = true, all_varchar = true"
    if spec.separator is not None:
        options += f", delim = {literal(spec.separator)}"
    return con.sql(f"SELECT * FROM read_csv({literal(path)}, {options})")


def _time_formats(spec: InputSpec, default: tuple[str, ...]) -> tuple[str, ...]:
    given = spec.options.get("time_format")
    return (str(given),) if given is not None else default


def _parsed(column: str, formats: tuple[str, ...], *, out: str = "%Y-%m-%dT%H:%M:%S") -> str:
    tries = ", ".join(f"try_strptime({ident(column)}, {literal(f)})" for f in formats)
    return f"strftime(coalesce({tries}), {literal(out)})"


def _refuse_unparsed(
    relation: duckdb.DuckDBPyRelation, path: Path, *, column: str, derived: str, formats: tuple[str, ...]
) -> None:
    unparsed = relation.filter(f"{ident(column)} IS NOT NULL AND {ident(derived)} IS NULL").project(
        ident(column)
    )
    rows = unparsed.fetchall()
    if rows:
        raise ExportFormatError(
            path,
            f"{len(rows)} value(s) of {column!r} are not times in the format {' or '.join(formats)}, "
            f"e.g. {rows[0][0]!r}; give the input's options.time_format (a strptime format) if the "
            "report was downloaded in another language",
        )


@register("moodle_logs_report")
def read_logs_report(
    con: duckdb.DuckDBPyConnection, path: Path, *, spec: InputSpec
) -> duckdb.DuckDBPyRelation:
    """A course's Logs report download.

    Adds ``course_shortname`` (from the file name Moodle gives the download,
    ``logs_<course short name>_<YYYYMMDD-HHMM>.csv``), ``time_local`` (``Time`` as ISO 8601, in the
    time zone of the user who downloaded it) and ``date_local`` (its date, ``YYYY-MM-DD``): map the day
    from ``date_local``, since a time without a zone must not be shifted again.
    """
    match = _LOGS_FILE.match(path.stem)
    if match is None:
        raise ExportFormatError(
            path,
            "a Logs report download is named logs_<course short name>_<YYYYMMDD-HHMM>.csv, and the course "
            "is read from that name; keep Moodle's name for the file",
        )
    raw = _csv(con, path, spec=spec)
    require_columns(path, raw.columns, needed=LOGS_REPORT_COLUMNS, export="a Moodle Logs report download")
    formats = _time_formats(spec, LOGS_TIME_FORMATS)
    relation = raw.project(
        f"*, {literal(match['course'])} AS course_shortname, {_parsed('Time', formats)} AS time_local, "
        f"{_parsed('Time', formats, out='%Y-%m-%d')} AS date_local"
    )
    _refuse_unparsed(relation, path, column="Time", derived="time_local", formats=formats)
    return relation


@register("moodle_participants")
def read_participants(
    con: duckdb.DuckDBPyConnection, path: Path, *, spec: InputSpec
) -> duckdb.DuckDBPyRelation:
    """A course's participants download, saved as ``participants_<course short name>.csv``.

    Adds ``course_shortname`` (from that name, so that a name is matched within its own course and a
    student on two courses is not counted twice) and ``full_name`` ("First name Last name", as
    Moodle's default full name display writes it in the Logs report; "Last name First name" with the
    input's ``options.full_name = "last first"``, for a site showing the family name first, as a
    Vietnamese university's did: no row of its report had joined). Two participants of a course
    sharing a full name cannot be told apart in the report, so neither has a full name to match (their
    rows then count as unmatched in the join) rather than one guessed.
    """
    match = _PARTICIPANTS_FILE.match(path.stem)
    if match is None:
        raise ExportFormatError(
            path,
            "save each course's participants download as participants_<course short name>.csv (the "
            "short name its Logs report download carries), so names are matched within their course",
        )
    order = str(spec.options.get("full_name", "first last"))
    if order not in FULL_NAME_ORDERS:
        raise ExportFormatError(
            path, f'options.full_name is "first last" or "last first" (the site\'s name display): {order!r}'
        )
    raw = _csv(con, path, spec=spec)
    if "full name" in {c.casefold() for c in raw.columns}:
        name = 'trim("Full name")'
    else:
        require_columns(
            path, raw.columns, needed=("First name", "Last name"), export="a Moodle participants download"
        )
        name = f"trim(concat_ws(' ', {FULL_NAME_ORDERS[order]}))"
    # Kept, with no full name to match: the input's count of rows read is the file's (a Vietnamese
    # university's "453 rows read" of 600 had hidden the 147 students sharing a name with a classmate).
    return raw.project(
        f"*, {literal(match['course'])} AS course_shortname, "
        f"CASE WHEN count(*) OVER (PARTITION BY {name}) = 1 THEN {name} END AS full_name"
    )


@register("moodle_grading_worksheet")
def read_grading_worksheet(
    con: duckdb.DuckDBPyConnection, path: Path, *, spec: InputSpec
) -> duckdb.DuckDBPyRelation:
    """An assignment's offline grading worksheet.

    Adds ``cmid`` (the assignment's course module id, the number ending the file name Moodle gives
    the worksheet), ``submitted_local`` (``Last modified (submission)`` as ISO 8601; empty when
    nothing was submitted; ``submitted_date`` its date), ``has_submission`` (``yes``/``no``) and
    ``grade_percent`` (``Grade`` as a percentage of ``Maximum grade``; empty when not graded or graded
    on a scale).
    """
    match = _WORKSHEET_FILE.search(path.stem)
    if match is None:
        raise ExportFormatError(
            path,
            "a grading worksheet is named Grades-<course>-<assignment>-<course module id>.csv, and the "
            "assignment is read from that number; keep Moodle's name for the file",
        )
    raw = _csv(con, path, spec=spec)
    require_columns(path, raw.columns, needed=WORKSHEET_COLUMNS, export="a Moodle grading worksheet")
    formats = _time_formats(spec, (WORKSHEET_TIME_FORMAT,))
    percent = (
        "round(100 * try_cast(replace(\"Grade\", ',', '') AS DOUBLE)"
        " / nullif(try_cast(replace(\"Maximum grade\", ',', '') AS DOUBLE), 0), 2)"
    )
    texts = raw.project(
        f"*, {literal(match['cmid'])} AS cmid, CAST({percent} AS VARCHAR) AS grade_percent, "
        "nullif(trim(\"Last modified (submission)\"), '-') AS _submission_text"
    )
    relation = texts.project(
        f"*, {_parsed('_submission_text', formats)} AS submitted_local, "
        f"{_parsed('_submission_text', formats, out='%Y-%m-%d')} AS submitted_date"
    )
    _refuse_unparsed(relation, path, column="_submission_text", derived="submitted_local", formats=formats)
    return relation.project(
        "* EXCLUDE (_submission_text), "
        "CASE WHEN submitted_local IS NULL THEN 'no' ELSE 'yes' END AS has_submission"
    )
