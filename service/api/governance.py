"""Ethics committee and data protection officer endpoints."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from waymark.models import registry
from waymark.models.roles import Role
from waymark.service import audit, decisions, impact, monitoring, objections, outreach, retention, roles_held
from waymark.service.api.deps import (
    Access,
    AccessRoute,
    RequestIdDep,
    RuntimeDep,
    access_for,
    roles,
    unit_of_work,
)
from waymark.service.db.engine import erasure_barrier, one_student_at_a_time, transaction
from waymark.service.db.schema import (
    AccessGrant,
    Consent,
    Contact,
    ContactEvent,
    DirectoryEntry,
    Feedback,
    Indicator,
    Intervention,
    ProcessingRestriction,
    RightsRequest,
    StudentPreference,
    TrainingExclusion,
    WebSession,
    columns,
)
from waymark.service.errors import Refused
from waymark.service.schemas import (
    AccessEntry,
    ClearedApproval,
    DecisionOut,
    ErasureRefusal,
    FairnessReport,
    Identifier,
    ImpactReport,
    LatestImpact,
    ModelName,
    ModelReport,
    ObjectionDecision,
    Recorded,
    RectificationDecision,
    ReviewIn,
    VersionNumber,
)
from waymark.service.security import Principal
from waymark.service.subject_access import holds_records, kept_reader_count

log = logging.getLogger("waymark.service")
router = APIRouter(prefix="/v1", tags=["governance"], route_class=AccessRoute)
Reviewer = Annotated[Principal, Depends(roles(Role.ETHICS_REVIEWER))]
Dpo = Annotated[Access, access_for(Role.DPO)]


async def _aggregate(
    principal: Annotated[Principal, Depends(roles(Role.ETHICS_REVIEWER, Role.DATA_SCIENTIST))],
    runtime: RuntimeDep,
) -> Principal:
    """A reader of aggregate reports; a data scientist's holding of their role is recorded.

    A bearer token names one role, so a person given both the data scientist's and the ethics
    reviewer's is seen as both only where each is used (``service.roles_held``).
    """
    if Role.DATA_SCIENTIST in (principal.role, *principal.holds):

        def record() -> None:
            with runtime.engine.connect() as connection:  # written at most every few hours
                if roles_held.recent(connection, principal.sub, now=datetime.now(UTC)):
                    return
            with transaction(runtime.engine) as session:
                roles_held.seen(session, principal.sub, roles=[Role.DATA_SCIENTIST])

        await run_in_threadpool(record)
    return principal


Aggregate = Annotated[Principal, Depends(_aggregate)]


def _report(session: Session, version: registry.Version, *, champion: str | None) -> ModelReport:
    name, number = version.name, version.version
    audited = decisions.latest_audit(session, name, version=number)
    reviewed = decisions.latest_review(session, name, version=number)
    current = reviewed is not None and audited is not None and reviewed.audit_id == audited.id
    held = decisions.held_back(session, audited) if audited and current else []
    return ModelReport(
        name=name,
        version=number,
        fairness_gate=audited.gate if audited else None,
        ethics_decision=(reviewed.kind if current else "voided by a later audit") if reviewed else None,
        ethics_reviewer=reviewed.actor if reviewed else None,
        gate_override_reason=reviewed.override_reason if reviewed and current else None,
        gate_override_reasons=decisions.override_reasons(session, audited) if audited and current else [],
        approvals=len(decisions.approvers(session, audited)) if audited else 0,
        uncounted_approvals=[h.reviewer for h in held],
        cleared_approvals=[
            ClearedApproval(
                reviewer=h.reviewer,
                approved_on=h.approved_at.astimezone(UTC).date(),
                cleared_on=h.cleared_at.astimezone(UTC).date(),
            )
            for h in held
            if h.cleared_at is not None
        ],
        approvals_required=decisions.approvals_required(session, audited) if audited else None,
        champion=champion == number,
        report_path=f"runs:/{version.run_id}/fairness",
        report_url=f"/v1/fairness/reports/{name}/versions/{number}" if audited else None,
    )


@router.get("/monitoring/latest")
def monitoring_latest(runtime: RuntimeDep, _principal: Aggregate) -> dict[str, Any] | None:
    """The latest monitoring report (null before the first): drift, coverage, list turnover, groups."""
    return monitoring.latest_report(runtime.engine)


def published_impact(raw: dict[str, Any]) -> ImpactReport:
    """The stored report with its groups split: those shown, and per characteristic how many were not."""
    groups = raw.get("groups") or []
    return ImpactReport.model_validate(
        {
            **raw,
            "groups": [g for g in groups if g.get("group") is not None],
            "withheld": [g for g in groups if g.get("group") is None],
        }
    )


@router.get("/impact/latest", response_model=LatestImpact)
def impact_latest(runtime: RuntimeDep, _principal: Aggregate) -> LatestImpact:
    """The latest impact evaluation (``available: false`` before the first); small groups are absent."""
    raw = impact.latest_report(store=runtime.settings.mlflow_tracking_uri)
    if raw is None:
        return LatestImpact(available=False)
    try:
        return LatestImpact(available=True, report=published_impact(raw))
    except ValidationError as exc:
        raise Refused(
            409,
            title="Report not readable",
            detail="The latest impact report kept in MLflow is not in the expected form; "
            "run waymark evaluate impact again.",
        ) from exc


@router.get("/fairness/reports", response_model=list[ModelReport])
def fairness_reports(runtime: RuntimeDep, _principal: Aggregate) -> list[ModelReport]:
    """Every version of the served model with its fairness gate and ethics decision (aggregate only)."""
    name = runtime.settings.model_name
    try:
        versions = registry.versions(name, store=runtime.settings.mlflow_tracking_uri)
    except Exception as exc:  # registry absent or unreachable: say so, do not guess
        raise Refused(404, title="Not found", detail=f"No registered model named {name}.") from exc
    champion = runtime.champion
    with transaction(runtime.engine) as session:
        return [_report(session, v, champion=champion.version if champion else None) for v in versions]


@router.get("/fairness/reports/{name}/versions/{version}", response_model=FairnessReport)
def fairness_report(
    name: ModelName, version: VersionNumber, *, runtime: RuntimeDep, _principal: Aggregate
) -> FairnessReport:
    """The fairness report of the version's latest audit, exactly as audited (its hash is checked)."""
    with transaction(runtime.engine) as session:
        audited = decisions.latest_audit(session, name, version=version)
        if audited is None or audited.gate is None:
            raise Refused(404, title="Not found", detail=f"Version {version} of {name} has not been audited.")
        report = decisions.audit_report(session, audited)
        if report is None:
            raise Refused(
                409,
                title="Report not available",
                detail="The report stored with this audit is missing or does not match what was audited; "
                "audit the version again.",
            )
        return FairnessReport(
            name=name,
            version=version,
            gate=audited.gate,
            audited_at=audited.at,
            audit_id=audited.id,
            report=report,
        )


