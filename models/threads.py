"""How many threads Waymark's numeric work may use: the cores this process may run on, never more.

Every engine that starts threads of its own (DuckDB, BLAS through NumPy and scikit-learn, numba's
parallel kernels, LightGBM) is given the same number, read from what the operating system lets this
process use (CPU affinity and a cgroup's CPU quota, as in a container), so two Waymark jobs on one
machine share its cores instead of each starting a thread per core of the host and spinning against
the other. ``WAYMARK_THREADS`` overrides it (at least 1).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import duckdb

_CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
# DuckDB's share of the machine's memory when nothing else is said: it spills to disk beyond it.
_DUCKDB_MEMORY_SHARE = 0.5


def _quota(cpu_max: Path = _CGROUP_CPU_MAX) -> int | None:
    """The cgroup v2 CPU quota in whole cores (rounded up), None when unlimited or unreadable."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, math.ceil(int(quota) / int(period)))


def cores() -> int:
    """The number of threads numeric work may use: ``WAYMARK_THREADS``, else the usable cores.

    Raises
    ------
    ValueError
        If ``WAYMARK_THREADS`` is set to something other than a whole number of at least 1.
    """
    override = os.environ.get("WAYMARK_THREADS", "").strip()
    if override:
        if not override.isdigit() or int(override) < 1:
            raise ValueError(f"WAYMARK_THREADS must be a whole number of at least 1, not {override!r}")
        return int(override)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _quota()
    return max(1, min(usable, quota) if quota else usable)


def duckdb_memory_limit() -> str:
    """DuckDB's memory limit: ``WAYMARK_DUCKDB_MEMORY_LIMIT`` (e.g. ``4GB``), else half the memory."""
    configured = os.environ.get("WAYMARK_DUCKDB_MEMORY_LIMIT", "").strip()
    if configured:
        return configured
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return "4GB"
    return f"{max(1, int(total * _DUCKDB_MEMORY_SHARE) // 2**20)}MB"


def duckdb_temp_directory() -> str:
    """Where DuckDB spills beyond its memory limit.

    ``WAYMARK_DUCKDB_TEMP_DIRECTORY``, else a folder of this process under the system's temporary
    directory (``TMPDIR``). DuckDB's own default for an in-memory database is ``.tmp`` in the
    working directory, which may be a source checkout, a data folder or, in a container, read-only.
    """
    configured = os.environ.get("WAYMARK_DUCKDB_TEMP_DIRECTORY", "").strip()
    return configured or str(Path(tempfile.gettempdir()) / f"waymark-duckdb-{os.getpid()}")


def duckdb_connect(*, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with explicit thread, memory and spill limits and no progress bar."""
    con = duckdb.connect(
        config={
            "threads": cores(),
            "memory_limit": memory_limit or duckdb_memory_limit(),
            "temp_directory": duckdb_temp_directory(),
        }
    )
    # Inside Jupyter DuckDB refuses the setting without ipywidgets: no widget library, no bar either.
    with contextlib.suppress(duckdb.InvalidInputException):
        con.execute("SET enable_progress_bar = false")
    return con


def duckdb_cursor() -> duckdb.DuckDBPyConnection:
    """A new connection to this process's shared in-memory DuckDB database, under ``duckdb_connect``'s limits.

    Opening a database costs tens of milliseconds (a scoring run opened eight); a cursor on an open one
    some microseconds. A cursor has its own registered tables and views, so callers never see each
    other's, and closing it leaves the database open for the next. The database is opened again in a
    forked child, or when the limits read from the environment have changed.
    """
    return _shared_database(os.getpid(), cores(), duckdb_memory_limit(), duckdb_temp_directory()).cursor()


@functools.lru_cache(maxsize=2)
def _shared_database(_pid: int, _threads: int, memory_limit: str, _temp: str) -> duckdb.DuckDBPyConnection:
    return duckdb_connect(memory_limit=memory_limit)


@contextlib.contextmanager
def capped(threads: int | None = None) -> Iterator[int]:
    """BLAS/OpenMP and numba limited to ``threads`` (default: ``cores()``) inside the block; yields it."""
    import numba
    from threadpoolctl import threadpool_limits

    n = threads or cores()
    previous = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    try:
        with threadpool_limits(limits=n):
            yield n
    finally:
        numba.set_num_threads(previous)
