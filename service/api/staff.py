"""Staff endpoints: caseload, a student's indicator, feedback, interventions, wellbeing holds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import func, select

from waymark.models.roles import SUPPORT_ROLES, Role
from waymark.service import audit
from waymark.service.api.deps import PurposeDep, RequestIdDep, RuntimeDep, roles, unit_of_work
from waymark.service.db.schema import Consent, Feedback, Indicator, Intervention, StudentPreference
from waymark.service.db.upsert import upsert
from waymark.service.errors import Refused, not_found
from waymark.service.indicators import (
    ORDER,
    READING_NOTE,
    estimate,
    history,
    priority,
    provenance,
    scope,
    served_run,
    student_in_scope,
    view,
)
from waymark.service.schemas import (
    Caseload,
    CaseloadEntry,
    EngagementSummary,
    FeedbackIn,
    HoldIn,
    Identifier,
    InterventionIn,
    PlacementView,
    Recorded,
    StudentIndicators,
)
from waymark.service.security import Principal

router = APIRouter(prefix="/v1", tags=["staff"])
Support = Annotated[Principal, Depends(roles(*SUPPORT_ROLES))]
NOT_AVAILABLE = "Indicators are not available: no approved model has published indicators yet."


def _now() -> datetime:
    return datetime.now(UTC)


@router.get("/caseload", response_model=Caseload)
def caseload(
    runtime: RuntimeDep,
    principal: Support,
    why: PurposeDep,
    request_id: RequestIdDep,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    module_id: Annotated[Identifier | None, Query()] = None,
) -> Caseload:
    """The caller's caseload, ordered by support priority (1 = contact first)."""
    limit = min(limit, runtime.settings.max_page_size)
    with unit_of_work(runtime) as session:
        run = served_run(session, runtime)
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
        query = scope(principal, run)
        if module_id is not None:
            query = query.where(Indicator.module_id == module_id)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = list(session.scalars(query.order_by(*ORDER).offset(offset).limit(limit)))
        items = [
            CaseloadEntry(
                student_id=r.student_id,
                module_id=r.module_id,
                presentation_id=r.presentation_id,
                support_priority=offset + i + 1,
                estimate=estimate(r),
                top_factor=r.factors[0]["sentence"] if r.factors else None,
            )
            for i, r in enumerate(rows)
        ]
        audit.record(session, principal, why, [r.student_id for r in rows], "caseload_view", request_id)
        prov = provenance(rows[0], run) if rows else None
        return Caseload(
            available=True,
            total=total,
            offset=offset,
            limit=limit,
            items=items,
            provenance=prov,
            reading_note=READING_NOTE,
        )


@router.get("/students/{student_id}/indicator", response_model=StudentIndicators)
def student_indicator(
    student_id: Identifier,
    runtime: RuntimeDep,
    principal: Support,
    why: PurposeDep,
    request_id: RequestIdDep,
) -> StudentIndicators:
    """A student's explained indicators (one per module presentation in the caller's scope)."""
    with unit_of_work(runtime) as session:
        run = served_run(session, runtime)
        if run is None:
            raise Refused(404, "Not available", NOT_AVAILABLE)
        rows = list(
            session.scalars(scope(principal, run).where(Indicator.student_id == student_id).order_by(*ORDER))
        )
        if not rows:
            raise not_found()
        views = [
            view(r, run, priority(session, principal, run, r), history(session, r, run.target)) for r in rows
        ]
        audit.record(session, principal, why, [student_id], "indicator_view", request_id)
        return StudentIndicators(student_id=student_id, indicators=views)


