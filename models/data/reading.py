"""Finding a table's files in a data folder and exposing them to DuckDB without loading them.

A table is ``NAME.parquet``, ``NAME.csv`` or a folder ``NAME/`` of Parquet parts. This module
checks what can be checked about the files themselves (present, unambiguous, not empty, UTF-8,
really Parquet, readable header) and registers a raw view ``raw_NAME`` with two extra columns:
``_file`` (path relative to the data folder) and ``_row`` (1-based data row within that file).
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from waymark.models.data.contract import Table
from waymark.models.data.findings import Example, Finding
from waymark.models.data.sqltext import ident, literal, literal_list
from waymark.models.threads import duckdb_connect

SourceKind = Literal["csv", "parquet", "parquet_dir"]
_PARQUET_MAGIC = b"PAR1"
_CHUNK = 1 << 22
# Separators that spreadsheet exports use instead of commas (';' where the decimal mark is a comma).
_OTHER_SEPARATORS = {";": "';'", "\t": "tabs", "|": "'|'"}
_SEPARATOR_IN_TOML = {";": ";", "\t": "\\t", "|": "|"}


@dataclass(frozen=True)
class Source:
    """Where a table's data lives."""

    table: str
    kind: SourceKind
    root: Path  # the data folder
    paths: tuple[Path, ...]

    def display(self, path: Path | None = None) -> str:
        """Path relative to the data folder, for messages."""
        target = path if path is not None else self.paths[0]
        if self.kind == "parquet_dir" and path is None:
            return f"{self.table}/"
        return str(target.relative_to(self.root))


@dataclass(frozen=True)
class OpenedTable:
    """A table whose files passed the file-level checks: its header and source types."""

    source: Source
    columns: tuple[str, ...]
    types: dict[str, str]  # column -> DuckDB type name of the raw view
    row_numbers_exact: bool = True


def locate(folder: Path, table: Table) -> tuple[Source | None, list[Finding]]:
    """Find the files of ``table`` in ``folder``."""
    name = table.name
    candidates: list[Source] = []
    if (folder / f"{name}.parquet").is_file():
        candidates.append(Source(name, "parquet", folder, (folder / f"{name}.parquet",)))
    if (folder / f"{name}.csv").is_file():
        candidates.append(Source(name, "csv", folder, (folder / f"{name}.csv",)))
    if (folder / name).is_dir():
        parts = tuple(sorted((folder / name).rglob("*.parquet")))
        if not parts:
            return None, [_finding(name, "empty_folder", message=f"folder {name}/ holds no .parquet parts")]
        candidates.append(Source(name, "parquet_dir", folder, parts))
    if len(candidates) > 1:
        shown = ", ".join(c.display() for c in candidates)
        return None, [_finding(name, "ambiguous_source", message=f"more than one copy of the table: {shown}")]
    if not candidates:
        if table.required:
            msg = f"missing: expected {name}.parquet, {name}.csv or a folder {name}/ of Parquet parts"
            if table.min_rows == 0:
                msg += f"; if none are recorded, write {name}.csv with only its header row: " + ",".join(
                    c.name for c in table.columns if c.required
                )
            return None, [_finding(name, "missing_file", message=msg)]
        return None, []
    return candidates[0], []


def open_table(con: duckdb.DuckDBPyConnection, source: Source) -> tuple[OpenedTable | None, list[Finding]]:
    """Check the files of ``source`` and register ``raw_<table>`` on ``con``."""
    if source.kind == "csv":
        return _open_csv(con, source)
    return _open_parquet(con, source)


def _finding(table: str, rule: str, *, message: str, **kw: object) -> Finding:
    return Finding(table=table, rule=rule, message=message, **kw)  # type: ignore[arg-type]


# --- CSV -----------------------------------------------------------------------------------


