"""Students' own data: their indicator (if they choose), export, access log, consent, requests."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from sqlalchemy import func, select

from waymark.models.roles import Role
from waymark.service import audit, objections, outreach
from waymark.service.access import readable
from waymark.service.api.deps import Access, AccessRoute, access_for
from waymark.service.db.engine import erasure_barrier, one_student_at_a_time
from waymark.service.db.schema import (
    Consent,
    DirectoryEntry,
    Indicator,
    RightsRequest,
    StudentPreference,
    TrainingExclusion,
)
from waymark.service.db.upsert import upsert
from waymark.service.errors import Refused
from waymark.service.indicators import ORDER, correction_notice, for_the_student, history, view
from waymark.service.schemas import (
    AccessEntry,
    ConsentIn,
    ConsentOut,
    DirectoryView,
    OwnIndicator,
    OwnRequest,
    PreferencesIn,
    Recorded,
    RectificationIn,
    RequestIn,
)
from waymark.service.spreadsheet import safe_cell
from waymark.service.subject_access import database_records, holds_records

router = APIRouter(prefix="/v1/me", tags=["students"], route_class=AccessRoute)
Student = Annotated[Access, access_for(Role.STUDENT)]


def _now() -> datetime:
    return datetime.now(UTC)


@router.get("/indicator", response_model=OwnIndicator)
def own_indicator(
    access: Student,
    *,
    ask: Annotated[
        bool, Query(description="Show it now, whatever the saved choice or a wellbeing hold.")
    ] = False,
) -> OwnIndicator:
    """Your indicator, if you have chosen to see it (or ask for it now)."""
    me = access.principal.sub
    pref = access.session.get(StudentPreference, me)
    always = pref is not None and pref.show_indicator
    if not ask and always and pref is not None and pref.withheld_for_wellbeing:
        return OwnIndicator(
            shown=False,
            always=True,
            message="Your indicator is not shown automatically at the moment, although you chose to see it "
            "always. You can ask to see it at any time.",
        )
    if not ask and not always:
        return OwnIndicator(
            shown=False,
            message="Your indicator is not shown unless you choose to see it. Ask to see it at any time, or "
            "choose to see it always.",
        )
    run = access.served_run()
    query = None if run is None else readable(access.principal, run.id).order_by(*ORDER)
    rows = [] if query is None else list(access.session.scalars(query))
    if run is None or not rows:
        return OwnIndicator(
            shown=False, always=always, message="There is no indicator for you at the moment."
        )
    access.record([me], "own_indicator_view")
    views = [
        for_the_student(view(r, run, rank=None, past=history(access.session, r, target=run.target)))
        for r in rows
    ]
    return OwnIndicator(
        shown=True,
        always=always,
        message="This is an estimate from incomplete data, not a judgement.",
        indicators=views,
        correction=correction_notice(access.session, me, run_id=run.id, own=True),
    )


@router.put("/preferences", status_code=204)
def preferences(body: PreferencesIn, access: Student) -> None:
    """Choose whether to see your indicator."""
    me = access.principal.sub
    one_student_at_a_time(access.session, me)  # ordered with an erasure of your records
    values = {"student_id": me, "show_indicator": body.show_indicator, "withheld_for_wellbeing": False}
    upsert(access.session, StudentPreference, values=values, update=["show_indicator"])
    access.record([me], "preferences_write")


def _leaves(field: str, value: Any) -> Iterator[tuple[str, Any]]:
    """A value's plain leaves, each named by its path: ``factors.2.sentence``, lists counted from 1.

    A spreadsheet reads each as a cell of its own; nested values had been JSON inside one cell. An
    empty list or mapping is one empty cell, so that its field is still there.
    """
    if isinstance(value, dict | list) and not value:
        yield field, ""
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaves(f"{field}.{key}", inner)
    elif isinstance(value, list):
        for i, inner in enumerate(value, start=1):
            yield from _leaves(f"{field}.{i}", inner)
    else:
        yield field, "" if value is None else value


def _csv(data: dict[str, list[dict[str, Any]]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["record_type", "record", "field", "value"])
    for kind, records in data.items():
        for i, record in enumerate(records, start=1):
            for field, value in record.items():
                for path, leaf in _leaves(field, value):
                    writer.writerow([kind, i, path, safe_cell(leaf)])
    return buffer.getvalue()


@router.get("/export", responses={200: {"content": {"application/json": {}, "text/csv": {}}}})
def export(access: Student, format: Annotated[Literal["json", "csv"], Query()] = "json") -> Response:
    """Everything Waymark holds about you, as portable JSON or CSV."""
    me = access.principal.sub
    kept = outreach.load_options(access.runtime.settings.outreach_file).kept
    data = database_records(access.session, me, kept=kept)
    access.record([me], "export")
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", me)[:64]  # a header value: no control characters
    name = f"waymark-export-{safe}.{format}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "csv":
        return Response(_csv(data), media_type="text/csv", headers=disposition)
    return Response(json.dumps(data, indent=2), media_type="application/json", headers=disposition)


@router.get("/directory", response_model=DirectoryView | None)
def own_directory(access: Student) -> DirectoryView | None:
    """How the institution's directory names you and reaches you (null when it has no entry)."""
    me = access.principal.sub
    entry = access.session.get(DirectoryEntry, me)
    access.record([me], "directory_view")
    return None if entry is None else DirectoryView.model_validate(entry, from_attributes=True)


