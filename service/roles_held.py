"""Who has held the data scientist's role: the ethics committee kept apart from the model's builders.

An identity provider may give one person several Waymark roles, and a bearer token names only the
one it was issued for, so no single request shows that a reviewer also builds the models they
approve. Each sign-in that gives the data scientist's role records it, and so does a data scientist's
read of the committee's reports (at most every few hours: the row is refreshed, not rewritten at every
read); ``service.decisions`` refuses an approval by anyone recorded holding it, and stops counting an
approval given before they were. Only that role is recorded: nothing else about staff is kept here.
Ids are compared without case, so a refusal never turns on how an id was typed. Only the database
owner clears a holding (``clear``), which keeps who cleared it, when and why.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, Select, select, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from waymark.models.roles import Role
from waymark.models.settings import Settings
from waymark.service import audit
from waymark.service.db.engine import INSUFFICIENT_PRIVILEGE, transaction
from waymark.service.db.schema import (
    APPROVED,
    HoldingClearance,
    ModelDecision,
    RoleHolding,
    WebSession,
    aware,
)
from waymark.service.db.upsert import upsert
from waymark.service.security import Principal

log = logging.getLogger("waymark.service")
BUILDS = Role.DATA_SCIENTIST.value  # the one role recorded
REFRESH = timedelta(hours=12)  # a holding seen more recently than this is not written again


def seen(session: Session, staff_id: str, *, roles: Iterable[str]) -> bool:
    """Record that ``staff_id`` holds the data scientist's role now, if ``roles`` holds it.

    Written in a savepoint of the caller's transaction: a service role not yet granted the table
    (``grants.sql`` not applied again after an upgrade) logs an error and the sign-in goes on, while
    approvals, which read the table, are refused until it is. Returns whether the holding is on record
    (False: ``roles`` does not hold the role, or it could not be written).
    """
    if BUILDS not in {str(r) for r in roles}:
        return False
    now = datetime.now(UTC)
    session.flush()  # the caller's own writes first: their failure is theirs, not the grants'
    try:
        with session.begin_nested():
            if recent(session.connection(), staff_id, now=now):
                return True
            upsert(
                session,
                RoleHolding,
                values={"staff_id": staff_id, "role": BUILDS, "first_seen_at": now, "last_seen_at": now},
                update=("last_seen_at",),
            )
    except ProgrammingError as exc:
        if getattr(exc.orig, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
            raise
        log.error(
            "could not record that %s holds the data scientist's role: apply service/db/grants.sql again "
            "after the upgrade (the committee's approvals are refused until it is)",
            staff_id,
            exc_info=True,
        )
        return False
    return True


def approvals_given(session: Session, staff_id: str) -> int:
    """How many approvals ``staff_id`` has given as an ethics reviewer (ids matched without case)."""
    wanted = _folded(staff_id)
    actors = session.scalars(select(ModelDecision.actor).where(ModelDecision.kind == APPROVED))
    return sum(1 for actor in actors if _folded(actor) == wanted)


def operator_may_build(engine: Engine, settings: Settings) -> str | None:
    """Before a training: why the person ``WAYMARK_OPERATOR`` names may not be recorded as building it.

    A reviewer's approvals stop counting once they are recorded holding the data scientist's role, the
    served model's with them where it rests on one, and only the database owner clears a holding: an
    environment naming the wrong person would take the served model away from every member of staff.
    Returns the reason (None: nobody is named, or the person named has approved nothing).
    """
    if not settings.operator:
        return None
    with transaction(engine) as session:
        given = approvals_given(session, settings.operator)
    if not given:
        return None
    return (
        f"WAYMARK_OPERATOR names {settings.operator}, who has approved {given} model version(s) as an "
        "ethics reviewer: recording them as building models would stop those approvals counting, and the "
        "served model with them where it rests on one. If they are not the person training, correct "
        "WAYMARK_OPERATOR; if they now build models, the committee first has another ethics reviewer "
        "approve in their place. Nothing was trained."
    )


def operator_builds(engine: Engine, settings: Settings) -> tuple[str | None, bool]:
    """Record that the person running ``waymark train`` holds the data scientist's role.

    The person named by ``WAYMARK_OPERATOR`` (their staff id) is then refused as the approver of any
    model, as a data scientist signed in is. Returns who (None: ``WAYMARK_OPERATOR`` is not set) and
    whether it is recorded (False: the database role may not write it; ``grants.sql`` not applied).
    """
    if not settings.operator:
        return None, False
    with transaction(engine) as session:
        recorded = seen(session, settings.operator, roles=[BUILDS])
    return settings.operator, recorded


def recent(connection: Connection, staff_id: str, *, now: datetime) -> bool:
    """Whether ``staff_id`` was recorded holding the data scientist's role within ``REFRESH`` of ``now``.

    A reader checks this before opening a transaction to write, so that a holding seen lately is not
    written again.
    """
    last = connection.scalar(
        select(RoleHolding.last_seen_at).where(RoleHolding.staff_id == staff_id, RoleHolding.role == BUILDS)
    )
    return last is not None and aware(last) > now - REFRESH


def _folded(staff_id: str) -> str:
    """An id as compared here: composed, without surrounding spaces, case folded.

    In Python, whatever the database's own ``lower`` folds (SQLite's folds ASCII only).
    """
    return unicodedata.normalize("NFC", staff_id.strip()).casefold()


def same_person(a: str, b: str) -> bool:
    """Whether two staff ids name one person, compared as everywhere here (without case)."""
    return _folded(a) == _folded(b)


def builders(session: Session, staff_ids: Iterable[str]) -> dict[str, datetime]:
    """Of ``staff_ids``, those recorded holding the data scientist's role, each with when last seen.

    Keyed by the id as given; ids are matched without case. The table holds data scientists only, a
    few rows, so it is read whole and compared here.
    """
    query = select(RoleHolding.staff_id, RoleHolding.last_seen_at).where(RoleHolding.role == BUILDS)
    return _latest_of(session, query, staff_ids=staff_ids)


def _latest_of(
    session: Session, query: Select[str, datetime], *, staff_ids: Iterable[str]
) -> dict[str, datetime]:
    """Of ``staff_ids``, those ``query``'s (staff id, time) rows name, each with its latest time.

    Keyed by the id as given; ids are matched without case (the tables read are a few rows).
    """
    wanted = {s: _folded(s) for s in staff_ids}
    if not wanted:
        return {}
    latest: dict[str, datetime] = {}
    for staff_id, at in session.execute(query):
        key = _folded(staff_id)
        latest[key] = max(latest.get(key, aware(at)), aware(at))
    return {given: latest[key] for given, key in wanted.items() if key in latest}


class NoHolding(LookupError):
    """Nobody is recorded holding the data scientist's role under the id given."""


