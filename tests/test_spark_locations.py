"""A data folder given as a Hadoop URI (here ``file://``): refused without Spark; its identity on Spark.

Scoring, training and the fairness audit read a URI through Spark only: its fingerprint and manifest
through Hadoop's FileSystem (``models.spark.location``), its tables (the ``sources`` words and, for the
audit, the protected characteristics too) from the one validation on Spark. Whole runs from a URI are
compared with DuckDB's runs from the local path in tests/test_spark_scoring.py and
tests/test_spark_training.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.contract_folder import make_folder
from waymark.cli import app
from waymark.models.data import (
    folder_fingerprint,
    read_manifest,
    source_labels,
    write_manifest,
)
from waymark.training.fitting import FitConfig

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
