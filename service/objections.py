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

The student is told before a restriction the DPO ends is lifted (Art. 18(3)): the decision gives
notice (``WAYMARK_RESTRICTION_NOTICE_DAYS``, ``end_after_notice``), and the restriction stands until
it runs out. Every reader asks ``standing`` rather than whether a row exists. A student who ends their
own restriction (withdrawing the request) is not given notice of their own choice: it ends at once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from waymark.service.db.schema import Indicator, ProcessingRestriction, RightsRequest, ScoringRun, aware


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


def standing(now: datetime | None = None) -> ColumnElement[bool]:
    """The condition that a ``ProcessingRestriction`` row keeps its student out at ``now``.

    Until decided it does; once the DPO's decision ends it, until the notice given with the decision
    runs out (``lifts_at``). A row past its notice counts for nothing, in every reader, until retention
    removes it. Without ``now``, the database's clock at the statement's transaction: the service keeps
    built statements (``reads``), and a moment bound when one was built would keep a student out, or
    let them be read, after it.
    """
    at = func.current_timestamp() if now is None else now
    return or_(ProcessingRestriction.lifts_at.is_(None), ProcessingRestriction.lifts_at > at)


def left_out() -> Any:
    """The students left out now at their request (a subquery of ``student_id``)."""
    return select(ProcessingRestriction.student_id).where(standing())


def not_restricted(student_id: Any) -> ColumnElement[bool]:
    """The condition that ``student_id`` (a column) names no student whose processing is restricted.

    Every aggregate over students' estimates or contacts applies it too (the impact evaluation, the
    monitoring's group figures): a restricted student's data is stored, not processed (a reviewer's
    finding).
    """
    return ~exists().where(ProcessingRestriction.student_id == student_id, standing())


def restriction(session: Session, student: str) -> ProcessingRestriction | None:
    """The student's standing objection (weighed or upheld), if any: not one declined and in its notice.

    A student told that a declined objection ends on a day may object again meanwhile.
    """
    return session.scalar(
        select(ProcessingRestriction).where(
            ProcessingRestriction.student_id == student,
            ProcessingRestriction.ground == "objection",
            ProcessingRestriction.lifts_at.is_(None),
        )
    )


def restricted_by(session: Session, requests: list[RightsRequest]) -> dict[int, datetime | None]:
    """Those of ``requests`` that keep their student out now, by id, each with when it ends.

    The end is the close of the notice given with the DPO's decision (``lifts_at``); None: until decided.
    """
    held = select(
        ProcessingRestriction.student_id, ProcessingRestriction.request_id, ProcessingRestriction.lifts_at
    ).where(ProcessingRestriction.request_id.in_([r.id for r in requests]), standing())
    mine = {(r.student_id, r.id) for r in requests}
    return {
        request: None if lifts is None else aware(lifts)
        for student, request, lifts in session.execute(held)
        if (student, request) in mine
    }


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
    """End the restriction ``request`` holds now, if it still stands (True: it did).

    For the student's own withdrawal (and ``end_after_notice`` without notice). The student is scored
    again from the next run and read as before, unless another of their requests holds one too
    (``still_restricted``). A row past its notice goes too, but counts as nothing lifted.
    """
    mine = (
        ProcessingRestriction.student_id == request.student_id,
        ProcessingRestriction.request_id == request.id,
    )
    stood = session.execute(select(ProcessingRestriction.request_id).where(*mine, standing())).first()
    session.execute(delete(ProcessingRestriction).where(*mine))
    return stood is not None


def end_after_notice(session: Session, request: RightsRequest, *, days: int) -> datetime | None:
    """End the restriction ``request`` holds once the student has had ``days`` of notice (Art. 18(3)).

    Returns the moment it stops keeping the student out (now, without notice), or None where the
    request held none. The DPO's decision gives the notice: the student reads it, with the day, in the
    outcome (``notice_text``). Until then they stay left out; they may end it sooner themselves.
    """
    if not days:
        return datetime.now(UTC) if lift(session, request) else None
    row = session.scalar(
        select(ProcessingRestriction).where(
            ProcessingRestriction.student_id == request.student_id,
            ProcessingRestriction.request_id == request.id,
            standing(),
        )
    )
    if row is None:
        return None
    row.lifts_at = datetime.now(UTC) + timedelta(days=days)
    return row.lifts_at


def notice_text(lifts_at: datetime, *, zone: str = "UTC") -> str:
    """What the student is told of a restriction the DPO's decision ends, and when it ends.

    The moment is said in the institution's time zone (``WAYMARK_TIMEZONE``), named. After it, staff
    may read the student again at once, with an estimate made before they were left out where the served
    run still holds one (a run inside the notice holds none of them), and the next run scores them.
    """
    local = lifts_at.astimezone(ZoneInfo(zone))
    return (
        f"You stay left out until {local:%d %B %Y, %H:%M} ({zone} time), so that you hear of this before "
        "it ends (GDPR Art. 18(3)). After that, unless another request of yours keeps you out, the staff "
        "who support you may see you in Waymark again (with an estimate made before you were left out, "
        "until a new one replaces it), and you are scored again at the next run. You may end it sooner "
        "in your requests."
    )


def still_restricted(session: Session, student: str) -> bool:
    """Whether any restriction of the student's processing stands."""
    query = select(ProcessingRestriction.request_id).where(
        ProcessingRestriction.student_id == student, standing()
    )
    return session.execute(query.limit(1)).first() is not None
