"""Run one SQL statement over tables, on DuckDB (the embedded default) or on Spark.

Feature steps are pure: tables in, table out. This is the edge where they meet an engine. Each
statement is written once, in DuckDB's dialect; the Spark engine translates it (``models.spark``).
Every input passes the protected-characteristics guard first, so no step can be handed one by
mistake, on either engine.
"""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd

from waymark.models.data import ensure_feature_safe
from waymark.models.threads import duckdb_connect


class Engine(Protocol):
    """Runs a DuckDB-dialect SELECT over named tables and returns the engine's own table type."""

    name: str

    def query(self, sql: str, /, **tables: Any) -> Any:
        """``sql`` with each keyword table visible under its name."""
        ...


class DuckDBEngine:
    """The embedded default: pandas frames in, a pandas frame out, one private connection each."""

    name = "duckdb"

    def query(self, sql: str, /, **tables: Any) -> pd.DataFrame:
        """Run ``sql`` over pandas frames (each checked by ``ensure_feature_safe``)."""
        con = duckdb_connect()
        try:
            for name, frame in tables.items():
                con.register(name, ensure_feature_safe(frame, name))
            result: pd.DataFrame = con.sql(sql).df()
            return result
        finally:
            con.close()


DUCKDB = DuckDBEngine()


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