@router.get("/models/{name}/decisions", response_model=list[DecisionOut])
def model_decisions(name: ModelName, runtime: RuntimeDep, _principal: Aggregate) -> list[DecisionOut]:
    """Every audit, review and promotion of the model's versions, oldest first."""
    with transaction(runtime.engine) as session:
        return [
            DecisionOut.model_validate({**columns(d), "version": d.model_version})
            for d in decisions.history(session, name)
        ]


@router.post("/models/{name}/versions/{version}/review", response_model=ModelReport)
def review(
    name: ModelName,
    version: VersionNumber,
    *,
    body: ReviewIn,
    runtime: RuntimeDep,
    principal: Reviewer,
    request_id: RequestIdDep,
) -> ModelReport:
    """Record the ethics committee's decision on exactly this model version's latest audit."""
    try:
        found = registry.version(name, version, store=runtime.settings.mlflow_tracking_uri)
    except Exception as exc:
        raise Refused(404, title="Not found", detail=f"No version {version} of {name}.") from exc
    try:
        with unit_of_work(runtime) as session:
            row = decisions.review(
                session,
                name,
                version=version,
                approve=body.approve,
                note=body.note,
                caller=principal,
                request=request_id,
                override_reason=body.override_reason,
                read_audit=body.audit_id,
            )
    except decisions.GovernanceError as exc:
        # kept for whoever watches governance (no staff id: the access log names who, for each student)
        why = " (a reviewer who builds models)" if "data scientist's role" in str(exc) else ""
        log.warning("a review of %s version %s was refused%s", name, version, why)
        raise Refused(409, title="Decision refused", detail=str(exc)) from exc
    runtime.watch.refresh()  # a rejected champion stops being served now, not at the next check
    try:
        decisions.mirror(row)
    except Exception:  # the database holds the decision; MLflow's copy is for browsing only
        log.warning("the review was recorded, but mirroring it to MLflow failed", exc_info=True)
    champion = runtime.champion
    with transaction(runtime.engine) as session:
        return _report(session, found, champion=champion.version if champion else None)


