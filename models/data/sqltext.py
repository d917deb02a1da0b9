"""Quoting for the SQL that validation builds from contract names and file paths.

Only identifiers from the contract or a file header and paths on disk are ever spliced into SQL;
they are quoted here so that an odd header or folder name cannot change a query's meaning.
"""

from __future__ import annotations

from pathlib import Path


def ident(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str | Path) -> str:
    """Quote a string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def literal_list(values: tuple[str, ...] | list[str]) -> str:
    """Quote a list of string literals for ``IN (...)`` or a DuckDB list."""
    return "[" + ", ".join(literal(v) for v in values) + "]"
