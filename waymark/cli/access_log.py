"""``waymark access-log``: verify the keyed chain of the access log, sign its head, export a student's."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from waymark.cli.console import err, out
from waymark.cli.errors import BROKEN, fail, handled
from waymark.models.settings import get_settings
from waymark.service import audit
from waymark.service.db.engine import opened
from waymark.service.spreadsheet import safe_cell

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
    found = audit.verify_log(opened(settings), key, checkpoint=point)
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
    typer.echo(json.dumps(audit.checkpoint_log(opened(settings), key)))


@app.command("seal")
def seal_cmd(
    unkeyed_records: Annotated[
        int,
        typer.Option(help="How many records, from the first, were written before the chain was keyed."),
    ],
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="A file from `waymark access-log checkpoint` the log must still verify against."),
    ] = None,
) -> None:
    """Seal the anchor of a log begun before its chain was keyed (revision 0003), as the database's owner.

    Only for such a log: the service refuses to write to one whose anchor claims unkeyed records
    without a seal, since that is also how a forged log looks. Sealed only when a record after them
    is keyed with the key and follows them, or the log verifies against --checkpoint.
    """
    settings = get_settings()
    point = _read(checkpoint) if checkpoint else None
    with handled():
        key = audit.load_key(settings)
        audit.seal_unkeyed(opened(settings), key, records=unkeyed_records, checkpoint=point)
    out.print(f"Sealed: records 1 to {unkeyed_records:,} are read as unkeyed.", highlight=False)


@app.command("export")
def export_cmd(
    *,
    student: Annotated[str, typer.Option(help="The student whose access log is exported.")],
    purpose: Annotated[
        str, typer.Option("--for", help=f"Why: one of {', '.join(audit.EXPORT_PURPOSES)} (CoP §2(xvii)).")
    ],
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
) -> None:
    """Print one student's access log (who read what, when, for what purpose); the export is recorded."""
    settings = get_settings()
    if fmt not in ("csv", "json"):
        raise fail(f"--format is csv or json, not {fmt!r}")
    if purpose not in audit.EXPORT_PURPOSES:
        raise fail(f"--for is one of {', '.join(audit.EXPORT_PURPOSES)}, not {purpose!r}")
    with handled():
        key = audit.load_key(settings)
    rows = audit.export_for_student(
        opened(settings), key, student_id=student, purpose=purpose, caller=audit.operator()
    )
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=["at", "actor", "role", "purpose", "action", "request_id"])
    writer.writeheader()
    writer.writerows({k: safe_cell(v) for k, v in row.items()} for row in rows)
