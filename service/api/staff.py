"""Staff endpoints: caseload, a student's indicator, outreach contacts, feedback, wellbeing holds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import func, select

from waymark.models.roles import SUPPORT_ROLES, Role
from waymark.service import outreach, reads, worklist
from waymark.service.access import readable
from waymark.service.api.deps import Access, AccessRoute, access_for
from waymark.service.db.engine import one_student_at_a_time
from waymark.service.db.schema import (
    Contact,
    Feedback,
    Indicator,
    Intervention,
    StudentPreference,
    columns,
)
from waymark.service.db.upsert import upsert
from waymark.service.errors import Refused, not_found
from waymark.service.indicators import (
    READING_NOTE,
    estimate,
    follows_up,
    provenance,
    student_in_scope,
    supports,
)
from waymark.service.schemas import (
    CONSENT_PURPOSES,
    Caseload,
    ConsentOut,
    ContactChange,
    ContactIn,
    ContactStep,
    ContactSummary,
    ContactView,
    EngagementSummary,
    FeedbackIn,
    HoldIn,
    Identifier,
    InterventionIn,
    LeftOutFollowUp,
    Option,
    OutreachOptions,
    PlacementView,
    Recorded,
    SearchText,
    StudentIndicators,
    Worklist,
    WorklistEntry,
    WorklistQuery,
    WorklistRegistration,
    is_identifier,
)

router = APIRouter(prefix="/v1", tags=["staff"], route_class=AccessRoute)
Support = Annotated[Access, access_for(*SUPPORT_ROLES)]
NOT_AVAILABLE = (
    "Indicators are not available: no approved model's indicators are being served (none published yet, "
    "the model re-audited and awaiting the ethics committee's review, or its approval withdrawn). Your "
    "team's contacts stay on each student's page, reached by the student's id."
)


def _options(access: Access) -> outreach.OutreachOptions:
    """The institution's outreach lists (the file was checked at start-up; read once, then cached)."""
    return outreach.load_options(access.runtime.settings.outreach_file)


def _now() -> datetime:
    return datetime.now(UTC)


@router.get("/caseload", response_model=Caseload)
def caseload(
    access: Support,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    *,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    module_id: Annotated[Identifier | None, Query()] = None,
) -> Response | Caseload:
    """The caller's caseload, ordered by support priority (1 = contact first)."""
    limit = min(limit, access.runtime.settings.max_page_size)
    served = access.served()
    found = (
        None
        if served is None
        else reads.read_caseload(
            access.session, access.principal, served=served, module_id=module_id, offset=offset, limit=limit
        )
    )
    if found is not None:
        access.record(found.students, "caseload_view")  # last: the head is held until commit
        return Response(found.body, media_type=reads.MEDIA_TYPE)
    run = access.served_run()  # an empty page: unavailable, or past the end of the caseload
    if run is None:
        return Caseload(
            available=False,
            total=0,
            offset=offset,
            limit=limit,
            items=[],
            provenance=None,
            reading_note=NOT_AVAILABLE,
        )
    query = readable(access.principal, run.id)
    if module_id is not None:
        query = query.where(Indicator.module_id == module_id)
    total = access.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    return Caseload(
        available=True,
        total=total,
        offset=offset,
        limit=limit,
        items=[],
        provenance=None,
        reading_note=READING_NOTE,
    )


@router.get("/worklist", response_model=Worklist)
def worklist_page(
    access: Support,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    *,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    module_id: Annotated[Identifier | None, Query()] = None,
    not_contacted: Annotated[bool, Query(description="Only students nobody has contacted yet.")] = False,
    changed: Annotated[bool, Query(description="Only estimates that moved since the last run.")] = False,
    follow_up_due: Annotated[bool, Query(description="Only students whose follow-up is due.")] = False,
    search: Annotated[SearchText | None, Query(description="Part of a name or a student id.")] = None,
    new: Annotated[
        bool, Query(description="Only students first indicated since your previous visit.")
    ] = False,
) -> Worklist:
    """The caller's students, one row each (their registrations inside), by support priority.

    ``POST /v1/worklist`` takes the same filters in its body: the workspace sends a search there, so a
    name typed into it is never in an address sent to the server (or logged by a proxy on the way).
    """
    asked = WorklistQuery(
        offset=offset,
        limit=limit,
        module_id=module_id,
        not_contacted=not_contacted,
        changed=changed,
        follow_up_due=follow_up_due,
        search=search,
        new=new,
    )
    return _worklist(access, asked)


