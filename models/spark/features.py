"""The weekly features on Spark: the same population and feature SQL as ``models.features``."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from waymark.models.data import LearningData
from waymark.models.data.dataset import conform
from waymark.models.features import population
from waymark.models.features.build import feature_table, finished, one_week
from waymark.models.spark.engine import SparkEngine
from waymark.models.spark.files import hadoop_conf, hadoop_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def spark_features(
    tables: Mapping[str, DataFrame], session: SparkSession, *, weeks: Sequence[int] | None = None
) -> DataFrame:
    """Features for every registration in the population at each week, as a (lazy) Spark DataFrame.

    Parameters
    ----------
    tables
        The six feature-safe contract tables, typed, as Spark DataFrames (``models.spark.reading``).
    session
        The Spark session.
    weeks
        Prediction weeks; every week of each presentation when None.

    Returns
    -------
    pyspark.sql.DataFrame
        The keys and ``FEATURE_NAMES`` as doubles: the rows and values ``build_features`` gives on
        DuckDB (tested equal), unsorted (sort or partition as the consumer needs).
    """
    engine = SparkEngine(session)
    safe = {name: engine.frame(frame, name) for name, frame in tables.items()}
    pop = population(safe["registrations"], safe["presentations"], weeks=weeks, engine=engine)
    result: DataFrame = feature_table(safe, pop, engine=engine, one_week=one_week(weeks))
    return result


def features_and_records(
    tables: Mapping[str, DataFrame],
    session: SparkSession,
    *,
    weeks: Sequence[int] | None = None,
    parquet: str | None = None,
) -> tuple[LearningData, pd.DataFrame]:
    """What training and the fairness audit need, with the features built on Spark.

    The features are written as Parquet to ``parquet`` (a path or URI every executor can write to;
    when None, a new folder in ``WAYMARK_SPARK_WORKDIR``, else a temporary folder on the driver,
    which suits local mode only; a folder made here is deleted once read, as it holds personal
    data) and read back on the driver, where
    training and the audit stay single-node. The records tables the labels and the split need
    come back as ``LearningData``; its activity table is left empty (only the features read it).

    Returns
    -------
    tuple
        ``LearningData`` without activity rows, and the features as ``build_features`` returns them.
    """
    features = spark_features(tables, session, weeks=weeks)
    shared = os.environ.get("WAYMARK_SPARK_WORKDIR", "").strip().rstrip("/")
    with tempfile.TemporaryDirectory(prefix="waymark-features-") as scratch:
        where = shared or scratch
        target = parquet or f"{where}/features-{uuid.uuid4().hex}.parquet"
        features.write.mode("overwrite").parquet(target)
        try:
            rows = finished(session.read.parquet(target).toArrow().to_pandas())
        finally:
            if parquet is None and shared:  # the scratch folder goes with the block; this one may not
                _delete(session, target)
    small = {
        name: conform(name, (frame.limit(0) if name == "activity" else frame).toArrow())
        for name, frame in tables.items()
    }
    return LearningData(**small), rows


def _delete(session: SparkSession, uri: str) -> None:
    """Delete the folder ``uri`` (a path or a Hadoop URI) and everything in it, through Hadoop."""
    path = hadoop_path(session, uri)
    path.getFileSystem(hadoop_conf(session)).delete(path, True)
