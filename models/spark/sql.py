"""DuckDB SQL translated for Spark SQL by SQLGlot: one definition of every query, two engines."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import cast

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
        for cast in list(tree.find_all(exp.TryCast)):
            if _is_text_to_double(cast):
                cast.replace(_text_to_double(cast.this))
        tree = tree.transform(_for_spark)
        return str(tree.sql(dialect="spark", unsupported_level=sqlglot.ErrorLevel.RAISE))
    except (sqlglot.errors.ParseError, sqlglot.errors.UnsupportedError) as err:
        raise NotTranslatable(f"cannot translate for Spark SQL: {err}") from err


def _for_spark(node: exp.Expression) -> exp.Expression:
    r"""Rewrite what SQLGlot leaves untranslated, or translates with other semantics, for Spark SQL.

    * ``regexp_full_match(s, p)``: ``s RLIKE '^(?:p)\z'`` (``\z``: Java's ``$`` also matches
      before a final line break).
    * ``isfinite(x)``: Spark has none; not NaN and not infinite (NULL stays NULL).
    * ``trunc(x)``: SQLGlot casts to BIGINT, which saturates beyond 2^63; ``x - x % 1`` truncates any
      finite double or decimal (Java's ``%`` keeps the sign of ``x``, as truncation toward zero needs),
      and an infinity or NaN is left as it is.
    * ``json_object(k, v, ...)``: ``to_json(named_struct(k, v, ...))``, keeping NULL values as DuckDB.
    * ``TRY_CAST(trim(s) AS DOUBLE)`` (rewritten first, in ``to_spark``): text read as DuckDB reads
      it. Java's parser also takes a type suffix (``1.5d``), which DuckDB refuses, and refuses digit
      separators (``1_000``), which DuckDB takes.
    """
    if isinstance(node, exp.RegexpFullMatch) and isinstance(node.expression, exp.Literal):
        pattern = exp.Literal.string("^(?:" + node.expression.this + ")\\z")
        return exp.RegexpLike(this=node.this, expression=pattern)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "isfinite" and len(node.expressions) == 1:
        return _finite(node.expressions[0])
    if isinstance(node, exp.Trunc) and node.args.get("decimals") is None:
        x = node.this
        fraction = exp.Mod(this=x.copy(), expression=_number(1))
        whole = exp.Sub(this=x.copy(), expression=fraction.copy())
        infinite = exp.func("isnan", fraction)  # x % 1 of an infinity is NaN: it is its own truncation
        return exp.Case(ifs=[exp.If(this=infinite, true=x.copy())], default=whole)
    if isinstance(node, exp.JSONObject):
        pairs: list[exp.Expression] = []
        for pair in node.expressions:
            pairs += [pair.this.copy(), pair.expression.copy()]
        options = exp.Anonymous(this="map", expressions=[_text("ignoreNullFields"), _text("false")])
        return cast("exp.Expression", exp.func("to_json", exp.func("named_struct", *pairs), options))
    return node


def _number(value: int) -> exp.Expression:
    return exp.Literal.number(value)


def _text(value: str) -> exp.Literal:
    return exp.Literal.string(value)


def _finite(x: exp.Expression) -> exp.Expression:
    infinite = exp.EQ(this=exp.Abs(this=x.copy()), expression=exp.cast(_text("Infinity"), "DOUBLE"))
    return exp.paren(exp.and_(exp.not_(exp.func("isnan", x.copy())), exp.not_(infinite)))


def _is_text_to_double(node: exp.Expression) -> bool:
    return (
        isinstance(node, exp.TryCast)
        and isinstance(node.this, exp.Trim)
        and node.to.is_type(exp.DataType.Type.DOUBLE)
    )


def _text_to_double(text: exp.Expression) -> exp.Expression:
    suffixed = exp.RegexpLike(this=text.copy(), expression=_text("[0-9.][dDfF]\\z"))
    joined = exp.func("regexp_replace", text.copy(), _text("(?<=[0-9])_(?=[0-9])"), _text(""))
    value = exp.Case(ifs=[exp.If(this=suffixed, true=exp.null())], default=joined)
    return exp.TryCast(this=value, to=exp.DataType.build("DOUBLE"), safe=True)


def renamed(duckdb_sql: str, names: Mapping[str, str]) -> str:
    """``duckdb_sql`` (still DuckDB's dialect) reading table ``names[t]`` wherever it reads ``t``.

    A renamed table keeps its old name as its alias, so ``t.column`` still resolves.
    """
    tree = sqlglot.parse_one(duckdb_sql, read="duckdb")
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if table.name in names and table.name not in ctes:
            alias = table.alias_or_name
            table.set("this", exp.to_identifier(names[table.name]))
            if not table.alias:
                table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    return str(tree.sql(dialect="duckdb"))
