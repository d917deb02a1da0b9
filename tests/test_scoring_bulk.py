"""The scoring job's bulk publication: the driver's fast path stores exactly what the ORM would have.

Rows are written by ``publish.write_chunks`` (COPY on PostgreSQL, the driver's executemany on SQLite)
and, for comparison, by an ORM insert of the same rows into another run; both read back identically,
including a Python None in a JSON column (stored as JSON null, as the ORM stores it), a missing
previous estimate (SQL NULL), text outside ASCII, and chunks smaller than the batch. The pointer swap
then publishes the run, and refuses one whose rows are not all there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select

from tests.service_setup import backends, fresh_database
from waymark.service.db.engine import make_engine, transaction, upgrade
from waymark.service.db.schema import Indicator, Publication
from waymark.service.scoring import IncompleteBatchError, lock, publish

META = {"target": "not_completing", "model_name": "m", "model_version": "1", "bundle_sha256": "0" * 64}


@pytest.fixture(params=backends())
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(fresh_database(request.param, tmp_path))
    upgrade(engine)
    yield engine
    engine.dispose()


def _rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "student_id": f"s{i}",
            "module_id": "AAA",
            "presentation_id": "2024J",
            "programme_id": None if i % 3 == 0 else f"P{i % 2}",
            "school_id": "Sch-É" if i % 2 else None,
            "week": 8,
            "as_of": "2024-11-25",
            "probability": 0.1 + i / 100,
            "lower": 0.05 + i / 100,
            "upper": 0.2 + i / 100,
            "previous_probability": None if i % 2 else 0.123456789012345,
            "priority": 0.1 + i / 200,
            "factors": [
                {
                    "family": "recent_activity",
                    "title": "Recent activity",
                    "sentence": f"{i} actions — “quoted”.",
                    "contribution": 0.3141,
                }
            ],
            "strengths": [],
            "context": [{"family": "study_history", "title": "Study history", "sentence": "First attempt."}],
            "what_could_change": None if i % 2 else {"family": "practice", "estimate_after": 0.25},
            "coverage": {"sources_recorded": ["the library"], "activity_recorded_for_student": bool(i % 2)},
            "engagement": {"active_days_last_14": i, "assessments_due_so_far": 2, "assessments_submitted": 1},
        }
        for i in range(n)
    ]


def _by_column(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """A chunk as the job hands it over: column by column, a key some rows lack as None in theirs."""
    names = list(dict.fromkeys(name for row in rows for name in row))
    return {name: [row.get(name) for row in rows] for name in names}


def _stored(engine: Engine, run_id: int) -> list[dict[str, Any]]:
    with transaction(engine) as session:
        found = session.scalars(
            select(Indicator).where(Indicator.run_id == run_id).order_by(Indicator.student_id)
        )
        return [
            {c.key: getattr(r, c.key) for c in Indicator.__table__.columns if c.key != "run_id"}
            for r in found
        ]


def _sql_nulls(engine: Engine, run_id: int) -> tuple[int, int]:
    with transaction(engine) as session:
        mine = Indicator.run_id == run_id
        change = session.scalar(select(func.count()).where(mine, Indicator.what_could_change.is_(None)))
        previous = session.scalar(select(func.count()).where(mine, Indicator.previous_probability.is_(None)))
        return int(change or 0), int(previous or 0)


def test_the_fast_path_stores_what_the_orm_stores(engine: Engine) -> None:
    rows = _rows(7)
    with lock.exclusive(engine) as held:
        assert held is not None
        fast, orm = (publish.start_run(engine, held, meta=META) for _ in range(2))
        chunks = [_by_column(part) for part in (rows[:3], rows[3:6], rows[6:])]
        written = publish.write_chunks(engine, fast, rows=iter(chunks))
        with transaction(engine) as session:
            session.execute(insert(Indicator), [{**row, "run_id": orm} for row in rows])
        assert written == 7
        assert _stored(engine, fast) == _stored(engine, orm) == sorted(rows, key=lambda r: r["student_id"])
        assert _sql_nulls(engine, fast) == _sql_nulls(engine, orm) == (0, 3)
        assert (
            publish.swap(engine, fast, target="not_completing", produced=[r["student_id"] for r in rows]) == 7
        )
    with transaction(engine) as session:
        assert (
            session.scalar(select(Publication.run_id).where(Publication.target == "not_completing")) == fast
        )


def test_a_chunk_that_fails_is_not_stored_and_the_run_is_not_published(engine: Engine) -> None:
    rows = _rows(4)
    duplicate = [rows[2], rows[2]]  # the same key twice: the database refuses the whole chunk
    with lock.exclusive(engine) as held:
        assert held is not None
        run = publish.start_run(engine, held, meta=META)
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            publish.write_chunks(engine, run, rows=iter(map(_by_column, [rows[:2], duplicate])))
        assert len(_stored(engine, run)) == 2
        with pytest.raises(IncompleteBatchError, match="stored 2 of the 4"):
            publish.swap(engine, run, target="not_completing", produced=[r["student_id"] for r in rows])
    with transaction(engine) as session:
        assert session.scalar(select(Publication.run_id)) is None
