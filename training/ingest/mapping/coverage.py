"""What a mapping did with the data: rows read, kept, joined and written, and every value it could not map.

The same report serves the dry run (printed, nothing written) and the import (any issue fails it,
naming the mapping's rule, the value, how many rows and the first file and row).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import duckdb

from waymark.models.data.contract import TABLES
from waymark.models.data.sqltext import ident, literal
from waymark.models.folding import OTHER_DIGITS, folded
from waymark.training.ingest.mapping.convert import (
    ACTIVITY_KEY,
    BY_ASSESSMENT,
    join_match,
    joins_copy,
    trimmed,
    when_sql,
)
from waymark.training.ingest.mapping.inputs import InputStats
from waymark.training.ingest.mapping.schema import ColumnSpec, Mapping, TableSpec

MAX_VALUES_PER_RULE = 20


@dataclass(frozen=True)
class Issue:
    """Rows whose value a rule could not convert."""

    where: str  # the mapping's TOML path
    value: str | None
    reason: str
    count: int
    file: str
    row: int
    # On the last issue listed for a rule: the rule's values not listed (``MAX_VALUES_PER_RULE``).
    more_values: int = 0
    more_rows: int = 0

    def text(self) -> str:
        """One line naming the rule, the value, the count and the first row (and what was not listed)."""
        rows = "row" if self.count == 1 else "rows"
        first = f"first {self.file} row {self.row}"
        value = "an empty cell" if self.value is None else repr(self.value)
        more = ""
        if self.more_values:
            values = "value" if self.more_values == 1 else "values"
            more = (
                f"; and {self.more_values:,} more {values} of this rule in {self.more_rows:,} "
                f"{'row' if self.more_rows == 1 else 'rows'}, not listed"
            )
        return f"{self.where}: {value} {self.reason} ({self.count} {rows}; {first}){more}"


#: What an issue can be, as the dry run and a refused import say it.
PROBLEM_KINDS = (
    "values a rule could not convert, keys shared by rows that differ, or a join matching no row where "
    "ids written otherwise would"
)


@dataclass(frozen=True)
class TableCoverage:
    """One table: rows from its input, after its joins, and written."""

    table: str
    rows_in: int  # the input's rows after its keep filter
    rows_joined: int  # after the table's joins (inner: unmatched rows are dropped)
    rows_out: int
    issues: tuple[Issue, ...] = ()
    folded: str = ""  # how rows become fewer on the way out (aggregation, a key), "" when they cannot
    # With joins: input rows that matched at least once, and the first that matched none ("file row N").
    rows_matched: int | None = None
    first_unmatched: str = ""
    # The unmatched rows' distinct values of the join's columns (as the export wrote them), and a few.
    unmatched_on: tuple[str, ...] = ()
    unmatched_keys: int = 0
    unmatched_examples: tuple[str, ...] = ()
    # Columns read under ``when``: the rows no ``when`` of the rule names that it left empty (a note).
    passed_over: tuple[str, ...] = ()
    # Rows sharing a key and their order_by value that differ: the extract's order chose ("" if none).
    tied: str = ""
    # Columns whose value map's ``default`` gave at least half their values (a note each; ``_defaulted``).
    defaulted: tuple[str, ...] = ()
    # Joins that keep unmatched rows: (joined input, rows of the table's input that found a match, rows
    # of the joined input, and how many of those matched no row of the table's input).
    kept_unmatched: tuple[tuple[str, int, int, int], ...] = ()
    aggregated: bool = False  # activity added up into daily counts (a fold that is not a duplicates rule)
    # Aggregated activity with joins: copies of one input row on the same key, counted once
    # (``convert.once_per_key``)
    same_key_copies: int = 0


@dataclass(frozen=True)
class Coverage:
    """The whole mapping's coverage."""

    mapping: str
    inputs: dict[str, InputStats]
    tables: dict[str, TableCoverage]
    unused_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    unused_files: tuple[str, ...] = ()

    @property
    def issues(self) -> list[Issue]:
        """Every issue of every table."""
        return [i for t in self.tables.values() for i in t.issues]

    def problems(self) -> str:
        """How many issues there are, in words ("1 problem", "3 problems")."""
        n = sum(1 + i.more_values for i in self.issues)
        return f"{n:,} {'problem' if n == 1 else 'problems'}"

    @property
    def ok(self) -> bool:
        """Whether every value was mapped."""
        return not self.issues

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "mapping": self.mapping,
            "ok": self.ok,
            "inputs": {k: asdict(v) for k, v in self.inputs.items()},
            "tables": {k: asdict(v) for k, v in self.tables.items()},
            "unused_columns": {k: list(v) for k, v in self.unused_columns.items()},
            "unused_files": list(self.unused_files),
        }

    def to_text(self) -> str:
        """A report for the terminal."""
        lines = [f"Mapping {self.mapping}", "Inputs:"]
        for name, stats in self.inputs.items():
            lines.append(
                f"  {name}: {len(stats.files)} {'file' if len(stats.files) == 1 else 'files'}, "
                f"{stats.rows_read:,} rows read, "
                f"{stats.rows_kept:,} kept"
            )
            if stats.rows_read and not stats.rows_kept:
                lines.append(
                    "    keep and drop left none of its rows: check the values they list against the "
                    'files\' (an empty cell is matched by "")'
                )
            if self.unused_columns.get(name):
                unused = self.unused_columns[name]
                lines.append(f"    columns neither used nor ignored: {', '.join(unused)}")
                if any(re.fullmatch(r"column\d+", c) for c in unused):
                    lines.append(
                        "    (a column named like column16 has no name in the header: a separator at the end "
                        "of every line makes one; list it under ignore)"
                    )
        lines.append("Tables:")
        for t in self.tables.values():
            matched = t.rows_in if t.rows_matched is None else t.rows_matched  # no join: every row
            unmatched = t.rows_in - matched
            joined = f", {unmatched:,} matched nothing in the join and were dropped" if unmatched > 0 else ""
            lines.append(f"  {t.table}: {t.rows_in:,} rows in{joined}, {t.rows_out:,} rows out")
            if unmatched > 0:
                share = unmatched / max(t.rows_in, 1)
                first = f" (first: {t.first_unmatched})" if t.first_unmatched else ""
                said = "under 1%" if share < 0.005 else f"{share:.0%}"  # 5,500 of 2.3 million had read "0%"
                lines.append(
                    f"    {said} of the rows in matched no row of a joined input{first}: check that "
                    "the joined columns hold the same values in both (ids in the same case and format)"
                )
                if t.unmatched_keys:
                    on = ", ".join(t.unmatched_on)
                    more = t.unmatched_keys - len(t.unmatched_examples)
                    listed = ", ".join(t.unmatched_examples) + (f" and {more:,} more" if more > 0 else "")
                    # A law school's exam results keyed by candidate numbers, some missing from the
                    # exams office's lookup: marks were lost, and this had spoken only of activity.
                    lost = (
                        "their activity, which then reads as a student going quiet"
                        if t.table == "activity"
                        else f"their {t.table} rows (a result missing from a lookup of candidate numbers "
                        "reads as work not submitted)"
                    )
                    lines.append(
                        f"    they hold {t.unmatched_keys:,} distinct {on} ({listed}): rows expected to "
                        "drop out (staff, test accounts) and people missing from the joined input (an "
                        f"enrolment list that has not caught up) look alike here, and the second lose {lost}"
                    )
            if t.rows_out < t.rows_joined and t.folded:
                # rows in counts the input before a join's copies: "14,510 rows in, 14,510 rows out"
                # then "238 fewer out" read as a contradiction (a US university's grade history)
                than = " than the join made" if t.rows_joined > matched else ""
                lines.append(f"    {t.rows_joined - t.rows_out:,} fewer out{than}: {t.folded}")
            if t.same_key_copies:
                lines.append(
                    f"    {t.same_key_copies:,} copies the join made of a row on the same student, "
                    "presentation, day, source and type are counted once (a course shell merged for "
                    "several sections, mapped once per section, repeats each event on the same course)"
                )
            if t.rows_joined > matched and t.rows_out <= matched and t.folded and not t.aggregated:
                # A Polish university's one row per sitting (Termin 1 and 2) joined to enrolments, as the
                # resits recipe does, and folded back to one a registration: said as copies to avoid.
                lines.append(
                    f"    the join made {t.rows_joined:,} rows of the {matched:,} rows it kept (a row "
                    "matched several rows of a joined input, a sitting each, say), and the table's "
                    "duplicates rule kept one of each"
                )
            elif (made := t.rows_joined - t.same_key_copies) > matched:
                lines.append(
                    f"    the join made {made:,} rows of the {matched:,} rows it kept "
                    f"({made / max(matched, 1):.1f} per row{' besides those' if t.same_key_copies else ''}): "
                    "a row matched several rows of a "
                    "joined input, and each copy is counted. A joined export with a row per section (a "
                    "course's lecture and lab) repeats each student: select its rows DISTINCT on the "
                    "columns the mapping reads. A source recorded per student (library "
                    "loans, say) joined to enrolments repeats every row for each module the student "
                    "takes, in every term; join on something that names one module presentation, "
                    + (
                        "or give the table within_presentation = true (rows dated outside their "
                        "presentation left out), or leave it out"
                        if t.table == "activity" and "within_presentation" not in t.folded
                        else "or leave it out"
                        if t.table == "activity"
                        else "or export it per term and join on the term too"
                    )
                )
            for joined, found, rows, orphans in t.kept_unmatched:
                lines.append(
                    f"    {found:,} of the {t.rows_in:,} rows in matched a row of {joined} (keep_unmatched: "
                    "the others are kept, its columns empty)"
                )
                if orphans:
                    # A disability office's list keyed by a national number an Excel save had taken the
                    # leading zeros of: 6 of its 8 students were recorded as not disabled, silently.
                    lines.append(
                        f"    {orphans:,} of the {rows:,} rows of {joined} matched no row in, and would with "
                        "leading zeros, case and separators ignored: what they hold reaches nobody. Write "
                        "the joined columns the same way in both (a spreadsheet drops leading zeros)"
                    )
            lines += [f"    {i.text()}" for i in t.issues]
            lines += [f"    {note}" for note in t.passed_over]
            lines += [f"    {note}" for note in t.defaulted]
            if t.tied:
                lines.append(f"    {t.tied}")
        if self.unused_files:
            lines.append("Files no input reads: " + ", ".join(self.unused_files))
        lines.append("Every value was mapped." if self.ok else f"{self.problems()}: {PROBLEM_KINDS}.")
        return "\n".join(lines)


