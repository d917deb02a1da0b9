"""The worklist: the caller's students, one row each, in support-priority order, with what to do next.

A student's row holds every registration of theirs in the caller's scope; the student's place in
the list is set by their highest list-order value (the estimate, or its smoothed value when the monitoring
policy smooths the list: ``schema.list_order``; ``support_priority`` counts students, not registrations,
and is the place in the whole list, whatever filter is applied). Filters narrow the list: a module,
students not yet contacted (no contact past ``to_contact``), whose estimate changed materially since
the last run, whose follow-up is due, or whose name or identifier matches a search. A student who said
no to being contacted about support is left off the list while no contact of theirs is open (one under
an exemption such as safeguarding, or one to close now that they withdrew): the list is of whom to
reach, and they asked not to be reached (Code of Practice §6). A search still finds them, marked, and
the page says how many were left off. Everything starts from ``service.access.readable``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, case, exists, false, func, literal, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from waymark.models.explain.change import MATERIAL
from waymark.service.access import readable
from waymark.service.db.schema import (
    Consent,
    Contact,
    DirectoryEntry,
    Indicator,
    RightsRequest,
    ScoringRun,
    StaffVisit,
    list_order,
    search_key,
)
from waymark.service.indicators import follows_up
from waymark.service.objections import left_out
from waymark.service.outreach import OFFER, outlives, said_no
from waymark.service.runtime import Runtime
from waymark.service.security import Principal

VISIT_GAP = timedelta(minutes=30)  # reading the worklist again within this continues the same visit
MADE = ("contacted", "in_conversation", "closed")  # a contact past planning


@dataclass(frozen=True)
class Filters:
    """What narrows the worklist (all optional)."""

    module_id: str | None = None
    not_contacted: bool = False
    changed: bool = False
    follow_up_due: bool = False
    search: str | None = None  # in a name (``search_key``) or the student id as stored
    new_since_visit: bool = False
    students: tuple[str, ...] = ()  # the search read as a student number: the ids records would carry for it
    # ids are pseudonyms: a typed text matches one whole (``students``), never as a part (a few digits
    # of a roll number listed students whose pseudonyms happened to hold them)
    pseudonyms: bool = False


@dataclass(frozen=True)
class Row:
    """One student on a page of the worklist."""

    student_id: str
    support_priority: int
    registrations: list[Indicator]
    name: str | None
    latest_contact: Contact | None  # the contact changed last
    follow_up_due: bool
    changed: bool
    new_since_last_visit: bool
    next_follow_up: date | None = None  # the earliest follow-up of an open contact (any colleague's)
    correction: bool = False  # the estimates rest on data the student asked to correct (correction_notice)
    consent_withdrawn: bool = False  # an open contact rests on consent the student has withdrawn
    declined_contact: bool = False  # the student said no to being contacted about support at all
    other_name: str | None = None  # their name in a second script, where the directory holds one


@dataclass(frozen=True)
class Page:
    """A page of the worklist and how many students the filters leave."""

    total: int
    rows: list[Row]
    previous_visit: datetime | None
    new_total: int  # students the filters leave who are new since the previous visit (whole list)
    modules: list[str]  # every module the caller's list covers, for the module filter
    not_listed: int = 0  # students the filters would leave who said no to contact, left off (``_listed``)


def order_note(smoothing: float | None) -> str:
    """How the list is ordered, in words for staff: by this run's estimates, or smoothed over runs."""
    if not smoothing:
        return f"Support priority follows each student's highest estimate in this run. {SHARED}"
    return (
        "Support priority follows each student's highest estimate averaged over recent runs "
        f"({smoothing:.0%} weight on earlier runs, as the monitoring policy sets), so the list changes less "
        "from week to week; a sharp rise takes a run or two longer to move a student up. The estimates "
        f"shown are this run's. {SHARED}"
    )


#: Said of ties, which share a support priority: their order is only the list's.
SHARED = "Students placed equal share a support priority; their order among themselves means nothing."


def _listed(student: ColumnElement[str]) -> ColumnElement[bool]:
    """The student belongs on a list of whom to reach.

    Not one who said no to being contacted about support, unless a contact of theirs is still open:
    one on a basis that holds (an exemption that applies, or their consent to its purpose) has a
    follow-up that must not drop out of sight, and one whose basis they withdrew is to be closed, which
    the row says (a reviewer's finding: it had dropped off the list with nothing left showing it).
    """
    return or_(~said_no(student), exists().where(Contact.student_id == student, Contact.status != "closed"))


