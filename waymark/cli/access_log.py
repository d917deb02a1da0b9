"""``waymark access-log``: verify the keyed chain of the access log, and sign its head."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from waymark.cli.console import err, out
from waymark.cli.errors import BROKEN, fail, handled
from waymark.models.settings import get_settings
from waymark.service import audit
from waymark.service.db.engine import up_to_date

app = typer.Typer(help="The tamper-evident access audit log.", no_args_is_help=True)


@app.command("verify")
def verify_cmd(
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="A file from `waymark access-log checkpoint`, kept outside the database."),
    ] = None,
) -> None:
    """Check the keyed chain of the access log (and against a checkpoint); non-zero exit if broken."""
    settings = get_settings()
    with handled():
        key = audit.load_key(settings)
    point = _read(checkpoint) if checkpoint else None
    found = audit.verify_log(up_to_date(settings.database_url), key, checkpoint=point)
    records, problems = found.records, found.problems
    if problems:
        for problem in problems:
            err.print(problem, highlight=False, markup=False)
        raise fail(f"the access log is NOT intact: {len(problems)} problem(s) in {records:,} records", BROKEN)
    against = f", and it still holds the record checkpoint {checkpoint} names" if checkpoint else ""
    out.print(f"The access log is intact: {records:,} records, chain verified{against}.", highlight=False)


def _read(checkpoint: Path) -> dict[str, Any]:
    try:
        point: dict[str, Any] = json.loads(checkpoint.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read the checkpoint {checkpoint}: {exc}") from exc
    return point


@app.command("checkpoint")
def checkpoint_cmd() -> None:
    """Print a signed head of the access log (JSON) to keep outside the database."""
    settings = get_settings()
    with handled():
        key = audit.load_key(settings)
    typer.echo(json.dumps(audit.checkpoint_log(up_to_date(settings.database_url), key)))