@router.post("/worklist", response_model=Worklist)
def worklist_search(body: WorklistQuery, access: Support) -> Worklist:
    """``GET /v1/worklist`` with its filters in the body (a search's text stays out of the address)."""
    return _worklist(access, body)


def _as_number(access: Access, search: str | None) -> tuple[str, ...]:
    """The ids records could carry for a search typed as a student number (none if it cannot be one).

    Put through the imports' secret when one is set: a tutor typing their tutee's number found nobody.
    """
    typed = typed_number(search)
    if typed is None:
        return ()
    named = access.runtime.verifier.students.named
    return tuple(dict.fromkeys(named(form) for form in number_forms(typed)))


PADDED = 3  # leading zeros a typed number is tried with: ids padded by the imports, typed without them


def number_forms(typed: str) -> tuple[str, ...]:
    """A typed student number, and where it is digits, without its leading zeros and with up to three.

    An Israeli college's imports padded the platform's ids to nine digits: a tutor typing 43692839 for
    043692839 found nobody where ids are pseudonyms (a substring of a pseudonym is nothing).
    """
    if not typed.isdecimal():
        return (typed,)
    bare = typed.lstrip("0") or "0"
    return tuple(dict.fromkeys((typed, bare, *("0" * k + bare for k in range(1, PADDED + 1)))))


def typed_number(search: str | None) -> str | None:
    """A search as a student number could be written (trimmed, without a spreadsheet's quotes), or None.

    '2202310017 pasted from a CSV found nobody.
    """
    typed = (search or "").strip().strip("'\"")
    return typed if typed and is_identifier(typed) else None


def _worklist(access: Access, asked: WorklistQuery) -> Worklist:
    filters = worklist.Filters(
        module_id=asked.module_id,
        not_contacted=asked.not_contacted,
        changed=asked.changed,
        follow_up_due=asked.follow_up_due,
        search=asked.search,
        new_since_visit=asked.new,
        students=_as_number(access, asked.search),
        pseudonyms=access.runtime.verifier.students.pseudonymised,
    )
    offset, limit = asked.offset, min(asked.limit, access.runtime.settings.max_page_size)
    now = _now()
    previous = worklist.visit(access.session, access.principal, now=now)
    held = _left_out_follow_ups(access)
    run = access.served_run()
    if run is None:
        _record_follow_ups(access, held)
        return Worklist(
            available=False,
            total=0,
            offset=offset,
            limit=limit,
            previous_visit=previous,
            items=[],
            left_out_follow_ups=held,
            provenance=None,
            reading_note=NOT_AVAILABLE,
        )
    found = worklist.page(
        access.session,
        access.principal,
        run=run,
        filters=filters,
        offset=offset,
        limit=limit,
        previous_visit=previous,
        today=now.date(),
    )
    access.record((r.student_id for r in found.rows), "worklist_view")
    _record_follow_ups(access, held)  # the access log's lock is taken by the first record: after the reads
    first = next((r.registrations[0] for r in found.rows if r.registrations), None)
    return Worklist(
        available=True,
        total=found.total,
        offset=offset,
        limit=limit,
        previous_visit=previous,
        new_since_last_visit=found.new_total,
        modules=found.modules,
        not_listed=found.not_listed,
        items=[_entry(r) for r in found.rows],
        left_out_follow_ups=held,
        provenance=provenance(first, run) if first else None,
        reading_note=READING_NOTE,
        order_note=worklist.order_note(run.smoothing),
    )


