"""Spark settings: defaults, a properties file, environment variables, the caller (no Spark needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from waymark.models.spark.session import WAYMARK_DEFAULTS, default_master, read_properties, settings


def test_settings_layer_file_then_environment_then_caller(tmp_path: Path) -> None:
    conf = tmp_path / "spark.conf"
    conf.write_text(
        "# cluster settings\n"
        "spark.executor.memory 8g\n"
        "spark.sql.shuffle.partitions=400\n"
        "spark.hadoop.fs.s3a.endpoint   https://s3.example.ac.uk\n"
    )
    env = {
        "WAYMARK_SPARK_CONF": str(conf),
        "WAYMARK_SPARK_EXECUTOR_MEMORY": "16g",
        "WAYMARK_SPARK_MASTER": "spark://head:7077",  # the master is not a setting
        "HOME": "/root",
    }
    got = settings({"spark.sql.shuffle.partitions": "64"}, env=env)
    assert got["spark.executor.memory"] == "16g"  # environment over the file
    assert got["spark.sql.shuffle.partitions"] == "64"  # the caller over everything
    assert got["spark.hadoop.fs.s3a.endpoint"] == "https://s3.example.ac.uk"
    assert got["spark.sql.ansi.enabled"] == WAYMARK_DEFAULTS["spark.sql.ansi.enabled"] == "false"
    assert "spark.master" not in got and "spark.conf" not in got


def test_a_line_that_is_not_a_setting_is_named(tmp_path: Path) -> None:
    conf = tmp_path / "spark.conf"
    conf.write_text("spark.executor.cores 4\nexecutor.memory 8g\n")
    with pytest.raises(ValueError, match=r"spark.conf line 2: expected 'spark.<key> <value>'"):
        read_properties(conf)


def test_master_from_environment_else_local_on_usable_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYMARK_SPARK_MASTER", "k8s://https://cluster:6443")
    assert default_master() == "k8s://https://cluster:6443"
    monkeypatch.delenv("WAYMARK_SPARK_MASTER")
    monkeypatch.setenv("WAYMARK_THREADS", "3")
    assert default_master() == "local[3]"


def test_a_missing_properties_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"WAYMARK_SPARK_CONF names .*nowhere\.conf, which is not a file"):
        settings(env={"WAYMARK_SPARK_CONF": str(tmp_path / "nowhere.conf")})


def test_a_driver_launched_by_spark_submit_keeps_its_master() -> None:
    from waymark.models.spark.session import submitted

    assert submitted({"PYSPARK_GATEWAY_PORT": "41234"})
    assert not submitted({"HOME": "/root"})
    assert "spark.workdir" not in settings(env={"WAYMARK_SPARK_WORKDIR": "s3a://bucket/waymark"})
