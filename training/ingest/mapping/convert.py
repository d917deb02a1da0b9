"""Build each contract table from a mapping's table section, as SQL over the input views.

Every column becomes two expressions: its converted value, and a check that is NULL when the value
converted cleanly and otherwise says why not ("not mapped", "not a date in the format %d/%m/%Y").
The checks are what the dry run counts and what makes a real import fail, naming the rows.

Per table T: ``wm_a_T``, a temporary table (values, checks, raw text, for day columns the parsed date,
and where a value map has a default whether it gave the value), converted once; the views ``wm_m_T``
(day numbers counted from the presentation's start; unknown presentations checked) and ``wm_out_T``
(the contract's columns and types; activity aggregated, keyed tables one row per key).
Names and values from the mapping reach SQL only through ``ident`` and ``literal``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import duckdb

from waymark.models.data.contract import TABLES, Column, Kind, Table
from waymark.models.data.sqltext import ident, literal
from waymark.models.folding import ASCII_DIGITS, OTHER_DIGITS, ascii_digits
from waymark.models.ids import UNSEEN_CLASS_RE2, UNSEEN_NAMED
from waymark.training.ingest.mapping.schema import (
    DEATH_REFUSED,
    DEATH_WORDS,
    LENGTH_FROM_END,
    ColumnSpec,
    JoinSpec,
    MappingError,
    TableSpec,
)

PSEUDONYM_FUNCTION = "waymark_pseudonym"
ACTIVITY_KEY = ("student_id", "module_id", "presentation_id", "day", "source", "activity_type")
SQL_TYPES = {
    Kind.ID: "VARCHAR",
    Kind.TEXT: "VARCHAR",
    Kind.INT: "BIGINT",
    Kind.FLOAT: "DOUBLE",
    Kind.DATE: "DATE",
}
_PRESENTATION = ("module_id", "presentation_id")
#: Tables whose rows name an assessment, not a presentation: their days count from its presentation's start.
BY_ASSESSMENT = ("assessment_results", "extensions")


class MappingColumnError(MappingError):
    """A mapping names a source column its input does not have."""


@dataclass(frozen=True)
class ColumnSql:
    """SQL for one mapped column."""

    value: str  # the converted value; for a day column, the parsed DATE to count from the start
    check: str  # NULL when the value converted cleanly, else the reason
    raw: str  # the source text, for messages
    counts_days: bool = False
    # where the value map's ``default`` gave the value (a value no key or pattern names); None: no default
    defaulted: str | None = None


def is_day_column(column: Column) -> bool:
    """Whether a column holds day numbers relative to the presentation start."""
    return column.kind is Kind.INT and (column.name == "day" or column.name.endswith("_day"))


def contract_column(table: Table, name: str) -> Column:
    """The contract column, or a text column for an extra column of an open table."""
    if name in table.column_names:
        return table.column(name)
    return Column(name, Kind.TEXT, "extra column", required=False, nullable=True)


def run(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Execute a statement and finish its result (DuckDB refuses further work on a pending one)."""
    con.execute(sql).fetchall()


# --- one column ----------------------------------------------------------------------------------

#: The Arabic decimal separator (U+066B), read as "." in a number (a Saudi university's marks wrote 85.5 so).
ARABIC_DECIMAL = "\u066b"

#: What a cell is trimmed of: every character Python's ``str.strip`` removes (``pseudonyms.normalised_id``
#: strips so), not only the space DuckDB's ``trim`` does. A tab an LMS export put before each student
#: number had made every id differ from the records'.
#: Why an id is refused that holds a character no id holds (``models.ids``).
UNSEEN_IN_ID = (
    f"holds a control character or an invisible direction character ({UNSEEN_NAMED}), which no sign-in "
    'carries: remove it with replace = { "\\u200f" = "" } (one entry per character; docs/mapping.md) or '
    "in the export"
)
SPACE = literal("".join(c for c in map(chr, range(0x3001)) if c.isspace()))


def trimmed(cell: str) -> str:
    """SQL: ``cell`` trimmed of ``SPACE``, in Unicode's composed form (NFC), empty as NULL.

    DuckDB's ``trim`` of a set of characters is about 17 times slower than of spaces (3.9 s against
    0.23 s for 5 million cells), so it is used only where the space-trimmed value starts or ends with a
    character outside ``!`` to U+0084 (a tab, a no-break space, a CJK letter). A value holding any
    character beyond ASCII (more bytes than characters) is composed first, which costs an ASCII cell
    next to nothing: an export saved by a macOS tool writes "é" as "e" and a combining accent (NFD), and
    its ids, module codes and outcomes then matched nothing another export wrote ("Décédé" was an
    unknown outcome beside itself). No space composes with a mark after it: composing and trimming
    commute.
    """
    cell = f"(CASE WHEN strlen({cell}) = length({cell}) THEN {cell} ELSE nfc_normalize({cell}) END)"
    spaced = f"trim({cell})"
    odd = f"ascii({spaced}) NOT BETWEEN 33 AND 132 OR ascii(right({spaced}, 1)) NOT BETWEEN 33 AND 132"
    return f"nullif(CASE WHEN {odd} THEN trim({cell}, {SPACE}) ELSE {spaced} END, '')"


def cell_reader(ref: Callable[[str], str]) -> tuple[Callable[[str], str], dict[str, str]]:
    """A function giving each source column's cell, ``trimmed``, as a column of a projection (``c``).

    Returns it and what it has named so far: each source column (as ``ref`` gives it) and its alias.

    A mapping reads a cell in many places (its value, check and raw text, a ``when``, a second rule)
    and its rules write a value several times over (a prefix stripped: CASE WHEN starts_with(v) THEN
    substr(v) ELSE v END). Written out with its trimming in each place, a registrations table's
    statement was 82,000 characters with 432 Unicode normalisations, and DuckDB took 160 to 190 ms to
    plan it. Trimmed once, in a projection under the conversions, a cell is a column name.
    """
    named: dict[str, str] = {}

    def cell(name: str) -> str:
        source = ref(name)  # refuses a column no input has, naming the ones there are
        named.setdefault(source, f"_c{len(named)}")
        return f"c.{named[source]}"

    return cell, named


