"""``waymark monitor``: has the data drifted since training and the last run, and how steady is the list.

``waymark monitor feedback``: staff feedback on indicators, counted by module and factor family.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from waymark.cli.console import OutputFormat, out
from waymark.cli.errors import fail, handled
from waymark.fairness.monitoring import LEFT_OUT_WITHHELD, group_drift_of_folder
from waymark.fairness.policy import load_policy as load_fairness_policy
from waymark.models.settings import get_settings
from waymark.models.targets import Target
from waymark.service import monitoring
from waymark.service.db.engine import opened
from waymark.service.feedback_report import feedback_summary

app = typer.Typer(
    help="Drift between scoring runs, stability of the outreach list, staff feedback.",
    invoke_without_command=True,
)
FormatOption = Annotated[
    OutputFormat, typer.Option("--format", help="table (for people) or json (for scripts).")
]


@app.callback()
def monitor_cmd(
    ctx: typer.Context,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Data folder whose protected characteristics give the group figures (aggregate, "
            "small groups withheld); without it, no group figures.",
        ),
    ] = None,
    *,
    target: Annotated[Target, typer.Option(help="Which served run to monitor.")] = Target.NOT_COMPLETING,
    policy: Annotated[Path | None, typer.Option(help="Monitoring policy TOML (default: packaged).")] = None,
    fairness_policy: Annotated[
        Path | None,
        typer.Option(help="Fairness policy whose min_group_size withholds small groups and modules."),
    ] = None,
    output: FormatOption = OutputFormat.TABLE,
) -> None:
    """Compare the served run with training and the run before; store the report for the committee."""
    if ctx.invoked_subcommand is not None:
        return
    engine = opened(get_settings())
    with handled(also=(monitoring.MonitoringError,)):
        chosen = monitoring.load_policy(policy)
        disclosure = load_fairness_policy(fairness_policy).min_group_size
        report = monitoring.monitor(engine, target=target.value, policy=chosen, min_students=disclosure)
        if data is not None:
            report["groups"] = _groups(
                engine, report, data=data, policy=chosen, fairness_policy=fairness_policy
            )
            report["flags"] += (report["groups"] or {}).get("flags", [])
        report_id = monitoring.store(engine, report, target=target.value)
    if output is OutputFormat.JSON:
        typer.echo(json.dumps({"report_id": report_id, **report}, indent=2))
        return
    _show(report, report_id)


def _groups(
    engine: Any,
    report: dict[str, Any],
    *,
    data: Path,
    policy: monitoring.MonitoringPolicy,
    fairness_policy: Path | None,
) -> dict[str, Any] | None:
    previous, reference = report["previous_run"], monitoring.audit_reference(engine, report["run"]["id"])
    if previous is None and reference is None:
        return None
    rules = load_fairness_policy(fairness_policy)
    # A run students left after it was scored (an objection, an erasure) publishes no group figure:
    # beside an earlier report of the same run, its groups would give back theirs (a red team's finding).
    if monitoring.left_out_since_scored(engine, report["run"]["id"]):
        said = LEFT_OUT_WITHHELD.format(which="the run scored last", when="the next run")
        return _no_groups(rules.min_group_size, said)
    note = None
    if previous is not None and monitoring.left_out_since_scored(engine, previous["id"]):
        note = LEFT_OUT_WITHHELD.format(which="the run before", when="the run after next").replace(
            "No group figures in this report", "Not compared with the run before"
        )
        previous = None
        if reference is None:
            return _no_groups(rules.min_group_size, note)
    drift = group_drift_of_folder(
        monitoring.estimates_of(engine, report["run"]["id"]),
        None if previous is None else monitoring.estimates_of(engine, previous["id"]),
        folder=data,
        min_size=rules.min_group_size,
        psi_flag=policy.group_psi_flag,
        intersections=rules.intersections,
        min_judged=policy.min_rows,
        reference=reference,
        rounding=rules.count_rounding,
    )
    if drift is not None and note is not None:
        drift["previous_withheld"] = note
    return drift


def _no_groups(min_size: int, why: str) -> dict[str, Any]:
    return {"groups": [], "withheld": {}, "min_group_size": min_size, "flags": [], "previous_withheld": why}


def _show(report: dict[str, Any], report_id: int) -> None:
    run, previous = report["run"], report["previous_run"]
    against = f"run {previous['id']}" if previous else "no earlier run"
    out.print(
        f"Report {report_id}: run {run['id']} ({run['model']} version {run['version']}, data as of "
        f"{run['data_as_of']}) against training ({report['reference']} reference) and {against}.",
        highlight=False,
    )
    flags = Table("what", "where", "name", "value", "threshold", title=f"{len(report['flags'])} flagged")
    for f in report["flags"]:
        flags.add_row(f["kind"], f["scope"], f["name"], f"{f['value']:.3f}", f"{f['threshold']:.3f}")
    out.print(flags)
    turnover = Table("module", "list", "listed", "turnover", "with smoothing", title="Outreach list turnover")
    for row in report["stability"]:
        if "turnover" in row:
            turnover.add_row(
                row["module"],
                f"top {row['share']:.0%}",
                str(row["listed"]),
                _share(row["turnover"]),
                _share(row["turnover_smoothed"]),
            )
    out.print(turnover)
    if withheld := report.get("stability_withheld"):
        out.print(withheld, highlight=False)


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


@app.command("feedback")
def feedback_cmd(
    since: Annotated[str | None, typer.Option(help="Only feedback from this date (YYYY-MM-DD).")] = None,
    *,
    output: FormatOption = OutputFormat.TABLE,
) -> None:
    """Staff feedback on indicators, counted by module and by factor family (for the next model)."""
    try:
        start = datetime.fromisoformat(since) if since else None
    except ValueError:
        raise fail(f"--since {since!r} is not a date like 2025-01-31") from None
    summary = feedback_summary(opened(get_settings()), since=start)
    if output is OutputFormat.JSON:
        typer.echo(json.dumps(summary, indent=2))
        return
    values = sorted(summary["by_value"])
    out.print(f"{summary['total']} pieces of feedback ({summary['with_note']} with a note).", highlight=False)
    for title, table in (("By factor family", summary["by_family"]), ("By module", summary["by_module"])):
        shown = Table(title.split()[-1], *values, title=title)
        for key, counts in table.items():
            shown.add_row(counts.get("title", key), *(str(counts.get(v, 0)) for v in values))
        out.print(shown)
