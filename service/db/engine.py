"""Engines and sessions, and bringing the schema up to date with Alembic."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


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
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (SQLite gets WAL, foreign keys, a busy timeout and BEGIN IMMEDIATE)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "isolation_level": None})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _begin_immediate)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@lru_cache
def engine_for(url: str) -> Engine:
    """One engine per database URL for the life of the process."""
    return make_engine(url)


@lru_cache
def sessions(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to ``engine``."""
    return sessionmaker(engine, expire_on_commit=False)


# SQLite allows one writer at a time, and its busy handler waits by sleeping, so under load threads
# would queue inside SQLite with growing back-off and finally fail. Queue them here instead.
_SQLITE_LOCKS: dict[str, threading.RLock] = {}


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work is committed together, or not at all."""
    if engine.dialect.name != "sqlite":
        with sessions(engine)() as session, session.begin():
            yield session
        return
    lock = _SQLITE_LOCKS.setdefault(str(engine.url), threading.RLock())
    with lock, sessions(engine)() as session, session.begin():
        yield session


def upgrade(engine: Engine) -> None:
    """Apply every migration not yet applied."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def up_to_date(url: str) -> Engine:
    """The process's engine for ``url``, with every migration applied (how commands open the database)."""
    engine = engine_for(url)
    upgrade(engine)
    return engine
