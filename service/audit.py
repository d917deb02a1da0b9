"""The access audit log: one record per student per read or write of their data, in a keyed chain.

Each record's hash is an HMAC-SHA256, under a key that never enters the database
(``WAYMARK_AUDIT_KEY_FILE``), of its fields and the previous record's hash; so someone who can write to
the database can neither forge a record nor recompute the chain after altering one. The chain starts
at a random seed written by the migration (``audit_anchor``); its head (last seq and hash) is kept in
its own row, locked while appending, so concurrent requests never fork it. What a chain alone cannot
show, the removal of its newest records or of all of them, a checkpoint kept elsewhere shows:
``checkpoint`` signs the head, and ``verify`` checks the log still holds the record it names.
Records are written in the same transaction as the access they describe.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, func, insert, select, update
from sqlalchemy.orm import Session

from waymark.models.settings import Settings, get_settings
from waymark.service.db.engine import sessions, transaction
from waymark.service.db.schema import AuditAnchor, AuditHead, AuditRecord
from waymark.service.security import ConfigurationError, Principal, read_secret

KEY_INFO = "audit_key"  # where a unit of work carries the key (Session.info)
_LEGACY_FIELDS = ("seq", "at", "actor", "role", "purpose", "student_id", "action", "request_id", "prev_hash")
_FIELDS = (*_LEGACY_FIELDS, "client_request_id")
_DEV_KEY = "audit.key"
NO_STUDENT = ""  # the student_id of records about no one student; never shown to a student


@dataclass(frozen=True)
class RequestIds:
    """The server's id for a request, and the id the client sent (kept beside it, never instead)."""

    server: str
    client: str | None = None

    @classmethod
    def new(cls) -> RequestIds:
        """A fresh server-generated id (for work started outside HTTP, such as a command)."""
        return cls(uuid.uuid4().hex)


def operator(settings: Settings | None = None) -> Principal:
    """The person running a command on this machine, as the access log names them.

    ``WAYMARK_OPERATOR`` (their staff id, as the identity provider names them) where it is set, else
    the machine's ``user@host``, which no sign-in names.
    """
    named = (settings or get_settings()).operator
    return Principal(named or f"{getpass.getuser()}@{socket.gethostname()}"[:64], "operator", None)


def load_key(settings: Settings) -> bytes:
    """The audit key from ``WAYMARK_AUDIT_KEY_FILE`` (development: one made beside the dev keys)."""
    return read_secret(
        settings,
        path=settings.audit_key_file,
        setting="WAYMARK_AUDIT_KEY_FILE",
        dev_name=_DEV_KEY,
        what="the access log needs a secret key kept outside the database",
    )


@contextmanager
def unit(engine: Engine, key: bytes) -> Iterator[Session]:
    """One transaction that can append to the access log: the access and its record commit together."""
    with transaction(engine) as session:
        session.info[KEY_INFO] = key
        yield session


def open_session(engine: Engine, key: bytes) -> Session:
    """A session that can append to the access log, not yet begun (it connects at its first query).

    Its owner commits it (the access and its record together) or closes it (rolling back); ``unit``
    does both for a block.
    """
    opened = sessions(engine)()
    opened.info[KEY_INFO] = key
    return opened


def _key(session: Session) -> bytes:
    key = session.info.get(KEY_INFO)
    if not isinstance(key, bytes):
        raise RuntimeError("this unit of work carries no audit key; open it with the runtime's key")
    return key


