"""Atomic publication of a scoring run: write the batch aside, then swap one pointer in one transaction.

Readers only ever follow ``publications`` to a complete run, so they see the previous batch or the
new one, never a mix. Rows are written in committed chunks under a run marked ``writing``; a run that
fails is marked ``failed``, and one killed part-way stays ``writing``: neither is ever pointed to, and
the next run clears their rows. Complete runs are never deleted, so history survives model changes.

Runs are written one at a time (``service.scoring.lock``): starting a run, clearing dead runs and
publishing all happen while holding the database's scoring lock, and the pointer only moves to a run
whose stored rows are exactly the rows it produced.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import JSON, ColumnElement, Connection, Engine, delete, func, insert, select, update
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table

from waymark.models.data.publish import local_folder, read_manifest
from waymark.service.db.engine import erasure_barrier, transaction
from waymark.service.db.schema import (
    Indicator,
    ProcessingRestriction,
    Publication,
    RunSummary,
    ScoringRun,
    TrainingExclusion,
    estimates_withdrawn,
)
from waymark.service.objections import left_out, standing
from waymark.service.scoring.errors import IncompleteBatchError
from waymark.service.scoring.lock import ScoringLock


def now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def published_run(engine: Engine, target: str) -> ScoringRun | None:
    """The run currently served for ``target``."""
    with transaction(engine) as session:
        return session.scalar(
            select(ScoringRun)
            .join(Publication, Publication.run_id == ScoringRun.id)
            .where(Publication.target == target)
        )


def previous_estimates(engine: Engine, target: str) -> dict[tuple[str, str, str], tuple[float, float, int]]:
    """Each registration's estimate, list-order value and week in the run served (its change, its smoothing).

    The order value of a run from before revision 0007 is its estimate (it was ordered by it). Empty
    when the run's model was rejected since: its estimates are no one's starting point.
    """
    run = published_run(engine, target)
    if run is None:
        return {}
    with transaction(engine) as session:
        if session.scalar(select(estimates_withdrawn(run.model_name, run.model_version))):
            return {}
        rows = session.execute(
            select(
                Indicator.student_id,
                Indicator.module_id,
                Indicator.presentation_id,
                Indicator.probability,
                func.coalesce(Indicator.priority, Indicator.probability),
                Indicator.week,
            ).where(Indicator.run_id == run.id)
        )
        return {(s, m, p): (prob, order, int(week)) for s, m, p, prob, order, week in rows}


class ErasureKeyError(Exception):
    """Erasures were recorded under ids made with another key than the folder's: they cannot be applied."""


def erased_students(engine: Engine, *, key: str) -> frozenset[str]:
    """Students whose erasure was processed: never scored, trained on or audited again (CoP §12).

    ``key`` identifies how the ids of the folder about to be read were made (``folder_key``). An
    erasure recorded under ids made with another key names its student differently there, so the
    student would come back unnoticed: such a folder is refused.

    Raises
    ------
    ErasureKeyError
        When any erasure was recorded under a key other than ``key``.
    """
    return _recorded(engine, TrainingExclusion, key=key, what="erasures")


def restricted_students(engine: Engine, *, key: str) -> frozenset[str]:
    """Students whose processing is restricted at their request: an objection, a correction being weighed.

    Checked against ``key`` as erasures are (``erased_students``; the same error). A restriction past the
    notice its ending gave (``objections.standing``) keeps nobody out.
    """
    return _recorded(
        engine, ProcessingRestriction, key=key, what="restrictions of processing", where=standing()
    )


def left_out_students(engine: Engine, *, key: str) -> frozenset[str]:
    """Students no training, audit or scoring reads: erased, or restricted (``erased_students`` raises)."""
    return erased_students(engine, key=key) | restricted_students(engine, key=key)


def _recorded(
    engine: Engine,
    table: type[TrainingExclusion] | type[ProcessingRestriction],
    *,
    key: str,
    what: str,
    where: ColumnElement[bool] | None = None,
) -> frozenset[str]:
    query = select(table.student_id, table.pseudonym_key)
    with transaction(engine) as session:
        rows = session.execute(query if where is None else query.where(where)).all()
    other = Counter(k for _, k in rows if k is not None and k != key)
    if other:
        recorded = "; ".join(f"{n:,} under {_key_said(k)}" for k, n in sorted(other.items()))
        raise ErasureKeyError(
            f"{what} were recorded for students identified by ids made otherwise than this data's "
            f"({recorded}; this data: {_key_said(key)}): in it those students have other ids, so they would "
            f"be read again. Import the data with the secret the {what} were recorded under."
        )
    return frozenset(student for student, _ in rows)


