"""``waymark train``: features, a later-cohort evaluation, tracking in MLflow, a registered candidate."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from waymark.cli.console import OutputFormat, builder_line, err, out
from waymark.cli.engine_options import (
    URI_HELP,
    EngineName,
    EngineOption,
    SparkMasterOption,
    data_location,
    spark_session_for,
)
from waymark.cli.errors import fail, handled
from waymark.fairness.policy import load_policy
from waymark.fairness.reduction import GridSearchMitigation, mitigation_for
from waymark.models.data import presentation_name
from waymark.models.data.publish import local_folder
from waymark.models.estimators import FAMILIES
from waymark.models.registry import keep_text
from waymark.models.settings import Settings, get_settings
from waymark.models.targets import DEFAULT_NAMES, Target
from waymark.service import roles_held
from waymark.service.audit import load_key, operator
from waymark.service.db.engine import opened, up_to_date
from waymark.service.feedback_report import feedback_summary
from waymark.service.impact import exported_interventions
from waymark.service.scoring.publish import folder_key, left_out_students
from waymark.training.censoring import POLICIES
from waymark.training.fitting import FitConfig
from waymark.training.pipeline import TrainingOutcome, train_folder
from waymark.training.reweighting import MitigationRecord
from waymark.training.tracking import Registered, log_and_register

EVALUATION_WEEKS = (2, 4, 8, 12, 16, 20, 24, 30)
#: Test presentations of at most this many weeks are shown every week: a Swedish university's 5-week
#: courses showed weeks 2 and 4 only, and the warning under the table named week 5.
EVERY_WEEK_UP_TO = 12
NOT_MEASURABLE = "—"


def train_cmd(
    data: Annotated[str, typer.Option("--data", help=f"Data folder in the contract{URI_HELP}.")],
    target: Annotated[
        str, typer.Option(help="not_completing or next_assessment_nonsubmission.")
    ] = "not_completing",
    *,
    name: Annotated[str | None, typer.Option(help="Registered model name (default by target).")] = None,
    test_from: Annotated[
        str | None,
        typer.Option(
            help="First start date (YYYY-MM-DD) of the test presentations; default: the data "
            "folder's recommendation, else the latest start date with outcomes known (going back to hold "
            "a quarter of a main intake; training warns when that is under a quarter of a year's "
            "registrations)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    family: Annotated[
        list[str] | None, typer.Option(help="Train only this family (logistic, gbm); repeatable.")
    ] = None,
    gbm_estimators: Annotated[int, typer.Option(help="Boosting rounds of the gbm family.")] = 300,
    search: Annotated[
        bool, typer.Option(help="Search the gbm family's settings on the validation presentations (slower).")
    ] = False,
    monotone: Annotated[
        bool, typer.Option(help="Fix the direction of activity, submissions and marks in the gbm family.")
    ] = False,
    intervention_policy: Annotated[
        str,
        typer.Option(
            help="Registrations contacted before their outcome: ignore, exclude_after_contact or weight "
            "(docs/training.md)."
        ),
    ] = "ignore",
    interventions: Annotated[
        Path | None,
        typer.Option(
            help="CSV of first contacts (student_id, contacted_on; `waymark outreach export`); "
            "default: the service database's record."
        ),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            help="The ethics committee's fairness policy: its \\[mitigation] table, when switched on, is "
            "applied in training (docs/fairness.md). Default: the packaged policy, which has none."
        ),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="table (for people) or json (for scripts).")
    ] = OutputFormat.TABLE,
    engine: EngineOption = EngineName.DUCKDB,
    spark_master: SparkMasterOption = None,
) -> None:
    """Build features, evaluate on later presentations, track in MLflow, register a candidate."""
    chosen = _target(target)
    unknown = [f for f in family or [] if f not in FAMILIES]
    if unknown:
        raise fail(f"unknown family {', '.join(unknown)}; choose from: {', '.join(FAMILIES)}")
    if intervention_policy not in POLICIES:
        raise fail(
            f"unknown --intervention-policy {intervention_policy!r}; choose from: {', '.join(POLICIES)}"
        )
    config = FitConfig(
        seed=seed,
        families=tuple(family or FitConfig().families),
        gbm_estimators=gbm_estimators,
        search=search,
        monotone=monotone,
        intervention_policy=intervention_policy,
    )
    run_training(
        data_location(data, engine),
        chosen,
        config=config,
        split_date=_date(test_from),
        name=name or DEFAULT_NAMES[chosen],
        settings=get_settings(),
        output=output,
        interventions=interventions,
        spark=spark_session_for(engine, spark_master),
        policy_file=policy,
    )


def _target(value: str) -> Target:
    try:
        return Target(value)
    except ValueError:
        raise fail(f"unknown target {value!r}; choose one of: {', '.join(t.value for t in Target)}") from None


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise fail(f"--test-from {value!r} is not a date like 2014-01-01") from None


def run_training(
    data: Path | str,
    target: Target,
    *,
    config: FitConfig,
    split_date: date | None,
    name: str,
    settings: Settings,
    output: OutputFormat = OutputFormat.TABLE,
    interventions: Path | None = None,
    spark: Any = None,
    policy_file: Path | None = None,
) -> None:
    """Train on ``data`` (erased and restricted students left out), register it as ``name``, and report.

    With ``spark`` (a Spark session) the data is validated and the features built on Spark, and
    ``data`` may be a Hadoop URI. The fairness policy's ``[mitigation]`` (``policy_file``, else the
    packaged policy's, which is off) is applied when switched on.
    """
    with (
        handled(contract="the data breaks the contract; nothing was trained"),
        out.status("Training") as status,
    ):
        if refused := roles_held.operator_may_build(engine := opened(settings), settings):
            raise fail(refused)
        mitigation = _mitigation(policy_file, data, spark=spark)
        outcome = train_folder(
            data,
            target=target,
            config=config,
            test_from=split_date,
            progress=lambda m: status.update(f"Training: {m}"),
            exclude=left_out_students(engine, key=folder_key(data, spark=spark)),
            interventions=_outreach(config, interventions, settings=settings),
            spark=spark,
            mitigation=mitigation,
        )
        status.update("Training: logging to MLflow and registering")
        registered = log_and_register(outcome, name, settings=settings)
        builder, recorded = roles_held.operator_builds(engine, settings)  # refused as any model's approver
        # Staff feedback on the indicators so far, kept beside the model it can inform (docs/monitoring.md).
        feedback = feedback_summary(engine)
        keep_text(registered.run_id, json.dumps(feedback, indent=2), artifact_file="feedback/summary.json")
    if output is OutputFormat.JSON:
        summary = {**_summary(outcome, registered), "feedback": feedback}
        typer.echo(json.dumps({**summary, "recorded_builder": builder if recorded else None}, indent=2))
        if said := builder_line(builder, recorded=recorded, development=settings.development):
            err.print(said, highlight=False)  # on stderr whatever the format
        return
    _show(outcome, registered)
    out.print(_feedback_line(feedback), highlight=False)
    if said := builder_line(builder, recorded=recorded, development=settings.development):
        err.print(said, highlight=False)  # on stderr whatever the format


def _feedback_line(feedback: dict[str, Any]) -> str:
    if not feedback["total"]:
        return "No staff feedback on indicators yet."
    values = ", ".join(f"{n} {v.replace('_', ' ')}" for v, n in sorted(feedback["by_value"].items()))
    return (
        f"Staff feedback on indicators so far: {values}; by factor family and module in the run's "
        "feedback/summary.json and `waymark monitor feedback`."
    )


def _mitigation(policy_file: Path | None, data: Path | str, *, spark: Any) -> GridSearchMitigation | None:
    """The policy's training-time mitigation bound to ``data``'s characteristics; None when it is off."""
    policy = load_policy(policy_file)
    if policy.mitigation.method == "none":
        return None
    if spark is not None:
        raise fail(
            "the fairness policy's training-time mitigation runs with the duckdb engine only; train "
            'with --engine duckdb, or with a policy whose [mitigation] method is "none"'
        )
    return mitigation_for(policy, local_folder(data))


def _outreach(config: FitConfig, path: Path | None, *, settings: Settings) -> pd.DataFrame | None:
    """The record of outreach the intervention policy needs: the file given, else the service's.

    Read from the service, it is a read of each student it names, recorded in their access log as
    ``waymark outreach export``'s is.
    """
    if config.intervention_policy == "ignore":
        return None
    if path is not None:
        return pd.read_csv(path, dtype={"student_id": str})
    return exported_interventions(up_to_date(settings.database_url), load_key(settings), caller=operator())


def _family_line(outcome: TrainingOutcome) -> str:
    return f"Family: {outcome.family}, {outcome.choice.describe()}"


def _lead_line(lead: dict[str, float]) -> str:
    if not lead.get("withdrawals"):
        return (
            "No registration in the test cohort that ended without completing has an unregistration day, "
            "so no lead time to report."
        )
    reached = lead["reached_before_withdrawal"]
    if math.isnan(lead["median_lead_days"]):
        return (
            f"None of the {lead['withdrawals']:.0f} students who left (an unregistration day) was in the "
            "top 10% before leaving."
        )
    return (
        f"Students who left (an unregistration day) reached in the top 10% before leaving: {reached:.0%} "
        f"of {lead['withdrawals']:.0f}, median lead {lead['median_lead_days']:.0f} days"
    )


def _number(value: float, pattern: str) -> str:
    return NOT_MEASURABLE if math.isnan(value) else format(value, pattern)


def _or_null(value: float) -> float | None:
    return None if math.isnan(value) else value


def _summary(outcome: TrainingOutcome, registered: Registered) -> dict[str, Any]:
    """What ``--format json`` prints: the table's facts, with null where a value is not measurable."""
    split = outcome.split
    weekly = outcome.test_weekly
    return {
        "split": {
            "test_from": split.test_from.isoformat(),
            "test_from_basis": split.basis,
            "start_dates": split.start_rows(),
            "train": [list(p) for p in split.train],
            "validation": [list(p) for p in split.validation],
            "test": [list(p) for p in split.test],
            "left_out_outcomes_not_known": [list(p) for p in outcome.running],
        },
        "family": outcome.family,
        "families_considered": list(outcome.config.families),
        "family_choice": {
            "method": outcome.choice.method,
            "grouped_by": outcome.choice.grouped_by or None,
            "description": outcome.choice.describe(),
        },
        "evaluation": [
            {
                "week": int(w),
                **{k: (None if math.isnan(float(v)) else float(v)) for k, v in weekly.loc[w].items()},
            }
            for w in weekly.index
        ],
        "lead_time": {k: _or_null(v) for k, v in outcome.lead.items()},
        "warnings": list(outcome.warnings),
        "mitigation": None
        if outcome.mitigation is None
        else {
            "description": outcome.mitigation.description,
            "settings": outcome.mitigation.params,
            "chosen": outcome.mitigation.chosen,
            "comparison": [
                {k: (v if not isinstance(v, float) else _or_null(v)) for k, v in row.items()}
                for row in outcome.mitigation.comparison.to_dict("records")
            ],
        },
        "registered": {"uri": registered.uri, "run_id": registered.run_id, "sha256": registered.sha256},
    }


