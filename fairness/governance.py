"""The MLflow mirror of governance: tags, the champion alias and event runs, for people browsing MLflow.

The decisions themselves live in Waymark's database (``service.decisions``), which is the only thing
promotion and the champion check trust: anyone with registry write access can edit a tag or an alias.
Here the gate result and the ethics decision are copied onto the exact model version's tags, the
alias ``champion`` follows promotions, and every event (audit, review, promotion, refused promotion) is
kept as its own run in the ``waymark-governance`` experiment.
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

from waymark.models.registry import resolve

GATE_TAG, GATE_SHA_TAG, GATE_AT_TAG = "fairness_gate", "fairness_bundle_sha256", "fairness_audited_at"
DECISION_TAG, REVIEWER_TAG, DECIDED_AT_TAG, NOTE_TAG = (
    "ethics_decision",
    "ethics_reviewer",
    "ethics_decided_at",
    "ethics_note",
)
OVERRIDE_TAG = "ethics_gate_override"
CHAMPION = "champion"
EXPERIMENT = "waymark-governance"


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


def mirror_audit(
    uri: str, gate: str, bundle_sha256: str, run_id: str, folder: Path, report: dict[str, Any]
) -> ModelVersion:
    """Attach the audit's files to the model's run and mirror the gate result onto the version's tags."""
    version = resolve(uri)
    client = MlflowClient()
    stamp = _now().replace(":", "")
    client.log_artifacts(run_id, str(folder), artifact_path=f"fairness/{stamp}")
    for key, value in {GATE_TAG: gate, GATE_SHA_TAG: bundle_sha256, GATE_AT_TAG: stamp}.items():
        client.set_model_version_tag(version.name, version.version, key, value)
    summary = json.dumps({"gate": gate, "checks": report["gate"]["checks"]})[:6000]
    record_event("fairness_audit", version, "waymark fairness audit", summary)
    return version


def mirror_review(
    uri: str, decision: str, reviewer: str, note: str, override_reason: str | None = None
) -> ModelVersion:
    """Mirror a decision recorded in Waymark's database onto the version's tags and event runs."""
    version = resolve(uri)
    tags = {DECISION_TAG: decision, REVIEWER_TAG: reviewer, DECIDED_AT_TAG: _now(), NOTE_TAG: note}
    if override_reason:
        tags[OVERRIDE_TAG] = override_reason
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(version.name, version.version, key, value)
    if not override_reason and OVERRIDE_TAG in version.tags:
        client.delete_model_version_tag(version.name, version.version, OVERRIDE_TAG)
    if version.run_id:  # beside the model card: the decision, and any override, for the record
        client.log_text(version.run_id, _decision_record(version, decision, reviewer, note, override_reason),
                        f"fairness/decisions/{_now().replace(':', '')}-{decision}.md")  # fmt: skip
    detail = note if not override_reason else f"{note} (gate overridden: {override_reason})"
    record_event(f"review_{decision}", version, reviewer, detail)
    return version


def _decision_record(
    version: ModelVersion, decision: str, reviewer: str, note: str, override_reason: str | None
) -> str:
    lines = [
        f"# Ethics committee decision: {version.name} version {version.version}",
        "",
        f"Decision: **{decision}**, by {reviewer}, {_now()}.",
        "",
        f"Reasons: {note}",
    ]
    if override_reason:
        lines += [
            "",
            f"**The fairness gate failed and was overridden.** The committee's reason: {override_reason}",
        ]
    return "\n".join(lines) + "\n"


def mirror_promotion(name: str, version: str, actor: str) -> None:
    """Mirror a promotion recorded in Waymark's database: move alias ``champion`` and keep the event."""
    client = MlflowClient()
    client.set_registered_model_alias(name, CHAMPION, version)
    record_event("promoted", client.get_model_version(name, version), actor, f"alias {CHAMPION} -> {version}")


def mirror_refusal(name: str, version: str, actor: str, reasons: list[str]) -> None:
    """Keep a refused promotion as an event too."""
    version_ = MlflowClient().get_model_version(name, version)
    record_event("promotion_refused", version_, actor, "; ".join(reasons))
