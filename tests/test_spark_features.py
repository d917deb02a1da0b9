"""One definition, two engines: Spark computes the same features as DuckDB from the same SQL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from waymark.models.data import LearningData, ProtectedDataError, load_learning_data
from waymark.models.features import FEATURE_NAMES, KEYS, build_features, population
from waymark.models.features.build import feature_table, one_week

pytestmark = pytest.mark.spark


def spark_features(data: LearningData, spark: Any, weeks: list[int] | None) -> pd.DataFrame:
    from waymark.models.spark.engine import SparkEngine, collect

    engine = SparkEngine(spark)
    tables = {name: engine.frame(frame, name) for name, frame in data.tables().items()}
    pop = population(tables["registrations"], tables["presentations"], weeks=weeks, engine=engine)
    out = collect(feature_table(tables, pop, engine=engine, one_week=one_week(weeks)))
    return out.sort_values(list(KEYS), ignore_index=True)


def assert_same_features(duck: pd.DataFrame, other: pd.DataFrame) -> None:
    keys = list(KEYS)
    assert len(other) == len(duck)
    pd.testing.assert_frame_equal(
        other[keys].astype(str).reset_index(drop=True), duck[keys].astype(str).reset_index(drop=True)
    )
    for name in FEATURE_NAMES:
        a, b = duck[name].to_numpy(np.float64), other[name].to_numpy(np.float64)
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("weeks", [[1, 4, 8, 16], [8]], ids=["running totals", "one week"])
def test_spark_features_equal_duckdb_on_a_synthetic_cohort(
    synth_dir: Path, spark: Any, weeks: list[int]
) -> None:
    data = load_learning_data(synth_dir)
    duck = build_features(data, weeks)
    other = spark_features(data, spark, weeks)
    assert_same_features(duck, other)
    # Whole-number features (counts, days, flags) are exactly equal, not merely close.
    whole = [name for name in FEATURE_NAMES if (duck[name] == duck[name].round()).all()]
    assert len(whole) > 20
    for name in whole:
        assert (other[name] == duck[name]).all(), name


def test_spark_refuses_protected_columns_as_feature_input(spark: Any) -> None:
    from waymark.models.spark.engine import SparkEngine

    frame = spark.createDataFrame(pd.DataFrame({"student_id": ["S1"], "gender": ["F"]}))
    with pytest.raises(ProtectedDataError, match="gender"):
        SparkEngine(spark).query("SELECT * FROM students", students=frame)


@pytest.mark.slow
@pytest.mark.oulad
def test_spark_features_equal_duckdb_on_full_oulad(tmp_path: Path, spark: Any) -> None:
    source = os.environ.get("WAYMARK_OULAD_DIR")
    if not source or not Path(source).is_dir():
        pytest.skip("WAYMARK_OULAD_DIR is not set to the full OULAD copy")
    from waymark.models.data import FEATURE_TABLES
    from waymark.models.spark.engine import SparkEngine, collect
    from waymark.models.spark.reading import load_tables
    from waymark.training.ingest.oulad import import_oulad

    folder = tmp_path / "oulad"
    import_oulad(Path(source), folder)
    weeks = [4, 8]
    duck = build_features(load_learning_data(folder), weeks)
    # Spark reads the imported folder itself (as `--engine spark` does): ten million activity rows
    # never pass through the driver's memory.
    tables = load_tables(folder, spark)
    engine = SparkEngine(spark)
    tables = {name: tables[name] for name in FEATURE_TABLES}
    pop = population(tables["registrations"], tables["presentations"], weeks=weeks, engine=engine)
    other = collect(feature_table(tables, pop, engine=engine)).sort_values(list(KEYS), ignore_index=True)
    assert len(duck) > 50_000
    assert_same_features(duck, other)


def test_spark_features_of_chosen_presentations_count_earlier_attempts_as_duckdb(
    oulad_subset: Path, tmp_path: Path, spark: Any
) -> None:
    """Scoring on Spark restricts the tables to the current presentations as DuckDB's loading does;
    a student's attempts at the module in earlier presentations still count in both."""
    from waymark.models.spark.engine import SparkEngine, collect
    from waymark.models.spark.partitions import only_presentations
    from waymark.training.ingest.oulad import import_oulad

    folder = tmp_path / "oulad"
    import_oulad(oulad_subset, folder)
    later = lambda p: p[pd.to_datetime(p["start_date"]).dt.year >= 2014]  # noqa: E731
    duck = build_features(load_learning_data(folder, choose=later), [4, 8])
    engine = SparkEngine(spark)
    whole = load_learning_data(folder)
    tables = {name: engine.frame(frame, name) for name, frame in whole.tables().items()}
    chosen = only_presentations(tables, later(whole.presentations), engine=engine)
    pop = population(chosen["registrations"], chosen["presentations"], weeks=[4, 8], engine=engine)
    other = collect(feature_table(chosen, pop, engine=engine)).sort_values(list(KEYS), ignore_index=True)
    assert_same_features(duck, other)
    assert (duck["prior_attempts"] > 0).any()
