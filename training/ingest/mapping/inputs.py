"""Find each input's files among the sources given, and register one view per input.

An input's ``files`` patterns are matched inside each source folder, or against the names of the
source files themselves. Each input becomes ``wm_in_NAME``: its files' rows (unioned by column name)
with ``_file`` (the file's name as given) and ``_row`` (1-based data row within the file), after the
input's ``keep`` filter.
"""

from __future__ import annotations

import fnmatch
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from waymark.models.data.sqltext import ident, literal
from waymark.training.ingest.mapping.convert import run
from waymark.training.ingest.mapping.readers import READERS, UnreadableText, first_bad_utf8, is_utf8
from waymark.training.ingest.mapping.schema import InputSpec, Mapping, MappingError


class SourceFilesError(MappingError):
    """An input matches no file, or a file cannot be read in the input's format."""


@dataclass(frozen=True)
class SourceFile:
    """One file of an input, and the name it is shown by."""

    path: Path
    shown: str


@dataclass(frozen=True)
class InputStats:
    """What an input read."""

    files: tuple[str, ...]
    columns: tuple[str, ...]
    rows_read: int
    rows_kept: int  # after the input's keep filter


def _matches(pattern: str, sources: Sequence[Path]) -> list[SourceFile]:
    found = []
    for src in sources:
        if src.is_dir():
            found += [
                SourceFile(p, str(p.relative_to(src))) for p in sorted(src.glob(pattern)) if p.is_file()
            ]
        elif fnmatch.fnmatch(src.name, pattern):
            found.append(SourceFile(src, src.name))
    return found


def match_files(mapping: Mapping, sources: Sequence[Path]) -> dict[str, list[SourceFile]]:
    """Each input's files, in a stable order.

    Raises
    ------
    SourceFilesError
        When a source does not exist or an input matches no file (every such input named).
    """
    missing_sources = [str(s) for s in sources if not s.exists()]
    if missing_sources:
        raise SourceFilesError(f"no such file or folder: {', '.join(missing_sources)}")
    matched: dict[str, list[SourceFile]] = {}
    problems = []
    for name, spec in mapping.inputs.items():
        files: dict[Path, SourceFile] = {}
        for pattern in spec.files:
            files.update({f.path.resolve(): f for f in _matches(pattern, sources)})
        if not files:
            shown = ", ".join(str(s) for s in sources)
            problems.append(
                f"inputs.{name}.files: no file matches {', '.join(map(repr, spec.files))} in {shown}"
            )
        matched[name] = list(files.values())
    if problems:
        raise SourceFilesError("\n".join(problems))
    return matched


def unused_files(matched: dict[str, list[SourceFile]], sources: Sequence[Path]) -> list[str]:
    """Files directly inside the source folders (or given as sources) that no input reads."""
    used = {f.path.resolve() for files in matched.values() for f in files}
    candidates = [s for s in sources if s.is_file()]
    candidates += [p for s in sources if s.is_dir() for p in sorted(s.iterdir()) if p.is_file()]
    return [str(p) for p in candidates if p.resolve() not in used and not p.name.startswith(".")]


def _file_view(con: duckdb.DuckDBPyConnection, name: str, *, spec: InputSpec, file: SourceFile) -> str:
    try:
        relation = READERS[spec.format](con, file.path, spec=spec)
        relation.create_view(name)
        con.execute(f"SELECT count(*) FROM {ident(name)}").fetchall()
    except UnreadableText as exc:
        raise SourceFilesError(f"{file.shown}: cannot be read as {spec.encoding}: {exc}") from exc
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        hint = ""
        # a file that is not UTF-8 can fail anywhere (a sniffer's error, say): its bytes are checked
        where = first_bad_utf8(file.path) if spec.format == "csv" and is_utf8(spec.encoding) else ""
        if where:
            raise SourceFilesError(
                f"{file.shown}: cannot be read as utf-8, the default encoding: {where}"
            ) from exc
        mixed = _mixed_line_endings(file.path) if spec.format == "csv" else ""
        if mixed:
            raise SourceFilesError(f"{file.shown}: cannot be read as csv ({first}): {mixed}") from exc
        if spec.format == "csv" and not spec.skip_rows:
            hint = (
                "; if the file opens with lines before its header (a report's title or details), give the "
                "input skip_rows, the number of lines to pass over"
            )
        raise SourceFilesError(f"{file.shown}: cannot be read as {spec.format} ({first}){hint}") from exc
    # A header with its accents as separate characters (Unicode NFD, as macOS tools save) is named as the
    # mapping writes it (NFC): "Numéro étudiant" had been "no source column" beside itself. Each file's
    # own, before the files are put together: a Vietnamese university's grade sheets saved on a Mac
    # beside others saved on Windows made two columns of each accented header, and the Mac files' notes
    # and withdrawal days were read as empty.
    columns = [str(r[0]) for r in con.execute(f"DESCRIBE {ident(name)}").fetchall()]
    composed = {c: unicodedata.normalize("NFC", c) for c in columns}
    selected = "*"
    if any(c != n for c, n in composed.items()) and len(set(composed.values())) == len(columns):
        selected = ", ".join(f"{ident(c)} AS {ident(n)}" for c, n in composed.items())
    numbered = f"row_number() OVER () AS _row, {literal(file.shown)} AS _file"
    return f"SELECT {selected}, {numbered} FROM {ident(name)}"