def _ranked(principal: Principal, run_id: int) -> Select[tuple[str, float, int, int]]:
    rows = readable(principal, run_id).subquery()
    grouped = (
        select(
            rows.c.student_id,
            func.max(list_order(rows.c)).label("top"),
            case((_listed(rows.c.student_id), 0), else_=1).label("left_off"),
        )
        .group_by(rows.c.student_id)
        .subquery()
    )
    top, left_off = grouped.c.top, grouped.c.left_off
    # A student left off takes no place: the place is the rank among everyone less those left off above
    # (a student left off, found by a search, shows the place they would take, beside the next one's).
    above = func.sum(left_off).over(order_by=top.desc()) - func.sum(left_off).over(partition_by=top)
    return select(
        grouped.c.student_id,
        top,
        # Students with the same estimate share a priority (an Italian university's 222 students of
        # modules with nothing recorded, all at 0.4214, had been numbered 1 to 222 in pseudonym order).
        (func.rank().over(order_by=top.desc()) - above).label("priority"),
        left_off,
    )


def _filtered(
    principal: Principal, run: ScoringRun, *, filters: Filters, today: date, since: datetime | None
) -> Select[tuple[str, float, int, int]]:
    """The students ``filters`` leave, those left off the list (``left_off``) among them."""
    run_id = run.id
    ranked = _ranked(principal, run_id).subquery()
    query = select(ranked.c.student_id, ranked.c.top, ranked.c.priority, ranked.c.left_off)
    student = ranked.c.student_id
    if filters.module_id is not None:
        on_module = readable(principal, run_id).where(
            Indicator.student_id == student, Indicator.module_id == filters.module_id
        )
        query = query.where(on_module.exists())
    if filters.not_contacted:
        made = exists().where(Contact.student_id == student, Contact.status.in_(MADE))
        query = query.where(~made)
    if filters.follow_up_due:
        query = query.where(exists().where(_due(student, today)))
    if filters.changed:
        moved = func.abs(Indicator.probability - Indicator.previous_probability) >= MATERIAL
        scope = readable(principal, run_id).where(Indicator.student_id == student, moved)
        if filters.module_id is not None:
            scope = scope.where(Indicator.module_id == filters.module_id)
        query = query.where(scope.exists())
    if filters.new_since_visit:
        query = query.where(student.in_(_first_indicated_after(run.target, since)))
    if filters.search:
        typed = filters.search.strip()
        # Also with spaces ignored on both sides: "zhangwei" finds Zhang Wei (a Chinese university's staff
        # typed pinyin as one word, as it is often written).
        whole = search_key(typed).replace(" ", "")
        # And, of two words or more, each at the start of a word of the name wherever it stands: "Wei
        # Zhang" finds Zhang Wei, "Garcia Ana" Ana García López (a directory that writes the family name
        # first, or staff who do); at a word's start, or "Muhammad Ali" listed Muhammad Malik first.
        typed_words = search_key(typed).split()
        spaced = literal(" ").concat(DirectoryEntry.search_name)  # ||: SQLite before 3.44 has no concat()
        words = [spaced.contains(" " + w, autoescape=True) for w in typed_words]
        named = exists().where(
            DirectoryEntry.student_id == student,
            or_(
                DirectoryEntry.search_name.contains(search_key(typed), autoescape=True),
                and_(*words) if len(words) > 1 else false(),
                func.replace(DirectoryEntry.search_name, " ", "").contains(whole, autoescape=True),
            ),
        )
        found = (
            named
            if filters.pseudonyms
            else or_(named, func.lower(student).contains(typed.lower(), autoescape=True))
        )
        if filters.students:  # the typed text as a student number, put through the imports' secret
            found = or_(found, student.in_(filters.students))
        query = query.where(found)
    return query


def _consent_stands() -> ColumnElement[bool]:
    """The contact's basis still holds.

    An exemption, the student's consent to its purpose standing, or an offer (``asking``) the student
    has not declined.
    """
    answered = exists().where(Consent.student_id == Contact.student_id, Consent.purpose == Contact.purpose)
    consented = answered.where(Consent.granted.is_(True))
    declined = answered.where(Consent.granted.is_(False))
    no_offers = said_no(Contact.student_id)
    return or_(
        Contact.basis == "exemption",
        and_(Contact.basis == "consent", consented),
        and_(Contact.basis == "asking", consented),
        and_(Contact.basis == "asking", ~declined, ~no_offers),
    )


def _due(student: ColumnElement[str] | InstrumentedAttribute[str], today: date) -> ColumnElement[bool]:
    # A follow-up on consent the student has since withdrawn is not due: the contact can only be closed.
    return and_(
        Contact.student_id == student,
        Contact.status != "closed",
        Contact.follow_up_on.is_not(None),
        Contact.follow_up_on <= today,
        _consent_stands(),
    )


