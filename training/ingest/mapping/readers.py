"""Readers: one export file in, a DuckDB relation of text columns out.

A reader knows a file format and nothing of the contract: the mapping decides what the columns mean.
Every value is text (``150.0`` stays ``150.0``; conversion is the mapping's job), so that one set of
conversion rules serves every format.

Built in: ``csv`` (separator auto-detected unless given), ``jsonl`` (nested objects flattened into
dotted column names, lists kept as JSON text) and ``parquet``. Further formats live in the
``formats`` sub-package, one module each, and register themselves with ``@register("name")``; every
module there is imported when this one is, so a new format needs no edit here.
"""

from __future__ import annotations

import codecs
import importlib
import os
import pkgutil
import re
import tempfile
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import duckdb

from waymark.models.data.sqltext import ident, literal
from waymark.training.ingest.mapping.schema import InputSpec


class Reader(Protocol):
    """Read one file of an input as a relation of text columns."""

    def __call__(
        self, con: duckdb.DuckDBPyConnection, path: Path, *, spec: InputSpec
    ) -> duckdb.DuckDBPyRelation:
        """The file's rows, every column VARCHAR; ``_file`` and ``_row`` are added by the importer."""


READERS: dict[str, Reader] = {}


def register(name: str) -> Callable[[Reader], Reader]:
    """Register a reader under the ``format`` name a mapping's input gives."""

    def add(reader: Reader) -> Reader:
        READERS[name] = reader
        return reader

    return add


def as_text(con: duckdb.DuckDBPyConnection, relation: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """Every column of ``relation`` as VARCHAR (nested values as JSON text)."""
    casts = [f"{_text_of(ident(name), str(kind))} AS {ident(name)}" for name, kind in _columns(relation)]
    view = _view_name(con)
    relation.create_view(view)
    return con.sql(f"SELECT {', '.join(casts)} FROM {ident(view)}")


def _text_of(expr: str, kind: str) -> str:
    if kind == "VARCHAR":
        return expr
    if kind.startswith(("STRUCT", "MAP")) or kind.endswith("]"):
        return f"CAST(to_json({expr}) AS VARCHAR)"
    return f"CAST({expr} AS VARCHAR)"


def _columns(relation: duckdb.DuckDBPyRelation) -> list[tuple[str, object]]:
    return list(zip(relation.columns, relation.types, strict=True))


_counter = iter(range(1 << 62))


def _view_name(con: duckdb.DuckDBPyConnection) -> str:
    del con
    return f"_reader_{next(_counter)}"


@register("csv")
def read_csv(con: duckdb.DuckDBPyConnection, path: Path, *, spec: InputSpec) -> duckdb.DuckDBPyRelation:
    """A delimited text file; the separator is sniffed unless the input gives one."""
    options = [
        f"header = {'true' if spec.header else 'false'}",
        "all_varchar = true",
        "null_padding = false",
    ]
    if spec.skip_rows:
        options.append(f"skip = {int(spec.skip_rows)}")
    if spec.separator is not None:
        options.append(f"delim = {literal(spec.separator)}")
    if not is_utf8(spec.encoding):
        path = _utf8_copy(con, path, encoding=spec.encoding)
    return con.sql(f"SELECT * FROM read_csv({literal(path)}, {', '.join(options)})")


class UnreadableText(ValueError):
    """A text file holds bytes its encoding does not allow (the line and the byte named)."""


def is_utf8(encoding: str) -> bool:
    """True for UTF-8, which DuckDB's CSV reader decodes itself (a byte-order mark included)."""
    return codecs.lookup(encoding).name == "utf-8"


#: Windows-1252 and ISO-8859-1 (latin-1) differ only in bytes 0x80 to 0x9F: control characters in
#: latin-1 that no text holds, and the en dash, curly quotes and euro sign in Windows-1252.
_C1 = re.compile("[\x80-\x9f]")


def _utf8_copy(con: duckdb.DuckDBPyConnection, path: Path, *, encoding: str) -> Path:
    """A UTF-8 copy of a text file in another encoding, removed when ``con`` is.

    DuckDB's CSV reader decodes UTF-8, latin-1 and UTF-16 only; a Windows export (Windows-1252, as
    HISinOne and Excel on Windows write) needs another. Python's codecs decode any of them, so every
    encoding but UTF-8 is decoded here, strictly: a byte the encoding does not allow is an error
    naming its line, never a character guessed. The copy is private to this user (``mkstemp``).
    """
    latin1 = codecs.lookup(encoding).name == "iso8859-1"
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    handle, name = tempfile.mkstemp(prefix="waymark-text-", suffix=".csv")
    target = Path(name)
    weakref.finalize(con, target.unlink, missing_ok=True)
    line = 1
    with path.open("rb") as source, os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as exc:  # positions are in exc.object: bytes carried over, then chunk
                raise _unreadable(exc, line=line, encoding=encoding) from exc
            if latin1 and (c1 := _C1.search(text)):
                at = line + text[: c1.start()].count("\n")
                raise UnreadableText(
                    f"line {at}: byte 0x{ord(c1.group()):02x} is a control character in latin-1, which "
                    'text never holds: the file is most likely Windows-1252 (give encoding = "cp1252"), '
                    "as Excel and many Windows systems write"
                )
            out.write(text)
            line += text.count("\n")
        try:
            out.write(decoder.decode(b"", final=True))
        except UnicodeDecodeError as exc:  # the file ends inside a character
            raise _unreadable(exc, line=line, encoding=encoding) from exc
    return target


def _unreadable(exc: UnicodeDecodeError, *, line: int, encoding: str) -> UnreadableText:
    start, data = max(exc.start, 0), bytes(exc.object)
    at = line + data[:start].decode(encoding, errors="replace").count("\n")
    if start >= len(data):
        return UnreadableText(f"line {at}: the file ends inside a character, which is not {encoding}")
    hint = _guess(data[start:], encoding=encoding)
    return UnreadableText(f"line {at}: byte 0x{data[start]:02x} is not {encoding}{hint}")


def first_bad_utf8(path: Path) -> str:
    """Where a file stops being UTF-8: its line and byte, and the likely encoding; "" when it is UTF-8."""
    with path.open("rb") as fh:
        if fh.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):  # Excel's "Unicode text"
            return 'line 1: the file begins with a UTF-16 byte-order mark: give the input encoding = "utf-16"'
        fh.seek(0)
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return f"line {number}: byte 0x{raw[exc.start]:02x} is not utf-8{_guess(raw[exc.start :])}"
    return ""