class RequestOut(BaseModel):
    """A student's request, as the DPO sees it."""

    id: int
    student_id: str
    kind: str
    detail: str
    status: str
    created_at: datetime
    outcome: str | None = None  # "accepted": a correction waiting to be recorded as reaching the data
    processed_at: datetime | None = None
    applied_at: datetime | None = None  # when an accepted correction was recorded as reaching the data
    held: bool = Field(
        True,
        description="Whether the service holds anything under the student's id (an indicator, a directory "
        "entry, a relationship, a standing objection). False: check the id before deciding; the sign-in "
        "may write the student number otherwise than the records (its case, a prefix).",
    )
    restricted: bool = Field(
        False,
        description="Whether the request keeps the student left out now (an objection; a correction they "
        "asked to be left out for until it is declined or reaches the data): decide it promptly.",
    )
    restricted_until: datetime | None = Field(
        None,
        description="Where your decision ended the restriction the request holds, when the student stops "
        "being left out: they were told the day with the outcome (WAYMARK_RESTRICTION_NOTICE_DAYS, GDPR "
        "Art. 18(3)). Such a request is listed until then, with nothing left to decide.",
    )
    kept_contacts: int = Field(
        0,
        description="Open contacts with the student under an exemption that outlasts a restriction (a "
        "safeguarding concern, the outreach file's [restriction] kept): while the student is left out, "
        "the staff who support them keep these, and only these, until they are closed.",
    )
    kept_contact_readers: int = Field(
        0,
        description="How many members of staff may read those contacts while the student is left out, at "
        "most (the student's copy of their data names them by relationship): 0 means nobody can follow "
        "them up, and a relationship naming the student (their safeguarding lead's) is to be added to "
        "the staff relationships file.",
    )


@router.get("/dpo/requests", response_model=list[RequestOut])
def requests(access: Dpo) -> list[RequestOut]:
    """Open requests, accepted corrections not yet applied, and requests in their notice.

    A decided request whose student is still left out for the notice the decision gave (Art. 18(3))
    is listed until it runs out, with the day, and nothing left to decide.
    """
    waiting = and_(
        RightsRequest.kind == "rectification",
        RightsRequest.outcome == "accepted",
        RightsRequest.applied_at.is_(None),
    )
    in_notice = RightsRequest.id.in_(
        select(ProcessingRestriction.request_id).where(
            ProcessingRestriction.lifts_at.is_not(None), objections.standing()
        )
    )
    query = (
        select(RightsRequest)
        .where(or_(RightsRequest.status == "open", waiting, in_notice))
        .order_by(RightsRequest.id)
    )
    rows = list(access.session.scalars(query))
    access.record(sorted({r.student_id for r in rows}), "requests_view")
    held = {s: holds_records(access.session, s) for s in {r.student_id for r in rows}}
    restricted = objections.restricted_by(access.session, rows)
    kept = outreach.load_options(access.runtime.settings.outreach_file).kept
    counted = access.session.execute(
        select(Contact.student_id, func.count())
        .where(Contact.student_id.in_(list(held)), outreach.outlives(Contact, kept=kept))
        .group_by(Contact.student_id)
    )
    outlasting = {student: int(n) for student, n in counted}
    reach = {
        s: kept_reader_count(access.session, s, kept=kept)
        for s in {r.student_id for r in rows if r.id in restricted and outlasting.get(r.student_id)}
    }
    return [
        RequestOut.model_validate(r, from_attributes=True).model_copy(
            update={
                "held": held[r.student_id],
                "restricted": r.id in restricted,
                "restricted_until": restricted.get(r.id),
                "kept_contacts": outlasting.get(r.student_id, 0),
                "kept_contact_readers": reach.get(r.student_id, 0),
            }
        )
        for r in rows
    ]


