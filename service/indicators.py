"""Reading indicators for a caller: always through ``service.access.readable``, never around it."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from waymark.models.explain.change import without_peer
from waymark.models.explain.sentences import to_the_student
from waymark.service.access import holding, readable
from waymark.service.db.schema import (
    AccessGrant,
    Contact,
    ContactEvent,
    Indicator,
    Publication,
    RightsRequest,
    ScoringRun,
    aware,
    estimates_withdrawn,
    list_order,
)
from waymark.service.objections import still_restricted
from waymark.service.outreach import outlives
from waymark.service.runtime import Runtime
from waymark.service.schemas import (
    Change,
    Context,
    Coverage,
    Estimate,
    HistoryPoint,
    IndicatorView,
    Provenance,
    Statement,
)
from waymark.service.security import Principal


def for_the_student(view: IndicatorView) -> IndicatorView:
    """``view`` as the student reads it of themself: its sentences addressed to them, its own reading note."""

    def said(items: list[Any]) -> list[Any]:
        return [item.model_copy(update={"sentence": to_the_student(item.sentence)}) for item in items]

    change = view.what_could_change
    if change is not None:  # the peer's values are a classmate's own: not shown to the student
        change = change.model_copy(update={"sentence": without_peer(change.sentence)})
    return view.model_copy(
        update={
            "factors": said(view.factors),
            "strengths": said(view.strengths),
            "context": said(view.context),
            "what_could_change": None if change is None else said([change])[0],
            "reading_note": OWN_READING_NOTE,
        }
    )


def correction_notice(session: Session, student_id: str, *, run_id: int, own: bool) -> str | None:
    """What staff (or, with ``own``, the student) should know of a correction asked for data behind the run.

    An open rectification request: the data may be wrong, and the DPO has not decided. One accepted and
    not yet recorded as reaching the data (``applied_at``): the estimates may rest on the data before
    it, however many runs since. One that reached the data after the served run began: its estimates
    rest on the data before it. None otherwise. (A student's disputed mark once stayed on the
    worklist's first row, unmarked, after the correction was accepted; and the next weekly run, on data
    not yet corrected, took the notice away.)
    """
    asked = list(
        session.execute(
            select(
                RightsRequest.status,
                RightsRequest.outcome,
                RightsRequest.created_at,
                RightsRequest.processed_at,
                RightsRequest.applied_at,
            )
            .where(RightsRequest.student_id == student_id, RightsRequest.kind == "rectification")
            .order_by(RightsRequest.id)
        )
    )
    opened = [r.created_at for r in asked if r.status == "open"]
    if opened:
        since = _day(opened[0])
        return (
            f"You asked on {since} for data behind this to be corrected; the data protection officer has not "
            "decided yet."
            if own
            else f"The student asked on {since} for data behind these estimates to be corrected, and the "
            "data protection officer has not decided yet: read them with that in mind, and ask the student."
        )
    run = session.get(ScoringRun, run_id)
    began = None if run is None else aware(run.started_at)
    accepted = [r for r in asked if r.outcome == "accepted" and r.processed_at is not None]
    waiting = [r for r in accepted if r.applied_at is None]
    if waiting:  # made in the records system, not yet recorded as reaching the data read here
        on = _day(aware(waiting[-1].processed_at))
        return (
            f"A correction you asked for was accepted on {on}; until it reaches the data this estimate is "
            "made from, the estimate may rest on the data before it."
            if own
            else f"A correction the student asked for was accepted on {on}, and has not yet been recorded "
            "as reaching the data these estimates are made from: read them with that in mind."
        )
    arrived = [
        aware(r.applied_at)
        for r in accepted
        if r.applied_at is not None and began is not None and aware(r.applied_at) > began
    ]
    if not arrived:
        return None
    on = _day(arrived[-1])
    return (
        f"A correction you asked for reached the data on {on}, after this estimate was made: it rests on "
        "the data before the correction."
        if own
        else f"A correction the student asked for reached the data on {on}, after these estimates were "
        "made: they rest on the data before the correction."
    )


def _day(moment: datetime) -> str:
    return f"{moment:%d %B %Y}".lstrip("0")


READING_NOTE = (
    "An indicator is an estimate from incomplete data, not a judgement of the student: read it with its "
    "interval, its factors and what you know of the student, and use it to start a supportive conversation."
)
#: The same, as the student reads their own (the staff note speaks of "the student").
OWN_READING_NOTE = (
    "This is an estimate from incomplete data, not a judgement of you: it says nothing of what you can do. "
    "The factors say what the data showed, and what could change it; your tutor or student support can "
    "talk it through with you."
)
ORDER = (
    list_order(Indicator).desc(),
    Indicator.student_id,
    Indicator.module_id,
    Indicator.presentation_id,
)


def served_run(session: Session, runtime: Runtime) -> ScoringRun | None:
    """The published run, only if it came from the approved champion (never a fallback)."""
    champion = runtime.champion
    if champion is None:
        return None
    run = session.scalar(
        select(ScoringRun)
        .join(Publication, Publication.run_id == ScoringRun.id)
        .where(Publication.target == runtime.settings.target)
    )
    if run is None or (run.model_name, run.model_version) != (champion.name, champion.version):
        return None
    return run


def student_in_scope(
    session: Session, principal: Principal, *, runtime: Runtime, student_id: str
) -> ScoringRun | None:
    """The served run, if ``student_id`` is in the caller's scope in it (None otherwise)."""
    run = served_run(session, runtime)
    if run is None:
        return None
    found = session.scalar(readable(principal, run.id).where(Indicator.student_id == student_id).limit(1))
    return None if found is None else run


