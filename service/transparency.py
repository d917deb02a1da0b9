"""The transparency statement (CoP §6): this deployment's facts, in the institution's own words.

The institution writes only its wording (purposes, what Waymark is never used for, how to read an
indicator, whom to ask) in the file ``WAYMARK_TRANSPARENCY_FILE`` names. Everything that is a fact
about the deployment is read, never written by hand, so the statement cannot drift from what runs:
the data sources present in the batch being served and the families of the features the champion uses
(``ModelBundle.used_features``: a feature constant in training is left out), the
champion's measured accuracy (its training run in the registry) and fairness audit (the governance
record), who sees what (the one table of roles), the retention periods (settings) and when the
retention run last ran, and the last scoring run.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from waymark.models.explain.sentences import and_list
from waymark.models.features.catalogue import FAMILIES, FEATURES
from waymark.models.measured import ENDED_SHARE, SMALL_TEST_POSITIVES, SMALL_TEST_ROWS
from waymark.models.roles import ROLES
from waymark.models.settings import Settings
from waymark.models.vocabulary import labelling_words
from waymark.service import decisions
from waymark.service.db.engine import transaction
from waymark.service.db.schema import Indicator, ModelDecision, Publication, ScoringRun
from waymark.service.retention import last_run_at
from waymark.service.runtime import Champion, Runtime

log = logging.getLogger("waymark.service")
PACKAGED = Path(__file__).resolve().parent / "transparency.toml"
WORDING_KEYS = (
    "purposes",
    "not_purposes",
    "protected_characteristics",
    "no_opt_out",
    "how_to_read",
    "contact",
)
WHO_SEES_WHAT = {role.value: spec.sees for role, spec in ROLES.items()}
_FAMILY_OF = {f.name: f.family for f in FEATURES}
# The student-record data each family of features is built from (activity families name their sources).
RECORD_DATA = {
    "registration_timing": "Module registrations and their dates.",
    "study_history": "The student record: earlier registrations on the module and the credits being studied.",
    "assessment_submissions": (
        "Assessments: due dates (a student's own, where an extension is recorded) and whether and when "
        "work was submitted."
    ),
    "assessment_results": "Assessments: marks of submitted work.",
    "upcoming_assessments": (
        "Assessments: when the next piece of work is due, its weight, whether it is a quiz and how many "
        "are still to come."
    ),
    "cohort_context": (
        "The whole module cohort, as shares and medians: how many have left, how active it is, and how "
        "many have already submitted the next assessment (never another student's own record)."
    ),
}
# The registry's metrics of a training run, in words a reader can check: week by week where the run
# recorded them (``test_auc_w4``, ...), since a mean over weeks is led by the late weeks, when an outcome
# is all but known (a Meridian-like review: "0.87" beside the 0.85 of the week staff were reading);
# the mean over weeks only for a run that recorded no week.
ACCURACY = {
    "auc": "Ranking (AUC, where 1 is perfect and 0.5 is no better than chance): {said}.",
    "recall_at_10pct": (
        "Of the students who went on to the outcome, the share in the first tenth of the list: {said}."
    ),
    "ece": "Calibration (how far an estimate is off, on average): {said}.",
    "brier": "Brier score (lower is better): {said}.",
}
_FORMAT = {"auc": "{:.2f}", "recall_at_10pct": "{:.0%}", "ece": "{:.1%}", "brier": "{:.3f}"}
_WEEK_METRIC = re.compile(r"test_(?P<metric>[a-z_0-9]+?)_w(?P<week>\d+)")


class WordingError(ValueError):
    """The institution's wording file cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class ModelFacts:
    """The champion in service, as the registry and the governance record describe it."""

    name: str
    version: str
    features: tuple[str, ...]
    metrics: Mapping[str, float] | None  # None: the registry could not be read
    gate: str | None
    checks: tuple[str, ...]  # each check's status: pass | fail | not assessable
    characteristics: tuple[str, ...]
    override_reasons: tuple[str, ...]  # one per approving reviewer who set a failed gate aside


@dataclass(frozen=True)
class RunFacts:
    """The published scoring run."""

    run_id: int
    model_version: str
    finished_at: datetime | None
    as_of: str
    students: int
    served: bool
    sources: tuple[str, ...]  # labels of the activity sources its indicators record


