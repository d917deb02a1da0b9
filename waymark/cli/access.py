"""``waymark access``: load who supports whom, and their information-security training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from waymark.cli.console import out
from waymark.cli.errors import handled
from waymark.models.settings import get_settings
from waymark.service.db.engine import up_to_date
from waymark.service.grants import import_attestations, import_grants

app = typer.Typer(help="Staff relationships: who supports whom.", no_args_is_help=True)


@app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="CSV: staff_id,relationship,scope_type,scope_id.")],
    attestations: Annotated[
        Path | None, typer.Option(help="CSV staff_id,expires_on of information-security training.")
    ] = None,
) -> None:
    """Replace the staff relationships with those in FILE (all or nothing)."""
    engine = up_to_date(get_settings().database_url)
    with handled():
        loaded = import_grants(engine, file)
        trained = import_attestations(engine, attestations) if attestations else 0
    out.print(
        f"Loaded {loaded:,} staff relationships"
        + (f" and {trained:,} attestations." if attestations else ".")
    )
