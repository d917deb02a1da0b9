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

from waymark.models import registry
from waymark.models.registry import Version

GATE_TAG, GATE_SHA_TAG, GATE_AT_TAG = "fairness_gate", "fairness_bundle_sha256", "fairness_audited_at"
QUALITY_TAG = "quality_gate"
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


def record_event(action: str, version: Version, *, actor: str, detail: str) -> Event:
    """Keep an event as a run of its own."""
    event = Event(
        action=action, model=version.name, version=version.version, actor=actor, detail=detail, at=_now()
    )
    registry.record_run(
        EXPERIMENT,
        f"{action} {version.name} v{version.version}",
        tags={"action": action, "model": event.model, "version": event.version, "actor": actor},
        params={"at": event.at, "detail": detail[:6000]},
    )
    return event


def events(name: str | None = None) -> list[Event]:
    """Every kept event, oldest first (optionally for one registered model)."""
    out = [
        Event(
            action=r.tags["action"],
            model=r.tags["model"],
            version=r.tags["version"],
            actor=r.tags["actor"],
            detail=r.params.get("detail", ""),
            at=r.params.get("at", ""),
        )
        for r in registry.runs(EXPERIMENT)
    ]
    return [e for e in out if name is None or e.model == name]


def mirror_audit(
    uri: str, gate: str, *, bundle_sha256: str, run_id: str, folder: Path, report: dict[str, Any]
) -> Version:
    """Attach the audit's files to the model's run and mirror the gates' results onto the version's tags.

    The files include the quality gate's result and its comparison with the champion
    (quality_gate.json, quality_comparison.csv); the audit's event run records both gates.
    """
    version = registry.resolve(uri)
    stamp = _now().replace(":", "")
    registry.keep_files(run_id, folder, artifact_path=f"fairness/{stamp}")
    quality = report.get("quality_gate") or {}
    tags = {GATE_TAG: gate, GATE_SHA_TAG: bundle_sha256, GATE_AT_TAG: stamp}
    registry.tag_version(version, tags | ({QUALITY_TAG: quality["status"]} if quality else {}))
    summary = {
        "gate": gate,
        "quality_gate": quality.get("status"),
        "quality_checks": quality.get("checks", []),
    }
    detail = _fitted(summary | {"checks": report["gate"]["checks"]})
    record_event("fairness_audit", version, actor="waymark fairness audit", detail=detail)
    return version


#: MLflow keeps a parameter of at most this many characters.
DETAIL_LIMIT = 6000


def _fitted(summary: dict[str, Any]) -> str:
    """``summary`` as JSON within ``DETAIL_LIMIT``: the checks' reasons shortened, then left out.

    Cut at the limit, the JSON could not be read back (a quality gate failing on every week did not
    fit); the reasons are all in the audit's files kept with the model's run.
    """
    text = json.dumps(summary)
    for keep in (3, 1, 0):
        if len(text) <= DETAIL_LIMIT:
            break
        shorter = {
            key: [_with_reasons(c, keep) for c in value] if key in {"checks", "quality_checks"} else value
            for key, value in summary.items()
        }
        text = json.dumps(shorter)
    if len(text) > DETAIL_LIMIT:
        text = json.dumps({k: summary.get(k) for k in ("gate", "quality_gate")})
    return text


def _with_reasons(check: Any, keep: int) -> Any:
    if not isinstance(check, dict) or len(check.get("reasons", [])) <= keep:
        return check
    left = len(check["reasons"]) - keep
    return check | {"reasons": [*check["reasons"][:keep], f"and {left} more (in the audit's files)"]}


def mirror_review(
    uri: str, decision: str, *, reviewer: str, note: str, override_reason: str | None = None
) -> Version:
    """Mirror a decision recorded in Waymark's database onto the version's tags and event runs."""
    version = registry.resolve(uri)
    tags = {DECISION_TAG: decision, REVIEWER_TAG: reviewer, DECIDED_AT_TAG: _now(), NOTE_TAG: note}
    if override_reason:
        tags[OVERRIDE_TAG] = override_reason
    registry.tag_version(version, tags, remove=() if override_reason else (OVERRIDE_TAG,))
    if version.run_id:  # beside the model card: the decision, and any override, for the record
        registry.keep_text(
            version.run_id,
            _decision_record(
                version, decision, reviewer=reviewer, note=note, override_reason=override_reason
            ),
            artifact_file=f"fairness/decisions/{_now().replace(':', '')}-{decision}.md",
        )
    detail = note if not override_reason else f"{note} (gate overridden: {override_reason})"
    record_event(f"review_{decision}", version, actor=reviewer, detail=detail)
    return version


def _decision_record(
    version: Version, decision: str, *, reviewer: str, note: str, override_reason: str | None
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


def mirror_promotion(name: str, version: str, *, actor: str) -> None:
    """Mirror a promotion recorded in Waymark's database: move alias ``champion`` and keep the event."""
    registry.point_alias(name, CHAMPION, number=version)
    record_event(
        "promoted", registry.version(name, version), actor=actor, detail=f"alias {CHAMPION} -> {version}"
    )


def mirror_refusal(name: str, version: str, *, actor: str, reasons: list[str]) -> None:
    """Keep a refused promotion as an event too."""
    record_event("promotion_refused", registry.version(name, version), actor=actor, detail="; ".join(reasons))