@router.get("/access-log", response_model=list[AccessEntry])
def access_log(access: Student) -> list[AccessEntry]:
    """Who looked at your data, in what role, why, and when."""
    me = access.principal.sub
    entries = [
        AccessEntry(at=r.at, actor=r.actor, role=r.role, purpose=r.purpose, action=r.action)
        for r in audit.for_student(access.session, me)
    ]
    access.record([me], "access_log_view")
    return entries


@router.get("/consent", response_model=ConsentOut)
def get_consent(access: Student) -> ConsentOut:
    """Your consent for each purpose (not given unless you gave it)."""
    access.record([access.principal.sub], "consent_view")
    return outreach.consent_view(access.session, access.principal.sub)


@router.put("/consent", response_model=ConsentOut)
def put_consent(body: ConsentIn, access: Student) -> ConsentOut:
    """Give, withdraw or decline consent for one purpose (``granted`` false when never given: declined)."""
    me = access.principal.sub
    one_student_at_a_time(access.session, me)  # ordered with an erasure of your records
    decision = {"student_id": me, "purpose": body.purpose, "granted": body.granted, "at": _now()}
    upsert(access.session, Consent, values=decision, update=["granted", "at"])
    access.record([me], "consent_write")
    access.session.flush()
    return outreach.consent_view(access.session, me)


def _requested(kind: str, body: RequestIn, *, access: Access) -> RightsRequest:
    me = access.principal.sub
    one_student_at_a_time(access.session, me)  # ordered with an erasure of your records
    row = RightsRequest(student_id=me, kind=kind, detail=body.detail, status="open", created_at=_now())
    access.session.add(row)
    access.record([me], f"{kind}_request")
    access.session.flush()
    return row


#: Open correction requests a student may have at once: each is a statutory request with a deadline on
#: the DPO's queue, and one student filing hundreds would bury everyone else's (a red team's finding).
MAX_OPEN_RECTIFICATIONS = 5