def _count(con: duckdb.DuckDBPyConnection, view: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {ident(view)}").fetchall()[0]
    return int(row[0]) if row else 0


def flagged_rows(con: duckdb.DuckDBPyConnection, table: str, *, columns: list[str]) -> str:
    """A temporary table of the issues of ``wm_m_<table>``'s ``columns``, grouped; its name.

    One row per column (``k``, its place in ``columns``), reason and value: its rows and the first of
    them. Read in one pass: each column's issues had been a query of its own over the whole mapping
    (the exports read, joined and converted again), a second of every small import's three. Grouped
    as it is read, so a column wrong on every row of a large export holds its distinct values only.
    """
    issues = ", ".join(
        f"{{'k': {k}, 'chk': CAST({ident('_check:' + c)} AS VARCHAR), "
        f"'raw': CAST({ident('_raw:' + c)} AS VARCHAR)}}"
        for k, c in enumerate(columns)
    )
    flagged = ident("wm_flagged_" + table)
    any_issue = " OR ".join(f"{ident('_check:' + c)} IS NOT NULL" for c in columns)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {flagged} AS SELECT i.k AS k, i.chk AS chk, i.raw AS raw, "
        "count(*) AS n, first(_file ORDER BY _file, _row) AS f, first(_row ORDER BY _file, _row) AS r "
        f"FROM (SELECT unnest([{issues}]) AS i, _file, _row FROM {ident('wm_m_' + table)} WHERE {any_issue}) "
        "WHERE i.chk IS NOT NULL GROUP BY ALL"
    )
    return flagged


