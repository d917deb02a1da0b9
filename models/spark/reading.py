"""A validated data folder's feature-safe tables as typed Spark DataFrames, as ``dataset`` reads them.

Protected characteristics are never among them: the folder is validated whole (the contract covers
every table), and only ``FEATURE_TABLES`` are read from it, activity without the rows of sources students
were not told of (``models.data.notice``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from waymark.models.data import memo
from waymark.models.data.contract import FEATURE_TABLES, TABLES, Column
from waymark.models.data.findings import ContractViolation
from waymark.models.data.notice import (
    USED_ACTIVITY,
    Labels,
    joined_sources,
    kinds,
    labels,
    seen_sql,
    source_as_kind_sql,
)
from waymark.models.data.publish import folder_fingerprint, is_uri
from waymark.models.data.sqltext import ident, literal
from waymark.models.data.validation import null_columns
from waymark.models.spark.engine import ensure_spark_feature_safe
from waymark.models.spark.validation import (
    SparkViews,
    checked_views,
    declared_sources,
    register_usable_sources,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def load_tables(folder: str | Path, session: SparkSession) -> dict[str, DataFrame]:
    """Validate ``folder`` on Spark and return its six feature-safe tables, typed.

    Parameters
    ----------
    folder
        A data folder in the contract: a local path or a Hadoop URI (``models.spark.files``).
    session
        The Spark session.

    Returns
    -------
    dict of pyspark.sql.DataFrame
        By table name: the columns and types ``dataset.read_typed`` gives (text, BIGINT, DOUBLE, DATE),
        an absent optional column as NULLs, unsorted. Ready for ``models.spark.features.spark_features``.

    Raises
    ------
    ContractViolation
        If any contract rule is broken (``validation.require_valid`` on DuckDB).
    """
    with validated(folder, session) as views:
        return feature_tables(views)


@contextmanager
def validated(folder: str | Path, session: SparkSession) -> Iterator[SparkViews]:
    """Validate ``folder`` on Spark and hold its typed views ``t_<table>`` until the block ends.

    For a caller that reads more than the feature tables from one validation (scoring reads the
    ``sources`` table's words, the fairness audit its own table); what it reads beyond
    ``feature_tables`` is its own code, in its own package.

    Raises
    ------
    ContractViolation
        If any contract rule is broken.
    """
    # A local folder that passed DuckDB's check of the contract, unchanged since, is not checked again
    # (``models.data.memo``): an import publishes its folder checked. Spark's own check is never
    # remembered, since the memo's rules digest covers DuckDB's rules and not their translation for
    # Spark. A Hadoop URI (a cluster's store) is checked every time.
    local = None if is_uri(folder) else Path(folder)
    passed = (
        local is not None and local.is_dir() and memo.remembered(local, fingerprint=folder_fingerprint(local))
    )
    with checked_views(folder, session, rules=not passed) as (report, views):
        if not report.ok:
            raise ContractViolation(report)
        register_usable_sources(views)
        yield views


def feature_tables(views: SparkViews) -> dict[str, DataFrame]:
    """The six feature-safe tables of a ``validated`` folder, as ``load_tables`` returns them.

    The DataFrames stay usable after the block of ``validated`` ends.
    """
    # A source that counts as a built-in one is read as that one (``models.data.notice.kinds``).
    source = source_as_kind_sql(kinds(declared_sources(views)))
    return {name: _typed(views, name, source=source) for name in FEATURE_TABLES}


def source_labels(views: SparkViews) -> Labels:
    """``models.data.source_labels`` of a ``validated`` folder, on Spark."""
    found = declared_sources(views)
    read_as = sorted(set(kinds(found).values()))
    present: list[str] = []
    if read_as:  # whether the built-in sources others are read as are in the activity themselves
        among = ", ".join(literal(k) for k in read_as)
        rows = views.sql(f"SELECT DISTINCT source FROM t_activity WHERE source IN ({among})").collect()
        present = [str(r[0]) for r in rows]
    joined = joined_sources(found, present)
    seen = views.sql(seen_sql(joined)).toPandas() if joined else None
    return labels(found, present, seen=seen)


def _typed(views: SparkViews, name: str, *, source: str = "source") -> DataFrame:
    """The typed table ``name``: its contract columns in order (activity's ``source`` read as ``source``)."""
    table = TABLES[name]
    present = set(views.columns("t_" + name))

    def column(c: Column) -> str:
        if c.name not in present:
            return null_columns([c])
        return f"{source} AS source" if name == "activity" and c.name == "source" else ident(c.name)

    select = ", ".join(column(c) for c in table.columns)
    where = USED_ACTIVITY if name == "activity" else "TRUE"
    frame = views.sql(f"SELECT {select} FROM {ident('t_' + name)} WHERE {where}")
    return ensure_spark_feature_safe(frame, name)
