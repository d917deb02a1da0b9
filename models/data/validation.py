"""Check a data folder against the contract and report every broken rule.

Checks run in DuckDB over views of the files, so a folder of a hundred million activity rows is
checked without loading it into memory. Each rule is one query that returns the offending rows;
each broken rule becomes one Finding with its count and the first rows it found.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

from waymark.models.data.contract import (
    DEFAULT_SOURCE_LABELS,
    FEATURE_TABLES,
    PROTECTED_COLUMN_NAMES,
    TABLES,
    Column,
    Kind,
    Table,
    final_exams_sql,
)
from waymark.models.data.findings import ContractViolation, Example, Finding, Severity, ValidationReport
from waymark.models.data.guidance import folder_warnings
from waymark.models.data.notice import declared, kinds, source_use, source_use_warnings
from waymark.models.data.platform import platform_sources, platform_type_findings, platform_types_sql
from waymark.models.data.reading import OpenedTable, locate, open_table
from waymark.models.data.sensitive import (
    Term,
    configured_terms,
    parse_terms,
    sensitive_category_findings,
    sensitive_term,
)
from waymark.models.data.spelling import spelled_two_ways, written_values_sql
from waymark.models.data.sqltext import ident, literal
from waymark.models.ids import UNSEEN_CLASS_RE2, UNSEEN_NAMED
from waymark.models.roles import RELATIONSHIP_SCOPES
from waymark.models.threads import duckdb_connect
from waymark.models.vocabulary import labelling_sql

DEFAULT_MAX_EXAMPLES = 100
_INT_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
)
_FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL")
_IDENTIFIER = "[a-z][a-z0-9_]*"
_WHOLE = "[+-]?[0-9]{1,18}"
_INTEGRAL_DECIMAL = _WHOLE + "\\.0+"  # 150.0: how pandas writes an integer column with gaps
# A calendar date (ISO, or day/month/year with / . or -), optionally followed by a time of day.
_DATE_TEXT = "([0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{1,2}[/.-][0-9]{1,2}[/.-][0-9]{2,4})([ T].*)?"


@dataclass(frozen=True)
class Rule:
    """One check: a query returning offending rows as (_file, _row, value, key...)."""

    table: str
    column: str | None
    rule: str
    message: str
    sql: str
    key_columns: tuple[str, ...] = ()
    severity: Severity = "error"
    values: bool = False  # the finding lists the distinct offending values and their counts


def connect(memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection for validation, with bounded threads and memory (``models.threads``)."""
    con = duckdb_connect(memory_limit=memory_limit)
    con.execute("SET preserve_insertion_order = true")
    return con


def validate_folder(
    folder: Path,
    *,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
    con: duckdb.DuckDBPyConnection | None = None,
    sensitive_terms: tuple[Term, ...] | None = None,
) -> ValidationReport:
    """Check every contract table in ``folder``.

    Parameters
    ----------
    folder
        A data folder in the contract.
    max_examples
        How many offending rows to list per broken rule (all are counted).
    con
        A DuckDB connection to register the typed views ``t_<table>`` on; a new one if None.
    sensitive_terms
        Terms activity source and type names may not contain (``sensitive.configured_terms()`` if None).

    Returns
    -------
    ValidationReport
        Every broken rule with table, column, rule, count and rows.
    """
    con = con or connect()
    if not folder.is_dir():
        missing = Finding("(folder)", "missing_folder", f"{folder} is not a folder")
        return ValidationReport(str(folder), (missing,), {}, ())
    findings, opened, located, typed = _open_views(folder, con=con, tables=tuple(TABLES))
    counts = {n: _count(con, n) for n in typed}
    findings += _run_all(con, list(contract_rules(opened, typed)), max_examples=max_examples)
    findings += row_count_findings(counts)
    for column in characteristics(opened):
        if not names_criminal_offences(column):  # refused without its values
            findings += spelled_two_ways(column, con.execute(written_values_sql(column)).fetchall())
    if "activity" in opened:
        findings += sensitive_category_findings(con, sensitive_terms or configured_terms())
        platform = platform_sources(kinds(declared(con)))
        findings += platform_type_findings(con.execute(platform_types_sql(platform)).fetchall())
    warnings = folder_warnings(folder, counts, located=located)
    warnings += [f for f in findings if f.severity == "warning"]
    if {"activity", "presentations"} <= typed:
        warnings += source_use_warnings(source_use(con))
    errors = tuple(f for f in findings if f.severity == "error")
    return ValidationReport(str(folder), errors, counts, tuple(opened), warnings=tuple(warnings))


def characteristics(opened: dict[str, OpenedTable]) -> list[str]:
    """The characteristics of the folder's protected_characteristics table (none if not opened)."""
    table = opened.get("protected_characteristics")
    return [] if table is None else [c for c in table.types if c != "student_id"]


def open_views(folder: Path, *, con: duckdb.DuckDBPyConnection, tables: tuple[str, ...]) -> bool:
    """Register the typed views ``t_<table>`` of ``tables`` on ``con`` without checking any rule.

    Only for a folder known to pass (``memo``): reading it then costs no more than reading it.
    An absent optional feature table is read as no rows, as after validation.

    Returns
    -------
    bool
        False if a table could not be opened as validation would open it (the folder changed
        since): the caller must validate it instead.
    """
    if not folder.is_dir():
        return False
    findings, opened, located, _ = _open_views(folder, con=con, tables=tables)
    return not any(f.severity == "error" for f in findings) and set(opened) == located


def _open_views(
    folder: Path, *, con: duckdb.DuckDBPyConnection, tables: tuple[str, ...]
) -> tuple[list[Finding], dict[str, OpenedTable], set[str], set[str]]:
    """Open ``tables`` of ``folder`` and create their typed views; returns what was found on the way.

    Returns the findings of locating and opening, the tables opened, those located (opened or
    not), and those with a typed view (opened, or an absent feature table as an empty view).
    """
    findings: list[Finding] = []
    opened: dict[str, OpenedTable] = {}
    located: set[str] = set()
    for name in tables:
        table = TABLES[name]
        source, problems = locate(folder, table)
        findings += problems
        if source is None:
            continue
        located.add(table.name)
        table_open, problems = open_table(con, source)
        findings += problems
        if table_open is not None:
            header = header_findings(table, table_open)
            findings += header
            if not any(f.rule == "missing_column" for f in header):
                opened[table.name] = table_open
    typed: set[str] = set()
    for name, table_open in opened.items():
        _create_typed_view(con, TABLES[name], opened=table_open)
        typed.add(name)
    for name in FEATURE_TABLES:  # an optional feature table that is absent is read as no rows
        if name in tables and name not in located:
            _create_empty_view(con, TABLES[name])
            typed.add(name)
    return findings, opened, located, typed


def require_valid(folder: Path) -> tuple[duckdb.DuckDBPyConnection, ValidationReport]:
    """Validate ``folder`` and return the connection holding its typed views.

    Raises
    ------
    ContractViolation
        If any rule is broken: callers never see a half-valid folder.
    """
    con = connect()
    report = validate_folder(folder, con=con)
    if not report.ok:
        raise ContractViolation(report)
    return con, report


# --- header --------------------------------------------------------------------------------


def header_findings(table: Table, opened: OpenedTable) -> list[Finding]:
    """Missing required columns, protected columns outside protected_characteristics, unexpected ones."""
    found = set(opened.columns)
    where = opened.source.display()
    out = [
        Finding(
            table.name, "missing_column", f"{where} has no column {c.name!r} ({c.description})", column=c.name
        )
        for c in table.columns
        if c.required and c.name not in found
    ]
    declared = set(table.column_names)
    for col in opened.columns:
        if col in declared:
            continue
        if col.lower() in PROTECTED_COLUMN_NAMES and table.feature_safe:
            msg = (
                f"{where} has column {col!r}, a protected characteristic; it belongs only in "
                "protected_characteristics, which is never used for features (CoP §4)"
            )
            out.append(Finding(table.name, "protected_column", msg, column=col))
        elif not table.extra_columns_allowed:
            allowed = ", ".join(table.column_names)
            msg = f"{where} has unexpected column {col!r}; the table's columns are: {allowed}"
            out.append(Finding(table.name, "unexpected_column", msg, column=col))
    return out


# --- typed views ---------------------------------------------------------------------------


def _missing(col: str, raw_type: str) -> str:
    c = ident(col)
    if raw_type == "VARCHAR":
        return f"({c} IS NULL OR trim({c}) = '')"
    return f"({c} IS NULL)"