def _guess(rest: bytes, *, encoding: str = "utf-8") -> str:
    """A hint at the file's encoding from the bytes where decoding stopped (and the encoding tried).

    UTF-8 read as another encoding is named first. A run of bytes above 0x7F is text in a script other
    than Latin (``_other_script``); a lone one among ASCII letters is a European letter, most often
    of Windows-1252. A character plain shift_jis lacks but Windows' cp932 has (the 髙 of 髙橋) asks
    for cp932, and a syllable plain euc-kr lacks but cp949 has (the 똠 of 김똠이) for cp949.
    """
    if codecs.lookup(encoding).name != "utf-8" and _utf8(rest[:24]):
        return ' (the text is UTF-8: leave encoding out, or give encoding = "utf-8")'
    if codecs.lookup(encoding).name in {"shift_jis", "shift_jisx0213", "shift_jis_2004"} and _decodes(
        rest[:2], "cp932"
    ):
        return (
            ' (give the input encoding = "cp932": Windows\' Shift_JIS, which Japanese exports are, has '
            "characters of names that plain shift_jis lacks, such as the 髙 of 髙橋)"
        )
    if codecs.lookup(encoding).name == "euc_kr" and _decodes(rest[:2], "cp949"):
        return (
            ' (give the input encoding = "cp949": Windows\' Korean encoding, which exports labelled EUC-KR '
            "are, has syllables of names that plain euc-kr lacks, such as the 똠 of 김똠이)"
        )
    if codecs.lookup(encoding).name in {"gbk", "gb2312"} and _decodes(rest[:4], "gb18030"):
        return (
            ' (give the input encoding = "gb18030", which holds every character gbk does and the rarer '
            "characters of names gbk lacks, written in four bytes)"
        )
    if other := _other_script(rest[:16]):
        return f" ({other})"
    try:
        shown = rest[:1].decode("cp1252")
    except UnicodeDecodeError:
        return ""
    # Turkish's g-breve, dotless i and s-cedilla are bytes Windows-1252 reads as Icelandic letters;
    # Polish, Czech or Hungarian letters are bytes it reads as symbols (ł as ³, ż as ¿, ą as ¹).
    window = rest[:200]
    others = []
    if any(b in _TURKISH_IN_1252 for b in window):
        others.append(
            '"cp1254" if the text is Turkish, whose ğ, ş and dotless i Windows-1252 reads as ð, þ and ý'
        )
    if any(b in _CENTRAL_EUROPEAN_IN_1252 for b in window):
        others.append(
            '"cp1250" if the text is Polish, Czech, Slovak, Hungarian, Slovene, Croatian or Romanian, '
            "whose ł, ą, ż and ś Windows-1252 reads as ³, ¹, ¿ and œ"
        )
    if any(b in _LATIN9_IN_1252 for b in window):
        others.append(
            '"iso-8859-15" if the text is French (as Apogée exports are) or Finnish, whose œ, Œ, € and š '
            "Windows-1252 reads as ½, ¼, ¤ and ¨"
        )
    return (
        f" (in Windows-1252 it would be {shown!r}: most Windows and Excel exports are Windows-1252, "
        'give the input encoding = "cp1252"' + "".join(f"; or {other}" for other in others) + ")"
    )


