"""Restrictions of processing a student asks for (GDPR Art. 18): an objection's, and a correction's.

From the moment a student objects to being scored and listed (Art. 21) they are left out: no
scoring, training or audit reads them (``publish.restricted_students``) and no staff member reads them
(``access.may_read``), while the DPO weighs the objection (Art. 18(1)(d)) and after it is upheld.
That restriction ends when the DPO declines the objection with the institution's compelling grounds,
which the student reads, or when the student withdraws it.

A student who contests the accuracy of their data in a correction request may ask to be left out the
same way while the DPO checks it (Art. 18(1)(a), ground ``accuracy``). It ends when the DPO declines
the correction, which the student reads, or when the student withdraws the request. An accepted
correction keeps it until the corrected data is recorded as reaching the folder Waymark reads: until
then the student's estimates would rest on data found to be wrong. Their erasure removes every
restriction with the rest.
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


#: The grounds of a restriction, by the kind of request that asked for it.
GROUNDS = {"objection": "objection", "rectification": "accuracy"}


def not_restricted(student_id: Any) -> ColumnElement[bool]:
    """The condition that ``student_id`` (a column) names no student whose processing is restricted.

    Every aggregate over students' estimates or contacts applies it too (the impact evaluation, the
    monitoring's group figures): a restricted student's data is stored, not processed (a reviewer's
    finding).
    """
    return ~exists().where(ProcessingRestriction.student_id == student_id)


def restriction(session: Session, student: str) -> ProcessingRestriction | None:
    """The student's standing objection (weighed or upheld), if any."""
    return session.scalar(
        select(ProcessingRestriction).where(
            ProcessingRestriction.student_id == student, ProcessingRestriction.ground == "objection"
        )
    )


def restricted_by(session: Session, requests: list[RightsRequest]) -> set[int]:
    """The ids of those of ``requests`` that hold a restriction of their student's processing now."""
    held = select(ProcessingRestriction.student_id, ProcessingRestriction.request_id).where(
        ProcessingRestriction.request_id.in_([r.id for r in requests])
    )
    mine = {(r.student_id, r.id) for r in requests}
    return {request for student, request in session.execute(held) if (student, request) in mine}


def restrict(session: Session, request: RightsRequest) -> None:
    """Leave the student of ``request`` (an objection, or a correction) out from now on."""
    key = served_key(session, request.student_id)  # read before anything of theirs changes
    session.add(
        ProcessingRestriction(
            student_id=request.student_id,
            request_id=request.id,
            since=datetime.now(UTC),
            upheld=False,
            pseudonym_key=key,
            ground=GROUNDS[request.kind],
        )
    )


def uphold(session: Session, request: RightsRequest) -> int:
    """Keep the student of ``request`` (an objection) left out, and remove the indicators made of them.

    Returns how many indicators went. Their contacts, notes and consents stay (they are the support
    team's records, not the scoring the student objected to; erasure is the way to remove those).
    """
    standing = session.get(ProcessingRestriction, (request.student_id, request.id))
    if standing is not None:
        standing.upheld = True
    gone = session.execute(delete(Indicator).where(Indicator.student_id == request.student_id))
    return int(getattr(gone, "rowcount", 0) or 0)


def lift(session: Session, request: RightsRequest) -> bool:
    """End the restriction ``request`` holds, if any (True: it held one).

    The student is scored again from the next run and read as before, unless another of their
    requests holds one too (``still_restricted``).
    """
    gone = session.execute(
        delete(ProcessingRestriction).where(
            ProcessingRestriction.student_id == request.student_id,
            ProcessingRestriction.request_id == request.id,
        )
    )
    return bool(getattr(gone, "rowcount", 0))


def still_restricted(session: Session, student: str) -> bool:
    """Whether any restriction of the student's processing stands."""
    query = select(ProcessingRestriction.request_id).where(ProcessingRestriction.student_id == student)
    return session.execute(query.limit(1)).first() is not None