def _open_csv(con: duckdb.DuckDBPyConnection, source: Source) -> tuple[OpenedTable | None, list[Finding]]:
    path, table = source.paths[0], source.table
    if path.stat().st_size == 0:
        return None, [_finding(table, "empty_file", message=f"{source.display()} is empty (no header row)")]
    bad = _first_invalid_utf8(path)
    if bad is not None:
        line, offset = bad
        msg = (
            f"{source.display()} is not valid UTF-8: first bad byte at line {line} "
            f"(byte offset {offset}); save the file as UTF-8"
        )
        return None, [
            _finding(table, "not_utf8", message=msg, examples=(Example(source.display(), line - 1),))
        ]
    first_line = _first_line(path)
    wrong_separator = _separator_problem(source, first_line)
    if wrong_separator is not None:
        return None, [wrong_separator]
    header = _parse_header(first_line)
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        msg = f"{source.display()} header repeats column(s) {', '.join(duplicated)}"
        return None, [_finding(table, "duplicate_column", message=msg)]
    cols = ", ".join(f"{literal(c)}: 'VARCHAR'" for c in header)
    reader = f"read_csv({literal(path)}, header=true, delim=',', quote='\"', escape='\"', columns={{{cols}}})"
    try:  # the common case: a well-formed file, read once strictly
        con.execute(f"SELECT count(COLUMNS(*)) FROM {reader}").fetchall()
    except duckdb.Error:
        return None, _csv_structural_rejects(source, header)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {ident('raw_' + table)} AS "
        f"SELECT *, row_number() OVER () AS _row, {literal(source.display())} AS _file "
        f"FROM {reader}"
    )
    return OpenedTable(source, tuple(header), dict.fromkeys(header, "VARCHAR")), []