def _typed_expr(column: Column, raw_type: str) -> str:
    """SQL converting the raw column to its contract type; NULL where it cannot be converted."""
    c = ident(column.name)
    text = raw_type == "VARCHAR"
    if column.kind in (Kind.ID, Kind.TEXT):
        if raw_type.startswith(_FLOAT_TYPES) or raw_type.startswith("DECIMAL"):
            return "CAST(NULL AS VARCHAR)"  # 12.0 is not an identifier: reported as a type error
        return f"NULLIF(trim(CAST({c} AS VARCHAR)), '')"
    if column.kind == Kind.INT:
        if text:
            return (
                f"CASE WHEN regexp_full_match(trim({c}), {literal(_WHOLE)}) THEN CAST(trim({c}) AS BIGINT) "
                f"WHEN regexp_full_match(trim({c}), {literal(_INTEGRAL_DECIMAL)}) "
                f"THEN CAST(split_part(trim({c}), '.', 1) AS BIGINT) END"
            )
        if raw_type in _INT_TYPES:
            return f"CAST({c} AS BIGINT)"
        if raw_type.startswith(_FLOAT_TYPES) or raw_type.startswith("DECIMAL"):
            return (
                f"CASE WHEN isfinite(CAST({c} AS DOUBLE)) AND {c} = trunc({c}) "
                f"AND abs({c}) < 1e18 THEN CAST({c} AS BIGINT) END"
            )
        return "CAST(NULL AS BIGINT)"
    if column.kind == Kind.FLOAT:
        expr = f"TRY_CAST(trim({c}) AS DOUBLE)" if text else f"TRY_CAST({c} AS DOUBLE)"
        return f"CASE WHEN isfinite({expr}) THEN {expr} END"
    if column.kind == Kind.DATE:
        if text:
            return (
                f"CASE WHEN regexp_full_match(trim({c}), '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') "
                f"THEN TRY_CAST(trim({c}) AS DATE) END"
            )
        if _zoned(raw_type):  # its date depends on the zone it is read in: refused (``_type_message``)
            return "CAST(NULL AS DATE)"
        return f"TRY_CAST({c} AS DATE)"
    raise ValueError(f"unknown kind {column.kind}")


def _zoned(raw_type: str) -> bool:
    """A timestamp with a time zone: an instant, whose calendar date depends on where it is read."""
    return raw_type.startswith(("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"))


def _create_typed_view(con: duckdb.DuckDBPyConnection, table: Table, *, opened: OpenedTable) -> None:
    con.execute(f"CREATE OR REPLACE TEMP VIEW {ident('t_' + table.name)} AS {typed_view_sql(table, opened)}")


def typed_view_sql(table: Table, opened: OpenedTable) -> str:
    """The query of the typed view ``t_<table>`` over the raw view ``raw_<table>`` (any engine)."""
    selects = ["_file", "_row"]
    for column in table.columns:
        if column.name in opened.types:
            selects.append(f"{_typed_expr(column, opened.types[column.name])} AS {ident(column.name)}")
    for extra in opened.columns:
        if extra not in table.column_names and table.extra_columns_allowed:
            selects.append(f"NULLIF(trim(CAST({ident(extra)} AS VARCHAR)), '') AS {ident(extra)}")
    return f"SELECT {', '.join(selects)} FROM {ident('raw_' + table.name)}"


_SQL_TYPES = {
    Kind.ID: "VARCHAR",
    Kind.TEXT: "VARCHAR",
    Kind.INT: "BIGINT",
    Kind.FLOAT: "DOUBLE",
    Kind.DATE: "DATE",
}


def _create_empty_view(con: duckdb.DuckDBPyConnection, table: Table) -> None:
    con.execute(f"CREATE OR REPLACE TEMP VIEW {ident('t_' + table.name)} AS {empty_view_sql(table)}")


def empty_view_sql(table: Table) -> str:
    """The query of the typed view of an absent optional table: its columns and no rows (any engine)."""
    return f"SELECT {null_columns(table.columns, with_location=True)} WHERE FALSE"


def null_columns(columns: tuple[Column, ...] | list[Column], *, with_location: bool = False) -> str:
    """``CAST(NULL AS <type>) AS <name>`` for each column (after ``_file`` and ``_row`` if asked)."""
    nulls = [f"CAST(NULL AS {_SQL_TYPES[c.kind]}) AS {ident(c.name)}" for c in columns]
    location = ["CAST(NULL AS VARCHAR) AS _file", "CAST(NULL AS BIGINT) AS _row"] if with_location else []
    return ", ".join(location + nulls)


def _count(con: duckdb.DuckDBPyConnection, name: str) -> int:
    rows = con.execute(f"SELECT count(*) FROM {ident('t_' + name)}").fetchall()  # read whole (see notice)
    return int(rows[0][0]) if rows else 0


# --- rules ---------------------------------------------------------------------------------


def contract_rules(opened: dict[str, OpenedTable], typed: set[str]) -> Iterator[Rule]:
    """Every rule to check over the raw views of ``opened`` and the typed views ``typed`` (any engine)."""
    for name, table_open in opened.items():
        table = TABLES[name]
        present = [c for c in table.columns if c.name in table_open.types]
        for column in present:
            yield from _column_rules(
                table, column, raw_type=table_open.types[column.name], raw_columns=set(table_open.types)
            )
        # a key column the contract makes optional (access's valid_from) counts where the file has it
        if table.key and all(k in table_open.types or not table.column(k).required for k in table.key):
            yield _key_rule(table, present=set(table_open.types))
        for ref in table.references:
            if ref.target in typed and all(c in table_open.types for c in ref.columns):
                yield _reference_rule(table, ref.columns, target=ref.target, target_cols=ref.target_columns)
                if name not in _NO_ZEROS_HINT:
                    yield _leading_zeros_rule(
                        table, ref.columns, target=ref.target, target_cols=ref.target_columns
                    )
        if name == "access" and "valid_from" in table_open.types:
            yield _overlapping_periods_rule(
                until="valid_until" in table_open.types, presentation="presentation_id" in table_open.types
            )
        if name == "access" and "presentation_id" in table_open.types:
            yield _presentation_outside_module_rule()
            yield _whole_module_and_presentation_rule()
        if name == "sources" and "counts_as" in table_open.types:
            yield _built_in_kind_rule()
        if name == "sources" and "label" in table_open.types:
            yield _labelling_label_rule()
        if name == "students":  # a national id mapped to programme_id was published beside each pseudonym
            grouping = [c for c in GROUPING_STUDENT_COLUMNS if c in table_open.types]
            yield from (_groups_students_rule(c, i, table="students") for i, c in enumerate(grouping))
        if name == "protected_characteristics":
            characteristics = [c for c in table_open.types if c != "student_id"]
            yield from (_groups_students_rule(c, i) for i, c in enumerate(characteristics))
            yield from (_says_not_recorded_rule(c) for c in characteristics)
            yield from (_one_group_rule(c, i) for i, c in enumerate(characteristics))
            yield from (_criminal_offence_rule(c) for c in characteristics if names_criminal_offences(c))
    yield from _cross_table_rules(typed)


#: Names of criminal-offence data (GDPR art. 10), matched as ``sensitive.Term``s are: a law school's
#: fitness-to-practise disclosures and a prison programme's offence group and sentence length had been
#: audited as characteristics, their groups ("Caution 2019 (spent), possession") published to the
#: committee and their names in the model card and the public transparency statement.
CRIMINAL_OFFENCE_TERMS = parse_terms(
    [
        "criminal*", "criminal conviction*", "spent conviction*", "unspent conviction*",
        "previous conviction*", "conviction record*", "convicted", "offence*", "offense*", "offending",
        "offender*", "sentence length", "sentenced", "custodial", "custody", "prison*",
        "probation officer*", "probation service*", "probation order*", "parole*", "caution*", "dbs",
        "disclosure and barring", "fitness to practi*", "ftp disclosure*", "police record*", "arrest*",
        "incarcerat*", "adjudication*",
    ]
)  # fmt: skip


def names_criminal_offences(column: str) -> bool:
    """Whether a characteristic's name names criminal-offence data.

    Not a religious conviction, nor an academic probation: "conviction" and "probation" alone are not
    terms.
    """
    return sensitive_term(column, CRIMINAL_OFFENCE_TERMS) is not None


def _criminal_offence_rule(column: str) -> Rule:
    """A characteristic named after criminal-offence data is refused (GDPR art. 10; CoP §4)."""
    c = ident(column)
    return Rule(
        "protected_characteristics",
        column,
        "criminal_offence_data",
        f"{column!r} names criminal-offence data (convictions, offences, sentences, custody, cautions, "
        "fitness-to-practise disclosures: GDPR article 10). It is never a characteristic to audit: the "
        "fairness report would publish its groups to the committee, and its name would be in the model "
        "card and the public transparency statement. Leave the column out of the mapping (ignore it)",
        f"SELECT _file, _row, '(criminal-offence data)' AS value FROM raw_protected_characteristics "
        f"WHERE {c} IS NOT NULL AND trim(CAST({c} AS VARCHAR)) <> ''",
    )


