"""A data folder given as a Hadoop URI (here ``file://``) on Spark: what its local path gives, run for run.

Scoring, training and the fairness audit read a URI through Spark only: its fingerprint and manifest
through Hadoop's FileSystem (``models.spark.location``), its tables (the ``sources`` words and, for the
audit, the protected characteristics too) from the one validation on Spark.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.contract_folder import make_folder
from waymark.cli import app
from waymark.fairness.policy import load_policy
from waymark.fairness.run import audit_model
from waymark.models.data import (
    folder_fingerprint,
    load_learning_data,
    read_manifest,
    source_labels,
    write_manifest,
)
from waymark.models.registry import load_bundle
from waymark.models.settings import Settings
from waymark.models.targets import Target
from waymark.training.fitting import FitConfig
from waymark.training.pipeline import TrainingOutcome, train_folder
from waymark.training.tracking import Registered, log_and_register

CONFIG = FitConfig(seed=1, families=("logistic",))


URI = "s3a://bucket/2025-week-08"


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["score", "--data", URI], "--data"),
        (["train", "--data", URI], "--data"),
        (
            ["fairness", "audit", "--model", "models:/m@candidate", "--data", URI, "--out", "reports"],
            "--data",
        ),
        (["data", "validate", URI], "FOLDER"),
    ],
    ids=["score", "train", "fairness audit", "data validate"],
)
def test_a_uri_without_engine_spark_is_refused_naming_the_option_and_the_rule(
    command: list[str], option: str
) -> None:
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.replace("│", " ").split())  # without the box rich draws
    assert f"Invalid value for {option}: {URI} is a URI" in said
    assert "read only with --engine spark" in said


@pytest.mark.spark
def test_a_uri_fingerprint_comes_from_the_store_metadata_and_changes_with_a_file(
    tmp_path: Path, spark: Any
) -> None:
    from waymark.models.spark import location
    from waymark.service.scoring.on_spark import read_tables

    sources = [["source", "label", "notice_given_on"], ["library", "the library loans", ""]]
    sources.append(["tutorials", "tutorial sign-ins", "2024-09-01"])
    folder = make_folder(tmp_path / "data", sources=sources)
    write_manifest(folder, "test", details={"rows": {"activity": 4}})
    uri = folder.as_uri()
    # A local path keeps the fingerprint of its bytes, whichever engine reads it.
    assert location.fingerprint(folder, spark) == folder_fingerprint(folder)
    assert location.read_manifest(uri, spark) == read_manifest(folder)
    # The sources' names come from the validation on Spark (DuckDB cannot read a URI): DuckDB's.
    assert read_tables(uri, spark)[1] == source_labels(folder)
    assert source_labels(folder)["tutorials"] == "tutorial sign-ins"
    before = location.fingerprint(uri, spark)
    assert len(before) == 64
    assert before not in (folder_fingerprint(folder), location.fingerprint(uri + "-elsewhere", spark))
    assert location.fingerprint(uri, spark) == before  # nothing changed: the same identity
    write_manifest(folder, "test again", details={})
    assert location.fingerprint(uri, spark) == before  # the manifest describes the data; it is not the data
    with (folder / "activity.csv").open("a", encoding="utf-8") as fh:
        fh.write("S1,M1,2024J,6,vle,resource,2\n")
    assert location.fingerprint(uri, spark) != before


@pytest.fixture(scope="module")
def trained(
    synth_dir: Path, spark: Any, mlflow_store: Settings
) -> tuple[TrainingOutcome, TrainingOutcome, Registered]:
    """The same folder trained on Spark from its path and from its ``file://`` URI; the latter registered."""
    by_path = train_folder(synth_dir, target=Target.NOT_COMPLETING, config=CONFIG, spark=spark)
    by_uri = train_folder(synth_dir.as_uri(), target=Target.NOT_COMPLETING, config=CONFIG, spark=spark)
    return by_path, by_uri, log_and_register(by_uri, "uri-trained", settings=mlflow_store)


@pytest.mark.spark
def test_training_and_the_audit_from_a_uri_equal_the_local_path_on_spark(
    synth_dir: Path, spark: Any, trained: tuple[TrainingOutcome, TrainingOutcome, Registered]
) -> None:
    from waymark.models.spark import location

    by_path, by_uri, registered = trained
    assert by_uri.split == by_path.split
    assert by_uri.manifest == by_path.manifest
    pd.testing.assert_frame_equal(by_uri.test_scored, by_path.test_scored)
    pd.testing.assert_frame_equal(by_uri.test_weekly, by_path.test_weekly)
    fingerprint = location.fingerprint(synth_dir.as_uri(), spark)
    assert (by_path.fingerprint, by_uri.fingerprint) == (None, fingerprint)

    policy = dataclasses.replace(load_policy(), bootstrap_resamples=100)
    on_path = audit_model(registered.uri, synth_dir, policy=policy, spark=spark)
    on_uri = audit_model(registered.uri, synth_dir.as_uri(), policy=policy, spark=spark)
    assert (on_path.data_fingerprint, on_uri.data_fingerprint) == (folder_fingerprint(synth_dir), fingerprint)
    assert on_uri.gate == on_path.gate
    assert on_uri.attributes == on_path.attributes
    assert [(c.status, c.reasons) for c in on_uri.checks] == [(c.status, c.reasons) for c in on_path.checks]
    assert on_uri.estimate_reference == on_path.estimate_reference
    assert [(a.attribute, a.week, [(g.group, g.students) for g in a.groups]) for a in on_uri.audits] == [
        (a.attribute, a.week, [(g.group, g.students) for g in a.groups]) for a in on_path.audits
    ]


@pytest.mark.spark
def test_scoring_from_a_uri_equals_the_local_path_on_spark(
    synth_dir: Path, spark: Any, trained: tuple[TrainingOutcome, TrainingOutcome, Registered]
) -> None:
    from waymark.models.spark import location
    from waymark.service.scoring.on_spark import scored_on_spark

    model = load_bundle(trained[2].uri)
    erased = frozenset({str(load_learning_data(synth_dir).registrations["student_id"].iloc[0])})
    batches = [
        scored_on_spark(where, spark, model=model, week=None, erased=erased, say=lambda _m: None)
        for where in (synth_dir, synth_dir.as_uri())
    ]
    by_path, by_uri = batches
    assert len(by_path.indicators) > 500
    assert not set(by_uri.indicators["student_id"]) & erased
    # Same rows, keys, sentences (the sources' names read on Spark for the URI, on DuckDB for the
    # path), contributions and estimates.
    pd.testing.assert_frame_equal(by_uri.indicators, by_path.indicators)
    pd.testing.assert_frame_equal(by_uri.as_of, by_path.as_of)
    pd.testing.assert_frame_equal(by_uri.placement, by_path.placement)
    assert by_uri.summaries == by_path.summaries
    assert by_path.fingerprint == folder_fingerprint(synth_dir)
    assert by_uri.fingerprint == location.fingerprint(synth_dir.as_uri(), spark)