def _parts(spec: ColumnSpec, cell: Callable[[str], str]) -> list[str]:
    return [cell(c) for c in spec.columns]


def _raw(spec: ColumnSpec, cell: Callable[[str], str]) -> str:
    """The source text (for messages): a column's, the parts of ``columns`` there are, or the constant."""
    if spec.column is not None:
        return cell(spec.column)
    if spec.columns:
        return f"nullif(concat_ws({literal(spec.joined_with)}, {', '.join(_parts(spec, cell))}), '')"
    text = str(spec.value)
    return "CAST(NULL AS VARCHAR)" if text == "" else literal(text)


def when_sql(when: dict[str, list[str]], cell: Callable[[str], str]) -> str:
    """SQL: every listed source column holds one of its values ("" an empty cell).

    ``cell`` gives a source column's cell as read: ``trimmed`` (``cell_reader``).
    """
    parts = []
    for name, listed in when.items():
        read = cell(name)
        given = [v for v in listed if v != ""]
        either = [f"{read} IN ({', '.join(literal(v) for v in given)})"] if given else []
        either += [f"{read} IS NULL"] if "" in listed else []
        parts.append(f"coalesce({' OR '.join(either)}, FALSE)")
    return " AND ".join(parts)


def _target(value: str) -> str:
    return "CAST(NULL AS VARCHAR)" if value == "" else literal(value)


#: Why an empty value is refused where the contract requires one.
EMPTY_REQUIRED = (
    'where {column} must have a value: give empty cells one with "" = ... in values, or leave '
    "their rows out with keep"
)


#: What more to say of a column whose empty rows are better filled than left out.
EMPTY_REQUIRED_MORE = {
    # An art school's juried performances and group marks had no submission date; dropping them, as
    # the hint then said, read every performance as work not submitted.
    "submitted_day": (
        " (a result left out reads as work not submitted: for work assessed without a submission, a "
        "performance or a mark given to a whole group, put the day it was assessed in the export)"
    ),
}


#: Why a date is too far from its presentation's start for the contract (``stage_m_sql``).
DAY_TOO_FAR = (
    ", too far from its presentation's start for the contract: check the date format (%y reads 6 as "
    "2006; a Japanese era's year, 令和6, is converted to the Western year in the export; a year from "
    "1300 to 1500 is likely a Hijri one, such as 1446/07/07, and one some 56 years ahead a Bikram Sambat "
    "one, such as 2081-08-20: export the Gregorian date beside it)"
)


def _ascii_digits_sql(text: str, *, decimal: bool = False) -> str:
    """SQL: ``text`` with other scripts' digits as 0-9 (and, with ``decimal``, the Arabic decimal point).

    translate costs 2.6 s per 5 million cells: only where a value has a character beyond ASCII.
    """
    written = f"CAST({text} AS VARCHAR)"
    other, ascii_ = OTHER_DIGITS, ASCII_DIGITS
    if decimal:
        other, ascii_ = other + ARABIC_DECIMAL, ascii_ + "."
    folded = f"translate({written}, {literal(other)}, {literal(ascii_)})"
    return f"(CASE WHEN strlen({written}) = length({written}) THEN {written} ELSE {folded} END)"


def _matched(text: str, spec: ColumnSpec, *, digits: bool = False) -> str:
    """The condition under which the value map maps ``text`` by one of its values or patterns.

    With ``digits``, ``text`` has its digits as 0-9 (``_ascii_digits_sql``), and so have the keys.
    """
    key = ascii_digits if digits else str
    matches = [f"{text} = {literal(key(k))}" for k in spec.values if k != ""]
    matches += [f"{text} GLOB {literal(key(p))}" for p in spec.patterns]
    return f"({' OR '.join(matches)})" if matches else "FALSE"


def _value_map(text: str, spec: ColumnSpec, *, digits: bool = False) -> tuple[str, str | None]:
    """The mapped value, and the condition under which a value is not mapped (``digits``: ``_matched``)."""
    key = ascii_digits if digits else str
    matches = [(f"{text} = {literal(key(k))}", v) for k, v in spec.values.items()]
    matches += [(f"{text} GLOB {literal(key(p))}", v) for p, v in spec.patterns.items()]
    cases = " ".join(f"WHEN {cond} THEN {_target(v)}" for cond, v in matches)
    otherwise = text if spec.keep_unmapped else _target(spec.default) if spec.default is not None else "NULL"
    # An empty cell is mapped only by a "" key (never by ``default``: an empty outcome is one still
    # in progress, not whatever the rest defaults to).
    empty = _target(spec.values[""]) if "" in spec.values else "NULL"
    expr = f"(CASE WHEN {text} IS NULL THEN {empty} {cases} ELSE {otherwise} END)"
    if spec.keep_unmapped or spec.default is not None:
        return expr, None
    matched = " OR ".join(cond for cond, _ in matches)
    return expr, f"{text} IS NOT NULL AND NOT ({matched})"


#: A date read before this year is a mistake in reading it (a two-digit year under %Y), not a date.
EARLIEST_YEAR = 1900

#: A date read more than this many years after today is a date of another calendar, not a date. A Nepali
#: university's records write Bikram Sambat dates (2081-08-20 BS is 5 December 2024): each one a
#: Gregorian calendar also has was read as that day, 56 years on, and the records imported clean.
YEARS_AHEAD = 10
FAR_AHEAD = (
    f"is a date more than {YEARS_AHEAD} years from now: a date of another calendar? (a Bikram Sambat year "
    "such as 2081 is 2024-25 in the Gregorian calendar, a Thai Buddhist year such as 2567 is 2024): "
    "export the Gregorian date beside it and map that column (a placeholder such as 9999-12-31 for no "
    'date yet is mapped to empty: values = { "9999-12-31" = "" })'
)


