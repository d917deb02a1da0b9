"""Ethics committee and data protection officer endpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from pydantic import BaseModel
from sqlalchemy import delete, select

from fairness.governance import CHAMPION, DECISION_TAG, GATE_TAG, REVIEWER_TAG, GovernanceError, record_review
from models.registry import ModelNotFoundError
from service import audit
from service.api.deps import PurposeDep, RequestIdDep, RuntimeDep, roles, unit_of_work
from service.db.schema import (
    Consent,
    Feedback,
    Indicator,
    Intervention,
    Publication,
    RightsRequest,
    ScoringRun,
    StudentPreference,
    TrainingExclusion,
)
from service.errors import Refused
from service.schemas import AccessEntry, ModelReport, Recorded, ReviewIn
from service.security import Principal

router = APIRouter(prefix="/v1", tags=["governance"])
Reviewer = Annotated[Principal, Depends(roles("ethics_reviewer"))]
Dpo = Annotated[Principal, Depends(roles("dpo"))]


def _report(version: ModelVersion, tags: dict[str, str], champion: bool) -> ModelReport:
    return ModelReport(
        name=version.name,
        version=str(version.version),
        fairness_gate=tags.get(GATE_TAG),
        ethics_decision=tags.get(DECISION_TAG),
        ethics_reviewer=tags.get(REVIEWER_TAG),
        champion=champion,
        report_path=f"runs:/{version.run_id}/fairness",
    )


@router.get("/fairness/reports", response_model=list[ModelReport])
def fairness_reports(
    runtime: RuntimeDep, _principal: Annotated[Principal, Depends(roles("ethics_reviewer", "data_scientist"))]
) -> list[ModelReport]:
    """Every version of the served model with its fairness gate and ethics decision (aggregate only)."""
    client = MlflowClient(runtime.settings.mlflow_tracking_uri)
    name = runtime.settings.model_name
    try:
        champion = client.get_registered_model(name).aliases.get(CHAMPION)
        versions = client.search_model_versions(f"name='{name}'")
    except Exception as exc:  # registry absent or unreachable: say so, do not guess
        raise Refused(404, "Not found", f"No registered model named {name}.") from exc
    return [
        _report(v, v.tags, str(champion) == str(v.version))
        for v in sorted(versions, key=lambda v: int(v.version))
    ]


@router.post("/models/{name}/versions/{version}/review", response_model=ModelReport)
def review(name: str, version: str, body: ReviewIn, runtime: RuntimeDep, principal: Reviewer) -> ModelReport:
    """Record the ethics committee's decision on exactly this model version."""
    if not version.isdigit():
        raise Refused(404, "Not found", f"No version {version} of {name}.")
    import mlflow

    mlflow.set_tracking_uri(runtime.settings.mlflow_tracking_uri)
    try:
        v = record_review(f"models:/{name}/{version}", body.approve, principal.sub, body.note)
    except ModelNotFoundError as exc:
        raise Refused(404, "Not found", f"No version {version} of {name}.") from exc
    except GovernanceError as exc:
        raise Refused(422, "Invalid request", str(exc)) from exc
    return _report(v, MlflowClient().get_model_version(v.name, v.version).tags, champion=False)


class RequestOut(BaseModel):
    """A student's request, as the DPO sees it."""

    id: int
    student_id: str
    kind: str
    detail: str
    status: str
    created_at: datetime


@router.get("/dpo/requests", response_model=list[RequestOut])
def requests(
    runtime: RuntimeDep, principal: Dpo, why: PurposeDep, request_id: RequestIdDep
) -> list[RequestOut]:
    """Open rectification and erasure requests."""
    with unit_of_work(runtime) as session:
        rows = list(
            session.scalars(
                select(RightsRequest).where(RightsRequest.status == "open").order_by(RightsRequest.id)
            )
        )
        audit.record(
            session, principal, why, sorted({r.student_id for r in rows}), "requests_view", request_id
        )
        return [
            RequestOut(
                id=r.id,
                student_id=r.student_id,
                kind=r.kind,
                detail=r.detail,
                status=r.status,
                created_at=r.created_at,
            )
            for r in rows
        ]


@router.post("/dpo/erasure/{request_id_}", response_model=Recorded)
def process_erasure(
    request_id_: Annotated[int, Path(ge=1, le=2**62)],
    runtime: RuntimeDep,
    principal: Dpo,
    why: PurposeDep,
    request_id: RequestIdDep,
) -> Recorded:
    """Erase a student's analytics (keeping the access log, a legal record) and exclude them from training."""
    with unit_of_work(runtime) as session:
        req = session.get(RightsRequest, request_id_)
        if req is None or req.kind != "erasure" or req.status != "open":
            raise Refused(404, "Not found", "No open erasure request with that id.")
        student = req.student_id
        for model in (Indicator, Feedback, Intervention, Consent, StudentPreference):
            session.execute(delete(model).where(model.student_id == student))
        if session.get(TrainingExclusion, student) is None:
            session.add(TrainingExclusion(student_id=student, at=datetime.now(UTC)))
        req.status, req.processed_at = "done", datetime.now(UTC)
        audit.record(session, principal, why, [student], "erasure_processed", request_id)
        return Recorded(id=req.id, at=req.processed_at)


class RetentionOut(BaseModel):
    """What the retention run removed."""

    runs: int
    indicators: int
    feedback: int
    interventions: int


@router.post("/dpo/retention", response_model=RetentionOut)
def retention(runtime: RuntimeDep, principal: Dpo) -> RetentionOut:
    """Delete indicators, feedback and interventions older than the retention period."""
    cutoff = datetime.now(UTC) - timedelta(days=runtime.settings.retention_days)
    with unit_of_work(runtime) as session:
        published = set(session.scalars(select(Publication.run_id)))
        expired = select(ScoringRun.id).where(ScoringRun.started_at < cutoff)
        old = [i for i in session.scalars(expired) if i not in published]  # the served batch always stays
        counts = [
            session.execute(delete(Indicator).where(Indicator.run_id.in_(old))),
            session.execute(delete(Feedback).where(Feedback.at < cutoff)),
            session.execute(delete(Intervention).where(Intervention.at < cutoff)),
        ]
        ind, fb, iv = (int(getattr(c, "rowcount", 0) or 0) for c in counts)
        return RetentionOut(runs=len(old), indicators=ind, feedback=fb, interventions=iv)


@router.get("/dpo/access-log", response_model=list[AccessEntry])
def dpo_access_log(
    runtime: RuntimeDep,
    principal: Dpo,
    why: PurposeDep,
    request_id: RequestIdDep,
    student_id: Annotated[str, Query(min_length=1, max_length=64)],
) -> list[AccessEntry]:
    """The access log for one student (there is deliberately no view by staff member: CoP §2(xvii))."""
    with unit_of_work(runtime) as session:
        entries = [
            AccessEntry(at=r.at, actor=r.actor, role=r.role, purpose=r.purpose, action=r.action)
            for r in audit.for_student(session, student_id)
        ]
        audit.record(session, principal, why, [student_id], "access_log_view", request_id)
        return entries
