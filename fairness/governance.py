"""Governance of model versions: the audit's gate result, the ethics decision, promotion.

State lives as tags on the exact model version, so a decision about version 3 can never count for
version 4; the gate result also records the bundle hash it was computed on. Every event (audit,
review, promotion, refused promotion) is also kept as its own run in the ``waymark-governance``
experiment, which nothing edits or deletes, so the history survives later decisions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from models.registry import SHA_TAG, resolve

GATE_TAG, GATE_SHA_TAG, GATE_AT_TAG = "fairness_gate", "fairness_bundle_sha256", "fairness_audited_at"
DECISION_TAG, REVIEWER_TAG, DECIDED_AT_TAG, NOTE_TAG = (
    "ethics_decision",
    "ethics_reviewer",
    "ethics_decided_at",
    "ethics_note",
)
CHAMPION = "champion"
EXPERIMENT = "waymark-governance"


class GovernanceError(Exception):
    """A governance action was refused; the message gives the reason."""


@dataclass(frozen=True)
class Event:
    """One governance event."""

    action: str
    model: str
    version: str
    actor: str
    detail: str
    at: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _experiment() -> str:
    found = mlflow.get_experiment_by_name(EXPERIMENT)
    return str(found.experiment_id) if found else str(mlflow.create_experiment(EXPERIMENT))


def record_event(action: str, version: ModelVersion, actor: str, detail: str) -> Event:
    """Keep an event as a run of its own."""
    event = Event(action, version.name, str(version.version), actor, detail, _now())
    with mlflow.start_run(
        experiment_id=_experiment(), run_name=f"{action} {version.name} v{version.version}"
    ):
        mlflow.set_tags({"action": action, "model": event.model, "version": event.version, "actor": actor})
        mlflow.log_params({"at": event.at, "detail": detail[:6000]})
    return event


def events(name: str | None = None) -> list[Event]:
    """Every kept event, oldest first (optionally for one registered model)."""
    found = mlflow.get_experiment_by_name(EXPERIMENT)
    if found is None:
        return []
    runs = MlflowClient().search_runs(
        [found.experiment_id], order_by=["attributes.start_time ASC"], max_results=50000
    )
    out = [
        Event(
            r.data.tags["action"],
            r.data.tags["model"],
            r.data.tags["version"],
            r.data.tags["actor"],
            r.data.params.get("detail", ""),
            r.data.params.get("at", ""),
        )
        for r in runs
    ]
    return [e for e in out if name is None or e.model == name]


def record_audit(
    uri: str, gate: str, bundle_sha256: str, run_id: str, folder: Path, report: dict[str, Any]
) -> ModelVersion:
    """Attach the audit's files to the model's run and tag the version with the gate result."""
    version = resolve(uri)
    client = MlflowClient()
    stamp = _now().replace(":", "")
    client.log_artifacts(run_id, str(folder), artifact_path=f"fairness/{stamp}")
    for key, value in {GATE_TAG: gate, GATE_SHA_TAG: bundle_sha256, GATE_AT_TAG: stamp}.items():
        client.set_model_version_tag(version.name, version.version, key, value)
    summary = json.dumps({"gate": gate, "checks": report["gate"]["checks"]})[:6000]
    record_event("fairness_audit", version, "waymark fairness audit", summary)
    return version


def record_review(uri: str, approve: bool, reviewer: str, note: str) -> ModelVersion:
    """Record the ethics committee's decision on exactly this version."""
    if not reviewer.strip() or not note.strip():
        raise GovernanceError("a review needs the reviewer's identifier and a note giving the reasons")
    version = resolve(uri)
    decision = "approved" if approve else "rejected"
    client = MlflowClient()
    for key, value in {
        DECISION_TAG: decision,
        REVIEWER_TAG: reviewer,
        DECIDED_AT_TAG: _now(),
        NOTE_TAG: note,
    }.items():
        client.set_model_version_tag(version.name, version.version, key, value)
    record_event(f"review_{decision}", version, reviewer, note)
    return version


def promotion_blockers(version: ModelVersion) -> list[str]:
    """Why ``version`` may not become champion (empty when it may)."""
    tags = version.tags
    reasons = []
    gate = tags.get(GATE_TAG)
    if gate is None:
        reasons.append("no fairness audit is recorded for this version: run `waymark fairness audit`")
    elif gate != "pass":
        reasons.append(
            f"the fairness gate result is '{gate}': a model that breaks a tolerance cannot be promoted"
        )
    elif tags.get(GATE_SHA_TAG) != tags.get(SHA_TAG):
        reasons.append("the fairness audit was made on different model files: audit this version again")
    decision = tags.get(DECISION_TAG)
    if decision is None:
        reasons.append(
            "no ethics committee approval is recorded for this version: `waymark model review --approve`"
        )
    elif decision != "approved":
        reasons.append(f"the ethics committee's decision on this version is '{decision}'")
    return reasons


def promote(uri: str, actor: str = "waymark model promote") -> ModelVersion:
    """Move alias ``champion`` to this version, only if the gate passed and an approval is recorded."""
    version = resolve(uri)
    blockers = promotion_blockers(version)
    if blockers:
        record_event("promotion_refused", version, actor, "; ".join(blockers))
        raise GovernanceError(
            f"{version.name} version {version.version} cannot be promoted: " + "; ".join(blockers)
        )
    MlflowClient().set_registered_model_alias(version.name, CHAMPION, version.version)
    record_event("promoted", version, actor, f"alias {CHAMPION} now points to version {version.version}")
    return version