def folder_key(folder: Path | str, *, spark: Any = None) -> str:
    """The identifier of the key a data folder's ids were made with ("": not pseudonymised by Waymark).

    ``folder`` is a local path, or with ``spark`` (a Spark session) also a Hadoop URI.
    """
    if spark is None:
        manifest = read_manifest(local_folder(folder))
    else:
        from waymark.models.spark.location import read_manifest as read_remote

        manifest = read_remote(folder, spark)
    return str(manifest.get("pseudonym_key") or "")


def _key_said(key: str) -> str:
    return f"pseudonym key {key}" if key else "ids not pseudonymised by Waymark"


def running_run(engine: Engine) -> ScoringRun | None:
    """The run being written now: the newest still marked ``writing``."""
    with transaction(engine) as session:
        return session.scalar(
            select(ScoringRun).where(ScoringRun.status == "writing").order_by(ScoringRun.id.desc())
        )


def clear_unfinished(engine: Engine, held: ScoringLock) -> list[int]:
    """Mark runs left ``writing`` as failed, remove the rows of every incomplete run; returns the dead runs.

    ``held`` is the proof that this process holds the scoring lock. No process writes a run without
    holding it, and it is released only when its holder ends, so while we hold it every run still
    marked ``writing`` belongs to a process that died: clearing it cannot delete a live run's rows.
    """
    with transaction(engine) as session:
        dead = list(session.scalars(select(ScoringRun.id).where(ScoringRun.status == "writing")))
        session.execute(update(ScoringRun).where(ScoringRun.id.in_(dead)).values(status="failed"))
        unfinished = select(ScoringRun.id).where(ScoringRun.status != "complete")
        session.execute(delete(Indicator).where(Indicator.run_id.in_(unfinished)))
    return dead


def start_run(engine: Engine, held: ScoringLock, *, meta: dict[str, Any]) -> int:
    """Record a new run as ``writing``, owned by the lock's holder, and return its id.

    Its data fingerprint and as-of date stay empty until the data is read (``record_data``): the
    run is recorded as soon as it holds the lock, so that a refused run can name it.
    """
    with transaction(engine) as session:
        run = ScoringRun(
            **meta,
            data_fingerprint="",
            data_as_of="",
            status="writing",
            students=0,
            started_at=now(),
            host=held.host,
            pid=held.pid,
        )
        session.add(run)
        session.flush()
        return run.id


def record_data(engine: Engine, run_id: int, *, fingerprint: str, as_of: str, key: str) -> None:
    """Record which data the run scores: the folder's fingerprint, the date it runs to, its ids' key."""
    with transaction(engine) as session:
        session.execute(
            update(ScoringRun)
            .where(ScoringRun.id == run_id)
            .values(data_fingerprint=fingerprint, data_as_of=as_of, pseudonym_key=key)
        )


#: JSON as the ORM's JSON type stores it: None is the text 'null' (none_as_null is off), not SQL NULL.
_DUMPS, _NUMPY = orjson.dumps, orjson.OPT_SERIALIZE_NUMPY


def write_chunks(engine: Engine, run_id: int, *, rows: Iterator[Mapping[str, Sequence[Any]]]) -> int:
    """Insert the run's indicator rows chunk by chunk, one transaction each; returns how many were written.

    Each chunk holds its rows column by column: a column's name, then its values, one per row.
    Rows go through the driver's fast path, not the ORM: ``COPY ... FROM STDIN`` on PostgreSQL and
    the driver's ``executemany`` on SQLite, with the JSON columns serialised once here (``orjson``;
    the same values the ORM's JSON type would store). A column a chunk lacks is stored as NULL (as
    JSON ``null`` in a JSON column).
    """
    columns = [c.name for c in Indicator.__table__.columns]
    as_json = frozenset(c.name for c in Indicator.__table__.columns if isinstance(c.type, JSON))
    written = 0
    for chunk in rows:
        values = _values(chunk, run_id, columns=columns, as_json=as_json)
        with transaction(engine) as session:
            _insert_rows(session.connection(), values, columns=columns)
        written += len(values)
    return written