def _open_request(session: Session, request_number: int, *, kind: str) -> RightsRequest:
    """The open request, read again once its student's writes are ordered behind this one.

    Read before the lock, a request the student withdrew (or another DPO decided) meanwhile would
    still look open under READ COMMITTED, and an erasure would run over a withdrawal.
    """
    req = _locked_request(session, request_number)
    if req is None or req.kind != kind or req.status != "open":
        raise Refused(404, title="Not found", detail=f"No open {kind} request with that id.")
    return req


def _locked_request(session: Session, request_number: int) -> RightsRequest | None:
    """The request, read again once its student's writes are ordered behind this one (None: no such)."""
    req = session.get(RightsRequest, request_number)
    if req is not None:
        one_student_at_a_time(session, req.student_id)  # a student or staff write under way commits first
        session.refresh(req)
    return req


def _close(req: RightsRequest, outcome: str, *, note: str) -> Recorded:
    # A correction's words are what the student and the DPO check the correction against, so they stay
    # (until retention); an erasure's, and everything else of an erased student's, go. A declined
    # erasure's stay too: nothing was erased, and the student may need what they asked (a complaint).
    if outcome == "erased" or (req.kind != "rectification" and outcome != "declined"):
        req.detail = ""
    req.status, req.outcome, req.outcome_note = "done", outcome, note
    req.processed_at = datetime.now(UTC)
    return Recorded(id=req.id, at=req.processed_at)


RequestNumber = Annotated[int, Path(ge=1, le=2**62)]


@router.post("/dpo/erasure/{request_id_}", response_model=Recorded)
def process_erasure(request_id_: RequestNumber, access: Dpo) -> Recorded:
    """Erase a student's analytics, keeping only the statutory fields documented in docs/service.md."""
    session = access.session
    erasure_barrier(session)  # a scoring run or import publishing now finishes first, or sees this
    req = _open_request(session, request_id_, kind="erasure")  # the student's writes ordered behind it
    student = req.student_id
    key = objections.served_key(session, student)  # read before the student's indicators go
    erased = (
        Indicator,
        Feedback,
        Intervention,
        ContactEvent,
        Contact,
        Consent,
        StudentPreference,
        DirectoryEntry,
        ProcessingRestriction,
    )
    for model in erased:
        session.execute(delete(model).where(model.student_id == student))
    # A grant naming the student (a personal tutor's) and the student's own signed-in sessions (which
    # hold the name the identity provider gave) name them too.
    session.execute(
        delete(AccessGrant).where(AccessGrant.scope_type == "student", AccessGrant.scope_id == student)
    )
    signed = or_(WebSession.sub == student, WebSession.student_id == student)
    for signed_in in session.scalars(select(WebSession).where(signed)):
        if Role.STUDENT.value in signed_in.roles:
            session.delete(signed_in)
    if session.get(TrainingExclusion, student) is None:
        session.add(TrainingExclusion(student_id=student, at=datetime.now(UTC), pseudonym_key=key))
    # said as it is: the data folder's copy goes at the data team's next erasure step, not now
    erased_note = (
        "Your learning analytics data was erased from the service (indicators, contacts, notes and "
        "consents), and no later training or scoring includes you. The copy of your records in the "
        "analytics data folder is removed at the data team's next erasure step (waymark data erase)."
    )
    for other in session.scalars(select(RightsRequest).where(RightsRequest.student_id == student)):
        other.detail, other.outcome_note = "", None  # a note to the student may repeat what they wrote
        # any other open request closes with it: an erasure asked twice (before one open request was the
        # rule), and a rectification or objection about data that no longer exists here
        if other.status == "open" and other.id != req.id:
            _close(other, "erased", note=erased_note)
    recorded = _close(req, "erased", note=erased_note)
    access.record([student], "erasure_processed")
    return recorded


