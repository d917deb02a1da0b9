"""A logistic model fitted to nothing, in which chosen features matter: for tests of explanations.

Each student-describing feature (a feature of a family explanations describe) gets the coefficient
``coef(name)`` on its standardised value (mean and spread of ``features``); every other feature 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from waymark.models.bundle import LinearParams, ModelBundle
from waymark.models.features import FEATURE_NAMES
from waymark.models.features.catalogue import FAMILIES, FEATURES
from waymark.models.uncertainty import IntervalBin, IntervalTable


def unfitted_model(features: pd.DataFrame, coef: Callable[[str], float] = lambda _name: -0.5) -> ModelBundle:
    """The model; by default every described feature lowers the estimate as it grows."""
    x = features[list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
    scale = x.std(axis=0)
    described = {f.name for f in FEATURES if FAMILIES[f.family].described}
    return ModelBundle(
        target="not_completing",
        family="logistic",
        feature_names=FEATURE_NAMES,
        calibration=(1.0, 0.0),
        linear=LinearParams(
            mean=tuple(x.mean(axis=0)),
            scale=tuple(np.where(scale > 0, scale, 1.0)),
            coef=tuple(coef(name) if name in described else 0.0 for name in FEATURE_NAMES),
            intercept=0.0,
        ),
        uncertainty=IntervalTable(
            level=0.9, df=10.0, bins=(IntervalBin(upper=1.0, variance=0.04, rows=100),)
        ),
    )