@dataclass(frozen=True)
class Facts:
    """Everything about this deployment that the statement reports."""

    model: ModelFacts | None
    run: RunFacts | None
    retention_days: int
    access_log_retention_days: int
    last_retention_run: str | None
    locations: tuple[str, ...] = ()  # where data is processed, from the configuration


def locations(settings: Settings) -> tuple[str, ...]:
    """Where Waymark keeps and processes data: the configured hosts (never credentials or paths)."""
    stores = {
        "The service database": settings.database_url,
        "The model registry": settings.mlflow_tracking_uri,
    }
    return (
        *(f"{what}: {_host(url)}." for what, url in stores.items()),
        # A Swedish DPO asked what Waymark stores of disability support and background: the folder that
        # holds them for the audit had gone unsaid, and the retention run does not reach it.
        "The data folder (the records each import writes, and the characteristics only the fairness "
        "audit reads): where the deployment keeps it (on the machine that runs the imports, training and "
        "scoring, or the store a Spark deployment names). It holds what the "
        "latest imports wrote, outside the retention run: an import replaces it (an append adds to it), "
        "and an erasure reaches "
        "it through `waymark data erase`.",
    )


def _host(url: str) -> str:
    parsed = urlsplit(url)
    if parsed.hostname:
        return f"on the server {parsed.hostname}"
    return "on the machine that runs the service"


