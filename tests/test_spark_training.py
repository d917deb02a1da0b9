"""Training and the fairness audit with the features built on Spark give what DuckDB's features give."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from waymark.fairness.policy import load_policy
from waymark.fairness.run import audit_model
from waymark.models.settings import Settings
from waymark.models.targets import Target
from waymark.training.fitting import FitConfig
from waymark.training.pipeline import train_folder
from waymark.training.tracking import log_and_register

pytestmark = pytest.mark.spark

CONFIG = FitConfig(seed=1, families=("logistic",))


def test_training_on_spark_features_matches_duckdb(
    synth_dir: Path, spark: Any, mlflow_store: Settings
) -> None:
    from waymark.models.data import folder_fingerprint
    from waymark.models.spark import location

    # Spark is given the folder's file:// URI, as a cluster is given s3a://: it validates and reads
    # the folder itself, and the fingerprint and manifest come through Hadoop.
    uri = synth_dir.as_uri()
    duck = train_folder(synth_dir, target=Target.NOT_COMPLETING, config=CONFIG)
    other = train_folder(uri, target=Target.NOT_COMPLETING, config=CONFIG, spark=spark)
    assert other.split == duck.split
    assert other.manifest == duck.manifest
    assert other.fingerprint == location.fingerprint(uri, spark) != folder_fingerprint(synth_dir)
    # The engines' features agree to the last bits of a double (sums in another order, which Spark
    # does not fix from run to run; tests/test_spark_features.py). The logistic fits stop where their
    # solver's tolerance (1e-4) is met, so bits that far down can end a fit an iteration earlier or
    # later: estimates moved by 6e-6 of their size in most runs and by 1.5e-4 in one CI run
    # (2026-12-02). A feature that truly differed would move them by far more than 1e-3.
    pd.testing.assert_frame_equal(
        other.test_scored.reset_index(drop=True), duck.test_scored.reset_index(drop=True), rtol=1e-3
    )
    # The week's metrics that count rows on either side of an edge (ECE's bands, the top 10% and 20%)
    # move by a row's share when an estimate that close to an edge crosses it.
    pd.testing.assert_frame_equal(other.test_weekly, duck.test_weekly, rtol=1e-4, atol=5e-3)

    # The audit of that candidate on Spark: the same estimates, groups and gate as on DuckDB.
    registered = log_and_register(other, "spark-trained", settings=mlflow_store)
    policy = dataclasses.replace(load_policy(), bootstrap_resamples=100)
    on_duckdb = audit_model(registered.uri, synth_dir, policy=policy)
    on_spark = audit_model(registered.uri, uri, policy=policy, spark=spark)
    assert (on_duckdb.data_fingerprint, on_spark.data_fingerprint) == (
        folder_fingerprint(synth_dir),
        other.fingerprint,
    )
    assert on_spark.gate == on_duckdb.gate
    assert on_spark.attributes == on_duckdb.attributes
    assert [(c.status, c.reasons) for c in on_spark.checks] == [
        (c.status, c.reasons) for c in on_duckdb.checks
    ]
    assert on_spark.estimate_reference == on_duckdb.estimate_reference
    assert [(a.attribute, a.week, [g.group for g in a.groups]) for a in on_spark.audits] == [
        (a.attribute, a.week, [g.group for g in a.groups]) for a in on_duckdb.audits
    ]


def test_erased_students_are_gone_before_spark_builds_features(
    synth_dir: Path, spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from waymark.models.data import load_learning_data
    from waymark.models.spark.engine import SparkEngine
    from waymark.models.spark.features import features_and_records
    from waymark.models.spark.partitions import without

    data = load_learning_data(synth_dir)
    gone = frozenset(data.registrations["student_id"].astype(str).head(25))
    engine = SparkEngine(spark)
    tables = {name: engine.frame(frame, name) for name, frame in data.tables().items()}
    shared = tmp_path / "shared-workdir"  # as a cluster's WAYMARK_SPARK_WORKDIR
    shared.mkdir()
    monkeypatch.setenv("WAYMARK_SPARK_WORKDIR", shared.as_uri())
    records, features = features_and_records(without(tables, gone, engine=engine), spark, weeks=[4])
    assert not features.empty
    assert list(shared.iterdir()) == []  # the students' features are not left behind
    assert not set(features["student_id"]) & gone
    assert not set(records.registrations["student_id"]) & gone
    assert records.activity.empty and list(records.activity.columns) == list(data.activity.columns)


def test_training_on_spark_leaves_out_a_presentation_not_ended_on_the_data_date(
    synth_dir: Path, spark: Any, tmp_path: Path
) -> None:
    """The records come back from Spark without activity: the data date is read from it there, so a
    presentation still running is left out as on DuckDB, even with nearly all its outcomes filled in."""
    from tests.test_running_presentations import RUNNING, _mid_term

    folder = _mid_term(synth_dir, tmp_path / "data")
    regs = pd.read_parquet(folder / "registrations.parquet")
    running = regs["presentation_id"] == RUNNING
    regs.loc[running, "final_result"] = regs.loc[running, "final_result"].fillna("pass")
    # One outcome to come on each module's running presentation: too few to say 'not entered yet'.
    one_each = regs[running].groupby("module_id").head(1).index
    regs.loc[one_each, "final_result"] = None
    assert regs[running].groupby("module_id")["final_result"].apply(lambda r: r.isna().mean()).max() < 0.05
    regs.to_parquet(folder / "registrations.parquet", index=False)
    duck = train_folder(folder, target=Target.NOT_COMPLETING, config=CONFIG)
    other = train_folder(folder.as_uri(), target=Target.NOT_COMPLETING, config=CONFIG, spark=spark)
    for outcome in (duck, other):
        assert not outcome.train_rows["presentation_id"].eq(RUNNING).any()
        assert not outcome.test_scored["presentation_id"].eq(RUNNING).any()
    assert other.split == duck.split