@router.post("/dpo/objection/{request_id_}", response_model=Recorded)
def process_objection(request_id_: RequestNumber, body: ObjectionDecision, *, access: Dpo) -> Recorded:
    """Uphold an objection (the student stays left out, their indicators go) or decline it with grounds.

    The student has been left out since they objected (``service.objections``); a declined objection
    ends that once the student has had notice of it (``WAYMARK_RESTRICTION_NOTICE_DAYS``, Art. 18(3)),
    and the note, which the student reads, states the institution's compelling grounds and the day.
    """
    session = access.session
    erasure_barrier(session)  # a run publishing now finishes first, or sees this
    req = _open_request(session, request_id_, kind="objection")
    if not body.uphold:
        return _ending(req, "declined", note=body.note, access=access)
    objections.uphold(session, req)
    recorded = _close(req, "accepted", note=body.note)
    access.record([req.student_id], "objection_processed")
    return recorded


def _notice(req: RightsRequest, access: Access) -> tuple[datetime | None, str | None]:
    """End the restriction ``req`` holds once the student has had notice.

    Returns when it ends (None: it held none) and what the student is told of it (None: it ended now,
    without notice, as ``WAYMARK_RESTRICTION_NOTICE_DAYS=0`` asks).
    """
    settings = access.runtime.settings
    days = settings.restriction_notice_days
    until = objections.end_after_notice(access.session, req, days=days)
    told = objections.notice_text(until, zone=settings.timezone) if until is not None and days else None
    return until, told


def _ending(req: RightsRequest, outcome: str, *, note: str, access: Access) -> Recorded:
    """Close ``req`` with an outcome that ends the restriction it holds, once the student has notice.

    The DPO is told what the student reads of it.
    """
    _, notice = _notice(req, access)
    recorded = _close(req, outcome, note=f"{note} {notice}" if notice else note)
    access.record([req.student_id], f"{req.kind}_processed")
    return recorded.model_copy(update={"note": _told(notice)})


def _told(notice: str | None) -> str | None:
    """What the DPO is told of a notice given: Waymark sends nothing; the student reads it when they look."""
    if not notice:
        return None
    return f"Tell the student, who reads it in their requests in Waymark when they look: {notice}"


@router.post("/dpo/erasure/{request_id_}/refusal", response_model=Recorded)
def refuse_erasure(request_id_: RequestNumber, body: ErasureRefusal, *, access: Dpo) -> Recorded:
    """Decline an erasure, with the lawful reason the student reads; nothing is erased."""
    req = _open_request(access.session, request_id_, kind="erasure")
    recorded = _close(req, "declined", note=body.note)
    access.record([req.student_id], "erasure_declined")
    return recorded


@router.post("/dpo/rectification/{request_id_}", response_model=Recorded)
def process_rectification(
    request_id_: RequestNumber, body: RectificationDecision, *, access: Dpo
) -> Recorded:
    """Record the outcome of a rectification request (accepted or declined, with a note the student sees).

    Declined, the restriction the student asked for while it was weighed ends (Art. 18(1)(a)) once they
    have had notice of it (Art. 18(3)): they are read and scored again from then. Accepted, it stands
    until the correction is recorded as reaching the data.
    """
    req = _open_request(access.session, request_id_, kind="rectification")
    if not body.accept:
        return _ending(req, "declined", note=body.note, access=access)
    recorded = _close(req, "accepted", note=body.note)
    access.record([req.student_id], "rectification_processed")
    return recorded