def holdings(session: Session) -> list[RoleHolding]:
    """Everyone recorded holding the data scientist's role, by id."""
    return list(
        session.scalars(select(RoleHolding).where(RoleHolding.role == BUILDS).order_by(RoleHolding.staff_id))
    )


def clearances(session: Session) -> list[HoldingClearance]:
    """Every holding the database owner has cleared, oldest first."""
    return list(session.scalars(select(HoldingClearance).order_by(HoldingClearance.id)))


def cleared_at(session: Session, staff_ids: Iterable[str]) -> dict[str, datetime]:
    """Of ``staff_ids``, those whose holding was cleared, not in error, each with the latest clearance.

    An approval they gave before it still does not count: it was given while they may have built
    the models the committee reviews. Keyed by the id as given; ids are matched without case.
    """
    query = select(HoldingClearance.staff_id, HoldingClearance.cleared_at).where(
        HoldingClearance.role == BUILDS, HoldingClearance.in_error.is_(False)
    )
    return _latest_of(session, query, staff_ids=staff_ids)


class MayNotClear(ValueError):
    """A clearance refused: no reason, the person clearing it is the one recorded, or they are signed in."""


def clear(
    session: Session,
    staff_id: str,
    *,
    reason: str,
    caller: Principal,
    request: audit.RequestIds,
    in_error: bool = False,
) -> list[HoldingClearance]:
    """Clear ``staff_id``'s holding of the data scientist's role, keeping who cleared it, when and why.

    For a person who no longer builds models (a data scientist who has joined the committee), or one
    recorded in error (``in_error``: a wrong ``WAYMARK_OPERATOR``, a role given by mistake). The
    approvals they gave before it stay uncounted unless ``in_error``: those were given while they may
    have built the models reviewed. The holding goes, a ``HoldingClearance`` keeps its times with the
    reason, the operator and the database user, and the access log records the clearance, all in the
    caller's transaction (an access-log unit). The service's own database role may not remove a
    holding (``grants.sql``): the database owner runs this. Ids are matched without case.

    Raises
    ------
    MayNotClear
        If ``reason`` is empty, the caller is the person recorded, or that person is signed in to
        the workspace with the role now (the next sign-in or read would record it again).
    NoHolding
        If nobody is recorded holding the role under ``staff_id``.
    """
    why = reason.strip()
    if not why:
        raise MayNotClear(
            "give the reason the holding no longer stands (--reason): it is kept with the clearance"
        )
    if same_person(caller.sub, staff_id):
        raise MayNotClear(
            f"{caller.sub} runs this command (WAYMARK_OPERATOR) and is the person recorded: a holding is "
            "cleared by someone else; nothing was cleared"
        )
    held = [h for h in holdings(session) if same_person(h.staff_id, staff_id)]
    if not held:
        raise NoHolding(
            f"nobody is recorded holding the data scientist's role as {staff_id}: nothing was cleared"
        )
    now = datetime.now(UTC)
    live = session.scalars(select(WebSession).where(WebSession.expires_at > now)).all()
    signed_in = [w for w in live if same_person(w.sub, staff_id) and BUILDS in {str(r) for r in w.roles}]
    if signed_in:
        until = max(aware(w.expires_at) for w in signed_in)
        raise MayNotClear(
            f"{staff_id} is signed in to the workspace with the data scientist's role until "
            f"{until:%Y-%m-%d %H:%M} UTC, and the next request in it would record the holding again: take "
            "the role away at the identity provider, and clear it once that session has ended; nothing "
            "was cleared"
        )
    database_user = (
        str(session.scalar(text("SELECT session_user")))
        if session.get_bind().dialect.name == "postgresql"
        else None
    )
    cleared = [
        HoldingClearance(
            staff_id=h.staff_id,
            role=h.role,
            first_seen_at=h.first_seen_at,
            last_seen_at=h.last_seen_at,
            cleared_at=now,
            cleared_by=caller.sub,
            database_user=database_user,
            reason=why,
            in_error=in_error,
        )
        for h in held
    ]
    session.add_all(cleared)
    for h in held:
        session.delete(h)
    session.flush()
    for row in cleared:
        audit.record_action(
            session, caller, purpose="governance", action=f"holding_cleared:{row.id}", request=request
        )
    return cleared


