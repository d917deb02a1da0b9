"""The student directory: how to address and reach a student, for outreach only.

``waymark directory import FILE`` loads a CSV ``student_id,display_name,preferred_name,pronouns,email``
(the last three of which may be empty except email). The file is the whole directory: the import
replaces every entry in one transaction or, when any row breaks a rule, changes nothing and names
every broken row. Students whose erasure was processed are left out (CoP §12), however often an
upstream export lists them.

The directory lives in the service database only. Features, training, MLflow and the fairness audit
never read it (an import-linter contract and a test hold that); the service shows an entry to staff
with the student in scope and to the student, and every read is in the access log.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pandas as pd
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Engine, delete, insert, select, union
from sqlalchemy.orm import Session

from waymark.service.db.engine import transaction
from waymark.service.db.schema import AccessGrant, DirectoryEntry, Indicator, TrainingExclusion

COLUMNS = ("student_id", "display_name", "preferred_name", "pronouns", "email")
REQUIRED = ("student_id", "display_name", "email")
WIDTHS = {"student_id": 64, "display_name": 200, "preferred_name": 200, "pronouns": 64, "email": 254}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SHOWN = 20


class DirectoryRefused(ValueError):
    """The file breaks a rule; nothing was changed."""


@dataclass(frozen=True)
class DirectoryImport:
    """What an import did."""

    loaded: int
    skipped_erased: int


def _read(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DirectoryRefused(f"{path}: cannot be read as CSV ({exc}); nothing was imported") from exc
    missing = [c for c in REQUIRED if c not in frame.columns]
    unknown = [c for c in frame.columns if c not in COLUMNS]
    if missing or unknown:
        faults = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + (
            [f"unknown column(s) {', '.join(map(str, unknown))}"] if unknown else []
        )
        raise DirectoryRefused(
            f"{path}: {'; '.join(faults)}; expected {','.join(COLUMNS)} (preferred_name and pronouns "
            "may be left out); nothing was imported"
        )
    for column in COLUMNS:
        if column not in frame.columns:
            frame[column] = ""
    out: pd.DataFrame = frame[list(COLUMNS)].apply(lambda s: s.str.strip())
    return out


def _row_problems(row: dict[str, str]) -> list[str]:
    out = [f"{c} is empty" for c in REQUIRED if not row[c]]
    out += [f"{c} is longer than {w} characters" for c, w in WIDTHS.items() if len(row[c]) > w]
    out += [f"{c} holds a control character" for c in COLUMNS if _CONTROL.search(row[c])]
    if row["email"] and not out:
        try:
            validate_email(row["email"], check_deliverability=False)
        except EmailNotValidError as exc:
            out.append(f"email {row['email']!r} is not an email address ({exc})")
    return out


def problems(frame: pd.DataFrame, path: Path, *, known: frozenset[str] | None) -> list[str]:
    """Every broken row of ``frame``, named by file and line (the header is line 1)."""
    records = cast(list[dict[str, str]], frame.to_dict("records"))
    seen = Counter(r["student_id"] for r in records)
    first: dict[str, int] = {}
    out = []
    for line, row in enumerate(records, start=2):
        where, student = f"{path.name} line {line}", row["student_id"]
        found = _row_problems(row)
        if student and seen[student] > 1:
            if student in first:
                found.append(f"student_id {student!r} appears again (first on line {first[student]})")
            else:
                first[student] = line
        if student and known is not None and student not in known and not found:
            found.append(f"student_id {student!r} is not a student Waymark knows")
        out += [f"{where}: {p}" for p in found]
    return out


def known_students(engine: Engine) -> frozenset[str]:
    """Students the service database knows: in any scored batch or any student-scope relationship."""
    query = union(
        select(Indicator.student_id).distinct(),
        select(AccessGrant.scope_id).where(AccessGrant.scope_type == "student"),
    )
    with transaction(engine) as session:
        return frozenset(str(s) for s in session.scalars(query))


def import_directory(engine: Engine, path: Path, *, known: frozenset[str] | None) -> DirectoryImport:
    """Replace the directory with the entries in ``path``.

    ``known`` is the set of students an entry may name (from the data folder, or ``known_students``);
    None accepts any identifier.

    Raises
    ------
    DirectoryRefused
        If the file cannot be read or any row breaks a rule; nothing is changed.
    """
    frame = _read(path)
    found = problems(frame, path, known=known)
    if found:
        shown = found[:SHOWN] + ([f"... and {len(found) - SHOWN} more"] if len(found) > SHOWN else [])
        raise DirectoryRefused("nothing was imported:\n" + "\n".join(shown))
    now = datetime.now(UTC)
    with transaction(engine) as session:
        erased = set(session.scalars(select(TrainingExclusion.student_id)))
        rows = [
            {
                **{c: (v or None) for c, v in row.items()},
                "display_name": row["display_name"],
                "email": row["email"],
                "imported_at": now,
            }
            for row in cast(list[dict[str, str]], frame.to_dict("records"))
            if row["student_id"] not in erased
        ]
        session.execute(delete(DirectoryEntry))
        if rows:
            session.execute(insert(DirectoryEntry), rows)
    return DirectoryImport(loaded=len(rows), skipped_erased=len(frame) - len(rows))


def entries(session: Session, students: list[str]) -> dict[str, DirectoryEntry]:
    """The entries of ``students`` (the caller checked they are in scope, and records the read)."""
    if not students:
        return {}
    query = select(DirectoryEntry).where(DirectoryEntry.student_id.in_(students))
    return {e.student_id: e for e in session.scalars(query)}


def forget(session: Session, student_id: str) -> None:
    """Remove a student's entry (erasure)."""
    session.execute(delete(DirectoryEntry).where(DirectoryEntry.student_id == student_id))
