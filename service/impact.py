"""The record of outreach, read for evaluation and retraining (issue #17): aggregate use only.

An impact evaluation needs, for each student contacted, when contact was first made and the indicator
the member of staff saw then; and, for comparison, the indicators of students never contacted. A
planned contact (``to_contact``) that never happened is not a contact. Retraining needs only when
each student was first reached. Nothing here names a member of staff.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select

from waymark.models import registry
from waymark.service import audit, objections
from waymark.service.db.engine import transaction
from waymark.service.db.schema import ContactEvent, Indicator, ScoringRun, list_order
from waymark.service.security import Principal

MADE = ("contacted", "in_conversation", "closed")  # the statuses that mean the student was reached
EXPERIMENT = "waymark-impact"  # MLflow experiment that keeps each evaluation (``waymark evaluate impact``)
REPORT_FILE = "impact.json"


def first_contacts(engine: Engine) -> pd.DataFrame:
    """When each student was first reached: ``student_id, contacted_at`` (UTC)."""
    query = (
        select(ContactEvent.student_id, func.min(ContactEvent.at).label("contacted_at"))
        .where(ContactEvent.status.in_(MADE), objections.not_restricted(ContactEvent.student_id))
        .group_by(ContactEvent.student_id)
    )
    with transaction(engine) as session:
        rows = session.execute(query).all()
    frame = pd.DataFrame(rows, columns=["student_id", "contacted_at"])
    frame["contacted_at"] = pd.to_datetime(frame["contacted_at"], utc=True)
    return frame


def interventions(engine: Engine) -> pd.DataFrame:
    """The record training reads (``training.censoring``): ``student_id, contacted_on`` (a date)."""
    first = first_contacts(engine)
    return pd.DataFrame({"student_id": first["student_id"], "contacted_on": first["contacted_at"].dt.date})


def exported_interventions(engine: Engine, key: bytes, *, caller: Principal) -> pd.DataFrame:
    """``interventions``, with one access-log record per student it names (``waymark outreach export``).

    The file says who was reached and when: a read of each student's data, recorded as the subject
    access copy is (a red team found the export written with no record, and missing from each
    student's own access log).
    """
    frame = interventions(engine)
    with audit.unit(engine, key) as session:
        audit.record(
            session,
            caller,
            purpose="model_training",
            students=[str(s) for s in frame["student_id"]],
            action="outreach_export",
            request=audit.RequestIds.new(),
        )
    return frame


def indicators_since(engine: Engine, since: datetime) -> pd.DataFrame:
    """Every indicator of the complete scoring runs started since ``since``, with when its run finished."""
    query = (
        select(
            Indicator.run_id,
            ScoringRun.finished_at.label("run_at"),
            Indicator.student_id,
            Indicator.module_id,
            Indicator.presentation_id,
            Indicator.week,
            Indicator.probability,
            list_order(Indicator).label("priority"),
        )
        .join(ScoringRun, ScoringRun.id == Indicator.run_id)
        .where(
            ScoringRun.status == "complete",
            ScoringRun.started_at >= since,
            objections.not_restricted(Indicator.student_id),
        )
    )
    with transaction(engine) as session:
        rows = session.execute(query).all()
    columns = [
        "run_id",
        "run_at",
        "student_id",
        "module_id",
        "presentation_id",
        "week",
        "probability",
        "priority",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    frame["run_at"] = pd.to_datetime(frame["run_at"], utc=True)
    return frame


def latest_report(*, store: str | None = None) -> dict[str, Any] | None:
    """The newest impact evaluation kept in MLflow, as published (aggregate, small cells withheld).

    ``store`` names the tracking store (the service passes its own); None reads the process-wide one.
    """
    text = registry.latest_text(EXPERIMENT, REPORT_FILE, store=store)
    return None if text is None else dict(json.loads(text))
