"""DuckDB SQL translated for Spark SQL by SQLGlot: one definition of every query, two engines."""

from __future__ import annotations

import functools

import sqlglot
from sqlglot import exp


class NotTranslatable(ValueError):
    """A query uses something SQLGlot cannot say in Spark SQL (a bug of ours: every query is tested)."""


@functools.lru_cache(maxsize=512)
def to_spark(duckdb_sql: str) -> str:
    """``duckdb_sql`` in Spark SQL.

    Raises
    ------
    NotTranslatable
        If SQLGlot cannot translate it faithfully (it raises instead of guessing).
    """
    try:
        tree = sqlglot.parse_one(duckdb_sql, read="duckdb")
        return tree.sql(dialect="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
    except (sqlglot.errors.ParseError, sqlglot.errors.UnsupportedError) as err:
        raise NotTranslatable(f"cannot translate for Spark SQL: {err}") from err


def tables_read(duckdb_sql: str) -> frozenset[str]:
    """The names of the tables ``duckdb_sql`` reads (for registering exactly those on Spark)."""
    tree = sqlglot.parse_one(duckdb_sql, read="duckdb")
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    return frozenset(t.name for t in tree.find_all(exp.Table) if t.name and t.name not in ctes)
