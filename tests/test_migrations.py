"""Migrations carry stored rows forward: a database written by an earlier release reads under this one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, insert, select

from waymark.service.db.engine import MIGRATIONS, make_engine, transaction, upgrade
from waymark.service.db.schema import Feedback, ScoringRun


def _to(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_feedback_that_said_a_student_was_flagged_says_the_indicator_seems_wrong(
    tmp_path: Path, disposing: Callable[[Engine], Engine]
) -> None:
    engine = disposing(make_engine(f"sqlite:///{tmp_path}/old.db"))
    _to(engine, "0007")  # as the release before 0008 left it
    now = datetime.now(UTC)
    with transaction(engine) as session:
        # the columns of that release only (a row object would name columns later revisions add)
        run_id = session.execute(
            insert(ScoringRun).values(
                target="not_completing",
                model_name="m",
                model_version="1",
                bundle_sha256="a" * 64,
                data_fingerprint="b" * 64,
                data_as_of="2026-11-30",
                status="complete",
                students=0,
                started_at=now,
            )
        ).inserted_primary_key[0]
        for value in ("incorrectly_flagged", "useful"):
            session.add(
                Feedback(
                    run_id=run_id,
                    student_id="S1",
                    module_id="M",
                    presentation_id="P",
                    staff_id="t1",
                    value=value,
                    at=now,
                )
            )
    upgrade(engine)
    with transaction(engine) as session:
        assert sorted(session.scalars(select(Feedback.value))) == ["seems_wrong", "useful"]


def test_erasures_recorded_before_their_key_was_kept_are_still_applied_and_not_checked(
    tmp_path: Path, disposing: Callable[[Engine], Engine]
) -> None:
    from waymark.service.db.schema import TrainingExclusion
    from waymark.service.scoring.publish import erased_students

    engine = disposing(make_engine(f"sqlite:///{tmp_path}/old.db"))
    _to(engine, "0008")  # as the release before 0009 left it
    with transaction(engine) as session:
        session.execute(insert(TrainingExclusion).values(student_id="S1", at=datetime.now(UTC)))
    upgrade(engine)
    with transaction(engine) as session:
        assert session.scalar(select(TrainingExclusion.pseudonym_key)) is None
    # the key it was recorded under is not known: left out of any data, whatever its ids' key
    assert erased_students(engine, key="0123456789abcdef") == erased_students(engine, key="") == {"S1"}
