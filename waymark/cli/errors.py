"""The command line's one error handler: the package's known errors become a reason and an exit code.

Exit codes: 1 when the data (or the access log) is broken, after a report of how; 2 when a command is
refused, with the reason (bad input, an unsafe configuration, a governance rule, a missing model or
store); 3 when the database could not be reached or used (``unreachable``, at the entry point). Any
other exception is a bug, and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from pydantic import ValidationError
from rich.markup import escape

from waymark.cli.console import err
from waymark.models.data import ContractViolation

BROKEN, REFUSED, UNAVAILABLE = 1, 2, 3

#: Errors that say a database could not be reached or used (named: importing SQLAlchemy here would load
#: it before every command).
UNREACHABLE: frozenset[str] = frozenset({"sqlalchemy.exc.OperationalError", "sqlalchemy.exc.InterfaceError"})


def unreachable(exc: BaseException) -> str:
    """What a command says when the database could not be reached or used ("" for any other error)."""
    if not _is(exc, UNREACHABLE):
        return ""
    cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    said = cause[0] if cause else type(exc).__name__
    return (
        f"the database could not be reached or used ({said}); the command stopped, and its unfinished "
        "transaction was not written (a scoring run it had begun is cleared by the next). Check "
        "WAYMARK_DATABASE_URL, that the database server is up and has room, then run it again."
    )


def bad_settings(exc: BaseException) -> str:
    """What a command says when a setting in the environment is not valid ("" for any other error).

    A mistyped ``WAYMARK_TIMEZONE`` or ``WAYMARK_MARK_SCALE`` had ended every command in pydantic's
    traceback; it is bad input, named with its rule.
    """
    if not isinstance(exc, ValidationError) or exc.title != "Settings":
        return ""
    named = (
        f"{'.'.join(str(part) for part in found['loc']) or 'a setting'}: "
        + found["msg"].removeprefix("Value error, ")
        for found in exc.errors()
    )
    return "a setting is not valid: " + "; ".join(named) + ". Nothing was done; correct it and run again."


# Raised by the packages with a message written for the person at the terminal. Named, not imported:
# importing them would load MLflow, scikit-learn and Fairlearn before every command, even ``--help``.
KNOWN: frozenset[str] = frozenset(
    {
        "waymark.models.data.publish.OutputFolderError",
        "waymark.training.ingest.oulad.OuladSourceError",
        "waymark.training.split.SplitError",
        "waymark.training.pipeline.TrainingConfigError",
        "waymark.fairness.policy.PolicyError",
        "waymark.fairness.reduction.MitigationError",
        "waymark.fairness.run.AuditError",
        "waymark.models.registry.ModelNotFoundError",
        "waymark.models.bundle.BundleIntegrityError",
        "waymark.service.decisions.GovernanceError",
        "waymark.service.security.ConfigurationError",
        "waymark.service.grants.ImportRefused",
        "waymark.service.directory.DirectoryRefused",
        "waymark.service.scoring.champion.ChampionUnavailableError",
        "waymark.service.scoring.errors.ScoringError",
        "waymark.service.scoring.publish.ErasureKeyError",
        "waymark.models.spark.session.SparkUnavailable",
        "waymark.service.db.engine.DatabaseNotNamed",
        "waymark.service.db.engine.ProductionDatabase",
        "waymark.models.vocabulary.LabellingWordsError",
        "waymark.models.data.sensitive.SensitiveTermsError",
        "waymark.service.db.engine.MigrationRefused",
    }
)
# Known errors whose message already says what the command left as it was.
SAYS_WHAT_IS_UNCHANGED: frozenset[str] = frozenset({"waymark.service.scoring.errors.ScoringInProgressError"})


def is_known(exc: BaseException, names: frozenset[str]) -> bool:
    """True when ``exc`` is an instance of a class named in ``names`` (its class or any base)."""
    return _is(exc, names)


def _is(exc: BaseException, names: frozenset[str]) -> bool:
    """True when ``exc`` is an instance of a class named in ``names`` (its class or any base)."""
    return any(f"{c.__module__}.{c.__qualname__}" in names for c in type(exc).__mro__)


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
    except Exception as exc:
        if isinstance(exc, also) or _is(exc, KNOWN):
            raise fail(_message(exc, unchanged)) from exc
        raise


def _message(exc: Exception, unchanged: str | None) -> str:
    if unchanged is None or _is(exc, SAYS_WHAT_IS_UNCHANGED):
        return str(exc)
    return f"{exc}\n{unchanged}"