def _mac(key: bytes, values: dict[str, object], *, fields: tuple[str, ...] = _FIELDS) -> str:
    text = json.dumps([values[f] for f in fields], separators=(",", ":"), ensure_ascii=True)
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _legacy_digest(values: dict[str, object]) -> str:
    text = json.dumps([values[f] for f in _LEGACY_FIELDS], separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def record(
    session: Session,
    principal: Principal,
    *,
    purpose: str,
    students: list[str],
    action: str,
    request: RequestIds,
) -> None:
    """Append one record per distinct student (in the caller's transaction).

    The head is locked (``FOR UPDATE``: writers in every process queue on it until their transaction
    ends), the records are timed and keyed to it and written with the head's move in as few
    statements as the database allows.
    """
    key = _key(session)
    distinct = list(dict.fromkeys(students))  # one record per student, however many rows they have
    if not distinct:
        return
    after = {"action": action, "request_id": request.server}
    tail = _dumps(request.client)
    head = session.connection().execute(_HEAD_LOCKED).one_or_none()
    if head is None:
        raise RuntimeError("the access log has no head: bring the database up to date (migrations)")
    _check_key(session, key, head_seq=int(head.seq))
    # The time is taken holding the head, so records' times follow their order in the chain. The keyed
    # text of a record is json.dumps of _FIELDS in order.
    at = datetime.now(UTC).isoformat(timespec="microseconds")
    fields = {"at": at, "actor": principal.sub, "role": principal.role, "purpose": purpose}
    middles = [_dumps([*fields.values(), student, *after.values()])[1:-1] for student in distinct]
    seq, prev = int(head.seq), str(head.hash)
    rows: list[dict[str, object]] = []
    for student, middle in zip(distinct, middles, strict=True):
        seq += 1
        digest = hmac.new(key, f'[{seq},{middle},"{prev}",{tail}]'.encode(), hashlib.sha256).hexdigest()
        rows.append(
            {
                "seq": seq,
                **fields,
                "student_id": student,
                **after,
                "prev_hash": prev,
                "client_request_id": request.client,
                "hash": digest,
            }
        )
        prev = digest
    _append(session, rows, seq=seq, last=prev)


_ONE_STATEMENT = 500  # records written with the head's move in one statement (bind parameters are limited)
_HEAD = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)
_HEAD_LOCKED = _HEAD.with_for_update()


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def _append(session: Session, rows: list[dict[str, object]], *, seq: int, last: str) -> None:
    """Insert ``rows`` and move the head to (``seq``, ``last``): one statement on PostgreSQL."""
    records, head = cast(Table, AuditRecord.__table__), cast(Table, AuditHead.__table__)
    move = update(head).where(head.c.id == 1).values(seq=seq, hash=last)
    connection = session.connection()  # Core statements: the ORM's execution path adds nothing here
    if connection.dialect.name == "postgresql" and len(rows) <= _ONE_STATEMENT:
        connection.execute(insert(records).values(rows).add_cte(move.cte("moved")))
        return
    connection.execute(insert(records), rows)
    connection.execute(move)


def record_action(
    session: Session, principal: Principal, *, purpose: str, action: str, request: RequestIds
) -> None:
    """Append one record of an action that concerns no student (a governance decision, a retention run)."""
    record(session, principal, purpose=purpose, students=[NO_STUDENT], action=action, request=request)


class AuditKeyMismatch(ConfigurationError):
    """The audit key did not write the access log's latest record: nothing may be appended with it."""


#: (database, key digest) pairs whose key was found to have written the log's latest record, per process.
_KEYS_CHECKED: set[tuple[str, str]] = set()


def _check_key(session: Session, key: bytes, *, head_seq: int) -> None:
    """Refuse a key that did not write the latest record: a wrong key would break the chain for good.

    A record keyed with another key fails verification, and so does every record after it under the
    right one: a staging key mounted in production, or a restore given another secret, cannot be told
    from tampering afterwards. Checked once per process, database and key (one primary-key read).
    """
    url = session.connection().engine.url.render_as_string(hide_password=True)
    seen = (url, hashlib.sha256(key).hexdigest())
    if seen in _KEYS_CHECKED:
        return
    anchor = _anchor(session)
    if problem := _anchor_problem(anchor, key):
        raise AuditKeyMismatch(
            f"{problem}. Nothing was written. Compare the log with a checkpoint kept outside the database "
            "(`waymark access-log verify --checkpoint FILE`) and restore it from a backup; a log written "
            "before its chain was keyed (revision 0003) is sealed by its owner with `waymark access-log "
            "seal`."
        )
    if head_seq <= anchor.legacy_seq:  # an empty log (any key may start it), or legacy records
        return
    latest = session.get(AuditRecord, head_seq)
    if latest is not None and _mac(key, {f: getattr(latest, f) for f in _FIELDS}) != latest.hash:
        raise AuditKeyMismatch(
            f"the audit key (WAYMARK_AUDIT_KEY_FILE) did not write the access log's latest record, "
            f"record {head_seq}: it is another key (a staging key, or a restore given another secret), or "
            "that record was altered. Nothing was written: records under another key would break the "
            "chain for good. Use the key the log was written with (`waymark access-log verify` checks "
            "every record with it)."
        )
    _KEYS_CHECKED.add(seen)


def _anchor_seal(key: bytes, anchor: AuditAnchor) -> str:
    """The anchor's seal: its seed and where its keyed records begin, under the audit key."""
    text = json.dumps([anchor.seed, int(anchor.legacy_seq)], separators=(",", ":"))
    return hmac.new(key, b"waymark-access-log-anchor:" + text.encode(), hashlib.sha256).hexdigest()


