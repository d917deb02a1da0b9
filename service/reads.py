"""The hot read path: a student's indicators and a page of a caseload, one indexed query each.

Both reads are SQLAlchemy Core statements (no ORM objects are built): the published run, the caller's
scope (``service.access.may_read``, the one decision of who may read whom), the directory entry
and, for a student, every earlier indicator of the same registration come back in one statement.
The explanation is stored at publication as the JSON it is served in (``models.explain.cohort``
writes exactly the fields of ``schemas.Statement``, ``Context``, ``Change`` and ``Coverage``), so it
is passed through as it is stored, never parsed and validated again; the answer is serialised once,
by orjson, to the bytes sent. ``tests/test_read_path.py`` checks the bytes still validate against the
documented response models and hold nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Row, Select, Text, and_, bindparam, case, cast, func, select
from sqlalchemy.orm import Session

from waymark.service.access import may_read
from waymark.service.db.schema import (
    DirectoryEntry,
    Indicator,
    Publication,
    ScoringRun,
    estimates_withdrawn,
    list_order,
)
from waymark.service.indicators import READING_NOTE, correction_notice, ranks
from waymark.service.outreach import said_no
from waymark.service.security import Principal

_IND = Indicator.__table__
_RUNS = ScoringRun.__table__
_PUBS = Publication.__table__
_DIRECTORY = DirectoryEntry.__table__
# The aliases every read names, made once: an alias builds its column collection when first used,
# which cost more than the rest of building a statement did.
_CUR, _RUN = _IND.alias("cur"), _RUNS.alias("run")
_PAST, _PAST_RUN = _IND.alias("past"), _RUNS.alias("past_run")
_EXPLANATION = ("factors", "strengths", "context", "what_could_change", "coverage")
MEDIA_TYPE = "application/json"
# Statements kept built, one per caller and served model (their shape and scope are the caller's; only
# the student read is a parameter). A caller reads many students, so nearly every read reuses one.
# About 18 KiB each: at most about 18 MiB per process.
STATEMENTS_KEPT = 1024


@dataclass(frozen=True)
class Served:
    """What the served batch must have come from: the approved champion, for the service's target."""

    target: str
    model_name: str
    model_version: str


def _readable_from(
    principal: Principal, served: Served, *, ind: Any, run: Any
) -> tuple[Any, ColumnElement[bool]]:
    """``ind`` joined to the published run of ``served``, and the caller's scope on it.

    The scope is ``service.access.may_read``'s, the one decision of who may read whom.
    """
    source = _PUBS.join(run, and_(run.c.id == _PUBS.c.run_id, _PUBS.c.target == served.target))
    source = source.join(
        ind,
        and_(
            ind.c.run_id == run.c.id,
            run.c.model_name == served.model_name,
            run.c.model_version == served.model_version,
        ),
    )
    return source, may_read(principal, ind)


def student_statement(principal: Principal, served: Served) -> Select[Any]:
    """One statement: a student's registrations in the caller's scope, each with its history.

    The student is the parameter ``student_id``, which has no value of its own: a statement executed
    without one fails rather than reading anyone. Built once per caller and served model
    (``_student_statement``); the caller's identity, role and scopes are part of it, never a
    parameter, so a statement kept for one caller can never be executed as another's.
    """
    return _student_statement((principal.sub, principal.role, principal.scopes), served)


