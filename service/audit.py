"""The access audit log: one record per read or write of an individual's data, hash-chained.

Each record's hash covers its fields and the previous record's hash; the chain's head (last seq and
hash) is kept in its own row, locked while appending, so concurrent requests never fork the chain and
removing the newest records is detected as well as altering, inserting or removing any other.
Records are written in the same transaction as the access they describe.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.schema import AuditHead, AuditRecord
from service.security import Principal

GENESIS = "0" * 64
_FIELDS = ("seq", "at", "actor", "role", "purpose", "student_id", "action", "request_id", "prev_hash")


def _digest(values: dict[str, object]) -> str:
    text = json.dumps([values[f] for f in _FIELDS], separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def record(
    session: Session, principal: Principal, purpose: str, students: list[str], action: str, request_id: str
) -> None:
    """Append one record per student (in the caller's transaction)."""
    head = session.get(AuditHead, 1, with_for_update=True)
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
    at = datetime.now(UTC).isoformat(timespec="microseconds")
    for student in students:
        values: dict[str, object] = {
            "seq": head.seq + 1,
            "at": at,
            "actor": principal.sub,
            "role": principal.role,
            "purpose": purpose,
            "student_id": student,
            "action": action,
            "request_id": request_id,
            "prev_hash": head.hash,
        }
        digest = _digest(values)
        session.add(AuditRecord(**values, hash=digest))
        head.seq, head.hash = int(str(values["seq"])), digest
    session.flush()


def verify(session: Session) -> list[str]:
    """Every break in the chain (empty when the log is intact)."""
    problems: list[str] = []
    expected_seq, prev = 1, GENESIS
    for rec in session.scalars(select(AuditRecord).order_by(AuditRecord.seq)).yield_per(5000):
        values = {f: getattr(rec, f) for f in _FIELDS}
        if rec.seq != expected_seq:
            problems.append(
                f"record {rec.seq}: expected record {expected_seq} here (records removed or inserted)"
            )
        if rec.prev_hash != prev:
            problems.append(
                f"record {rec.seq}: does not follow the record before it (removed, inserted or altered)"
            )
        if _digest(values) != rec.hash:
            problems.append(f"record {rec.seq}: its contents were altered after it was written")
        expected_seq, prev = rec.seq + 1, rec.hash
    head = session.get(AuditHead, 1)
    last_seq, last_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if (last_seq, last_hash) != (expected_seq - 1, prev):
        problems.append(
            f"the chain should end at record {last_seq}; it ends at {expected_seq - 1} (records removed)"
        )
    return problems


def for_student(session: Session, student_id: str) -> list[AuditRecord]:
    """A student's access log, oldest first (the only way the log is read: by student, never by staff)."""
    query = select(AuditRecord).where(AuditRecord.student_id == student_id).order_by(AuditRecord.seq)
    return list(session.scalars(query))