def _parsed_date(text: str, spec: ColumnSpec, *, zone: str | None = None) -> tuple[str, str]:
    """The DATE a date or timestamp text stands for, and why not.

    A timestamp's day is counted in the session's time zone (the mapping's), or in ``zone`` (SQL for the
    row's own zone, ``ColumnSpec.zone``) where it names one.
    """
    formats = spec.date_formats
    if formats == ("iso",):
        return f"TRY_CAST({text} AS DATE)", "is not an ISO date (YYYY-MM-DD)"
    if formats:
        months = (
            " (%b and %B read English month names: another language's take replace, e.g. "
            'replace = { "sept." = "Sep", "janv." = "Jan" })'
            if any("%b" in f or "%B" in f for f in formats)
            else ""
        )
        # Several formats are tried in order, the first that reads the value winning (a Bangladeshi
        # registry wrote 12/01/2024 and 12-Jan-24 in one column, and a hint for %y broke the rest).
        given = literal(formats[0]) if len(formats) == 1 else f"[{', '.join(literal(f) for f in formats)}]"
        said = formats[0] if len(formats) == 1 else f"of the formats {', '.join(formats)}"
        written = f"the format {said}" if len(formats) == 1 else f"any {said}"
        parsed = f"CAST(try_strptime({text}, {given}){_earlier(spec)} AS DATE)"
        if not any("%Y" in f for f in formats):
            return parsed, f"is not a date in {written}{months}"
        # %Y reads 01.04.25 as the year 25 (a spreadsheet re-saved with two-digit years): refused, not
        # read 2,000 years early and blamed on the rows dated against it (a German university's review).
        return (
            f"(CASE WHEN year({parsed}) >= {EARLIEST_YEAR} THEN {parsed} END)",
            f"is not a date in {written}{months} (%Y reads a year of four digits: one written "
            f"with two, such as 25, takes %y (a column written both ways takes both formats, %y first: "
            f'date = ["%d/%m/%y", "%d/%m/%Y"]), or is read as the year 25; a year before {EARLIEST_YEAR} '
            "is refused)",
        )
    if spec.timestamp == "iso":
        moment = f"TRY_CAST({text} AS TIMESTAMPTZ)"
        if spec.written_in is not None:  # without an offset, a time in that zone, not the mapping's
            offset = f"regexp_matches({text}, '(Z|z|[+-][0-9][0-9](:?[0-9][0-9])?)$')"
            naive = f"timezone({literal(spec.written_in)}, TRY_CAST({text} AS TIMESTAMP))"
            moment = f"(CASE WHEN {offset} THEN {moment} ELSE {naive} END)"
        return _in_zone(moment, zone, spec=spec), (
            "is not an ISO timestamp (a local time in another layout, such as 05.11.2025 14:32:10, takes "
            'date = "%d.%m.%Y %H:%M:%S")'
        )
    scale = " / 1000.0" if spec.timestamp == "unix_ms" else ""
    number = f"TRY_CAST({text} AS DOUBLE)"
    return _in_zone(f"to_timestamp({number}{scale})", zone, spec=spec), f"is not a {spec.timestamp} timestamp"


def _in_zone(moment: str, zone: str | None, *, spec: ColumnSpec) -> str:
    """The DATE of a TIMESTAMPTZ in the session's zone, or in the row's ``zone`` where it gives one.

    Its local time, less ``day_starts_at`` (wall-clock time, so a day that starts at 03:00 does so on
    the nights clocks change too).
    """
    earlier = _earlier(spec)
    session = f"CAST(CAST({moment} AS TIMESTAMP){earlier} AS DATE)" if earlier else f"CAST({moment} AS DATE)"
    if zone is None:
        return session
    local = f"CAST(timezone({zone}, {moment}){earlier} AS DATE)"
    return f"(CASE WHEN {zone} IS NULL THEN {session} ELSE {local} END)"


def _earlier(spec: ColumnSpec) -> str:
    """SQL taking ``day_starts_at`` off a local time ("" when a day starts at midnight)."""
    if spec.day_starts_at is None:
        return ""
    hours, minutes = (int(part) for part in spec.day_starts_at.split(":"))
    return f" - INTERVAL {60 * hours + minutes} MINUTE"


def _checks(pairs: list[tuple[str, str]]) -> str:
    if not pairs:
        return "CAST(NULL AS VARCHAR)"
    return "(CASE " + " ".join(f"WHEN {c} THEN {literal(r)}" for c, r in pairs) + " END)"


