"""Searching LightGBM's settings without looking past the training period.

Successive halving (scikit-learn's ``HalvingGridSearchCV``) over a small grid, rows as the resource:
every candidate is fitted and scored on a sample of the rows (a 27th, at least ``MIN_ROWS``), the
better third go on with three times as many, until the last round uses them all. (Boosting rounds as
the resource favoured fast learning rates, which look best after few rounds.) Each is scored by the
mean weekly AUC the family choice uses, on the same rows: fitted on the presentations before the
latest training start and scored on those starting then, or, when there are none, on grouped folds
inside the training period (``training.choice``). The test presentations are never seen.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from sklearn.experimental import enable_halving_search_cv  # noqa: F401  (makes the class importable)
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import HalvingGridSearchCV, StratifiedGroupKFold

from waymark.models.estimators import FAMILIES, GBM_PARAMS
from waymark.models.features import FEATURE_NAMES
from waymark.training.choice import cv_groups
from waymark.training.fitting import FitConfig

#: The grid searched; the defaults (``GBM_PARAMS``) are among its points.
GRID: dict[str, list[float | int]] = {
    "learning_rate": [0.025, 0.05],
    "num_leaves": [7, 15, 31],
    "min_child_samples": [50, 200, 500],
    "colsample_bytree": [0.5, 0.8],
}
HALVING_FACTOR = 3
# Fewer rows than this leave leaves of min_child_samples empty, and every candidate ties; a smaller
# institution's search is then a plain grid search on all its rows.
MIN_ROWS = 20_000
_WEEK = FEATURE_NAMES.index("weeks_elapsed")


def mean_weekly_auc(estimator: object, x: np.ndarray, y: np.ndarray) -> float:  # noqa: PLR0917 (a scorer)
    """Scorer: the mean over prediction weeks (read from the weeks_elapsed column) of each week's AUC."""
    score = estimator.predict_proba(x)[:, 1]  # type: ignore[attr-defined]
    weeks = x[:, _WEEK]
    aucs = [
        roc_auc_score(y[weeks == w], score[weeks == w])
        for w in np.unique(weeks)
        if 0 < y[weeks == w].sum() < (weeks == w).sum()
    ]
    return float(np.mean(aucs)) if aucs else float("nan")


def _folds(
    config: FitConfig, rows: pd.DataFrame, *, y: np.ndarray, val_mask: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One temporal split (earlier presentations fit, the latest validate), else grouped folds."""
    if val_mask.any() and (~val_mask).any():
        return [(np.flatnonzero(~val_mask), np.flatnonzero(val_mask))]
    groups, _ = cv_groups(rows, folds=config.cv_folds)
    splitter = StratifiedGroupKFold(n_splits=config.cv_folds, shuffle=True, random_state=config.seed)
    return list(splitter.split(rows, y, groups))


def search_gbm(
    config: FitConfig, rows: pd.DataFrame, *, x: np.ndarray, y: np.ndarray, val_mask: np.ndarray
) -> tuple[FitConfig, pd.DataFrame]:
    """``config`` with the LightGBM settings that scored best on validation.

    Parameters
    ----------
    config
        Seed, boosting rounds and folds.
    rows
        The training rows (keys), in the order of ``x`` and ``y``.
    x, y
        Their features and labels.
    val_mask
        The rows of the latest training presentations (none: grouped folds instead).

    Returns
    -------
    tuple
        The config with ``gbm_params`` set, and every candidate's settings, rounds and score.
    """
    model = FAMILIES["gbm"](config.seed, n_estimators=config.gbm_estimators).named_steps["model"]
    search = HalvingGridSearchCV(
        model,
        GRID,
        factor=HALVING_FACTOR,
        resource="n_samples",
        min_resources=max(len(y) // HALVING_FACTOR**3, min(len(y), MIN_ROWS)),
        cv=_folds(config, rows, y=y, val_mask=val_mask),
        scoring=mean_weekly_auc,
        refit=False,
        random_state=config.seed,
        error_score="raise",
    ).fit(x, y)
    best = {k: search.best_params_[k] for k in GRID}
    changed = tuple((k, v) for k, v in best.items() if GBM_PARAMS.get(k) != v)
    table = pd.DataFrame(search.cv_results_)[["iter", "n_resources", "params", "mean_test_score"]]
    return replace(config, gbm_params=changed), table
