"""One scoring run per database at a time.

PostgreSQL: a session-level advisory lock, taken on a connection kept open for the run. SQLite: an
exclusive ``flock`` on a file beside the database file. The database server or the operating system
releases either one when the holding process ends, however it ends (a kill included), so a dead
run never leaves a stale lock, and while a process holds the lock no other process is writing a run:
every run still marked ``writing`` then belongs to a process that died.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

# One fixed 64-bit key: advisory locks are per database, so this means "the scoring lock of this database".
ADVISORY_KEY = int.from_bytes(hashlib.sha256(b"waymark-score").digest()[:8], "big", signed=True)
LOCK_FILE_SUFFIX = ".scoring-lock"


@dataclass(frozen=True)
class ScoringLock:
    """Proof that this process holds its database's scoring lock, and who this process is."""

    host: str
    pid: int


@contextmanager
def exclusive(engine: Engine) -> Iterator[ScoringLock | None]:
    """Hold the scoring lock of ``engine``'s database for the block: ``None`` if another process holds it.

    Never waits: a run that finds the lock held is refused at once rather than queued behind it.
    """
    held = _advisory_lock(engine) if engine.dialect.name == "postgresql" else _file_lock(engine)
    with held as acquired:
        yield ScoringLock(socket.gethostname(), os.getpid()) if acquired else None


@contextmanager
def _advisory_lock(engine: Engine) -> Iterator[bool]:
    with engine.connect() as conn:
        acquired = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY}))
        # The lock belongs to the session, not the transaction: end the transaction rather than hold
        # a connection idle in one for the whole run.
        conn.commit()
        try:
            yield acquired
        finally:
            if acquired:
                # Unlock first, so that the lock is free when this returns rather than when the server
                # gets round to ending the session; then close the session itself rather than return it
                # to the pool, which also frees the lock if the link broke and the unlock failed.
                with suppress(DBAPIError):
                    conn.scalar(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
                conn.invalidate()


@contextmanager
def _file_lock(engine: Engine) -> Iterator[bool]:
    path = lock_file(engine)
    if path is None:  # an in-memory database is private to its process: nothing to contend for
        yield True
        return
    # Never deleted: removing it could let a second process lock a new file while the first
    # still holds the old one.
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lock_file(engine: Engine) -> Path | None:
    """The lock file beside a SQLite database file (``None`` for an in-memory database)."""
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    path = Path(database)
    return path.with_name(path.name + LOCK_FILE_SUFFIX)