def column_sql(
    spec: ColumnSpec, column: Column, *, cell: Callable[[str], str], pseudonymise: bool
) -> ColumnSql:
    """The value, check and raw text of one mapped column.

    Parameters
    ----------
    spec
        The column's mapping.
    column
        The contract column it fills.
    cell
        SQL for a source column's cell as read (``cell_reader``: trimmed, from the input it comes from).
    pseudonymise
        Replace the (normalised) id by its keyed hash.
    """
    if spec.otherwise is not None:  # the first rule that gives a value; its checks, or the next one's
        first = column_sql(
            spec.model_copy(update={"otherwise": None}),
            dataclasses.replace(column, nullable=True),
            cell=cell,
            pseudonymise=pseudonymise,
        )
        rest = column_sql(spec.otherwise, column, cell=cell, pseudonymise=pseudonymise)
        # A rule gives nothing on an empty cell or a row its `when` passes over; a value it maps to ""
        # ("not known yet") is its answer. A Kazakh university's FX (may resit) = "" had fallen through
        # to the next rule's "не зачтено" = "fail": 455 registrations trained on as failures.
        said = f"({first.value} IS NOT NULL OR {first.raw} IS NOT NULL)"
        return ColumnSql(
            value=f"(CASE WHEN {said} THEN {first.value} ELSE {rest.value} END)",
            check=f"coalesce({first.check}, CASE WHEN NOT {said} THEN {rest.check} END)",
            raw=f"coalesce({first.raw}, {rest.raw})",
            counts_days=first.counts_days,
            defaulted=first.defaulted
            or (None if rest.defaulted is None else f"(NOT {said} AND {rest.defaulted})"),
        )
    raw = _raw(spec, cell)
    if spec.when:  # read only on the rows the condition names; elsewhere the cell counts as empty
        raw = f"(CASE WHEN {when_sql(spec.when, cell)} THEN {raw} END)"
    joined, checks = raw, []
    if spec.columns:  # every part, or none (an empty value): a part missing is a mistake in the row
        empty = [f"{part} IS NULL" for part in _parts(spec, cell)]
        joined = f"(CASE WHEN {' OR '.join(empty)} THEN NULL ELSE {raw} END)"
        read = f"{when_sql(spec.when, cell)} AND " if spec.when else ""  # a row `when` passes over is empty
        checks.append(
            (
                f"{read}({' OR '.join(empty)}) AND NOT ({' AND '.join(empty)})",
                f"has an empty part (needs all of {', '.join(spec.columns)})",
            )
        )
    if spec.case is not None:  # one system's 21bcs0457 is another's 21BCS0457: first, as documented
        joined = _cased(joined, spec.case)
    for prefix in spec.strip_prefix:  # an id some systems write with a prefix and others without
        joined = (
            f"(CASE WHEN starts_with({joined}, {literal(prefix)}) "
            f"THEN substr({joined}, {len(prefix) + 1}) ELSE {joined} END)"
        )
    for old, new in spec.replace.items():  # one system's ENG-2019-045 is the records' ENG/2019/045
        joined = f"replace({joined}, {literal(old)}, {literal(new)})"
    if spec.pad is not None:  # a spreadsheet's 23000374 is the records' 0023000374 (lpad alone would cut)
        if column.kind is Kind.ID:  # and its 23000374.0 too: the id's ".0" goes first (as below)
            joined = f"regexp_replace({joined}, '^(-?[0-9]+)\\.0+$', '\\1')"
        short = f"length({joined}) < {spec.pad}"
        joined = f"(CASE WHEN {short} THEN lpad({joined}, {spec.pad}, '0') ELSE {joined} END)"
    if spec.prefix is not None:  # a platform's 2012345 is the records' s2012345
        joined = (
            f"(CASE WHEN starts_with({joined}, {literal(spec.prefix)}) THEN {joined} "
            f"ELSE {literal(spec.prefix)} || {joined} END)"
        )
    if spec.extract is not None:  # the part its first group matches; a cell it does not match is named
        part = f"nullif(regexp_extract({joined}, {literal(spec.extract)}, 1), '')"
        checks.append((f"{joined} IS NOT NULL AND {part} IS NULL", f"does not match extract {spec.extract}"))
        joined = part
    # A value map compares digits as 0-9 whatever script wrote them, as numbers and dates read them: a
    # Jordanian faculty's marks written \u0667\u0665 matched no pass-mark pattern, and 1,650 passes fell to
    # `default = "fail"`. Not ids: they keep their digits as written (``pseudonyms.normalised_id``).
    digits = column.kind is not Kind.ID
    compared = _ascii_digits_sql(joined) if digits else joined
    text, unmapped = _value_map(compared, spec, digits=digits) if spec.maps_values else (joined, None)
    if spec.when and spec.maps_values:  # a `""` key maps an empty cell, not a row `when` passes over: an
        # Italian university's running year, read only for ended years with "" = "fail", was all "fail"
        text = f"(CASE WHEN {when_sql(spec.when, cell)} THEN {text} END)"
    checks += [(unmapped, "is not mapped")] if unmapped else []
    defaulted = None
    if spec.maps_values and spec.default is not None and not spec.keep_unmapped:
        defaulted = f"({compared} IS NOT NULL AND NOT {_matched(compared, spec, digits=digits)})"
        if spec.when:
            defaulted = f"({when_sql(spec.when, cell)} AND {defaulted})"
    if column.name == "final_result" and spec.maps_values:  # a default or a pattern can empty one too
        death = f"regexp_matches({joined}, {literal('(?i)(' + DEATH_WORDS + ')')})"
        checks.append((f"{joined} IS NOT NULL AND {death} AND {text} IS NULL", DEATH_REFUSED))
    counts_days = False
    if spec.converts_time or column.kind in {Kind.INT, Kind.FLOAT}:  # other scripts' digits as 0-9
        # Not ids: one imported so already would become another student (``pseudonyms.normalised_id``).
        text = _ascii_digits_sql(text, decimal=column.kind in {Kind.INT, Kind.FLOAT})
    if spec.converts_time:
        zone = None
        if spec.zone is not None:  # a name DuckDB does not know would stop the import: a check instead
            written_zone = cell(spec.zone)
            known = f"{written_zone} IN (SELECT name FROM pg_timezone_names())"
            # Moodle's 99 is "the site's zone": the mapping's, as an empty one is.
            zone = f"(CASE WHEN {known} THEN {written_zone} END)"
            checks.append(
                (
                    f"{written_zone} IS NOT NULL AND {written_zone} <> '99' AND {zone} IS NULL",
                    f"is a timestamp whose row's time zone column ({spec.zone}) holds no zone name such as "
                    "Europe/Madrid (an empty one, or Moodle's 99, reads as the mapping's)",
                )
            )
        value, why = _parsed_date(text, spec, zone=zone)
        checks.append((f"{text} IS NOT NULL AND {value} IS NULL", why))
        checks.append((f"year({value}) > {date.today().year + YEARS_AHEAD}", FAR_AHEAD))
        counts_days = column.kind is not Kind.DATE
    elif column.kind in {Kind.INT, Kind.FLOAT}:
        written = (
            f"(CASE WHEN contains(CAST({text} AS VARCHAR), '.') THEN NULL "
            f"ELSE replace(CAST({text} AS VARCHAR), ',', '.') END)"
            if spec.decimal_comma
            else text
        )
        # A value the value map gives (a pass/fail result: SY = "100", a default, an empty cell's "" key)
        # is already in the contract's unit: neither multiplied nor divided by a maximum. Only a value
        # passed through unmapped (keep_unmapped), or any value without a map, is the export's number.
        given = (
            "FALSE"
            if not spec.maps_values
            else f"NOT coalesce({joined} IS NOT NULL AND NOT {_matched(compared, spec, digits=digits)}, "
            "FALSE)"
            if spec.keep_unmapped
            else "TRUE"
        )
        number = f"TRY_CAST({written} AS DOUBLE)"
        if spec.multiply:
            number = f"(CASE WHEN {given} THEN {number} ELSE {number} * {float(spec.multiply)!r} END)"
        if spec.add:
            number = f"(CASE WHEN {given} THEN {number} ELSE {number} + {float(spec.add)!r} END)"
        if not spec.decimal_comma:  # a Chilean grade sheet's 5,5 had been refused without the rule to read it
            # one or two digits after the comma: 1,234 may be a thousands separator, which decimal_comma
            # would read as 1.234
            comma = f"regexp_full_match(trim(CAST({text} AS VARCHAR)), '-?[0-9]*,[0-9]{{1,2}}')"
            checks.append(
                (
                    f"{text} IS NOT NULL AND {number} IS NULL AND {comma}",
                    "is not a number (written with a decimal comma: give the rule decimal_comma = true)",
                )
            )
        checks.append((f"{text} IS NOT NULL AND {number} IS NULL", "is not a number"))
        if column.kind is Kind.INT:  # of what the export wrote: a share out of a maximum is rounded
            checks.append((f"{number} <> round({number})", "is not a whole number"))
        if isinstance(spec.out_of, float):  # a mark out of a maximum every row shares
            number = f"(CASE WHEN {given} THEN {number} ELSE {number} / {spec.out_of!r} * 100 END)"
        elif spec.out_of is not None:  # a mark out of another column's maximum, as a percentage
            # The maximum is written as the mark is: "20,0" is twenty where marks have decimal commas.
            maximum = cell(spec.out_of)
            if spec.decimal_comma:
                maximum = (
                    f"(CASE WHEN contains({maximum}, '.') THEN NULL ELSE replace({maximum}, ',', '.') END)"
                )
            most = f"TRY_CAST({maximum} AS DOUBLE)"
            checks.append(
                (
                    f"{text} IS NOT NULL AND NOT {given} AND NOT coalesce({most} > 0, false)",
                    f"has no maximum to be out of ({spec.out_of} is empty, 0 or not a number)",
                )
            )
            number = f"(CASE WHEN {given} THEN {number} ELSE {number} / {most} * 100 END)"
        value = f"CAST(round({number}) AS BIGINT)" if column.kind is Kind.INT else number
    elif column.kind is Kind.ID:
        # Found before a pseudonym hides it: a student number with an invisible direction mark became a
        # pseudonym no sign-in makes, and the contract's check (``unseen_in_identifier``) sees only that.
        checks.append((f"regexp_matches({text}, {literal(f'[{UNSEEN_CLASS_RE2}]')})", UNSEEN_IN_ID))
        value = f"regexp_replace({text}, '^(-?[0-9]+)\\.0+$', '\\1')"
        value = f"{PSEUDONYM_FUNCTION}({value})" if pseudonymise else value
    else:
        value = text
    if column.allowed:
        allowed = ", ".join(literal(a) for a in column.allowed)
        checks.append((f"{value} NOT IN ({allowed})", f"is not one of {', '.join(column.allowed)}"))
    if not column.nullable:  # found here, with the file and row, not by the contract after the import
        said = EMPTY_REQUIRED.format(column=column.name) + EMPTY_REQUIRED_MORE.get(column.name, "")
        checks.append((f"{value} IS NULL", said))
    return ColumnSql(
        value=value, check=_checks(checks), raw=raw, counts_days=counts_days, defaulted=defaulted
    )


