"""A student's objection to being scored and listed (GDPR Art. 21), and the restriction it brings.

From the moment a student objects they are left out: no scoring, training or audit reads them
(``publish.objecting_students``) and no staff member reads them (``access.may_read``), while the
DPO weighs the objection (a restriction of processing, Art. 18(1)(d)) and after it is upheld. The
restriction ends when the DPO declines the objection with the institution's compelling grounds,
which the student reads, or when the student withdraws it; their erasure removes it with the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, select
from sqlalchemy.orm import Session

from waymark.service.db.schema import Indicator, ProcessingRestriction, RightsRequest, ScoringRun


def served_key(session: Session, student: str) -> str | None:
    """The key of the ids the student is known by: their latest complete run's, else any complete run's.

    Recorded with an erasure or an objection, so that data whose ids were made otherwise is refused
    rather than read with the student in it under another id (``publish.erased_students``).
    """
    complete = select(ScoringRun.pseudonym_key).where(ScoringRun.status == "complete")
    theirs = complete.where(
        ScoringRun.id.in_(select(Indicator.run_id).where(Indicator.student_id == student))
    )
    for query in (theirs, complete):
        found = session.execute(query.order_by(ScoringRun.id.desc()).limit(1)).first()
        if found is not None:
            return found[0]
    return None


def not_objecting(student_id: Any) -> ColumnElement[bool]:
    """The condition that ``student_id`` (a column) names no student whose objection stands.

    Every aggregate over students' estimates or contacts applies it too (the impact evaluation, the
    monitoring's group figures): a restricted student's data is stored, not processed (a reviewer's
    finding).
    """
    return ~exists().where(ProcessingRestriction.student_id == student_id)


def restriction(session: Session, student: str) -> ProcessingRestriction | None:
    """The student's standing objection (weighed or upheld), if any."""
    return session.get(ProcessingRestriction, student)


def restrict(session: Session, request: RightsRequest) -> None:
    """Leave the student of ``request`` (an objection just made) out from now on, while it is weighed."""
    key = served_key(session, request.student_id)  # read before anything of theirs changes
    session.add(
        ProcessingRestriction(
            student_id=request.student_id,
            request_id=request.id,
            since=datetime.now(UTC),
            upheld=False,
            pseudonym_key=key,
        )
    )


def uphold(session: Session, student: str) -> int:
    """Keep the student left out, and remove the indicators made of them; returns how many went.

    Their contacts, notes and consents stay (they are the support team's records, not the scoring
    the student objected to; erasure is the way to remove those).
    """
    standing = restriction(session, student)
    if standing is not None:
        standing.upheld = True
    gone = session.execute(delete(Indicator).where(Indicator.student_id == student))
    return int(getattr(gone, "rowcount", 0) or 0)


def lift(session: Session, student: str) -> None:
    """End the restriction: the student is scored again from the next run and read as before."""
    session.execute(delete(ProcessingRestriction).where(ProcessingRestriction.student_id == student))
