"""Migrations carry stored rows forward: a database written by an earlier release reads under this one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, select

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
        run = ScoringRun(
            target="not_completing",
            model_name="m",
            model_version="1",
            bundle_sha256="a" * 64,
            data_fingerprint="b" * 64,
            data_as_of="2026-11-30",
            status="complete",
            started_at=now,
        )
        session.add(run)
        session.flush()
        for value in ("incorrectly_flagged", "useful"):
            session.add(
                Feedback(
                    run_id=run.id,
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