#: A characteristic is refused when more than this share of its students hold a value no other student
#: holds (with at least ``_UNIQUE_MIN_STUDENTS`` students): it identifies rather than groups.
_UNIQUE_SHARE = 0.5
_UNIQUE_MIN_STUDENTS = 20


#: ASCII and full-width digits (Japanese forms often write the latter).
_DIGIT = "[0-9\uff10-\uff19]"
_MONTH = (
    r"(jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sept?(ember)?|oct(ober)?"
    r"|nov(ember)?|dec(ember)?)[.]?"
)
#: A value written as a calendar date, with or without a time or a day of the week after it: 2004-03-17,
#: 17.03.2004, 3/17/04, 20040317, 17 March 2004, 17-Mar-04, March 17, 2004, 2004年3月17日 (in ASCII or
#: full-width digits), an era's 平成16年3月17日 or H16.3.17, 2004년 3월 17일, 17 de março de 2004, 17. März
#: 2004: the forms records systems write a date of birth in that this has met.
_DATE_SHAPED = (
    "(?i)("
    f"{_DIGIT}{{1,4}}[-./]{_DIGIT}{{1,2}}[-./]{_DIGIT}{{1,4}}"
    f"|[mtshr]{_DIGIT}{{1,2}}[-./]{_DIGIT}{{1,2}}[-./]{_DIGIT}{{1,2}}"
    f"|\\D{{0,4}}({_DIGIT}{{1,4}}|元)\\s*[年년]\\s*{_DIGIT}{{1,2}}\\s*[月월]\\s*{_DIGIT}{{1,2}}\\s*[日일]?"
    "|(1[89]|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])"
    f"|[0-9]{{1,2}}(st|nd|rd|th)?[ -]?{_MONTH}[ ,-]*[0-9]{{2,4}}"
    f"|{_MONTH}\\s*[0-9]{{1,2}}(st|nd|rd|th)?,?\\s+[0-9]{{2,4}}"
    "|[0-9]{1,2}[.\u00ba]?\\s+(de\\s+)?[a-z\u00e0-\u00ff]{3,10}[.]?,?\\s+(de\\s+)?[0-9]{4}"
    ")([ T(\uff08].*)?"  # a time, or a day of the week in (full-width) brackets
)


#: Columns of ``students`` that group students (shown to staff beside the student's id): one a student
#: holds alone identifies them. An Egyptian university's national id (date of birth, governorate and sex
#: in its digits) mapped to programme_id was published, unhashed, beside each pseudonym.
GROUPING_STUDENT_COLUMNS = ("programme_id", "school_id", "highest_education")


def _groups_students_rule(column: str, n: int, *, table: str = "protected_characteristics") -> Rule:
    """A protected characteristic groups students; a value held by one student alone identifies them.

    Refused when more than half of its students hold a value no other holds (an identity number, or a
    date of birth in a small cohort), or more than half its values are dates (a date of birth in a
    large one, where many students share each date): beside each pseudonym it would undo it.

    Its names are the ``n``-th characteristic's own: the rules run as one query, and Spark's SQL (as
    sqlglot writes it) lifts every ``WITH`` to the top, where two columns' ``v`` would clash and the
    whole validation would fall back to a Spark job per rule.
    """
    c = ident(column)
    prefix = "gs" if table == "protected_characteristics" else "gt"
    v, held, unique, dates = (f"{prefix}{n}_{name}" for name in ("v", "n", "u", "d"))
    dated = f"regexp_full_match({v}.value, {literal(_DATE_SHAPED)})"
    what = (
        "A protected characteristic groups students (an age band, not a date of birth or an identity number)"
        if table == "protected_characteristics"
        else f"{column} groups students (a programme or a school, not an identity number or a date of birth)"
    )
    return Rule(
        table,
        column,
        "groups_students",
        f"{column!r} identifies rather than groups students: more than {_UNIQUE_SHARE:.0%} of the students "
        f"with a value hold a value no other student holds, or more than half its values are dates. {what}, "
        "and a value that identifies a student undoes the pseudonym beside it. Band or group it "
        "in the mapping, or leave the column out",
        f"WITH {v} AS (SELECT _file, _row, trim(CAST({c} AS VARCHAR)) AS value "
        f"FROM raw_{table} WHERE {c} IS NOT NULL AND trim(CAST({c} AS VARCHAR)) <> ''), "
        f"{held} AS (SELECT value, count(*) AS held FROM {v} GROUP BY value), "
        f"{unique} AS (SELECT count(*) FILTER (WHERE held = 1) AS alone, sum(held) AS students FROM {held}), "
        f"{dates} AS (SELECT count(*) FILTER (WHERE {dated}) AS dates FROM {v}) "
        f"SELECT {v}._file, {v}._row, CASE WHEN {dated} THEN '(a date)' "
        f"ELSE '(held by this student alone)' END AS value "
        f"FROM {v} JOIN {held} ON {held}.value = {v}.value CROSS JOIN {unique} CROSS JOIN {dates} "
        f"WHERE {unique}.students >= {_UNIQUE_MIN_STUDENTS} "
        f"AND (({held}.held = 1 AND {unique}.alone > {_UNIQUE_SHARE} * {unique}.students) "
        f"OR ({dates}.dates > {_UNIQUE_SHARE} * {unique}.students AND {dated}))",
    )


