"""The retention policy (CoP §12): personal data goes once its period has passed.

One function, called by ``waymark retention run`` (for a scheduler) and by the DPO's endpoint. It
removes indicators of runs that are no longer served, staff feedback, recorded interventions,
contacts (with their history) not changed within the period, directory entries no import has
refreshed within it, consents (a consent older than the period lapses: it is asked for again) and
closed students' requests older than ``WAYMARK_RETENTION_DAYS`` (not one that still keeps its student
left out, nor an accepted correction not yet recorded as reaching the data: both still have a step
to come, which names the request), and writes its own access-log
record. The access log has its own, longer period (``WAYMARK_ACCESS_LOG_RETENTION_DAYS``): it is
the record of who read what, the application's database role cannot delete from it, and archiving
it is the database owner's job (docs/operations.md); the run only counts the records past that period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, delete, exists, func, select, text
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
    ProcessingRestriction,
    Publication,
    RightsRequest,
    ScoringRun,
)
from waymark.service.objections import standing
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
    restrictions_ended: int  # past the notice their ending gave: they kept nobody out


def _expired(
    session: Session, cutoff: datetime, *, now: datetime | None = None
) -> tuple[list[int], dict[str, tuple[Any, ColumnElement[bool]]]]:
    """The runs no longer served before ``cutoff``, and what the policy removes: kind -> (table, rows).

    Restrictions past the notice their ending gave (``objections.standing``) keep nobody out: they go
    first, and the requests that held them then age as any other.
    """
    now = now or datetime.now(UTC)
    published = set(session.scalars(select(Publication.run_id)))
    expired = select(ScoringRun.id).where(ScoringRun.started_at < cutoff)
    old = [i for i in session.scalars(expired) if i not in published]  # the served batch always stays
    stale = select(Contact.id).where(Contact.updated_at < cutoff)
    return old, {
        "restrictions_ended": (ProcessingRestriction, ~standing(now)),
        "indicators": (Indicator, Indicator.run_id.in_(old)),
        "feedback": (Feedback, Feedback.at < cutoff),
        "interventions": (Intervention, Intervention.at < cutoff),
        "contact_events": (ContactEvent, ContactEvent.contact_id.in_(stale)),  # before their contacts
        "contacts": (Contact, Contact.updated_at < cutoff),
        "directory_entries": (DirectoryEntry, DirectoryEntry.imported_at < cutoff),
        "consents": (Consent, Consent.at < cutoff),
        "requests": (
            RightsRequest,
            and_(
                RightsRequest.status == "done",
                RightsRequest.processed_at < cutoff,
                ~exists().where(ProcessingRestriction.request_id == RightsRequest.id, standing(now)),
                ~and_(RightsRequest.outcome == "accepted", RightsRequest.applied_at.is_(None)).self_group(),
            ),
        ),
    }


def _past_log_period(session: Session, now: datetime, *, access_log_days: int) -> int:
    log_cutoff = (now - timedelta(days=access_log_days)).isoformat()
    query = select(func.count()).select_from(AuditRecord).where(AuditRecord.at < log_cutoff)
    return int(session.scalar(query) or 0)


def _result(cutoff: datetime, *, runs: int, counts: dict[str, int], past: int) -> RetentionResult:
    return RetentionResult(
        cutoff=cutoff,
        runs=runs,
        indicators=counts["indicators"],
        feedback=counts["feedback"],
        interventions=counts["interventions"],
        contacts=counts["contacts"],
        directory_entries=counts["directory_entries"],
        consents=counts["consents"],
        requests=counts["requests"],
        access_log_past_period=past,
        restrictions_ended=counts["restrictions_ended"],
    )


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
    old, expired = _expired(session, cutoff, now=now)
    counts = {
        kind: int(getattr(session.execute(delete(table).where(rows)), "rowcount", 0) or 0)
        for kind, (table, rows) in expired.items()
    }
    audit.record_action(session, caller, purpose=PURPOSE, action="retention_run", request=request)
    return _result(
        cutoff,
        runs=len(old),
        counts=counts,
        past=_past_log_period(session, now, access_log_days=access_log_days),
    )


@dataclass(frozen=True)
class RetentionStatus:
    """When the policy last ran, and what a run now would remove (nothing is removed to find out)."""

    retention_days: int
    access_log_retention_days: int
    last_run_at: str | None
    due: RetentionResult


def status(session: Session, *, retention_days: int, access_log_days: int) -> RetentionStatus:
    """The policy's state for the DPO: its periods, its last run, and what is due now."""
    now = datetime.now(UTC)
    cutoff = now - timedelta(days=retention_days)
    old, expired = _expired(session, cutoff, now=now)
    counts = {
        kind: int(session.scalar(select(func.count()).select_from(table).where(rows)) or 0)
        for kind, (table, rows) in expired.items()
    }
    last = last_run_at(session)
    return RetentionStatus(
        retention_days=retention_days,
        access_log_retention_days=access_log_days,
        last_run_at=last,
        due=_result(
            cutoff,
            runs=len(old),
            counts=counts,
            past=_past_log_period(session, now, access_log_days=access_log_days),
        ),
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


# The predicate written as the partial index's (schema.AuditRecord), so PostgreSQL's planner matches
# it with any plan; a bound parameter would not be known to match when a generic plan is made.
LAST_RUN = select(func.max(AuditRecord.at)).where(text("action = 'retention_run'"))


def last_run_at(session: Session) -> str | None:
    """When the last retention run was made (its access-log record), through the log's partial index."""
    return session.scalar(LAST_RUN)
