"""``waymark score``: load the champion, score and explain the cohort, publish the batch atomically.

One run at a time per database: a run takes the scoring lock before it records anything and keeps it
until it has published or failed; a second run is refused at once, naming the one that holds it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from waymark.models.calendar import OPEN_OUTCOMES_SQL, TYPED_LAST_DAY_SQL, data_date
from waymark.models.data import folder_fingerprint, load_with_source_labels, memo, read_manifest
from waymark.models.data.publish import local_folder
from waymark.models.explain import SourceCoverage, explain_cohort
from waymark.models.marks import MarkScale
from waymark.models.registry import LoadedModel
from waymark.models.stability import smooth_step
from waymark.service.db.schema import ScoringRun
from waymark.service.scoring import lock, publish, summaries
from waymark.service.scoring.champion import audited_scope, load_champion
from waymark.service.scoring.cohort import (
    CohortError,
    PastWeek,
    activity_cutoff,
    build_cohort,
    current_presentations,
    stated,
)
from waymark.service.scoring.errors import ScoringError, ScoringInProgressError

Progress = Callable[[str], None]
DEFAULT_CHUNK_ROWS = 5000


@dataclass(frozen=True)
class ScoringSummary:
    """What a completed run published."""

    run_id: int
    model: str
    version: str
    students: int
    weeks: tuple[int, ...]
    as_of: str
    withdrawn: int = 0  # registrations not scored: left by the data date (cohort.departed)
    # students whose erasure was processed, left out although the data folder still holds them
    erased_in_folder: int = 0
    restricted: int = 0  # left out at their request (ProcessingRestriction): an objection, a correction
    audited_weeks: tuple[int, ...] = ()  # the weeks the champion's fairness audit measured
    replaced_as_of: str | None = None  # the data date of the batch this one replaced (None: none was served)
    modules: tuple[str, ...] = ()  # the modules scored
    audited_modules: tuple[str, ...] = ()  # the modules of the presentations the audit measured
    past_week: PastWeek | None = None  # days the data hold past a scored week, not yet scored

    @property
    def unaudited_modules(self) -> tuple[str, ...]:
        """Scored modules of which no presentation was tested and audited (none if that is not known).

        An art school's studio, portfolio and part-time modules were scored although the test set was
        three lecture modules: nothing was known of the model's accuracy or fairness on them.
        """
        if not self.audited_modules:
            return ()
        return tuple(m for m in self.modules if m not in set(self.audited_modules))

    @property
    def earlier_than_replaced(self) -> bool:
        """Whether staff now see indicators as of an earlier date than the batch they saw before."""
        return self.replaced_as_of is not None and self.as_of < self.replaced_as_of

    @property
    def beyond_audit(self) -> tuple[int, ...]:
        """Scored weeks later than every week the champion's audit measured (none if it measured none)."""
        last = max(self.audited_weeks, default=None)
        return () if last is None else tuple(w for w in self.weeks if w > last)


@dataclass(frozen=True, eq=False)
class ScoredBatch:
    """What an engine hands the publisher: the same values whichever engine computed them."""

    fingerprint: str  # of the data folder, taken before it was read
    indicators: pd.DataFrame  # explain_cohort(...).indicators, one row per registration, in key order
    as_of: pd.DataFrame  # module_id, presentation_id, week, as_of (``cohort.as_of_dates``)
    placement: pd.DataFrame  # student_id, programme_id, school_id
    summaries: list[dict[str, Any]]  # the run_summaries rows (``summaries.assemble``)
    withdrawn: int = 0  # registrations left out as recorded to have left by the data date
    erased_in_folder: int = 0  # erased students the chosen presentations still register (left out)
    restricted: int = 0  # students of the chosen presentations left out at their own request
    past_week: PastWeek | None = None  # days the data hold past a scored week (``cohort.past_week``)


def _records(
    batch: ScoredBatch,
    *,
    previous: dict[tuple[str, str, str], tuple[float, float, int]],
    smoothing: float,
) -> dict[str, list[Any]]:
    """The indicator rows column by column (name -> one plain Python value per row), as they are stored.

    Each row's ``priority`` (its place in the list) is its estimate smoothed with the previous run's
    value at weight ``smoothing`` (``models.stability.smooth_step``; the estimate itself at 0). A
    previous value of a later week is no one's earlier estimate: an earlier week scored
    after a later one (the last week before a strike) had shown rises of 18 to 23 points, "changed",
    that were time running backwards.
    """
    frame = batch.indicators.merge(
        batch.as_of, on=["module_id", "presentation_id", "week"], how="left"
    ).merge(batch.placement, on="student_id", how="left")
    columns = {name: _plain(frame[name], name) for name in frame.columns}
    keys = zip(columns["student_id"], columns["module_id"], columns["presentation_id"], strict=True)
    weeks = columns["week"]
    found = [previous.get(key) for key in keys]
    before = [b if b is not None and b[2] <= week else None for b, week in zip(found, weeks, strict=True)]
    columns["previous_probability"] = [None if b is None else b[0] for b in before]
    prior = np.array([np.nan if b is None else b[1] for b in before], dtype=np.float64)
    current = np.asarray(columns["probability"], dtype=np.float64)
    columns["priority"] = smooth_step(prior, current, weight=smoothing).tolist()
    return columns