def latest_run_of(session: Session, *, target: str, student_id: str) -> ScoringRun | None:
    """The latest complete run of ``target`` that holds an indicator of ``student_id`` (None: none does)."""
    return session.scalar(
        select(ScoringRun)
        .where(
            ScoringRun.status == "complete",
            ScoringRun.target == target,
            ScoringRun.id.in_(select(Indicator.run_id).where(Indicator.student_id == student_id)),
        )
        .order_by(ScoringRun.id.desc())
        .limit(1)
    )


def supports(session: Session, principal: Principal, *, runtime: Runtime, student_id: str) -> bool:
    """Whether the caller still supports ``student_id``: may read and close the team's contacts with them.

    Contacts are the team's own records, not the model's output, so they stay reachable when no run is
    served (the model's approval withdrawn) or the student is not in the served run (withdrew from
    their studies, say). The relationship is decided as for every other read, by
    ``service.access.readable``, in the latest complete run that holds an indicator of the student:
    the served run whenever the student is in it (every complete run is published, so the served run
    is the latest), otherwise the last run they were in. Relationships are the current grants (an
    import replaces them all), applied to the registrations that run recorded: a grant that names the
    student (a personal tutor's, a targeted support team's) covers them in any run, so a team list
    not pruned of leavers keeps their contacts readable; a module, programme or school grant covers
    them only if their last registrations were in that scope, and then, outside the served run, only
    for staff who opened or moved on one of the student's contacts (a grant over a module given after
    the student left does not reach back to them). Whether that run's model is approved
    does not matter: only its registrations are used, never its estimates. No run holds a student
    never indicated, so nobody supports them here. Indicators themselves are still read only from the
    served run (``student_in_scope``).
    """
    return _supports(session, principal, runtime=runtime, student_id=student_id, left_out=False)


def _supports(
    session: Session, principal: Principal, *, runtime: Runtime, student_id: str, left_out: bool
) -> bool:
    """``supports``; with ``left_out``, as if the student's processing were not restricted."""
    run = latest_run_of(session, target=runtime.settings.target, student_id=student_id)
    # a grant that names the student (a personal tutor's, a targeted support team's) covers them in any
    # run, and without one: the indicators of a student whose objection was upheld are deleted
    if run is None:
        return left_out and _names_student(session, principal, student_id=student_id)
    query = readable(principal, run.id, left_out=left_out).where(Indicator.student_id == student_id)
    if session.scalar(query.limit(1)) is None:
        return False
    served = served_run(session, runtime)
    if served is not None and served.id == run.id:
        return True
    if _names_student(session, principal, student_id=student_id):
        return True
    # A module, programme or school grant given now does not reach back to a student who had left
    # before it: outside the served run, only staff who already worked on the student's contacts (who
    # opened or moved one on) may go on reading and closing them.
    worked = select(ContactEvent.id).where(
        ContactEvent.student_id == student_id, ContactEvent.staff_id == principal.sub
    )
    return session.scalar(worked.limit(1)) is not None


def follows_up(
    session: Session, principal: Principal, *, runtime: Runtime, student_id: str, kept: tuple[str, ...]
) -> bool:
    """Whether the caller may read and move on the student's open contacts that outlive a restriction.

    For a student left out at their request (``ProcessingRestriction``), whom nobody ``supports``: the
    restriction covers being scored and listed, and a safeguarding follow-up had left its tutor's
    worklist, unreadable and unclosable (a red team's finding). ``kept`` names the exemptions whose
    contacts outlive it (the outreach file's ``[restriction] kept``, safeguarding by default). While
    one of the student's contacts under them is open, those who would support the student without
    the restriction (the same relationship, in the caller's role, on its days) and who opened or moved
    one of those contacts on, or whose relationship names the student, read and move on those
    contacts alone; the student's indicators, answers and other contacts stay out of reach, and no
    new contact is opened in Waymark.
    """
    if not kept or not still_restricted(session, student_id):
        return False
    contacts = select(Contact.id).where(Contact.student_id == student_id, outlives(Contact, kept=kept))
    if session.scalar(contacts.limit(1)) is None:
        return False
    if not _supports(session, principal, runtime=runtime, student_id=student_id, left_out=True):
        return False
    # and only those closest to it: who opened or moved one of those contacts on, or a relationship
    # naming the student (their personal tutor's); not every leader of a module they are on
    worked = select(ContactEvent.id).where(
        ContactEvent.contact_id.in_(contacts), ContactEvent.staff_id == principal.sub
    )
    if session.scalar(worked.limit(1)) is not None:
        return True
    return _names_student(session, principal, student_id=student_id)