@router.post("/rectification", response_model=Recorded, status_code=201)
def rectification(body: RectificationIn, access: Student) -> Recorded:
    """Ask for data about you to be corrected (say what is wrong); 409 with five already open.

    With ``restrict`` you are left out while it is checked (GDPR Art. 18(1)(a)): not scored, trained on
    or audited, and no staff member reads you, from now until the data protection officer declines the
    correction, or records that the corrected data has reached Waymark, or you withdraw the request.
    """
    me = access.principal.sub
    if body.restrict:  # a run publishing now finishes first, or sees the restriction
        erasure_barrier(access.session)  # before the student's lock, the order an erasure takes them in
    one_student_at_a_time(access.session, me)  # ordered with your other requests
    waiting = access.session.scalar(
        select(func.count())
        .select_from(RightsRequest)
        .where(
            RightsRequest.student_id == me,
            RightsRequest.kind == "rectification",
            RightsRequest.status == "open",
        )
    )
    if (waiting or 0) >= MAX_OPEN_RECTIFICATIONS:
        raise Refused(
            409,
            title="Requests waiting",
            detail=f"You have {waiting} requests for a correction that the data protection officer has not "
            "handled yet. Withdraw one and ask again with everything in it, or wait for their answer: "
            "their status is in your requests.",
        )
    req = _requested("rectification", body, access=access)
    if not body.restrict:
        return Recorded(id=req.id, at=req.created_at)
    if access.session.get(TrainingExclusion, me) is not None:  # nothing of theirs is processed already
        return Recorded(
            id=req.id,
            at=req.created_at,
            note="Recorded. Your learning analytics data was erased: you are left out of every later run "
            "already.",
        )
    objections.restrict(access.session, req)  # left out under this id from now on, whatever is found
    return Recorded(
        id=req.id,
        at=req.created_at,
        note=_unheld_note(access, asked="correction")
        or "Recorded. Until the data protection officer declines it or the corrected data reaches Waymark, "
        "you are left out: no estimate is worked out for you, and the staff who support you do not see you "
        "in Waymark (support outside Waymark goes on as before). Withdrawing the request ends this too.",
    )


@router.post("/erasure", response_model=Recorded, status_code=201)
def erasure(body: RequestIn, access: Student) -> Recorded:
    """Ask for your data to be erased (statutory records such as grades are kept); 409 while one is open."""
    one_student_at_a_time(access.session, access.principal.sub)  # a double click makes one
    waiting = access.session.scalar(
        select(RightsRequest).where(
            RightsRequest.student_id == access.principal.sub,
            RightsRequest.kind == "erasure",
            RightsRequest.status == "open",
        )
    )
    if waiting is not None:
        raise Refused(
            409,
            title="Already asked",
            detail=f"You already asked for erasure on {waiting.created_at:%d %B %Y}; the data protection "
            "officer has not handled it yet. Its status is in your requests.",
        )
    _refuse_erased(access)
    note = _unheld_note(access, asked="erasure")
    row = _requested("erasure", body, access=access)
    return Recorded(id=row.id, at=row.created_at, note=note)


def _refuse_erased(access: Access) -> None:
    """409 for a student whose data was erased: nothing of theirs is held, or processed, any more."""
    if access.session.get(TrainingExclusion, access.principal.sub) is not None:
        raise Refused(
            409,
            title="Erased",
            detail="Your learning analytics data was erased: Waymark holds none of it, and leaves you out of "
            "every later run already.",
        )


def _unheld_note(access: Access, *, asked: str) -> str | None:
    """What to tell a student under whose id the service holds nothing (None when it holds something).

    The request is recorded all the same (a student not scored yet may object, and data may be held in
    training folders only), and the DPO's list flags it (``RequestOut.held``): a red team's student
    signed in as ``s00000091`` where the records write ``S00000091`` had been told "left out" and
    "erased" while their tutor still read them.
    """
    if holds_records(access.session, access.principal.sub):
        return None
    return (
        f"Recorded. Waymark's service holds nothing under the student number your sign-in gives "
        f"({access.principal.sub}) at the moment, so the data protection officer will check that number "
        f"against the student records before deciding your {asked}. If your number is written otherwise "
        "there (its case, a prefix), tell them."
    )


@router.post("/objection", response_model=Recorded, status_code=201)
def objection(body: RequestIn, access: Student) -> Recorded:
    """Object to being scored and listed (GDPR Art. 21); 409 while an objection of yours stands.

    From now on you are left out: not scored, and no staff member sees an estimate or a list place
    of yours, while the data protection officer weighs your objection and after they uphold it. Say
    what about your situation makes you object (``detail``). You may withdraw it at any time.
    """
    me = access.principal.sub
    erasure_barrier(access.session)  # a run publishing now finishes first, or sees the restriction
    one_student_at_a_time(access.session, me)  # a double click makes one
    if access.session.get(TrainingExclusion, me) is not None:  # nothing of theirs is processed already
        raise Refused(
            409,
            title="Erased",
            detail="Your learning analytics data was erased: you are left out of every later run already.",
        )
    standing = objections.restriction(access.session, me)
    if standing is not None:
        raise Refused(
            409,
            title="Already objected",
            detail=f"Your objection of {standing.since:%d %B %Y} stands: you are left out already. Its "
            "status is in your requests.",
        )
    note = _unheld_note(access, asked="objection")
    req = _requested("objection", body, access=access)
    objections.restrict(access.session, req)  # left out under this id from now on, whatever is found
    return Recorded(id=req.id, at=req.created_at, note=note)


