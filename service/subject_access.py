"""Everything Waymark holds about one student: their own export, and the DPO's subject access copy.

A student downloads what the service database holds about them (``GET /v1/me/export``). A subject
access request (GDPR Art. 15) reaches further: the data folder the imports wrote holds a
pseudonymised copy of the student's records, marks and activity, which the DPO adds with
``waymark data subject-access``. Protected characteristics are read only in aggregate by the
fairness audit (PRODUCT §2), never copied out here: the copy says which the folder holds for the
student and that their values are the records system's, whose own subject access answers them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, func, or_, select, tuple_
from sqlalchemy.orm import Session

from waymark.models.data.erase import rows_naming
from waymark.service import audit
from waymark.service.access import on_its_days
from waymark.service.db.schema import (
    AccessGrant,
    AuditRecord,
    Consent,
    Contact,
    ContactEvent,
    DirectoryEntry,
    Feedback,
    Indicator,
    Intervention,
    ProcessingRestriction,
    RightsRequest,
    ScoringRun,
    StudentPreference,
    columns,
)
from waymark.service.objections import still_restricted
from waymark.service.outreach import outlives
from waymark.service.security import Principal

#: The data folder's audit-only tables: named in a copy, their values never read into it.
AUDIT_ONLY = frozenset({"protected_characteristics"})
AUDIT_ONLY_NOTE = (
    "Held for the fairness audit only, which reads it in aggregate with small groups suppressed; never "
    "a feature, never shown to staff. The values are the records system's, and its own subject access "
    "answers them."
)


def _table(name: str) -> str:
    """The contract table a file of the folder belongs to: ``t.parquet``, or a part ``t/part-0.parquet``."""
    return Path(Path(name).parts[0]).stem


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value  # dates and datetimes


def _rows(session: Session, model: Any, *, student_id: str) -> list[dict[str, Any]]:
    return [
        {k: _plain(v) for k, v in columns(obj).items()}
        for obj in session.scalars(select(model).where(model.student_id == student_id))
    ]


def _scopes(indicators: Iterable[dict[str, Any]]) -> list[tuple[str, ColumnElement[bool]]]:
    """The module, programme and school relationships that reach the student's ``indicators``, by kind.

    A module's relationship on another presentation of it does not reach them.
    """
    rows = list(indicators)
    out = []
    for scope_type, column in (
        ("module", "module_id"),
        ("programme", "programme_id"),
        ("school", "school_id"),
    ):
        scopes = sorted({str(r[column]) for r in rows if r.get(column)})
        if not scopes:
            continue
        held = and_(AccessGrant.scope_type == scope_type, AccessGrant.scope_id.in_(scopes))
        if scope_type == "module":
            theirs = sorted({(str(r["module_id"]), str(r["presentation_id"])) for r in rows})
            held = and_(
                held,
                or_(
                    AccessGrant.presentation_id == "",
                    tuple_(AccessGrant.scope_id, AccessGrant.presentation_id).in_(theirs),
                ),
            )
        out.append((scope_type, held))
    return out


def _readers(session: Session, indicators: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Who may read the student's indicators through a module, programme or school: kinds and counts.

    The relationships naming the student alone had listed their personal tutor, not the module leaders
    or support staff who may read them too (GDPR Art. 15(1)(c): the recipients, by category).
    """
    out = []
    for scope_type, held in _scopes(indicators):
        counted = session.execute(
            select(
                AccessGrant.relationship, AccessGrant.scope_id, func.count(AccessGrant.staff_id.distinct())
            )
            .where(held)
            .group_by(AccessGrant.relationship, AccessGrant.scope_id)
            .order_by(AccessGrant.relationship, AccessGrant.scope_id)
        )
        out += [
            {"relationship": rel, "scope_type": scope_type, "scope_id": scope, "staff": int(n)}
            for rel, scope, n in counted
        ]
    return out


#: A kept contact's readers, by what brings them to it (``indicators.follows_up``).
FOLLOWED_UP = "opened_or_followed_up"