@lru_cache(maxsize=STATEMENTS_KEPT)
def _student_statement(caller: tuple[str, str, tuple[str, ...] | None], served: Served) -> Select[Any]:
    sub, role, scopes = caller
    principal = Principal(sub, role, None, scopes)  # may_read looks at the identity, role and scopes
    cur, run, past, past_run = _CUR, _RUN, _PAST, _PAST_RUN
    source, scope = _readable_from(principal, served, ind=cur, run=run)
    source = source.join(
        past,
        and_(
            past.c.student_id == cur.c.student_id,
            past.c.module_id == cur.c.module_id,
            past.c.presentation_id == cur.c.presentation_id,
        ),
    )
    source = source.join(
        past_run,
        and_(
            past_run.c.id == past.c.run_id,
            past_run.c.status == "complete",
            past_run.c.target == run.c.target,
            ~estimates_withdrawn(past_run.c.model_name, past_run.c.model_version),
        ),
    )
    source = source.outerjoin(_DIRECTORY, _DIRECTORY.c.student_id == cur.c.student_id)
    here = past.c.run_id == cur.c.run_id  # the explanation once per registration: on its own run's row
    query = select(
        cur.c.module_id,
        cur.c.presentation_id,
        cur.c.probability,
        cur.c.lower,
        cur.c.upper,
        cur.c.previous_probability,
        cur.c.week,
        cur.c.as_of,
        run.c.id.label("run_id"),
        run.c.target,
        run.c.model_name,
        run.c.model_version,
        *(case((here, cast(cur.c[name], Text)), else_=None).label(name) for name in _EXPLANATION),
        past.c.run_id.label("past_run_id"),
        past.c.week.label("past_week"),
        past.c.as_of.label("past_as_of"),
        past_run.c.model_version.label("past_model_version"),
        past.c.probability.label("past_value"),
        past.c.lower.label("past_lower"),
        past.c.upper.label("past_upper"),
        _DIRECTORY.c.display_name,
        _DIRECTORY.c.preferred_name,
        _DIRECTORY.c.pronouns,
        _DIRECTORY.c.email,
        _DIRECTORY.c.other_name,
    ).select_from(source)
    return query.where(scope, cur.c.student_id == bindparam("student_id", required=True)).order_by(
        cur.c.probability.desc(), cur.c.module_id, cur.c.presentation_id, past_run.c.id
    )


def _stored(text: str | None) -> orjson.Fragment | None:
    """Stored JSON passed through as it is (SQL NULL and JSON null both serve as null)."""
    return None if text is None else orjson.Fragment(text)


def _estimate(row: Row[Any]) -> dict[str, Any]:
    previous = row.previous_probability
    change = None if previous is None else row.probability - previous
    return {"value": row.probability, "lower": row.lower, "upper": row.upper, "change_since_last_run": change}


def _provenance(row: Row[Any]) -> dict[str, Any]:
    return {
        "target": row.target,
        "model_name": row.model_name,
        "model_version": row.model_version,
        "week": row.week,
        "data_as_of": row.as_of,
        "run_id": row.run_id,
    }


def _directory(row: Row[Any]) -> dict[str, Any] | None:
    if row.display_name is None:
        return None
    return {
        "display_name": row.display_name,
        "preferred_name": row.preferred_name,
        "pronouns": row.pronouns,
        "email": row.email,
        "other_name": row.other_name,
    }


def student_body(
    rows: Sequence[Row[Any]],
    *,
    student_id: str,
    rank: dict[tuple[str, str, str], int],
    correction: str | None = None,
) -> bytes:
    """The ``StudentIndicators`` answer for ``rows`` of ``student_statement``, as the bytes sent."""
    views: list[dict[str, Any]] = []
    at: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row.module_id, row.presentation_id)
        found = at.get(key)
        if found is None:
            found = at[key] = {
                "student_id": student_id,
                "module_id": row.module_id,
                "presentation_id": row.presentation_id,
                "support_priority": rank.get((student_id, *key), len(rank) + 1),
                "estimate": _estimate(row),
                **dict.fromkeys(_EXPLANATION),
                "history": [],
                "provenance": _provenance(row),
                "reading_note": READING_NOTE,
            }
            views.append(found)
        if row.past_run_id == row.run_id:
            found.update({name: _stored(getattr(row, name)) for name in _EXPLANATION})
        found["history"].append(
            {
                "run_id": row.past_run_id,
                "week": row.past_week,
                "data_as_of": row.past_as_of,
                "model_version": row.past_model_version,
                "value": row.past_value,
                "lower": row.past_lower,
                "upper": row.past_upper,
            }
        )
    body = {
        "student_id": student_id,
        "directory": _directory(rows[0]) if rows else None,
        "indicators": views,
        "correction": correction,
    }
    return orjson.dumps(body)