# --- one table -----------------------------------------------------------------------------------


def resolver(
    columns: dict[str, list[str]],
    *,
    order: list[str],
    where: str,
    inputs: dict[str, str] | None = None,
    equal: frozenset[str] = frozenset(),
) -> Callable[[str], str]:
    """SQL for a source column: the one input (alias ``s``, ``j0``, ...) in ``order`` that has it.

    ``inputs`` names each alias's input: ``"courses.title"`` reads ``title`` from input ``courses``.
    A bare name that more than one input has is refused, naming them (it had been read silently from
    the first), unless it is in ``equal``: a column the join matches on by the same name in every
    input that has it, whose values are then the same.
    """
    named = inputs or {}

    def ref(name: str) -> str:
        prefix, _, bare = name.partition(".")
        qualified = [a for a in order if named.get(a) == prefix and bare in columns[a]]
        if bare and name not in (c for a in order for c in columns[a]) and qualified:
            return f"{qualified[0]}.{ident(bare)}"
        holders = [a for a in order if name in columns[a]]
        if len(holders) > 1 and named and name not in equal:
            which = list(dict.fromkeys(named[a] for a in holders))
            raise MappingColumnError(
                f"{where}: source column {name!r} is in more than one input ({', '.join(which)}): "
                f"name the one to read, {' or '.join(f'{i}.{name}' for i in which)}"
            )
        if holders:
            return f"{holders[0]}.{ident(name)}"
        have = sorted({c for a in order for c in columns[a] if not c.startswith("_")})
        raise MappingColumnError(
            f"{where}: no source column {name!r} (the inputs have: {', '.join(have)}){misread(name, have)}"
        )

    return ref


