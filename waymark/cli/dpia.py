"""``waymark dpia``: a draft data protection impact assessment filled from this deployment's facts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from waymark.cli.console import out
from waymark.cli.errors import handled
from waymark.models.settings import get_settings
from waymark.service import transparency
from waymark.service.dpia import TO_COMPLETE, draft
from waymark.service.runtime import build_runtime


def dpia_cmd(
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the Markdown draft here (default: print it).")
    ] = None,
) -> None:
    """Draft the DPIA from the deployment's facts; the institution completes the parts marked so."""
    settings = get_settings()
    with handled():
        runtime = build_runtime(settings)
    try:
        statement = transparency.statement(
            transparency.gather(runtime), transparency.load_wording(settings.transparency_file)
        )
    finally:
        runtime.close()
    text = draft(statement, made_at=datetime.now(UTC))
    if out_file is None:
        typer.echo(text)
        return
    out_file.write_text(text, encoding="utf-8")
    left = text.count(TO_COMPLETE)
    out.print(
        f"Wrote {out_file}: the deployment's facts filled in, {left} parts for the institution to complete."
    )
