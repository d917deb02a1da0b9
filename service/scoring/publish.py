"""Atomic publication of a scoring run: write the batch aside, then swap one pointer in one transaction.

Readers only ever follow ``publications`` to a complete run, so they see the previous batch or the
new one, never a mix. Rows are written in committed chunks under a run marked ``writing``; a run that
fails is marked ``failed``, and one killed part-way stays ``writing``: neither is ever pointed to, and
the next run clears their rows. Complete runs are never deleted, so history survives model changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from service.db.engine import transaction
from service.db.schema import Indicator, Publication, ScoringRun


def now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def published_run(engine: Engine, target: str) -> ScoringRun | None:
    """The run currently served for ``target``."""
    with transaction(engine) as session:
        return session.scalar(
            select(ScoringRun)
            .join(Publication, Publication.run_id == ScoringRun.id)
            .where(Publication.target == target)
        )


def previous_probabilities(engine: Engine, target: str) -> dict[tuple[str, str, str], float]:
    """Each registration's estimate in the run currently served (for the change since then)."""
    run = published_run(engine, target)
    if run is None:
        return {}
    with transaction(engine) as session:
        rows = session.execute(
            select(
                Indicator.student_id, Indicator.module_id, Indicator.presentation_id, Indicator.probability
            ).where(Indicator.run_id == run.id)
        )
        return {(s, m, p): prob for s, m, p, prob in rows}


def clear_unfinished(engine: Engine) -> None:
    """Remove rows of runs that failed or were killed; they were never served."""
    with transaction(engine) as session:
        unfinished = select(ScoringRun.id).where(ScoringRun.status != "complete")
        session.execute(delete(Indicator).where(Indicator.run_id.in_(unfinished)))


def start_run(engine: Engine, meta: dict[str, Any]) -> int:
    """Record a new run as ``writing`` and return its id."""
    with transaction(engine) as session:
        run = ScoringRun(**meta, status="writing", students=0, started_at=now())
        session.add(run)
        session.flush()
        return run.id


def write_chunks(engine: Engine, run_id: int, rows: Iterator[list[dict[str, Any]]]) -> int:
    """Insert the run's indicator rows chunk by chunk; returns how many were written."""
    written = 0
    for chunk in rows:
        with transaction(engine) as session:
            session.execute(insert(Indicator), [{**row, "run_id": run_id} for row in chunk])
        written += len(chunk)
    return written


def swap(engine: Engine, run_id: int, target: str, students: int) -> None:
    """Mark the run complete and point the target at it, in one transaction."""
    with transaction(engine) as session:
        session.execute(
            update(ScoringRun)
            .where(ScoringRun.id == run_id)
            .values(status="complete", students=students, finished_at=now())
        )
        current = session.get(Publication, target)
        if current is None:
            session.add(Publication(target=target, run_id=run_id, published_at=now()))
        else:
            current.run_id, current.published_at = run_id, now()


def mark_failed(engine: Engine, run_id: int) -> None:
    """Record that a run did not complete (its rows are cleared by the next run)."""
    with transaction(engine) as session:
        session.execute(
            update(ScoringRun).where(ScoringRun.id == run_id).values(status="failed", finished_at=now())
        )