def _anchor_problem(anchor: AuditAnchor, key: bytes) -> str | None:
    """Why the anchor cannot be trusted with ``key`` (None when it can).

    A red team with write access to the database and no key rewrote every record with the unkeyed
    digest, moved ``legacy_seq`` to the end, and the chain verified. Records are read as unkeyed only
    under a seal of ``legacy_seq`` made with the key, which an operator gives a log begun before the
    chain was keyed (``seal_unkeyed``); a log begun keyed has ``legacy_seq`` 0 and needs none.
    """
    if anchor.seal is not None:
        if hmac.compare_digest(anchor.seal, _anchor_seal(key, anchor)):
            return None
        return (
            "the access log's anchor (where its keyed records begin) was altered, or its seal was made "
            "with another key"
        )
    if anchor.legacy_seq:
        return (
            f"the access log claims its records 1 to {anchor.legacy_seq} were written before its chain was "
            "keyed, and its anchor carries no seal"
        )
    return None


def seal_unkeyed(
    engine: Engine, key: bytes, *, records: int, checkpoint: dict[str, Any] | None = None
) -> None:
    """Seal the anchor of a log whose records 1 to ``records`` were written before the chain was keyed.

    For an operator who knows it (a log begun before revision 0003), connected as the database's owner
    (``grants.sql`` keeps the anchor read-only to the service). Refused unless ``records`` is the
    anchor's own count, the anchor has no seal yet, and either the record after them is keyed with
    this key and follows the last of them (which a forger without the key cannot make), or the log
    verifies against ``checkpoint``, a signed head kept outside the database (a reviewer: copying the
    number a forged log's refusal names had sealed the forgery).

    Raises
    ------
    AuditKeyMismatch
        If any of those does not hold; nothing is sealed.
    """
    with transaction(engine) as session:
        anchor = _anchor(session)
        if anchor.seal is not None:
            raise AuditKeyMismatch("the access log's anchor is sealed already: nothing to do")
        if int(anchor.legacy_seq) != records or records <= 0:
            raise AuditKeyMismatch(
                f"the access log's anchor counts {anchor.legacy_seq} records written before the key, not "
                f"{records}: nothing was sealed"
            )
        if checkpoint is not None:
            anchor.seal = _anchor_seal(key, anchor)  # verified as sealed, or nothing is kept
            problems = verify(session, key, checkpoint=checkpoint)
            if problems:  # the transaction is rolled back: no seal
                raise AuditKeyMismatch(
                    "the access log does not verify against the checkpoint: nothing was sealed ("
                    + "; ".join(problems[:3])
                    + ")"
                )
            return
        last, after = session.get(AuditRecord, records), session.get(AuditRecord, records + 1)
        keyed = after is not None and _mac(key, {f: getattr(after, f) for f in _FIELDS}) == after.hash
        if last is None or not keyed or after is None or after.prev_hash != last.hash:
            raise AuditKeyMismatch(
                f"no record after record {records} is keyed with this key and follows it, which is how a "
                "log rewritten without the key looks too: nothing was sealed. Give a checkpoint taken "
                "before (--checkpoint FILE), or restore the log from a backup"
            )
        anchor.seal = _anchor_seal(key, anchor)


def check_key(engine: Engine, key: bytes) -> None:
    """``_check_key`` in a transaction of its own (at start-up); raises ``AuditKeyMismatch``."""
    with transaction(engine) as session:
        head = session.get(AuditHead, 1)
        if head is not None:
            _check_key(session, key, head_seq=int(head.seq))


def _anchor(session: Session) -> AuditAnchor:
    anchor = session.get(AuditAnchor, 1)
    if anchor is None:
        raise RuntimeError("the access log has no anchor: bring the database up to date (migrations)")
    return anchor


def verify(session: Session, key: bytes, *, checkpoint: dict[str, Any] | None = None) -> list[str]:
    """Every break in the chain, and against ``checkpoint`` if given (empty when the log is intact)."""
    anchor = _anchor(session)
    problems: list[str] = []
    problem = _anchor_problem(anchor, key)  # unsealed with no unkeyed records: not written to yet
    problems += [problem] if problem else []
    # Records from before the key (legacy) start at the old all-zero genesis; a new log at the seed.
    prev, at_checkpoint = ("0" * 64 if anchor.legacy_seq else anchor.seed), None
    expected_seq = 1
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
        legacy = rec.seq <= anchor.legacy_seq
        if (_legacy_digest(values) if legacy else _mac(key, values)) != rec.hash:
            problems.append(
                f"record {rec.seq}: its contents were altered, or it was not written with this key"
            )
        if checkpoint is not None and rec.seq == checkpoint.get("seq"):
            at_checkpoint = rec.hash
        expected_seq, prev = rec.seq + 1, rec.hash
    problems += _head_problems(session, expected_seq - 1, last_hash=prev)
    if checkpoint is not None:
        problems += _checkpoint_problems(key, checkpoint, found=at_checkpoint, last_seq=expected_seq - 1)
    return problems