#: Encodings an export may be written in and read as, for ``misread``: UTF-8 and the Windows code pages
#: of Central European, Cyrillic, Western, Greek, Turkish and Baltic text.
_CODE_PAGES = ("utf-8", "cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257")


def _cased(sql: str, case: str) -> str:
    """``sql`` in upper or lower case; with Turkish's pairs where asked: dotted i and İ, dotless i and I."""
    if case == "turkish-upper":
        return f"upper(replace({sql}, 'i', '\u0130'))"  # the dotless i becomes I, as in upper()
    if case == "turkish-lower":
        return f"lower(replace(replace({sql}, 'I', '\u0131'), '\u0130', 'i'))"
    return f"{case}({sql})"


def misread(name: str, have: list[str]) -> str:
    """A hint when a column the mapping names is there, written in one encoding and read as another.

    A Turkish records system's Windows-1254 file, read as Windows-1252 on the import's advice (the two
    share the Ö it stopped at), had "Öðrenci No" where the mapping said "Öğrenci No", and nothing said
    why; "" when no such reading explains a column.
    """
    present = set(have)
    for written in _CODE_PAGES:
        for read in _CODE_PAGES:
            if written == read:
                continue
            try:
                seen = name.encode(written).decode(read)
            except (UnicodeEncodeError, UnicodeDecodeError):
                continue
            if seen != name and seen in present:
                return (
                    f"; {seen!r} is {name!r} written in {written} and read as {read}: give the input "
                    f'encoding = "{written}"'
                )
    return ""


def base_sql(spec: TableSpec, columns: dict[str, list[str]]) -> tuple[str, Callable[[str], str], list[str]]:
    """The FROM clause of a table (its input, inner-joined to its joins), a resolver, and any mistakes."""
    sql = f"{ident('wm_in_' + spec.from_)} AS s"
    by_alias = {"s": columns[spec.from_]}
    inputs = {"s": spec.from_}
    problems = []
    for i, join in enumerate(spec.join):
        alias = f"j{i}"
        by_alias[alias] = columns[join.input]
        inputs[alias] = join.input
        conds = []
        for left, right in join.on.items():
            if left not in columns[spec.from_]:
                earlier = [j.input for j in spec.join[:i] if left in columns[j.input]]
                hint = (
                    f" (input {earlier[0]}, joined before, has it: a join matches on columns of the `from` "
                    "input only, so join that chain in the export, or carry the column on each row)"
                    if earlier
                    else ""
                )
                problems.append(f"join[{i}].on.{left}: input {spec.from_} has no column {left!r}{hint}")
            if right not in columns[join.input]:
                problems.append(f"join[{i}].on.{left}: input {join.input} has no column {right!r}")
            conds.append(join_match(f"s.{ident(left)}", f"{alias}.{ident(right)}", join=join))
        kind = "LEFT JOIN" if join.keep_unmatched else "JOIN"
        sql += f" {kind} {ident('wm_in_' + join.input)} AS {alias} ON {' AND '.join(conds) or 'TRUE'}"
    # A join key written the same in both inputs (and matched exactly) holds the same value in each.
    shared = {c for c in by_alias["s"] if sum(c in cols for cols in by_alias.values()) > 1}
    equal = frozenset(
        c
        for c in shared
        if all(join.on.get(c) == c and not join.ignore_case for join in spec.join if c in columns[join.input])
    )
    ref = resolver(by_alias, order=list(by_alias), where="columns", inputs=inputs, equal=equal)
    return sql, ref, problems


def join_match(mine: str, theirs: str, *, join: JoinSpec) -> str:
    """SQL: one key of ``join`` matches (``ignore_case``: whatever the case either side writes)."""
    if join.ignore_case:
        return f"lower(CAST({mine} AS VARCHAR)) = lower(CAST({theirs} AS VARCHAR))"
    return f"{mine} = {theirs}"


def stage_a_sql(
    sqls: dict[str, ColumnSql],
    *,
    base: str,
    cells: dict[str, str],
    order: str | None,
    distinct: str | None = None,
) -> str:
    """Values, checks and raw text per mapped column, with each row's file and row number.

    ``cells``: the source columns the conversions read, each trimmed once under them (``cell_reader``).
    """
    read = [f"{trimmed(source)} AS {alias}" for source, alias in cells.items()]
    base = f"(SELECT {', '.join(['s._file AS _file', 's._row AS _row', *read])} FROM {base}) AS c"
    selects = ["c._file AS _file", "c._row AS _row"]
    for col, sql in sqls.items():
        target = f"_date:{col}" if sql.counts_days else col
        selects += [
            f"{sql.value} AS {ident(target)}",
            f"{sql.check} AS {ident('_check:' + col)}",
            f"{sql.raw} AS {ident('_raw:' + col)}",
        ]
        if sql.defaulted is not None:  # for the coverage's note (``coverage.defaulted_note``)
            selects.append(f"coalesce({sql.defaulted}, FALSE) AS {ident('_default:' + col)}")
    selects.append(f"{order or 'NULL'} AS _order")
    selects.append(f"{distinct or 'NULL'} AS _distinct")
    return f"SELECT {', '.join(selects)} FROM {base}"


#: Days before its presentation's start an activity row is kept with ``within_presentation`` (pre-reading).
WITHIN_BEFORE_DAYS = 14


