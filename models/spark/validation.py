"""The contract check of a data folder on Spark: the rules of ``models.data.validation``, run by Spark SQL.

Every rule, typed view and message is ``models.data.validation``'s own, written once in DuckDB's dialect
and translated by ``models.spark.sql``; the report is a ``ValidationReport`` equal to DuckDB's (tested
on folders breaking each rule, as CSV and as Parquet). What differs is only how the files are found and
read (``models.spark.files``): for a Hadoop URI some file-level checks are lighter, as described there.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from waymark.models.data.contract import FEATURE_TABLES, TABLES
from waymark.models.data.findings import Finding, ValidationReport
from waymark.models.data.guidance import folder_warnings
from waymark.models.data.notice import (
    SOURCE_USE_SQL,
    Declared,
    declared_of,
    declared_sql,
    kinds,
    notices_of,
    source_use_warnings,
    source_uses,
    usable,
    usable_sources_sql,
)
from waymark.models.data.platform import platform_sources, platform_type_findings, platform_types_sql
from waymark.models.data.reading import OpenedTable
from waymark.models.data.sensitive import (
    CHECKED_COLUMNS,
    LABEL_SQL,
    Term,
    category_findings,
    category_sql,
    configured_terms,
)
from waymark.models.data.spelling import spelled_two_ways, written_values_sql
from waymark.models.data.sqltext import ident, literal
from waymark.models.data.validation import (
    DEFAULT_MAX_EXAMPLES,
    Rule,
    characteristics,
    contract_rules,
    empty_view_sql,
    findings_of,
    header_findings,
    names_criminal_offences,
    row_count_findings,
    typed_view_sql,
    union_sql,
    with_values,
)
from waymark.models.spark.files import SparkFolder, open_raw, spark_folder
from waymark.models.spark.sql import renamed, to_spark

if TYPE_CHECKING:
    from datetime import date

    from pyspark.sql import DataFrame, SparkSession

_runs = itertools.count()


@dataclass
class SparkViews:
    """The views of one validation on a Spark session, under names no other validation uses.

    The shared SQL names ``raw_<table>``, ``t_<table>`` and ``usable_sources``; each query is rewritten
    to this validation's names before it is translated for Spark.
    """

    session: SparkSession
    suffix: str = field(default_factory=lambda: f"__wv{next(_runs)}")
    names: dict[str, str] = field(default_factory=dict)
    cached: list[DataFrame] = field(default_factory=list)

    def register(self, name: str, frame: DataFrame) -> None:
        """Make ``frame`` the view the shared SQL calls ``name``."""
        self.names[name] = name + self.suffix
        frame.createOrReplaceTempView(self.names[name])

    def sql(self, duckdb_sql: str) -> DataFrame:
        """A DuckDB-dialect query over the views, on Spark."""
        return self.session.sql(to_spark(renamed(duckdb_sql, self.names)))

    def view(self, name: str, duckdb_sql: str) -> None:
        """Register the result of a DuckDB-dialect query as the view ``name``."""
        self.register(name, self.sql(duckdb_sql))

    def columns(self, name: str) -> list[str]:
        """The columns of the view ``name``."""
        return list(self.session.table(self.names[name]).columns)

    def drop(self) -> None:
        """Drop every view and cached table (DataFrames built from them stay usable)."""
        for view in self.names.values():
            self.session.catalog.dropTempView(view)
        for frame in self.cached:
            frame.unpersist()


@dataclass
class _Opened:
    findings: list[Finding]
    opened: dict[str, OpenedTable]
    located: set[str]
    typed: set[str]


def validate_folder(
    folder: str | Path,
    session: SparkSession,
    *,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
    sensitive_terms: tuple[Term, ...] | None = None,
) -> ValidationReport:
    """Check every contract table in ``folder`` on Spark: ``models.data.validation.validate_folder``'s report.

    Parameters
    ----------
    folder
        A data folder in the contract: a local path, or a Hadoop URI (``s3a://``, ``abfss://``,
        ``hdfs://``, ``file://``) that the session can read.
    session
        The Spark session (``models.spark.session.spark_session``).
    max_examples
        How many offending rows to list per broken rule (all are counted).
    sensitive_terms
        Terms activity source and type names may not contain (``sensitive.configured_terms()`` if None).

    Returns
    -------
    ValidationReport
        Every broken rule with table, column, rule, count and rows, as on DuckDB.
    """
    with checked_views(folder, session, max_examples=max_examples, sensitive_terms=sensitive_terms) as (
        report,
        _,
    ):
        return report


@contextmanager
def checked_views(
    folder: str | Path,
    session: SparkSession,
    *,
    rules: bool = True,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
    sensitive_terms: tuple[Term, ...] | None = None,
) -> Iterator[tuple[ValidationReport, SparkViews]]:
    """Validate ``folder`` and hold its typed views ``t_<table>`` until the block ends.

    ``rules=False`` opens and types the tables without running the contract's rules on their rows: for
    a folder a memo says passed them already, unchanged (``models.spark.reading.validated``).
    """
    views = SparkViews(session)
    try:
        yield _validate(folder, views, max_examples=max_examples, terms=sensitive_terms, rules=rules), views
    finally:
        views.drop()


def _validate(
    folder: str | Path,
    views: SparkViews,
    *,
    max_examples: int,
    terms: tuple[Term, ...] | None,
    rules: bool = True,
) -> ValidationReport:
    place = spark_folder(folder, views.session)
    if place is None:
        missing = Finding("(folder)", "missing_folder", f"{folder} is not a folder")
        return ValidationReport(str(folder), (missing,), {}, ())
    found = _open_views(place, views)
    findings, opened, typed = found.findings, found.opened, found.typed
    counts = _counts(views, typed)
    if rules:
        findings += _run_all(views, list(contract_rules(opened, typed)), max_examples=max_examples)
    findings += row_count_findings(counts)
    for column in [c for c in characteristics(opened) if not names_criminal_offences(c)] if rules else []:
        written = [tuple(r) for r in views.sql(written_values_sql(column)).collect()]
        findings += spelled_two_ways(column, written)
    if "activity" in opened and rules:
        findings += _sensitive_findings(views, terms or configured_terms())
        platform = platform_sources(kinds(declared_sources(views)))
        findings += platform_type_findings(views.sql(platform_types_sql(platform)).collect())
    entries = None if place.local else place.entries()
    warnings = folder_warnings(place.root, counts, located=found.located, entries=entries)
    warnings += [f for f in findings if f.severity == "warning"]
    if {"activity", "presentations"} <= typed:
        sources = register_usable_sources(views)
        told = declared_sources(views)
        uses = source_uses(views.sql(SOURCE_USE_SQL).collect(), found=sources, declared=told)
        warnings += source_use_warnings(uses)
    errors = tuple(f for f in findings if f.severity == "error")
    return ValidationReport(place.given, errors, counts, tuple(opened), warnings=tuple(warnings))


def _open_views(place: SparkFolder, views: SparkViews) -> _Opened:
    """Open every table as ``models.data.validation._open_views`` does, registering the views on Spark."""
    out = _Opened([], {}, set(), set())
    raw: dict[str, DataFrame] = {}
    for name, table in TABLES.items():
        source, problems = place.locate(table)
        out.findings += problems
        if source is None:
            continue
        out.located.add(name)
        table_open, frame, problems = open_raw(place, source)
        out.findings += problems
        if table_open is not None and frame is not None:
            header = header_findings(table, table_open)
            out.findings += header
            if not any(f.rule == "missing_column" for f in header):
                out.opened[name], raw[name] = table_open, frame
    for name, table_open in out.opened.items():
        frame = raw[name].persist()  # every rule reads it: the files are read once
        views.cached.append(frame)
        views.register("raw_" + name, frame)
        views.view("t_" + name, typed_view_sql(TABLES[name], table_open))
        out.typed.add(name)
    for name in FEATURE_TABLES:  # an optional feature table that is absent is read as no rows
        if name not in out.located:
            views.view("t_" + name, empty_view_sql(TABLES[name]))
            out.typed.add(name)
    return out


def _counts(views: SparkViews, typed: set[str]) -> dict[str, int]:
    if not typed:
        return {}
    sql = " UNION ALL ".join(f"SELECT {literal(n)} AS t, count(*) AS n FROM {ident('t_' + n)}" for n in typed)
    found = {str(r[0]): int(r[1]) for r in views.sql(sql).collect()}
    return {n: found[n] for n in typed}


def _run_all(views: SparkViews, rules: list[Rule], *, max_examples: int) -> list[Finding]:
    """Every rule in one Spark job; rule by rule if that fails (as ``validation._run_all``)."""
    if not rules:
        return []
    try:
        rows = _rows(views, union_sql(rules, max_examples))
    except Exception:  # Spark raises analysis and execution errors of many classes
        found = [f for rule in rules for f in _run_one(views, rule, max_examples=max_examples)]
    else:
        found = findings_of(rules, rows)
    return with_values(found, rules, run=lambda sql: [tuple(r) for r in views.sql(sql).collect()])


def _run_one(views: SparkViews, rule: Rule, *, max_examples: int) -> list[Finding]:
    try:
        rows = _rows(views, union_sql([rule], max_examples))
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return [Finding(rule.table, "unreadable", f"could not be read: {first}", column=rule.column)]
    return findings_of([rule], rows) if rows else []


def _rows(views: SparkViews, duckdb_sql: str) -> list[tuple[Any, ...]]:
    """The rows of ``union_sql`` in its order (Spark may drop an ORDER BY inside a subquery)."""
    rows = [tuple(r) for r in views.sql(duckdb_sql).collect()]
    return sorted(rows, key=lambda r: (int(r[0]), str(r[1]), int(r[2])))


def _sensitive_findings(views: SparkViews, terms: tuple[Term, ...]) -> list[Finding]:
    out = []
    for column in CHECKED_COLUMNS:
        rows = [tuple(r) for r in views.sql(category_sql(column)).collect()]
        out += category_findings(column, sorted(rows, key=lambda r: str(r[0])), terms=terms)
    if "t_sources" in views.names and "label" in views.columns("t_sources"):
        rows = [tuple(r) for r in views.sql(LABEL_SQL).collect()]
        out += category_findings("label", sorted(rows, key=lambda r: str(r[0])), terms=terms)
    return out


def declared_sources(views: SparkViews) -> dict[str, Declared]:
    """``notice.declared`` on Spark: the folder's ``sources`` table by source."""
    if "t_sources" not in views.names:
        return {}
    return declared_of(tuple(r) for r in views.sql(declared_sql(views.columns("t_sources"))).collect())


def register_usable_sources(views: SparkViews) -> dict[str, date | None]:
    """``notice.register_usable_sources`` on Spark: the view ``usable_sources`` of ``USED_ACTIVITY``."""
    found = usable(notices_of(declared_sources(views)))
    views.view("usable_sources", usable_sources_sql(found))
    return found