def _plain(values: pd.Series, name: str) -> list[Any]:
    """A column as Python values: whole weeks, float estimates, text or None for the other keys."""
    if name == "week":
        return values.to_numpy(dtype="int64").tolist()
    if name in ("probability", "lower", "upper"):
        return values.to_numpy(dtype="float64").tolist()
    if name in ("student_id", "module_id", "presentation_id", "programme_id", "school_id", "as_of"):
        present = values.notna().to_numpy()
        return [str(v) if ok else None for v, ok in zip(values.tolist(), present, strict=True)]
    return values.tolist()


def _chunks(columns: dict[str, list[Any]], size: int) -> Iterator[dict[str, list[Any]]]:
    rows = len(columns["student_id"])
    for start in range(0, rows, size):
        yield {name: values[start : start + size] for name, values in columns.items()}


def score(
    folder: Path | str,
    engine: Engine,
    *,
    model_name: str,
    week: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    smoothing: float = 0.0,
    progress: Progress | None = None,
    spark: Any = None,
    as_of: date | None = None,
    served: tuple[str, str] | None = None,
    marks: MarkScale | None = None,
) -> ScoringSummary:
    """Score ``folder`` with the champion of ``model_name`` and publish the batch.

    ``served`` is the service's (model name, target) (``WAYMARK_MODEL_NAME``, ``WAYMARK_TARGET``): a
    champion of that target under another name is refused before anything is recorded, since its batch
    would become the target's published one, which the service serves only from its own model (staff
    then saw "no approved model's indicators are being served").

    ``as_of`` states the last day the extract covers (``cohort.stated``); without it, the latest day
    any activity reaches.

    ``marks`` is the scale explanations say marks on (``WAYMARK_MARK_SCALE``; 0 to 100 without it).

    ``smoothing`` is the monitoring policy's weight of the past in the list order (``stability.smoothing``;
    0: ordered by this run's estimates). With a ``spark`` session (``pyspark.sql.SparkSession``) the
    features, scores and explanations are computed on Spark (``scoring.on_spark``); the batch is
    published the same way. ``folder`` is a local path, or with ``spark`` also a Hadoop URI.

    Raises
    ------
    ChampionUnavailableError
        If there is no approved champion whose files match their hash.
    ScoringInProgressError
        If another run holds the database's scoring lock; this run changes nothing.
    ScoringError
        If the data cannot be scored (a URI without ``spark`` is refused before anything is recorded)
        or the batch was not stored whole; nothing is published and the previous batch stays served.
    """
    if spark is None:
        try:
            local_folder(folder)
        except ValueError as exc:  # a URI: refused before a run is recorded
            raise ScoringError(str(exc)) from None
    say = progress or (lambda _msg: None)
    say(f"loading the champion of {model_name}")
    model = load_champion(engine, model_name)
    if served is not None and model.bundle.target == served[1] and model_name != served[0]:
        raise ScoringError(
            f"{model_name} predicts {served[1]}, the target the service serves from {served[0]} "
            "(WAYMARK_MODEL_NAME): publishing its batch would replace the served one with indicators the "
            f"service does not serve, and staff would see none. Score with --name {served[0]}, or set "
            f"WAYMARK_MODEL_NAME={model_name} for the service (and restart it) if that model is to serve."
        )
    with lock.exclusive(engine) as held:
        if held is None:
            raise ScoringInProgressError(_refusal(publish.running_run(engine)))
        publish.clear_unfinished(engine, held)
        run_id = publish.start_run(engine, held, meta={**_model_meta(model), "smoothing": smoothing})
        try:
            with _cycle_collector_paused():
                summary = _score_and_publish(
                    folder,
                    engine,
                    model=model,
                    run_id=run_id,
                    week=week,
                    chunk_rows=chunk_rows,
                    smoothing=smoothing,
                    say=say,
                    spark=spark,
                    as_of=as_of,
                    marks=marks,
                )
        except BaseException:
            publish.mark_failed(engine, run_id)
            raise
    try:  # the batch is published: a failed read of the audit's scope only leaves it unsaid
        weeks, modules = audited_scope(engine, model_name, version=model.version)
    except SQLAlchemyError:
        weeks, modules = (), ()
    return dataclasses.replace(summary, audited_weeks=weeks, audited_modules=modules)