def _show(outcome: TrainingOutcome, registered: Registered) -> None:
    split = outcome.split
    every = " (each presentation: --format json)" if split.summary() != split.describe() else ""
    out.print(f"Split: {split.summary()}{every}", highlight=False, markup=False)
    if outcome.running:
        named = ", ".join(presentation_name(m, p) for m, p in outcome.running)
        out.print(
            f"Left out of training and testing, outcomes not known yet: {named}.",
            highlight=False,
            markup=False,
        )
    out.print(_family_line(outcome), highlight=False)
    out.print(_evaluation_table(outcome))
    if outcome.mitigation is not None:
        out.print(f"Mitigation: {outcome.mitigation.description}.", highlight=False, markup=False)
        out.print(_mitigation_table(outcome.mitigation))
        if outcome.mitigation.chosen.get("at_grid_limit"):
            out.print(
                "The chosen point of the grid is at its limit (mitigation.grid_limit): a larger limit may "
                "narrow the difference further, at a cost to be read in the same table.",
                highlight=False,
            )
    for warning in outcome.warnings:
        err.print(f"[bold]warning:[/bold] {escape(warning)}", highlight=False)
    if outcome.target is Target.NOT_COMPLETING:
        out.print(_lead_line(outcome.lead), highlight=False)
    out.print(
        f"Registered {registered.uri} (alias candidate), run {registered.run_id}, "
        f"sha256 {registered.sha256[:12]}...",
        highlight=False,
    )


