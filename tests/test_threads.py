"""Thread limits: every engine gets the usable cores (or WAYMARK_THREADS), never the host's."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import numba
import pandas as pd
import pytest
from threadpoolctl import threadpool_info

from waymark.models import threads


def test_the_override_wins_and_a_bad_one_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYMARK_THREADS", "1")
    assert threads.cores() == 1
    for bad in ("0", "two", "-3"):
        monkeypatch.setenv("WAYMARK_THREADS", bad)
        with pytest.raises(ValueError, match="WAYMARK_THREADS"):
            threads.cores()


def test_the_cores_are_the_affinity_not_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WAYMARK_THREADS", raising=False)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda _pid: {0})
    monkeypatch.setattr(threads, "_quota", lambda: None)
    assert threads.cores() == 1
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    monkeypatch.setattr(threads, "_quota", lambda: 2)  # a container allowed two cores' time
    assert threads.cores() == 2


@pytest.mark.parametrize(
    ("text", "expected"), [("max 100000", None), ("150000 100000", 2), ("50000 100000", 1), ("", None)]
)
def test_a_cgroup_quota_is_read_in_whole_cores(tmp_path: Path, text: str, expected: int | None) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text(text)
    assert threads._quota(cpu_max) == expected
    assert threads._quota(tmp_path / "absent") is None


def test_duckdb_gets_the_thread_and_memory_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYMARK_THREADS", "1")
    monkeypatch.setenv("WAYMARK_DUCKDB_MEMORY_LIMIT", "300MB")
    con = threads.duckdb_connect()
    try:
        assert con.execute("SELECT current_setting('threads')").fetchone() == (1,)
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()
        assert limit is not None and "MiB" in str(limit[0]) and str(limit[0]).startswith("28")  # 300 MB
    finally:
        con.close()


def test_duckdb_spills_under_the_temporary_directory_never_the_working_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WAYMARK_THREADS", "1")
    monkeypatch.setenv("WAYMARK_DUCKDB_MEMORY_LIMIT", "64MB")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "system-tmp"))
    (tmp_path / "system-tmp").mkdir()
    tempfile.tempdir = None  # read TMPDIR again
    try:
        con = threads.duckdb_connect()
        (setting,) = con.execute("SELECT current_setting('temp_directory')").fetchone() or ("",)
        assert Path(str(setting)).parent == tmp_path / "system-tmp"
        # A table larger than the memory limit is offloaded there while it lives, never to ./.tmp.
        con.execute("CREATE TABLE t AS SELECT random() AS x, range AS i FROM range(10000000)")
        assert any(Path(str(setting)).iterdir())
        assert not (tmp_path / ".tmp").exists()
        con.close()
    finally:
        tempfile.tempdir = None
    monkeypatch.setenv("WAYMARK_DUCKDB_TEMP_DIRECTORY", str(tmp_path / "chosen"))
    con = threads.duckdb_connect()
    assert con.execute("SELECT current_setting('temp_directory')").fetchone() == (str(tmp_path / "chosen"),)
    con.close()


def test_capped_limits_blas_and_numba_inside_the_block_only() -> None:
    before = numba.get_num_threads()
    with threads.capped(1) as n:
        assert n == 1 and numba.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    assert numba.get_num_threads() == before


def test_feature_queries_share_one_database_but_never_each_others_tables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WAYMARK_THREADS", "1")
    first, second = threads.duckdb_cursor(), threads.duckdb_cursor()
    try:
        assert first.execute("SELECT current_setting('threads')").fetchone() == (1,)
        first.execute("CREATE TABLE shared_probe AS SELECT 1 AS x")
        assert second.execute("SELECT x FROM shared_probe").fetchall() == [(1,)]  # one database
        first.execute("DROP TABLE shared_probe")
        first.register("registered", pd.DataFrame({"x": [1]}))
        with pytest.raises(duckdb.Error, match="registered"):
            second.execute("SELECT x FROM registered")  # a cursor's own tables are its own
    finally:
        first.close()
        second.close()
    monkeypatch.setenv("WAYMARK_THREADS", "2")
    later = threads.duckdb_cursor()
    try:
        assert later.execute("SELECT current_setting('threads')").fetchone() == (2,)  # limits followed
    finally:
        later.close()