def column_issues(con: duckdb.DuckDBPyConnection, flagged: str, *, k: int, where: str) -> list[Issue]:
    """Issues of the ``k``-th column of ``flagged`` (``flagged_rows``), by reason and value, most first."""
    rows = con.execute(
        f"SELECT chk, raw, n, f, r, count(*) OVER (), sum(n) OVER () FROM {flagged} WHERE k = {int(k)} "
        f"ORDER BY n DESC, raw LIMIT {MAX_VALUES_PER_RULE}"
    ).fetchall()
    issues = [Issue(where, value, reason, int(n), str(f), int(r)) for reason, value, n, f, r, _, _ in rows]
    if rows and int(rows[0][5]) > len(rows):  # the rest, said on the last one listed
        listed = sum(i.count for i in issues)
        more_values, more_rows = int(rows[0][5]) - len(rows), int(rows[0][6]) - listed
        issues[-1] = replace(issues[-1], more_values=more_values, more_rows=more_rows)
    return issues


def duplicate_key_issue(
    con: duckdb.DuckDBPyConnection, table: str, *, masked: frozenset[str] = frozenset()
) -> list[Issue]:
    """Keys that still have more than one (different) row, for a table with ``duplicates = "error"``.

    Named as the export wrote them: the first such key's values as written (before pseudonymising;
    ``masked`` ids by their shape) and the file and rows of its first two rows, so the engineer can
    find them.
    """
    key = TABLES[table].key
    keys = ", ".join(ident(k) for k in key)
    shared = f"SELECT {keys} FROM {ident('wm_out_' + table)} GROUP BY ALL HAVING count(*) > 1"
    staged = ident("wm_m_" + table)
    on_key = " AND ".join(f"m.{ident(k)} IS NOT DISTINCT FROM d.{ident(k)}" for k in key)
    row = con.execute(f"SELECT count(*) FROM {staged} m, ({shared}) d WHERE {on_key}").fetchall()[0]
    if not row or not row[0]:
        return []
    written = _written_key(con, staged, key=key, masked=masked)
    first = con.execute(
        f"WITH d AS ({shared} ORDER BY ALL LIMIT 1) "
        f"SELECT m._file, m._row, concat_ws(' ', {written}) FROM {staged} m, d "
        f"WHERE {on_key} ORDER BY m._file, m._row LIMIT 2"
    ).fetchall()
    also = f"; also {first[1][0]} row {first[1][1]}" if len(first) > 1 else ""
    reason = (
        f"is the {', '.join(key)} of rows that differ (a duplicate key{also}; set duplicates = "
        '"first" or "last", with order_by, to choose one, or correct the export)'
    )
    file, line, value = first[0] if first else ("(the mapped rows)", 0, "")
    return [Issue(f"tables.{table}", str(value), reason, int(row[0]), str(file), int(line))]


def _written_key(
    con: duckdb.DuckDBPyConnection, staged: str, *, key: tuple[str, ...], masked: frozenset[str] = frozenset()
) -> str:
    """SQL for a key's columns as the export wrote them (before pseudonymising), where kept.

    A column in ``masked`` (one the mapping pseudonymises) by its shape only (``shape_sql``).
    """
    have = {str(r[0]) for r in con.execute(f"DESCRIBE {staged}").fetchall()}
    written = [(k, ident(f"_raw:{k}") if f"_raw:{k}" in have else ident(k)) for k in key]
    return ", ".join(shape_sql(sql) if k in masked else sql for k, sql in written)


def shape_sql(value: str) -> str:
    """SQL: ``value`` as its shape (``shape``): each digit 9 (in its own script), each letter A."""
    nines = f"translate(CAST({value} AS VARCHAR), {literal(OTHER_DIGITS)}, {literal(_OTHER_NINES)})"
    digits = f"regexp_replace({nines}, '[0-9]', '9', 'g')"
    return f"regexp_replace({digits}, '\\pL', 'A', 'g')"


def pseudonymised(mapping: Mapping) -> frozenset[str]:
    """The contract columns ``mapping`` pseudonymises: their values are never printed, only their shape.

    A Colombian university keyed students by their national identity number (CC, TI): its duplicate
    keys, contract refusals and the dry run's join report printed the numbers on the console, in the
    output people paste into tickets. The row is named by its file and line; the shape says the form.
    """
    return frozenset(mapping.pseudonymise.columns) if mapping.pseudonymise is not None else frozenset()


def unordered_issue(
    con: duckdb.DuckDBPyConnection, table: str, *, spec: TableSpec, masked: frozenset[str] = frozenset()
) -> list[Issue]:
    """Rows with an empty ``order_by`` sharing their key with rows that have one (``duplicates`` first/last).

    Such a row is never kept while another has a value, whichever is meant: a Spanish university's July
    resit results, graded but not yet dated, lost to January's fail, and 647 passes became fails
    without a word. Which comes first or last cannot be told, so the import is refused.
    """
    key = TABLES[table].key
    keys = ", ".join(ident(k) for k in key)
    staged = ident("wm_m_" + table)
    written = _written_key(con, staged, key=key, masked=masked)
    rows = con.execute(
        f"SELECT count(*) OVER (), _file, _row, concat_ws(' ', {written}) FROM ("
        f"SELECT *, count(*) OVER (PARTITION BY {keys}) AS wm_n, "
        f"count(_order) OVER (PARTITION BY {keys}) AS wm_o FROM {staged}) "
        "WHERE wm_n > 1 AND _order IS NULL AND wm_o > 0 ORDER BY _file, _row LIMIT 1"
    ).fetchall()
    if not rows:
        return []
    order = _order_name(spec)
    n, file, line, value = rows[0]
    reason = (
        f"is the {', '.join(key)} of rows some of which have no {order!r} to order them by: which is "
        f"{spec.duplicates} cannot be told (a row with none is never kept while another has one). Fill it "
        "in the export, drop such rows, or order by a column every row has"
    )
    return [Issue(f"tables.{table}", str(value), reason, int(n), str(file), int(line))]


