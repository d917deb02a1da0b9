"""Choosing the model family, stated as it was done.

Temporal validation when the training period has presentations starting on at least two dates
(earlier ones fit, the latest validates); otherwise grouped cross-validation inside the training
period, so an institution with a single intake can still train. Folds are grouped by module
presentation when there are enough of them (a held-out fold is then a cohort the model never saw,
the closest thing to a later one); with fewer presentations than folds, by student (no student's
rows on both sides).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from waymark.models.features import KEYS
from waymark.training.evaluation import weekly_metrics
from waymark.training.fitting import FitConfig, best_family, fit_subsets, margins, sigmoid

GIVEN = "set by --family"
TEMPORAL = "temporal validation"
GROUPED_CV = "grouped cross-validation"


@dataclass(frozen=True)
class FamilyChoice:
    """How the family was settled: ``method`` (one of the constants above) and why, in words."""

    method: str
    considered: tuple[str, ...]
    detail: str = ""
    grouped_by: str = ""  # for grouped cross-validation: "module presentation" or "student"

    def describe(self) -> str:
        """One sentence for the console, the MLflow run and the model card."""
        if self.method == GIVEN:
            return f"{GIVEN}, the only family asked for"
        return f"chosen by {self.method} from {', '.join(self.considered)}: {self.detail}"


def cv_groups(rows: pd.DataFrame, *, folds: int) -> tuple[np.ndarray, str]:
    """Fold groups for ``rows``: module presentations when there are at least ``folds``, else students."""
    presentations = (rows["module_id"] + "/" + rows["presentation_id"]).to_numpy()
    if len(set(presentations)) >= folds:
        return presentations, "module presentation"
    return rows["student_id"].to_numpy(), "student"


def choose_by_grouped_cv(
    config: FitConfig, rows: pd.DataFrame, *, x: np.ndarray, y: np.ndarray
) -> tuple[str, pd.DataFrame, str]:
    """Pick the family with the best mean weekly AUC of out-of-fold predictions inside ``rows``.

    Parameters
    ----------
    config
        Families, folds and seed.
    rows
        The training rows (keys and label), in the order of ``x`` and ``y``.
    x, y
        Their features and labels.

    Returns
    -------
    tuple
        The chosen family, the metrics per family and week, and what the folds were grouped by.
    """
    groups, grouped_by = cv_groups(rows, folds=config.cv_folds)
    splitter = StratifiedGroupKFold(n_splits=config.cv_folds, shuffle=True, random_state=config.seed)
    folds = list(splitter.split(x, y, groups))
    tables = []
    for family in config.families:
        held_out = np.empty(len(y))
        fits = fit_subsets(family, config, x=x, y=y, subsets=[fit_idx for fit_idx, _ in folds])
        for fitted, (_, held_idx) in zip(fits, folds, strict=True):
            held_out[held_idx] = margins(fitted, x[held_idx])
        scored = rows[[*KEYS, "label"]].assign(probability=sigmoid(held_out))
        tables.append(weekly_metrics(scored).assign(family=family))
    family, table = best_family(config, tables)
    return family, table, grouped_by
