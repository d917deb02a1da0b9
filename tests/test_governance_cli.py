"""The command line records no committee decision it cannot attribute, and runs no demo on a real deployment.

A red team recorded "the ethics committee's" approval from the command line under any name in production,
ran ``waymark demo`` against a production database (a demo reviewer's approval, a promotion, replaced staff
relationships), and moved an MLflow alias so that a decision landed on another version than the one whose
report was read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from waymark.cli import app
from waymark.models.settings import get_settings


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()  # each test's environment, not an earlier test's cached settings
    yield
    get_settings.cache_clear()


def _env(tmp_path: Path, env: str) -> dict[str, str]:
    return {
        "WAYMARK_ENV": env,
        "WAYMARK_DATABASE_URL": f"sqlite:///{tmp_path}/w.db",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db",
    }


def test_the_demo_refuses_to_run_outside_development(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["demo", "--no-serve", "--workdir", str(tmp_path / "demo")], env=_env(tmp_path, "production")
    )
    assert result.exit_code == 2, result.output
    assert "runs only in development" in result.output
    assert not (tmp_path / "demo").exists() and not (tmp_path / "w.db").exists()


def test_a_review_from_the_command_line_is_refused_in_production(tmp_path: Path) -> None:
    args = ["model", "review", "--model", "models:/m/1", "--approve", "--reviewer", "demo-reviewer"]
    result = CliRunner().invoke(app, [*args, "--note", "n"], env=_env(tmp_path, "production"))
    assert result.exit_code == 2, result.output
    assert "signed-in ethics reviewer" in " ".join(result.output.split())
    assert not (tmp_path / "w.db").exists() and not (tmp_path / "m.db").exists()


def test_a_review_or_a_promotion_must_name_the_version_not_an_alias(tmp_path: Path) -> None:
    env = _env(tmp_path, "development")
    review = [
        "model",
        "review",
        "--model",
        "models:/m@candidate",
        "--reject",
        "--reviewer",
        "r",
        "--note",
        "n",
    ]
    promote = ["model", "promote", "--model", "models:/m@candidate"]
    for args in (review, promote):
        result = CliRunner().invoke(app, args, env=env)
        assert result.exit_code == 2, result.output
        assert "names an alias" in result.output and "models:/NAME/VERSION" in result.output
    assert not (tmp_path / "w.db").exists()


def test_the_demo_keeps_everything_in_its_folder_whatever_the_environment_points_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A review found that on a host whose environment names a real database and MLflow store, with
    WAYMARK_ENV unset, the demo would have written its approval and relationships there."""
    from waymark.cli.demo import demo_settings

    monkeypatch.delenv("WAYMARK_ENV", raising=False)
    monkeypatch.setenv("WAYMARK_DATABASE_URL", "postgresql://db.example/waymark")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example")
    settings = demo_settings(tmp_path / "demo")
    assert settings.database_url == f"sqlite:///{(tmp_path / 'demo' / 'waymark.db').resolve()}"
    assert settings.mlflow_tracking_uri == f"sqlite:///{(tmp_path / 'demo' / 'mlflow.db').resolve()}"
    assert settings.development


