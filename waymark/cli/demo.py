"""``waymark demo``: the whole pipeline on a cohort of its own, with stores kept in the demo folder.

Each step is the function its command runs, given the demo's settings; nothing is written to the
process's environment. What the demo prints for another shell is only text to copy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from waymark.cli.console import out
from waymark.cli.data import check, import_cohort, synthesise
from waymark.cli.errors import BROKEN, REFUSED, fail, handled
from waymark.cli.fairness import audit
from waymark.cli.model import promote, review
from waymark.cli.score import publish
from waymark.cli.serve import LOOPBACK, PORT, address, local_sign_in, serve
from waymark.cli.train import run_training
from waymark.models import registry
from waymark.models.settings import Settings
from waymark.models.targets import DEFAULT_NAMES, Target
from waymark.service.db.engine import opened
from waymark.service.dev_provider import demo_people
from waymark.service.directory import import_directory
from waymark.service.grants import import_grants
from waymark.training.fitting import FitConfig
from waymark.training.ingest.oulad import demo_relationships
from waymark.training.ingest.synthetic import SynthConfig
from waymark.training.ingest.synthetic_people import Disparity

TARGET = Target.NOT_COMPLETING
WEEK = 8
REVIEWER = "demo-reviewer"
NOTE = "DEMO DECISION made automatically by `waymark demo`; not a decision of any ethics committee"


def demo_cmd(
    workdir: Annotated[Path, typer.Option(help="Folder for the demo's data and stores.")] = Path("demo"),
    students: Annotated[int, typer.Option(help="Synthetic students.")] = 4000,
    *,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the service at the end.")
    ] = True,
    oulad: Annotated[
        Path | None, typer.Option(help="Use OULAD from this folder instead of a synthetic cohort.")
    ] = None,
    override_reason: Annotated[
        str | None,
        typer.Option(
            help="If the candidate fails the fairness or quality gate, approve it anyway for this reason, "
            "recorded and shown with the approval as a committee's override is (OULAD's candidate fails "
            "the default gate: README, issue #15). Without it such a demo stops before promotion."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address the service listens on.")] = LOOPBACK,
    port: Annotated[int, typer.Option(help="Port the service listens on.")] = PORT,
) -> None:
    """Run the whole pipeline (synthetic cohort, or --oulad), then serve."""
    if (env := os.environ.get("WAYMARK_ENV", "development")) != "development":
        raise fail(
            f"waymark demo runs only in development, and WAYMARK_ENV is {env!r} here: it records an "
            "approval by a demo reviewer, promotes its own model and replaces the staff relationships and "
            "the directory, which must never happen to a real deployment. Unset WAYMARK_ENV (the demo "
            "keeps everything in its own folder) or set it to development.",
            REFUSED,
        )
    settings = demo_settings(workdir)
    data = workdir / "data"
    access = _cohort(workdir, data, students=students, oulad=oulad)
    check(data)
    name = DEFAULT_NAMES[TARGET]
    run_training(data, TARGET, config=FitConfig(), split_date=None, name=name, settings=settings)
    # the version just registered, named: the committee decides on a version, never on an alias
    registry.configure(settings)
    candidate = f"models:/{name}/{registry.resolve(f'models:/{name}@candidate').version}"
    _approve(candidate, data, reports=workdir / "fairness", settings=settings, override=override_reason)
    promote(candidate, settings)
    publish(data, WEEK, name=name, settings=settings)
    _load_relationships(access, settings)
    _load_directory(data, settings)
    if not serve_after:
        _token_help(workdir, settings)
        return
    with local_sign_in(settings, host, port=port) as signed:
        out.print(
            f"\nSign in at {address(host, port)}/ and choose who to be: one person per role, signed in "
            "through a local OpenID Connect provider. Stop with Ctrl-C.",
            highlight=False,
        )
        serve(signed, host, port=port)


def demo_settings(workdir: Path) -> Settings:
    """Everything kept inside the demo folder, whatever the environment says.

    On a host whose environment points at a real deployment's database and MLflow store (where
    WAYMARK_ENV may well be unset, which Waymark reads as production), the demo still writes only
    into its own folder: it records a demo reviewer's approval and replaces staff relationships, which
    must never reach a real deployment.
    """
    local = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{(workdir / 'mlflow.db').resolve()}",
        "WAYMARK_MLFLOW_ARTIFACTS": str((workdir / "mlartifacts").resolve()),
        "WAYMARK_DATABASE_URL": f"sqlite:///{(workdir / 'waymark.db').resolve()}",
        # development mode: the access log's key and the sign-in keys are made in the demo folder
        "WAYMARK_ENV": "development",
        "WAYMARK_DEV_KEY_DIR": str((workdir / "dev-keys").resolve()),
    }
    return Settings(**local)  # type: ignore[arg-type]


def _cohort(workdir: Path, data: Path, *, students: int, oulad: Path | None) -> Path:
    """Write the demo's cohort to ``data``; returns its staff relationships file."""
    if oulad is None:
        synthesise(data, SynthConfig(students=students, seed=7, disparity=Disparity("disability", "Y", 0.0)))
        return data / "access.csv"
    import_cohort(oulad, data)
    access = workdir / "access.csv"
    demo_relationships(data, access)
    return access