def read_student(
    session: Session, principal: Principal, *, served: Served, student_id: str
) -> tuple[int, bytes] | None:
    """The served run's id and the answer for ``student_id``; None when not in scope (or no such student)."""
    rows = (
        session.connection().execute(student_statement(principal, served), {"student_id": student_id}).all()
    )
    if not rows:
        return None
    run_id = int(rows[0].run_id)
    rank = ranks(session, principal, run_id=run_id)
    correction = correction_notice(session, student_id, run_id=run_id, own=False)
    return run_id, student_body(rows, student_id=student_id, rank=rank, correction=correction)


def caseload_statement(
    principal: Principal, served: Served, *, module_id: str | None, offset: int, limit: int
) -> Select[Any]:
    """One statement: a page of the caller's caseload in support-priority order, with its total."""
    cur, run = _CUR, _RUN
    source, scope = _readable_from(principal, served, ind=cur, run=run)
    source = source.outerjoin(_DIRECTORY, _DIRECTORY.c.student_id == cur.c.student_id)
    query = (
        select(
            cur.c.student_id,
            cur.c.module_id,
            cur.c.presentation_id,
            cur.c.probability,
            cur.c.lower,
            cur.c.upper,
            cur.c.previous_probability,
            cur.c.week,
            cur.c.as_of,
            cur.c.factors[(0, "sentence")].as_string().label("top_factor"),
            run.c.id.label("run_id"),
            run.c.target,
            run.c.model_name,
            run.c.model_version,
            func.coalesce(func.nullif(_DIRECTORY.c.preferred_name, ""), _DIRECTORY.c.display_name).label(
                "name"
            ),
            _DIRECTORY.c.other_name,
            func.count().over().label("total"),
            # said on each item: a system driving outreach from the caseload must not reach them (the
            # worklist leaves them off; the caseload keeps every registration in its order)
            said_no(cur.c.student_id).label("declined_contact"),
            # ties share a priority: their order among themselves is only the list's (``ranks``)
            func.rank().over(order_by=list_order(cur.c).desc()).label("priority"),
        )
        .select_from(source)
        .where(scope)
    )
    if module_id is not None:
        query = query.where(cur.c.module_id == module_id)
    order = (list_order(cur.c).desc(), cur.c.student_id, cur.c.module_id, cur.c.presentation_id)
    return query.order_by(*order).offset(offset).limit(limit)


@dataclass(frozen=True)
class CaseloadPage:
    """A page of a caseload: its students (for the access log) and the answer's bytes."""

    students: list[str]
    body: bytes


def caseload_body(rows: Sequence[Row[Any]], *, total: int, offset: int, limit: int) -> bytes:
    """The ``Caseload`` answer (``available`` true) for ``rows`` of ``caseload_statement``."""
    items = [
        {
            "student_id": r.student_id,
            "name": r.name,
            "other_name": r.other_name,
            "module_id": r.module_id,
            "presentation_id": r.presentation_id,
            "support_priority": int(r.priority),
            "estimate": _estimate(r),
            "top_factor": r.top_factor,
            "week": r.week,
            "data_as_of": r.as_of,
            "declined_contact": bool(r.declined_contact),
        }
        for i, r in enumerate(rows)
    ]
    body = {
        "available": True,
        "total": total,
        "offset": offset,
        "limit": limit,
        "items": items,
        "provenance": _provenance(rows[0]) if rows else None,
        "reading_note": READING_NOTE,
    }
    return orjson.dumps(body)


def read_caseload(
    session: Session,
    principal: Principal,
    *,
    served: Served,
    module_id: str | None,
    offset: int,
    limit: int,
) -> CaseloadPage | None:
    """A page of the caller's caseload; None when the page is empty (the caller then counts, rarely)."""
    statement = caseload_statement(principal, served, module_id=module_id, offset=offset, limit=limit)
    rows = session.connection().execute(statement).all()
    if not rows:
        return None
    body = caseload_body(rows, total=int(rows[0].total), offset=offset, limit=limit)
    return CaseloadPage(list(dict.fromkeys(r.student_id for r in rows)), body)
