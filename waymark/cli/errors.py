"""The command line's one error handler: the package's known errors become a reason and an exit code.

Exit codes: 1 when the data (or the access log) is broken, after a report of how; 2 when a command is
refused, with the reason (bad input, an unsafe configuration, a governance rule, a missing model or
store). Any other exception is a bug, and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.markup import escape

from waymark.cli.console import err
from waymark.fairness.policy import PolicyError
from waymark.fairness.run import AuditError
from waymark.models.bundle import BundleIntegrityError
from waymark.models.data import ContractViolation, OutputFolderError
from waymark.models.registry import ModelNotFoundError
from waymark.service.decisions import GovernanceError
from waymark.service.directory import DirectoryRefused
from waymark.service.grants import ImportRefused
from waymark.service.scoring import ChampionUnavailableError, ScoringError, ScoringInProgressError
from waymark.service.security import ConfigurationError
from waymark.training.ingest.oulad import OuladSourceError
from waymark.training.pipeline import TrainingConfigError
from waymark.training.split import SplitError

BROKEN, REFUSED = 1, 2

# Raised by the packages with a message written for the person at the terminal.
KNOWN: tuple[type[Exception], ...] = (
    OutputFolderError,
    OuladSourceError,
    SplitError,
    TrainingConfigError,
    PolicyError,
    AuditError,
    ModelNotFoundError,
    BundleIntegrityError,
    GovernanceError,
    ConfigurationError,
    ImportRefused,
    DirectoryRefused,
    ChampionUnavailableError,
    ScoringError,
)
# Known errors whose message already says what the command left as it was.
SAYS_WHAT_IS_UNCHANGED: tuple[type[Exception], ...] = (ScoringInProgressError,)


def fail(message: str, code: int = REFUSED) -> typer.Exit:
    """Print ``error: message`` to standard error; returns the exit for the caller to raise."""
    err.print(f"[bold]error:[/bold] {escape(message)}", highlight=False)
    return typer.Exit(code)


@contextmanager
def handled(
    *, contract: str | None = None, unchanged: str | None = None, also: tuple[type[Exception], ...] = ()
) -> Iterator[None]:
    """Turn a known error raised inside the block into its message and exit code.

    Parameters
    ----------
    contract
        What broken data means here ("the import broke the contract; nothing was written"): a
        ``ContractViolation`` prints its report, then this, and exits 1. Without it a violation is
        refused like any other known error.
    unchanged
        What a failure leaves as it was, added on a line of its own after the error's message.
    also
        Further errors this command reports by their message (such as ``ValueError`` for its inputs).
    """
    try:
        yield
    except ContractViolation as exc:
        if contract is None:
            raise fail(_message(exc, unchanged)) from exc
        err.print(exc.report.to_text(), highlight=False, markup=False)
        raise fail(contract, BROKEN) from exc
    except (*KNOWN, *also) as exc:
        raise fail(_message(exc, unchanged)) from exc


def _message(exc: Exception, unchanged: str | None) -> str:
    if unchanged is None or isinstance(exc, SAYS_WHAT_IS_UNCHANGED):
        return str(exc)
    return f"{exc}\n{unchanged}"
