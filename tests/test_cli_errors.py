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

UNCHANGED = "Nothing was published; what is served now, if anything, is unchanged."


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


def test_every_known_error_is_named_where_it_is_defined() -> None:
    """The handler names the package's errors instead of importing them: each name must still resolve."""
    import importlib

    from waymark.cli.errors import KNOWN, SAYS_WHAT_IS_UNCHANGED

    for name in KNOWN | SAYS_WHAT_IS_UNCHANGED:
        module, _, attribute = name.rpartition(".")
        found = getattr(importlib.import_module(module), attribute)
        assert isinstance(found, type) and issubclass(found, Exception), name
        assert f"{found.__module__}.{found.__qualname__}" == name


def test_a_subclass_of_a_known_error_is_handled_too() -> None:
    class Narrower(GovernanceError):
        pass

    assert _exit(Narrower("refused for a reason")) == REFUSED


def _help_run(command: str, *, then: str = "", watched: tuple[str, ...]) -> tuple[str, str]:
    """``waymark COMMAND --help`` in a fresh interpreter, then ``then``: its output, and which of
    ``watched`` it had imported (the last line, as a sorted list)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from waymark.cli import main\n"
        f"sys.argv = ['waymark', {command!r}, '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"{then}"
        f"print(sorted(m for m in {watched!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout, done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("command", ["data", "access", "directory", "access-log", "retention"])
def test_a_command_that_needs_no_model_does_not_load_the_model_libraries(command: str) -> None:
    """``main`` imports only the command asked for: ``waymark data validate`` does not load MLflow."""
    out, loaded = _help_run(command, watched=("mlflow", "sklearn", "fairlearn", "lightgbm", "shap"))
    assert loaded == "[]", out[-500:]
    assert "Usage: waymark" in out  # the command's own help, under the program's name


@pytest.mark.parametrize("command", ["model", "access", "db"])
def test_a_governance_command_does_not_load_the_numeric_libraries(command: str) -> None:
    """``waymark model promote`` reads the gate's verdict, not the audit's arithmetic: the gate's module
    imports the audit's, which defers numba and SciPy's statistics to the audit itself (about a second
    of every decision's start, measured 2026-12-07)."""
    out, loaded = _help_run(
        command,
        then="import waymark.fairness.gate, waymark.service.decisions\n",
        watched=("numba", "scipy.stats", "sklearn", "lightgbm"),
    )
    assert loaded == "[]", out[-500:]