#: Values of a characteristic that say nothing is known of it (compared lower-cased, trimmed). Not "x",
#: "u" or "none": a gender, a code or a disability status of their own in some records systems.
SAYS_NOT_RECORDED = (
    "not stated",
    "not known",
    "unknown",
    "prefer not to say",
    "prefer not to answer",
    "prefer not to disclose",
    "information refused",
    "refused",
    "not disclosed",
    "undisclosed",
    "declined",
    "declined to answer",
    "declined to state",
    "not provided",
    "not given",
    "not recorded",
    "not specified",
    "unspecified",
    "not available",
    "not collected",
    "no response",
    "withheld",
    "n/a",
    "na",  # "NA" in an Indian university's first-generation column (a warning: Namibia's code too)
    "n.a.",
    "n/k",
    "missing",
    # IPEDS and US records systems (a community college's review: its "Race and ethnicity unknown" group
    # of 15 students was compared as an ethnicity of its own)
    "race and ethnicity unknown",
    "race/ethnicity unknown",
    "unknown race/ethnicity",
    "unknown race and ethnicity",  # IPEDS's wording since 2023
    "unknown race",
    "not reported",
    "did not respond",
    "decline to state",
    "decline to answer",
    "choose not to disclose",
    "prefer not to respond",
    # The same in the languages of institutions that have tried Waymark, and their neighbours' (records
    # systems export the words their forms show).
    "回答しない",  # Japanese: "no answer", "unknown", "prefer not to answer", "not filled in"
    "無回答",
    "未回答",
    "不明",
    "答えたくない",
    "回答拒否",
    "未記入",
    "不详",  # Chinese: "unknown", "not willing to disclose"
    "未知",
    "不愿透露",
    "未填写",
    "未填",
    "غير محدد",  # Arabic: "not specified", "unknown", "prefer not to say"
    "غير معروف",
    "أفضل عدم الإجابة",
    # an Egyptian university's feminine forms and spellings without hamza had been audited as groups
    # ("لا يوجد" is not here: in a disability column it means "none")
    "غير محددة",
    "غير معروفة",
    "غير معلوم",
    "غير معلومة",
    "غير مسجل",
    "غير مسجلة",
    "لم يحدد",
    "لم تحدد",
    "افضل عدم الاجابة",
    "모름",  # Korean: "unknown", "no answer", "refused"
    "무응답",
    "응답 거부",
    "응답거부",
    "미응답",
    "미기재",
    "알 수 없음",
    "미상",
    "keine angabe",  # German
    "keine angaben",
    "k.a.",
    "unbekannt",
    "nicht angegeben",
    "möchte ich nicht angeben",
    "non renseigné",  # French
    "non communiqué",
    "non déclaré",
    "inconnu",
    "ne souhaite pas répondre",
    "refus de répondre",
    "no consta",  # Spanish, Portuguese, Italian
    "no especificado",  # Mexico's forms
    "no especificada",
    "prefiero no responder",
    "préfère ne pas répondre",  # Québec
    "je préfère ne pas répondre",
    "préfère ne pas le dire",
    "desconocido",
    "prefiero no decirlo",
    "prefiere no decirlo",
    "ns/nc",
    "não informado",
    "não informada",
    "não declarado",
    "não declarada",
    "sem declaração",
    "no declarado",
    "no declarada",
    "sin información",
    "sin informacion",
    # Chile's forms (DEMRE, the ministry's SIES): a Chilean university's "No informa" and "Prefiere no
    # informar" were compared as a gender and as an indigenous people of their own
    "no informa",
    "prefiere no informar",
    "prefiero no informar",
    "sin dato",
    "no responde",
    "no sabe / no responde",
    "non déclarée",
    "non renseignée",
    "desconhecido",
    "prefiro não dizer",
    "non dichiarato",
    "non noto",
    "preferisco non rispondere",
    "non disponibile",  # an Italian university's ESSE3 export
    "n.d.",
    "sconosciuto",
    "sconosciuta",
    "non specificato",
    "non specificata",
    "non indicato",
    "non indicata",
    "לא ידוע",  # Hebrew: "unknown", "not specified", "prefers not to answer"
    "לא צוין",
    "לא צוינה",
    "מעדיף לא לענות",
    "מעדיפה לא לענות",
    "מסרב לענות",
    "ei tiedossa",  # Finnish: "not known", "unknown", "does not want to say", "not reported"
    "tuntematon",
    "ei halua kertoa",
    "ei ilmoitettu",
    "onbekend",  # Dutch, Norwegian, Danish, Swedish
    "wil ik niet zeggen",
    "zeg ik liever niet",
    "niet opgegeven",
    "ukjent",
    "vil ikke oppgi",
    "ønsker ikke å oppgi",
    "uoplyst",
    "okänt",
    "vill ej uppge",
    "ej angivet",
    "brak danych",  # Polish: "no data", "not given", "refused to give", "unknown", "rather not say"
    "nie podano",
    "nie podała",
    "nie podał",
    "odmowa podania",
    "odmowa odpowiedzi",
    "nieznane",
    "nieznany",
    "nieznana",
    "nie wiem",
    "wolę nie podawać",
    "wolę nie odpowiadać",
    "không rõ",  # Vietnamese: "unclear", "undetermined", "not declared", "not updated"
    "không xác định",
    "không khai báo",
    "chưa cập nhật",
    "không muốn trả lời",
    "prefiro não declarar",  # Brazil's Census of Higher Education and its registrars
    "prefiro não informar",
    "não quis declarar",
    "não dispõe",
    "não dispõe da informação",
    "sem informação",
    "tidak diketahui",  # Indonesian and Malay: "unknown", "not stated", "not filled in"
    "tidak tahu",
    "tidak disebutkan",
    "tidak dinyatakan",
    "tidak diisi",
    "belum diisi",
    "tidak ada data",
    "tidak ingin menyebutkan",
    "tiada maklumat",
    "belirtilmemiş",  # Turkish: "not stated", "unknown", "did not declare", "prefer not to say"
    "belirtilmedi",
    "bilinmiyor",
    "bilinmeyen",
    "beyan edilmedi",
    "beyan etmek istemiyorum",
    "belirtmek istemiyorum",
    "cevap yok",
    "no contesta",  # Spain's forms
    "no indica",
    "prefiere no contestar",
    "desconocida",
    "no informado",
    "no informada",
    "sin datos",
    "no facilitado",
    "no disponible",
    "desconegut",  # Catalan and Valencian
    "desconeguda",
    "no informat",
    "prefereixo no respondre",
    "sense informació",
    "अज्ञात",  # Hindi: "unknown", "not available", "do not wish to say"
    "उपलब्ध नहीं",
    "बताना नहीं चाहते",
    "не указано",  # Russian: "not stated", "no data", "unknown", "not determined" (a Kazakh university's)
    "не указана",
    "не указан",
    "не указаны",
    "нет данных",
    "нет информации",
    "неизвестно",
    "неизвестен",
    "неизвестна",
    "не известно",
    "не определено",
    "не определена",
    "не определен",
    "не определён",
    "затрудняюсь ответить",
    "не хочу отвечать",
    "предпочитаю не отвечать",
    "көрсетілмеген",  # Kazakh: "not stated", "unknown", "no information", "do not want to answer"
    "белгісіз",
    "мәлімет жоқ",
    "мәліметтер жоқ",
    "жауап бергім келмейді",
    "anhysbys",  # Welsh: "unknown", "prefer not to say", "not stated" (a Welsh university's)
    "gwell gennyf beidio â dweud",
    "gwell gennyf beidio a dweud",
    "gwell gen i beidio â dweud",
    "heb ei nodi",
    "heb ei ddatgan",
)


def _one_group_rule(column: str, n: int) -> Rule:
    """A warning when a characteristic records one group only: the audit has nothing to compare it with.

    A polytechnic's accessibility register, exported Y/N, had N mapped to empty: every student not
    registered became "not recorded", and the gate blamed groups too small or intervals too wide.
    Names are the ``n``-th characteristic's own (``_groups_students_rule`` says why).
    """
    c = ident(column)
    v, groups = f"og{n}_v", f"og{n}_g"
    return Rule(
        "protected_characteristics",
        column,
        "one_group",
        f"{column!r} records one group only (every student with a value holds the same one; any without "
        'are the audit\'s "not recorded"), so no two of its groups can be compared and the gate cannot '
        "assess it. If the other answer was written "
        "as empty (an N or a No for not registered), map it to a value of its own "
        '(values = { "N" = "Not registered" }); empty is for students of whom nothing is known',
        f"WITH {v} AS (SELECT _file, _row, trim(CAST({c} AS VARCHAR)) AS value "
        f"FROM raw_protected_characteristics WHERE {c} IS NOT NULL AND trim(CAST({c} AS VARCHAR)) <> ''), "
        f"{groups} AS (SELECT count(DISTINCT value) AS n FROM {v}) "
        f"SELECT {v}._file, {v}._row, {v}.value FROM {v} CROSS JOIN {groups} WHERE {groups}.n = 1",
        severity="warning",
        values=True,
    )


def _says_not_recorded_rule(column: str) -> Rule:
    """A warning when a characteristic's value says it was not recorded ("Not stated", "Unknown")."""
    c = ident(column)
    words = ", ".join(literal(w) for w in SAYS_NOT_RECORDED)
    return Rule(
        "protected_characteristics",
        column,
        "says_not_recorded",
        f"{column!r} holds a value saying that nothing is recorded: the fairness audit reads it as a group "
        "of its own, and a comparison of that group can stand in at the gate for the groups the "
        "characteristic is about (an institute's Indigenous students, too few to assess, were counted as "
        'assessed through "Not stated"). Map it to empty in the mapping (values = { "Not stated" = "" }, '
        "keep_unmapped = true): "
        'those students are then the audit\'s "not recorded" group, which is still audited but never '
        "counts as assessing the characteristic",
        # keyed, so that an import names each example by its export's file and row (a US university's
        # "Decline to State" on rows 3 and 40 had been named as rows 2 and 56 of the mapped table)
        f"SELECT _file, _row, trim(CAST({c} AS VARCHAR)) AS value, student_id AS key_student_id "
        f"FROM raw_protected_characteristics WHERE lower(trim(CAST({c} AS VARCHAR))) IN ({words})",
        key_columns=("student_id",),
        severity="warning",
        values=True,
    )


def _built_in_kind_rule() -> Rule:
    """A built-in source is read as itself: ``counts_as`` is for the institution's own (``notice.kinds``)."""
    built_in = ", ".join(literal(s) for s in DEFAULT_SOURCE_LABELS)
    return Rule(
        "sources",
        "counts_as",
        "built_in_keeps_its_kind",
        f"a built-in source ({', '.join(DEFAULT_SOURCE_LABELS)}) is always read as itself: leave "
        "counts_as empty on its row (counts_as is for the institution's own sources)",
        f"SELECT _file, _row, source || ' -> ' || counts_as AS value FROM t_sources "
        f"WHERE source IN ({built_in}) AND counts_as IS NOT NULL AND counts_as <> source",
    )


def _labelling_label_rule() -> Rule:
    """A source's label, read in sentences to staff and students, holds no labelling word (``vocabulary``)."""
    return Rule(
        "sources",
        "label",
        "no_labelling_words",
        "a source's label is read as it is in sentences to staff and students, and holds a word Waymark "
        "never shows of a student (such as 'at risk' or 'dropout'): name the source by what it records",
        f"SELECT _file, _row, label AS value FROM t_sources WHERE {labelling_sql('label')}",
    )


