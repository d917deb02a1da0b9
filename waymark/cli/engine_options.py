"""``--engine`` and ``--spark-master``: the options of every command that can run on Spark."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer


class EngineName(StrEnum):
    """Where the data-heavy steps run."""

    DUCKDB = "duckdb"
    SPARK = "spark"


EngineOption = Annotated[
    EngineName,
    typer.Option(
        "--engine",
        help="Where the data-heavy steps run: duckdb (embedded, the default) or spark "
        "(needs waymark[spark] and Java 17+; see docs/scale-out.md).",
    ),
]
SparkMasterOption = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        help="Spark master URL with --engine spark (default: WAYMARK_SPARK_MASTER, else local[<cores>]).",
    ),
]


def spark_session_for(engine: EngineName, master: str | None):  # type: ignore[no-untyped-def]
    """The Spark session when ``engine`` is spark (imported only then), else None."""
    if engine is not EngineName.SPARK:
        if master is not None:
            raise typer.BadParameter("--spark-master needs --engine spark", param_hint="--spark-master")
        return None
    from waymark.models.spark.session import spark_session

    return spark_session(master)