def _kept_reach(
    session: Session, student_id: str, *, kept: tuple[str, ...]
) -> tuple[list[str], dict[str, set[str]], set[str]]:
    """Who may read the student's contacts that outlive a restriction, at most (``indicators.follows_up``).

    Returns the exemptions of the open contacts kept (none: nothing outlives the restriction), the
    staff of each relationship naming the student, and the others who opened or moved one of those
    contacts on and hold a relationship that reaches the student. Relationships count on their days
    only; once an upheld objection has deleted the estimates made of the student, only those naming
    them reach a kept contact (``indicators._supports``).
    """
    contacts = select(Contact.id).where(Contact.student_id == student_id, outlives(Contact, kept=kept))
    held = session.scalars(select(Contact.exemption).where(Contact.id.in_(contacts)).distinct())
    exemptions = sorted({str(e) for e in held})
    if not exemptions:
        return [], {}, set()
    named: dict[str, set[str]] = {}
    for rel, staff in session.execute(
        select(AccessGrant.relationship, AccessGrant.staff_id).where(
            AccessGrant.scope_type == "student", AccessGrant.scope_id == student_id, on_its_days()
        )
    ):
        named.setdefault(str(rel), set()).add(str(staff))
    placed = session.execute(
        select(Indicator.module_id, Indicator.presentation_id, Indicator.programme_id, Indicator.school_id)
        .where(Indicator.student_id == student_id)
        .distinct()
    )
    scopes = _scopes(dict(row._mapping) for row in placed)
    if not scopes:
        return exemptions, named, set()
    workers = select(ContactEvent.staff_id).where(ContactEvent.contact_id.in_(contacts))
    reaching = session.scalars(
        select(AccessGrant.staff_id)
        .where(AccessGrant.staff_id.in_(workers), or_(*(c for _, c in scopes)), on_its_days())
        .distinct()
    )
    return exemptions, named, {str(s) for s in reaching} - set().union(*named.values())


def kept_readers(session: Session, student_id: str, *, kept: tuple[str, ...]) -> list[dict[str, Any]]:
    """Who may read the student's contacts that outlive a restriction: kinds and counts, at most.

    While the student is left out nobody reads their indicators, but an open contact under one of the
    ``kept`` exemptions stays with the staff whose relationship names the student, and with those who
    opened or moved one of them on (``indicators.follows_up``, read as ``_kept_reach`` says). The copy
    had listed no recipients at all while those staff read it (GDPR Art. 15(1)(c)). Each person is
    counted once, by the relationship naming the student where one does. ``follows_up`` also asks that
    a relationship is in the role the caller acts in, so this is who may read, at most.
    """
    exemptions, named, others = _kept_reach(session, student_id, kept=kept)
    out = [
        {"relationship": rel, "scope_type": "student", "scope_id": student_id, "staff": len(staff)}
        for rel, staff in sorted(named.items())
    ]
    if others:
        out.append(
            {
                "relationship": FOLLOWED_UP,
                "scope_type": "kept_contacts",
                "scope_id": ", ".join(exemptions),
                "staff": len(others),
            }
        )
    return out


def kept_reader_count(session: Session, student_id: str, *, kept: tuple[str, ...]) -> int:
    """How many different members of staff may read the student's kept contacts, at most (the DPO's)."""
    _, named, others = _kept_reach(session, student_id, kept=kept)
    return len(set().union(*named.values(), others))