#: Bytes of Turkish letters in Windows-1254 (g-breve, dotless i, s-cedilla, capitals: ğ ş Ğ İ Ş) that
#: Windows-1252 reads as ð, ý, þ, Ð, Ý, Þ.
_TURKISH_IN_1252 = frozenset(b"\xf0\xfd\xfe\xd0\xdd\xde")

#: Bytes of Central European letters in Windows-1250 (ł ą ś ż ź Ą Ś Ż) that Windows-1252 reads as symbols
#: or rare letters (³ ¹ œ ¿ Ÿ ¥ Œ ¯); not Ł, which is the £ of British text.
_CENTRAL_EUROPEAN_IN_1252 = frozenset(b"\xb3\xb9\x9c\xbf\x9f\xa5\x8c\xaf")

#: Bytes of ISO-8859-15's letters and euro sign (€ Š š Ž ž Œ œ Ÿ) that Windows-1252 reads as the
#: symbols ¤ ¦ ¨ ¼ ½ ¾ and two accents alone: a French university's "Lætitia Dubœuf" had read
#: "L½titia Dub½uf".
_LATIN9_IN_1252 = frozenset(b"\xa4\xa6\xa8\xb4\xb8\xbc\xbd\xbe")


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _utf8(window: bytes) -> bool:
    """Whether the bytes are UTF-8 with characters beyond ASCII (decoding may have stopped inside one)."""
    for start in range(4):
        try:
            text = codecs.getincrementaldecoder("utf-8")("strict").decode(window[start:])
        except UnicodeDecodeError:
            continue
        if any(ord(c) > 0x7F for c in text):
            return True
    return False


def _other_script(window: bytes) -> str:
    """What a run of high bytes is, with the encodings to try; "" for a European letter among ASCII.

    Kana are Japanese alone, so cp932 is named when they are there. Otherwise the bytes could be
    Cyrillic, Greek or Arabic in a Windows code page, or Korean, Chinese or kanji-only Japanese in a
    double-byte one (each decodes as another's script), so those are named together.
    """
    if sum(b > 0x7F for b in window[:8]) < 6:  # é, ß or ø stand alone among ASCII letters
        return ""
    for start in (0, 1):  # decoding may have stopped on a character's second byte
        text = codecs.getincrementaldecoder("cp932")("replace").decode(window[start:])
        wide = [c for c in text if ord(c) > 0x7F and c != "\ufffd"]
        if len(wide) >= 2 and sum("\u3040" <= c <= "\u30ff" for c in wide) >= len(wide) / 4:
            return 'Japanese text (kana): give the input encoding = "cp932", Windows\' Shift_JIS'
    return (
        "text in a script other than Latin: give the input encoding its system writes, such as "
        '"cp1251" (Cyrillic), "cp1253" (Greek), "cp1255" (Hebrew), "cp1256" (Arabic), "cp932" '
        '(Japanese), "cp949" (Korean), "gb18030" (Chinese) or "big5" (traditional Chinese)'
    )


@register("parquet")
def read_parquet(con: duckdb.DuckDBPyConnection, path: Path, *, spec: InputSpec) -> duckdb.DuckDBPyRelation:
    """A Parquet file, every column as text."""
    del spec
    return as_text(con, con.sql(f"SELECT * FROM read_parquet({literal(path)})"))


@register("jsonl")
def read_jsonl(con: duckdb.DuckDBPyConnection, path: Path, *, spec: InputSpec) -> duckdb.DuckDBPyRelation:
    """JSON lines: one object a line, nested objects flattened to ``outer.inner`` columns."""
    del spec
    raw = con.sql(f"SELECT * FROM read_json({literal(path)}, format = 'newline_delimited')")
    view = _view_name(con)
    raw.create_view(view)
    selects = [f"{expr} AS {ident(name)}" for name, expr in _flattened(raw)]
    return con.sql(f"SELECT {', '.join(selects)} FROM {ident(view)}")


def _flattened(relation: duckdb.DuckDBPyRelation) -> Iterator[tuple[str, str]]:
    for name, kind in _columns(relation):
        yield from _flatten(name, ident(name), kind=kind)


def _flatten(name: str, expr: str, *, kind: object) -> Iterator[tuple[str, str]]:
    if getattr(kind, "id", None) == "struct":
        for child, child_kind in kind.children:  # type: ignore[attr-defined]
            yield from _flatten(
                f"{name}.{child}", f"struct_extract({expr}, {literal(child)})", kind=child_kind
            )
        return
    yield name, _text_of(expr, str(kind))


def _load_formats() -> None:
    package = f"{__package__}.formats"
    folder = Path(__file__).parent / "formats"
    for module in pkgutil.iter_modules([str(folder)]):
        importlib.import_module(f"{package}.{module.name}")


_load_formats()