def _evaluation_table(outcome: TrainingOutcome) -> Table:
    weekly = outcome.test_weekly
    shown = ("auc", "pr_auc", "brier", "ece", "recall_at_10pct", "precision_at_10pct", "recall_at_20pct")
    weeks = sorted(int(w) for w in weekly.index)
    if not weeks or weeks[-1] > EVERY_WEEK_UP_TO:
        weeks = [w for w in EVALUATION_WEEKS if w in weekly.index]
    rows = [(week, weekly.loc[week].to_dict()) for week in weeks]
    cells = [[str(w), f"{int(r['n']):,}", *(_number(float(r[k]), ".3f") for k in shown)] for w, r in rows]
    unmeasured = any(NOT_MEASURABLE in row for row in cells)  # the legend only where a cell needs it
    table = Table(
        title=f"Later-cohort evaluation, target {outcome.target.value}",
        caption=f"{NOT_MEASURABLE}: not measurable (the week's test rows hold one outcome only)"
        if unmeasured
        else None,
    )
    for column in ("week", "n", "AUC", "PR-AUC", "Brier", "ECE", "recall@10%", "precision@10%", "recall@20%"):
        table.add_column(column, justify="right")
    for row in cells:
        table.add_row(*row)
    return table


def _mitigation_table(record: MitigationRecord) -> Table:
    table = Table(
        title="The mitigation on the later cohort: what it cost beside what it changed",
        caption="Without: the same family fitted without the mitigation. Difference between groups: the "
        "constraint's largest, at the first outreach capacity, over groups large enough to publish "
        f"({NOT_MEASURABLE}: fewer than two).",
    )
    for column in (
        "week",
        "AUC without",
        "AUC with",
        "recall without",
        "recall with",
        "difference without",
        "difference with",
        "groups",
    ):
        table.add_column(column, justify="right")
    for row in record.comparison.to_dict("records"):
        if int(row["week"]) not in EVALUATION_WEEKS:
            continue
        figures = (
            "auc_before",
            "auc_after",
            "recall_before",
            "recall_after",
            "disparity_before",
            "disparity_after",
        )
        table.add_row(
            str(int(row["week"])),
            *(_number(float(row[k]), ".3f") for k in figures),
            str(int(row["groups_compared"])),
        )
    return table
