"""Shared fixtures: small synthetic cohorts and the committed OULAD subset."""

from __future__ import annotations

import gc
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
from sqlalchemy import Engine

from tests.champion import Champion, empty_mlflow_store, govern, register, settings_in
from tests.service_setup import Served, backends, fresh_database, serve_cohort
from waymark.models.registry import configure
from waymark.models.settings import Settings
from waymark.service.db.engine import make_engine, upgrade
from waymark.training.ingest.synthetic import SynthConfig, generate
from waymark.training.ingest.synthetic_people import Disparity

FIXTURES = Path(__file__).parent / "fixtures"


def pytest_configure(config: pytest.Config) -> None:
    """Each pytest-xdist worker gets its share of the cores, as two Waymark jobs on one machine should.

    Without it every worker's BLAS, LightGBM and DuckDB started a thread per core: two workers on two
    cores ran four busy threads, and a logistic fit took seven times as long as on one thread.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "WAYMARK_THREADS" not in os.environ:
        from threadpoolctl import threadpool_limits

        from waymark.models.threads import cores

        share = max(1, cores() // workers)
        os.environ["WAYMARK_THREADS"] = str(share)
        os.environ.setdefault("OMP_NUM_THREADS", str(share))  # an OpenMP runtime loaded later reads it
        threadpool_limits(limits=share)


@pytest.fixture(scope="module", autouse=True)
def _connections_closed_by_their_own_module() -> Iterator[None]:
    """Collect garbage as each test file ends, its own fixtures torn down.

    An engine's pool and its connections hold one another, so an engine nobody disposed closes its
    connections only when the cyclic collector runs, which could be in any later test: psycopg's
    "deleted while still open" then failed a test that had nothing to do with it. Collected here, it
    fails the last test of the file that left it. Once a file, not once a test: a collection over
    the heap of a worker that holds trained models costs too much to pay 900 times.
    """
    yield
    gc.collect()


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1,500-student synthetic cohort (seed 11), generated once per test session."""
    out = tmp_path_factory.mktemp("synth") / "data"
    generate(out, SynthConfig(students=1500, seed=11))
    return out


@pytest.fixture(scope="session")
def oulad_subset() -> Path:
    """The committed OULAD subset in the official CSV layout."""
    return FIXTURES / "oulad_subset"


@pytest.fixture(scope="session")
def oulad_full() -> Path:
    """The full OULAD copy named by WAYMARK_OULAD_DIR (tests using it are marked ``oulad``)."""
    location = os.environ.get("WAYMARK_OULAD_DIR")
    if not location:
        pytest.skip("WAYMARK_OULAD_DIR is not set; .ci/run sets it to the full OULAD copy")
    return Path(location)


@pytest.fixture
def disparity_config() -> SynthConfig:
    """A cohort with a known injected disparity against disability=Y."""
    return SynthConfig(students=4000, seed=5, disparity=Disparity("disability", "Y", 1.5))


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A throwaway MLflow tracking store and registry for one test module."""
    root = tmp_path_factory.mktemp("mlflow")
    settings = Settings(
        MLFLOW_TRACKING_URI=empty_mlflow_store(root),
        WAYMARK_MLFLOW_ARTIFACTS=str(root / "artifacts"),
        WAYMARK_DATABASE_URL=f"sqlite:///{root}/waymark.db",  # never a file in the working directory
    )
    previous = mlflow.get_tracking_uri()
    configure(settings)
    yield settings
    mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="session")
def champion(tmp_path_factory: pytest.TempPathFactory, synth_dir: Path) -> Champion:
    """A gradient-boosting champion on ``synth_dir`` that passed the real gate, with its own stores."""
    root = tmp_path_factory.mktemp("champion")
    settings = settings_in(root)
    version = register(synth_dir, settings, "waymark-not-completing", "gbm", seed=3)
    audited = govern(synth_dir, settings, "waymark-not-completing", version, root / "fairness")
    return Champion(settings, "waymark-not-completing", version, audited)


@pytest.fixture(scope="session", params=backends())
def served(
    request: pytest.FixtureRequest,
    champion: Champion,
    synth_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    """The champion's week-8 batch of ``synth_dir`` published into SQLite (and PostgreSQL in CI)."""
    root = tmp_path_factory.mktemp(f"served-{request.param}")
    served = serve_cohort(champion, synth_dir, request.param, root)
    yield served
    served.engine.dispose()


@pytest.fixture
def disposing() -> Iterator[Callable[[Engine], Engine]]:
    """Hand it each engine a test makes for itself: all are disposed as the test ends, passed or not.

    ``engine = disposing(make_engine(url))``. Python 3.13 warns of a SQLite connection left open, and
    the collection at each file's end would then fail the file.
    """
    made: list[Engine] = []

    def keep(engine: Engine) -> Engine:
        made.append(engine)
        return engine

    yield keep
    for engine in made:
        engine.dispose()


@pytest.fixture(params=backends())
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty, migrated service database: SQLite, and PostgreSQL too when the tests have one."""
    engine = make_engine(fresh_database(request.param, tmp_path))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local Spark session for the whole test run (starting one costs seconds)."""
    pytest.importorskip("pyspark")
    pytest.importorskip("sqlglot")
    if shutil.which("java") is None:
        pytest.skip("Spark needs a Java runtime (.ci/run installs Debian's default-jre-headless)")
    from waymark.models.spark.session import spark_session

    # The driver's heap holds local mode's whole work, the full OULAD import included: Spark's 1 GB
    # default leaves the later tests' query plans compiling in a nearly full heap.
    session = spark_session("local[1]", {"spark.sql.shuffle.partitions": "2", "spark.driver.memory": "4g"})
    yield session
    session.stop()
