"""``waymark score --engine spark``: the same cohort, scores and explanations, computed on Spark.

The activity table never comes to the driver. The features come from ``spark_features`` (the SQL
the DuckDB engine runs), the week choice, source coverage and activity summaries from aggregates
written once for both engines (``calendar.LAST_DAY_SQL``, ``coverage.FIRST_DAY_SQL``,
``summaries.ACTIVE_SQL``). The features are partitioned by module presentation and each partition
is scored and explained by ``explain_cohort`` itself (``models.spark.partitions``: ``mapInPandas``,
with the bundle shipped in its stored form). What comes back, one row per registration and one
summary per presentation, goes to the DuckDB engine's publisher (``job._publish``): chunked writes,
then the single-pointer swap.

The one figure taken across presentations, the typical mark that stands in where a presentation has
fewer than five marks (``cohort.typical_marks``), is each partition's here, the whole run's there
(docs/scale-out.md).

Spark is imported only inside the functions that run it: the default install has no PySpark.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from waymark.models.bundle import ModelBundle
from waymark.models.calendar import data_date, last_activity_day, open_outcomes
from waymark.models.data import FEATURE_TABLES, folder_fingerprint
from waymark.models.data.publish import is_uri
from waymark.models.explain import SourceCoverage, explain_cohort
from waymark.models.explain.coverage import active_by_week, first_days
from waymark.models.features.catalogue import KEYS
from waymark.models.marks import MarkScale
from waymark.models.registry import LoadedModel
from waymark.models.uncertainty import intervals
from waymark.service.scoring import summaries
from waymark.service.scoring.cohort import (
    MAY_HAVE_LEFT,
    NOTHING_TO_SCORE,
    PLACEMENT,
    PRESENTATION,
    REGISTRATION,
    CohortError,
    activity_cutoff,
    as_of_dates,
    current_presentations,
    departed,
    past_week,
    scored_weeks,
    stated,
    week_groups,
)
from waymark.service.scoring.errors import ScoringError
from waymark.service.scoring.job import Progress, ScoredBatch

Tables = dict[str, Any]  # Spark DataFrames by table name
Reader = Callable[[Path | str, Any], tuple[Tables, dict[str, str]]]
JSON_COLUMNS = ("factors", "strengths", "context", "what_could_change", "coverage", "engagement")
INDICATOR_SCHEMA = (
    "student_id string, module_id string, presentation_id string, week bigint, "
    "probability double, lower double, upper double, " + ", ".join(f"{c} string" for c in JSON_COLUMNS)
)
SUMMARY_SCHEMA = "module_id string, presentation_id string, week bigint, registered bigint, summary string"
#: The DuckDB engine's row order: week groups earliest first, each sorted by the keys.
ROW_ORDER = ["week", *KEYS]


def read_tables(folder: Path | str, session: Any) -> tuple[Tables, dict[str, str]]:
    """The folder's validated, typed feature tables on Spark, and how sentences name each source.

    For a local path the labels are read on DuckDB (cheap when the folder's validation memo is
    current, ``models.data.memo``); for a URI, which DuckDB cannot read, from the ``sources`` table
    of the same validation on Spark.
    """
    from waymark.models.spark.reading import feature_tables, load_tables, source_labels, validated

    if not is_uri(folder):
        tables = load_tables(folder, session)
        return {name: tables[name] for name in FEATURE_TABLES}, _labels_on_duckdb(Path(folder))
    with validated(folder, session) as views:
        return feature_tables(views), source_labels(views)


def _labels_on_duckdb(folder: Path) -> dict[str, str]:
    from waymark.models.data import source_labels
    from waymark.models.data.memo import open_valid

    # activity too: whether a built-in source others are read as is itself recorded, and where each is
    # (``source_labels``); with sources alone a folder validated before had no t_activity to ask.
    con, _ = open_valid(folder, fingerprint=folder_fingerprint(folder), tables=("sources", "activity"))
    try:
        return source_labels(con)
    finally:
        con.close()


def scored_on_spark(
    folder: Path | str,
    session: Any,
    *,
    model: LoadedModel,
    week: int | None,
    erased: frozenset[str],
    say: Progress,
    read: Reader | None = None,
    as_of: date | None = None,
    restricted: frozenset[str] = frozenset(),
    marks: MarkScale | None = None,
) -> ScoredBatch:
    """The batch of ``folder`` computed on the Spark ``session``: the values ``job._on_duckdb`` computes.

    ``folder`` is a local path or a Hadoop URI (``models.spark.location`` gives its fingerprint and
    manifest). ``read`` is ``read_tables`` unless given (tests hand in tables built another way).

    Raises
    ------
    ScoringError
        If the data cannot be scored as asked (with the DuckDB engine's message).
    """
    from waymark.models.spark import partitions
    from waymark.models.spark.engine import SparkEngine, collect
    from waymark.models.spark.location import fingerprint as fingerprint_of
    from waymark.models.spark.location import read_manifest

    say("validating and reading data on Spark")
    fingerprint = fingerprint_of(folder, session)
    tables, labels = (read or read_tables)(folder, session)
    engine = SparkEngine(session)
    every = collect(tables["presentations"])
    last_days = functools.cache(lambda: collect(last_activity_day(tables["activity"], engine=engine)))
    if as_of is not None:
        try:
            stated(as_of, reached=data_date(every, last_days()))
        except CohortError as exc:
            raise ScoringError(f"cannot score {folder}: {exc}") from exc
    manifest = read_manifest(folder, session)
    chosen = current_presentations(
        every,
        manifest,
        last_days=last_days,
        open_keys=lambda: collect(open_outcomes(tables["registrations"], engine=engine)),
        as_of=as_of,
    )
    current = partitions.only_presentations(tables, chosen, engine=engine)
    held = partitions.students_among(current["registrations"], erased, engine=engine)
    held_back = partitions.students_among(current["registrations"], restricted, engine=engine)
    data = partitions.without(current, erased | restricted, engine=engine)
    activity = data["activity"]
    if (cutoff := activity_cutoff(week)) is not None:  # as the DuckDB engine reads it
        activity = activity.where(activity["day"] < cutoff)
    activity = activity.persist()  # read by the features and three aggregates
    data = {**data, "activity": activity}
    try:
        intervals(model.bundle.uncertainty, np.empty(0))  # a bundle without intervals fails here, early
        weeks = scored_weeks(
            chosen,
            week,
            last_day=lambda: collect(last_activity_day(activity, engine=engine)),
            data_day=lambda: data_date(every, last_days()),  # the whole folder's, as on DuckDB
            as_of=as_of,
            backtest=bool(manifest.get("test_from")),
        )
        say("building features on Spark")
        features, withdrawn = _without_departed(
            _features(data, weeks, engine=engine, whole=len(weeks) == len(chosen)),
            data["registrations"],
            weeks=weeks,
            backtest=bool(manifest.get("test_from")),
        )
        sources = SourceCoverage.from_first_days(
            collect(first_days(activity, engine=engine)),
            labels,
            active=collect(active_by_week(activity, engine=engine)),
        )
        indicators, rows = _explained(
            features,
            activity,
            engine=engine,
            model=model,
            sources=sources,
            presentations=len(weeks),
            say=say,
            marks=marks,
        )
    except (CohortError, ValueError) as exc:
        raise ScoringError(f"cannot score {folder}: {exc}") from exc
    finally:
        activity.unpersist()
    placement = _placement(data["students"])
    return ScoredBatch(
        fingerprint,
        indicators,
        as_of_dates(weeks),
        placement,
        rows,
        withdrawn=withdrawn,
        erased_in_folder=held,
        restricted=held_back,
        past_week=past_week(weeks) if week is None else None,
    )


def _without_departed(
    features: Any, registrations: Any, *, weeks: pd.DataFrame, backtest: bool = False
) -> tuple[Any, int]:
    """``cohort.without_departed`` on Spark: the registrations that may have left are few, and read here.

    Without any registration left out the features' plan is left as it is; with some, the features are
    kept (persisted) so that counting the ones left out does not build them twice.
    """
    from waymark.models.spark.engine import collect

    columns = [*REGISTRATION, "final_result", "unregistration_day"]
    may = collect(registrations.where(MAY_HAVE_LEFT).select(*columns))
    gone = departed(may, weeks, backtest=backtest)
    if gone.empty:
        return features, 0
    made = features.sparkSession.createDataFrame(gone[REGISTRATION])  # text, as ``departed`` compares them
    keys = made.select(*(made[c].cast(features.schema[c].dataType).alias(c) for c in REGISTRATION))
    features = features.persist()
    withdrawn = features.join(keys, on=REGISTRATION, how="left_semi").count()
    return (features.join(keys, on=REGISTRATION, how="left_anti") if withdrawn else features), withdrawn


def _features(data: Tables, weeks: pd.DataFrame, *, engine: Any, whole: bool = True) -> Any:
    """``build_cohort``'s features on Spark: with several scored weeks, each from its own presentations.

    ``whole``: ``weeks`` holds every presentation of ``data`` (none left out for its first days).
    """
    from waymark.models.spark.features import spark_features
    from waymark.models.spark.partitions import only_presentations

    groups = week_groups(weeks)
    parts = [
        spark_features(
            data if len(groups) == 1 and whole else only_presentations(data, group, engine=engine),
            engine.session,
            weeks=[int(group["week"].iloc[0])],
        )
        for group in groups
    ]
    if not parts:
        raise CohortError(NOTHING_TO_SCORE)
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def _placement(students: Any) -> pd.DataFrame:
    from waymark.models.spark.engine import collect

    present = [c for c in PLACEMENT if c in students.columns]
    return collect(students.select(*present)).reindex(columns=list(PLACEMENT))


def _explained(
    features: Any,
    activity: Any,
    *,
    engine: Any,
    model: LoadedModel,
    sources: SourceCoverage,
    presentations: int,
    say: Progress,
    marks: MarkScale | None = None,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Indicators (in the DuckDB engine's row order) and run summaries, from each presentation's partition."""
    from waymark.models.spark import partitions
    from waymark.models.spark.engine import collect

    shipped = partitions.ship(model.bundle, engine.session)
    partitioned = partitions.by_presentation(features, presentations=presentations)
    try:
        say("scoring and explaining on Spark, whole module presentations per partition")
        found = partitions.map_presentations(
            partitioned, _explain, schema=INDICATOR_SCHEMA, shipped=shipped, sources=sources, marks=marks
        )
        if found.empty:
            raise CohortError(NOTHING_TO_SCORE)
        indicators = _decoded(found, JSON_COLUMNS).sort_values(ROW_ORDER, ignore_index=True)
        per_presentation = _decoded(
            partitions.map_presentations(partitioned, _summarise, schema=SUMMARY_SCHEMA, shipped=shipped),
            ("summary",),
        )
        counted = engine.query(
            summaries.ACTIVE_SQL,
            activity=activity.select(*PRESENTATION, "student_id", "source", "day"),
            scored=partitioned.select(*KEYS),
        )
        rows = summaries.assemble(
            per_presentation,
            indicators,
            active=summaries.active_counts(collect(counted)),
            sources=sorted(set(sources.first_day["source"])),  # the activity's sources (IDs are never null)
            reference=model.bundle.reference,
        )
    finally:
        partitioned.unpersist()
        shipped.unpersist()
    return indicators, rows


def _decoded(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """JSON text columns back into the Python values the DuckDB engine holds in them."""
    out = frame.copy()
    for name in columns:
        values = np.empty(len(out), dtype=object)
        values[:] = [orjson.loads(text) for text in out[name].tolist()]
        out[name] = values
    return out


def _encoded(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    # As ``publish.write_chunks`` serialises them, so the stored JSON is the same text.
    out = frame.copy()
    for name in columns:
        out[name] = [orjson.dumps(v, option=orjson.OPT_SERIALIZE_NUMPY).decode() for v in out[name].tolist()]
    return out


# --- on the executors (module-level: they are imported there by name) ------------------------------


def _explain(
    features: pd.DataFrame, bundle: ModelBundle, *, sources: SourceCoverage, marks: MarkScale | None = None
) -> pd.DataFrame:
    """Score and explain a partition's registrations, the JSON columns as text for Arrow."""
    return _encoded(explain_cohort(bundle, features, sources=sources, marks=marks).indicators, JSON_COLUMNS)


def _summarise(features: pd.DataFrame, bundle: ModelBundle) -> pd.DataFrame:
    """A partition's presentations' week, registered count and feature summary (JSON text)."""
    return _encoded(summaries.presentation_summaries(features, reference=bundle.reference), ("summary",))