def database_records(
    session: Session, student_id: str, *, kept: tuple[str, ...]
) -> dict[str, list[dict[str, Any]]]:
    """Every record of the service database that names the student, by kind.

    ``kept`` names the exemptions whose open contacts outlive a restriction (the outreach file's
    ``[restriction] kept``): while the student is left out, their readers are those contacts' readers.
    """
    runs = {r.id: r for r in session.scalars(select(ScoringRun).where(ScoringRun.status == "complete"))}
    # each with the model version that made it, as the student's page says (a red team's finding)
    indicators = [
        {**r, "model_name": runs[r["run_id"]].model_name, "model_version": runs[r["run_id"]].model_version}
        for r in _rows(session, Indicator, student_id=student_id)
        if r["run_id"] in runs
    ]
    grants = select(AccessGrant).where(
        AccessGrant.scope_type == "student", AccessGrant.scope_id == student_id
    )
    restriction = _rows(session, ProcessingRestriction, student_id=student_id)
    return {
        "indicators": indicators,
        # while an objection stands no staff member reads their indicators (access.may_read); an open
        # contact kept under a restriction is read by those who support them (indicators.follows_up)
        "readers": (
            kept_readers(session, student_id, kept=kept)
            if still_restricted(session, student_id)
            else _readers(session, indicators)
        ),
        "feedback_on_indicators": _rows(session, Feedback, student_id=student_id),
        "interventions": _rows(session, Intervention, student_id=student_id),
        "contacts": _rows(session, Contact, student_id=student_id),
        "contact_history": _rows(session, ContactEvent, student_id=student_id),
        "directory": _rows(session, DirectoryEntry, student_id=student_id),
        "consents": _rows(session, Consent, student_id=student_id),
        "preferences": _rows(session, StudentPreference, student_id=student_id),
        "requests": _rows(session, RightsRequest, student_id=student_id),
        "restrictions": restriction,  # an objection, a correction being weighed (GDPR Art. 18)
        # the staff who support the student by name of relationship (their personal tutor's, say)
        "relationships": [{k: _plain(v) for k, v in columns(g).items()} for g in session.scalars(grants)],
        "access_log": _rows(session, AuditRecord, student_id=student_id),
    }


def subject_access(
    engine: Engine,
    key: bytes,
    *,
    student_id: str,
    folder: Path | None,
    pseudonym: Callable[[str], str] | None,
    caller: Principal,
    kept: tuple[str, ...],
) -> dict[str, Any]:
    """The DPO's copy for a subject access request; the copy is itself recorded in the access log.

    ``student_id`` is the id the records carry (a pseudonym in a pseudonymised folder); ``pseudonym``
    matches the folder's CSV files of student numbers to it, as ``waymark data erase`` does.
    """
    held = {} if folder is None else rows_naming(folder, student_id, pseudonym=pseudonym)
    audit_only = {
        name: {"columns": sorted({c for row in rows for c in row} - {"student_id"}), "rows": len(rows)}
        for name, rows in held.items()
        if _table(name) in AUDIT_ONLY
    }
    with audit.unit(engine, key) as session:
        copy = {
            "student_id": student_id,
            "made_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "database": database_records(session, student_id, kept=kept),
            "data_folder": {name: rows for name, rows in held.items() if _table(name) not in AUDIT_ONLY},
            "audit_only": {"note": AUDIT_ONLY_NOTE, "held": audit_only},
        }
        audit.record(
            session,
            caller,
            purpose="subject_access",
            students=[student_id],
            action="subject_access_copy",
            request=audit.RequestIds.new(),
        )
    return copy


def holds_records(session: Session, student: str) -> bool:
    """Whether Waymark holds anything under ``student`` (each an indexed lookup).

    An indicator, a directory entry, a relationship naming them, or an upheld objection. An
    objection or an erasure asked under an id that names none of these would be answered "you are
    left out" or "erased" and change nothing: a red team's student, signed in as ``s00000091`` where
    the records write ``S00000091``, was told so while their tutor still read them.
    """
    lookups = (
        select(Indicator.student_id).where(Indicator.student_id == student),
        select(DirectoryEntry.student_id).where(DirectoryEntry.student_id == student),
        select(AccessGrant.scope_id).where(
            AccessGrant.scope_type == "student", AccessGrant.scope_id == student
        ),
        # an upheld objection (its indicators gone), not one still weighed: that may be the request itself
        select(ProcessingRestriction.student_id).where(
            ProcessingRestriction.student_id == student, ProcessingRestriction.upheld.is_(True)
        ),
    )
    return any(session.execute(query.limit(1)).first() is not None for query in lookups)
