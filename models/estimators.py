"""The two model families, as scikit-learn pipelines, deterministic for a seed."""

from __future__ import annotations

from collections.abc import Callable

from lightgbm import LGBMClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from waymark.models.threads import cores

# Trees stay shallow: exact contributions work at any depth, but their tables cost 2^depth per leaf
# (models.contributions), and engagement signals need few-way interactions.
GBM_MAX_DEPTH = 6


def make_logistic(seed: int, **_: object) -> Pipeline:
    """Regularised logistic regression on standardised features: the transparent baseline."""
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("model", LogisticRegression(C=0.5, max_iter=3000, random_state=seed)),
        ]
    )


def make_gbm(seed: int, n_estimators: int = 300, **_: object) -> Pipeline:
    """Gradient-boosted trees (LightGBM), deterministic: fixed threads, row-wise histograms."""
    model = LGBMClassifier(
        n_estimators=n_estimators,
        learning_rate=0.05,
        num_leaves=31,
        max_depth=GBM_MAX_DEPTH,
        min_child_samples=50,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        random_state=seed,
        n_jobs=cores(),  # the usable cores, never the host's (models.threads)
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )
    return Pipeline([("model", model)])


FAMILIES: dict[str, Callable[..., Pipeline]] = {"logistic": make_logistic, "gbm": make_gbm}