def _first_invalid_utf8(path: Path) -> tuple[int, int] | None:
    """Return (line, byte offset) of the first byte that is not UTF-8, or None."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, lines = 0, 1
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                # The decoder may hold back up to 3 bytes of an earlier chunk; err.start is
                # relative to (held-back bytes + chunk), close enough to name the line.
                start = max(err.start - len(err.object) + len(chunk), 0)
                return lines + chunk[:start].count(b"\n"), offset + start
            offset += len(chunk)
            lines += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return lines, offset
    return None


def _first_line(path: Path) -> str:
    with path.open(encoding="utf-8", newline="") as fh:
        return fh.readline()


def _parse_header(first: str, delimiter: str = ",") -> list[str]:
    row = next(csv.reader(io.StringIO(first), delimiter=delimiter), [])
    return [c.strip().lstrip("\ufeff") for c in row]


def _separator_problem(source: Source, first: str) -> Finding | None:
    """A finding when the header splits into more columns on ';', a tab or '|' than on commas.

    Without it a ';'-separated file reads as one column named ``student_id;module_id;...``, and
    the report lists every contract column as missing: true, but no help.
    """
    by_comma = len(_parse_header(first))
    for sep, name in _OTHER_SEPARATORS.items():
        columns = _parse_header(first, sep)
        if len(columns) > max(by_comma, 1):
            shown = ", ".join(columns[:4]) + (", ..." if len(columns) > 4 else "")
            msg = (
                f"{source.display()} appears to be separated by {name}, not commas: its header "
                f"splits into {len(columns)} columns on {name} ({shown}) but {by_comma} on commas. "
                "Re-export it as comma-separated CSV (UTF-8), or convert it with "
                f'`waymark data import --mapping FILE.toml` and separator = "{_SEPARATOR_IN_TOML[sep]}" '
                "in the mapping"
            )
            return _finding(source.table, "separator", message=msg)
    return None


def _csv_structural_rejects(source: Source, header: list[str]) -> list[Finding]:
    """Rows with too many or too few fields, or unterminated quotes, each with its line.

    Runs on a connection of its own: DuckDB keeps one ``reject_errors`` table per connection,
    and it must not mix the rejects of different files.
    """
    table, path = source.table, source.paths[0]
    con = duckdb_connect()
    cols = ", ".join(f"{literal(c)}: 'VARCHAR'" for c in header)
    try:
        con.execute(
            # Every column is aggregated so that every field is parsed.
            f"SELECT count(COLUMNS(*)) FROM read_csv({literal(path)}, header=true, delim=',', "
            f"quote='\"', escape='\"', columns={{{cols}}}, store_rejects=true)"
        ).fetchall()  # DuckDB streams: without a fetch the file is not read to the end
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        msg = (
            f"{source.display()} cannot be parsed as CSV ({first}); check quoting and that "
            "every line ends the same way"
        )
        return [_finding(table, "malformed_csv", message=msg)]
    try:
        rows = con.execute(
            "SELECT line, any_value(CAST(error_type AS VARCHAR)), any_value(error_message) "
            "FROM reject_errors GROUP BY line ORDER BY line"
        ).fetchall()
    except duckdb.CatalogException:
        rows = []
    if not rows:
        return [_finding(table, "malformed_csv", message=f"{source.display()} cannot be parsed as CSV")]
    examples = tuple(Example(source.display(), int(line) - 1, value=str(msg)) for line, _, msg in rows)
    kinds = sorted({str(kind).lower() for _, kind, _ in rows})
    msg = (
        f"malformed CSV rows ({', '.join(kinds)}); every row needs {len(header)} fields "
        "like the header. Further checks of this table wait until these rows are fixed"
    )
    return [_finding(table, "malformed_row", message=msg, count=len(rows), examples=examples[:100])]


# --- Parquet -------------------------------------------------------------------------------


def _open_parquet(con: duckdb.DuckDBPyConnection, source: Source) -> tuple[OpenedTable | None, list[Finding]]:
    table = source.table
    schemas: list[pa.Schema] = []
    for path in source.paths:
        problem = _parquet_problem(path)
        if problem is None:
            try:
                schemas.append(pq.read_schema(path))
                continue
            except (pa.ArrowException, OSError) as err:
                problem = f"cannot be read as Parquet ({err})"
        msg = f"{source.display(path)} {problem}"
        return None, [_finding(table, "not_parquet", message=msg, examples=(Example(source.display(path)),))]
    names = schemas[0].names
    for path, schema in zip(source.paths, schemas, strict=True):
        if schema.names != names:
            msg = (
                f"{source.display(path)} has columns {schema.names}, but "
                f"{source.display(source.paths[0])} has {names}; all parts need the same columns"
            )
            return None, [_finding(table, "inconsistent_parts", message=msg)]
    empty = [p for p, s in zip(source.paths, schemas, strict=True) if not s.names]
    if empty:
        return None, [_finding(table, "empty_file", message=f"{source.display(empty[0])} has no columns")]
    files = literal_list([str(p) for p in source.paths])
    rel = (
        "CASE "
        + " ".join(f"WHEN filename = {literal(p)} THEN {literal(source.display(p))}" for p in source.paths)
        + " END"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {ident('raw_' + table)} AS "
        f"SELECT * EXCLUDE (filename, file_row_number), file_row_number + 1 AS _row, {rel} AS _file "
        f"FROM read_parquet({files}, filename=true, file_row_number=true)"
    )
    described = con.execute(f"DESCRIBE {ident('raw_' + table)}").fetchall()
    types = {str(r[0]): str(r[1]) for r in described if r[0] not in ("_row", "_file")}
    return OpenedTable(source, tuple(names), types), []


def _parquet_problem(path: Path) -> str | None:
    size = path.stat().st_size
    if size == 0:
        return "is empty (0 bytes), not a Parquet file"
    if size < 12:
        return "is too short to be a Parquet file"
    with path.open("rb") as fh:
        head = fh.read(4)
        fh.seek(-4, 2)
        tail = fh.read(4)
    if head != _PARQUET_MAGIC or tail != _PARQUET_MAGIC:
        return "is not a Parquet file (no PAR1 marker); was it saved as CSV or Excel?"
    return None