def _record_follow_ups(access: Access, held: list[LeftOutFollowUp]) -> None:
    access.record(sorted({h.student_id for h in held}), "follow_up_listed")


def _left_out_follow_ups(access: Access) -> list[LeftOutFollowUp]:
    options = _options(access)
    found = worklist.left_out_follow_ups(
        access.session, access.principal, runtime=access.runtime, kept=options.kept
    )
    return [
        LeftOutFollowUp(
            student_id=c.student_id,
            name=name,
            contact_id=c.id,
            purpose=c.purpose,
            exemption=c.exemption,
            exemption_text=options.exemptions.get(c.exemption or ""),
            status=c.status,
            follow_up_on=c.follow_up_on,
        )
        for c, name in found
    ]


def _entry(row: worklist.Row) -> WorklistEntry:
    contact = row.latest_contact
    return WorklistEntry(
        student_id=row.student_id,
        name=row.name,
        other_name=row.other_name,
        support_priority=row.support_priority,
        registrations=[
            WorklistRegistration(
                module_id=r.module_id,
                presentation_id=r.presentation_id,
                estimate=estimate(r),
                top_factor=r.factors[0]["sentence"] if r.factors else None,
                week=r.week,
                data_as_of=r.as_of,
            )
            for r in row.registrations
        ],
        latest_contact=None
        if contact is None
        else ContactSummary.model_validate(contact, from_attributes=True),
        next_follow_up_on=row.next_follow_up,
        correction_pending=row.correction,
        follow_up_due=row.follow_up_due,
        consent_withdrawn=row.consent_withdrawn,
        declined_contact=row.declined_contact,
        changed_since_last_run=row.changed,
        new_since_last_visit=row.new_since_last_visit,
    )


# ``:path``: a student number may hold slashes (CSC/2019/045, 21/BCA/045) where the imports keep numbers
# as they are; sent raw or encoded (%2F, as the pages send it), it arrives decoded and must still match.
@router.get("/students/{student_id:path}/indicator", response_model=StudentIndicators)
def student_indicator(student_id: Identifier, access: Support) -> Response:
    """A student's explained indicators (one per module presentation in the caller's scope).

    The id as the records carry it, or the student's number put through the imports' secret (as for
    a placement supervisor: a medical school's tutor who typed a number was told it was not theirs).
    """
    served = access.served()
    found = (
        None
        if served is None
        else reads.read_student(access.session, access.principal, served=served, student_id=student_id)
    )
    if found is None and served is not None:  # the student's number, as the records carry it
        named = access.runtime.verifier.students.named(student_id)
        if named != student_id:
            found = reads.read_student(access.session, access.principal, served=served, student_id=named)
            student_id = named if found is not None else student_id
    if found is None:
        if access.served_run() is None:
            raise Refused(404, title="Not available", detail=NOT_AVAILABLE)
        raise not_found()
    access.record([student_id], "indicator_view")  # last: the access log's head is held until commit
    return Response(found[1], media_type=reads.MEDIA_TYPE)


@router.get("/students/{student_id:path}/engagement", response_model=PlacementView)
def engagement(
    student_id: Identifier, access: Annotated[Access, access_for(Role.PLACEMENT_SUPERVISOR)]
) -> PlacementView:
    """A placement supervisor's minimal engagement summary for an assigned student.

    The id as the records carry it, or the student's number, put through the imports' secret: a school
    mentor, who has no list to pick from, typed the trainee's number and was told there was nothing.
    """
    run = access.served_run()
    ids = {student_id, access.runtime.verifier.students.named(student_id)}
    query = None if run is None else readable(access.principal, run.id).where(Indicator.student_id.in_(ids))
    rows = [] if query is None else list(access.session.scalars(query))
    if not rows:
        raise not_found()
    student_id = rows[0].student_id
    access.record([student_id], "engagement_view")
    return PlacementView(
        student_id=student_id,
        summaries=[
            EngagementSummary(
                student_id=r.student_id,
                module_id=r.module_id,
                presentation_id=r.presentation_id,
                data_as_of=r.as_of,
                **r.engagement,
            )
            for r in rows
        ],
    )


