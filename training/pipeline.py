"""The training pipeline: data -> features -> labels -> temporal split -> fit -> evaluate -> bundle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from waymark.models.bundle import ModelBundle, from_pipeline
from waymark.models.data import load_learning_data, read_manifest
from waymark.models.features import FEATURE_NAMES, KEYS, build_features, population
from waymark.models.targets import Target, labels
from waymark.models.uncertainty import reliability_table
from waymark.training.evaluation import lead_time, weekly_metrics
from waymark.training.fitting import FitConfig, choose_family, fit, out_of_fold_margins, platt, sigmoid
from waymark.training.split import TemporalSplit, default_test_from, temporal_split

MIN_POSITIVES = 20
Progress = Callable[[str], None]


class TrainingConfigError(ValueError):
    """The run cannot go ahead as configured; the message says what to change."""


@dataclass(frozen=True, eq=False)
class TrainingOutcome:
    """What a run produced, ready to be tracked."""

    target: Target
    family: str
    config: FitConfig
    split: TemporalSplit
    bundle: ModelBundle
    validation: pd.DataFrame  # metrics per family and week on the validation presentations
    test_weekly: pd.DataFrame  # metrics per week on the test presentations
    lead: dict[str, float]
    train_rows: pd.DataFrame  # keys, features, label (for lineage and the signature)
    test_scored: pd.DataFrame  # keys, label, outcome_day, probability
    folder: Path
    manifest: dict[str, object]


def _in(frame: pd.DataFrame, presentations: tuple[tuple[str, str], ...]) -> np.ndarray:
    wanted = (
        pd.MultiIndex.from_tuples(presentations)
        if presentations
        else pd.MultiIndex.from_tuples([], names=["a", "b"])
    )
    return pd.MultiIndex.from_frame(frame[["module_id", "presentation_id"]]).isin(wanted)


def _check(rows: pd.DataFrame, mask: np.ndarray, where: str, target: Target) -> None:
    y = rows.loc[mask, "label"]
    positives, negatives = int(y.sum()), int((1 - y).sum())
    if min(positives, negatives) < MIN_POSITIVES:
        raise TrainingConfigError(
            f"too few examples to {where}: {positives} positive and {negatives} negative rows for "
            f"target {target.value} (at least {MIN_POSITIVES} of each needed). Use more students, a "
            "different --test-from, or the other target."
        )


def train(
    folder: Path,
    target: Target,
    config: FitConfig | None = None,
    test_from: date | None = None,
    progress: Progress | None = None,
    exclude: frozenset[str] = frozenset(),
) -> TrainingOutcome:
    """Train, choose, calibrate and evaluate a model for ``target`` on the data in ``folder``.

    Parameters
    ----------
    folder
        A data folder in the contract.
    target
        What to predict.
    config
        Seed, families and sizes; defaults when None.
    test_from
        First start date of the test presentations; the data folder's recommendation when None.
    progress
        Called with a short description as each stage starts.
    exclude
        Students who asked for erasure (CoP §12): left out of training and evaluation.

    Returns
    -------
    TrainingOutcome
        The calibrated bundle and its temporal evaluation.
    """
    config = config or FitConfig()
    say = progress or (lambda _msg: None)
    say("loading and validating data")
    data = load_learning_data(folder).without(exclude)
    manifest = read_manifest(folder)
    split = temporal_split(data.presentations, test_from or default_test_from(data.presentations, manifest))
    say("building weekly features")
    features = build_features(data)
    pop = population(data.registrations, data.presentations)
    rows = features.merge(labels(target, pop, data.tables()), on=list(KEYS), how="inner")
    train_mask, test_mask = _in(rows, split.train), _in(rows, split.test)
    val_mask = _in(rows, split.validation)
    _check(rows, train_mask, "train on", target)
    _check(rows, test_mask, "test on", target)
    x = rows[list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
    y = rows["label"].to_numpy(dtype=np.int64)
    family, validation = _choose(config, rows, x, y, train_mask, val_mask, say)
    say(f"fitting {family} on all training presentations and calibrating out of fold")
    pipeline = fit(family, config, x[train_mask], y[train_mask])
    oof = out_of_fold_margins(
        family, config, x[train_mask], y[train_mask], rows.loc[train_mask, "student_id"].to_numpy()
    )
    students = rows.loc[train_mask, "student_id"].to_numpy()
    a, b = platt(oof, y[train_mask])
    table = reliability_table(sigmoid(a * oof + b), y[train_mask], students)
    bundle = from_pipeline(target.value, family, pipeline, FEATURE_NAMES, (a, b), table)
    say("evaluating on the later presentations")
    scored = rows.loc[test_mask, [*KEYS, "label", "outcome_day"]].assign(
        probability=bundle.probability(x[test_mask])
    )
    lead = lead_time(scored) if target is Target.NOT_COMPLETING else {}
    return TrainingOutcome(
        target,
        family,
        config,
        split,
        bundle,
        validation,
        weekly_metrics(scored),
        lead,
        rows.loc[train_mask, [*KEYS, *FEATURE_NAMES, "label"]],
        scored,
        folder,
        manifest,
    )


def _choose(
    config: FitConfig,
    rows: pd.DataFrame,
    x: np.ndarray,
    y: np.ndarray,
    train_mask: np.ndarray,
    val_mask: np.ndarray,
    say: Progress,
) -> tuple[str, pd.DataFrame]:
    fit_mask = train_mask & ~val_mask
    if len(config.families) == 1:
        return config.families[0], pd.DataFrame()
    if not val_mask.any() or min(int(y[fit_mask].sum()), int((1 - y[fit_mask]).sum())) < MIN_POSITIVES:
        raise TrainingConfigError(
            "cannot choose between model families: the training period needs presentations that "
            "start on at least two dates (earlier ones fit, the latest validates). Pass "
            "--family to train one family, or a later --test-from."
        )
    say(f"choosing a model family on the validation presentations ({', '.join(config.families)})")
    validation = rows.loc[val_mask, [*KEYS, "label"]]
    return choose_family(config, x[fit_mask], y[fit_mask], validation, x[val_mask])