def _approve(candidate: str, data: Path, *, reports: Path, settings: Settings, override: str | None) -> None:
    """Audit the candidate and record the demo's own (marked) approval.

    Approved if its gate passed, or with ``override`` as the reason it is approved although it did not.
    """
    gate = audit(candidate, data, out_dir=reports, policy_file=None, settings=settings)
    if gate != "pass" and override is None:
        raise fail(
            f"the demo candidate's gate is {gate!r}, so nothing is promoted (the report is in {reports}; "
            "--override-reason REASON approves it anyway, recorded as an override)",
            BROKEN,
        )
    overridden = override if gate != "pass" else None
    row = review(
        candidate, approve=True, reviewer=REVIEWER, note=NOTE, settings=settings, override=overridden
    )
    how = f", overriding a gate that is {gate!r}: {overridden}" if overridden else ""
    said = f"reviewer {REVIEWER}, marked as a demo{how}"
    out.print(f"Demo approval recorded on version {row.model_version} ({said}).", highlight=False)


def _load_relationships(access: Path, settings: Settings) -> None:
    with handled():
        loaded = import_grants(opened(settings), access)
    out.print(f"Loaded {loaded:,} staff relationships from {access}.", highlight=False)


def _load_directory(data: Path, settings: Settings) -> None:
    """Load the synthetic cohort's invented directory, so staff see names (OULAD has none)."""
    directory = data / "directory.csv"
    if not directory.exists():
        out.print("No student directory for this cohort: students are shown by identifier.", highlight=False)
        return
    with handled():
        done = import_directory(opened(settings), directory, known=None)
    out.print(f"Loaded {done.loaded:,} directory entries from {directory}.", highlight=False)


def _token_help(workdir: Path, settings: Settings) -> None:
    """For a demo that is not served here: how to serve it, and bearer tokens for the API."""
    people = demo_people(opened(settings))
    exports = " ".join(f"{k}={v}" for k, v in _environment(workdir, settings).items())
    out.print(f"\nIn another shell: export {exports}", highlight=False)
    out.print(
        "Pages, with sign-in through a local identity provider: waymark serve --dev-provider", highlight=False
    )
    out.print("Bearer tokens for the API (development only):", highlight=False)
    for role, person in people:
        out.print(f"  {role:<22} waymark token --role {role} --sub {person.sub}", highlight=False)


def _environment(workdir: Path, settings: Settings) -> dict[str, str]:
    """What another shell needs to mint tokens for the served demo (printed, never set here)."""
    return {
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "WAYMARK_DATABASE_URL": settings.database_url,
        "WAYMARK_ENV": "development",
        "WAYMARK_DEV_KEY_DIR": str((workdir / "dev-keys").resolve()),
    }
