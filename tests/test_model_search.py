"""Model search that respects time, monotone directions, and the feature-family ablation (issue #15)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from waymark.models.estimators import GBM_PARAMS, MONOTONE_DIRECTIONS
from waymark.models.features import FEATURE_NAMES, FEATURES
from waymark.models.targets import Target
from waymark.training import search
from waymark.training.ablation import ALL, family_ablation
from waymark.training.fitting import FitConfig, fit, margins
from waymark.training.pipeline import train_folder
from waymark.training.search import GRID, _folds, mean_weekly_auc, search_gbm

FAST = FitConfig(seed=3, gbm_estimators=30, cv_folds=2)
COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


def _rows(n: int = 1600, *, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Rows over weeks 2 and 6 whose label follows asm_submitted_share (and a little act_total)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURE_NAMES)))
    week = np.where(np.arange(n) % 2 == 0, 2.0, 6.0)
    x[:, COL["weeks_elapsed"]] = week
    signal = -1.5 * x[:, COL["asm_submitted_share"]] - 0.5 * x[:, COL["act_total"]]
    y = (rng.random(n) < 1 / (1 + np.exp(-signal))).astype(np.int64)
    rows = pd.DataFrame(x, columns=list(FEATURE_NAMES)).assign(
        student_id=[f"S{i}" for i in range(n)],
        module_id="M",
        presentation_id=np.where(np.arange(n) < n // 2, "early", "late"),
        week=week.astype(int),
        label=y,
    )
    return rows, x, y


class _Fixed:
    def __init__(self, score: np.ndarray) -> None:
        self.score = score

    def predict_proba(self, _x: np.ndarray) -> np.ndarray:
        return np.column_stack([1 - self.score, self.score])


def test_the_search_scores_the_mean_of_each_weeks_auc_not_the_pooled_auc() -> None:
    x = np.zeros((8, len(FEATURE_NAMES)))
    x[:4, COL["weeks_elapsed"]], x[4:, COL["weeks_elapsed"]] = 2, 6
    y = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    # Perfect within each week, but week 6's scores all sit below week 2's: pooled AUC is worse.
    score = np.array([0.8, 0.85, 0.9, 0.95, 0.1, 0.15, 0.2, 0.25])
    assert roc_auc_score(y, score) < 1
    assert mean_weekly_auc(_Fixed(score), x, y) == 1.0


def test_with_validation_rows_the_search_fits_on_the_earlier_and_scores_on_the_later() -> None:
    rows, _, y = _rows(200)
    late = (rows["presentation_id"] == "late").to_numpy()
    [(fit_idx, val_idx)] = _folds(FAST, rows, y=y, val_mask=late)
    assert set(fit_idx) == set(np.flatnonzero(~late)) and set(val_idx) == set(np.flatnonzero(late))
    grouped = _folds(FAST, rows, y=y, val_mask=np.zeros(len(y), dtype=bool))
    assert len(grouped) == FAST.cv_folds  # no later presentation: grouped folds instead


def test_the_search_returns_grid_settings_that_differ_from_the_defaults() -> None:
    rows, x, y = _rows()
    late = (rows["presentation_id"] == "late").to_numpy()
    config, table = search_gbm(FAST, rows, x=x, y=y, val_mask=late)
    chosen = dict(config.gbm_params)
    assert all(value in GRID[name] and GBM_PARAMS.get(name) != value for name, value in chosen.items())
    first = table[table["iter"] == 0]
    assert len(first) == np.prod([len(v) for v in GRID.values()])  # every grid point was tried
    assert table["mean_test_score"].max() > 0.7  # the label follows two features


def test_monotone_directions_hold_for_what_a_student_does() -> None:
    _, x, y = _rows(seed=1)
    y = (np.sin(1.5 * x[:, COL["act_total"]]) < 0).astype(np.int64)  # up and down with activity
    probe = np.repeat(x[:50], 21, axis=0)
    probe[:, COL["act_total"]] = np.tile(np.linspace(-3, 3, 21), 50)
    config = replace(FAST, gbm_estimators=100)
    free = margins(fit("gbm", config, x=x, y=y), probe).reshape(50, 21)
    fixed = margins(fit("gbm", replace(config, monotone=True), x=x, y=y), probe).reshape(50, 21)
    assert MONOTONE_DIRECTIONS["act_total"] == -1
    assert (np.diff(fixed, axis=1) <= 1e-9).all()  # more activity never raises the estimate
    assert (np.diff(free, axis=1) > 1e-9).any()  # unconstrained, the wiggle shows


def test_the_ablation_removes_each_family_and_shows_which_carries_the_signal() -> None:
    rows, _, _ = _rows(2400, seed=2)
    late = (rows["presentation_id"] == "late").to_numpy()
    table = family_ablation("gbm", FAST, rows=rows, val_mask=late)
    assert list(table.index) == [ALL, *dict.fromkeys(f.family for f in FEATURES)]
    assert list(table.columns) == [2, 6]
    drop = table.loc[ALL] - table
    assert drop.loc["assessment_submissions"].min() > 0.1  # asm_submitted_share made the label
    assert drop.drop(index=["assessment_submissions", "regularity"]).abs().max().max() < 0.05


def test_a_searched_run_carries_its_settings_and_still_chooses_the_family_on_validation(
    synth_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two points, neither the default (15 leaves), not the whole grid (searched above): the run's
    # wiring is tested here, not the search.
    monkeypatch.setattr(search, "GRID", {"num_leaves": [7, 31]})
    outcome = train_folder(synth_dir, target=Target.NOT_COMPLETING, config=replace(FAST, search=True))
    assert dict(outcome.config.gbm_params)["num_leaves"] in {7, 31}
    assert set(outcome.validation["family"]) == set(FAST.families)
