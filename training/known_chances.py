"""Cohorts whose every student's true chance of the outcome is known, to measure interval coverage.

A student's true chance is never observed in real data, so the per-student intervals
(``models.uncertainty``) can only be checked where the chances are made: features drawn from a
normal distribution and a logistic chance of the outcome. A bundle is trained on one such cohort
exactly as training builds it (``training.pipeline._calibrated``: the fit, its out-of-fold Platt
calibration and the jackknife interval table), and a held-out cohort from the same truth counts
the share of true chances inside their intervals. Used by ``tests/test_uncertainty.py`` and
``bench/bench_intervals.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from waymark.models.bundle import ModelBundle
from waymark.models.targets import Target
from waymark.models.uncertainty import coverage, intervals
from waymark.training.fitting import FitConfig, sigmoid
from waymark.training.pipeline import _calibrated

FEATURES = 6
HELD_OUT = 5000


def draw(rng: np.random.Generator, n: int, *, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, outcomes and each student's true chance of the outcome."""
    x = rng.normal(size=(n, len(beta)))
    chance = sigmoid(x @ beta - 0.7)
    return x, (rng.random(n) < chance).astype(np.int64), chance


def trained(seed: int, n: int, *, family: str, gbm_estimators: int) -> tuple[ModelBundle, np.ndarray]:
    """A bundle trained on ``n`` students of a cohort drawn with ``seed``, and its true coefficients."""
    rng = np.random.default_rng(seed)
    beta = rng.normal(scale=0.8, size=FEATURES)
    x, y, _ = draw(rng, n, beta=beta)
    rows = pd.DataFrame({"label": y, "student_id": np.arange(n)})
    config = FitConfig(seed=seed, families=(family,), gbm_estimators=gbm_estimators)
    return _calibrated(Target.NOT_COMPLETING, family, config=config, rows=rows, x=x), beta


def held_out(seed: int, n: int, *, family: str, gbm_estimators: int) -> tuple[float, float]:
    """Coverage of a held-out cohort's true chances by the bundle ``trained`` gives, and the mean width."""
    bundle, beta = trained(seed, n, family=family, gbm_estimators=gbm_estimators)
    x, _, chance = draw(np.random.default_rng(10_000 + seed), HELD_OUT, beta=beta)
    lower, upper = intervals(bundle.uncertainty, bundle.probability(x))
    return coverage(lower, upper, truth=chance), float((upper - lower).mean())
