"""The Spark session Waymark runs on: master and settings from the command line, environment or a file.

Settings, lowest precedence first: Waymark's own (below), a properties file named by
``WAYMARK_SPARK_CONF`` (``spark.key value`` or ``spark.key=value`` per line, as
``spark-defaults.conf``), then ``WAYMARK_SPARK_<KEY>`` environment variables (``WAYMARK_SPARK_
EXECUTOR_MEMORY=8g`` is ``spark.executor.memory``), then what the caller passes. The master is
``--spark-master``, else ``WAYMARK_SPARK_MASTER``, else the one ``spark-submit`` was given, else
``local[N]`` with N the usable cores. ``WAYMARK_SPARK_WORKDIR`` names a folder (path or URI) every
executor and the driver can reach, where training and the audit write the feature Parquet; a
temporary folder on the driver when unset, which only local mode can use.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from waymark.models.threads import cores

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# DuckDB's semantics, which the shared SQL is written for: a division by zero or a failed cast is
# NULL (Spark 4 raises under ANSI mode), day arithmetic in UTC, and exact (non-approximate) results.
WAYMARK_DEFAULTS: dict[str, str] = {
    "spark.sql.ansi.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "16",
}
_ENV_PREFIX = "WAYMARK_SPARK_"
_NOT_SETTINGS = {"WAYMARK_SPARK_MASTER", "WAYMARK_SPARK_CONF", "WAYMARK_SPARK_WORKDIR"}


class SparkUnavailable(RuntimeError):
    """PySpark or Java is missing: ``--engine spark`` needs ``pip install 'waymark[spark]'`` and Java 17+."""


def default_master() -> str:
    """``WAYMARK_SPARK_MASTER``, else local mode on the cores this process may use."""
    return os.environ.get("WAYMARK_SPARK_MASTER", "").strip() or f"local[{cores()}]"


def submitted(env: Mapping[str, str] | None = None) -> bool:
    """True when this driver was launched by ``spark-submit`` (which set the master and the JVM up)."""
    return "PYSPARK_GATEWAY_PORT" in (os.environ if env is None else env)


def read_properties(path: Path) -> dict[str, str]:
    """A ``spark-defaults.conf``-style file: one ``key value`` or ``key=value`` per line, # comments.

    Raises
    ------
    ValueError
        Naming the file and line of a line that is not a setting.
    """
    out: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=") if "=" in line.split()[0] else line.partition(" ")
        key, value = key.strip(), value.strip()
        if not key.startswith("spark.") or not sep or not value:
            raise ValueError(f"{path} line {number}: expected 'spark.<key> <value>', got {raw.strip()!r}")
        out[key] = value
    return out


def settings(
    overrides: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The Spark settings in force (see the module docstring for the order)."""
    env = os.environ if env is None else env
    merged = dict(WAYMARK_DEFAULTS)
    conf_file = env.get("WAYMARK_SPARK_CONF", "").strip()
    if conf_file:
        if not Path(conf_file).is_file():
            raise ValueError(f"WAYMARK_SPARK_CONF names {conf_file}, which is not a file")
        merged.update(read_properties(Path(conf_file)))
    for name, value in env.items():
        if name.startswith(_ENV_PREFIX) and name not in _NOT_SETTINGS:
            merged["spark." + name[len(_ENV_PREFIX) :].lower().replace("_", ".")] = value
    merged.update(overrides or {})
    return merged


def spark_session(master: str | None = None, conf: Mapping[str, str] | None = None) -> SparkSession:
    """The active Spark session, made with Waymark's settings if there is none.

    Raises
    ------
    SparkUnavailable
        If PySpark is not installed or Spark cannot start (no Java).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as err:
        raise SparkUnavailable(
            "--engine spark needs PySpark: pip install 'waymark[spark]' (and Java 17 or newer)"
        ) from err
    master = master or os.environ.get("WAYMARK_SPARK_MASTER", "").strip() or None
    if master is None and not submitted():
        master = default_master()
    if master is not None and master.startswith("local"):
        # Python code on executors (scoring's mapInPandas) runs in this interpreter, whose packages
        # Waymark needs, not in whatever `python3` is first on PATH; a set PYSPARK_PYTHON wins.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("waymark")
    if master is not None:  # under spark-submit with no master named here, spark-submit's stands
        builder = builder.master(master)
    for key, value in settings(conf).items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as err:  # Spark reports a missing JVM as a bare RuntimeError/Py4J error
        raise SparkUnavailable(f"Spark could not start ({err}); is Java 17 or newer installed?") from err
    session.sparkContext.setLogLevel("ERROR")
    for key, value in settings(conf).items():  # a session that already ran keeps its own otherwise
        if key.startswith("spark.sql."):
            session.conf.set(key, value)
    return session