@contextlib.contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a run builds its batch, resumed after.

    A run makes about a million small dicts, lists and tuples (factors, sentences, the rows to
    store), none in a reference cycle; the collector walked them again and again as they grew.
    Reference counting frees them as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _refusal(running: ScoringRun | None) -> str:
    if running is None:  # between the holder taking the lock and recording its run
        who = "it holds the scoring lock but has not recorded its run yet"
    else:
        who = (
            f"run {running.id} ({running.model_name} version {running.model_version}) has been writing "
            f"since {_utc(running.started_at):%Y-%m-%d %H:%M:%S} UTC on host {running.host}, "
            f"process {running.pid}"
        )
    return f"another `waymark score` is running on this database: {who}. This run changed nothing."


def _utc(moment: datetime) -> datetime:
    # SQLite hands back the stored UTC time without its zone; PostgreSQL in the session's zone.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _model_meta(model: LoadedModel) -> dict[str, Any]:
    return {
        "target": model.bundle.target,
        "model_name": model.name,
        "model_version": model.version,
        "bundle_sha256": model.sha256,
    }


def _score_and_publish(
    folder: Path | str,
    engine: Engine,
    *,
    model: LoadedModel,
    run_id: int,
    week: int | None,
    chunk_rows: int,
    smoothing: float,
    say: Progress,
    spark: Any,
    as_of: date | None,
    marks: MarkScale | None = None,
) -> ScoringSummary:
    key = publish.folder_key(folder, spark=spark)
    try:
        erased = publish.erased_students(engine, key=key)
        restricted = publish.restricted_students(engine, key=key)
    except publish.ErasureKeyError as exc:
        raise ScoringError(f"cannot score {folder}: {exc}") from exc
    if spark is None:
        batch = _on_duckdb(
            local_folder(folder),
            model=model,
            week=week,
            erased=erased,
            restricted=restricted,
            say=say,
            as_of=as_of,
            marks=marks,
        )
    else:
        from waymark.service.scoring.on_spark import scored_on_spark

        batch = scored_on_spark(
            folder,
            spark,
            model=model,
            week=week,
            erased=erased,
            restricted=restricted,
            say=say,
            as_of=as_of,
            marks=marks,
        )
    return _publish(
        engine,
        batch,
        model=model,
        run_id=run_id,
        chunk_rows=chunk_rows,
        smoothing=smoothing,
        say=say,
        key=key,
    )


def _on_duckdb(
    folder: Path,
    *,
    model: LoadedModel,
    week: int | None,
    erased: frozenset[str],
    say: Progress,
    as_of: date | None = None,
    restricted: frozenset[str] = frozenset(),
    marks: MarkScale | None = None,
) -> ScoredBatch:
    """The batch computed on the embedded engine: DuckDB for the features, pandas for the rest.

    Neither the ``erased`` nor the ``restricted`` students are read (the first are counted as still in
    the folder, the second as left out at their request).
    """
    say("validating data")
    fingerprint = folder_fingerprint(folder)
    con, report = memo.open_valid(folder, fingerprint=fingerprint)
    if report is None:
        say("reading data (validated before, unchanged since)")
    else:
        say("reading data")
    manifest = read_manifest(folder)
    # The whole folder's, asked for at most once (and remembered with the folder's memo).
    last_days = functools.cache(lambda: _last_days(con, folder=folder, fingerprint=fingerprint))
    if as_of is not None:
        try:
            stated(as_of, reached=data_date(_presentations(con), last_days()))
        except CohortError as exc:
            con.close()
            raise ScoringError(f"cannot score {folder}: {exc}") from exc
    data, labels = load_with_source_labels(
        con,
        choose=lambda pres: current_presentations(
            pres, manifest, last_days=last_days, open_keys=lambda: _open_keys(con), as_of=as_of
        ),
        activity_before=activity_cutoff(week),
    )
    # A chosen week must reach the folder's data date, which the activity read up to its cut-off cannot say.
    day = None if week is None else as_of or data_date(_presentations(con), last_days())
    con.close()
    registered = data.registrations.student_id
    held = int(registered[registered.isin(erased)].nunique())
    held_back = int(registered[registered.isin(restricted)].nunique())
    data = data.without(erased | restricted)
    try:
        say("building features")
        cohort = build_cohort(
            data, week, data_day=lambda: day, as_of=as_of, backtest=bool(manifest.get("test_from"))
        )
        say(f"scoring and explaining {len(cohort.features):,} registrations")
        sources = SourceCoverage.of(data.activity, labels)
        explained = explain_cohort(model.bundle, cohort.features, sources=sources, marks=marks, progress=say)
    except (CohortError, ValueError) as exc:
        raise ScoringError(f"cannot score {folder}: {exc}") from exc
    rows = summaries.summarise(
        cohort.features, explained.indicators, activity=data.activity, reference=model.bundle.reference
    )
    return ScoredBatch(
        fingerprint,
        explained.indicators,
        cohort.as_of,
        cohort.placement,
        rows,
        withdrawn=cohort.withdrawn,
        erased_in_folder=held,
        restricted=held_back,
        past_week=cohort.past_week,
    )


