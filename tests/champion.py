"""A real, governed champion for tests of scoring and the service: trained, audited, approved, promoted."""

from __future__ import annotations

import atexit
import dataclasses
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from sqlalchemy import Engine

from waymark.fairness.governance import mirror_audit
from waymark.fairness.policy import Policy, load_policy
from waymark.fairness.report import write_report
from waymark.fairness.run import audit_model
from waymark.models.registry import configure
from waymark.models.settings import Settings
from waymark.models.targets import Target
from waymark.service import decisions
from waymark.service.db.engine import make_engine, transaction, upgrade
from waymark.training.fitting import FitConfig
from waymark.training.pipeline import TrainingOutcome, train_folder
from waymark.training.tracking import log_and_register


@dataclass(frozen=True, eq=False)
class Audited:
    """What a real audit of a version found, to record in any service database."""

    name: str
    version: str
    bundle_sha256: str
    gate: str
    report: dict[str, Any]
    policy: Policy


@dataclass(frozen=True, eq=False)
class Champion:
    """Where the governed model lives, and its audit (replayed into each test's own database)."""

    settings: Settings
    name: str
    version: str
    audited: Audited | None = None


@functools.cache
def _migrated_mlflow_db() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="waymark-tests-mlflow-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    db = folder / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_registered_models()  # creates every table
    return db


def empty_mlflow_store(root: Path) -> str:
    """The URI of the MLflow store in ``root``; a new one is a copy of an empty one made once a session.

    MLflow makes a new SQLite store's tables by running its migrations, a second or two each time.
    A store already in ``root`` is kept as it is (settings for the same root are asked for again).
    """
    root.mkdir(parents=True, exist_ok=True)
    db = root / "mlflow.db"
    if not db.exists():
        shutil.copyfile(_migrated_mlflow_db(), db)
    return f"sqlite:///{db}"


def settings_in(root: Path) -> Settings:
    """Settings whose stores all live under ``root``."""
    return Settings(
        MLFLOW_TRACKING_URI=empty_mlflow_store(root),
        WAYMARK_MLFLOW_ARTIFACTS=str(root / "artifacts"),
        WAYMARK_DATABASE_URL=f"sqlite:///{root}/waymark.db",
    )


@functools.cache
def trained(folder: Path, config: FitConfig) -> TrainingOutcome:
    """One training run per folder and configuration in a test session (its users only read it).

    The session's folders are written once and never changed, so a second module asking for the same
    run (a candidate to register in its own store, a model to explain) gets it without training it
    again (10 to 20 s a run here).
    """
    return train_folder(folder, target=Target.NOT_COMPLETING, config=config)


def candidate(family: str, seed: int) -> FitConfig:
    """How the tests' candidates are trained (the champion, the registered logistic candidates)."""
    return FitConfig(seed=seed, families=(family,), gbm_estimators=80)


def register(folder: Path, settings: Settings, name: str, family: str, seed: int) -> str:
    """Train (or reuse this session's training of) a candidate and register it; returns its version."""
    configure(settings)
    return log_and_register(trained(folder, candidate(family, seed)), name, settings=settings).version


def permissive_policy() -> Policy:
    """The default audit with tolerances wide enough for a 1,500-student cohort's noise.

    Scoring and service tests need an approved champion; whether the gate blocks what it should is
    tested in test_fairness with the default policy, and the quality gate (floors wide open here) in
    test_quality_gate.
    """
    policy = load_policy()
    wide = tuple(
        dataclasses.replace(c, low=0.1, high=10.0)
        if c.kind == "ratio"
        else dataclasses.replace(c, low=-1.0, high=1.0)
        for c in policy.checks
    )
    lenient = dataclasses.replace(
        policy.quality,
        min_auc=dict.fromkeys(policy.quality.min_auc, 0.5),
        max_ece=dict.fromkeys(policy.quality.max_ece, 1.0),
        champion_auc_tolerance=1.0,
        champion_ece_tolerance=1.0,
    )
    return dataclasses.replace(
        policy, checks=wide, quality=lenient, bootstrap_resamples=100, intersections=False
    )


def govern(folder: Path, settings: Settings, name: str, version: str, out: Path) -> Audited:
    """The real gate, then a recorded (test) approval and promotion in the settings' service database."""
    configure(settings)
    uri = f"models:/{name}/{version}"
    outcome = audit_model(uri, folder, policy=permissive_policy())
    report = write_report(outcome, out, test_metrics=MlflowClient().get_run(outcome.run_id).data.metrics)
    mirror_audit(
        uri,
        outcome.gate,
        bundle_sha256=outcome.model.sha256,
        run_id=outcome.run_id,
        folder=out,
        report=report,
    )
    audited = Audited(name, version, outcome.model.sha256, outcome.gate, report, outcome.policy)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    approve_and_promote(engine, audited)
    engine.dispose()
    return audited


def approve_and_promote(engine: Engine, audited: Audited) -> None:
    """Record the audit, a test approval and the promotion in ``engine``'s governance table."""
    name, version = audited.name, audited.version
    with transaction(engine) as session:
        decisions.record_audit(
            session,
            name,
            version=version,
            bundle_sha256=audited.bundle_sha256,
            gate=audited.gate,
            report=audited.report,
            policy=audited.policy,
            actor="tests",
        )
        decisions.record_review(
            session,
            name,
            version=version,
            approve=True,
            reviewer="test-reviewer",
            note="approved by the tests",
            recorded_by="tests",
            # A small folder's audit confirms no comparison (an inconclusive gate): approved as a
            # committee would, with its reason, which the report shows.
            override_reason=None if audited.gate == "pass" else "tests: a cohort too small to assess",
        )
        decisions.record_promotion(session, name, version=version, actor="tests")