#: Bytes of a file looked at for line endings of two kinds.
ENDINGS_READ = 64 * 1024 * 1024


def _mixed_line_endings(path: Path) -> str:
    """Why a CSV whose lines end in two ways cannot be read, naming the first line that differs; or ''.

    A Windows export (CRLF) with lines appended on Linux (LF), as a weekly extract concatenated there
    is, failed DuckDB's sniffer with a hint to skip lines before the header, which was no help.
    """
    with path.open("rb") as handle:
        data = handle.read(ENDINGS_READ)
    lines = data.split(b"\n")[:-1]  # the last piece has no ending (or is the rest past the limit)
    crlf = [line.endswith(b"\r") for line in lines]
    if len(set(crlf)) < 2:
        return ""
    line = crlf.index(not crlf[0]) + 1
    kinds = ("Windows (CRLF)", "Unix (LF)") if crlf[0] else ("Unix (LF)", "Windows (CRLF)")
    return (
        f"its lines end in two ways: {kinds[0]} at first, {kinds[1]} from line {line}; write the file "
        "with one kind of line ending (a file appended to on another system often has two)"
    )


def register_input(
    con: duckdb.DuckDBPyConnection, name: str, *, spec: InputSpec, files: list[SourceFile]
) -> InputStats:
    """Register ``wm_in_NAME`` (rows kept) and ``wm_all_NAME`` (rows read) for one input.

    Raises
    ------
    SourceFilesError
        When a file cannot be read, or a ``keep`` or ``drop`` column is not in the input.
    """
    parts = [_file_view(con, f"wm_file_{name}_{i}", spec=spec, file=f) for i, f in enumerate(files)]
    all_rows = ident("wm_all_" + name)
    run(con, f"CREATE OR REPLACE TEMP VIEW {all_rows} AS {' UNION ALL BY NAME '.join(parts)}")
    columns = tuple(r[0] for r in con.execute(f"DESCRIBE {all_rows}").fetchall())
    for rule, filtered in (("keep", spec.keep), ("drop", spec.drop)):
        absent = [c for c in filtered if c not in columns]
        if absent:
            have = ", ".join(c for c in columns if not c.startswith("_"))
            raise SourceFilesError(
                f"inputs.{name}.{rule}: no column {', '.join(map(repr, absent))} (the files have: {have})"
            )
    # drop = { grade = [""] } keeps the rows whose grade is not empty (NOT of a NULL keeps nothing).
    where = " AND ".join(
        [
            *(_kept(ident(c), vs) for c, vs in spec.keep.items()),
            *(f"NOT coalesce({_kept(ident(c), vs)}, FALSE)" for c, vs in spec.drop.items()),
        ]
    )
    run(
        con,
        f"CREATE OR REPLACE TEMP VIEW {ident('wm_in_' + name)} AS "
        f"SELECT * FROM {all_rows} WHERE {where or 'TRUE'}",
    )
    return InputStats(
        files=tuple(f.shown for f in files),
        columns=tuple(c for c in columns if c not in {"_file", "_row"}),
        rows_read=_count(con, "wm_all_" + name),
        rows_kept=_count(con, "wm_in_" + name),
    )


def _count(con: duckdb.DuckDBPyConnection, view: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {ident(view)}").fetchall()[0]
    return int(row[0]) if row else 0


def _kept(column: str, values: list[str]) -> str:
    """SQL: ``column`` is one of ``values``; "" matches an empty cell (read as no value, NULL)."""
    listed = [v for v in values if v != ""]
    parts = [f"{column} IN ({', '.join(literal(v) for v in listed)})"] if listed else []
    if "" in values:
        parts.append(f"({column} IS NULL OR CAST({column} AS VARCHAR) = '')")
    return "(" + " OR ".join(parts) + ")" if parts else "FALSE"
