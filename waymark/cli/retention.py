"""``waymark retention``: apply the retention policy (CoP §12), for a scheduler."""

from __future__ import annotations

import typer

from waymark.cli.console import out
from waymark.cli.errors import handled
from waymark.models.settings import get_settings
from waymark.service import audit, retention
from waymark.service.audit import operator
from waymark.service.db.engine import opened

app = typer.Typer(help="The retention policy (CoP §12).", no_args_is_help=True)


@app.command("run")
def run_cmd() -> None:
    """Apply the retention policy now (for a scheduler); the run is recorded in the access log."""
    settings = get_settings()
    with handled():
        key = audit.load_key(settings)
    days, log_days = settings.retention_days, settings.access_log_retention_days
    done = retention.run(
        opened(settings),
        key,
        caller=operator(),
        retention_days=days,
        access_log_days=log_days,
    )
    out.print(
        f"Retention ({days} days, before {done.cutoff:%Y-%m-%d}): removed "
        f"{done.indicators:,} indicators of {done.runs:,} unserved runs, {done.feedback:,} feedback notes, "
        f"{done.interventions:,} interventions, {done.contacts:,} contacts, "
        f"{done.directory_entries:,} directory entries, {done.consents:,} lapsed consents, "
        f"{done.requests:,} closed requests, {done.restrictions_ended:,} restrictions past their notice. "
        f"Access-log records past their own {log_days}-day period: "
        f"{done.access_log_past_period:,} (kept: archiving them is not automated yet, docs/operations.md).",
        highlight=False,
    )