def _withdrawn(student: ColumnElement[str] | InstrumentedAttribute[str]) -> ColumnElement[bool]:
    return and_(Contact.student_id == student, Contact.status != "closed", ~_consent_stands())


def visit(session: Session, principal: Principal, *, now: datetime) -> datetime | None:
    """Record that the caller is reading their worklist; returns when their previous visit ended."""
    found = session.get(StaffVisit, (principal.sub, principal.role))
    if found is None:
        session.add(StaffVisit(staff_id=principal.sub, role=principal.role, last_seen_at=now))
        return None
    last = found.last_seen_at.replace(tzinfo=found.last_seen_at.tzinfo or UTC)
    if now - last > VISIT_GAP:
        found.previous_seen_at = last
    found.last_seen_at = now
    previous = found.previous_seen_at
    return None if previous is None else previous.replace(tzinfo=previous.tzinfo or UTC)


def page(
    session: Session,
    principal: Principal,
    *,
    run: ScoringRun,
    filters: Filters,
    offset: int,
    limit: int,
    previous_visit: datetime | None,
    today: date,
) -> Page:
    """One page of the caller's worklist under ``filters``.

    A search lists the students it finds, those left off the list too: the person may be in the room.
    """
    every = _filtered(principal, run, filters=filters, today=today, since=previous_visit).subquery()
    counted = session.execute(select(func.count(), func.sum(every.c.left_off)).select_from(every)).one()
    not_listed = 0 if filters.search else int(counted[1] or 0)
    total = int(counted[0] or 0) - not_listed
    query = every if filters.search else select(every).where(every.c.left_off == 0).subquery()
    new_total = session.scalar(
        select(func.count())
        .select_from(query)
        .where(query.c.student_id.in_(_first_indicated_after(run.target, previous_visit)))
    )
    ordered = select(query.c.student_id, query.c.priority).order_by(query.c.priority, query.c.student_id)
    chosen = [(str(s), int(p)) for s, p in session.execute(ordered.offset(offset).limit(limit))]
    students = [s for s, _ in chosen]
    return Page(
        total=total,
        rows=_rows(
            session, principal, run=run, chosen=chosen, filters=filters, since=previous_visit, today=today
        )
        if students
        else [],
        previous_visit=previous_visit,
        new_total=new_total or 0,
        modules=modules(session, principal, run_id=run.id),
        not_listed=not_listed,
    )


def modules(session: Session, principal: Principal, *, run_id: int) -> list[str]:
    """The modules of the caller's students in ``run_id`` (what the module filter can be set to)."""
    scope = readable(principal, run_id).subquery()
    return [str(m) for m in session.scalars(select(scope.c.module_id).distinct().order_by(scope.c.module_id))]


def _rows(
    session: Session,
    principal: Principal,
    *,
    run: ScoringRun,
    chosen: list[tuple[str, int]],
    filters: Filters,
    since: datetime | None,
    today: date,
) -> list[Row]:
    students = [s for s, _ in chosen]
    scope = readable(principal, run.id).where(Indicator.student_id.in_(students))
    if filters.module_id is not None:
        scope = scope.where(Indicator.module_id == filters.module_id)
    registrations: dict[str, list[Indicator]] = {}
    for row in session.scalars(scope.order_by(list_order(Indicator).desc(), Indicator.module_id)):
        registrations.setdefault(row.student_id, []).append(row)
    names = _names(session, students)
    latest = _latest_contacts(session, students)
    follow_ups = _next_follow_ups(session, students)
    due = set(
        session.scalars(
            select(Contact.student_id).where(
                *_due(Contact.student_id, today), Contact.student_id.in_(students)
            )
        )
    )
    withdrawn = set(
        session.scalars(
            select(Contact.student_id).where(_withdrawn(Contact.student_id), Contact.student_id.in_(students))
        )
    )
    new = _new_students(session, students, target=run.target, since=since)
    disputed = _corrections(session, students, run=run)
    # said on the row: a red team's student who declined every purpose stayed at priority 5, unmarked,
    # and the tutor found out only when an offer was refused
    declined = set(
        session.scalars(
            select(Consent.student_id).where(
                Consent.student_id.in_(students), Consent.purpose == OFFER, Consent.granted.is_(False)
            )
        )
    )
    return [
        Row(
            student_id=s,
            support_priority=int(p),
            registrations=registrations.get(s, []),
            name=names.get(s, (None, None))[0],
            other_name=names.get(s, (None, None))[1],
            latest_contact=latest.get(s),
            next_follow_up=follow_ups.get(s),
            follow_up_due=s in due,
            changed=any(
                r.previous_probability is not None and abs(r.probability - r.previous_probability) >= MATERIAL
                for r in registrations.get(s, [])
            ),
            new_since_last_visit=s in new,
            consent_withdrawn=s in withdrawn,
            declined_contact=s in declined,
            correction=s in disputed,
        )
        for s, p in chosen
    ]


