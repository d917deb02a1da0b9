"""The command line's one error handler: known errors become a message and an exit code, bugs do not."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from tests.contract_folder import make_folder, with_cell
from waymark.cli.errors import BROKEN, REFUSED, handled
from waymark.models.data import ContractViolation, validate_folder
from waymark.service.decisions import GovernanceError
from waymark.service.scoring import ScoringError, ScoringInProgressError

UNCHANGED = "Nothing was published; the previous batch is still served."


def _violation(tmp_path: Path) -> ContractViolation:
    folder = make_folder(tmp_path, activity=with_cell("activity", 2, "count", "-1"))
    return ContractViolation(validate_folder(folder))


def _exit(
    error: Exception,
    contract: str | None = None,
    unchanged: str | None = None,
    also: tuple[type[Exception], ...] = (),
) -> int:
    with pytest.raises(typer.Exit) as raised, handled(contract=contract, unchanged=unchanged, also=also):
        raise error
    return raised.value.exit_code


def test_a_refusal_is_its_message_and_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit(GovernanceError("no approval of the latest audit is recorded")) == REFUSED
    assert "error: no approval of the latest audit is recorded" in capsys.readouterr().err


def test_broken_data_prints_the_report_then_what_it_means_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _exit(_violation(tmp_path), contract="the data breaks the contract; nothing was trained") == BROKEN
    printed = capsys.readouterr().err
    assert "activity.count [minimum]" in printed  # the rule's name survives rich's markup
    assert printed.rstrip().endswith("error: the data breaks the contract; nothing was trained")


def test_what_a_failure_left_unchanged_follows_the_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _exit(ScoringError("stored rows differ"), unchanged=UNCHANGED) == REFUSED
    assert f"stored rows differ\n{UNCHANGED}" in capsys.readouterr().err
    assert _exit(_violation(tmp_path), unchanged=UNCHANGED) == REFUSED  # no contract text: a refusal
    assert UNCHANGED in capsys.readouterr().err


def test_a_message_that_already_says_what_is_unchanged_is_not_repeated(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _exit(
        ScoringInProgressError("another run is writing. This run changed nothing."), unchanged=UNCHANGED
    )
    assert UNCHANGED not in capsys.readouterr().err


def test_an_unknown_error_keeps_its_traceback() -> None:
    with pytest.raises(KeyError), handled():
        raise KeyError("a bug")
    with pytest.raises(ValueError, match="a bug"), handled():
        raise ValueError("a bug")


def test_a_command_may_report_its_own_input_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit(ValueError("--students must be at least 1"), also=(ValueError,)) == REFUSED
    assert "--students must be at least 1" in capsys.readouterr().err