@router.get("/students/{student_id}/engagement", response_model=PlacementView)
def engagement(
    student_id: Identifier,
    runtime: RuntimeDep,
    principal: Annotated[Principal, Depends(roles(Role.PLACEMENT_SUPERVISOR))],
    why: PurposeDep,
    request_id: RequestIdDep,
) -> PlacementView:
    """A placement supervisor's minimal engagement summary for an assigned student."""
    with unit_of_work(runtime) as session:
        run = served_run(session, runtime)
        rows = (
            []
            if run is None
            else list(session.scalars(scope(principal, run).where(Indicator.student_id == student_id)))
        )
        if not rows:
            raise not_found()
        audit.record(session, principal, why, [student_id], "engagement_view", request_id)
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


@router.post("/students/{student_id}/feedback", response_model=Recorded, status_code=201)
def feedback(
    student_id: Identifier,
    body: FeedbackIn,
    runtime: RuntimeDep,
    principal: Support,
    why: PurposeDep,
    request_id: RequestIdDep,
) -> Recorded:
    """Record whether an indicator was useful or right (it improves later models and is reviewed)."""
    with unit_of_work(runtime) as session:
        run = served_run(session, runtime)
        if run is None:
            raise not_found()
        query = scope(principal, run).where(
            Indicator.student_id == student_id,
            Indicator.module_id == body.module_id,
            Indicator.presentation_id == body.presentation_id,
        )
        if session.scalar(query) is None:
            raise not_found()
        row = Feedback(
            run_id=run.id,
            student_id=student_id,
            module_id=body.module_id,
            presentation_id=body.presentation_id,
            staff_id=principal.sub,
            value=body.value,
            note=body.note,
            at=_now(),
        )
        session.add(row)
        audit.record(session, principal, why, [student_id], "feedback_write", request_id)
        session.flush()
        return Recorded(id=row.id, at=row.at)


@router.post("/students/{student_id}/interventions", response_model=Recorded, status_code=201)
def intervention(
    student_id: Identifier,
    body: InterventionIn,
    runtime: RuntimeDep,
    principal: Support,
    why: PurposeDep,
    request_id: RequestIdDep,
) -> Recorded:
    """Record an intervention: needs the student's consent for its purpose, or a stated exemption."""
    with unit_of_work(runtime) as session:
        if student_in_scope(session, principal, runtime, student_id) is None:
            raise not_found()
        consent = session.get(Consent, (student_id, body.purpose))
        reason = (body.exemption_reason or "").strip()
        if not (consent and consent.granted) and not reason:
            raise Refused(
                409,
                "Consent needed",
                f"The student has not consented to '{body.purpose}'. Record the exemption that applies, "
                "with its reason, in exemption_reason (Code of Practice §6), or ask the student first.",
            )
        basis = "consent" if consent and consent.granted else "exemption"
        row = Intervention(
            student_id=student_id,
            staff_id=principal.sub,
            purpose=body.purpose,
            description=body.description,
            basis=basis,
            exemption_reason=reason if basis == "exemption" else None,
            at=_now(),
        )
        session.add(row)
        action = "intervention_write" if basis == "consent" else "intervention_write_under_exemption"
        audit.record(session, principal, why, [student_id], action, request_id)
        session.flush()
        return Recorded(id=row.id, at=row.at)


@router.put("/students/{student_id}/wellbeing-hold", status_code=204)
def wellbeing_hold(
    student_id: Identifier,
    body: HoldIn,
    runtime: RuntimeDep,
    principal: Annotated[Principal, Depends(roles(Role.PERSONAL_TUTOR, Role.SUPPORT_STAFF))],
    why: PurposeDep,
    request_id: RequestIdDep,
) -> None:
    """Withhold (or release) the student's own view of their indicator; they still see it if they ask."""
    with unit_of_work(runtime) as session:
        if student_in_scope(session, principal, runtime, student_id) is None:
            raise not_found()
        hold = {"student_id": student_id, "show_indicator": False, "withheld_for_wellbeing": body.withheld}
        upsert(session, StudentPreference, hold, ["withheld_for_wellbeing"])
        audit.record(session, principal, why, [student_id], "wellbeing_hold_write", request_id)
