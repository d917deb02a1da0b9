"""The ``waymark`` command line (PRODUCT §7). Thin: it parses, calls a package, and reports."""

from __future__ import annotations

import json
import os
import time
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, select

from waymark.fairness.governance import mirror_audit, mirror_refusal
from waymark.fairness.policy import PolicyError, load_policy
from waymark.fairness.report import write_report
from waymark.fairness.run import AuditError, AuditOutcome, audit_model
from waymark.models import registry
from waymark.models.bundle import BundleIntegrityError
from waymark.models.data import ContractViolation, OutputFolderError, validate_folder
from waymark.models.data.quality import quality_report
from waymark.models.data.validation import DEFAULT_MAX_EXAMPLES, connect, require_valid
from waymark.models.estimators import FAMILIES
from waymark.models.registry import ModelNotFoundError, configure, resolve
from waymark.models.roles import RELATIONSHIP_SCOPES
from waymark.models.settings import Settings, get_settings
from waymark.models.targets import DEFAULT_NAMES, Target
from waymark.service import audit, decisions, retention
from waymark.service.app import create_app
from waymark.service.audit import RequestIds, operator
from waymark.service.db.engine import engine_for, transaction, upgrade
from waymark.service.db.schema import AccessGrant, AuditRecord, ModelDecision
from waymark.service.decisions import GovernanceError
from waymark.service.grants import ImportRefused, import_attestations, import_grants
from waymark.service.scoring import (
    ChampionUnavailableError,
    ScoringError,
    ScoringInProgressError,
    publish,
    score,
)
from waymark.service.scoring.job import DEFAULT_CHUNK_ROWS
from waymark.service.security import ROLES, ConfigurationError, mint
from waymark.training.fitting import FitConfig
from waymark.training.ingest.oulad import OuladSourceError, demo_relationships, import_oulad
from waymark.training.ingest.synthetic import SynthConfig, generate
from waymark.training.ingest.synthetic_people import Disparity
from waymark.training.pipeline import TrainingConfigError, TrainingOutcome, train
from waymark.training.split import SplitError
from waymark.training.tracking import log_and_register

app = typer.Typer(
    help="Waymark: early-warning learning analytics that never labels students.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Import, generate and check data in the Waymark contract.", no_args_is_help=True)
app.add_typer(data_app, name="data")
fairness_app = typer.Typer(help="Fairness audits for the ethics committee.", no_args_is_help=True)
app.add_typer(fairness_app, name="fairness")
model_app = typer.Typer(help="Ethics review and promotion of model versions.", no_args_is_help=True)
app.add_typer(model_app, name="model")
access_app = typer.Typer(help="Staff relationships: who supports whom.", no_args_is_help=True)
app.add_typer(access_app, name="access")
access_log_app = typer.Typer(help="The tamper-evident access audit log.", no_args_is_help=True)
app.add_typer(access_log_app, name="access-log")
retention_app = typer.Typer(help="The retention policy (CoP §12).", no_args_is_help=True)
app.add_typer(retention_app, name="retention")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold]error:[/bold] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def _validate_or_raise(folder: Path) -> None:
    require_valid(folder)