def _order_name(spec: TableSpec) -> str:
    return spec.order_by.column if spec.order_by is not None and spec.order_by.column else "order_by"


def tied_note(
    con: duckdb.DuckDBPyConnection, table: str, *, spec: TableSpec, masked: frozenset[str] = frozenset()
) -> str:
    """A note of rows sharing their key and their ``order_by`` value that differ once mapped; or "".

    Which of them is first or last the extract's order chooses: a US university's lecture and lab rows
    of one registration, registered the same day, kept the lab row, without a grade, for 384 of a
    course's 822 students, in silence. Said, not refused: same-day attempts in the order an export
    writes them are a choice an institution may mean.
    """
    key = TABLES[table].key
    keys = ", ".join(ident(k) for k in key)
    staged = ident("wm_m_" + table)
    mapped = [c for c in spec.columns if c not in key]
    if not mapped:
        return ""
    content = "concat_ws(chr(31), " + ", ".join(
        f"coalesce(CAST({ident(c)} AS VARCHAR), chr(30))" for c in mapped
    )
    written = _written_key(con, staged, key=key, masked=masked)
    rows = con.execute(
        f"SELECT count(*) OVER (), _file, _row, concat_ws(' ', {written}) FROM ("
        f"SELECT *, count(DISTINCT {content})) OVER (PARTITION BY {keys}, _order) AS wm_d FROM {staged} "
        "WHERE _order IS NOT NULL) WHERE wm_d > 1 ORDER BY _file, _row LIMIT 1"
    ).fetchall()
    if not rows:
        return ""
    n, file, line, value = rows[0]
    return (
        f"{n:,} rows share their {', '.join(key)} and their {_order_name(spec)!r} with a row that differs "
        f"(first: {value!r}, {file} row {line}): the {spec.duplicates} in the extract's order is kept. If "
        "some rows are not the record (a lab section beside its lecture, say), leave them out with the "
        "input's drop; otherwise order by a column that tells them apart"
    )


def _spelled_otherwise(con: duckdb.DuckDBPyConnection, *, table: str, issues: list[Issue]) -> list[Issue]:
    """Issues of values naming no presentation (or assessment), with one spelled otherwise if any.

    Otherwise only in case or accents (``folding.folded``).

    A Turkish Moodle writes "fiz101" for the records' "FİZ101"; ``case = "upper"`` gave "FIZ101", which
    named no presentation, and nothing said how near it was.
    """
    if not issues:
        return issues
    known_sql = (
        "SELECT DISTINCT assessment_id FROM wm_assessment_presentations"
        if table in BY_ASSESSMENT
        else "SELECT DISTINCT concat_ws(' ', module_id, presentation_id) FROM wm_starts"
    )
    known: dict[str, str] = {}
    for (value,) in con.execute(known_sql).fetchall():
        known.setdefault(folded(str(value)), str(value))
    out = []
    for issue in issues:
        near = known.get(folded(issue.value)) if issue.value is not None else None
        if near is not None and issue.value is not None and near != issue.value:
            turkish = any(c in near + issue.value for c in TURKISH_I)
            how = (
                'case = "turkish-upper" or "turkish-lower" on the id columns (Turkish pairs dotted i with '
                "İ, and the dotless one with I)"
                if turkish
                else 'case = "upper" or "lower" on the id columns'
            )
            issue = replace(
                issue,
                reason=f"{issue.reason} ({near!r} is there, spelled otherwise only in case or accents: "
                f"{how})",
            )
        out.append(issue)
    return out


#: Each other script's digits' nine, in ``OTHER_DIGITS``' order: a shape keeps the script its digits
#: are written in (a Nepali office's \u096d-\u0968-\u096a\u0969 is not the student file's 7-2-43, and
#: both had read 9-9-99).
_OTHER_NINES = "".join(chr(ord(c) - int(c) + 9) for c in OTHER_DIGITS)


def shape(value: str) -> str:
    """A value with each digit written 9 (in its own script) and each letter A: its form, not what it says."""
    return "".join(
        ("9" if c in "0123456789" else chr(ord(c) - int(c) + 9) if c in OTHER_DIGITS else "9")
        if c.isdigit()
        else "A"
        if c.isalpha()
        else c
        for c in value
    )


#: Digits from which a value a pattern did not read is taken for an identity number (a course code
#: has three or four; a henkilötunnus nine, a Norwegian fødselsnummer eleven).
ID_DIGITS = 6


def looks_like_an_id(value: str) -> bool:
    """Whether ``value`` may be an identity number: printed only by its shape where a rule names it.

    Six digits or more (a henkilötunnus, a national number, a CC), or a code of ten or more letters
    and digits, two of them digits, with no lower case and no space (an Italian codice fiscale, whose
    duplicates trade digits for letters, and one cut short). A word (an activity name, an outcome
    such as "Transferred" or "RETAKE") is not.
    """
    digits = sum(c.isdigit() for c in value)
    if digits >= ID_DIGITS:
        return True
    alnum = sum(c.isalnum() for c in value)
    return digits >= 2 and alnum >= 10 and not any(c.islower() or c.isspace() for c in value)


