"""Run one SQL statement over tables, on DuckDB (the embedded default) or on Spark.

Feature steps are pure: tables in, table out. This is the edge where they meet an engine. Each
statement is written once, in DuckDB's dialect; the Spark engine translates it (``models.spark``).
Every input passes the protected-characteristics guard first, so no step can be handed one by
mistake, on either engine.
"""

from __future__ import annotations

from typing import Any, Protocol

import duckdb
import pandas as pd
import pyarrow as pa

from waymark.models.data import ensure_feature_safe
from waymark.models.threads import duckdb_cursor


class Engine(Protocol):
    """Runs a DuckDB-dialect SELECT over named tables and returns the engine's own table type."""

    name: str

    def query(self, sql: str, /, **tables: Any) -> Any:
        """``sql`` with each keyword table visible under its name."""
        ...


class DuckDBEngine:
    """The embedded default: pandas frames or Arrow tables in, a pandas frame out, a cursor each."""

    name = "duckdb"

    def query(self, sql: str, /, **tables: Any) -> pd.DataFrame:
        """Run ``sql`` over the tables (each checked by ``ensure_feature_safe``)."""
        con = _connected(tables)
        try:
            result: pd.DataFrame = con.sql(sql).df()
            return result
        finally:
            con.close()


class DuckDBArrowEngine:
    """DuckDB giving an Arrow table, for a step whose result only feeds another statement.

    The next statement reads it as it is; as a pandas frame its text keys would become Python
    objects first.
    """

    name = "duckdb"

    def query(self, sql: str, /, **tables: Any) -> pa.Table:
        """Run ``sql`` over the tables (each checked by ``ensure_feature_safe``)."""
        con = _connected(tables)
        try:
            return con.sql(sql).to_arrow_table()
        finally:
            con.close()


def _connected(tables: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    con = duckdb_cursor()
    try:
        for name, frame in tables.items():
            con.register(name, ensure_feature_safe(frame, name))
    except BaseException:
        con.close()
        raise
    return con


DUCKDB = DuckDBEngine()
DUCKDB_ARROW = DuckDBArrowEngine()


def query(sql: str, /, engine: Engine | None = None, **tables: Any) -> Any:
    """Run ``sql`` with each keyword table visible as a table of that name.

    Parameters
    ----------
    sql
        One SELECT statement in DuckDB's dialect.
    engine
        Where to run it; DuckDB over pandas frames when None.
    **tables
        Tables by name, of the engine's type (pandas frames for DuckDB).

    Returns
    -------
    The result, of the engine's table type.
    """
    return (engine or DUCKDB).query(sql, **tables)
