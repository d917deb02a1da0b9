"""``waymark evaluate impact`` and ``waymark outreach export``: did outreach help, and the record of it.

The impact evaluation reads the outreach record and the indicators from the service database
(``service.impact``), the outcomes, features and protected characteristics from the data folder, and
compares in the fairness package (``fairness.impact_report``: the one reader of characteristics);
the report is written as JSON and HTML and kept as an MLflow run, where the committee page reads it.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from waymark.cli.console import OutputFormat, out
from waymark.cli.errors import fail, handled
from waymark.fairness.impact import ImpactSettings
from waymark.fairness.impact_report import evaluate_impact, headline, render_html
from waymark.fairness.policy import load_policy
from waymark.models import registry
from waymark.models.settings import get_settings
from waymark.service.audit import load_key, operator
from waymark.service.db.engine import opened
from waymark.service.impact import (
    EXPERIMENT,
    REPORT_FILE,
    exported_interventions,
    first_contacts,
    indicators_since,
)

app = typer.Typer(help="Evaluations of what outreach did.", no_args_is_help=True)
outreach_app = typer.Typer(help="The record of outreach.", no_args_is_help=True)


def _since(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        raise fail(f"--since {value!r} is not a date like 2025-10-06") from None


@app.command("impact")
def impact_cmd(
    since: Annotated[
        str, typer.Option("--since", help="Evaluate contacts made from this date (YYYY-MM-DD).")
    ],
    data: Annotated[
        Path, typer.Option("--data", help="Data folder with the outcomes (and characteristics).")
    ],
    *,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for impact.json and impact.html.")],
    policy_file: Annotated[
        Path | None,
        typer.Option("--policy", help="Fairness policy TOML (small-cell rules; default packaged)."),
    ] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 200,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="table (for people) or json (for scripts).")
    ] = OutputFormat.TABLE,
) -> None:
    """Compare contacted students with comparable students not contacted; keep the report in MLflow."""
    settings = get_settings()
    start = _since(since)
    with handled(contract="the data breaks the contract; nothing was evaluated"), out.status("Evaluating"):
        engine = opened(settings)
        report = evaluate_impact(
            indicators_since(engine, start),
            first_contacts(engine),
            folder=data,
            since=start,
            policy=load_policy(policy_file),
            settings=ImpactSettings(resamples=resamples),
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        (out_dir / "impact.html").write_text(render_html(report), encoding="utf-8")
        registry.configure(settings)
        run_id = registry.record_evaluation(
            EXPERIMENT,
            f"impact since {start.date().isoformat()}",
            params={"since": start.date().isoformat(), "resamples": resamples, "data": str(data.resolve())},
            metrics=headline(report),
            folder=out_dir,
        )
    if output is OutputFormat.JSON:
        typer.echo(json.dumps({**report, "mlflow_run": run_id}, indent=2))
        return
    out.print(_line(report), highlight=False)
    out.print(f"Report: {out_dir / 'impact.html'}; kept as MLflow run {run_id}", highlight=False)


def _line(report: dict[str, Any]) -> str:
    overall = report.get("overall")
    if not overall or overall["effect"][0] is None:
        return "Too few contacted students, or none comparable, to evaluate."
    point, low, high = (100 * (v or 0.0) for v in overall["effect"])
    return (
        f"{overall['matched']} contacted students compared: completion {point:+.1f} points against "
        f"comparable students not contacted (interval {low:+.1f} to {high:+.1f}); a plain "
        f"comparison would say {100 * (overall['naive'][0] or 0.0):+.1f}."
    )


@outreach_app.command("export")
def export_cmd(
    out_file: Annotated[Path, typer.Option("--out", help="CSV to write: student_id, contacted_on.")],
) -> None:
    """Write when each student was first reached, for ``waymark train --interventions`` (audited)."""
    settings = get_settings()
    with handled():
        frame = exported_interventions(opened(settings), load_key(settings), caller=operator())
        out_file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=out_file.parent, delete=False, suffix=".tmp") as tmp:
            frame.to_csv(tmp, index=False)
        Path(tmp.name).replace(out_file)
    out.print(f"{len(frame)} students' first contacts written to {out_file}", highlight=False)