def test_a_review_from_the_command_line_is_refused_on_a_database_used_in_production(tmp_path: Path) -> None:
    """A red team set WAYMARK_ENV=development for one command against the production database and
    recorded an approval, with a gate override, under a name they typed: the environment alone decided."""
    from sqlalchemy import select
    from sqlalchemy.exc import OperationalError

    from waymark.models.settings import Settings
    from waymark.service.db.engine import ProductionDatabase, engine_for
    from waymark.service.db.schema import DeploymentMark, ModelDecision
    from waymark.service.runtime import build_runtime

    upgraded = CliRunner().invoke(app, ["db", "upgrade"], env=_env(tmp_path, "production"))
    assert upgraded.exit_code == 0, upgraded.output
    get_settings.cache_clear()
    args = ["model", "review", "--model", "models:/m/1", "--approve", "--reviewer", "Prof. A. Chair"]
    result = CliRunner().invoke(app, [*args, "--note", "n"], env=_env(tmp_path, "development"))
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "has been used in production (since" in said and "whatever WAYMARK_ENV says" in said
    # Nor may the service, or any other command, open it in development mode, which signs anyone in with
    # a key on this machine (a red team served it so, and read and decided as anyone).
    get_settings.cache_clear()
    verify = CliRunner().invoke(app, ["access-log", "verify"], env=_env(tmp_path, "development"))
    assert isinstance(verify.exception, ProductionDatabase), verify.output  # `waymark` says it, exit 2
    with pytest.MonkeyPatch.context() as env:
        for name, value in {**_env(tmp_path, "development"), "WAYMARK_DEV_KEY_DIR": str(tmp_path)}.items():
            env.setenv(name, value)
        with pytest.raises(ProductionDatabase, match="has been used in production"):
            build_runtime(Settings())  # type: ignore[call-arg]

        # A mark that cannot be read at the start (a lock held through it, grants not applied): the
        # service starts, as when its database is down, but signs no one in until the mark is read
        # (a reviewer: it had been logged, and the service served in development mode).
        def unreadable(_engine: object) -> None:
            raise OperationalError("SELECT first_at", {}, Exception("database is locked"))

        env.setattr("waymark.service.db.engine.production_since", unreadable)
        runtime = build_runtime(Settings())  # type: ignore[call-arg]
        try:
            assert runtime.development is not None
            with pytest.raises(OperationalError, match="locked"):
                runtime.development.confirm()
            env.undo()
            with pytest.raises(ProductionDatabase, match="has been used in production"):
                runtime.development.confirm()  # once readable, refused for every caller
        finally:
            runtime.close()
    engine = engine_for(f"sqlite:///{tmp_path}/w.db")
    with engine.connect() as connection:
        assert connection.scalars(select(DeploymentMark.mode)).all() == ["production"]
        assert connection.scalars(select(ModelDecision.id)).all() == []
    # A development database is not marked by development commands, and the check lets them through
    # to the model's own checks (no such model here).
    other = tmp_path / "dev"
    other.mkdir()
    get_settings.cache_clear()
    result = CliRunner().invoke(app, [*args, "--note", "n"], env=_env(other, "development"))
    assert "used in production" not in result.output


def test_the_database_owner_clears_a_holding_from_the_command_line_with_a_reason_that_is_kept(
    tmp_path: Path,
) -> None:
    """A holding had been cleared with a plain DELETE, which kept no record of who or why."""
    from waymark.service import sessions
    from waymark.service.db.engine import make_engine, upgrade

    env = {
        **_env(tmp_path, "development"),
        "WAYMARK_DEV_KEY_DIR": str(tmp_path / "k"),
        "WAYMARK_OPERATOR": "dba-1",
    }
    engine = make_engine(env["WAYMARK_DATABASE_URL"])
    try:
        upgrade(engine)
        cookie, _ = sessions.start(engine, sub="ds-1", name="", roles=["data_scientist"], hours=1)
        sessions.end(engine, cookie)  # signed out (a live session in the role is refused: test_governance)
    finally:
        engine.dispose()
    runner = CliRunner()
    listed = runner.invoke(app, ["access", "holdings"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "ds-1: holds the data scientist's role" in listed.output
    for args, said in (
        (["ds-1", "--reason", " "], "give the reason"),
        (["ds-2", "--reason", "r"], "nobody is recorded holding the data scientist's role as ds-2"),
    ):
        refused = runner.invoke(app, ["access", "clear-holding", *args], env=env)
        assert refused.exit_code == 2 and said in " ".join(refused.output.split()), refused.output
    get_settings.cache_clear()  # read again, with the person recorded as the operator
    as_them = {**env, "WAYMARK_OPERATOR": "DS-1"}
    refused = runner.invoke(app, ["access", "clear-holding", "ds-1", "--reason", "r"], env=as_them)
    said = "is the person recorded: a holding is cleared by someone else"
    assert refused.exit_code == 2 and said in " ".join(refused.output.split()), refused.output
    get_settings.cache_clear()
    assert "ds-1: holds" in runner.invoke(app, ["access", "holdings"], env=env).output  # nothing cleared
    cleared = runner.invoke(
        app, ["access", "clear-holding", "DS-1", "--reason", "joined the ethics committee"], env=env
    )
    assert cleared.exit_code == 0, cleared.output
    said = " ".join(cleared.output.split())
    assert "Cleared ds-1's holding" in said and "dba-1" in said and "have given no approval" in said
    listed = " ".join(runner.invoke(app, ["access", "holdings"], env=env).output.split())
    assert "Nobody is recorded holding" in listed
    assert (
        "ds-1: held it from" in listed and "by dba-1 as no longer held: joined the ethics committee" in listed
    )
    verified = runner.invoke(app, ["access-log", "verify"], env=env)
    assert verified.exit_code == 0, verified.output
