"""The `waymark data` commands: exit codes, messages, and nothing written on failure."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.contract_folder import make_folder, with_cell
from waymark.cli import app

runner = CliRunner()


def test_synth_then_validate(tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    result = runner.invoke(app, ["data", "synth", "--students", "200", "--seed", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "access.csv").is_file()
    result = runner.invoke(app, ["data", "validate", str(out), "--json"])
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["ok"] is True
    assert payload["quality"]["overview"]["students"] == 200


def test_validate_exits_non_zero_and_names_the_violation(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, activity=with_cell("activity", 2, "count", "-1"))
    result = runner.invoke(app, ["data", "validate", str(folder)])
    assert result.exit_code == 1
    assert "activity.count [minimum]" in result.stdout
    assert "activity.csv row 2" in result.stdout
    payload = json.loads(runner.invoke(app, ["data", "validate", str(folder), "--json"]).stdout)
    assert payload["violations"][0]["examples"][0]["row"] == 2
    same = runner.invoke(app, ["data", "validate", str(folder), "--format", "json"]).stdout
    assert json.loads(same)["violations"] == payload["violations"]


def test_import_of_a_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["data", "import-oulad", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2
    assert "is not a folder" in result.stderr
    assert not (tmp_path / "out").exists()


def test_synth_will_not_overwrite_an_unrelated_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    result = runner.invoke(app, ["data", "synth", "--students", "20", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a Waymark data folder" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("week", ["0", "-1"])
def test_a_week_before_the_first_is_refused_before_anything_is_read(tmp_path: Path, week: str) -> None:
    result = runner.invoke(app, ["score", "--data", str(tmp_path / "absent"), "--week", week])
    assert result.exit_code == 2
    said = " ".join(result.stderr.replace("│", " ").split())
    assert "--week" in said and "greater than or equal to 1" in said


def test_a_database_that_cannot_be_reached_ends_a_command_with_one_line_and_its_own_exit_code(
    tmp_path: Path,
) -> None:
    """An operations review pointed the nightly `access-log verify` at a database that was down: it
    printed a 148-line traceback and exited 1, the code for a broken access log, so an alert could not
    tell an outage from tampering."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "WAYMARK_ENV": "development",
        "WAYMARK_DEV_KEY_DIR": str(tmp_path / "keys"),
        "WAYMARK_DATABASE_URL": f"postgresql+psycopg://nobody@127.0.0.1:{port}/none",
    }
    done = _verify_in(tmp_path, env=env)
    assert done.returncode == 3, done.stderr
    assert "the database could not be reached or used" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("WAYMARK_TIMEZONE", "Europe/Londres", "is not an IANA time zone"),
        ("WAYMARK_MARK_SCALE", "20-0", "the lowest mark must be at least 0 and below the highest"),
        ("WAYMARK_OPERATOR", "ana\u202e-1", "a staff id holds no control character"),
    ],
)
def test_a_setting_that_is_not_valid_is_named_with_its_rule_not_a_traceback(
    tmp_path: Path, name: str, value: str, rule: str
) -> None:
    """A mistyped setting ended every command in pydantic's traceback and exit code 1 (broken data)."""
    env = {**os.environ, "WAYMARK_ENV": "development", name: value}
    done = _verify_in(tmp_path, env=env)
    assert done.returncode == 2, done.stderr
    said = " ".join(done.stderr.split())
    assert f"{name}: {value!r}" in said and rule in said and "Traceback" not in said  # an override escaped


def test_outside_development_a_command_refuses_a_database_it_was_not_given(tmp_path: Path) -> None:
    """An operations review found that the service refused to start without WAYMARK_DATABASE_URL but
    the nightly `access-log verify` made a new SQLite file in its working directory and reported the
    empty log intact."""
    env = {k: v for k, v in os.environ.items() if k not in {"WAYMARK_DATABASE_URL", "WAYMARK_ENV"}}
    env["WAYMARK_AUDIT_KEY_FILE"] = str(tmp_path / "audit.key")
    (tmp_path / "audit.key").write_text("k" * 64)
    done = _verify_in(tmp_path, env=env)
    assert done.returncode == 2, done.stderr
    assert "WAYMARK_DATABASE_URL is not set" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "waymark.db").exists()


def _verify_in(folder: Path, *, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`waymark access-log verify` through the console entry point, in ``folder``."""
    return subprocess.run(
        [sys.executable, "-c", "from waymark.cli import main; main()", "access-log", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
    )