def _overlapping_periods_rule(*, until: bool, presentation: bool = False) -> Rule:
    """Periods of one staff relationship whose days overlap, as ``waymark access import`` refuses them.

    Rows from the same first day are the key rule's (a duplicate key); a period without days holds
    always, so it overlaps any other. A module relationship on one presentation (``presentation_id``)
    is a relationship of its own.
    """
    one = ("presentation_id",) if presentation else ()
    parts = ("staff_id", "relationship", "scope_type", "scope_id", *one)
    who = ", ".join(parts)
    first = "coalesce(valid_from, DATE '0001-01-01')"
    last = "coalesce(valid_until, DATE '9999-12-31')" if until else "DATE '9999-12-31'"
    order = f"OVER (PARTITION BY {who} ORDER BY {first}, _row)"
    sql = (
        "SELECT _file, _row, 'overlaps the days of row ' || CAST(previous_row AS VARCHAR) AS value"
        f"{_keys((*parts, 'valid_from'))} "
        f"FROM (SELECT _file, _row, {who}, valid_from, {first} AS first_day, "
        f"lag({first}) {order} AS previous_first, lag({last}) {order} AS previous_last, "
        f"lag(_row) {order} AS previous_row FROM t_access) "
        "WHERE first_day <= previous_last AND first_day <> previous_first"
    )
    return Rule(
        "access",
        "valid_from",
        "periods_overlap",
        "a relationship is listed for days that overlap another of its periods: give each period it holds "
        "once, without overlap (a row without days holds always)",
        sql,
        (*parts, "valid_from"),
    )


def _whole_module_and_presentation_rule() -> Rule:
    """A module relationship on every presentation and on one, as ``waymark access import`` refuses it."""
    whole = "count(CASE WHEN presentation_id IS NULL OR presentation_id = '' THEN 1 END)"
    return Rule(
        "access",
        "presentation_id",
        "module_whole_and_presentation",
        "a module relationship is listed on every presentation of the module (presentation_id empty) and on "
        "one of them: list the presentations it holds one by one, or the module alone",
        "SELECT _file, _row, presentation_id AS value FROM (SELECT _file, _row, scope_type, presentation_id, "
        f"{whole} OVER (PARTITION BY staff_id, relationship, scope_type, scope_id) AS whole FROM t_access) "
        "WHERE scope_type = 'module' AND presentation_id IS NOT NULL AND presentation_id <> '' AND whole > 0",
    )


def _presentation_outside_module_rule() -> Rule:
    """A presentation given to a relationship not a module's, as ``waymark access import`` refuses it."""
    return Rule(
        "access",
        "presentation_id",
        "presentation_outside_module",
        "presentation_id narrows a module relationship to one presentation of it; a student, programme or "
        "school relationship holds none (leave it empty)",
        "SELECT _file, _row, scope_type || ' ' || presentation_id AS value FROM t_access "
        "WHERE presentation_id IS NOT NULL AND presentation_id <> '' AND scope_type <> 'module'",
    )


def _key_of(table: Table) -> tuple[str, ...]:
    if table.key:
        return table.key
    return tuple(c.name for c in table.columns if c.kind == Kind.ID)[:3]


def _column_rules(
    table: Table, column: Column, *, raw_type: str, raw_columns: set[str] | None = None
) -> Iterator[Rule]:
    raw, t, c = ident("raw_" + table.name), ident("t_" + table.name), ident(column.name)
    # an optional key column the file lacks (a relationship's valid_from) names no row
    key = tuple(k for k in _key_of(table) if k != column.name and (raw_columns is None or k in raw_columns))
    # The raw rows' key values as written (the typed ones where a rule reads the typed view), so that a
    # row can be found in the institution's own export, not only by a file and row of a staged copy.
    raw_key = tuple(k for k in key if raw_columns is not None and k in raw_columns)
    if not column.nullable:
        yield Rule(
            table.name,
            column.name,
            "required",
            "value is missing",
            f"SELECT _file, _row, NULL AS value{_keys(raw_key)} FROM {raw} "
            f"WHERE {_missing(column.name, raw_type)}",
            raw_key,
        )
    typed = _typed_expr(column, raw_type)
    date = _date_condition(column, raw_type)
    if not _always_converts(column, raw_type):
        bad = f"NOT {_missing(column.name, raw_type)} AND ({typed}) IS NULL AND NOT coalesce({date}, false)"
        yield Rule(
            table.name,
            column.name,
            f"type_{column.kind.value}",
            _type_message(column, raw_type),
            f"SELECT _file, _row, CAST({c} AS VARCHAR) AS value{_keys(raw_key)} FROM {raw} WHERE {bad}",
            raw_key,
        )
    yield from _guidance_rules(table, column, raw_type=raw_type, raw_key=raw_key)
    if column.allowed is not None:
        allowed = ", ".join(literal(v) for v in column.allowed)
        hint = column.mapping_hint or (
            "write each value the institution uses as one of these (an import mapping translates an "
            "institution's own values with values = { ... }: docs/mapping.md)"
        )
        yield Rule(
            table.name,
            column.name,
            "allowed_values",
            f"value is not one of: {', '.join(column.allowed)}; {hint}",
            f"SELECT _file, _row, {c} AS value{_keys(key)} FROM {t} "
            f"WHERE {c} IS NOT NULL AND {c} NOT IN ({allowed})",
            key,
            values=True,
        )
    if column.minimum is not None:
        yield Rule(
            table.name,
            column.name,
            "minimum",
            f"value is below {column.minimum:g}",
            f"SELECT _file, _row, {c} AS value{_keys(key)} FROM {t} WHERE {c} < {column.minimum}",
            key,
        )
    if column.maximum is not None:
        yield Rule(
            table.name,
            column.name,
            "maximum",
            f"value is above {column.maximum:g}",
            f"SELECT _file, _row, {c} AS value{_keys(key)} FROM {t} WHERE {c} > {column.maximum}",
            key,
        )


def _always_converts(column: Column, raw_type: str) -> bool:
    """Every present value of the raw column has its contract type, so its type rule cannot fire.

    Text and identifiers stored as text or as integers: a value that is not missing (``_missing``)
    is non-empty text after trimming, which is what ``_typed_expr`` keeps. The rule would still
    read every row (0.6 s per column of six million activity rows) to find none.
    """
    return column.kind in (Kind.ID, Kind.TEXT) and (raw_type == "VARCHAR" or raw_type in _INT_TYPES)


def _type_message(column: Column, raw_type: str) -> str:
    if column.kind == Kind.DATE and _zoned(raw_type):
        return (
            "value is a timestamp with a time zone, whose calendar date depends on the zone it is "
            "read in (midnight in London is the day before in UTC): write the date itself "
            "(YYYY-MM-DD text, a Parquet date, or a timestamp without a time zone)"
        )
    return {
        Kind.ID: "identifier must be text or a whole number",
        Kind.TEXT: "value must be text",
        Kind.INT: (
            "value is not a whole number; fractions such as 2.5 are refused, not rounded "
            "(whole numbers written as 150.0 are accepted)"
        ),
        Kind.FLOAT: "value is not a finite number",
        Kind.DATE: "value is not a date in YYYY-MM-DD form",
    }[column.kind]


def _is_day(column: Column) -> bool:
    return column.kind == Kind.INT and column.name.endswith("day")


def _date_condition(column: Column, raw_type: str) -> str:
    """SQL true where a day column holds a calendar date instead of a day number."""
    if not _is_day(column):
        return "false"
    if raw_type == "VARCHAR":
        return f"regexp_full_match(trim({ident(column.name)}), {literal(_DATE_TEXT)})"
    return "true" if raw_type.startswith(("DATE", "TIMESTAMP")) else "false"


def _guidance_rules(
    table: Table, column: Column, *, raw_type: str, raw_key: tuple[str, ...] = ()
) -> Iterator[Rule]:
    """Values that tell how the file was made: dates where days belong, whole numbers as 150.0."""
    raw, c = ident("raw_" + table.name), ident(column.name)
    date = _date_condition(column, raw_type)
    if date != "false":
        msg = (
            f"value is a calendar date, but {column.name} is a day number: a whole number of days "
            "counted from the presentation's start_date (day 0; -7 is a week before it). Subtract "
            "start_date from each date, or convert with `waymark data import --mapping FILE.toml`, "
            "which turns dates into day numbers against each presentation's start "
            f'({column.name} = {{ column = "...", date = "iso" }}, or a format such as "%d/%m/%Y")'
        )
        sql = (
            f"SELECT _file, _row, CAST({c} AS VARCHAR) AS value{_keys(raw_key)} FROM {raw} "
            f"WHERE {c} IS NOT NULL AND {date}"
        )
        yield Rule(table.name, column.name, "date_not_day", msg, sql, raw_key)
    if column.kind == Kind.ID and raw_type == "VARCHAR":
        yield _decimal_identifier_rule(table, column)
        yield _unseen_in_identifier_rule(table, column, raw_key=raw_key)
    if column.kind != Kind.INT:
        return
    if raw_type == "VARCHAR":
        where = _integral_decimal(c)
        how = "written with a decimal point (150.0, as pandas writes a whole-number column with gaps)"
    elif raw_type.startswith(_FLOAT_TYPES) or raw_type.startswith("DECIMAL"):
        where = f"{c} IS NOT NULL AND isfinite(CAST({c} AS DOUBLE)) AND {c} = trunc({c})"
        how = f"stored as {raw_type}, not as an integer type"
    else:
        return
    msg = (
        f"whole numbers {how}; they are read as whole numbers. Any real fraction is refused. "
        "To silence this warning write them as integers (pandas: .astype('Int64') before saving)"
    )
    sql = f"SELECT _file, _row, CAST({c} AS VARCHAR) AS value FROM {raw} WHERE {where}"
    yield Rule(table.name, column.name, "integral_decimal", msg, sql, severity="warning")