@lru_cache(maxsize=8)
def load_wording(path: Path | None = None) -> dict[str, Any]:
    """The institution's wording from ``path`` (the packaged file when None).

    Raises
    ------
    WordingError
        If the file cannot be read or parsed, or lacks one of ``WORDING_KEYS``.
    """
    where = path or PACKAGED
    try:
        raw = tomllib.loads(where.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise WordingError(f"transparency wording {where}: {exc}") from exc
    missing = [k for k in WORDING_KEYS if k not in raw]
    if missing:
        raise WordingError(f"transparency wording {where} lacks {', '.join(missing)}")
    # Read by the public as it is: never a word Waymark never shows of a student.
    found = {k: labelling_words(str(raw[k])) for k in WORDING_KEYS}
    if said := {k: w for k, w in found.items() if w}:
        named = "; ".join(f"{k}: {', '.join(dict.fromkeys(w))}" for k, w in said.items())
        raise WordingError(
            f"transparency wording {where} holds words Waymark never shows of a student ({named}): "
            "say what the service does without them"
        )
    return {k: raw[k] for k in WORDING_KEYS}


def families(features: tuple[str, ...]) -> list[str]:
    """The families the features belong to, in the catalogue's order."""
    used = {_FAMILY_OF[f] for f in features if f in _FAMILY_OF}
    return [name for name in FAMILIES if name in used]


def data_sources(facts: Facts) -> list[str]:
    """What data the model in service uses: record data by family, activity by the sources present."""
    if facts.model is None:
        return ["No model is in service, so no data is being used to make indicators."]
    used = families(facts.model.features)
    out = [RECORD_DATA[f] for f in used if f in RECORD_DATA]
    if any(f.startswith(("act_", "ch_")) for f in facts.model.features):
        out.append(_activity(facts.run))
    return out


def _activity(run: RunFacts | None) -> str:
    if run is None or not run.served:
        return "Activity counts by type (no batch from this model has been published yet)."
    if not run.sources:
        return "Activity counts by type: no activity source is recorded in the data being served."
    return f"Activity counts by type from {and_list(run.sources)} (never what was read, watched or written)."


def accuracy(model: ModelFacts) -> list[str]:
    """The champion's measured accuracy on its test cohort, in words: week by week where recorded."""
    if model.metrics is None:
        return ["The model registry could not be read just now; its measured accuracy is not shown."]
    weekly: dict[str, dict[int, float]] = {}
    for key, value in model.metrics.items():
        found = _WEEK_METRIC.fullmatch(key)
        if found and found["metric"] in ACCURACY:
            weekly.setdefault(found["metric"], {})[int(found["week"])] = value
    left_out = _weeks_left_out(model.metrics)
    weekly = {m: {w: v for w, v in by.items() if w not in left_out} for m, by in weekly.items()}
    weekly = {m: by for m, by in weekly.items() if by}
    lines = []
    for metric, text in ACCURACY.items():
        shown = _FORMAT[metric]
        if metric in weekly:
            said = ", ".join(f"{shown.format(v)} at week {w}" for w, v in sorted(weekly[metric].items()))
        elif f"test_{metric}_mean" in model.metrics:
            said = f"{shown.format(model.metrics[f'test_{metric}_mean'])} on average over the weeks evaluated"
        else:
            continue
        lines.append(text.format(said=said))
    if lines and left_out:
        weeks = ", ".join(str(w) for w in sorted(left_out))
        lines.append(
            f"Not stated for week{'s' if len(left_out) > 1 else ''} {weeks}: too few students to measure, or "
            "after most of the test presentations had ended, when the outcome is all but known."
        )
    return lines or ["No accuracy was recorded for this model's training run."]


def _weeks_left_out(metrics: Mapping[str, float]) -> set[int]:
    """Weeks whose figures say little, where the run recorded what decides it (``models.measured``)."""
    out = set()
    for key, value in metrics.items():
        found = _WEEK_METRIC.fullmatch(key)
        if found is None:
            continue
        metric, week = found["metric"], int(found["week"])
        if (
            (metric == "n" and value < SMALL_TEST_ROWS)
            or (metric == "positives" and value < SMALL_TEST_POSITIVES)
            or (metric == "ended_share" and value >= ENDED_SHARE)
        ):
            out.add(week)
    return out


def fairness(model: ModelFacts) -> str:
    """The fairness audit of the champion in one paragraph."""
    if model.gate is None:
        return "This model has no recorded fairness audit."
    counts = {s: model.checks.count(s) for s in dict.fromkeys(model.checks)}
    tally = ", ".join(f"{n} {status}" for status, n in counts.items()) or "no checks"
    compared = [c.replace("_", " ") for c in model.characteristics]
    unconfirmed = model.gate == "pass" and model.checks and "pass" not in model.checks
    if model.gate == "inconclusive" or unconfirmed:  # nothing clearly broken, no check confirmed whole
        said = (
            "found no group clearly outside a tolerance, but could not confirm any of its checks for "
            "every group"
        )
    elif model.gate != "pass":
        said = "did not pass"
    else:
        said = "passed"
    text = (
        f"The fairness audit {said} ({tally}), "
        f"comparing groups by {and_list(compared) if compared else 'no characteristic'}."
    )
    if len(model.override_reasons) == 1:
        text += f" The ethics committee approved it with this stated reason: {model.override_reasons[0]}"
    elif model.override_reasons:
        reasons = " ".join(f"({i}) {r}" for i, r in enumerate(model.override_reasons, 1))
        text += " The ethics committee approved it with these stated reasons, one per approving reviewer: "
        text += reasons
    return text


def retention(facts: Facts) -> str:
    """The retention periods and how they are applied (there is no built-in scheduler)."""
    last = f"last run on {facts.last_retention_run[:10]}" if facts.last_retention_run else "not yet run"
    return (
        f"Indicators no longer served, notes, interventions, contacts, directory entries, consents and "
        f"closed requests are deleted once older than {facts.retention_days} days, when the retention run "
        f"is made (`waymark retention run` by the operator, or the data protection officer's page; "
        f"{last}). The access log is kept for {facts.access_log_retention_days} days."
    )


def last_run(run: RunFacts | None) -> str:
    """When indicators were last produced, from which data, and whether they are shown."""
    if run is None:
        return "No scoring run has been published yet."
    finished = f"{run.finished_at:%Y-%m-%d}" if run.finished_at else "not finished"
    shown = "" if run.served else " Its indicators are not shown: its model is no longer approved."
    return (
        f"Scoring run {run.run_id} ({finished}) used data up to {run.as_of} and produced "
        f"{run.students} indicators with model version {run.model_version}.{shown}"
    )


def statement(facts: Facts, wording: Mapping[str, Any]) -> dict[str, Any]:
    """The statement: the institution's wording around this deployment's facts."""
    model = facts.model
    return {
        **wording,
        "data_sources": data_sources(facts),
        "who_sees_what": WHO_SEES_WHAT,
        "every_access_is_recorded": True,
        "model": None if model is None else {"name": model.name, "version": model.version},
        "features": [] if model is None else [FAMILIES[f].title for f in families(model.features)],
        "accuracy": [] if model is None else accuracy(model),
        "fairness": "No model is in service." if model is None else fairness(model),
        "last_scoring_run": last_run(facts.run),
        "retention": retention(facts),
        "processing_locations": list(facts.locations),
    }


# Reading the facts: the registry and the served batch are read once per model version and run.


def gather(runtime: Runtime) -> Facts:
    """The deployment's facts now."""
    settings = runtime.settings
    champion = runtime.champion
    with transaction(runtime.engine) as session:
        model = None if champion is None else _model(session, settings, champion=champion)
        run = _run(session, settings, served=None if champion is None else champion.version)
        last = last_run_at(session)
    return Facts(
        model=model,
        run=run,
        retention_days=settings.retention_days,
        access_log_retention_days=settings.access_log_retention_days,
        last_retention_run=last,
        locations=locations(settings),
    )


# What the statement reads of an audit's report (its checks' statuses, the characteristics compared),
# by audit id and report hash. The report is large (hundreds of kB on a real cohort) and hashed to check
# it is unchanged; read and hashed on every request, it made the public statement cost 15 times a
# health check (a red team's finding). A report found unchanged once is not read again for the same
# audit; one missing or changed is looked for again each time. A stored report changed after it was
# read is therefore not noticed here until a restart: the statement keeps the summary of what was
# audited, and the champion's own checks (``decisions.champion``) read the report afresh.
_SUMMARIES: dict[tuple[int, str], tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _audit_summary(session: Session, audited: ModelDecision) -> tuple[tuple[str, ...], tuple[str, ...]]:
    key = (audited.id, audited.report_sha256 or "")
    found = _SUMMARIES.get(key)  # read once: another request may clear the dict meanwhile
    if found is None:
        report = decisions.audit_report(session, audited)
        if report is None:
            return (), ()
        gate = report.get("gate", {})
        found = (
            tuple(str(c.get("status")) for c in gate.get("checks", [])),
            tuple(report["data"]["characteristics"]),
        )
        if len(_SUMMARIES) >= 64:
            _SUMMARIES.clear()
        _SUMMARIES[key] = found
    return found


def _model(session: Session, settings: Settings, *, champion: Champion) -> ModelFacts:
    name, version = settings.model_name, champion.version
    audited = decisions.latest_audit(session, name, version=version)
    checks, characteristics = _audit_summary(session, audited) if audited else ((), ())
    return ModelFacts(
        name=name,
        version=version,
        features=champion.features,
        metrics=None if champion.metrics is None else dict(champion.metrics),
        gate=audited.gate if audited else None,
        checks=checks,
        characteristics=characteristics,
        override_reasons=tuple(decisions.override_reasons(session, audited)) if audited else (),
    )


def _run(session: Session, settings: Settings, *, served: str | None) -> RunFacts | None:
    run = session.scalar(
        select(ScoringRun)
        .join(Publication, Publication.run_id == ScoringRun.id)
        .where(Publication.target == settings.target)
    )
    if run is None:
        return None
    return RunFacts(
        run_id=run.id,
        model_version=run.model_version,
        finished_at=run.finished_at,
        as_of=run.data_as_of,
        students=run.students,
        served=run.model_name == settings.model_name and run.model_version == served,
        sources=_sources(session, settings.database_url, run=run),
    )


# A published run never changes, so its sources are read once; the key holds its start time too, so a
# database recreated with the same run ids (a reset, a test database) is not answered from memory.
_SOURCES: dict[tuple[str, int, str], tuple[str, ...]] = {}


def _sources(session: Session, database: str, *, run: ScoringRun) -> tuple[str, ...]:
    """Labels of the activity sources recorded anywhere in a run's indicators (a published run is fixed)."""
    run_id = run.id
    key = (database, run_id, str(run.started_at))
    if key not in _SOURCES:
        seen: dict[str, None] = {}
        rows = session.scalars(select(Indicator.coverage).where(Indicator.run_id == run_id))
        for coverage in rows.yield_per(5000):
            seen.update(dict.fromkeys(coverage.get("sources_recorded", [])))
        _SOURCES[key] = tuple(seen)
    return _SOURCES[key]
