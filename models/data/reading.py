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
from collections.abc import Callable, Iterable
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
    return locate_in(FolderListing(folder, Path.is_file, Path.is_dir, _parquet_parts), table)


@dataclass(frozen=True)
class FolderListing:
    """How to look into a data folder: on this machine (``Path``), or through another file system.

    Paths are ``Path`` values under ``root``; for a folder that is not local (a Hadoop URI) they hold
    the path part of the URI, and only the caller that made the listing turns them back into URIs.
    """

    root: Path
    is_file: Callable[[Path], bool]
    is_dir: Callable[[Path], bool]
    parquet_parts: Callable[[Path], tuple[Path, ...]]  # every *.parquet below a folder, sorted


def _parquet_parts(folder: Path) -> tuple[Path, ...]:
    return tuple(sorted(folder.rglob("*.parquet")))


def locate_in(listing: FolderListing, table: Table) -> tuple[Source | None, list[Finding]]:
    """Find the files of ``table`` in the folder ``listing`` looks into."""
    folder, name = listing.root, table.name
    candidates: list[Source] = []
    if listing.is_file(folder / f"{name}.parquet"):
        candidates.append(Source(name, "parquet", folder, (folder / f"{name}.parquet",)))
    if listing.is_file(folder / f"{name}.csv"):
        candidates.append(Source(name, "csv", folder, (folder / f"{name}.csv",)))
    if listing.is_dir(folder / name):
        parts = listing.parquet_parts(folder / name)
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
    header, findings = check_csv(con, source)
    if header is None:
        return None, findings
    path, table = source.paths[0], source.table
    cols = ", ".join(f"{literal(c)}: 'VARCHAR'" for c in header)
    reader = f"read_csv({literal(path)}, header=true, delim=',', quote='\"', escape='\"', columns={{{cols}}})"
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {ident('raw_' + table)} AS "
        f"SELECT *, row_number() OVER () AS _row, {literal(source.display())} AS _file "
        f"FROM {reader}"
    )
    return OpenedTable(source, tuple(header), dict.fromkeys(header, "VARCHAR")), []


def check_csv(con: duckdb.DuckDBPyConnection, source: Source) -> tuple[list[str] | None, list[Finding]]:
    """The file-level checks of a local CSV file: its header, or None and why it cannot be read.

    Empty, not UTF-8, separated by something else than commas, a repeated header column, or rows
    that DuckDB's strict parse refuses (``con`` runs the parse; nothing is registered on it).
    """
    path = source.paths[0]
    if path.stat().st_size == 0:
        return None, [empty_csv_finding(source)]
    bad = _first_invalid_utf8(path)
    if bad is not None:
        return None, [not_utf8_finding(source, bad)]
    header, problems = check_header(source, _first_line(path))
    if header is None:
        return None, problems
    cols = ", ".join(f"{literal(c)}: 'VARCHAR'" for c in header)
    reader = f"read_csv({literal(path)}, header=true, delim=',', quote='\"', escape='\"', columns={{{cols}}})"
    try:  # the common case: a well-formed file, read once strictly
        con.execute(f"SELECT count(COLUMNS(*)) FROM {reader}").fetchall()
    except duckdb.Error:
        return None, _csv_structural_rejects(source, header)
    return header, []


def empty_csv_finding(source: Source) -> Finding:
    """The finding for a CSV file of 0 bytes."""
    return _finding(source.table, "empty_file", message=f"{source.display()} is empty (no header row)")


def not_utf8_finding(source: Source, bad: tuple[int, int]) -> Finding:
    """The finding for a CSV file whose byte at (line, offset) is not UTF-8."""
    line, offset = bad
    msg = (
        f"{source.display()} is not valid UTF-8: first bad byte at line {line} "
        f"(byte offset {offset}); save the file as UTF-8"
    )
    return _finding(source.table, "not_utf8", message=msg, examples=(Example(source.display(), line - 1),))


def check_header(source: Source, first_line: str) -> tuple[list[str] | None, list[Finding]]:
    """The columns of a CSV header line, or None and the finding (wrong separator, repeated column)."""
    wrong_separator = _separator_problem(source, first_line)
    if wrong_separator is not None:
        return None, [wrong_separator]
    header = _parse_header(first_line)
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        msg = f"{source.display()} header repeats column(s) {', '.join(duplicated)}"
        return None, [_finding(source.table, "duplicate_column", message=msg)]
    return header, []


def _first_invalid_utf8(path: Path) -> tuple[int, int] | None:
    """Return (line, byte offset) of the first byte that is not UTF-8, or None."""
    with path.open("rb") as fh:
        return first_invalid_utf8(iter(lambda: fh.read(_CHUNK), b""))