def _id_sources(spec: TableSpec, masked: frozenset[str]) -> set[str]:
    """The source columns of ``spec``'s contract columns in ``masked`` (a pseudonymised id's)."""
    sources: set[str] = set()
    for name in masked & set(spec.columns):
        rule = spec.columns[name]
        sources |= {rule.column} if isinstance(rule.column, str) else set()
        sources |= set(rule.columns)
    return sources


def _by_shape(issue: Issue, *, always: bool = False) -> Issue:
    """An issue of a column read by ``patterns``, its value named by its shape where it may be an id.

    Patterns read a characteristic out of a code (the legal sex in a henkilötunnus's second-to-last
    digit), and a code that fits none is most often an identity number written otherwise: printed
    whole, a Finnish college's refusal put a student's birth date and number in its console and logs.
    """
    if issue.value is None or (not always and not looks_like_an_id(issue.value)):
        return issue  # an activity name ("mod_forum_viewed") a pattern did not catch, named as written
    why = (
        "an id the mapping pseudonymises"
        if always
        else "a value read by patterns or extract may be an identity number"
    )
    return replace(
        issue,
        value=shape(issue.value),
        reason=f"{issue.reason} (shown by its shape, a digit written 9 and a letter A: {why})",
    )


#: The Turkish letters a plain change of case turns into another letter: capital dotted I, dotless i.
TURKISH_I = ("\u0130", "\u0131")


def table_coverage(
    con: duckdb.DuckDBPyConnection, mapping: Mapping, *, table: str, inputs: dict[str, InputStats]
) -> TableCoverage:
    """Rows and issues of one built table."""
    spec = mapping.tables[table]
    masked = pseudonymised(mapping)
    issues: list[Issue] = []
    columns = [*spec.columns, "(presentation)"]
    flagged = flagged_rows(con, table, columns=columns)
    try:
        for k, column in enumerate(columns):
            where = f"tables.{table}.columns.{column}" if column in spec.columns else f"tables.{table}"
            found = column_issues(con, flagged, k=k, where=where)
            if column in masked:  # an id the mapping pseudonymises: never printed
                found = [_by_shape(i, always=True) for i in found]
            elif column in spec.columns and (spec.columns[column].patterns or spec.columns[column].extract):
                found = [_by_shape(i) for i in found]
            if column == "(presentation)":
                found = _spelled_otherwise(con, table=table, issues=found)
            issues += found
    finally:
        con.execute(f"DROP TABLE IF EXISTS {flagged}")
    if TABLES[table].key and spec.duplicates == "error" and not issues:
        issues += duplicate_key_issue(con, table, masked=masked)
    tied = ""
    if TABLES[table].key and spec.duplicates != "error" and spec.order_by is not None and not issues:
        issues += unordered_issue(con, table, spec=spec, masked=masked)
        tied = "" if issues else tied_note(con, table, spec=spec, masked=masked)
    matched, first = _matched(con, table, source=spec.from_) if spec.join else (None, "")
    on: tuple[str, ...] = tuple(dict.fromkeys(c for j in spec.join for c in j.on))
    hidden = _id_sources(spec, masked)
    hidden |= {mine for j in spec.join for mine, theirs in j.on.items() if theirs in hidden}
    unmatched = _unmatched_keys(con, table, source=spec.from_, on=on, hidden=hidden) if first else (0, ())
    keys, examples = unmatched
    rows_in = inputs[spec.from_].rows_kept
    if matched == 0 and rows_in > 0:  # every row dropped: a join on ids written two ways, or a filter
        issues += _nothing_joined(con, spec, table=table, rows=rows_in, first=first, examples=examples)
    kept = _kept_unmatched(con, spec)
    for at, _, hits, _, _ in kept:
        if hits == 0 and rows_in > 0 and not issues:  # every row kept, none with the joined columns
            issues += _nothing_joined(con, spec, table=table, rows=rows_in, first="", examples=(), only=at)
    aggregated = table == "activity" and spec.aggregate is not None
    return TableCoverage(
        passed_over=_passed_over(con, spec),
        defaulted=_defaulted(con, table, masked=masked),
        tied=tied,
        table=table,
        rows_in=rows_in,
        rows_joined=_count(con, "wm_a_" + table),
        rows_out=_count(con, "wm_out_" + table),
        issues=tuple(issues),
        folded=_folded(table, spec),
        rows_matched=matched,
        first_unmatched=first,
        unmatched_on=on if keys else (),
        unmatched_keys=keys,
        unmatched_examples=examples,
        kept_unmatched=tuple((joined, hits, rows, orphans) for _, joined, hits, rows, orphans in kept),
        aggregated=aggregated,
        same_key_copies=_same_key_copies(con, spec)
        if aggregated and spec.join and joins_copy(con, spec)
        else 0,
    )


#: Values listed in a note of values given a value map's default.
DEFAULTED_SHOWN = 5


