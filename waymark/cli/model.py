"""``waymark model``: the ethics committee's review of a version, and its promotion to champion."""

from __future__ import annotations

from typing import Annotated

import typer

from waymark.cli.console import out
from waymark.cli.errors import REFUSED, fail, handled
from waymark.models import registry
from waymark.models.settings import Settings, get_settings
from waymark.service import decisions
from waymark.service.audit import load_key, operator
from waymark.service.db.engine import opened
from waymark.service.db.schema import ModelDecision

app = typer.Typer(help="Ethics review and promotion of model versions.", no_args_is_help=True)


@app.command("review")
def review_cmd(
    model: Annotated[str, typer.Option("--model", help="Model URI of the exact version reviewed.")],
    reviewer: Annotated[str, typer.Option(help="Reviewer's identifier.")],
    *,
    note: Annotated[str, typer.Option(help="The committee's reasons.")],
    approve: Annotated[
        bool | None, typer.Option("--approve/--reject", help="The decision (one of the two is required).")
    ] = None,
    override_reason: Annotated[
        str | None,
        typer.Option(
            help=(
                "Approve although the fairness or quality gate failed, for this reason: published word for "
                "word in the public transparency statement (write no figure of a group the audit withheld)."
            )
        ),
    ] = None,
) -> None:
    """Record the ethics committee's decision on one model version (voided by any later audit)."""
    if approve is None:
        raise typer.BadParameter("say the decision: --approve or --reject", param_hint="--approve/--reject")
    review(
        model,
        approve=approve,
        reviewer=reviewer,
        note=note,
        settings=get_settings(),
        override=override_reason,
    )


def review(
    model: str, *, approve: bool, reviewer: str, note: str, settings: Settings, override: str | None = None
) -> ModelDecision:
    """Record ``reviewer``'s decision on the version ``model`` names, and say what was recorded.

    Only in development: the command line cannot tell who is typing, so in production a decision is
    recorded by a signed-in ethics reviewer on the committee page (or its API route), never under a
    name an operator types.
    """
    if not settings.development:
        raise fail(
            "in production the ethics committee's decisions are recorded by a signed-in ethics reviewer "
            "on the committee page (POST /v1/models/{name}/versions/{version}/review): the command "
            "line cannot tell who is typing, so it records decisions only in development "
            "(WAYMARK_ENV=development)",
            REFUSED,
        )
    _named_version(model)
    registry.configure(settings)
    with handled():
        engine = opened(settings)
        version = registry.resolve(model)
        key = load_key(settings)
        row = decisions.commit_review(
            engine,
            key,
            name=version.name,
            version=version.version,
            approve=approve,
            note=note,
            caller=operator(),
            reviewer=reviewer,
            override_reason=override,
        )
    shown = row.kind + (f" with the gate overridden ({row.override_reason})" if row.override_reason else "")
    out.print(f"Recorded: {row.model_name} v{row.model_version} {shown} by {reviewer}.", highlight=False)
    return row


@app.command("promote")
def promote_cmd(
    model: Annotated[str, typer.Option("--model", help="Model URI of the version to promote.")],
) -> None:
    """Make a version the champion, only if its gates passed (or were overridden) and it is approved."""
    promote(model, get_settings())


def promote(model: str, settings: Settings) -> None:
    """Make the version ``model`` names the champion (governance refuses it unless approved)."""
    _named_version(model)
    registry.configure(settings)
    with handled():
        version = registry.resolve(model)
        engine = opened(settings)
        decisions.commit_promotion(
            engine, load_key(settings), name=version.name, version=version.version, caller=operator()
        )
    out.print(f"{version.name} version {version.version} is now the champion.", highlight=False)


def _named_version(model: str) -> None:
    """Refuse an alias: a decision or a promotion names the version, which an alias may have moved from."""
    if "@" in model:
        raise fail(
            f"{model} names an alias, which anyone with access to MLflow can move to another version: name "
            "the version the committee read the report of, models:/NAME/VERSION",
            REFUSED,
        )