def first_invalid_utf8(chunks: Iterable[bytes], *, complete: bool = True) -> tuple[int, int] | None:
    """(line, byte offset) of the first byte of ``chunks`` that is not UTF-8, or None.

    ``complete=False``: the chunks are only the start of a file, so a character cut at their end is
    not an error.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, lines = 0, 1
    for chunk in chunks:
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as err:
            # The decoder may hold back up to 3 bytes of an earlier chunk; err.start is
            # relative to (held-back bytes + chunk), close enough to name the line.
            start = max(err.start - len(err.object) + len(chunk), 0)
            return lines + chunk[:start].count(b"\n"), offset + start
        offset += len(chunk)
        lines += chunk.count(b"\n")
    if complete:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return lines, offset
    return None


def _first_line(path: Path) -> str:
    with path.open(encoding="utf-8", newline="") as fh:
        return fh.readline()


def first_line_of(head: bytes) -> str:
    """The first line (with its line ending) of the UTF-8 text ``head`` starts with, as ``_first_line``."""
    return next(iter(io.StringIO(head.decode("utf-8", errors="replace"), newline="")), "")


def _parse_header(first: str, delimiter: str = ",") -> list[str]:
    row = next(csv.reader(io.StringIO(first), delimiter=delimiter), [])
    return [c.strip().lstrip("\ufeff") for c in row]


def other_separator(first: str) -> tuple[str, str, list[str]] | None:
    """The separator, its name and the columns, where a header line splits more on ';', a tab or '|'.

    None when commas split it best.
    """
    by_comma = len(_parse_header(first))
    for sep, name in _OTHER_SEPARATORS.items():
        columns = _parse_header(first, sep)
        if len(columns) > max(by_comma, 1):
            return sep, name, columns
    return None


def _separator_problem(source: Source, first: str) -> Finding | None:
    """A finding when the header splits into more columns on ';', a tab or '|' than on commas.

    Without it a ';'-separated file reads as one column named ``student_id;module_id;...``, and
    the report lists every contract column as missing: true, but no help.
    """
    found = other_separator(first)
    if found is None:
        return None
    sep, name, columns = found
    shown = ", ".join(columns[:4]) + (", ..." if len(columns) > 4 else "")
    msg = (
        f"{source.display()} appears to be separated by {name}, not commas: its header "
        f"splits into {len(columns)} columns on {name} ({shown}) but {len(_parse_header(first))} on "
        "commas. Re-export it as comma-separated CSV (UTF-8), or convert it with "
        f'`waymark data import --mapping FILE.toml` and separator = "{_SEPARATOR_IN_TOML[sep]}" '
        "in the mapping"
    )
    return _finding(source.table, "separator", message=msg)


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
    schemas, findings = check_parquet(source, problem_of=_parquet_problem, read_schema=pq.read_schema)
    if schemas is None:
        return None, findings
    table, names = source.table, schemas[0].names
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


def check_parquet(
    source: Source,
    *,
    problem_of: Callable[[Path], str | None],
    read_schema: Callable[[Path], pa.Schema],
) -> tuple[list[pa.Schema] | None, list[Finding]]:
    """The file-level checks of a table's Parquet files: their schemas, or None and why they cannot be read.

    ``problem_of`` tells what is wrong with a file's bytes (empty, no PAR1 marker), ``read_schema``
    reads its footer: on this machine, or through another file system.
    """
    table = source.table
    schemas: list[pa.Schema] = []
    for path in source.paths:
        problem = problem_of(path)
        if problem is None:
            try:
                schemas.append(read_schema(path))
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
    return schemas, []


def _parquet_problem(path: Path) -> str | None:
    size = path.stat().st_size
    if size < 12:
        return parquet_problem(size, head=b"", tail=b"")
    with path.open("rb") as fh:
        head = fh.read(4)
        fh.seek(-4, 2)
        tail = fh.read(4)
    return parquet_problem(size, head=head, tail=tail)


def parquet_problem(size: int, *, head: bytes, tail: bytes) -> str | None:
    """What is wrong with a file of ``size`` bytes that starts with ``head`` and ends with ``tail``."""
    if size == 0:
        return "is empty (0 bytes), not a Parquet file"
    if size < 12:
        return "is too short to be a Parquet file"
    if head != _PARQUET_MAGIC or tail != _PARQUET_MAGIC:
        return "is not a Parquet file (no PAR1 marker); was it saved as CSV or Excel?"
    return None