def _defaulted(con: duckdb.DuckDBPyConnection, table: str, *, masked: frozenset[str]) -> tuple[str, ...]:
    """A note for each column whose value map's ``default`` gave at least half its non-empty values.

    In the whole import, or in one presentation of it. A ready mapping's ``default = "other"`` takes
    the activity types no key names, a few of a platform's hundred; an export in another language, or
    a platform upgrade that renamed its events, falls to the default whole: an Argentine university's
    Moodle view, in Spanish from 2025, had made every action of that year's presentations activity of no
    kind without a word, beside earlier years read as forums and quizzes. A person's id (and any
    column the mapping pseudonymises) is not listed.
    """
    staged = ident("wm_a_" + table)
    have = [str(r[0]) for r in con.execute(f"DESCRIBE {staged}").fetchall()]
    notes = []
    for flag in (c for c in have if c.startswith("_default:")):
        column = flag.removeprefix("_default:")
        if column in masked or column in {"student_id", "staff_id"}:
            continue
        raw, given_sql = ident("_raw:" + column), f"count(*) FILTER (WHERE {ident(flag)})"
        given, written = con.execute(f"SELECT {given_sql}, count({raw}) FROM {staged}").fetchall()[0]
        most = []
        if "presentation_id" in have and "module_id" in have:
            most = con.execute(
                f"SELECT concat_ws(' ', module_id, presentation_id), {given_sql} AS g, count({raw}) AS w "
                f"FROM {staged} GROUP BY 1 HAVING g > 0 AND 2 * g >= w ORDER BY g DESC, 1"
            ).fetchall()
        if given == 0 or (2 * given < written and not most):
            continue
        top = con.execute(
            f"SELECT {raw}, count(*) FROM {staged} WHERE {ident(flag)} GROUP BY 1 ORDER BY 2 DESC, 1 "
            f"LIMIT {DEFAULTED_SHOWN}"
        ).fetchall()
        listed = ", ".join(f"{v!r} ({int(n):,})" for v, n in top)
        where = (
            f", at least half in {len(most)} presentation{'s' if len(most) > 1 else ''} ("
            + "; ".join(f"{p}: {int(g):,} of {int(w):,}" for p, g, w in most[:DEFAULTED_SHOWN])
            + ("; ..." if len(most) > DEFAULTED_SHOWN else "")
            + ")"
            if most and 2 * given < written
            else ""
        )
        notes.append(
            f"{column}: {int(given):,} of the {int(written):,} rows with a value ({given / written:.0%}) "
            f"matched no value or pattern of its map and took its default{where}; most: {listed}. An "
            "export in another language, or a platform that renamed its values, reads so: add them to the "
            "map if they are not what the default means"
        )
    return tuple(notes)


def _same_key_copies(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> int:
    """Rows of joined activity that copy an input row onto a key it already has (counted once)."""
    keys = [ident(c) for c in ACTIVITY_KEY if c in spec.columns]
    row = con.execute(
        f"SELECT count(*) - count(DISTINCT ({', '.join(['_file', '_row', *keys])})) FROM wm_m_activity"
    ).fetchall()
    return int(row[0][0]) if row else 0


def _kept_unmatched(
    con: duckdb.DuckDBPyConnection, spec: TableSpec
) -> tuple[tuple[int, str, int, int, int], ...]:
    """For each join keeping unmatched rows: its place, its input and the input rows that matched it.

    And the joined input's rows, and how many of them matched no row of the table's input as written
    but would with leading zeros, case and separators ignored (``loose_id``; a list of other years'
    students matching nobody is no news; one keyed by numbers a spreadsheet took the zeros of is).
    """
    have = {str(r[0]) for r in con.execute(f"DESCRIBE {ident('wm_in_' + spec.from_)}").fetchall()}
    out = []
    for at, join in enumerate(spec.join):
        if not join.keep_unmatched or not set(join.on) <= have:
            continue
        conds = " AND ".join(
            join_match(f"s.{ident(m)}", f"j.{ident(t)}", join=join) for m, t in join.on.items()
        )
        (found,) = con.execute(
            f"SELECT count(*) FROM {ident('wm_in_' + spec.from_)} s "
            f"WHERE EXISTS (SELECT 1 FROM {ident('wm_in_' + join.input)} j WHERE {conds})"
        ).fetchall()[0]
        source = ident("wm_in_" + spec.from_)
        near = " AND ".join(
            f"{loose_id('s.' + ident(m))} = {loose_id('j.' + ident(t))}" for m, t in join.on.items()
        )
        rows, orphans = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM {source} s WHERE {conds}) "
            f"AND EXISTS (SELECT 1 FROM {source} s WHERE {near})) FROM {ident('wm_in_' + join.input)} j"
        ).fetchall()[0]
        out.append((at, join.input, int(found), int(rows), int(orphans)))
    return tuple(out)


#: Values listed for each column left empty on rows no ``when`` names.
PASSED_OVER_SHOWN = 5


