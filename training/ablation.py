"""What each feature family adds: validation AUC by week with the family's features removed.

The same temporal protocol as the family choice: fitted on the training presentations that start
before the latest training start, scored on those starting then. The test presentations are never
used, so the table can guide which features to keep.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from waymark.models.features import FEATURES
from waymark.training.evaluation import weekly_metrics
from waymark.training.fitting import FitConfig, fit, margins, sigmoid

ALL = "(none removed)"


def _validation_auc(
    family: str, config: FitConfig, *, rows: pd.DataFrame, columns: Sequence[str], val_mask: np.ndarray
) -> pd.Series:
    x = rows[list(columns)].to_numpy(dtype=np.float64)
    y = rows["label"].to_numpy(dtype=np.int64)
    pipeline = fit(family, config, x=x[~val_mask], y=y[~val_mask])
    scored = rows.loc[val_mask, ["week", "label"]].assign(probability=sigmoid(margins(pipeline, x[val_mask])))
    return weekly_metrics(scored)["auc"]


def family_ablation(
    family: str, config: FitConfig, *, rows: pd.DataFrame, val_mask: np.ndarray
) -> pd.DataFrame:
    """Validation AUC per week with every feature, then without each feature family in turn.

    Parameters
    ----------
    family
        The model family to fit (``gbm`` or ``logistic``).
    config
        Its settings. Monotone constraints are dropped (they are laid out for the full feature list).
    rows
        Training rows with ``week``, ``label`` and every feature.
    val_mask
        The rows of the latest training presentations, scored; the others are fitted.

    Returns
    -------
    pandas.DataFrame
        One row per removed family (the first: none removed), one column per week.
    """
    config = replace(config, monotone=False)
    names = [f.name for f in FEATURES]
    out = {ALL: _validation_auc(family, config, rows=rows, columns=names, val_mask=val_mask)}
    for removed in dict.fromkeys(f.family for f in FEATURES):
        kept = [f.name for f in FEATURES if f.family != removed]
        out[removed] = _validation_auc(family, config, rows=rows, columns=kept, val_mask=val_mask)
    return pd.DataFrame(out).T.rename_axis("removed")
