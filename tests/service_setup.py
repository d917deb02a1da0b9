"""A served cohort for service tests: a governed champion, a scored batch, staff relationships."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, make_url, text

from tests.champion import Champion, approve_and_promote
from waymark.models.registry import configure
from waymark.models.settings import Settings
from waymark.service.app import create_app
from waymark.service.db.engine import make_engine, upgrade
from waymark.service.db.schema import Base
from waymark.service.directory import import_directory
from waymark.service.grants import import_grants
from waymark.service.scoring import score
from waymark.service.security import mint


@dataclass(frozen=True, eq=False)
class Served:
    """Everything a service test needs."""

    settings: Settings
    engine: Engine
    folder: Path
    indicators: pd.DataFrame  # student_id, module_id, presentation_id, programme_id, school_id
    access: pd.DataFrame


def backends() -> list[str]:
    """SQLite always; PostgreSQL too when WAYMARK_TEST_POSTGRES_URL is set (.ci/run sets it)."""
    return ["sqlite", "postgresql"] if os.environ.get("WAYMARK_TEST_POSTGRES_URL") else ["sqlite"]


def postgres_url() -> str:
    """The PostgreSQL test database, one per pytest-xdist worker (made on first use) so they never share."""
    given = os.environ["WAYMARK_TEST_POSTGRES_URL"]
    url = make_url(given.replace("postgresql://", "postgresql+psycopg://", 1))
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url.render_as_string(hide_password=False)
    own = url.set(database=f"{url.database}_{worker}")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": own.database}) is None:
            conn.execute(text(f'CREATE DATABASE "{own.database}"'))
    admin.dispose()
    return own.render_as_string(hide_password=False)


def fresh_database(backend: str, root: Path) -> str:
    """An empty database of ``backend``; returns its URL."""
    if backend == "sqlite":
        return f"sqlite:///{root}/service.db"
    url = postgres_url()
    engine = make_engine(url)
    with engine.begin() as conn:
        # Every other session on this database goes first: its data is about to be dropped anyway, and
        # one left by an earlier run killed part-way (a stopped `waymark score`, say) would otherwise
        # keep holding the scoring lock, or block the drop, for ever.
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    return url


def serve_cohort(champion: Champion, folder: Path, backend: str, root: Path) -> Served:
    """Score ``folder`` with the champion into a fresh database and load its access.csv."""
    url = fresh_database(backend, root)
    settings = champion.settings.model_copy(
        update={"database_url": url, "env": "development", "dev_key_dir": root / "keys"}
    )
    engine = make_engine(url)
    upgrade(engine)
    assert champion.audited is not None
    approve_and_promote(engine, champion.audited)
    configure(settings)
    score(folder, engine, model_name=champion.name, week=8)
    import_grants(engine, folder / "access.csv")
    with engine.connect() as conn:
        indicators = pd.read_sql(
            "SELECT student_id, module_id, presentation_id, programme_id, school_id FROM indicators", conn
        )
    access = pd.read_csv(folder / "access.csv", dtype=str)
    return Served(settings, engine, folder, indicators, access)


def auth(served: Served, role: str, sub: str, **extra: object) -> dict[str, str]:
    """A development bearer token for ``sub`` in ``role``, as request headers."""
    return {"Authorization": f"Bearer {mint(served.settings, role, sub=sub, **extra)}"}


@contextmanager
def api_client(served: Served) -> Iterator[TestClient]:
    """The served cohort's app in a test client, with the rate limit out of the tests' way."""
    settings = served.settings.model_copy(update={"rate_limit_per_minute": 1_000_000})
    with TestClient(create_app(settings)) as client:
        yield client


@contextmanager
def own_cohort(
    champion: Champion, folder: Path, backend: str, root: Path, *, directory: bool = False
) -> Iterator[Served]:
    """``serve_cohort`` for one test module's own database, its directory imported when asked."""
    served = serve_cohort(champion, folder, backend, root)
    if directory:
        import_directory(served.engine, folder / "directory.csv", known=None)
    try:
        yield served
    finally:
        served.engine.dispose()
