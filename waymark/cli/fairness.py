"""``waymark fairness``: audit a candidate by protected characteristic for the ethics committee."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from waymark.cli.console import OutputFormat, out
from waymark.cli.engine_options import (
    URI_HELP,
    EngineName,
    EngineOption,
    SparkMasterOption,
    data_location,
    spark_session_for,
)
from waymark.cli.errors import handled
from waymark.fairness.gate import inconclusive_text, partly_confirmed_text, unconfirmed_characteristics
from waymark.fairness.policy import differences_from_default, load_policy
from waymark.fairness.report import unaudited_text, write_report
from waymark.fairness.run import AuditOutcome, audit_model
from waymark.models import registry
from waymark.models.registry import LoadedModel
from waymark.models.settings import Settings, get_settings
from waymark.service import decisions
from waymark.service.audit import operator
from waymark.service.db.engine import opened
from waymark.service.scoring.champion import ChampionUnavailableError, load_champion
from waymark.service.scoring.publish import folder_key, left_out_students

app = typer.Typer(help="Fairness audits for the ethics committee.", no_args_is_help=True)


@app.command("audit")
def audit_cmd(
    model: Annotated[
        str, typer.Option("--model", help="Model URI, e.g. models:/waymark-not-completing@candidate.")
    ],
    data: Annotated[
        str, typer.Option("--data", help=f"Data folder with protected_characteristics{URI_HELP}.")
    ],
    *,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for report.html, report.json, model_card.md.")
    ],
    policy_file: Annotated[
        Path | None, typer.Option("--policy", help="Policy TOML (default: the packaged one).")
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="table (for people) or json (for scripts).")
    ] = OutputFormat.TABLE,
    engine: EngineOption = EngineName.DUCKDB,
    spark_master: SparkMasterOption = None,
) -> None:
    """Audit a candidate by protected characteristic; write the report; tag the version with the gate."""
    audit(
        model,
        data_location(data, engine),
        out_dir=out_dir,
        policy_file=policy_file,
        settings=get_settings(),
        output=output,
        spark=spark_session_for(engine, spark_master),
    )


def audit(
    model: str,
    data: Path | str,
    *,
    out_dir: Path,
    policy_file: Path | None,
    settings: Settings,
    output: OutputFormat = OutputFormat.TABLE,
    spark: Any = None,
) -> str:
    """Audit ``model`` on ``data`` (erased and restricted students left out); record the gate, return it.

    With ``spark`` (a Spark session) the data is validated and the features built on Spark, and
    ``data`` may be a Hadoop URI.
    """
    registry.configure(settings)
    engine = opened(settings)
    with handled(contract="the data breaks the contract; nothing was audited"):
        policy = load_policy(policy_file)
        with out.status("Auditing"):
            champion = _champion(engine, registry.resolve(model).name)
            outcome = audit_model(
                model,
                data,
                policy=policy,
                exclude=left_out_students(engine, key=folder_key(data, spark=spark)),
                champion=champion,
                spark=spark,
            )
            report = write_report(outcome, out_dir, test_metrics=dict(registry.run(outcome.run_id).metrics))
            # Waymark's database holds the gate result; MLflow gets the files and a mirror of the tags.
            decisions.commit_audit(
                engine, model, outcome=outcome, report=report, folder=out_dir, actor=operator(settings).sub
            )
    if output is OutputFormat.JSON:
        typer.echo(json.dumps(_summary(outcome, out_dir), indent=2))
    else:
        _show(outcome, out_dir)
    if note := voided_note(champion, audited=outcome.model.version):
        typer.echo(note, err=True)  # on stderr whatever the format
    return outcome.gate


def voided_note(champion: LoadedModel | None, *, audited: str) -> str | None:
    """What auditing the served champion again does, said; None for any other version.

    A university's diagnostic re-audit of its champion took every indicator offline without a word,
    and staff were told the approval had been withdrawn.
    """
    if champion is None or champion.version != audited:
        return None
    return (
        f"note: version {champion.version} is the champion being served: this audit voids the "
        "committee's approval of it, and the service stops serving its indicators until the committee "
        f"reviews this audit (waymark model review --model models:/{champion.name}/{champion.version})"
    )


def _champion(engine: Any, name: str) -> LoadedModel | None:
    """The champion being served, its files checked against the recorded hash; None when there is none."""
    try:
        return load_champion(engine, name)
    except ChampionUnavailableError:  # the audit says there was no champion to compare with
        return None


def _summary(outcome: AuditOutcome, out_dir: Path) -> dict[str, Any]:
    """What ``--format json`` prints: the same facts as the table, null where a figure is not measurable."""
    return {
        "model": {
            "name": outcome.model.name,
            "version": outcome.model.version,
            "family": outcome.model.bundle.family,
        },
        "family_choice": outcome.family_choice or None,
        "training_mitigation": outcome.training_mitigation or None,
        "gate": outcome.gate,
        "checks": [
            {"check": c.title, "status": c.status, "reasons": list(c.reasons)} for c in outcome.checks
        ],
        "quality_gate": None
        if outcome.quality is None
        else {
            "status": outcome.quality.status,
            "champion": outcome.quality.champion_note,
            "checks": [
                {"check": c.title, "status": c.status, "reasons": list(c.reasons)}
                for c in outcome.quality.checks
            ],
        },
        "training_warnings": list(outcome.training_warnings),
        "calibration_within_modules": [w.published() for w in outcome.calibration_within_modules],
        "proxies": [
            {"characteristic": p.attribute, "auc": None if math.isnan(p.auc) else p.auc, "warning": p.warning}
            for p in outcome.proxies
        ],
        "report": {name: str(out_dir / name) for name in ("report.html", "report.json", "model_card.md")},
    }


#: Reasons of a failed or inconclusive check printed under it (the report has all).
SHOWN_REASONS = 3


def _show(outcome: AuditOutcome, out_dir: Path) -> None:
    # A pass is no clear breach found, never fairness shown (a college read a bare PASS as the latter).
    said = " (no clear breach found; not a finding that the model is fair)" if outcome.gate == "pass" else ""
    out.print(
        f"Fairness gate for {outcome.model.name} version {outcome.model.version}: "
        f"{outcome.gate.upper()}{said}",
        highlight=False,
    )
    for check in outcome.checks:
        out.print(f"  {check.status:>12}  {check.title}", highlight=False, markup=False)
        # What a failed or inconclusive check found, first (a university's PASS hid that one group's
        # calibration gap was -0.07 at two weeks, its interval reaching back inside the tolerance).
        if check.status in ("fail", "inconclusive"):
            for reason in check.reasons[:SHOWN_REASONS]:
                out.print(f"{'':16}{reason}", highlight=False, markup=False)
            if len(check.reasons) > SHOWN_REASONS:
                out.print(
                    f"{'':16}... and {len(check.reasons) - SHOWN_REASONS} more in the report", highlight=False
                )
    if outcome.gate == "inconclusive":
        unconfirmed = unconfirmed_characteristics(outcome.audits, outcome.checks)
        why = inconclusive_text(unconfirmed, any_confirmed=any(c.confirmed for c in outcome.checks))
        out.print(f"  note: {why}", highlight=False, markup=False)
    elif outcome.gate == "pass" and not any(c.status == "pass" for c in outcome.checks):
        out.print(
            "  note: no check passed whole (each has groups it could not assess or confirm), though "
            "some groups' comparisons had their estimate within the tolerance",
            highlight=False,
            markup=False,
        )
    if outcome.gate == "pass" and (partly := partly_confirmed_text(outcome.audits, outcome.checks)):
        out.print(f"  note: {partly}", highlight=False, markup=False)
    if outcome.unaudited_weeks:
        out.print(f"  note: {unaudited_text(list(outcome.unaudited_weeks))}", highlight=False, markup=False)
    if differs := differences_from_default(outcome.policy):
        out.print(
            f"  note: the policy differs from Waymark's default in: {'; '.join(differs)}",
            highlight=False,
            markup=False,
        )
    _show_quality(outcome)
    if outcome.training_mitigation:
        out.print(
            f"  trained with a mitigation: {outcome.training_mitigation}", highlight=False, markup=False
        )
    for warning in outcome.training_warnings:
        out.print(f"  warning from training: {escape(warning)}", highlight=False)
    for proxy in outcome.proxies:
        if proxy.warning:
            best = (
                f" on average over its groups, and tell {proxy.group} apart from the rest with AUC "
                f"{proxy.group_auc:.2f}"
                if proxy.group is not None
                else ""
            )
            out.print(
                f"  warning: the features predict {proxy.attribute} with AUC {proxy.auc:.2f}{best}",
                highlight=False,
                markup=False,
            )
    out.print(
        f"Report: {out_dir / 'report.html'} (also report.json, model_card.md; logged to MLflow)",
        highlight=False,
    )


def _show_quality(outcome: AuditOutcome) -> None:
    quality = outcome.quality
    if quality is None:
        return
    # the note on its own line: "FAIL (there is no approved champion ...: this check is skipped)" was read
    # as the reason for the failure, which was the ECE ceiling two lines down (a Chilean university)
    out.print(f"Quality gate: {quality.status.upper()}", highlight=False, markup=False)
    for check in quality.checks:
        out.print(f"  {check.status:>12}  {check.title}", highlight=False, markup=False)
        if check.status not in ("pass", "skipped"):
            for reason in check.reasons:
                out.print(f"                {reason}", highlight=False, markup=False)
    out.print(f"  champion comparison: {quality.champion_note}", highlight=False, markup=False)
