"""The Spark engine: the shared DuckDB-dialect SQL, translated, over Spark DataFrames."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from waymark.models.data import ProtectedDataError, ensure_feature_safe
from waymark.models.data.contract import PROTECTED_COLUMN_NAMES
from waymark.models.spark.sql import renamed, to_spark

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_names = itertools.count()


def ensure_spark_feature_safe(frame: DataFrame, what: str) -> DataFrame:
    """``ensure_feature_safe`` for a Spark DataFrame: no protected column may reach a feature."""
    bad = sorted(c for c in frame.columns if c.lower() in PROTECTED_COLUMN_NAMES)
    if bad:
        raise ProtectedDataError(
            f"{what}: column(s) {', '.join(bad)} are protected characteristics and may never be "
            "features (CoP §4)"
        )
    return frame


class SparkEngine:
    """Runs the shared SQL on a Spark session; tables may be Spark DataFrames or pandas frames."""

    name = "spark"

    def __init__(self, session: SparkSession) -> None:
        self.session = session

    def frame(self, table: Any, what: str) -> DataFrame:
        """``table`` as a Spark DataFrame, checked for protected columns."""
        if isinstance(table, pd.DataFrame):  # through Arrow, as Spark 4 takes it without pandas' help
            arrow = pa.Table.from_pandas(ensure_feature_safe(table, what), preserve_index=False)
            table = self.session.createDataFrame(arrow)
        return ensure_spark_feature_safe(table, what)

    def query(self, sql: str, /, **tables: Any) -> DataFrame:
        """Run ``sql`` (DuckDB dialect) with each table as a temporary view of its name.

        The names are made unique per call and the translated statement is rewritten to them, so
        two queries in one session never see each other's tables.
        """
        suffix = f"__w{next(_names)}"
        for name, table in tables.items():
            self.frame(table, name).createOrReplaceTempView(name + suffix)
        return self.session.sql(to_spark(renamed(sql, {n: n + suffix for n in tables})))


def collect(frame: DataFrame) -> pd.DataFrame:
    """A (small) Spark result as a pandas frame, through Arrow (Spark 4's ``toArrow``)."""
    result: pd.DataFrame = frame.toArrow().to_pandas()
    return result