def stage_m_sql(name: str, *, sqls: dict[str, ColumnSql], within: bool = False, joined: bool = False) -> str:
    """Day numbers from each row's presentation start; a row whose presentation is unknown is a check.

    ``within`` (activity's ``within_presentation``): rows dated outside their presentation, from
    ``WITHIN_BEFORE_DAYS`` before its start to its last day, are left out. With ``joined`` (a join
    can give one input row to several presentations), a copy dated in the days before its
    presentation's start is kept only where no copy of the row falls inside its own presentation: a
    medical school's rotations follow one another, and 34% of e-portfolio entries, the end of each
    block, had been counted in the next block's pre-reading too.
    """
    a = ident("wm_a_" + name)
    days = [c for c, s in sqls.items() if s.counts_days]
    dropped = [ident(f"{part}:{d}") for d in days for part in ("_date", "_check")]
    selects = [f"a.* EXCLUDE ({', '.join(dropped)})" if days else "a.*"]
    for d in days:
        date, diff = f"a.{ident('_date:' + d)}", f"date_diff('day', st.start_date, a.{ident('_date:' + d)})"
        selects.append(f"{diff} AS {ident(d)}")
        # A date read in the wrong century (a two-digit year, an era's year) is named with its cell and
        # the date it was read as, not left to the contract's "value is below -1000".
        column = contract_column(TABLES[name], d)
        far = " OR ".join(
            f"{diff} {op} {bound}"
            for op, bound in (("<", column.minimum), (">", column.maximum))
            if bound is not None
        )
        said = (
            f"'was read as ' || strftime({date}, '%Y-%m-%d') || {literal(DAY_TOO_FAR)}"
            if far
            else "CAST(NULL AS VARCHAR)"
        )
        check = f"coalesce(a.{ident('_check:' + d)}, CASE WHEN {far or 'FALSE'} THEN {said} END)"
        selects.append(f"{check} AS {ident('_check:' + d)}")
    if name in BY_ASSESSMENT:
        joins = (
            "LEFT JOIN wm_assessment_presentations ax ON ax.assessment_id = a.assessment_id "
            "LEFT JOIN wm_starts st ON st.module_id = ax.module_id "
            "AND st.presentation_id = ax.presentation_id"
        )
        known = "ax.assessment_id IS NOT NULL"
        reason = "names no assessment in the assessments table"
        raw = "a.assessment_id"
    else:
        joins = (
            "LEFT JOIN wm_starts st ON st.module_id = a.module_id AND st.presentation_id = a.presentation_id"
        )
        known = "st.module_id IS NOT NULL"
        reason = "names no presentation in the presentations table"
        raw = "concat_ws(' ', a.module_id, a.presentation_id)"
    selects.append(f"CASE WHEN NOT ({known}) THEN {literal(reason)} END AS {ident('_check:(presentation)')}")
    selects.append(f"{raw} AS {ident('_raw:(presentation)')}")
    where = ""
    if within and "day" in sqls:  # a row whose day or presentation is unknown stays, to be named
        day = (
            f"date_diff('day', st.start_date, a.{ident('_date:day')})"
            if "day" in days
            else "TRY_CAST(a.day AS BIGINT)"
        )
        last = "CAST(st.length_days AS BIGINT) - 1"
        inside = f"{day} BETWEEN -{WITHIN_BEFORE_DAYS} AND {last}"
        where = f" WHERE coalesce({inside}, TRUE)"
        if joined:
            proper = f"({day} BETWEEN 0 AND {last})"
            elsewhere = f"max(CAST(coalesce({proper}, FALSE) AS INTEGER)) OVER (PARTITION BY a._file, a._row)"
            where += f" QUALIFY {proper} IS NOT FALSE OR {elsewhere} = 0"
    return f"SELECT {', '.join(selects)} FROM {a} AS a {joins}{where}"