def _integral_decimal(c: str) -> str:
    """Text column ``c`` holds a whole number written with a decimal point (150.0).

    The cheap test for a point goes first: the pattern runs only on the rare values with one
    (on a six-million-row activity table, 0.1 s in place of 1 s per column).
    """
    return f"contains({c}, '.') AND regexp_full_match(trim({c}), {literal(_INTEGRAL_DECIMAL)})"


def _decimal_identifier_rule(table: Table, column: Column) -> Rule:
    raw, c = ident("raw_" + table.name), ident(column.name)
    msg = (
        "identifier written as a decimal number (12.0, as pandas writes an integer column with gaps); "
        "it is read as the text '12.0', which does not match 12 in another table. Write identifiers "
        "as text or whole numbers"
    )
    sql = f"SELECT _file, _row, {c} AS value FROM {raw} WHERE {_integral_decimal(c)}"
    return Rule(table.name, column.name, "decimal_identifier", msg, sql, severity="warning")


#: Characters never in an identifier (``models.ids``), as the service refuses them in every id it is
#: given. In RE2's and Java's syntax alike (the rule runs on DuckDB and, translated, on Spark).
UNSEEN_IN_IDS = f"[{UNSEEN_CLASS_RE2}]"


def _unseen_in_identifier_rule(table: Table, column: Column, *, raw_key: tuple[str, ...]) -> Rule:
    """An id holding a control character or an invisible direction control.

    The service refuses such an id wherever it is given one (a token's subject, a path, a relationship),
    so a student or module whose records carry one could be neither signed in as nor granted, and two
    ids that read alike would be two students. A spreadsheet of right-to-left text may add them.
    """
    raw, c = ident("raw_" + table.name), ident(column.name)
    msg = (
        f"identifier holds a control character or an invisible direction character ({UNSEEN_NAMED}, as "
        "office exports of right-to-left text add), which the service refuses in "
        'every id: remove them in the export, or with the mapping\'s replace = { "\\u202b" = "" } '
        "(one entry per character; docs/mapping.md)"
    )
    sql = (
        f"SELECT _file, _row, {c} AS value{_keys(raw_key)} FROM {raw} "
        f"WHERE {c} IS NOT NULL AND regexp_matches({c}, {literal(UNSEEN_IN_IDS)})"
    )
    return Rule(table.name, column.name, "unseen_in_identifier", msg, sql, raw_key)


