"""Who may read which students: the ONE function every student query starts from.

A staff member reads a student only through a relationship held in ``access_grants`` that matches
the role in their token (a module leader's grants do not work for a personal-tutor token; a module's
may hold one presentation of it), on the
days it holds (``valid_from`` to ``valid_until``, where the file gives them, both included, as days in
the institution's zone, ``WAYMARK_TIMEZONE``). A
student reads only themselves. Every other role reads no individual's indicator (PRODUCT §6).
A student outside the caller's scope is indistinguishable from one that does not exist, and so, to
every staff member, is a student whose processing is restricted at their request (an objection to
being scored and listed, or a correction being weighed: ``ProcessingRestriction``): their stored
indicators are kept, and only they read them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Date,
    Engine,
    Select,
    and_,
    bindparam,
    false,
    or_,
    select,
    tuple_,
)
from sqlalchemy.orm import InstrumentedAttribute

from waymark.models.roles import RELATIONSHIP_SCOPES, Role
from waymark.models.settings import get_settings
from waymark.service.db.schema import AccessGrant, Indicator
from waymark.service.objections import not_restricted
from waymark.service.security import Principal

# scope type of a relationship (waymark.models.roles) -> the indicator column it applies to
SCOPE_COLUMNS: dict[str, InstrumentedAttribute[str | None]] = {
    "student": Indicator.student_id,
    "module": Indicator.module_id,
    "programme": Indicator.programme_id,
    "school": Indicator.school_id,
}


def readable(principal: Principal, run_id: int, *, left_out: bool = False) -> Select[Indicator]:
    """The indicators of run ``run_id`` that ``principal`` may read (one per student and presentation).

    The caller passes the run it resolved once for the request (the published, approved one), so
    every statement of a request reads the same batch even if a new one is published meanwhile.
    ``left_out``: students whose processing is restricted too, only to decide who follows up a contact
    that outlives the restriction (``indicators.follows_up``), never to read an indicator.
    """
    condition = may_read(principal, Indicator.__table__, left_out=left_out)
    return select(Indicator).where(Indicator.run_id == run_id, condition)


def may_read(principal: Principal, indicators: Any, *, left_out: bool = False) -> ColumnElement[bool]:
    """The condition that limits rows of ``indicators`` (the table or an alias of it) to ``principal``'s.

    Every statement that reads students' indicators applies it: ``readable`` above, and the one-query
    reads of ``service.reads``, which name the table under an alias. ``left_out`` as in ``readable``.
    """
    if principal.role == Role.STUDENT:
        return indicators.c.student_id == principal.sub  # type: ignore[no-any-return]
    scope_types = tuple(
        t
        for t in RELATIONSHIP_SCOPES.get(principal.role, ())
        if principal.scopes is None or t in principal.scopes
    )
    if not scope_types:
        return false()
    # a relationship on several kinds of scope (support staff: a school, or named students) reads each
    in_scope = or_(*(_in(principal, indicators, scope_type=t) for t in scope_types))
    if left_out:
        return in_scope
    return and_(in_scope, not_restricted(indicators.c.student_id))


def _in(principal: Principal, indicators: Any, *, scope_type: str) -> ColumnElement[bool]:
    """Rows of ``indicators`` in a scope of ``scope_type`` the caller's relationships give."""
    column = indicators.c[SCOPE_COLUMNS[scope_type].key]
    granted = select(AccessGrant.scope_id).where(holding(principal), AccessGrant.scope_type == scope_type)
    if scope_type != "module":
        return column.in_(granted)  # type: ignore[no-any-return]
    # A module relationship may hold one presentation of the module (a US course's 8-week section beside
    # its full-term one, each its own instructor's). The module's index still serves the read: the
    # presentation narrows the rows it finds.
    every = granted.where(AccessGrant.presentation_id == "")
    one = select(AccessGrant.scope_id, AccessGrant.presentation_id).where(
        holding(principal), AccessGrant.scope_type == scope_type, AccessGrant.presentation_id != ""
    )
    return and_(
        column.in_(granted),
        or_(column.in_(every), tuple_(column, indicators.c.presentation_id).in_(one)),
    )


def narrowed(engine: Engine, principal: Principal) -> Principal:
    """The caller with the kinds of scope they hold now, where their role takes several.

    A read over two kinds (a school's students or named ones) is an OR that neither kind's index
    serves: every row of the run was read for a school's support staff (a reviewer's finding). Looked
    up once per request, so a school's support staff read through the school's index as before; a
    relationship imported meanwhile counts from the next request.
    """
    kinds = RELATIONSHIP_SCOPES.get(principal.role, ())
    if len(kinds) < 2:
        return principal
    with engine.connect() as connection:
        held = set(connection.scalars(select(AccessGrant.scope_type).where(holding(principal)).distinct()))
    return replace(principal, scopes=tuple(k for k in kinds if k in held))


def holding(principal: Principal) -> ColumnElement[bool]:
    """The condition that a row of ``access_grants`` is the caller's relationship, on one of its days."""
    # Read at each execution (a statement may be kept), in the institution's zone: the database's own
    # date is UTC's on SQLite and the server's on PostgreSQL, a day early or late for a university
    # far from either (a Welsh university's rota ended at 01:00 in summer).
    return and_(
        AccessGrant.staff_id == principal.sub, AccessGrant.relationship == principal.role, on_its_days()
    )


def on_its_days() -> ColumnElement[bool]:
    """The condition that a row of ``access_grants`` holds today (from ``valid_from`` to ``valid_until``)."""
    today = bindparam("wm_today", callable_=institution_today, type_=Date)
    return and_(
        or_(AccessGrant.valid_from.is_(None), AccessGrant.valid_from <= today),
        or_(AccessGrant.valid_until.is_(None), AccessGrant.valid_until >= today),
    )


def institution_today() -> date:
    """Today's date where the institution is (``WAYMARK_TIMEZONE``), the day grants are read in."""
    return datetime.now(ZoneInfo(get_settings().timezone)).date()