def joins_copy(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> bool:
    """Whether a join of ``spec`` can copy a row: a joined input holds a key of its ``on`` columns twice.

    Read on the joined inputs, which are small (course maps, people), so that the activity, which can be
    millions of rows, is deduplicated (``once_per_key``) only where a copy can be.
    """
    for join in spec.join:
        keys = [
            f"lower(CAST({ident(c)} AS VARCHAR))" if join.ignore_case else ident(c) for c in join.on.values()
        ]
        row = con.execute(
            f"SELECT count(*) > count(DISTINCT ({', '.join(keys)})) FROM {ident('wm_in_' + join.input)}"
        ).fetchall()
        if row and row[0][0]:
            return True
    return False


def out_sql(name: str, spec: TableSpec, *, columns: list[str], copies: bool = False) -> str:
    """The contract's columns and types: activity aggregated, keyed tables one row per key.

    ``copies``: a join may copy activity rows (``joins_copy``): copies on one key count once.
    """
    table = TABLES[name]
    typed = {c: f"CAST({ident(c)} AS {SQL_TYPES[contract_column(table, c).kind]})" for c in columns}
    m = ident("wm_m_" + name)
    if name == "activity" and spec.aggregate is not None:
        keys = [c for c in ACTIVITY_KEY if c in columns]
        total = "sum(count)" if spec.aggregate == "sum" else "count(*)"
        if spec.count_distinct is not None:  # a check-in counted twice is one attendance
            # a row with no value (a check-in entered by hand, say) still counts, as itself
            total = "count(DISTINCT coalesce(CAST(_distinct AS VARCHAR), '#' || _file || ':' || _row))"
        key_sql = ", ".join(f"{typed[c]} AS {ident(c)}" for c in keys)
        rows = f"(SELECT * FROM {m} {once_per_key(keys)})" if copies else m
        return f"SELECT {key_sql}, CAST({total} AS BIGINT) AS count FROM {rows} GROUP BY ALL"
    select = ", ".join(f"{typed[c]} AS {ident(c)}" for c in columns)
    if not table.key or spec.duplicates == "error":
        return f"SELECT {'DISTINCT ' if table.key else ''}{select} FROM {m}"
    direction = "ASC" if spec.duplicates == "first" else "DESC"
    key = ", ".join(ident(k) for k in table.key if k in columns)  # an optional key column mapped or not
    # A text order_by that holds numbers is compared as numbers: a grade history's sequence "10" had
    # sorted before "9" and kept an older grade (a US university's SHRTCKG_SEQ_NO).
    numbers = (
        f"TRY_CAST(_order AS DOUBLE) {direction} NULLS LAST, "
        if spec.order_by is not None and not spec.order_by.converts_time
        else ""
    )
    window = (
        f"PARTITION BY {key} ORDER BY {numbers}_order {direction} NULLS LAST, _file {direction}, "
        f"_row {direction}"
    )
    return f"SELECT {select} FROM {m} QUALIFY row_number() OVER ({window}) = 1"


def once_per_key(keys: list[str]) -> str:
    """SQL keeping one copy of an input row per activity key (``_file`` and ``_row`` name the row).

    A join copies a row once per joined row it matches; copies that land on the same student,
    presentation, day, source and type are one event. A Blackboard shell merged for several
    sections, mapped once per section, counted each event two to four times, and the report said the
    copies had been folded back.
    """
    return f"QUALIFY row_number() OVER (PARTITION BY _file, _row, {', '.join(ident(k) for k in keys)}) = 1"


def table_columns(name: str, spec: TableSpec) -> list[str]:
    """The output columns of a table: the contract's order, then extra columns of an open table."""
    table = TABLES[name]
    mapped = list(spec.columns)
    if name == "activity" and spec.aggregate is not None and "count" not in mapped:
        mapped.append("count")
    ordered = [c for c in table.column_names if c in mapped]
    return ordered + [c for c in mapped if c not in table.column_names]


def create_views(
    con: duckdb.DuckDBPyConnection,
    name: str,
    *,
    spec: TableSpec,
    input_columns: dict[str, list[str]],
    pseudonymised: frozenset[str],
) -> None:
    """Build ``name``'s converted rows (``wm_a_``, a temporary table) and its ``wm_m_`` and ``wm_out_`` views.

    Raises
    ------
    MappingColumnError
        When the mapping names a source column its inputs do not have.
    """
    table = TABLES[name]
    base, ref, problems = base_sql(spec, input_columns)
    cell, cells = cell_reader(ref)
    sqls: dict[str, ColumnSql] = {}
    for col, col_spec in spec.columns.items():
        try:
            sqls[col] = column_sql(
                col_spec, contract_column(table, col), cell=cell, pseudonymise=col in pseudonymised
            )
        except MappingColumnError as exc:
            problems.append(f"columns.{col}{str(exc).removeprefix('columns')}")
    order = _order_sql(spec, cell, problems=problems)
    distinct = _distinct_sql(spec, cell, problems=problems)
    if problems:
        raise MappingColumnError("\n".join(f"tables.{name}.{p}" for p in problems))
    # Built last: ``cells`` holds the source columns every conversion above has read.
    stage_a = stage_a_sql(sqls, base=base, cells=cells, order=order, distinct=distinct)
    # Held as a table: every later query (the coverage's counts and checks, the written table) reads it
    # instead of converting the exports again. A mapping's conversions are one long expression per
    # column; planning the view anew cost each query 50 to 300 ms even for a dozen students.
    run(con, f"CREATE OR REPLACE TEMP TABLE {ident('wm_a_' + name)} AS {stage_a}")
    has_presentation = name != "presentations" and (
        all(c in spec.columns for c in _PRESENTATION) or name in BY_ASSESSMENT
    )
    if has_presentation:
        m = stage_m_sql(name, sqls=sqls, within=spec.within_presentation, joined=bool(spec.join))
    elif name == "presentations" and LENGTH_FROM_END in sqls and sqls[LENGTH_FROM_END].counts_days:
        m = _length_from_end_sql()
    else:
        none = "CAST(NULL AS VARCHAR)"
        m = (
            f"SELECT *, {none} AS {ident('_check:(presentation)')}, {none} AS {ident('_raw:(presentation)')} "
            f"FROM {ident('wm_a_' + name)}"
        )
    run(con, f"CREATE OR REPLACE TEMP VIEW {ident('wm_m_' + name)} AS {m}")
    copies = name == "activity" and spec.aggregate is not None and bool(spec.join) and joins_copy(con, spec)
    out = out_sql(name, spec, columns=table_columns(name, spec), copies=copies)
    run(con, f"CREATE OR REPLACE TEMP VIEW {ident('wm_out_' + name)} AS {out}")


def _length_from_end_sql() -> str:
    """Stage m of presentations whose length is given by their last day: counted from the start, inclusive.

    Institutions' records give a teaching period's start and end dates, not its length (a trimester
    from 24/02/2026 to 13/06/2026 is 110 days long).
    """
    end, start = ident("_date:" + LENGTH_FROM_END), "TRY_CAST(a.start_date AS DATE)"
    none = "CAST(NULL AS VARCHAR)"
    return (
        f"SELECT a.* EXCLUDE ({end}), date_diff('day', {start}, a.{end}) + 1 AS {ident(LENGTH_FROM_END)}, "
        f"{none} AS {ident('_check:(presentation)')}, {none} AS {ident('_raw:(presentation)')} "
        f"FROM {ident('wm_a_presentations')} AS a"
    )


def _distinct_sql(spec: TableSpec, cell: Callable[[str], str], *, problems: list[str]) -> str | None:
    if spec.count_distinct is None:
        return None
    try:
        sql = column_sql(
            spec.count_distinct, Column("count_distinct", Kind.TEXT, ""), cell=cell, pseudonymise=False
        )
    except MappingColumnError as exc:
        problems.append(f"count_distinct{str(exc).removeprefix('columns')}")
        return None
    return sql.value


def _order_sql(spec: TableSpec, cell: Callable[[str], str], *, problems: list[str]) -> str | None:
    if spec.order_by is None:
        return None
    try:
        kind = Kind.DATE if spec.order_by.converts_time else Kind.TEXT
        sql = column_sql(spec.order_by, Column("order_by", kind, ""), cell=cell, pseudonymise=False)
    except MappingColumnError as exc:
        problems.append(f"order_by{str(exc).removeprefix('columns')}")
        return None
    return sql.value
