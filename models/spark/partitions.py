"""Pandas code on Spark's executors, whole module presentations at a time (``mapInPandas``, via Arrow).

Scoring explains each student against their own module presentation (how typical they are, the peer
a change is measured by), so a partition holding whole presentations gives the rows the whole cohort
would. The model bundle travels to the executors in its stored form, not pickled, and each Python
worker loads it once, refusing it unless its hash matches (as every load of a bundle does).
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from waymark.models.bundle import ModelBundle
from waymark.models.features.catalogue import FEATURE_NAMES, KEYS
from waymark.models.spark.engine import SparkEngine, collect

if TYPE_CHECKING:
    from pyspark.broadcast import Broadcast
    from pyspark.sql import DataFrame, SparkSession

PRESENTATION = ["module_id", "presentation_id"]
#: What runs on a partition: its features (as ``build_features`` gives them), the bundle, options.
Step = Callable[..., pd.DataFrame]
_LOADED: dict[str, ModelBundle] = {}


def only_presentations(
    tables: Mapping[str, DataFrame], chosen: pd.DataFrame, *, engine: SparkEngine
) -> dict[str, DataFrame]:
    """The six tables restricted to the ``chosen`` presentations, as ``load_learning_data(choose=...)``.

    Results follow their presentations' assessments and students their registrations there;
    ``attempts`` keeps those students' registrations in every presentation of ``tables``
    (``models.data.attempts_of``), so that earlier attempts still count.
    """
    from pyspark.sql import functions as F

    wanted = F.broadcast(engine.frame(chosen[PRESENTATION].astype(str), "wanted"))
    kept = {
        name: tables[name].join(wanted, PRESENTATION, "left_semi")
        for name in ("presentations", "registrations", "assessments", "activity")
    }
    by_assessment = kept["assessments"].select("assessment_id")
    by_student = kept["registrations"].select("student_id")
    attempts = (
        tables["attempts"]
        if "attempts" in tables
        else tables["registrations"]
        .join(tables["presentations"].select(*PRESENTATION, "start_date"), PRESENTATION)
        .select("student_id", "module_id", "start_date")
    )
    return {
        **kept,
        "assessment_results": tables["assessment_results"].join(by_assessment, "assessment_id", "left_semi"),
        **(
            {"extensions": tables["extensions"].join(by_assessment, "assessment_id", "left_semi")}
            if "extensions" in tables
            else {}
        ),
        "students": tables["students"].join(by_student, "student_id", "left_semi"),
        "attempts": attempts.join(by_student, "student_id", "left_semi"),
    }


def students_among(frame: DataFrame, students: frozenset[str], *, engine: SparkEngine) -> int:
    """How many of ``students`` have a row in ``frame`` (distinct ids)."""
    if not students:
        return 0
    from pyspark.sql import functions as F

    gone = F.broadcast(engine.frame(pd.DataFrame({"student_id": sorted(students)}), "erased"))
    return int(frame.select("student_id").join(gone, "student_id", "left_semi").distinct().count())


def without(
    tables: Mapping[str, DataFrame], students: frozenset[str], *, engine: SparkEngine
) -> dict[str, DataFrame]:
    """``LearningData.without``: every row of ``students`` gone (an anti-join, however many they are)."""
    if not students:
        return dict(tables)
    from pyspark.sql import functions as F

    gone = F.broadcast(engine.frame(pd.DataFrame({"student_id": sorted(students)}), "erased"))
    return {
        name: frame.join(gone, "student_id", "left_anti") if "student_id" in frame.columns else frame
        for name, frame in tables.items()
    }


def by_presentation(features: DataFrame, *, presentations: int) -> DataFrame:
    """``features`` hash-partitioned by module presentation (whole presentations per partition), cached."""
    session = features.sparkSession
    width = int(session.conf.get("spark.sql.shuffle.partitions") or "1")
    return features.repartition(max(1, min(presentations, width)), *PRESENTATION).persist()


def ship(bundle: ModelBundle, session: SparkSession) -> Broadcast[dict[str, Any]]:
    """The bundle's stored files and their sha256, broadcast to the executors."""
    with tempfile.TemporaryDirectory(prefix="waymark-bundle-") as scratch:
        sha256 = bundle.save(Path(scratch))
        files = {path.name: path.read_bytes() for path in Path(scratch).iterdir()}
    return session.sparkContext.broadcast({"sha256": sha256, "files": files})


def map_presentations(
    features: DataFrame, step: Step, *, schema: str, shipped: Broadcast[dict[str, Any]], **options: Any
) -> pd.DataFrame:
    """``step`` on each partition of ``by_presentation``'s features; the results, collected.

    ``step`` must be a module-level function (executors import it by name); it is called as
    ``step(features, bundle, **options)`` and returns rows of ``schema`` (a Spark DDL string).
    """
    run = functools.partial(_partition, step=step, shipped=shipped, options=options)
    return collect(features.mapInPandas(run, schema))


def _partition(
    batches: Iterator[pd.DataFrame],
    *,
    step: Step,
    shipped: Broadcast[dict[str, Any]],
    options: dict[str, Any],
) -> Iterator[pd.DataFrame]:
    """One partition's Arrow batches as one features frame, through ``step``."""
    frames = [frame for frame in batches if len(frame)]
    if frames:
        yield step(as_built(pd.concat(frames, ignore_index=True)), _bundle(shipped.value), **options)


def _bundle(stored: dict[str, Any]) -> ModelBundle:
    """The shipped bundle, loaded once per Python worker and refused unless its hash matches."""
    sha256 = stored["sha256"]
    if sha256 not in _LOADED:
        with tempfile.TemporaryDirectory(prefix="waymark-bundle-") as scratch:
            for name, data in stored["files"].items():
                (Path(scratch) / name).write_bytes(data)
            _LOADED[sha256] = ModelBundle.load(Path(scratch), sha256)
    return _LOADED[sha256]


def as_built(merged: pd.DataFrame) -> pd.DataFrame:
    """Spark's feature rows as ``build_features`` returns them: typed keys, float64 features, key order.

    Raises
    ------
    ValueError
        If a registration repeats or a feature is missing (``build_features``' checks).
    """
    out = merged[list(KEYS)].astype(
        {"student_id": str, "module_id": str, "presentation_id": str, "week": "int64"}
    )
    repeated = int(out.duplicated().sum())
    if repeated:
        raise ValueError(f"features: {repeated} registration(s) repeated (a join repeated one)")
    for name in FEATURE_NAMES:
        out[name] = merged[name].to_numpy(dtype=np.float64)
    missing = out[list(FEATURE_NAMES)].isna().sum()
    if missing.any():
        raise ValueError(f"features with missing values: {missing[missing > 0].to_dict()}")
    return out.sort_values(list(KEYS), ignore_index=True)
