"""Engines and sessions, and bringing the schema up to date with Alembic."""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionError
from sqlalchemy import Connection, Engine, create_engine, event, insert, make_url, select, text
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from waymark.models.settings import Settings
from waymark.service.db.schema import DeploymentMark

try:
    import fcntl
except ImportError:  # not on Windows: threads of one process are still queued
    fcntl = None  # type: ignore[assignment]

MIGRATIONS = Path(__file__).parent / "migrations"
POOL_SIZE_ENV = "WAYMARK_DB_POOL_SIZE"  # connections each process keeps (``waymark serve`` sets it)
DEFAULT_POOL_SIZE = 10


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the service read the published batch while a scoring run writes the next one.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _begin_immediate(connection: Any) -> None:
    # Take SQLite's write lock at BEGIN: a transaction that reads the audit chain's head and then
    # appends to it must not interleave with another (the pysqlite recipe in SQLAlchemy's docs).
    # Before it, take the writer lock (below), so waiting happens in a queue rather than in SQLite.
    if _HELD not in connection.info:
        lock = _writer_lock(connection.engine)
        lock.acquire()
        connection.info[_HELD] = lock
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        _release(connection.info)
        raise


def _release(info: dict[Any, Any]) -> None:
    lock = info.pop(_HELD, None)
    if lock is not None:
        lock.release()


def _checked_in(_dbapi_connection: Any, record: Any) -> None:
    # The connection is back in the pool, its transaction committed or rolled back: the next may begin.
    if record is not None:
        _release(record.info)


def pool_size_for(workers: int, *, cores: int | None = None) -> int:
    """Connections each of ``workers`` processes keeps: about four per core in all, at least four each.

    More connections than that buy nothing: every audited request queues on the access log's head
    row in the end, and PostgreSQL does best with few more busy connections than cores.
    """
    cores = cores or os.cpu_count() or 1
    return max(4, math.ceil(4 * cores / max(1, workers)))


