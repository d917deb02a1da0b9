"""``waymark score``: the approved champion scores the cohort; the batch is published whole or not at all."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from waymark.cli.console import err, out
from waymark.cli.engine_options import (
    URI_HELP,
    EngineName,
    EngineOption,
    SparkMasterOption,
    data_location,
    spark_session_for,
)
from waymark.cli.errors import handled
from waymark.models.registry import configure
from waymark.models.settings import Settings, get_settings
from waymark.models.targets import DEFAULT_NAMES, Target
from waymark.service.db.engine import opened
from waymark.service.monitoring import MonitoringError, load_policy
from waymark.service.scoring import ScoringSummary, score
from waymark.service.scoring.job import DEFAULT_CHUNK_ROWS


def score_cmd(
    data: Annotated[str, typer.Option("--data", help=f"Data folder in the contract{URI_HELP}.")],
    week: Annotated[
        int | None,
        typer.Option(min=1, help="Prediction week (1-based); the latest week the data reaches when omitted."),
    ] = None,
    *,
    target: Annotated[Target, typer.Option(help="Which champion scores.")] = Target.NOT_COMPLETING,
    name: Annotated[str | None, typer.Option(help="Registered model name (default for the target).")] = None,
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Indicator rows written per transaction before the batch is published.")
    ] = DEFAULT_CHUNK_ROWS,
    monitoring_policy: Annotated[
        Path | None,
        typer.Option(
            help="Monitoring policy TOML whose stability.smoothing orders the list (default: packaged)."
        ),
    ] = None,
    engine: EngineOption = EngineName.DUCKDB,
    spark_master: SparkMasterOption = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            formats=["%Y-%m-%d"],
            help="The last day the extract covers (YYYY-MM-DD), when its activity stops earlier: an extract "
            "taken during a break everyone shares. Default: the latest day any activity reaches.",
        ),
    ] = None,
) -> None:
    """Score and explain the cohort with the approved champion, and publish the batch atomically."""
    folder = data_location(data, engine)
    if spark_master is not None and engine is not EngineName.SPARK:
        spark_session_for(engine, spark_master)  # refuses --spark-master without --engine spark
    publish(
        folder,
        week,
        name=name or DEFAULT_NAMES[target],
        settings=get_settings(),
        chunk_rows=chunk_rows,
        monitoring_policy=monitoring_policy,
        engine=engine,
        spark_master=spark_master,
        as_of=None if as_of is None else as_of.date(),
    )


def publish(
    data: Path | str,
    week: int | None,
    *,
    name: str,
    settings: Settings,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    monitoring_policy: Path | None = None,
    engine: EngineName = EngineName.DUCKDB,
    spark_master: str | None = None,
    as_of: date | None = None,
) -> None:
    """Score ``data`` with the champion of ``name`` and publish the batch (or leave the last one served).

    With ``engine`` spark the features, scores and explanations are computed on Spark (``spark_master``,
    else ``WAYMARK_SPARK_MASTER``, else local), and ``data`` may be a Hadoop URI; the batch is published
    the same way.
    """
    configure(settings)
    database = opened(settings)
    with handled(
        # not "the previous batch is still served": after a rejection nothing is (a red team's finding)
        unchanged="Nothing was published; what is served now, if anything, is unchanged.",
        also=(MonitoringError,),
    ):
        smoothing = load_policy(monitoring_policy).smoothing
        if engine is EngineName.SPARK:
            _progress("starting Spark")
        summary = score(
            data,
            database,
            model_name=name,
            week=week,
            chunk_rows=chunk_rows,
            smoothing=smoothing,
            progress=_progress,
            spark=spark_session_for(engine, spark_master),
            as_of=as_of,
            served=(settings.model_name, settings.target),
            marks=settings.marks,
        )
    out.print(
        f"Published run {summary.run_id}: {summary.students:,} indicators from {summary.model} "
        f"version {summary.version}, week{'s' if len(summary.weeks) != 1 else ''} "
        f"{', '.join(map(str, summary.weeks))}, "
        f"data as of {summary.as_of}."
        + (
            f" {summary.withdrawn:,} registration{'s' if summary.withdrawn != 1 else ''} recorded as "
            "left by the data date (withdrawn without a day, or with a day of leaving since the scored "
            "week's cut-off), or with an outcome already recorded, got no indicator."
            if summary.withdrawn
            else ""
        )
        + (
            f" {_weeks(summary.beyond_audit)} later than every week the fairness "
            f"audit of this version measured ({', '.join(map(str, summary.audited_weeks))}): the committee "
            "approved it on those weeks, and nothing is known of its fairness or accuracy later."
            if summary.beyond_audit
            else ""
        )
        + (
            f" {_counted(summary.unaudited_modules)} of the {len(summary.modules):,} modules scored had no "
            "presentation among those this version was tested and audited on: nothing is known of its "
            "accuracy or fairness there, so read their estimates with that in mind, or train and audit "
            "on data that holds such modules."
            if summary.unaudited_modules
            else ""
        )
        + (
            f" {_students(summary.erased_in_folder)} whose erasure was processed "
            f"{'is' if summary.erased_in_folder == 1 else 'are'} still registered on the presentations "
            f"scored in the data folder (left out of this run): remove them there, and any others, with "
            f"`waymark data erase {data}`."
            if summary.erased_in_folder
            else ""
        )
        + (
            f" {_students(summary.restricted)} who asked for their processing to be restricted (an "
            "objection to being scored, or a correction being weighed) "
            f"{'was' if summary.restricted == 1 else 'were'} left out while the restriction stands."
            if summary.restricted
            else ""
        )
        + _days_past(summary)
        + (
            f" This batch is as of an earlier date than the one it replaced ({summary.replaced_as_of}): "
            f"staff now see indicators as of {summary.as_of}."
            if summary.earlier_than_replaced
            else ""
        )
        + (
            f" The list is ordered by estimates smoothed over runs (weight {smoothing:g})."
            if smoothing
            else ""
        ),
        highlight=False,
    )


def _days_past(summary: ScoringSummary) -> str:
    """What the data hold past a scored week, and how to score those days once their week has ended."""
    past = summary.past_week
    if past is None:
        return ""
    kind = "presentation" if len(past.presentations) == 1 else "presentations"
    named = _counted(past.presentations, named=3, kind=kind)
    return (
        f" The data reach {past.reaches.isoformat()}, up to {past.days} day{'s' if past.days != 1 else ''} "
        f"past the end of the week scored of {named}: a week is "
        "scored once the data reach its last day, so those days count in a later run. If the extract "
        f"was taken on or after {past.ends.isoformat()}, with nobody active after "
        f"{past.reaches.isoformat()}, score it with --as-of {past.ends.isoformat()}."
    )


def _students(n: int) -> str:
    return f"{n:,} student{'' if n == 1 else 's'}"


def _counted(names: tuple[str, ...], *, named: int = 5, kind: str = "") -> str:
    """'2 (FA4001, FA5001)' or '9 (FA4001, ... and 4 more)'; with ``kind``, '2 modules (...)'."""
    listed = ", ".join(names[:named]) + (f" and {len(names) - named:,} more" if len(names) > named else "")
    return f"{len(names):,}{' ' + kind if kind else ''} ({listed})"


def _weeks(weeks: tuple[int, ...]) -> str:
    """'Week 22 is' or 'Weeks 22 and 24 are'."""
    if len(weeks) == 1:
        return f"Week {weeks[0]} is"
    return f"Weeks {', '.join(map(str, weeks[:-1]))} and {weeks[-1]} are"


def _progress(message: str) -> None:
    err.print(f"- {message}", highlight=False)
