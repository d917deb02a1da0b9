"""``--engine`` and ``--spark-master``: the options of every command that can run on Spark."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from waymark.models.data.publish import is_uri


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
#: What the help of ``--data`` adds where a command reads a URI on Spark.
URI_HELP = " (with --engine spark, also a Hadoop URI: s3a://..., abfss://..., hdfs://...)"
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


def data_location(data: str, engine: EngineName, *, option: str = "--data") -> Path | str:
    """A data folder as the command reads it: a local folder, or with ``--engine spark`` also a Hadoop URI.

    Raises
    ------
    typer.BadParameter
        If ``data`` is a URI (``scheme://...``) and the engine is not spark (naming ``option``).
    """
    if not is_uri(data):
        return Path(data)
    if engine is not EngineName.SPARK:
        raise typer.BadParameter(
            f"{data} is a URI; a data folder given as a URI (s3a://, abfss://, hdfs://, file://) is read "
            "only with --engine spark. Add --engine spark, or give a local folder",
            param_hint=option,
        )
    return data