@router.post("/students/{student_id:path}/feedback", response_model=Recorded, status_code=201)
def feedback(student_id: Identifier, body: FeedbackIn, *, access: Support) -> Recorded:
    """Record whether an indicator was useful or right (it improves later models and is reviewed)."""
    one_student_at_a_time(access.session, student_id)  # ordered with an erasure of this student
    run = access.served_run()
    if run is None:
        raise not_found()
    query = readable(access.principal, run.id).where(
        Indicator.student_id == student_id,
        Indicator.module_id == body.module_id,
        Indicator.presentation_id == body.presentation_id,
    )
    if access.session.scalar(query) is None:
        raise not_found()
    row = Feedback(
        run_id=run.id,
        student_id=student_id,
        module_id=body.module_id,
        presentation_id=body.presentation_id,
        staff_id=access.principal.sub,
        value=body.value,
        note=body.note,
        at=_now(),
    )
    access.session.add(row)
    access.record([student_id], "feedback_write")
    access.session.flush()
    return Recorded(id=row.id, at=row.at)


@router.post("/students/{student_id:path}/interventions", response_model=Recorded, status_code=201)
def intervention(student_id: Identifier, body: InterventionIn, *, access: Support) -> Recorded:
    """Record an intervention: needs the student's consent for its purpose, or an institution's exemption.

    As for a contact (``outreach.basis_for``): never free text in place of consent.
    """
    one_student_at_a_time(access.session, student_id)  # ordered with an erasure of this student
    if (
        student_in_scope(access.session, access.principal, runtime=access.runtime, student_id=student_id)
        is None
    ):
        raise not_found()
    reason = (body.exemption_reason or "").strip() or None
    try:
        basis = outreach.basis_for(
            access.session,
            student_id,
            purpose=body.purpose,
            exemption=reason,
            options=_options(access),
        )
    except outreach.OutreachError as exc:
        exc.field = "exemption_reason"  # this endpoint's name for the exemption
        raise _recorded_refusal(access, exc, student_id=student_id, action="intervention_refused") from exc
    row = Intervention(
        student_id=student_id,
        staff_id=access.principal.sub,
        purpose=body.purpose,
        description=body.description,
        basis=basis,
        exemption_reason=reason if basis == "exemption" else None,
        at=_now(),
    )
    access.session.add(row)
    access.record(
        [student_id], "intervention_write" if basis == "consent" else "intervention_write_under_exemption"
    )
    access.session.flush()
    return Recorded(id=row.id, at=row.at)


HoldAccess = Annotated[Access, access_for(Role.PERSONAL_TUTOR, Role.SUPPORT_STAFF)]


def _holdable(access: Access, student_id: str) -> None:
    """404 unless the caller supports ``student_id`` in the served run (as for their indicator)."""
    if (
        student_in_scope(access.session, access.principal, runtime=access.runtime, student_id=student_id)
        is None
    ):
        raise not_found()


@router.get("/students/{student_id:path}/wellbeing-hold", response_model=HoldIn)
def wellbeing_hold_state(student_id: Identifier, access: HoldAccess) -> HoldIn:
    """Whether the student's own view of their indicator is withheld now (``wellbeing_hold_view``)."""
    _holdable(access, student_id)
    pref = access.session.get(StudentPreference, student_id)
    access.record([student_id], "wellbeing_hold_view")
    return HoldIn(withheld=bool(pref is not None and pref.withheld_for_wellbeing))