@data_app.command("synth")
def synth(
    students: Annotated[int, typer.Option(help="Number of students.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 0,
    out_dir: Annotated[Path, typer.Option("--out", help="Destination folder.")] = Path("data/synth"),
    disparity: Annotated[
        float,
        typer.Option(
            help="Extra log-odds of not completing for the disparity group, invisible to features "
            "(0: none). Gives fairness tests a known answer."
        ),
    ] = 0.0,
    disparity_attribute: Annotated[
        str, typer.Option(help="Protected attribute of the group.")
    ] = "disability",
    disparity_group: Annotated[str, typer.Option(help="Value of that attribute.")] = "Y",
    validate: Annotated[
        bool, typer.Option(help="Check the result against the contract before publishing it.")
    ] = True,
) -> None:
    """Generate a synthetic cohort in the data contract, plus access.csv."""
    config = SynthConfig(
        students=students, seed=seed, disparity=Disparity(disparity_attribute, disparity_group, disparity)
    )
    start = time.perf_counter()
    try:
        with out.status(f"Generating {students:,} students"):
            summary = generate(out_dir, config, _validate_or_raise if validate else None)
    except (OutputFolderError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    except ContractViolation as exc:
        err.print(exc.report.to_text(), highlight=False)
        raise _fail("generated data broke the contract; nothing was written", 1) from exc
    seconds = time.perf_counter() - start
    out.print(
        f"Wrote {out_dir}: "
        + ", ".join(f"{k} {v:,}" for k, v in summary.rows.items())
        + f" ({summary.total_rows / seconds:,.0f} rows/s)",
        highlight=False,
    )


@data_app.command("import-oulad")
def import_oulad_cmd(
    src: Annotated[Path, typer.Argument(help="OULAD folder: official CSV release or Parquet copy.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Destination folder.")] = Path("data/oulad"),
) -> None:
    """Import the Open University Learning Analytics Dataset into the data contract."""
    try:
        with out.status("Importing OULAD"):
            summary = import_oulad(src, out_dir)
    except (OuladSourceError, OutputFolderError) as exc:
        raise _fail(str(exc)) from exc
    except ContractViolation as exc:
        err.print(exc.report.to_text(), highlight=False)
        raise _fail("the import broke the contract; nothing was written", 1) from exc
    out.print(
        f"Wrote {out_dir}: "
        + ", ".join(f"{k} {v:,}" for k, v in summary.rows.items())
        + f"; total activity count {summary.total_count:,}",
        highlight=False,
    )


@data_app.command("validate")
def validate_cmd(
    folder: Annotated[Path, typer.Argument(help="Data folder to check.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    max_examples: Annotated[
        int, typer.Option(help="Rows listed per broken rule (all are counted; 0 lists all).")
    ] = DEFAULT_MAX_EXAMPLES,
) -> None:
    """Check a data folder against the contract and report on its quality."""
    con = connect()
    report = validate_folder(folder, max_examples=max_examples, con=con)
    quality = quality_report(con) if report.ok else None
    if as_json:
        payload = report.to_dict()
        payload["quality"] = quality.to_dict() if quality else None
        typer.echo(json.dumps(payload, indent=2, default=str))
    else:
        out.print(report.to_text(max_examples=min(max_examples or 10**9, 20)), highlight=False, markup=False)
        if quality:
            out.print("\n" + quality.to_text(), highlight=False, markup=False)
    if not report.ok:
        raise typer.Exit(1)


EVALUATION_WEEKS = (2, 4, 8, 12, 16, 20, 24, 30)


@app.command("train")
def train_cmd(
    data: Annotated[Path, typer.Option("--data", help="Data folder in the contract.")],
    target: Annotated[
        str, typer.Option(help="not_completing or next_assessment_nonsubmission.")
    ] = "not_completing",
    name: Annotated[str | None, typer.Option(help="Registered model name (default by target).")] = None,
    test_from: Annotated[
        str | None,
        typer.Option(
            help="First start date (YYYY-MM-DD) of the test presentations; "
            "default: the data folder's recommendation."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    family: Annotated[
        list[str] | None, typer.Option(help="Train only this family (logistic, gbm); repeatable.")
    ] = None,
    gbm_estimators: Annotated[int, typer.Option(help="Boosting rounds of the gbm family.")] = 300,
) -> None:
    """Build features, evaluate on later presentations, track in MLflow, register a candidate."""
    try:
        chosen = Target(target)
    except ValueError:
        raise _fail(
            f"unknown target {target!r}; choose one of: {', '.join(t.value for t in Target)}"
        ) from None
    unknown = [f for f in family or [] if f not in FAMILIES]
    if unknown:
        raise _fail(f"unknown family {', '.join(unknown)}; choose from: {', '.join(FAMILIES)}")
    try:
        split_date = date.fromisoformat(test_from) if test_from else None
    except ValueError:
        raise _fail(f"--test-from {test_from!r} is not a date like 2014-01-01") from None
    config = FitConfig(
        seed=seed, families=tuple(family or FitConfig().families), gbm_estimators=gbm_estimators
    )
    _run_training(data, chosen, config, split_date, name or DEFAULT_NAMES[chosen], get_settings())


def _run_training(
    data: Path, target: Target, config: FitConfig, split_date: date | None, name: str, settings: Settings
) -> None:
    try:
        with out.status("Training") as status:
            outcome = train(
                data,
                target,
                config,
                split_date,
                progress=lambda m: status.update(f"Training: {m}"),
                exclude=erased_students(settings),
            )
            status.update("Training: logging to MLflow and registering")
            registered = log_and_register(outcome, name, settings)
    except ContractViolation as exc:
        err.print(exc.report.to_text(), highlight=False, markup=False)
        raise _fail("the data breaks the contract; nothing was trained", 1) from exc
    except (SplitError, TrainingConfigError) as exc:
        raise _fail(str(exc)) from exc
    out.print(f"Split: {outcome.split.describe()}", highlight=False)
    out.print(f"Chosen family (temporal validation): {outcome.family}", highlight=False)
    out.print(_evaluation_table(outcome))
    if outcome.lead:
        lead = outcome.lead
        out.print(
            f"Withdrawals reached in the top 10% before withdrawing: {lead['reached_before_withdrawal']:.0%}"
            f", median lead {lead['median_lead_days']:.0f} days",
            highlight=False,
        )
    out.print(
        f"Registered {registered.uri} (alias candidate), run {registered.run_id}, "
        f"sha256 {registered.sha256[:12]}...",
        highlight=False,
    )


def _evaluation_table(outcome: TrainingOutcome) -> Table:
    table = Table(title=f"Later-cohort evaluation, target {outcome.target.value}")
    for column in ("week", "n", "AUC", "PR-AUC", "Brier", "ECE", "recall@10%", "precision@10%", "recall@20%"):
        table.add_column(column, justify="right")
    weekly = outcome.test_weekly
    shown = ("auc", "pr_auc", "brier", "ece", "recall_at_10pct", "precision_at_10pct", "recall_at_20pct")
    for week in [w for w in EVALUATION_WEEKS if w in weekly.index]:
        r = weekly.loc[int(week)].to_dict()
        table.add_row(str(week), f"{int(r['n']):,}", *(f"{r[k]:.3f}" for k in shown))
    return table


@fairness_app.command("audit")
def fairness_audit_cmd(
    model: Annotated[
        str, typer.Option("--model", help="Model URI, e.g. models:/waymark-not-completing@candidate.")
    ],
    data: Annotated[Path, typer.Option("--data", help="Data folder with protected_characteristics.")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for report.html, report.json, model_card.md.")
    ],
    policy_file: Annotated[
        Path | None, typer.Option("--policy", help="Policy TOML (default: the packaged one).")
    ] = None,
) -> None:
    """Audit a candidate by protected characteristic; write the report; tag the version with the gate."""
    _fairness_audit(model, data, out_dir, policy_file, get_settings())


def _fairness_audit(
    model: str, data: Path, out_dir: Path, policy_file: Path | None, settings: Settings
) -> str:
    configure(settings)
    engine = database(settings)
    try:
        policy = load_policy(policy_file)
        with out.status("Auditing"):
            outcome = audit_model(model, data, policy, exclude=erased_students(settings))
            test_metrics = dict(registry.run(outcome.run_id).metrics)
            report = write_report(outcome, out_dir, test_metrics)
            _record_audit(model, outcome, report, out_dir, engine)
    except (PolicyError, AuditError, ModelNotFoundError, BundleIntegrityError) as exc:
        raise _fail(str(exc)) from exc
    except ContractViolation as exc:
        err.print(exc.report.to_text(), highlight=False, markup=False)
        raise _fail("the data breaks the contract; nothing was audited", 1) from exc
    out.print(
        f"Fairness gate for {outcome.model.name} version {outcome.model.version}: {outcome.gate.upper()}",
        highlight=False,
    )
    for check in outcome.checks:
        out.print(f"  {check.status:>12}  {check.title}", highlight=False, markup=False)
    for proxy in outcome.proxies:
        if proxy.warning:
            out.print(
                f"  warning: the features predict {proxy.attribute} with AUC {proxy.auc:.2f}", highlight=False
            )
    out.print(
        f"Report: {out_dir / 'report.html'} (also report.json, model_card.md; logged to MLflow)",
        highlight=False,
    )
    return outcome.gate


def _record_audit(
    model: str, outcome: AuditOutcome, report: dict[str, Any], folder: Path, engine: Engine
) -> None:
    """Waymark's database holds the gate result; MLflow gets the files and a mirror of the tags."""
    name, version = outcome.model.name, outcome.model.version
    with transaction(engine) as session:
        decisions.record_audit(
            session, name, version, outcome.model.sha256, outcome.gate, report, outcome.policy, operator().sub
        )
    mirror_audit(model, outcome.gate, outcome.model.sha256, outcome.run_id, folder, report)


@model_app.command("review")
def model_review_cmd(
    model: Annotated[str, typer.Option("--model", help="Model URI of the exact version reviewed.")],
    reviewer: Annotated[str, typer.Option(help="Reviewer's identifier.")],
    note: Annotated[str, typer.Option(help="The committee's reasons.")],
    approve: Annotated[
        bool | None, typer.Option("--approve/--reject", help="The decision (one of the two is required).")
    ] = None,
    override_reason: Annotated[
        str | None,
        typer.Option(help="Approve although the fairness gate failed, for this reason (shown with it)."),
    ] = None,
) -> None:
    """Record the ethics committee's decision on one model version (voided by any later audit)."""
    if approve is None:
        raise typer.BadParameter("say the decision: --approve or --reject", param_hint="--approve/--reject")
    _review(model, approve, reviewer, note, get_settings(), override_reason)


def _review(
    model: str, approve: bool, reviewer: str, note: str, settings: Settings, override: str | None = None
) -> ModelDecision:
    configure(settings)
    try:
        version = resolve(model)
        with audit.unit(database(settings), audit.load_key(settings)) as session:
            row = decisions.review(
                session, version.name, version.version, approve, note, operator(), RequestIds.new(),
                reviewer=reviewer, override_reason=override,
            )
    except (GovernanceError, ModelNotFoundError, ConfigurationError) as exc:
        raise _fail(str(exc)) from exc
    decisions.mirror(row)
    shown = row.kind + (f" with the gate overridden ({row.override_reason})" if row.override_reason else "")
    out.print(f"Recorded: {row.model_name} v{row.model_version} {shown} by {reviewer}.", highlight=False)
    return row


@model_app.command("promote")
def model_promote_cmd(
    model: Annotated[str, typer.Option("--model", help="Model URI of the version to promote.")],
) -> None:
    """Make a version the champion, only if its gate passed and an approval of that audit is recorded."""
    _promote(model, get_settings())


def _promote(model: str, settings: Settings) -> None:
    configure(settings)
    try:
        version = resolve(model)
        name, number = version.name, version.version
        with audit.unit(database(settings), audit.load_key(settings)) as session:
            row = decisions.promote(session, name, number, operator(), RequestIds.new())
    except GovernanceError as exc:
        mirror_refusal(name, number, operator().sub, [str(exc)])
        raise _fail(str(exc)) from exc
    except (ModelNotFoundError, ConfigurationError) as exc:
        raise _fail(str(exc)) from exc
    decisions.mirror(row)
    out.print(f"{name} version {number} is now the champion.", highlight=False)


@app.command("score")
def score_cmd(
    data: Annotated[Path, typer.Option("--data", help="Data folder in the contract.")],
    week: Annotated[
        int | None,
        typer.Option(help="Prediction week (1-based); the latest week the data reaches when omitted."),
    ] = None,
    target: Annotated[Target, typer.Option(help="Which champion scores.")] = Target.NOT_COMPLETING,
    name: Annotated[str | None, typer.Option(help="Registered model name (default for the target).")] = None,
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Indicator rows written per transaction before the batch is published.")
    ] = DEFAULT_CHUNK_ROWS,
) -> None:
    """Score and explain the cohort with the approved champion, and publish the batch atomically."""
    _score(data, week, name or DEFAULT_NAMES[target], get_settings(), chunk_rows)


def _score(
    data: Path, week: int | None, name: str, settings: Settings, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> None:
    configure(settings)
    engine = database(settings)
    say = lambda m: err.print(f"- {m}", highlight=False)  # noqa: E731
    try:
        summary = score(data, engine, name, week, chunk_rows, progress=say)
    except ScoringInProgressError as exc:
        raise _fail(str(exc)) from exc
    except (ChampionUnavailableError, ScoringError, ContractViolation) as exc:
        raise _fail(f"{exc}\nNothing was published; the previous batch is still served.") from exc
    out.print(
        f"Published run {summary.run_id}: {summary.students:,} indicators from {summary.model} "
        f"version {summary.version}, week(s) {', '.join(map(str, summary.weeks))}, "
        f"data as of {summary.as_of}.",
        highlight=False,
    )


def erased_students(settings: Settings) -> frozenset[str]:
    """Students whose erasure was processed: never trained on, scored or audited again (CoP §12)."""
    return publish.erased_students(database(settings))


def database(settings: Settings) -> Engine:
    """The service database, brought up to date."""
    engine = engine_for(settings.database_url)
    upgrade(engine)
    return engine


@app.command("demo")
def demo(
    workdir: Annotated[Path, typer.Option(help="Folder for the demo's data and stores.")] = Path("demo"),
    students: Annotated[int, typer.Option(help="Synthetic students.")] = 4000,
    serve: Annotated[bool, typer.Option(help="Start the service at the end.")] = True,
    oulad: Annotated[
        Path | None, typer.Option(help="Use OULAD from this folder instead of a synthetic cohort.")
    ] = None,
) -> None:
    """Run the whole pipeline (synthetic cohort, or --oulad), then serve."""
    data_dir = workdir / "data"
    settings = _demo_settings(workdir)
    access = data_dir / "access.csv"
    if oulad is None:
        synth(
            students=students,
            seed=7,
            out_dir=data_dir,
            disparity=0.0,
            disparity_attribute="disability",
            disparity_group="Y",
            validate=True,
        )
    else:
        import_oulad_cmd(oulad, data_dir)
        access = workdir / "access.csv"
        demo_relationships(data_dir, access)
    validate_cmd(data_dir, as_json=False, max_examples=DEFAULT_MAX_EXAMPLES)
    target = Target.NOT_COMPLETING
    name = DEFAULT_NAMES[target]
    _run_training(data_dir, target, FitConfig(), None, name, settings)
    candidate = f"models:/{name}@candidate"
    gate = _fairness_audit(candidate, data_dir, workdir / "fairness", None, settings)
    if gate != "pass":
        raise _fail("the demo candidate did not pass the fairness gate, so nothing is promoted", 1)
    row = _review(
        candidate,
        True,
        "demo-reviewer",
        "DEMO DECISION made automatically by `waymark demo`; not a decision of any ethics committee",
        settings,
    )
    out.print(
        f"Demo approval recorded on version {row.model_version} (reviewer demo-reviewer, marked as a demo).",
        highlight=False,
    )
    _promote(candidate, settings)
    _score(data_dir, 8, name, settings)
    engine = database(settings)
    loaded = import_grants(engine, access)
    out.print(f"Loaded {loaded:,} staff relationships from {access}.", highlight=False)
    for key, value in _demo_environment(workdir, settings).items():
        os.environ[key] = value
    get_settings.cache_clear()
    _sign_in_help(engine, _demo_environment(workdir, settings))
    if serve:
        serve_cmd()


def _demo_environment(workdir: Path, settings: Settings) -> dict[str, str]:
    """What the served demo reads: its own stores, and development mode for local sign-in."""
    return {
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "WAYMARK_DATABASE_URL": settings.database_url,
        "WAYMARK_ENV": "development",
        "WAYMARK_DEV_KEY_DIR": str((workdir / "dev-keys").resolve()),
    }


def _sign_in_help(engine: Engine, environment: dict[str, str]) -> None:
    """Print how to sign in as each role, with real identifiers from the demo's relationships."""
    with transaction(engine) as session:
        examples = {
            rel: session.scalar(select(AccessGrant.staff_id).where(AccessGrant.relationship == rel).limit(1))
            for rel in RELATIONSHIP_SCOPES
        }
        student = session.scalar(
            select(AccessGrant.scope_id).where(AccessGrant.relationship == "personal_tutor").limit(1)
        )
    subs = {
        **examples,
        "student": student,
        "ethics_reviewer": "E0001",
        "dpo": "D0001",
        "data_scientist": "DS001",
    }
    exports = " ".join(f"{k}={v}" for k, v in environment.items())
    out.print(f"\nSign in with development tokens. In another shell: export {exports}", highlight=False)
    for role, sub in subs.items():
        if sub:
            out.print(f"  {role:<22} waymark token --role {role} --sub {sub}", highlight=False)
    out.print(
        'Then: curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/v1/caseload  '
        "(students: /v1/me/indicator?ask=true). Pages: http://127.0.0.1:8000/ ; API docs: /docs",
        highlight=False,
    )


def _demo_settings(workdir: Path) -> Settings:
    """Embedded defaults kept inside the demo folder, unless the environment says otherwise."""
    local = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{(workdir / 'mlflow.db').resolve()}",
        "WAYMARK_MLFLOW_ARTIFACTS": str((workdir / "mlartifacts").resolve()),
        "WAYMARK_DATABASE_URL": f"sqlite:///{(workdir / 'waymark.db').resolve()}",
        # development mode: the access log's key and the sign-in keys are made in the demo folder
        "WAYMARK_ENV": "development",
        "WAYMARK_DEV_KEY_DIR": str((workdir / "dev-keys").resolve()),
    }
    return Settings(**{k: os.environ.get(k, v) for k, v in local.items()})  # type: ignore[arg-type]


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    not_production: Annotated[
        bool,
        typer.Option(
            "--i-know-this-is-not-production",
            help="Development mode only: serve beyond loopback or on a non-SQLite database anyway.",
        ),
    ] = False,
) -> None:
    """Run the HTTP service (brings the database schema up to date first)."""
    import uvicorn

    settings = get_settings()
    exposure = settings.development_exposure(host)
    if exposure and not not_production:
        raise _fail(
            f"Refusing to serve in development mode: {'; '.join(exposure)}. Development mode lets anyone "
            "with the key folder sign in as any role, so it is for this machine and throwaway data. "
            "Set WAYMARK_ENV=production with OIDC settings, or pass --i-know-this-is-not-production "
            "for a test environment holding no real data."
        )
    database(settings)
    try:
        create_app(settings)  # refuse to start here, with the reason, rather than inside uvicorn
    except ConfigurationError as exc:
        raise _fail(str(exc)) from exc
    out.print(f"Waymark is listening on http://{host}:{port} (API docs: /docs, health: /health)")
    # proxy_headers off: the Guard alone decides which proxies' X-Forwarded-For to believe
    # (WAYMARK_TRUSTED_PROXIES); uvicorn would otherwise rewrite the client address from loopback peers.
    uvicorn.run(
        "waymark.service.app:create_app",
        factory=True,
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=False,
    )


@app.command("token")
def token_cmd(
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    sub: Annotated[str, typer.Option(help="Subject: the staff or student identifier.")],
    minutes: Annotated[int, typer.Option(min=1, max=1440, help="Minutes until it expires.")] = 60,
    training: Annotated[
        bool, typer.Option(help="Include a current information-security training attestation (staff).")
    ] = True,
) -> None:
    """Development only: mint a signed bearer token (refused unless WAYMARK_ENV=development)."""
    settings = get_settings()
    if not settings.development:
        raise _fail("waymark token works only in development mode (WAYMARK_ENV=development)")
    try:
        typer.echo(mint(settings, role, sub, minutes, 365 if training else None))
    except ValueError as exc:
        raise _fail(str(exc)) from exc


@access_app.command("import")
def access_import_cmd(
    file: Annotated[Path, typer.Argument(help="CSV: staff_id,relationship,scope_type,scope_id.")],
    attestations: Annotated[
        Path | None, typer.Option(help="CSV staff_id,expires_on of information-security training.")
    ] = None,
) -> None:
    """Replace the staff relationships with those in FILE (all or nothing)."""
    engine = database(get_settings())
    try:
        loaded = import_grants(engine, file)
        trained = import_attestations(engine, attestations) if attestations else 0
    except ImportRefused as exc:
        raise _fail(str(exc)) from exc
    out.print(
        f"Loaded {loaded:,} staff relationships"
        + (f" and {trained:,} attestations." if attestations else ".")
    )


def _audit_key(settings: Settings) -> bytes:
    try:
        return audit.load_key(settings)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from exc


@access_log_app.command("verify")
def access_log_verify_cmd(
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="A file from `waymark access-log checkpoint`, kept outside the database."),
    ] = None,
) -> None:
    """Check the keyed chain of the access log (and against a checkpoint); non-zero exit if broken."""
    settings = get_settings()
    key = _audit_key(settings)
    try:
        point = json.loads(checkpoint.read_text(encoding="utf-8")) if checkpoint else None
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot read the checkpoint {checkpoint}: {exc}") from exc
    with transaction(database(settings)) as session:
        problems = audit.verify(session, key, point)
        count = session.scalar(select(func.count()).select_from(AuditRecord)) or 0
    if problems:
        for problem in problems:
            err.print(problem, highlight=False, markup=False)
        raise _fail(f"the access log is NOT intact: {len(problems)} problem(s) in {count:,} records", 1)
    against = f", and it still holds the record checkpoint {checkpoint} names" if checkpoint else ""
    out.print(f"The access log is intact: {count:,} records, chain verified{against}.", highlight=False)


@access_log_app.command("checkpoint")
def access_log_checkpoint_cmd() -> None:
    """Print a signed head of the access log (JSON) to keep outside the database."""
    settings = get_settings()
    key = _audit_key(settings)
    with transaction(database(settings)) as session:
        typer.echo(json.dumps(audit.checkpoint(session, key)))


@retention_app.command("run")
def retention_run_cmd() -> None:
    """Apply the retention policy now (for a scheduler); the run is recorded in the access log."""
    settings = get_settings()
    key = _audit_key(settings)
    with audit.unit(database(settings), key) as session:
        done = retention.apply(
            session,
            operator(),
            RequestIds.new(),
            settings.retention_days,
            settings.access_log_retention_days,
        )
    out.print(
        f"Retention ({settings.retention_days} days, before {done.cutoff:%Y-%m-%d}): removed "
        f"{done.indicators:,} indicators of {done.runs:,} unserved runs, {done.feedback:,} feedback notes, "
        f"{done.interventions:,} interventions, {done.consents:,} lapsed consents, {done.requests:,} closed "
        f"requests. Access-log records past their own {settings.access_log_retention_days}-day period: "
        f"{done.access_log_past_period:,} (archived by the database owner).",
        highlight=False,
    )


def main() -> None:
    """Console-script entry point."""
    app()