def _values(
    chunk: Mapping[str, Sequence[Any]], run_id: int, *, columns: list[str], as_json: frozenset[str]
) -> list[tuple[Any, ...]]:
    """The chunk's rows as tuples in ``columns`` order (the run's id in each)."""
    rows = len(next(iter(chunk.values()), ()))  # columns of unequal length fail the strict zip
    built: list[Sequence[Any]] = []
    for name in columns:
        if name == "run_id":
            built.append([run_id] * rows)
        elif name not in chunk:
            built.append(["null" if name in as_json else None] * rows)
        elif name in as_json:
            built.append([_DUMPS(value, option=_NUMPY).decode() for value in chunk[name]])
        else:
            built.append(chunk[name])
    return list(zip(*built, strict=True))


def _insert_rows(connection: Connection, values: Sequence[tuple[Any, ...]], *, columns: list[str]) -> None:
    """Insert ``values`` (tuples in ``columns`` order, JSON already text) in the connection's transaction."""
    if not values:
        return
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    table, names = quote(Indicator.__tablename__), ", ".join(quote(c) for c in columns)
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)
    elif dialect.name == "sqlite":
        marks = ", ".join("?" for _ in columns)
        connection.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(values))
    else:  # any other driver: a Core executemany over untyped columns (the JSON is already text)
        untyped = sql_table(Indicator.__tablename__, *(sql_column(c) for c in columns))
        connection.execute(insert(untyped), [dict(zip(columns, row, strict=True)) for row in values])


def write_summaries(engine: Engine, run_id: int, *, summaries: list[dict[str, Any]]) -> None:
    """Store the run's aggregate summaries (``service.scoring.summaries``) before it is published."""
    with transaction(engine) as session:
        session.execute(delete(RunSummary).where(RunSummary.run_id == run_id))
        if summaries:
            session.execute(insert(RunSummary), [{**row, "run_id": run_id} for row in summaries])


def swap(engine: Engine, run_id: int, *, target: str, produced: Sequence[str]) -> int:
    """Mark the run complete and point the target at it, in one transaction, if it stored every row.

    ``produced`` holds the student of each row the run wrote. A student whose erasure was processed
    while the run was being written (after it read the erased students) is not published: their rows
    go here, and an erasure that comes later removes them from the published run itself. So with a
    student whose processing was restricted meanwhile (an objection, a correction being weighed).
    Returns the number of rows published.

    Raises
    ------
    IncompleteBatchError
        If the run is no longer ``writing``, or does not hold a row for every produced row of a student
        not erased; nothing changes.
    """
    with transaction(engine) as session:
        erasure_barrier(session)  # an erasure finishing now is seen below; one starting now waits
        # The row lock makes a concurrent clear_unfinished (possible only if our lock was lost with
        # its connection) wait for this check, or this check see its result.
        status = session.scalar(select(ScoringRun.status).where(ScoringRun.id == run_id).with_for_update())
        # written after their erasure was processed (the erasure deletes those before it), or their
        # objection was made (their stored indicators stay, but none is added while it stands)
        gone = select(TrainingExclusion.student_id).union(left_out())
        erased = set(session.scalars(gone)).intersection(produced)
        if erased:
            session.execute(
                delete(Indicator).where(Indicator.run_id == run_id, Indicator.student_id.in_(sorted(erased)))
            )
        expected = sum(1 for s in produced if s not in erased)
        stored = session.scalar(select(func.count()).select_from(Indicator).where(Indicator.run_id == run_id))
        if status != "writing" or stored != expected:
            raise IncompleteBatchError(
                f"run {run_id} was not published: it stored {stored:,} of the {expected:,} indicator rows "
                f"it produced (status {status!r})"
            )
        session.execute(
            update(ScoringRun)
            .where(ScoringRun.id == run_id)
            .values(status="complete", students=expected, finished_at=now())
        )
        current = session.get(Publication, target)
        if current is None:
            session.add(Publication(target=target, run_id=run_id, published_at=now()))
        else:
            current.run_id, current.published_at = run_id, now()
    return expected


def mark_failed(engine: Engine, run_id: int) -> None:
    """Record that a run did not complete (its rows are cleared by the next run)."""
    with transaction(engine) as session:
        session.execute(
            update(ScoringRun).where(ScoringRun.id == run_id).values(status="failed", finished_at=now())
        )