class NotOwner(MayNotClear):
    """The database role connected as may not clear a holding (the service's, by ``grants.sql``)."""


@dataclass(frozen=True)
class Clearance:
    """What ``clear_holding`` did: whose holding went, and how many approvals they had given."""

    staff_ids: tuple[str, ...]
    approvals_given: int


def clear_holding(
    engine: Engine, key: bytes, *, staff_id: str, reason: str, caller: Principal, in_error: bool
) -> Clearance:
    """``clear`` in a transaction of its own (``waymark access clear-holding``), as the database owner.

    Raises
    ------
    NotOwner
        If the database role connected as may not write the clearance (nothing is cleared).
    """
    try:
        with audit.unit(engine, key) as session:
            given = approvals_given(session, staff_id)
            cleared = clear(
                session,
                staff_id,
                reason=reason,
                caller=caller,
                request=audit.RequestIds.new(),
                in_error=in_error,
            )
            return Clearance(tuple(sorted({c.staff_id for c in cleared})), given)
    except ProgrammingError as exc:
        if getattr(exc.orig, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
            raise
        raise NotOwner(
            "the database role this command connects as may not clear a holding (the service's role may "
            "not, by grants.sql): run it as the database owner, as for `waymark db upgrade`; nothing was "
            "cleared"
        ) from exc


def listed(engine: Engine) -> tuple[list[RoleHolding], list[HoldingClearance]]:
    """The holdings recorded and every clearance (``waymark access holdings``), read in one transaction."""
    with transaction(engine) as session:  # its sessions keep their rows' values once committed
        return holdings(session), clearances(session)