@router.delete("/requests/{request_id}", response_model=Recorded)
def withdraw_request(request_id: Annotated[int, Path(ge=1, le=2**62)], access: Student) -> Recorded:
    """Withdraw a request not handled yet, or the restriction a handled one keeps.

    An upheld objection is withdrawn whole; an accepted correction you asked to be left out for stays
    accepted (the data protection officer still sees it reaches the data), and you are no longer left
    out meanwhile.
    """
    me = access.principal.sub
    session = access.session
    one_student_at_a_time(session, me)  # ordered with the DPO handling it
    req = session.get(RightsRequest, request_id)
    standing = req is not None and bool(objections.restricted_by(session, [req]))
    if req is None or req.student_id != me or not (req.status == "open" or standing):
        raise Refused(404, title="Not found", detail="You have no open request with that number.")
    lifted = objections.lift(session, req)
    after = _seen_again(access) if lifted else ""
    if req.status != "open" and (req.outcome == "declined" or req.applied_at is not None):
        # decided, and in the notice its ending gave: ended sooner, as the student asks; the outcome stays,
        # and says so (it had still said "You stay left out until ...")
        zone = ZoneInfo(access.runtime.settings.timezone)  # as the notice beside it says its day
        req.outcome_note = (
            f"{req.outcome_note} You ended the time left out on {_now().astimezone(zone):%d %B %Y}."
        )
        access.record([me], "restriction_withdrawn")
        return Recorded(id=req.id, at=_now(), note=f"You are no longer left out for this request. {after}")
    if req.kind == "rectification" and req.status != "open":  # accepted, waiting to reach the data
        access.record([me], "restriction_withdrawn")
        return Recorded(
            id=req.id,
            at=_now(),
            note="You are no longer left out for your accepted correction while it reaches the data. "
            + after,
        )
    if req.status != "open":  # an upheld objection: keeps what the DPO decided; the estimates went
        upheld = f"Upheld on {req.processed_at:%d %B %Y}: {req.outcome_note}"
        note = f"{upheld} You withdrew your objection. {after}"
    elif lifted:
        withdrew = "your objection" if req.kind == "objection" else "this request"
        note = f"You withdrew {withdrew}. {after}"
    else:
        note = "You withdrew this request."
    req.status, req.outcome, req.processed_at, req.outcome_note = "done", "withdrawn", _now(), note
    if req.kind != "rectification":
        req.detail = ""
    access.record([me], f"{req.kind}_withdrawn")
    return Recorded(id=req.id, at=req.processed_at)


def _seen_again(access: Access) -> str:
    """What a student whose restriction just ended is told of being scored and read again, as it is."""
    me = access.principal.sub
    if objections.still_restricted(access.session, me):
        return "Another request of yours still keeps you left out; its status is in your requests."
    run = access.served_run()
    stored = run is not None and access.session.scalar(
        select(Indicator.student_id).where(Indicator.run_id == run.id, Indicator.student_id == me).limit(1)
    )
    if stored:
        return (
            "The staff who support you see your current estimate again now, and you are scored again from "
            "the next run."
        )
    return (
        "You are scored again from the next run, and the staff who support you see you in Waymark from then."
    )


@router.get("/requests", response_model=list[OwnRequest])
def own_requests(access: Student) -> list[OwnRequest]:
    """Your rectification, erasure and objection requests, and what was decided."""
    me = access.principal.sub
    rows = access.session.scalars(
        select(RightsRequest).where(RightsRequest.student_id == me).order_by(RightsRequest.id)
    )
    found = list(rows)
    restricted = objections.restricted_by(access.session, found)
    out = [
        OwnRequest.model_validate(r, from_attributes=True).model_copy(
            update={"restricted": r.id in restricted, "restricted_until": restricted.get(r.id)}
        )
        for r in found
    ]
    access.record([me], "requests_view")
    return out