@router.put("/students/{student_id:path}/wellbeing-hold", status_code=204)
def wellbeing_hold(student_id: Identifier, body: HoldIn, *, access: HoldAccess) -> None:
    """Withhold (or release) the student's own view of their indicator; they still see it if they ask."""
    one_student_at_a_time(access.session, student_id)  # ordered with an erasure of this student
    _holdable(access, student_id)
    hold = {"student_id": student_id, "show_indicator": False, "withheld_for_wellbeing": body.withheld}
    upsert(access.session, StudentPreference, values=hold, update=["withheld_for_wellbeing"])
    access.record([student_id], "wellbeing_hold_write")


# Outreach --------------------------------------------------------------------------------------------


@router.get("/outreach/options", response_model=OutreachOptions)
def outreach_options(access: Support) -> OutreachOptions:
    """The institution's lists a contact is recorded from (no student data)."""
    options = _options(access)
    return OutreachOptions(
        channels=[Option(key=k, text=v) for k, v in options.channels.items()],
        purposes=list(CONSENT_PURPOSES),
        exemptions=[Option(key=k, text=v) for k, v in options.exemptions.items()],
        statuses=list(outreach.STATUSES),
        outcomes=list(outreach.OUTCOMES),
    )


def _contact_view(access: Access, contact: Contact) -> ContactView:
    steps = [
        ContactStep.model_validate(e, from_attributes=True)
        for e in outreach.history(access.session, contact.id)
    ]
    return ContactView.model_validate({**columns(contact), "history": steps})


def _in_scope(access: Access, student_id: str) -> int:
    """The served run's id if ``student_id`` is in the caller's scope (404 otherwise, as for a stranger)."""
    run = student_in_scope(access.session, access.principal, runtime=access.runtime, student_id=student_id)
    if run is None:
        raise not_found()
    return run.id


def _supported(access: Access, student_id: str) -> None:
    """404, as for a stranger, unless the caller still supports ``student_id`` (``indicators.supports``).

    For the team's contacts with the student: readable and closable with or without a served run.
    """
    if not supports(access.session, access.principal, runtime=access.runtime, student_id=student_id):
        raise not_found()


def _supported_or_following_up(access: Access, student_id: str) -> bool:
    """True if the caller supports ``student_id``; False if they only follow up a contact under an exemption.

    404, as for a stranger, when neither (``indicators.supports``, ``indicators.follows_up``).
    """
    if supports(access.session, access.principal, runtime=access.runtime, student_id=student_id):
        return True
    kept = _options(access).kept
    if follows_up(access.session, access.principal, runtime=access.runtime, student_id=student_id, kept=kept):
        return False
    raise not_found()


def _recorded_refusal(
    access: Access, exc: outreach.OutreachError, *, student_id: str, action: str
) -> Refused:
    """The refusal of a contact or intervention, with its own access-log record committed first.

    A refusal tells the caller something about the student (409: they have not agreed to support of
    that kind), so it is recorded like any read; the raised error then rolls back nothing but what
    the refused write had begun, which goes first.
    """
    # a missing reason follows the consent check too: it says the student has not agreed
    consent = (outreach.ConsentNeededError, outreach.ConsentWithdrawnError, outreach.ReasonNeededError)
    if isinstance(exc, consent) or exc.field in {"exemption", "exemption_reason"}:
        # Only these follow the consent check (an exemption is weighed once there is no consent); a
        # channel or status refused before it tells nothing of the student, and is not said to them.
        access.session.rollback()
        access.record([student_id], action)
        access.session.commit()
    return _refused(exc)


def _refused(exc: outreach.OutreachError) -> Refused:
    if isinstance(exc, outreach.ConsentNeededError):
        return Refused(409, title="Consent needed", detail=str(exc))
    if isinstance(exc, outreach.ConsentWithdrawnError):
        return Refused(409, title="Consent withdrawn", detail=str(exc))
    return Refused(422, title="Invalid request", detail=f"body.{exc.field}: {exc}")