def _head_problems(session: Session, last_seq: int, *, last_hash: str) -> list[str]:
    head = session.get(AuditHead, 1)
    if head is None:
        return ["the chain's head row is missing"]
    if (head.seq, head.hash) != (last_seq, last_hash):
        return [f"the chain should end at record {head.seq}; it ends at {last_seq} (records removed)"]
    return []


#: The checkpoint's signed fields: from version 2 the record count too (an edited count had verified).
CHECKPOINT_VERSION = 2


def _checkpoint_mac(key: bytes, point: dict[str, Any]) -> str:
    """The checkpoint's signature; a checkpoint made before version 2 signed no count (nor version)."""
    fields = [point.get("seq"), point.get("hash"), point.get("at")]
    if point.get("version") is not None:
        fields += [point.get("version"), point.get("count")]
    text = json.dumps(fields, separators=(",", ":"))
    return hmac.new(key, b"waymark-access-log-checkpoint:" + text.encode(), hashlib.sha256).hexdigest()


def checkpoint(session: Session, key: bytes) -> dict[str, Any]:
    """The signed head of the log (count, last hash, time) for an operator to keep outside the database."""
    head = session.get(AuditHead, 1)
    point: dict[str, Any] = {
        "seq": head.seq if head else 0,
        "count": _record_count(session),
        "hash": head.hash if head else _anchor(session).seed,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": CHECKPOINT_VERSION,
    }
    return {**point, "mac": _checkpoint_mac(key, point)}


def _record_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditRecord)) or 0)


@dataclass(frozen=True)
class Verification:
    """What ``verify_log`` read, and every break it found (none: the log is intact)."""

    records: int
    problems: list[str]


def verify_log(engine: Engine, key: bytes, *, checkpoint: dict[str, Any] | None = None) -> Verification:
    """Verify the whole log, and against ``checkpoint`` if given, in one transaction of its own."""
    with transaction(engine) as session:
        problems = verify(session, key, checkpoint=checkpoint)
        return Verification(_record_count(session), problems)


def checkpoint_log(engine: Engine, key: bytes) -> dict[str, Any]:
    """``checkpoint`` in a transaction of its own (``waymark access-log checkpoint``)."""
    with transaction(engine) as session:
        return checkpoint(session, key)


def _checkpoint_problems(key: bytes, point: dict[str, Any], *, found: str | None, last_seq: int) -> list[str]:
    if not hmac.compare_digest(str(point.get("mac", "")), _checkpoint_mac(key, point)):
        return ["the checkpoint's signature does not match: it was altered, or made with another key"]
    seq = int(point.get("seq", 0))
    if seq == 0:
        return []
    if last_seq < seq:
        return [
            f"the checkpoint of {point.get('at')} names record {seq}, but the log ends at record "
            f"{last_seq}: records were removed (truncated or wiped)"
        ]
    if found != point.get("hash"):
        return [
            f"record {seq} is not the record the checkpoint of {point.get('at')} signed: "
            "the chain was rewritten"
        ]
    return []


def for_student(session: Session, student_id: str) -> list[AuditRecord]:
    """A student's access log, oldest first (the only way the log is read: by student, never by staff)."""
    query = select(AuditRecord).where(AuditRecord.student_id == student_id).order_by(AuditRecord.seq)
    return list(session.scalars(query))


EXPORT_PURPOSES = ("appeal", "complaint")  # CoP §2(xvii): the log may be used in appeals and complaints


def export_for_student(
    engine: Engine, key: bytes, *, student_id: str, purpose: str, caller: Principal
) -> list[dict[str, str]]:
    """A student's access log for an appeal or a complaint; the export is itself recorded, in the same unit.

    Raises
    ------
    ValueError
        If ``purpose`` is not one of ``EXPORT_PURPOSES``.
    """
    if purpose not in EXPORT_PURPOSES:
        raise ValueError(f"an access-log export is for one of {', '.join(EXPORT_PURPOSES)}, not {purpose!r}")
    with unit(engine, key) as session:
        rows = [
            {
                "at": r.at,
                "actor": r.actor,
                "role": r.role,
                "purpose": r.purpose,
                "action": r.action,
                "request_id": r.request_id,
            }
            for r in for_student(session, student_id)
        ]
        record(
            session,
            caller,
            purpose=purpose,
            students=[student_id],
            action="access_log_export",
            request=RequestIds.new(),
        )
    return rows