_LAST_DAYS = TYPED_LAST_DAY_SQL
_LAST_DAY_COLUMNS = ["module_id", "presentation_id", "last_day"]


def _last_days(con: duckdb.DuckDBPyConnection, *, folder: Path, fingerprint: str) -> pd.DataFrame:
    """``LAST_DAY_SQL`` over the folder's whole activity, as ``con``'s typed view holds it.

    A scan of every activity row; its result is a fact of the folder's bytes, so it is kept with
    the folder's validation memo and read from there while the folder is unchanged (``memo.recall``).
    """
    key = memo.fact_key("last_days/rows-v1", _LAST_DAYS)  # the name says how the rows are stored
    kept = memo.recall(folder, fingerprint=fingerprint, key=key)
    if _as_stored(kept):
        return pd.DataFrame(kept, columns=_LAST_DAY_COLUMNS)
    found: pd.DataFrame = con.sql(_LAST_DAYS).df()
    rows = [
        [str(m), str(p), None if pd.isna(d) else int(d)]
        for m, p, d in found[_LAST_DAY_COLUMNS].itertuples(index=False)
    ]
    memo.remember_fact(folder, fingerprint=fingerprint, key=key, value=rows)
    return found


def _as_stored(kept: Any) -> bool:
    """Whether ``kept`` has the shape ``_last_days`` stores: [module, presentation, day or null] rows.

    Anything else (a memo edited by hand, damaged) is not trusted: the rows are read again and stored.
    """
    return isinstance(kept, list) and all(
        isinstance(row, list)
        and len(row) == 3
        and isinstance(row[0], str)
        and isinstance(row[1], str)
        and (row[2] is None or (isinstance(row[2], int) and not isinstance(row[2], bool)))
        for row in kept
    )


def _presentations(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every presentation of the folder (keys and start date), as ``con``'s typed view holds them."""
    found: pd.DataFrame = con.sql("SELECT module_id, presentation_id, start_date FROM t_presentations").df()
    return found


def _open_keys(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """``OPEN_OUTCOMES_SQL`` over the folder's registrations, as ``con``'s typed view holds them."""
    found: pd.DataFrame = con.sql(
        f"WITH registrations AS (SELECT * FROM t_registrations) {OPEN_OUTCOMES_SQL}"
    ).df()
    return found


def _publish(
    engine: Engine,
    batch: ScoredBatch,
    *,
    model: LoadedModel,
    run_id: int,
    chunk_rows: int,
    smoothing: float,
    say: Progress,
    key: str,
) -> ScoringSummary:
    """Write the batch aside in chunks, then publish it with the single-pointer swap."""
    target = model.bundle.target
    as_of = str(max(batch.as_of["as_of"]))
    publish.record_data(engine, run_id, fingerprint=batch.fingerprint, as_of=as_of, key=key)
    records = _records(batch, previous=publish.previous_estimates(engine, target), smoothing=smoothing)
    say(f"writing run {run_id}")
    publish.write_chunks(engine, run_id, rows=_chunks(records, chunk_rows))
    publish.write_summaries(engine, run_id, summaries=batch.summaries)
    served = publish.published_run(engine, target)
    # Fewer than produced when an erasure was processed while the run was being written.
    produced = publish.swap(engine, run_id, target=target, produced=list(records["student_id"]))
    weeks = tuple(sorted({int(w) for w in batch.as_of["week"]}))
    return ScoringSummary(
        run_id=run_id,
        model=model.name,
        version=model.version,
        students=produced,
        weeks=weeks,
        as_of=as_of,
        withdrawn=batch.withdrawn,
        erased_in_folder=batch.erased_in_folder,
        restricted=batch.restricted,
        replaced_as_of=None if served is None else served.data_as_of,
        modules=tuple(sorted({str(m) for m in batch.indicators["module_id"]})),
        past_week=batch.past_week,
    )
