"""The ``waymark`` command line (PRODUCT §7). Thin: it parses, calls a package function, and reports.

One module per command group; this one assembles them. Errors become messages and exit codes in one
place (``errors``); no command opens a database session or imports MLflow.

The console entry point (``main``) imports only the module of the command asked for, so that a command
which needs neither MLflow nor scikit-learn (``waymark data validate``, ``waymark access import``, ...)
does not spend seconds loading them; ``app`` (the whole command line, for ``--help`` and tests) is
assembled on first use.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

__all__ = ["main"]  # and ``app``, built on first use (``__getattr__``)

HELP = "Waymark: early-warning learning analytics that never labels students."

# Each command: the module that holds it, and either ``("command", function)`` or ``("group", typer app)``.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "train": ("train", "command", "train_cmd"),
    "score": ("score", "command", "score_cmd"),
    "demo": ("demo", "command", "demo_cmd"),
    "serve": ("serve", "command", "serve_cmd"),
    "token": ("serve", "command", "token_cmd"),
    "dpia": ("dpia", "command", "dpia_cmd"),
    "data": ("data", "group", "app"),
    "fairness": ("fairness", "group", "app"),
    "model": ("model", "group", "app"),
    "access": ("access", "group", "app"),
    "directory": ("directory", "group", "app"),
    "access-log": ("access_log", "group", "app"),
    "db": ("db", "group", "app"),
    "retention": ("retention", "group", "app"),
    "monitor": ("monitor", "group", "app"),
    "evaluate": ("evaluate", "group", "app"),
    "outreach": ("evaluate", "group", "outreach_app"),
}


def _app(names: list[str]) -> typer.Typer:
    """A command line holding the commands ``names`` (each module imported as it is added)."""
    built = typer.Typer(help=HELP, no_args_is_help=True, pretty_exceptions_enable=False)
    if len(names) == 1:  # one command alone would become the root; keep it a subcommand

        @built.callback()
        def _root() -> None:
            """Waymark: early-warning learning analytics that never labels students."""

    for name in names:
        module, kind, attribute = COMMANDS[name]
        found = getattr(importlib.import_module(f"waymark.cli.{module}"), attribute)
        if kind == "command":
            built.command(name)(found)
        else:
            built.add_typer(found, name=name)
    return built


def __getattr__(name: str) -> Any:
    if name == "app":  # the whole command line, built once
        whole = _app(list(COMMANDS))
        globals()["app"] = whole
        return whole
    raise AttributeError(name)


def main() -> None:
    """Console-script entry point: the command asked for alone, or the whole command line.

    A database that cannot be reached ends any command with one line and exit code 3
    (``errors.UNAVAILABLE``), not a traceback and 1, which says the data or the access log is broken:
    a scheduler's alert on a nightly ``access-log verify`` can tell an outage from tampering. A setting
    that is not valid ends it with its name and rule and exit code 2 (``errors.bad_settings``).
    """
    asked = sys.argv[1] if len(sys.argv) > 1 else None
    command = _app([asked]) if asked in COMMANDS else __getattr__("app")
    try:
        command()
    except Exception as exc:  # Click handles its own errors and exits; anything else comes here
        from waymark.cli.errors import KNOWN, REFUSED, UNAVAILABLE, bad_settings, fail, is_known, unreachable

        if said := unreachable(exc):
            sys.exit(fail(said, UNAVAILABLE).exit_code)
        if said := bad_settings(exc):
            sys.exit(fail(said, REFUSED).exit_code)
        if is_known(exc, KNOWN):  # a known refusal raised outside a command's own handler
            sys.exit(fail(str(exc), REFUSED).exit_code)
        raise
