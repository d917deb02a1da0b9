"""The weekly features on Spark: the same population and feature SQL as ``models.features``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from waymark.models.features import population
from waymark.models.features.build import feature_table
from waymark.models.spark.engine import SparkEngine

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
    result: DataFrame = feature_table(safe, pop, engine=engine)
    return result