def left_out_follow_ups(
    session: Session, principal: Principal, *, runtime: Runtime, kept: tuple[str, ...]
) -> list[tuple[Contact, str | None]]:
    """The open contacts that outlive a restriction with students left out at their request, and names.

    Those students are on no worklist (the restriction), but a safeguarding follow-up must not be lost
    with them (``indicators.follows_up`` says who follows one up). Soonest follow-up first.
    """
    found = session.scalars(
        select(Contact)
        .where(outlives(Contact, kept=kept), Contact.student_id.in_(left_out()))
        .order_by(Contact.follow_up_on.is_(None), Contact.follow_up_on, Contact.id)
    ).all()
    mine = {
        s
        for s in {c.student_id for c in found}
        if follows_up(session, principal, runtime=runtime, student_id=s, kept=kept)
    }
    names = _names(session, list(mine))
    return [(c, names.get(c.student_id, (None, None))[0]) for c in found if c.student_id in mine]


def _names(session: Session, students: list[str]) -> dict[str, tuple[str, str | None]]:
    """Each student's name as staff address them (preferred, else display), and in a second script."""
    return {
        e.student_id: (e.preferred_name or e.display_name, e.other_name)
        for e in session.scalars(select(DirectoryEntry).where(DirectoryEntry.student_id.in_(students)))
    }


def _latest_contacts(session: Session, students: list[str]) -> dict[str, Contact]:
    """Each student's contact changed last (a colleague's hand-over note on an older contact included)."""
    place = (
        func.row_number()
        .over(partition_by=Contact.student_id, order_by=(Contact.updated_at.desc(), Contact.id.desc()))
        .label("place")
    )
    ranked = select(Contact.id, place).where(Contact.student_id.in_(students)).subquery()
    query = select(Contact).join(ranked, and_(Contact.id == ranked.c.id, ranked.c.place == 1))
    return {c.student_id: c for c in session.scalars(query)}


def _next_follow_ups(session: Session, students: list[str]) -> dict[str, date]:
    """Each student's earliest follow-up date among open contacts whose basis stands, whoever set it."""
    query = (
        select(Contact.student_id, func.min(Contact.follow_up_on))
        .where(
            Contact.student_id.in_(students),
            Contact.status != "closed",
            Contact.follow_up_on.is_not(None),
            _consent_stands(),
        )
        .group_by(Contact.student_id)
    )
    return {student: when for student, when in session.execute(query) if when is not None}


def _corrections(session: Session, students: list[str], *, run: ScoringRun) -> set[str]:
    """Students whose estimates in ``run`` rest on data they asked to correct.

    An open rectification, one accepted and not yet recorded as reaching the data, or one that reached
    it after the run began, as ``indicators.correction_notice`` tells each student's readers one by one.
    """
    asked = and_(RightsRequest.student_id.in_(students), RightsRequest.kind == "rectification")
    open_or_since = or_(
        RightsRequest.status == "open",
        and_(
            RightsRequest.outcome == "accepted",
            or_(RightsRequest.applied_at.is_(None), RightsRequest.applied_at > run.started_at),
        ),
    )
    return set(session.scalars(select(RightsRequest.student_id).distinct().where(asked, open_or_since)))


def _new_students(session: Session, students: list[str], *, target: str, since: datetime | None) -> set[str]:
    """Those of ``students`` who are new since ``since`` (see ``_first_indicated_after``)."""
    new = _first_indicated_after(target, since)
    return set(
        session.scalars(
            select(Indicator.student_id)
            .distinct()
            .where(Indicator.student_id.in_(students), Indicator.student_id.in_(new))
        )
    )


def _first_indicated_after(target: str, since: datetime | None) -> Select[str]:
    """Students whose first indicator for ``target`` came from a complete run started after ``since``.

    Before a first visit (``since`` is None) nobody is new.
    """
    first = func.min(ScoringRun.started_at)
    query = (
        select(Indicator.student_id)
        .join(ScoringRun, ScoringRun.id == Indicator.run_id)
        .where(ScoringRun.status == "complete", ScoringRun.target == target)
        .group_by(Indicator.student_id)
    )
    return query.having(first > since) if since is not None else query.where(false())
