"""``waymark score``: load the champion, score and explain the cohort, publish the batch atomically."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pandas as pd
from sqlalchemy import Engine

from models.data import folder_fingerprint, load_learning_data, read_manifest
from models.explain import explain_cohort
from service.scoring import publish
from service.scoring.champion import load_champion
from service.scoring.cohort import Cohort, CohortError, build_cohort, current_presentations

Progress = Callable[[str], None]
DEFAULT_CHUNK_ROWS = 5000


class ScoringError(Exception):
    """A scoring run could not complete; the previously published batch is still served."""


@dataclass(frozen=True)
class ScoringSummary:
    """What a completed run published."""

    run_id: int
    model: str
    version: str
    students: int
    weeks: tuple[int, ...]
    as_of: str


def _records(
    cohort: Cohort, indicators: pd.DataFrame, previous: dict[tuple[str, str, str], float]
) -> list[dict[str, Any]]:
    frame = indicators.merge(cohort.as_of, on=["module_id", "presentation_id", "week"], how="left").merge(
        cohort.placement, on="student_id", how="left"
    )
    records = cast(list[dict[str, Any]], frame.to_dict("records"))
    for rec in records:
        rec["week"] = int(rec["week"])
        for key in ("probability", "lower", "upper"):
            rec[key] = float(rec[key])
        for key in ("programme_id", "school_id"):
            value = rec.get(key)
            rec[key] = (
                None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
            )
        rec["previous_probability"] = previous.get(
            (rec["student_id"], rec["module_id"], rec["presentation_id"])
        )
    return records


def _chunks(records: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(records), size):
        yield records[start : start + size]


def score(
    folder: Path,
    engine: Engine,
    model_name: str,
    week: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Progress | None = None,
) -> ScoringSummary:
    """Score ``folder`` with the champion of ``model_name`` and publish the batch.

    Raises
    ------
    ChampionUnavailableError
        If there is no approved champion whose files match their hash.
    ScoringError
        If the data cannot be scored; nothing is published and the previous batch stays served.
    """
    say = progress or (lambda _msg: None)
    say(f"loading the champion of {model_name}")
    model = load_champion(model_name)
    say("loading and validating data")
    manifest = read_manifest(folder)
    data = load_learning_data(folder, choose=lambda pres: current_presentations(pres, manifest))
    try:
        cohort = build_cohort(data, week)
        say(f"scoring and explaining {len(cohort.features):,} registrations")
        explained = explain_cohort(model.bundle, cohort.features)
    except (CohortError, ValueError) as exc:
        raise ScoringError(f"cannot score {folder}: {exc}") from exc
    target = model.bundle.target
    publish.clear_unfinished(engine)
    records = _records(cohort, explained.indicators, publish.previous_probabilities(engine, target))
    meta = {
        "target": target,
        "model_name": model.name,
        "model_version": model.version,
        "bundle_sha256": model.sha256,
        "data_fingerprint": folder_fingerprint(folder),
        "data_as_of": max(cohort.as_of["as_of"]),
    }
    run_id = publish.start_run(engine, meta)
    try:
        say(f"writing run {run_id}")
        written = publish.write_chunks(engine, run_id, _chunks(records, chunk_rows))
        publish.swap(engine, run_id, target, written)
    except BaseException:
        publish.mark_failed(engine, run_id)
        raise
    weeks = tuple(sorted({int(w) for w in cohort.as_of["week"]}))
    return ScoringSummary(run_id, model.name, model.version, written, weeks, str(meta["data_as_of"]))
