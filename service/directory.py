"""The student directory: how to address and reach a student, for outreach only.

``waymark directory import FILE`` loads a CSV ``student_id,display_name,preferred_name,pronouns,email``,
with ``other_name`` (the name in a second script) if the records hold one; ``preferred_name``,
``pronouns`` and ``other_name`` may be left out or empty. The file is the whole directory: the import
replaces every entry in one transaction or, when any row breaks a rule, changes nothing and names
every broken row. Students whose erasure was processed are left out (CoP §12), however often an
upstream export lists them.

The directory lives in the service database only. Features, training, MLflow and the fairness audit
never read it (an import-linter contract and a test hold that); the service shows an entry to staff
with the student in scope and to the student, and every read is in the access log.
"""

from __future__ import annotations

import csv
import dataclasses
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Engine, delete, insert, select, union
from sqlalchemy.orm import Session

from waymark.service.db.engine import erasure_barrier, transaction
from waymark.service.db.schema import (
    AccessGrant,
    DirectoryEntry,
    Indicator,
    ProcessingRestriction,
    TrainingExclusion,
)
from waymark.service.spreadsheet import separator_said

COLUMNS = ("student_id", "display_name", "preferred_name", "pronouns", "email", "other_name")
REQUIRED = ("student_id", "display_name", "email")
WIDTHS = {
    "student_id": 64,
    "display_name": 200,
    "preferred_name": 200,
    "pronouns": 64,
    "email": 254,
    "other_name": 200,
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Embeddings and isolates (U+202A to U+202C, U+2066 to U+2069) are layout hints that office software
# and records exports put around right-to-left text; the pages isolate each name themselves, so they
# are removed (and counted). An override (U+202D, U+202E) turns the letters after it around as shown,
# so that "Ali" reads as another name: refused, as is any other invisible format character or line
# separator (a word joiner, tag characters, U+2028). Kept: the direction marks (U+200E, U+200F,
# U+061C), the joiners Persian and Indic names need (U+200C, U+200D) and the soft hyphen.
_LAYOUT = re.compile("[\u202a-\u202c\u2066-\u2069\ufeff]")  # and a byte-order mark inside a field
# the zero-width space separates words in Thai, Khmer, Lao and Burmese; U+180E is Mongolian spelling
_KEPT_FORMAT = frozenset("\u200b\u200c\u200d\u200e\u200f\u061c\u00ad\u180e")


def _invisible(value: str) -> str | None:
    """The first invisible character ``value`` may not hold (None when it holds none)."""
    return next(
        (c for c in value if unicodedata.category(c) in {"Cf", "Zl", "Zp"} and c not in _KEPT_FORMAT),
        None,
    )


SHOWN = 20


class DirectoryRefused(ValueError):
    """The file breaks a rule; nothing was changed."""


@dataclass(frozen=True)
class DirectoryImport:
    """What an import did."""

    loaded: int
    skipped_erased: int
    layout_removed: int = 0  # fields whose embedding or isolate controls were removed


def _without_layout(value: str) -> str:
    return _LAYOUT.sub("", value)


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, str]
    width_fault: str | None
    written: str | None = None  # the student number as the file writes it, when replaced by its pseudonym
    layout: int = 0  # fields that held embedding or isolate controls, removed


def _read(path: Path) -> list[_Row]:
    try:
        # utf-8-sig: Excel's "CSV UTF-8" begins with a byte-order mark, which read as utf-8 became part
        # of the first column's name ("missing column(s) student_id; unknown column(s) \ufeffstudent_id")
        with path.open(encoding="utf-8-sig", newline="") as handle:
            lines = list(csv.reader(handle))
    except UnicodeDecodeError as exc:
        # A French university's ISO-8859-15 export had met a codec's traceback-like message alone.
        raise DirectoryRefused(
            f"{path}: is not UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start:,}), which the "
            "directory is read as; nothing was imported. Save it as UTF-8, or convert it: iconv -f "
            "CP1252 -t UTF-8 (most Windows and Excel exports), -f ISO-8859-15 (French Apogée exports), "
            "-f CP1250 (Central European)"
        ) from exc
    except (OSError, csv.Error) as exc:
        raise DirectoryRefused(f"{path}: cannot be read as CSV ({exc}); nothing was imported") from exc
    header = [h.strip() for h in lines[0]] if lines else []
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        faults = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + (
            [f"unknown column(s) {', '.join(unknown)}"] if unknown else []
        )
        raise DirectoryRefused(
            f"{path}: {'; '.join(faults) or 'a column is named twice'}; expected {','.join(COLUMNS)} "
            f"(preferred_name, pronouns and other_name may be left out){separator_said(header)}; nothing was "
            "imported"
        )
    rows = []
    for line, fields in enumerate(lines[1:], start=2):
        if not any(f.strip() for f in fields):
            continue  # a blank line
        fault = None if len(fields) == len(header) else f"has {len(fields)} fields, the header {len(header)}"
        # composed (NFC), as the importer reads every cell
        values = dict(
            zip(
                header,
                (unicodedata.normalize("NFC", _without_layout(f).strip()) for f in fields),
                strict=False,
            )
        )
        layout = sum(1 for f in fields if _LAYOUT.search(f))
        rows.append(_Row(line, {c: values.get(c, "") for c in COLUMNS}, fault, layout=layout))
    return rows


