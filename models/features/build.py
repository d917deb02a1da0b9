"""The feature pipeline, read top to bottom: population, then each family of features, joined."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from waymark.models.data import LearningData, ensure_feature_safe
from waymark.models.features.activity import activity_features
from waymark.models.features.assessments import assessment_features
from waymark.models.features.catalogue import FEATURE_NAMES, KEYS
from waymark.models.features.population import population
from waymark.models.features.registration import registration_features


def build_features(
    data: LearningData, weeks: Sequence[int] | None = None, *, pop: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Features for every registration in the population at each prediction week.

    Parameters
    ----------
    data
        Validated learning data (it cannot hold protected characteristics).
    weeks
        Prediction weeks; every week of each presentation when None.
    pop
        ``population(data.registrations, data.presentations, weeks=weeks)`` when the caller has it
        already (training labels the same rows); made here when None.

    Returns
    -------
    pandas.DataFrame
        One row per (student_id, module_id, presentation_id, week) with the columns of
        ``FEATURE_NAMES`` as float64, no missing values, sorted by the keys.
    """
    if not isinstance(data, LearningData):
        raise TypeError("build_features needs LearningData (see models.data.load_learning_data)")
    if pop is None:
        pop = population(data.registrations, data.presentations, weeks=weeks)
    parts = [
        activity_features(data.activity, pop),
        assessment_features(data.assessments, data.assessment_results, population=pop),
        registration_features(
            data.registrations, data.students, presentations=data.presentations, population=pop
        ),
    ]
    merged = pop[list(KEYS)]
    for part in parts:
        merged = merged.merge(part, on=list(KEYS), how="left", validate="one_to_one")
    out = merged[list(KEYS)].astype({"week": "int64"})
    for name in FEATURE_NAMES:
        out[name] = merged[name].to_numpy(dtype=np.float64)
    if out[list(FEATURE_NAMES)].isna().any().any():
        missing = out[list(FEATURE_NAMES)].isna().sum()
        raise ValueError(f"features with missing values: {missing[missing > 0].to_dict()}")
    return ensure_feature_safe(out.sort_values(list(KEYS), ignore_index=True), "features")
