"""The feature pipeline, read top to bottom: population, then each family of features, joined."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from waymark.models.data import LearningData, ensure_feature_safe
from waymark.models.features.activity import activity_features
from waymark.models.features.assessments import assessment_features
from waymark.models.features.catalogue import FEATURE_NAMES, KEYS
from waymark.models.features.population import population
from waymark.models.features.query import DUCKDB_ARROW, Engine, query
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
        pop = population(data.registrations, data.presentations, weeks=weeks, engine=DUCKDB_ARROW)
    merged: pa.Table = feature_table(data.tables(), pop, one_week=one_week(weeks))
    if len(merged) != len(pop):
        raise ValueError(f"features: {len(merged)} rows for a population of {len(pop)} (a join repeated one)")
    return finished(merged.to_pandas(), in_key_order=True)


def finished(merged: pd.DataFrame, *, in_key_order: bool = False) -> pd.DataFrame:
    """``feature_table``'s rows as ``build_features`` returns them, whichever engine computed them.

    Keys as text and week as int64 (as DuckDB gives them), every feature float64 with no missing
    value, sorted by the keys (``in_key_order``: they are already, as DuckDB's ``feature_table`` gives them).

    Raises
    ------
    ValueError
        Naming each feature with missing values and how many.
    """
    wanted: dict[str, Any] = {
        **dict.fromkeys(KEYS[:3], str),
        "week": "int64",
        **dict.fromkeys(FEATURE_NAMES, "float64"),
    }
    out = merged[list(wanted)].astype(wanted)  # copy-on-write: a column of its type already is not copied
    if out[list(FEATURE_NAMES)].isna().any().any():
        missing = out[list(FEATURE_NAMES)].isna().sum()
        raise ValueError(f"features with missing values: {missing[missing > 0].to_dict()}")
    if not in_key_order:
        out = out.sort_values(list(KEYS), ignore_index=True)
    return ensure_feature_safe(out.reset_index(drop=True), "features")


def one_week(weeks: Sequence[int] | None) -> bool:
    """Whether a population of ``weeks`` holds one prediction week only (``activity_features``)."""
    return weeks is not None and len(set(weeks)) == 1


def feature_table(
    tables: dict[str, Any], pop: Any, *, engine: Engine | None = None, one_week: bool = False
) -> Any:
    """Every feature family joined on the population's keys, on ``engine`` (DuckDB when None).

    ``tables`` holds the feature-safe contract tables by name, of the engine's table type, and
    ``attempts`` when they hold some presentations only (``models.data.attempts_of``);
    ``build_features`` (pandas) and ``models.spark.features`` (Spark) both come through here.
    ``one_week`` says the population holds one week only (see ``one_week``), which some families
    compute more cheaply. On DuckDB the result is an Arrow table in key order.
    """
    # On DuckDB each family comes back as Arrow, which the join reads as it is.
    inner = engine or DUCKDB_ARROW
    parts = {
        "act": activity_features(
            tables["activity"],
            pop,
            registrations=tables["registrations"],
            engine=inner,
            one_week=one_week,
        ),
        "asm": assessment_features(
            tables["assessments"],
            tables["assessment_results"],
            population=pop,
            registrations=tables["registrations"],
            extensions=tables.get("extensions"),
            engine=inner,
        ),
        "reg": registration_features(
            tables["registrations"],
            tables["students"],
            presentations=tables["presentations"],
            population=pop,
            attempts=tables.get("attempts"),
            engine=inner,
        ),
    }
    keys = ", ".join(KEYS)
    columns = ", ".join(f"CAST({name} AS DOUBLE) AS {name}" for name in FEATURE_NAMES)
    joins = " ".join(f"LEFT JOIN {alias} USING ({keys})" for alias in parts)
    ordered = f" ORDER BY {keys}" if engine is None else ""  # Spark's consumers order as they need
    return query(
        f"SELECT {keys}, {columns} FROM (SELECT {keys} FROM population) p {joins}{ordered}",
        inner,
        population=pop,
        **parts,
    )