def _row_problems(row: _Row) -> list[str]:
    if row.width_fault:
        return [row.width_fault]
    values = row.values
    out = [f"{c} is empty" for c in REQUIRED if not values[c]]
    out += [f"{c} is longer than {w} characters" for c, w in WIDTHS.items() if len(values[c]) > w]
    out += [f"{c} holds a control character" for c in COLUMNS if _CONTROL.search(values[c])]
    out += [
        f"{c} holds an invisible character (U+{ord(found):04X} {unicodedata.name(found, 'unnamed')}), which "
        "can make it read as other text: remove it (the pages set each name's direction themselves)"
        for c in COLUMNS
        if (found := _invisible(values[c]))
    ]
    if values["email"] and not out:
        try:
            validate_email(values["email"], check_deliverability=False)
        except EmailNotValidError as exc:
            out.append(f"email {values['email']!r} is not an email address ({exc})")
    return out


def problems(
    rows: list[_Row],
    path: Path,
    *,
    known: frozenset[str] | None,
    pseudonym: Callable[[str], str] | None = None,
) -> list[str]:
    """Every broken row, named by file and line (the header is line 1)."""
    first: dict[str, int] = {}
    out = []
    for row in rows:
        student = row.values["student_id"]
        found = _row_problems(row)
        if student and student in first:
            found.append(
                f"student_id {row.written or student!r} appears again (first on line {first[student]})"
            )
        elif student:
            first[student] = row.line
        if student and known is not None and student not in known and not found:
            # named as the file writes it: a pseudonym cannot be traced back to a line of the export
            found.append(
                f"student_id {row.written or student!r} is not a student Waymark knows"
                + _written_otherwise(row.written or student, known=known, pseudonym=pseudonym)
            )
        out += [f"{path.name} line {row.line}: {p}" for p in found]
    return out


def _written_otherwise(number: str, *, known: frozenset[str], pseudonym: Callable[[str], str] | None) -> str:
    """A hint where the number, without its separators, is a student Waymark knows.

    A Swedish university's directory wrote Ladok's personnummer `000108-6131`, the data imports the ten
    digits: all 2,930 rows were refused, and nothing said how near they were.
    """
    bare = re.sub(r"[\W_]", "", number)
    if not bare or bare == number or (pseudonym(bare) if pseudonym else bare) not in known:
        return ""
    return (
        f" (written {bare!r}, without its separators, it is: the data imports wrote the numbers in that "
        "form, so write them so in this file too)"
    )


def known_students(engine: Engine) -> frozenset[str]:
    """Students the service database knows: in any scored batch or any student-scope relationship.

    And those who asked for their processing to be restricted: an upheld objection removes their
    indicators, and the next directory import had been refused whole for naming them (a reviewer's
    finding).
    """
    query = union(
        select(Indicator.student_id).distinct(),
        select(AccessGrant.scope_id).where(AccessGrant.scope_type == "student"),
        select(ProcessingRestriction.student_id),
    )
    with transaction(engine) as session:
        return frozenset(str(s) for s in session.scalars(query))


def import_directory(
    engine: Engine,
    path: Path,
    *,
    known: frozenset[str] | None,
    pseudonym: Callable[[str], str] | None = None,
) -> DirectoryImport:
    """Replace the directory with the entries in ``path``.

    ``known`` is the set of students an entry may name (from the data folder, or ``known_students``);
    None accepts any identifier. ``pseudonym``, when given, turns the file's student numbers into the
    pseudonyms the data folder uses (the one the data imports applied), before anything is checked.

    Raises
    ------
    DirectoryRefused
        If the file cannot be read or any row breaks a rule; nothing is changed.
    """
    rows = _read(path)
    if pseudonym is not None:
        rows = [
            dataclasses.replace(row, written=number, values={**row.values, "student_id": pseudonym(number)})
            if (number := row.values["student_id"])
            else row
            for row in rows
        ]
    if known is not None:  # an erased student is left out below, not refused as unknown: upstream exports
        with transaction(engine) as session:  # keep listing them, and erasure took them from ``known``
            known = known | frozenset(session.scalars(select(TrainingExclusion.student_id)))
    found = problems(rows, path, known=known, pseudonym=pseudonym)
    if found:
        shown = found[:SHOWN] + ([f"... and {len(found) - SHOWN} more"] if len(found) > SHOWN else [])
        raise DirectoryRefused("nothing was imported:\n" + "\n".join(shown))
    now = datetime.now(UTC)
    with transaction(engine) as session:
        erasure_barrier(session)  # an erasure processed meanwhile is seen here, not undone
        erased = set(session.scalars(select(TrainingExclusion.student_id)))
        kept = [
            {**{c: (v or None) for c, v in row.values.items()}, "imported_at": now}
            for row in rows
            if row.values["student_id"] not in erased
        ]
        session.execute(delete(DirectoryEntry))
        if kept:
            session.execute(insert(DirectoryEntry), kept)
    return DirectoryImport(
        loaded=len(kept), skipped_erased=len(rows) - len(kept), layout_removed=sum(r.layout for r in rows)
    )


def entries(session: Session, students: list[str]) -> dict[str, DirectoryEntry]:
    """The entries of ``students`` (the caller checked they are in scope, and records the read)."""
    if not students:
        return {}
    query = select(DirectoryEntry).where(DirectoryEntry.student_id.in_(students))
    return {e.student_id: e for e in session.scalars(query)}


def forget(session: Session, student_id: str) -> None:
    """Remove a student's entry (erasure)."""
    session.execute(delete(DirectoryEntry).where(DirectoryEntry.student_id == student_id))