def _passed_over(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> tuple[str, ...]:
    """Each column read under ``when``: its when columns' values on rows it leaves empty and no when names.

    Most rows first; a note, never an issue. A Scottish university took the outcome from the status
    for the leaving ones (``when``) and from the grade otherwise: a status written WITHDRAWN, not in the
    list, fell to the grade, empty, and 30 withdrawals became "not known yet" without a word (the same
    value without ``when`` is an error). Only rules reading columns of the table's own input are read.
    """
    have = {str(r[0]) for r in con.execute(f"DESCRIBE {ident('wm_in_' + spec.from_)}").fetchall()}
    prefix = f"{spec.from_}."

    def own(column: str | None) -> str | None:  # "resultats.Session" is the own input's Session
        if column is not None and column.startswith(prefix) and column[len(prefix) :] in have:
            return column[len(prefix) :]
        return column

    out = []
    for name, first in spec.columns.items():
        chain: list[ColumnSpec] = []
        rule: ColumnSpec | None = first
        while rule is not None:
            chain.append(
                rule.model_copy(
                    update={
                        "column": own(rule.column),
                        "when": {str(own(k)): v for k, v in rule.when.items()},
                    }
                )
            )
            rule = rule.otherwise
        whens = [r.when for r in chain if r.when]
        named = sorted({c for w in whens for c in w})
        if not whens or any(r.column is None or r.column not in have for r in chain) or set(named) - have:
            continue

        def cell(column: str) -> str:
            return trimmed(f"s.{ident(column)}")

        read = [
            f"(CASE WHEN {when_sql(r.when, cell)} THEN {cell(str(r.column))} END)"
            if r.when
            else cell(str(r.column))
            for r in chain
        ]
        values = " || ' / ' || ".join(f"coalesce({cell(c)}, '(empty)')" for c in named)
        rows = con.execute(
            f"SELECT {values}, count(*) FROM {ident('wm_in_' + spec.from_)} s "
            f"WHERE NOT ({' OR '.join(when_sql(w, cell) for w in whens)}) "
            f"AND coalesce({', '.join(read)}) IS NULL "
            f"GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {PASSED_OVER_SHOWN + 1}"
        ).fetchall()
        if rows:
            listed = ", ".join(
                f"{v} ({int(n):,} row{'' if n == 1 else 's'})" for v, n in rows[:PASSED_OVER_SHOWN]
            )
            more = " and more" if len(rows) > PASSED_OVER_SHOWN else ""
            out.append(
                f"{name}: left empty on rows no when of its rule names, by {' / '.join(named)}: {listed}"
                f"{more} (a value written otherwise than the when lists falls through to the next rule too)"
            )
    return tuple(out)


def loose_id(value: str, *, letters_before: bool = False, suffix: bool = False) -> str:
    """SQL: an id as a comparison that ignores case, whitespace, separators and leading zeros.

    With ``letters_before``, letters before its digits too: a booking system's hc02300407 is the
    records' 02300407 (compared only with an id that starts with a digit: PHY101 is not ENG101).
    With ``suffix``, one or two digits after a last separator too: a UK record system's SPR code
    12345678/1 is the student 12345678 (its "/1" numbers the student's programme route).
    """
    text = f"lower(CAST({value} AS VARCHAR))"
    if suffix:
        text = f"regexp_replace({text}, '[/.:_ -]\\pN{{1,2}}$', '')"
    letters = f"regexp_replace({text}, '[^\\pL\\pN]', '', 'g')"
    if letters_before:
        letters = f"regexp_replace({letters}, '^\\pL+(\\pN)', '\\1')"
    return f"ltrim({letters}, '0')"


#: Rows of an input tried against a join's input with ``loose_id`` keys (a sample is enough to tell).
LOOSE_SAMPLE = 100_000


def _nothing_joined(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    *,
    table: str,
    rows: int,
    first: str,
    examples: tuple[str, ...],
    only: int | None = None,
) -> list[Issue]:
    """A table none of whose rows a join kept, where ids written otherwise would have matched: refused.

    Written, it had been an empty table (or an append adding nothing) with the source recorded as in
    use: every student's activity from it missing, read as each one going quiet (user ids a spreadsheet
    wrote "1,001", numbers without their leading zeros). A join used as a filter (a course list) that
    keeps nothing of a quiet extract is not refused: no row would match however the ids were written.
    """
    have = {str(r[0]) for r in con.execute(f"DESCRIBE {ident('wm_in_' + spec.from_)}").fetchall()}
    for i, join in enumerate(spec.join):
        if only is not None and i != only:
            continue
        pairs = [(mine, theirs) for mine, theirs in join.on.items() if mine in have]
        if len(pairs) < len(join.on):  # a key an earlier join brings: not comparable on its own
            continue
        sample = f"(SELECT * FROM {ident('wm_in_' + spec.from_)} LIMIT {LOOSE_SAMPLE}) s"
        joined = ident("wm_in_" + join.input)
        (given,) = con.execute(f"SELECT count(*) FROM {joined}").fetchall()[0]
        if not given and join.keep_unmatched:  # none this time (no interruption this term): every row kept
            continue
        if not given:  # nothing to match: its files hold no rows, or its keep or drop left none
            return [
                Issue(
                    f"tables.{table}.join[{i}]",
                    None,
                    f"matched no row of the joined input: {join.input} has no rows to match (its files "
                    "hold none, or its keep and drop left none: check them against the values its files "
                    "write)",
                    rows,
                    first.rpartition(" row ")[0] or "(the input)",
                    0,
                )
            ]
        exact = " AND ".join(join_match(f"s.{ident(m)}", f"j.{ident(t)}", join=join) for m, t in pairs)
        (kept,) = con.execute(
            f"SELECT count(*) FROM {sample} WHERE EXISTS (SELECT 1 FROM {joined} j WHERE {exact})"
        ).fetchall()[0]
        if kept:  # this join keeps rows as written: another one dropped them (a Finnish university's
            continue  # course map was blamed for the participants list a role filter had emptied)
        filled = " AND ".join(f"{loose_id('s.' + ident(m))} <> ''" for m, _ in pairs)
        # Each key alike, or alike with the letters before the digits of one side left out (an equal
        # join on the keys without them, so a hash join; then which side had none).
        alike = []
        for m, t in pairs:
            mine, theirs = loose_id("s." + ident(m)), loose_id("j." + ident(t))
            mine_bare = loose_id("s." + ident(m), letters_before=True)
            theirs_bare = loose_id("j." + ident(t), letters_before=True)
            alike += [
                f"{mine_bare} = {theirs_bare}",
                f"({mine} = {theirs} OR {mine} = {mine_bare} OR {theirs} = {theirs_bare})",
            ]
        (loose,) = con.execute(
            f"SELECT count(*) FROM {sample} "
            f"WHERE {filled} AND EXISTS (SELECT 1 FROM {joined} j WHERE {' AND '.join(alike)})"
        ).fetchall()[0]
        ignored = "case, whitespace, separators, a prefix of letters and leading zeros ignored"
        if not loose:  # alike once a numbered suffix is left out of either side (SITS's "/1"), of a
            # student number (six digits or more: CS101-1 and CS101-2 are two presentations)
            stems = [
                f"(CASE WHEN regexp_matches(CAST(s.{ident(m)} AS VARCHAR), '\\pN{{6}}') "
                f"THEN {loose_id('s.' + ident(m), suffix=True)} = {loose_id('j.' + ident(t), suffix=True)} "
                f"ELSE {loose_id('s.' + ident(m))} = {loose_id('j.' + ident(t))} END)"
                for m, t in pairs
            ]
            (loose,) = con.execute(
                f"SELECT count(*) FROM {sample} "
                f"WHERE {filled} AND EXISTS (SELECT 1 FROM {joined} j WHERE {' AND '.join(stems)})"
            ).fetchall()[0]
            ignored = 'case, separators and a numbered suffix such as "/1" ignored'
        if not loose:
            continue
        on = ", ".join(f"{mine} = {join.input}.{theirs}" for mine, theirs in join.on.items())
        file, _, line = first.rpartition(" row ")
        return [
            Issue(
                f"tables.{table}.join[{i}]",
                examples[0] if examples else None,
                "matched no row of the joined input: "
                + (
                    f"every one of the {rows:,} rows would be written with its columns empty ({on}), "
                    if join.keep_unmatched
                    else f"none of the {rows:,} rows would be written ({on}), "
                )
                + f"where {int(loose):,} of them would match with {ignored}. A join compares the values as "
                "the files write them (ignore_case = true for case); a column's rules (case, strip_prefix, "
                "replace, pad, prefix) do not apply to join keys: correct the export that writes them "
                "otherwise, or join on another column",
                rows,
                file or "(the input)",
                int(line) if line.isdigit() else 0,
            )
        ]
    return []


def _matched(con: duckdb.DuckDBPyConnection, table: str, *, source: str) -> tuple[int, str]:
    """How many rows of ``source`` the joins of ``table`` kept (once each), and the first they dropped."""
    staged, given = ident("wm_a_" + table), ident("wm_in_" + source)
    row = con.execute(f"SELECT count(*) FROM (SELECT DISTINCT _file, _row FROM {staged})").fetchall()[0]
    missing = con.execute(
        f"SELECT _file, _row FROM {given} s WHERE NOT EXISTS "
        f"(SELECT 1 FROM {staged} a WHERE a._file = s._file AND a._row = s._row) ORDER BY _file, _row LIMIT 1"
    ).fetchall()
    first = f"{missing[0][0]} row {missing[0][1]}" if missing else ""
    return int(row[0]), first


#: Unmatched join values named in the dry run's report (the rest are counted), as the export wrote them:
#: on the console and in --format json, never in the data folder.
UNMATCHED_EXAMPLES = 3
EMPTY_KEY = "(empty)"


def _unmatched_keys(
    con: duckdb.DuckDBPyConnection,
    table: str,
    *,
    source: str,
    on: tuple[str, ...],
    hidden: set[str] | frozenset[str] = frozenset(),
) -> tuple[int, tuple[str, ...]]:
    """The distinct values of the join's own columns among the rows no join kept, and the first few.

    A column in ``hidden`` (the source of an id the mapping pseudonymises) is given by its shape.
    """
    staged, given = ident("wm_a_" + table), ident("wm_in_" + source)
    have = {str(r[0]) for r in con.execute(f"DESCRIBE {given}").fetchall()}
    columns = [c for c in on if c in have]
    if not columns:
        return 0, ()
    # An empty key (often why a staff row drops) is said as such, not as nothing.
    parts = ", ".join(f"CAST({ident(c)} AS VARCHAR)" for c in columns)
    rows = con.execute(
        f"SELECT DISTINCT {parts} FROM {given} s WHERE NOT EXISTS "
        f"(SELECT 1 FROM {staged} a WHERE a._file = s._file AND a._row = s._row)"
    ).fetchall()

    def said(column: str, value: object) -> str:
        if value is None:
            return EMPTY_KEY
        text = str(value)
        return shape(text) if column in hidden or looks_like_an_id(text) else text

    # counted as written, named by their shape where they are a pseudonymised id or look like one
    values = sorted(tuple("" if v is None else str(v) for v in row) for row in rows)
    named = [
        " / ".join(said(c, v or None) for c, v in zip(columns, row, strict=True))
        for row in values[:UNMATCHED_EXAMPLES]
    ]
    return len(values), tuple(named)


def _folded(table: str, spec: TableSpec) -> str:
    """Why a table's rows out can be fewer than its rows in (``convert.out_sql``)."""
    # A law school's log joined to enrolments with within_presentation: 16,876 rows dated in other
    # years were said to be "added up into one daily count".
    outside = (
        "; rows dated outside their presentation are left out (within_presentation)"
        if table == "activity" and spec.within_presentation
        else ""
    )
    if table == "activity" and spec.count_distinct is not None:
        return (
            "rows of one student, presentation, day, source and type are counted once for each distinct "
            "value of count_distinct (a check-in made twice to one session is one)" + outside
        )
    if table == "activity" and spec.aggregate is not None:
        return (
            "rows of one student, presentation, day, source and type are added up into one daily count"
            + outside
        )
    if not TABLES[table].key:
        return ""
    if spec.duplicates in ("first", "last"):
        which = spec.duplicates
        return f'rows sharing a key are kept once, the {which} by order_by (duplicates = "{which}")'
    return "identical rows are kept once"


def unused_columns(mapping: Mapping, inputs: dict[str, InputStats]) -> dict[str, tuple[str, ...]]:
    """Per input, the columns no rule reads and no table ignores."""
    named: set[str] = set()
    for spec in mapping.tables.values():
        named.update(spec.ignore)
        rules = [rule for c in spec.columns.values() for rule in c.chain()]
        named.update(c.column for c in rules if c.column)
        named.update(c.out_of for c in rules if isinstance(c.out_of, str))
        named.update(c.zone for c in rules if c.zone)
        named.update(name for c in rules for name in c.when)
        named.update(part for c in rules for part in c.columns)
        for extra in (spec.order_by, spec.count_distinct):
            if extra is not None:
                named.update([extra.column] if extra.column else extra.columns)
        for join in spec.join:
            named.update(join.on)
            named.update(join.on.values())
    for spec_in in mapping.inputs.values():
        named.update(spec_in.keep)
        named.update(spec_in.drop)
    result = {}
    for name, stats in inputs.items():
        unused = tuple(c for c in stats.columns if c not in named and f"{name}.{c}" not in named)
        if unused:
            result[name] = unused
    return result