@router.post("/dpo/rectification/{request_id_}/applied", response_model=Recorded)
def correction_applied(request_id_: RequestNumber, access: Dpo) -> Recorded:
    """Record that an accepted correction has reached the data Waymark reads.

    Until then the estimates say they may rest on the data before it; after it, until a run made
    after this moment (``indicators.correction_notice``).
    """
    req = _locked_request(access.session, request_id_)
    if req is None or req.kind != "rectification" or req.outcome != "accepted" or req.applied_at is not None:
        raise Refused(404, title="Not found", detail="No accepted correction waiting with that id.")
    req.applied_at = datetime.now(UTC)
    reached = f"{req.outcome_note} On {req.applied_at:%d %B %Y} the corrected data reached Waymark"
    until, notice = _notice(req, access)  # the corrected data is there to be read: the restriction ends
    if notice:
        req.outcome_note = f"{reached}. {notice}"
    elif until is not None:
        req.outcome_note = (
            f"{reached}, and you are no longer left out for this correction: you are scored again from "
            "the next run."
        )
    access.record([req.student_id], "correction_applied")
    return Recorded(id=req.id, at=req.applied_at, note=_told(notice))


@router.get("/dpo/retention", response_model=retention.RetentionStatus)
def retention_status(
    runtime: RuntimeDep, _principal: Annotated[Principal, Depends(roles(Role.DPO))]
) -> retention.RetentionStatus:
    """The retention policy's periods, when it last ran, and what a run now would remove (counts only)."""
    settings = runtime.settings
    with transaction(runtime.engine) as session:
        return retention.status(
            session,
            retention_days=settings.retention_days,
            access_log_days=settings.access_log_retention_days,
        )


@router.post("/dpo/retention", response_model=retention.RetentionResult)
def run_retention(access: Dpo) -> retention.RetentionResult:
    """Apply the retention policy now (the same as `waymark retention run`); the run is logged."""
    settings = access.runtime.settings
    return retention.apply(
        access.session,
        access.principal,
        request=access.request,
        retention_days=settings.retention_days,
        access_log_days=settings.access_log_retention_days,
    )


@router.get("/dpo/access-log", response_model=list[AccessEntry])
def dpo_access_log(access: Dpo, student_id: Annotated[Identifier, Query()]) -> list[AccessEntry]:
    """The access log for one student (there is deliberately no view by staff member: CoP §2(xvii)).

    The student is named by their number or by their id in the records; in a pseudonymised deployment
    a number goes through the imports' secret, as a student's sign-in does.
    """
    records = audit.for_student(access.session, student_id)  # the id as the records carry it, first
    named = access.runtime.verifier.students.named(student_id)
    if not records and named != student_id:  # else the number, read as sign-in reads it (as staff pages do)
        student_id, records = named, audit.for_student(access.session, named)
    entries = [
        AccessEntry(at=r.at, actor=r.actor, role=r.role, purpose=r.purpose, action=r.action) for r in records
    ]
    access.record([student_id], "access_log_view")
    return entries


class LogVerification(BaseModel):
    """Whether the access log's keyed chain is intact (``waymark access-log verify``), from the pages."""

    records: int
    intact: bool
    problems: list[str]  # the first breaks found, at most ``SHOWN_PROBLEMS``


SHOWN_PROBLEMS = 20


@router.get("/dpo/access-log/verification", response_model=LogVerification)
def verify_access_log(
    runtime: RuntimeDep, _principal: Annotated[Principal, Depends(roles(Role.DPO))]
) -> LogVerification:
    """Verify the whole access log's chain now, as `waymark access-log verify` does (reads no student)."""
    found = audit.verify_log(runtime.engine, runtime.audit_key)
    return LogVerification(
        records=found.records, intact=not found.problems, problems=found.problems[:SHOWN_PROBLEMS]
    )
