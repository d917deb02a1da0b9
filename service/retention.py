"""The retention policy (CoP §12): personal data goes once its period has passed.

One function, called by ``waymark retention run`` (for a scheduler) and by the DPO's endpoint. It
removes indicators of runs that are no longer served, staff feedback, recorded interventions,
contacts (with their history) not changed within the period, directory entries no import has
refreshed within it, consents (a consent older than the period lapses: it is asked for again) and
closed students' requests older than ``WAYMARK_RETENTION_DAYS``, and writes its own access-log
record. The access log has its own, longer period (``WAYMARK_ACCESS_LOG_RETENTION_DAYS``): it is
the record of who read what, the application's database role cannot delete from it, and archiving
it is the database owner's job (docs/operations.md); the run only counts the records past that period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from waymark.service import audit
from waymark.service.audit import RequestIds
from waymark.service.db.schema import (
    AuditRecord,
    Consent,
    Contact,
    ContactEvent,
    DirectoryEntry,
    Feedback,
    Indicator,
    Intervention,
    Publication,
    RightsRequest,
    ScoringRun,
)
from waymark.service.security import Principal

PURPOSE = "data_protection"


@dataclass(frozen=True)
class RetentionResult:
    """What one run removed, and what it left for the database owner."""

    cutoff: datetime
    runs: int
    indicators: int
    feedback: int
    interventions: int
    contacts: int
    directory_entries: int
    consents: int
    requests: int
    access_log_past_period: int


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _delete_contacts(session: Session, cutoff: datetime) -> object:
    stale = select(Contact.id).where(Contact.updated_at < cutoff)
    session.execute(delete(ContactEvent).where(ContactEvent.contact_id.in_(stale)))
    return session.execute(delete(Contact).where(Contact.updated_at < cutoff))


def apply(
    session: Session,
    caller: Principal,
    *,
    request: RequestIds,
    retention_days: int,
    access_log_days: int,
    now: datetime | None = None,
) -> RetentionResult:
    """Apply the policy in the caller's transaction and record that it ran."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=retention_days)
    published = set(session.scalars(select(Publication.run_id)))
    expired = select(ScoringRun.id).where(ScoringRun.started_at < cutoff)
    old = [i for i in session.scalars(expired) if i not in published]  # the served batch always stays
    removed = [
        session.execute(delete(Indicator).where(Indicator.run_id.in_(old))),
        session.execute(delete(Feedback).where(Feedback.at < cutoff)),
        session.execute(delete(Intervention).where(Intervention.at < cutoff)),
        _delete_contacts(session, cutoff),
        session.execute(delete(DirectoryEntry).where(DirectoryEntry.imported_at < cutoff)),
        session.execute(delete(Consent).where(Consent.at < cutoff)),
        session.execute(
            delete(RightsRequest).where(RightsRequest.status == "done", RightsRequest.processed_at < cutoff)
        ),
    ]
    log_cutoff = (now - timedelta(days=access_log_days)).isoformat()
    past = session.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.at < log_cutoff))
    audit.record_action(session, caller, purpose=PURPOSE, action="retention_run", request=request)
    ind, fb, iv, ct, de, co, rq = (_count(r) for r in removed)
    return RetentionResult(
        cutoff=cutoff,
        runs=len(old),
        indicators=ind,
        feedback=fb,
        interventions=iv,
        contacts=ct,
        directory_entries=de,
        consents=co,
        requests=rq,
        access_log_past_period=int(past or 0),
    )


def run(
    engine: Engine,
    key: bytes,
    *,
    caller: Principal,
    retention_days: int,
    access_log_days: int,
) -> RetentionResult:
    """Apply the policy in a unit of work of its own, its record under ``key`` (``waymark retention run``)."""
    with audit.unit(engine, key) as session:
        return apply(
            session,
            caller,
            request=RequestIds.new(),
            retention_days=retention_days,
            access_log_days=access_log_days,
        )