def make_engine(url: str, *, pool_size: int | None = None, reads_only: bool = False) -> Engine:
    """An engine for ``url`` (SQLite gets WAL, foreign keys, a busy timeout and BEGIN IMMEDIATE).

    On PostgreSQL the pool keeps ``pool_size`` connections (default ``WAYMARK_DB_POOL_SIZE``) and opens
    as many again for a burst; with neither, 10 and 20 more. ``reads_only`` (SQLite) is for a caller
    that never writes, such as the champion watch, which may look while a request of the same thread
    holds the writer: WAL lets it read beside a writer, so it begins plainly and takes no writer lock.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "isolation_level": None})
        event.listen(engine, "connect", _sqlite_pragmas)
        if reads_only:
            event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN"))
            return engine
        event.listen(engine, "begin", _begin_immediate)
        event.listen(engine, "checkin", _checked_in)
        event.listen(engine, "invalidate", lambda _c, record, _e: _checked_in(None, record))
        return engine
    size = pool_size or int(os.environ.get(POOL_SIZE_ENV) or 0)
    # A server that accepts a connection and never answers would hold a request (and the health check)
    # for ever: a connection is given CONNECT_TIMEOUT seconds unless the URL says otherwise.
    bounded = {} if "connect_timeout" in url else {"connect_timeout": CONNECT_TIMEOUT}
    if not size:  # a command's or a test's engine: as before
        return create_engine(
            url, pool_pre_ping=True, pool_size=DEFAULT_POOL_SIZE, max_overflow=20, connect_args=bounded
        )
    return create_engine(url, pool_pre_ping=True, pool_size=size, max_overflow=size, connect_args=bounded)


log = logging.getLogger(__name__)

#: Seconds a PostgreSQL connection may take to be made (libpq's ``connect_timeout``).
CONNECT_TIMEOUT = 10


@lru_cache
def engine_for(url: str) -> Engine:
    """One engine per database URL for the life of the process."""
    return make_engine(url)


def sessions(engine: Engine) -> Callable[[], Session]:
    """A session factory bound to ``engine``.

    Not cached: a cache keyed by engine kept every engine a process ever made alive until it was
    pushed out, and an engine nobody had disposed then closed its connections whenever that
    happened (tests saw psycopg's "deleted while still open" in whichever test came 128 engines later).
    """
    return functools.partial(Session, engine, expire_on_commit=False)


# SQLite allows one writer at a time, and its busy handler waits by sleeping, so under load threads
# would queue inside SQLite with growing back-off and finally fail; processes sharing the file (the
# workers of ``waymark serve --workers N``) would starve one another the same way. Queue them here
# instead, from BEGIN until the connection is back in the pool: threads on a lock of the process,
# processes on an advisory lock of a file beside the database (blocking in the kernel, so a waiting
# process takes its turn as soon as the file is free). The lock is not tied to a thread: FastAPI
# opens a request's unit of work in one worker thread and closes it in another.
_HELD = "waymark_writer_lock"  # in a connection's info while it holds the lock
WRITER_WAIT = 30.0  # seconds a transaction waits for the writer before giving up (503)


class _WriterLock:
    """Exclusive across threads (whichever thread releases it) and across processes."""

    def __init__(self, path: Path | None) -> None:
        self._threads = threading.Lock()
        self._path = path
        self._handle: int | None = None

    def acquire(self) -> None:
        """Wait for the writer (at most ``WRITER_WAIT`` seconds in this process).

        Raises
        ------
        OperationalError
            If another transaction of this process held it all that time.
        """
        if not self._threads.acquire(timeout=WRITER_WAIT):
            waited = TimeoutError(f"database is locked: waited {WRITER_WAIT:.0f} s for the writer")
            raise OperationalError("BEGIN IMMEDIATE", {}, waited)
        if self._path is None or fcntl is None:
            return
        try:
            if self._handle is None:
                self._handle = _open_lock(self._path)
            if self._handle is not None:
                _flock_within(self._handle, seconds=WRITER_WAIT)
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        """Let the next transaction begin."""
        try:
            if self._handle is not None and fcntl is not None:
                fcntl.flock(self._handle, fcntl.LOCK_UN)
        finally:
            self._threads.release()


def _flock_within(handle: int, *, seconds: float) -> None:
    """Take the file lock, waiting at most ``seconds`` for another process to let it go.

    Raises
    ------
    OperationalError
        If another process held it all that time.
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                waited = TimeoutError(f"database is locked: waited {seconds:.0f} s for another process")
                raise OperationalError("BEGIN IMMEDIATE", {}, waited) from None
            time.sleep(0.002)


def _open_lock(path: Path) -> int | None:
    """The lock file's descriptor; None when it cannot be made (SQLite then says what is wrong)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None


_SQLITE_LOCKS: dict[str, _WriterLock] = {}


def _writer_lock(engine: Engine) -> _WriterLock:
    key = str(engine.url)
    found = _SQLITE_LOCKS.get(key)
    if found is None:
        database = engine.url.database
        # Never deleted: removing it could let one process lock a new file while another holds the old.
        path = Path(f"{database}.writer-lock") if database and database != ":memory:" else None
        found = _SQLITE_LOCKS.setdefault(key, _WriterLock(path))
    return found


# One fixed 64-bit key: "the erasure barrier of this database" (transaction-level advisory lock).
ERASURE_KEY = int.from_bytes(hashlib.sha256(b"waymark-erasure").digest()[:8], "big", signed=True)


def one_at_a_time(session: Session, *about: str) -> None:
    """Order this transaction with every other that names the same ``about``, until it ends.

    For a check that a row does not exist yet followed by its insert (one open erasure request per
    student): under PostgreSQL's READ COMMITTED two such transactions would both find nothing and
    both insert. The later one now waits for the earlier to end and then sees its row. SQLite's
    write transactions already run one at a time from their start.
    """
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256("\x1f".join(about).encode()).digest()[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def one_student_at_a_time(session: Session, student_id: str) -> None:
    """Order this write to ``student_id``'s records with an erasure of that student, until it ends.

    Taken first by every write of a student's own records (a contact, feedback, an intervention, a
    preference, consent, a request) and by the erasure itself. Under PostgreSQL's READ COMMITTED a
    staff write that checked its scope just before an erasure committed, or inserted just before the
    erasure deleted, would leave a row behind it. Now the later of the two waits: an erasure then
    deletes what the write committed, and a write then finds the student gone from its scope (404).
    """
    one_at_a_time(session, "student records", student_id)


def erasure_barrier(session: Session) -> None:
    """Order this transaction with every erasure, before it reads which students were erased.

    An erasure and a write that leaves erased students out (publishing a scoring run, importing
    grants or the staff directory) must not overlap: under PostgreSQL's READ COMMITTED, a write that
    read the erased students just before an erasure committed would put the student back. On
    PostgreSQL both take this transaction-level advisory lock first, so the later one waits and
    then sees the other's work. SQLite's write transactions already run one at a time from their
    start (``BEGIN IMMEDIATE``), so there is nothing to take.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ERASURE_KEY})


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work is committed together, or not at all."""
    with sessions(engine)() as session, session.begin():
        yield session


#: The PostgreSQL advisory lock key migrations hold (any fixed number; "waymark" in ASCII).
MIGRATION_LOCK = 0x7761796D61726B
#: PostgreSQL's SQLSTATE for "permission denied" and "must be owner of".
INSUFFICIENT_PRIVILEGE = "42501"


class MigrationRefused(RuntimeError):
    """The database could not be brought up to date: named revisions, and what to do (``upgrade``)."""


@dataclass(frozen=True)
class Revisions:
    """Where a database's schema stands against this release's migrations (``revisions``)."""

    current: str | None  # the revision applied last; None for a database no migration has touched
    head: str  # the newest revision this release holds
    pending: tuple[str, ...]  # the migrations not yet applied, oldest first, as "0011 (its summary)"
    known: bool = True  # False: the database is at a revision this release does not hold (a newer one's)

    @property
    def up_to_date(self) -> bool:
        """Whether nothing is left to apply."""
        return self.known and not self.pending

    @property
    def where(self) -> str:
        """Where the database stands, as a sentence says it: "at revision 0010", or empty."""
        return f"at revision {self.current}" if self.current else "empty (no migration applied)"

    def newer_release(self) -> str:
        """What a database a newer release migrated is, and what to do (``known`` False)."""
        return (
            f"the database is at revision {self.current}, which this release does not hold (its newest "
            f"is {self.head}): a newer release of Waymark migrated it. Run that release, or restore the "
            "backup taken before the upgrade and reinstall this one (docs/operations.md, Upgrading)."
        )


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _described(script: Script) -> str:
    summary = (script.doc or "").strip().splitlines()
    if not summary:
        return str(script.revision)
    return f"{script.revision} ({summary[0].rstrip('.').replace('``', '')})"


def revisions(engine: Engine) -> Revisions:
    """The database's revision beside this release's newest, and what is left to apply (reads only)."""
    with engine.connect() as connection:
        return _revisions(connection)


def _revisions(connection: Connection) -> Revisions:
    scripts = ScriptDirectory.from_config(_config())
    head = str(scripts.get_current_head())  # one head: the migrations are a single line
    current = MigrationContext.configure(connection).get_current_revision()
    try:
        between = list(scripts.iterate_revisions(head, current or "base"))
    except RevisionError:  # a revision this release does not hold
        return Revisions(current=current, head=head, pending=(), known=False)
    return Revisions(current=current, head=head, pending=tuple(_described(s) for s in reversed(between)))


def upgrade(engine: Engine) -> Revisions:
    """Apply every migration not yet applied, one process at a time; returns where the database stood.

    Every command and the service bring the database up to date when they open it, so after an upgrade
    the first scheduled job and the service's start meet: on PostgreSQL the migration holds a
    transaction-level advisory lock (the others wait, then find nothing left to do; three commands at
    once had failed on a duplicate type), on SQLite the writer lock of ``BEGIN IMMEDIATE``.

    Raises
    ------
    MigrationRefused
        When the database is at a revision this release does not hold (a newer release migrated it),
        or when the role connected may not apply a pending migration (the service's own role, which
        ``grants.sql`` keeps from changing the schema). Nothing is changed: a migration runs in the
        transaction it would have committed.
    """
    before = revisions(engine)
    if not before.known:
        raise MigrationRefused(before.newer_release())
    if before.up_to_date:
        return before
    config = _config()
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            before = _revisions(connection)  # as it stands now: another process may have gone first
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except ProgrammingError as exc:
        if getattr(exc.orig, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
            raise
        needs = (
            ", ".join(before.pending)
            if len(before.pending) <= 3
            else f"{before.pending[0].split()[0]} to {before.pending[-1].split()[0]}"
        )
        raise MigrationRefused(
            f"the database is {before.where} and this release needs {len(before.pending)} migration(s), "
            f"{needs}, but the role connected may not apply them "
            f"({str(exc.orig).strip().splitlines()[0]}). Nothing was changed. Migrate as the database "
            "owner (WAYMARK_DATABASE_URL=<owner url> waymark db upgrade), apply the grants again "
            "(waymark db grants | psql ...), then run this again (docs/operations.md, Upgrading)."
        ) from exc
    return before


class DatabaseNotNamed(RuntimeError):
    """Outside development, a command was about to open the default database (``opened``)."""


class ProductionDatabase(RuntimeError):
    """In development, a command or the service was about to open a database used in production."""


def refuse_development_on_production(engine: Engine) -> None:
    """Refuse development mode on a database marked as used in production (``DeploymentMark``).

    Development signs anyone in with a key on this machine: a red team with a shell served the
    production database with WAYMARK_ENV=development, recorded an ethics approval under a made-up
    reviewer, read a student as their tutor and withdrew a student's objection in their name.

    Raises
    ------
    ProductionDatabase
        If the database has been opened in production.
    """
    if since := production_since(engine):
        raise ProductionDatabase(
            f"this database has been used in production (since {since:%Y-%m-%d}): development mode "
            "(WAYMARK_ENV=development), which signs anyone in with a key on this machine, is refused on "
            "it whatever WAYMARK_ENV says for this command; in production the committee's decisions are "
            "recorded by a signed-in ethics reviewer on the committee page"
        )


def opened(settings: Settings) -> Engine:
    """The database ``settings`` name, every migration applied: how commands open it.

    Outside development an unset ``WAYMARK_DATABASE_URL`` is refused before anything is opened: its
    default is a new SQLite file in the working directory, on which a nightly ``access-log verify``
    would report an empty log as intact.

    Outside development the database is marked as a production one (``DeploymentMark``), once.
    """
    engine = up_to_date(named_url(settings))
    if settings.development:
        refuse_development_on_production(engine)
    else:
        mark_production(engine)
    return engine


PRODUCTION = "production"


def mark_production(engine: Engine) -> None:
    """Record, once, that the database was opened in production (a race between processes is harmless).

    A service role without the grants on ``deployment_marks`` (not applied again after the migration)
    is told so in the log and goes on: the mark is a guard against development mode, and a database
    that cannot be read for it refuses development commands and the service anyway
    (``refuse_development_on_production`` lets ``production_since``'s error stop them).
    """
    try:
        if production_since(engine) is not None:
            return
    except ProgrammingError as exc:
        log.warning(
            "could not read deployment_marks (%s): apply the grants again (waymark db grants | psql ...)",
            str(exc.orig).strip().splitlines()[0],
        )
        return
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(DeploymentMark).values(
                    mode=PRODUCTION, first_at=datetime.now(UTC), host=socket.gethostname()[:255]
                )
            )
    except IntegrityError:  # another process marked it first
        pass
    except ProgrammingError as exc:  # a role that may read but not insert: said, and the command goes on
        log.error(
            "could not mark the database as a production one (%s): apply the grants again "
            "(waymark db grants | psql ...)",
            str(exc.orig).strip().splitlines()[0],
        )


def production_since(engine: Engine) -> datetime | None:
    """When the database was first opened in production (None: never)."""
    with engine.connect() as connection:
        return connection.scalar(select(DeploymentMark.first_at).where(DeploymentMark.mode == PRODUCTION))


def missing_file(url: str) -> str:
    """The path of a SQLite database file that does not exist ("" otherwise): a check never makes one."""
    parsed = make_url(url)
    path = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or path in ("", ":memory:") or Path(path).exists():
        return ""
    return path


def named_url(settings: Settings) -> str:
    """The database URL ``settings`` name; outside development an unset one is refused (``opened``)."""
    if unset := settings.unset_stores(("WAYMARK_DATABASE_URL",)):
        raise DatabaseNotNamed(
            f"{unset[0]}: outside development mode a command opens the database it names (the default "
            "is a new SQLite file in the working directory, for development)"
        )
    return settings.database_url


def up_to_date(url: str) -> Engine:
    """The process's engine for ``url``, with every migration applied (how commands open the database)."""
    engine = engine_for(url)
    upgrade(engine)
    return engine