@router.get("/students/{student_id:path}/contacts", response_model=list[ContactView])
def contacts(student_id: Identifier, access: Support) -> list[ContactView]:
    """Every contact with the student by anyone in the team, newest first, each with its history.

    Readable by whoever still supports the student (``indicators.supports``), also when no run is
    served or the student is not in it. Of a student left out at their request, only the open
    contacts under an exemption, to those following them up (``indicators.follows_up``).
    """
    if _supported_or_following_up(access, student_id):
        found = [_contact_view(access, c) for c in outreach.contacts_of(access.session, student_id)]
        access.record([student_id], "contacts_view")
    else:  # left out at their request: only the open contacts that outlive it
        kept = _options(access).kept
        found = [
            _contact_view(access, c) for c in outreach.open_outliving(access.session, student_id, kept=kept)
        ]
        access.record([student_id], "contacts_view_under_exemption")
    return found


@router.get("/students/{student_id:path}/consent", response_model=ConsentOut)
def consent(student_id: Identifier, access: Support) -> ConsentOut:
    """The student's answer for each purpose (given, declined, not answered): what staff may propose.

    Readable by whoever still supports the student, as the contacts are; recorded (``consent_view``).
    """
    _supported(access, student_id)
    found = outreach.consent_view(access.session, student_id)
    access.record([student_id], "consent_view")
    return found


@router.post("/students/{student_id:path}/contacts", response_model=ContactView, status_code=201)
def open_contact(student_id: Identifier, body: ContactIn, *, access: Support) -> ContactView:
    """Record a contact, planned or made, on a basis the student's answers allow.

    The student's consent to its purpose; an exemption (with a note saying why); or, when the student
    has not answered yet, an offer of support that asks them.
    """
    one_student_at_a_time(access.session, student_id)  # ordered with an erasure of this student
    run_id = _in_scope(access, student_id)
    try:
        contact = outreach.open_contact(
            access.session,
            student_id,
            staff=access.principal,
            run_id=run_id,
            channel=body.channel,
            purpose=body.purpose,
            exemption=body.exemption,
            status=body.status,
            follow_up_on=body.follow_up_on,
            note=body.note,
            options=_options(access),
        )
    except outreach.OutreachError as exc:
        raise _recorded_refusal(access, exc, student_id=student_id, action="contact_refused") from exc
    action = {"consent": "contact_write", "asking": "contact_write_asking"}
    access.record([student_id], action.get(contact.basis, "contact_write_under_exemption"))
    return _contact_view(access, contact)


@router.patch("/students/{student_id:path}/contacts/{contact_id}", response_model=ContactView)
def update_contact(
    student_id: Identifier,
    contact_id: Annotated[int, Path(ge=1, le=2**62)],
    *,
    body: ContactChange,
    access: Support,
) -> ContactView:
    """Move a contact on (status, outcome when closing, follow-up date, note); every change is kept.

    Allowed to whoever still supports the student (as ``contacts``). 409, recorded in the access log
    like a refused contact, when the contact's basis is consent the student has since withdrawn and
    the change would carry it on rather than close it.
    """
    one_student_at_a_time(access.session, student_id)  # ordered with an erasure of this student
    supported = _supported_or_following_up(access, student_id)
    contact = access.session.get(Contact, contact_id)
    if contact is None or contact.student_id != student_id:
        raise not_found()
    kept = _options(access).kept
    if not supported and (contact.exemption not in kept or contact.status == "closed"):
        raise not_found()  # left out at their request: only an open contact that outlives it moves on
    change = outreach.Change(
        status=body.status,
        outcome=body.outcome,
        follow_up_on=body.follow_up_on,
        clear_follow_up=body.clear_follow_up,
        note=body.note,
    )
    try:
        outreach.update_contact(access.session, contact, staff=access.principal, change=change)
    except outreach.OutreachError as exc:
        raise _recorded_refusal(access, exc, student_id=student_id, action="contact_refused") from exc
    access.record([student_id], "contact_update")
    return _contact_view(access, contact)