def _names_student(session: Session, principal: Principal, *, student_id: str) -> bool:
    """Whether one of the caller's relationships, on its days, names ``student_id`` itself."""
    named = select(AccessGrant.scope_id).where(
        holding(principal), AccessGrant.scope_type == "student", AccessGrant.scope_id == student_id
    )
    return session.scalar(named.limit(1)) is not None


# Support priority is a position in the caller's whole caseload. Working it out needs the caseload's
# order, so it is computed once per caller and batch and kept briefly; a relationship change shows
# up in priorities within RANKS_TTL seconds (who may read whom is never cached).
RANKS_TTL = 60.0
_ranks: dict[tuple[str, str, int], tuple[float, dict[tuple[str, str, str], int]]] = {}


def ranks(session: Session, principal: Principal, *, run_id: int) -> dict[tuple[str, str, str], int]:
    """Each registration's position in the caller's caseload of run ``run_id`` (1 = contact first).

    Registrations with the same estimate share the first one's position (as the caseload's ``rank``).
    """
    key = (principal.sub, principal.role, run_id)
    cached = _ranks.get(key)
    if cached is None or time.monotonic() - cached[0] > RANKS_TTL:
        mine = readable(principal, run_id).with_only_columns(
            Indicator.student_id, Indicator.module_id, Indicator.presentation_id, list_order(Indicator)
        )
        order = session.execute(mine.order_by(*ORDER)).all()
        places: dict[tuple[str, str, str], int] = {}
        place, last = 0, None
        for i, (s, m, p, value) in enumerate(order, start=1):
            place, last = (place, last) if value == last else (i, value)  # ties share the first's place
            places[(s, m, p)] = place
        cached = (time.monotonic(), places)
        if len(_ranks) > 10_000:
            _ranks.clear()
        _ranks[key] = cached
    return cached[1]


def priority(session: Session, principal: Principal, *, run: ScoringRun, row: Indicator) -> int:
    """Position of ``row`` in the caller's caseload (1 = contact first; ties share a position)."""
    found = ranks(session, principal, run_id=run.id)
    return found.get((row.student_id, row.module_id, row.presentation_id), len(found) + 1)


def history(session: Session, row: Indicator, *, target: str) -> list[HistoryPoint]:
    """Every complete run's indicator for the same student and module presentation, but a rejected model's."""
    query = (
        select(Indicator, ScoringRun)
        .join(ScoringRun, ScoringRun.id == Indicator.run_id)
        .where(
            ScoringRun.status == "complete",
            ScoringRun.target == target,
            ~estimates_withdrawn(ScoringRun.model_name, ScoringRun.model_version),
            Indicator.student_id == row.student_id,
            Indicator.module_id == row.module_id,
            Indicator.presentation_id == row.presentation_id,
        )
        .order_by(ScoringRun.id)
    )
    return [
        HistoryPoint(
            run_id=run.id,
            week=ind.week,
            data_as_of=ind.as_of,
            model_version=run.model_version,
            value=ind.probability,
            lower=ind.lower,
            upper=ind.upper,
        )
        for ind, run in session.execute(query)
    ]


def estimate(row: Indicator) -> Estimate:
    """The estimate with its interval and change."""
    change = None if row.previous_probability is None else row.probability - row.previous_probability
    return Estimate(value=row.probability, lower=row.lower, upper=row.upper, change_since_last_run=change)


def provenance(row: Indicator, run: ScoringRun) -> Provenance:
    """Where the indicator came from."""
    return Provenance(
        target=run.target,
        model_name=run.model_name,
        model_version=run.model_version,
        week=row.week,
        data_as_of=row.as_of,
        run_id=run.id,
    )


def view(row: Indicator, run: ScoringRun, *, rank: int | None, past: list[HistoryPoint]) -> IndicatorView:
    """The full explained indicator."""
    change = row.what_could_change
    return IndicatorView(
        student_id=row.student_id,
        module_id=row.module_id,
        presentation_id=row.presentation_id,
        support_priority=rank,
        estimate=estimate(row),
        factors=[Statement(**f) for f in row.factors],
        strengths=[Statement(**s) for s in row.strengths],
        context=[Context(**c) for c in row.context],
        what_could_change=Change(**change) if change else None,
        coverage=Coverage(**row.coverage),
        history=past,
        provenance=provenance(row, run),
        reading_note=READING_NOTE,
    )