def _keys(key: tuple[str, ...], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return "".join(f", {prefix}{ident(k)} AS {ident('key_' + k)}" for k in key)


def _key_rule(table: Table, *, present: set[str]) -> Rule:
    """Each key once; a key column that may be empty (a relationship's first day) is compared empty too."""
    key = tuple(k for k in table.key if k in present)
    t = ident("t_" + table.name)
    cols = ", ".join(ident(k) for k in key)
    not_null = " AND ".join(f"{ident(k)} IS NOT NULL" for k in key if not table.column(k).nullable) or "TRUE"
    sql = (
        f"SELECT _file, _row, 'duplicate of row ' || CAST(first_row AS VARCHAR) AS value"
        f"{_keys(key)} FROM (SELECT _file, _row, {cols}, "
        f"min(_row) OVER (PARTITION BY {cols}) AS first_row, "
        f"count(*) OVER (PARTITION BY {cols}) AS n FROM {t} WHERE {not_null}) "
        f"WHERE n > 1 AND _row > first_row"
    )
    msg = f"duplicate key ({', '.join(key)}): each key may appear once"
    return Rule(table.name, ", ".join(key), "unique_key", msg, sql, key)


def _reference_rule(
    table: Table, cols: tuple[str, ...], *, target: str, target_cols: tuple[str, ...]
) -> Rule:
    t, s = ident("t_" + table.name), ident("t_" + target)
    on = " AND ".join(f"a.{ident(c)} = b.{ident(tc)}" for c, tc in zip(cols, target_cols, strict=True))
    not_null = " AND ".join(f"a.{ident(c)} IS NOT NULL" for c in cols)
    sql = (
        f"SELECT a._file, a._row, NULL AS value{_keys(cols, 'a')} FROM {t} a "
        f"ANTI JOIN {s} b ON {on} WHERE {not_null}"
    )
    msg = f"({', '.join(cols)}) does not match any row of {target}"
    return Rule(table.name, ", ".join(cols), f"reference_{target}", msg, sql, cols)


#: Tables whose references get no leading-zeros hint: activity's would join its millions of rows once
#: more (0.37 s against a 2.5 s validation of full OULAD, measured), so its reference error stands alone.
_NO_ZEROS_HINT = frozenset({"activity"})


def _leading_zeros_rule(
    table: Table, cols: tuple[str, ...], *, target: str, target_cols: tuple[str, ...]
) -> Rule:
    """Rows a reference refuses that would match once leading zeros are ignored: the likely cause named.

    A warning beside the reference's error, for the rows it refuses only (an anti join, then a semi
    join on the identifiers without their leading zeros).
    """
    t, s = ident("t_" + table.name), ident("t_" + target)
    on = " AND ".join(f"a.{ident(c)} = b.{ident(tc)}" for c, tc in zip(cols, target_cols, strict=True))
    bare = ", ".join(f"{_unpadded(ident(tc))} AS z{i}" for i, tc in enumerate(target_cols))
    near = " AND ".join(f"{_unpadded('a.' + ident(c))} = z.z{i}" for i, c in enumerate(cols))
    not_null = " AND ".join(f"a.{ident(c)} IS NOT NULL" for c in cols)
    sql = (
        f"SELECT a._file, a._row, NULL AS value{_keys(cols, 'a')} FROM {t} a "
        f"ANTI JOIN {s} b ON {on} SEMI JOIN (SELECT DISTINCT {bare} FROM {s}) z ON {near} WHERE {not_null}"
    )
    msg = (
        f"({', '.join(cols)}) matches a row of {target} only once leading zeros are ignored (000123 "
        "in one table, 123 in the other): identifiers are compared as text, so write each the same "
        "way in every table (an id column saved as a number loses its zeros: save it as text)"
    )
    return Rule(table.name, ", ".join(cols), f"reference_{target}_leading_zeros", msg, sql, cols, "warning")


def _unpadded(column: str) -> str:
    return f"regexp_replace({column}, '^0+', '')"


def _no_due_days_rule() -> Rule:
    """A warning, per presentation, when work was handed in but none of its assessments has a due day.

    A Swedish records system holds examination dates, not due days: the mapping left every due day
    empty, so no work was ever read as missed or late, and the generic "due_day is missing for 100.0%"
    line said nothing of it. One row per presentation (its first assessment) names it.
    """
    return Rule(
        "assessments",
        "due_day",
        "no_due_days",
        "no assessment of this presentation has a due day, though work was handed in: submissions and "
        "marks still count, but no work is ever read as due, missed or late, and explanations can say "
        "only that no due day was recorded. Take due days from the learning platform's assignments (their "
        "due dates), or from the timetable of examinations, in the export or the mapping",
        "SELECT arg_min(a._file, (a._file, a._row)) AS _file, arg_min(a._row, (a._file, a._row)) AS _row, "
        "a.module_id || ' ' || a.presentation_id AS value FROM t_assessments a "
        "LEFT JOIN (SELECT DISTINCT assessment_id AS handed FROM t_assessment_results) h "
        "ON h.handed = a.assessment_id "
        "GROUP BY a.module_id, a.presentation_id "
        "HAVING count(a.due_day) = 0 AND count(h.handed) > 0 "
        "AND count(*) FILTER (WHERE a.type <> 'exam') > 0",
        severity="warning",
        values=True,
    )


#: A presentation's work is read as set for some students only when this many students handed some in
#: and no piece but its exams was handed in by at least ``SET_FOR_SOME_SHARE`` of them.
SET_FOR_SOME_MIN_STUDENTS = 20
SET_FOR_SOME_SHARE = 0.5


def _work_set_for_some_rule() -> Rule:
    """A warning, per presentation, when each piece of its work was handed in by a few of its students.

    Nothing in the contract says which students a piece of work was set for: every assessment is read
    as due for every student registered on its presentation. A Chinese university's teaching classes
    each set their own homework under one course and term, and students read "1 of the 30 assessments
    due so far was submitted" of work never set for them; validation said nothing (644 assessments, no
    problem reported). On full OULAD the lowest share of a presentation's submitters handing in its
    most handed piece is 0.95; where sections each set their own, it is about one in the number of
    sections. Exams are left out: a final every section sits would hide the sections' own work.
    """
    handed = (
        "SELECT a.module_id, a.presentation_id, r.assessment_id, r.student_id FROM t_assessment_results r "
        "JOIN t_assessments a USING (assessment_id) WHERE a.type <> 'exam'"
    )
    return Rule(
        "assessments",
        "assessment_id",
        "work_set_for_some",
        f"every piece of this presentation's work but its exams was handed in by fewer than "
        f"{SET_FOR_SOME_SHARE:.0%} of the students who handed any in: where sections or groups set their "
        "own work, or students choose among pieces, each piece is still read as due for every student on "
        "the presentation, and students read of work never set for them as not submitted. Map each "
        "section as its own presentation, or map only work every student is set, with each student's "
        'own due day in extensions (docs/bring-your-own-data.md, "Sections that set their own work")',
        "SELECT arg_min(a._file, (a._file, a._row)) AS _file, arg_min(a._row, (a._file, a._row)) AS _row, "
        "a.module_id || ' ' || a.presentation_id AS value FROM t_assessments a "
        f"JOIN (SELECT assessment_id, count(DISTINCT student_id) AS n FROM ({handed}) x "
        "GROUP BY assessment_id) h USING (assessment_id) "
        f"JOIN (SELECT module_id, presentation_id, count(DISTINCT student_id) AS n FROM ({handed}) y "
        "GROUP BY module_id, presentation_id) p "
        "ON p.module_id = a.module_id AND p.presentation_id = a.presentation_id "
        "GROUP BY a.module_id, a.presentation_id "
        f"HAVING max(p.n) >= {SET_FOR_SOME_MIN_STUDENTS} AND count(*) >= 2 "
        f"AND max(h.n) < {SET_FOR_SOME_SHARE} * max(p.n)",
        severity="warning",
        values=True,
    )


#: Activity types that name something that did not happen: every activity row counts as an action.
NON_EVENT_TYPES = (
    "(^|_)(absent|absence|absences|absentee|no_?show|not_attended|did_not_attend|unattended|not_present|"
    "unexcused|non_?attendance|ausente|ausencia|ausencias|abwesend|abwesenheit|assente|assenza|afwezig|"
    "fravaer|fravar|franvaro|poissa|poissaolo|nieobecn[a-z]*)(_|$)|"
    "^(missed|skipped)(_(session|class|lecture|lab|seminar))?$"
)
#: What a student does about an absence is activity: asking for one, filling its form in.
NOT_A_NON_EVENT = "(^|_)(request|requested|form|application|apply)(_|$)"


def _non_event_rule() -> Rule:
    """A warning when an activity type names an absence: each row of it is counted as an action.

    A Bangladeshi university's biometric export had a row per class with P or A; mapped to the types
    present and absent, every absence counted as an attendance (a student who stopped coming read as
    attending, 162 of 1,552 estimates moved by more than 5 points), and nothing warned.
    """
    return Rule(
        "activity",
        "activity_type",
        "non_event_activity",
        "this activity type names an absence, and every activity row counts as something the student "
        "did: an absence read as an attendance makes a student who stopped coming look engaged. Leave "
        'such rows out in the mapping (keep = { Status = ["P"] } on the attendance input, say); only '
        "what happened is activity",
        "SELECT _file, _row, activity_type AS value FROM t_activity "
        f"WHERE regexp_matches(lower(activity_type), {literal(NON_EVENT_TYPES)}) "
        f"AND NOT regexp_matches(lower(activity_type), {literal(NOT_A_NON_EVENT)})",
        severity="warning",
        values=True,
    )


def _cross_table_rules(typed: set[str]) -> Iterator[Rule]:
    if {"activity", "presentations"} <= typed:
        yield Rule(
            "activity",
            "day",
            "day_within_presentation",
            "day is after the presentation's last day (day >= length_days; its days are 0 to "
            "length_days - 1): revision or exam-period activity is common and is kept, but no feature "
            "reads past the presentation's last week; if these days should be inside it, check "
            "length_days (a count of days, both the first and the last included) or how days were counted",
            "SELECT a._file, a._row, a.day AS value, a.student_id AS key_student_id, "
            "a.module_id AS key_module_id, a.presentation_id AS key_presentation_id "
            "FROM t_activity a JOIN t_presentations p USING (module_id, presentation_id) "
            "WHERE a.day >= p.length_days",
            ("student_id", "module_id", "presentation_id"),
            "warning",
        )
    if "activity" in typed:
        yield _non_event_rule()
        for col in ("source", "activity_type"):
            yield Rule(
                "activity",
                col,
                "identifier",
                "must be lower-case letters, digits and _ (a category, never free text)",
                f"SELECT _file, _row, {col} AS value FROM t_activity "
                f"WHERE {col} IS NOT NULL AND NOT regexp_full_match({col}, "
                f"{literal(_IDENTIFIER)})",
            )
    if {"assessment_results", "assessments"} <= typed:
        yield _no_due_days_rule()
        yield _work_set_for_some_rule()
    for by_student in ("assessment_results", "extensions"):
        if {by_student, "assessments", "registrations"} <= typed:
            yield Rule(
                by_student,
                "student_id",
                "reference_registrations",
                "student is not registered on the assessment's module presentation",
                "SELECT r._file, r._row, NULL AS value, r.student_id AS key_student_id, "
                f"r.assessment_id AS key_assessment_id FROM t_{by_student} r "
                "JOIN t_assessments a USING (assessment_id) ANTI JOIN t_registrations g "
                "ON r.student_id = g.student_id AND a.module_id = g.module_id "
                "AND a.presentation_id = g.presentation_id",
                ("student_id", "assessment_id"),
            )
    if {"assessments", "assessment_results", "activity", "registrations"} <= typed:
        yield _due_without_results_rule()
    if {"registrations", "presentations"} <= typed:
        yield Rule(
            "registrations",
            "registration_day",
            "registered_after_the_end",
            "registration_day is on or after the day the presentation's whole weeks end (7 x its whole "
            "weeks, length_days // 7; or after its end): the registration is in no week, so it is "
            "neither trained on, tested nor scored, whatever its outcome. A resit sitting's own sign-up "
            'date kept by duplicates = "last" does this (a Norwegian university\'s August kont rows took '
            "39% of a module's fails out of training and testing): read registration_day from the first "
            "sitting",
            "SELECT r._file, r._row, r.registration_day AS value, r.student_id AS key_student_id, "
            "r.module_id AS key_module_id, r.presentation_id AS key_presentation_id "
            "FROM t_registrations r JOIN t_presentations p USING (module_id, presentation_id) "
            "WHERE r.registration_day >= 7 * (p.length_days // 7)",
            ("student_id", "module_id", "presentation_id"),
            "warning",
        )
    if "registrations" in typed:
        yield _withdrawn_without_day_rule()
        yield Rule(
            "registrations",
            "unregistration_day",
            "unregistration_after_registration",
            "unregistration_day is before registration_day (a medical school's leaving date for the "
            "year was copied to blocks the student would have started later: give each registration its "
            "own leaving day, and leave out registrations on blocks begun after the student left)",
            "SELECT _file, _row, unregistration_day AS value, student_id AS key_student_id, "
            "module_id AS key_module_id, presentation_id AS key_presentation_id "
            "FROM t_registrations WHERE unregistration_day < registration_day",
            ("student_id", "module_id", "presentation_id"),
        )
    if "access" in typed:
        cases = " ".join(
            f"WHEN {literal(r)} THEN scope_type IN ({', '.join(literal(t) for t in s)})"
            for r, s in RELATIONSHIP_SCOPES.items()
        )
        fits = "; ".join(f"{r}: {' or '.join(s)}" for r, s in RELATIONSHIP_SCOPES.items())
        yield Rule(
            "access",
            "scope_type",
            "scope_matches_relationship",
            f"scope_type does not fit the relationship ({fits})",
            f"SELECT _file, _row, relationship || '/' || scope_type AS value FROM t_access "
            f"WHERE NOT (CASE relationship {cases} ELSE TRUE END)",
        )


#: Days after an assessment's due day by which its presentation's activity must run for an assessment no
#: student has a result for to be warned of, and the registrations its presentation must have.
DUE_WITHOUT_RESULTS_DAYS = 7
DUE_WITHOUT_RESULTS_STUDENTS = 5


def _due_without_results_rule() -> Rule:
    """A warning when work was due a week or more before the data ends and nobody has a result for it.

    A presentation's final exam (``FINAL_FROM``) is left out: features never read it, sitting it being
    the outcome (a Kenyan university's 80 main exams were each said to read as missed by every student).
    """
    msg = (
        f"due at least {DUE_WITHOUT_RESULTS_DAYS} days before its presentation's last day of activity, "
        "and no student has a result or a submission for it: features and explanations read it as due "
        "only once someone's submission of it is recorded, so until its results are in an extract (a "
        "records system that exports work once it is marked) a student who missed it reads as having "
        "missed nothing, and one who handed it in gets no credit for it. Export each submission when it "
        "is made (submitted_day, with the score empty until marked)"
    )
    # an exam features never read: the final, or a resit due after it
    final = "a.type = 'exam' AND f.final_day IS NOT NULL AND a.due_day >= f.final_day"
    return Rule(
        "assessments",
        "due_day",
        "due_without_results",
        msg,
        "SELECT a._file, a._row, a.due_day AS value, a.assessment_id AS key_assessment_id "
        "FROM t_assessments a JOIN (SELECT module_id, presentation_id, max(day) AS last_day FROM t_activity "
        "GROUP BY module_id, presentation_id) d ON a.module_id = d.module_id "
        "AND a.presentation_id = d.presentation_id "
        f"LEFT JOIN ({final_exams_sql('t_assessments', 't_presentations')}) f "
        "ON f.module_id = a.module_id AND f.presentation_id = a.presentation_id "
        f"WHERE a.due_day IS NOT NULL AND a.due_day + {DUE_WITHOUT_RESULTS_DAYS} <= d.last_day "
        f"AND NOT ({final}) "
        "AND NOT EXISTS (SELECT 1 FROM t_assessment_results r WHERE r.assessment_id = a.assessment_id) "
        "AND (SELECT count(*) FROM t_registrations g WHERE g.module_id = a.module_id "
        f"AND g.presentation_id = a.presentation_id) >= {DUE_WITHOUT_RESULTS_STUDENTS}",
        ("assessment_id",),
        severity="warning",
    )


#: The share of withdrawn registrations without an unregistration day from which validation warns
#: (OULAD's is under 1%: 93 of 10,156; another institution's extract had 4.8% and was not warned at 10%).
UNDATED_WITHDRAWALS = 0.02


def _withdrawn_without_day_rule() -> Rule:
    """A warning when many withdrawals do not say when the student left."""
    msg = (
        f"withdrawn, but no unregistration_day (warned when at least {UNDATED_WITHDRAWALS:.0%} of "
        "withdrawn registrations lack one): such a student stays in every later week's cohort, "
        "where the weeks after they left read as weeks without activity. Training then learns the "
        "outcome from after it happened (accuracy looks better than it is) and cohort comparisons "
        "count students who had gone; scoring gives them no indicator, since they have left by the "
        "data date. Give the day each student left (unregistration_day, or the mapping's rule for it)"
    )
    undated = "final_result = 'withdrawn' AND unregistration_day IS NULL"
    share = (
        f"(SELECT avg(CASE WHEN {undated} THEN 1.0 ELSE 0.0 END) FROM t_registrations "
        "WHERE final_result = 'withdrawn')"
    )
    return Rule(
        "registrations",
        "unregistration_day",
        "withdrawn_without_day",
        msg,
        "SELECT _file, _row, NULL AS value, student_id AS key_student_id, module_id AS key_module_id, "
        f"presentation_id AS key_presentation_id FROM t_registrations WHERE {undated} "
        f"AND {share} >= {UNDATED_WITHDRAWALS}",
        ("student_id", "module_id", "presentation_id"),
        severity="warning",
    )


def _run_all(con: duckdb.DuckDBPyConnection, rules: list[Rule], *, max_examples: int) -> list[Finding]:
    """Run every rule in one query (one plan, one round trip); rule by rule if that fails."""
    if not rules:
        return []
    try:
        rows = con.execute(union_sql(rules, max_examples)).fetchall()
    except duckdb.Error:
        found = [f for rule in rules for f in _run_all_one(con, rule, max_examples=max_examples)]
    else:
        found = findings_of(rules, rows)
    return with_values(found, rules, run=lambda sql: con.execute(sql).fetchall())


def findings_of(rules: list[Rule], rows: list[tuple[object, ...]]) -> list[Finding]:
    """The findings of ``union_sql``'s rows (rule, file, row, value, key, count), in rule order."""
    grouped: dict[int, list[tuple[object, ...]]] = {}
    for row in rows:
        grouped.setdefault(int(str(row[0])), []).append(row)
    return [finding_of(rules[i], grouped[i]) for i in sorted(grouped)]


def _run_all_one(con: duckdb.DuckDBPyConnection, rule: Rule, *, max_examples: int) -> list[Finding]:
    try:
        rows = con.execute(union_sql([rule], max_examples)).fetchall()
    except duckdb.Error as err:
        return [Finding(rule.table, "unreadable", f"could not be read: {err}", column=rule.column)]
    return [finding_of(rule, rows)] if rows else []


def union_sql(rules: list[Rule], max_examples: int) -> str:
    """One query running every rule: (rule, file, row, value, key as JSON, count), each rule's first rows."""
    parts = []
    for i, rule in enumerate(rules):
        key = (
            "json_object(" + ", ".join(f"{literal(k)}, {ident('key_' + k)}" for k in rule.key_columns) + ")"
            if rule.key_columns
            else "NULL"
        )
        parts.append(
            f"SELECT {i} AS _rule, _file, _row, CAST(value AS VARCHAR) AS value, "
            f"CAST({key} AS VARCHAR) AS _key FROM ({rule.sql})"
        )
    limit = (
        f"QUALIFY row_number() OVER (PARTITION BY _rule ORDER BY _file, _row) <= {int(max_examples)}"
        if max_examples > 0
        else ""
    )
    return (
        f"SELECT _rule, _file, _row, value, _key, count(*) OVER (PARTITION BY _rule) AS _n "
        f"FROM ({' UNION ALL '.join(parts)}) {limit} ORDER BY _rule, _file, _row"
    )


#: How many distinct offending values a finding on a vocabulary lists (all are counted).
MAX_VALUES = 10


def values_sql(rule: Rule) -> str:
    """The offending values of ``rule`` with their row counts, most frequent first, and how many in all."""
    return (
        "SELECT value, n, count(*) OVER () AS k FROM (SELECT CAST(value AS VARCHAR) AS value, "
        f"count(*) AS n FROM ({rule.sql}) GROUP BY CAST(value AS VARCHAR)) "
        f"ORDER BY n DESC, value LIMIT {MAX_VALUES}"
    )


def with_values(
    findings: list[Finding], rules: list[Rule], *, run: Callable[[str], list[tuple[object, ...]]]
) -> list[Finding]:
    """``findings``, each broken rule on a vocabulary (``Rule.values``) with its values (``run``: a query)."""
    listing = {(r.table, r.column, r.rule): r for r in rules if r.values}
    out = []
    for f in findings:
        rule = listing.get((f.table, f.column, f.rule))
        if rule is None:
            out.append(f)
            continue
        try:
            found_rows = run(values_sql(rule))
        except Exception:  # each engine raises its own errors; the finding stands without its values
            out.append(f)
            continue
        rows = sorted(found_rows, key=lambda r: (-int(str(r[1])), str(r[0])))
        found = tuple((str(r[0]), int(str(r[1]))) for r in rows)
        out.append(replace(f, values=found, distinct_values=int(str(rows[0][2])) if rows else 0))
    return out


def finding_of(rule: Rule, rows: list[tuple[object, ...]]) -> Finding:
    """The finding of one broken rule from its rows of ``union_sql``."""
    examples = tuple(
        Example(
            file=str(r[1]),
            row=int(str(r[2])),
            value=r[3],
            key=json.loads(str(r[4])) if r[4] is not None else None,
        )
        for r in rows
    )
    return Finding(
        rule.table,
        rule.rule,
        rule.message,
        column=rule.column,
        count=int(str(rows[0][5])),
        examples=examples,
        severity=rule.severity,
    )


def row_count_findings(counts: dict[str, int]) -> list[Finding]:
    """A finding for each table with fewer rows than the contract needs."""
    return [
        Finding(name, "no_rows", f"{name} has no data rows; at least {TABLES[name].min_rows} needed")
        for name, n in counts.items()
        if n < TABLES[name].min_rows
    ]
