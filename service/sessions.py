"""Server-side page sessions: the cookie holds a random id, the database only its sha256.

A session row names the person, the roles their identity provider granted, the role they act in now,
and the CSRF token every form and every cookie-authenticated write must carry. Rows live in the
service database, so any worker or process can read a session another one started.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete

from waymark.models.roles import Role
from waymark.service import roles_held
from waymark.service.db.engine import transaction
from waymark.service.db.schema import TrainingAttestation, WebSession, aware

COOKIE = "__Host-waymark_session"  # __Host-: Secure, Path=/, no Domain, so no sibling host can set it
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class SignedIn:
    """One signed-in browser, as its session row says."""

    sub: str
    name: str
    roles: tuple[str, ...]
    active_role: str
    csrf: str
    expires_at: datetime
    student_id: str | None = None  # who the person's records name when they act as a student

    def acting_as(self) -> str:
        """The id the active role acts under: the student's own id as a student, else the subject."""
        return self.student_id or "" if self.active_role == Role.STUDENT else self.sub

    def csrf_matches(self, given: str | None) -> bool:
        """Whether ``given`` is this session's CSRF token (compared in constant time)."""
        return bool(given) and hmac.compare_digest(self.csrf.encode(), str(given).encode())


def _hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def _signed_in(row: WebSession) -> SignedIn:
    return SignedIn(
        sub=row.sub,
        name=row.name,
        roles=tuple(row.roles),
        active_role=row.active_role,
        csrf=row.csrf,
        expires_at=aware(row.expires_at),
        student_id=row.student_id,
    )


def start(
    engine: Engine, *, sub: str, name: str, roles: list[str], hours: float, student_id: str | None = None
) -> tuple[str, SignedIn]:
    """A new session for ``sub`` acting in its first role; returns the cookie value and the session.

    A sign-in that gives the data scientist's role records it (``service.roles_held``).

    ``student_id`` is the id the person's records carry as a student (needed for the student role).
    """
    cookie, now = secrets.token_urlsafe(32), datetime.now(UTC)
    row = WebSession(
        id_hash=_hash(cookie),
        sub=sub,
        student_id=student_id,
        name=name,
        roles=list(roles),
        active_role=roles[0],
        csrf=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + timedelta(hours=hours),
    )
    with transaction(engine) as session:
        session.execute(delete(WebSession).where(WebSession.expires_at < now))  # tidy as we go
        session.add(row)
        roles_held.seen(session, sub, roles=roles)  # the committee's approvals read it
        return cookie, _signed_in(row)


def find(engine: Engine, cookie: str | None) -> SignedIn | None:
    """The live session ``cookie`` names; None for no cookie, an unknown one, or an expired one."""
    if not cookie or len(cookie) > 128:
        return None
    with transaction(engine) as session:
        row = session.get(WebSession, _hash(cookie))
        if row is None:
            return None
        if aware(row.expires_at) <= datetime.now(UTC):
            session.delete(row)
            return None
        return _signed_in(row)


FOUND = "waymark_session"  # request scope state: the session the cookie named (None: none live)


def of_request(engine: Engine, scope: MutableMapping[str, Any], *, cookie: str | None) -> SignedIn | None:
    """The live session of a request's cookie, looked up once per request (the Guard, the pages, the API)."""
    state = scope.setdefault("state", {})
    if FOUND not in state:
        state[FOUND] = find(engine, cookie)
    found: SignedIn | None = state[FOUND]
    return found


def end(engine: Engine, cookie: str) -> None:
    """Sign out: the session row goes, so the cookie names nothing any more."""
    with transaction(engine) as session:
        session.execute(delete(WebSession).where(WebSession.id_hash == _hash(cookie)))


def switch(engine: Engine, cookie: str, *, role: str) -> bool:
    """Act in another of the session's own roles; False (nothing changed) for a role it does not hold."""
    with transaction(engine) as session:
        row = session.get(WebSession, _hash(cookie))
        if row is None or role not in row.roles:
            return False
        row.active_role = role
        return True


def record_training(engine: Engine, sub: str, *, until: float) -> None:
    """Keep the training attestation the identity provider asserted at sign-in (extends, never shortens).

    Bearer tokens carry it on every request; a page session checks the stored record instead.
    """
    try:
        expires = datetime.fromtimestamp(until, UTC)
    except (OverflowError, OSError, ValueError):  # not a moment a calendar holds: asserts nothing
        return
    with transaction(engine) as session:
        stored = session.get(TrainingAttestation, sub)
        if stored is None:
            session.add(TrainingAttestation(staff_id=sub, expires_at=expires))
        elif aware(stored.expires_at) < expires:
            stored.expires_at = expires
