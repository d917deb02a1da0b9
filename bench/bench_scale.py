"""Features for every week of a synthetic cohort, on DuckDB and on Spark local mode: time and peak memory.

    python bench/bench_scale.py [--students 100000 1000000]
                                [--engines duckdb duckdb-parquet duckdb-chunked spark] [--workdir DIR]
                                [--max-rss-gb 18] [--max-minutes 60] [--spark-driver-memory 8g]

The cohorts are written by ``training.ingest.synthetic.generate`` (seed 1) into the work directory
(``WAYMARK_BENCH_TMP``, else the system's temporary directory, under ``waymark-bench-scale``) and
reused by later runs; each is validated once on DuckDB before timing, and the validation memo spares
the DuckDB engines checking it again. Each engine then runs in a fresh child process and writes the
features of all weeks of all presentations to Parquet, so the work is really done:

    duckdb          the product's path: ``load_learning_data`` (typed tables into pandas, through
                    Arrow) and ``build_features`` (the shared SQL on DuckDB, result in pandas,
                    sorted and checked), then ``to_parquet``. Holds every table and the whole feature
                    table in memory.
    duckdb-parquet  the same SQL on DuckDB, each statement a view over the validated typed views of
                    the Parquet files, the last one copied to Parquet: nothing passes through pandas,
                    and DuckDB may spill to disk beyond its memory limit. For cohorts the first cannot hold.
    duckdb-chunked  the same, one module presentation at a time into its own Parquet file: exact,
                    because every feature is computed within one presentation (earlier attempts at a
                    module read the student's registrations everywhere); memory follows the largest
                    presentation, not the cohort.
    spark           ``models.spark.reading.load_tables`` and ``models.spark.features.spark_features``
                    (the same SQL through SQLGlot) on Spark local mode, written with
                    ``DataFrame.write.parquet``. Settings: Waymark's, ``WAYMARK_SPARK_*`` from the
                    environment, and ``--spark-driver-memory`` (local mode runs in the driver's JVM).

Time is the child's wall time; "read s" is the part before the features: opening the validated typed
tables on DuckDB (the memo is found, nothing is checked again), and ``load_tables`` on Spark, which
validates the whole folder on Spark every time (it has no memo). Peak memory is the highest sum of
the resident set sizes of the child and all its descendants (the JVM included), sampled every 0.2 s
by a thread; a child whose tree passes ``--max-rss-gb`` is stopped and reported as such, rather than
left to the kernel's out-of-memory killer, and so is one still running after ``--max-minutes``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ENGINES = ("duckdb", "duckdb-parquet", "duckdb-chunked", "spark")
SAMPLE_SECONDS = 0.2


# --- the child: one engine, one cohort --------------------------------------------------------------


def duckdb_pandas(folder: Path, out: Path) -> tuple[float, int]:
    """The product's path; returns (seconds spent reading, feature rows)."""
    from waymark.models.data import load_learning_data
    from waymark.models.features import build_features

    start = time.perf_counter()
    data = load_learning_data(folder)
    read = time.perf_counter() - start
    features = build_features(data)
    features.to_parquet(out / "features.parquet", index=False)
    return read, len(features)


class DuckDBViews:
    """The shared SQL on one DuckDB connection, each statement a view: the tables are view names."""

    name = "duckdb"

    def __init__(self, con: Any) -> None:
        self.con = con
        self._names = itertools.count()

    def query(self, sql: str, /, **tables: str) -> str:
        """``sql`` as a new view, each keyword table visible under its name (a CTE over its view)."""
        from waymark.models.data import ProtectedDataError
        from waymark.models.data.contract import PROTECTED_COLUMN_NAMES

        for name, view in tables.items():
            columns = [row[0] for row in self.con.execute(f"DESCRIBE {view}").fetchall()]
            if any(c.lower() in PROTECTED_COLUMN_NAMES for c in columns):
                raise ProtectedDataError(f"{name}: a protected column may never reach a feature")
        view = f"bench_q{next(self._names)}"
        ctes = ", ".join(f"{name} AS (SELECT * FROM {source})" for name, source in tables.items())
        self.con.execute(f"CREATE TEMP VIEW {view} AS WITH {ctes} SELECT * FROM ({sql})")
        return view


def feature_views(folder: Path) -> Any:
    """A DuckDB connection with ``b_<table>``: the feature-safe columns, as load_learning_data reads them."""
    from waymark.models.data import FEATURE_TABLES, TABLES, memo
    from waymark.models.data.notice import USED_ACTIVITY, register_usable_sources
    from waymark.models.data.publish import folder_fingerprint
    from waymark.models.data.validation import null_columns

    con, _ = memo.open_valid(folder, fingerprint=folder_fingerprint(folder))
    register_usable_sources(con)  # activity from a source students were not told of is left out
    for name in FEATURE_TABLES:
        present = {row[0] for row in con.execute(f"DESCRIBE t_{name}").fetchall()}
        columns = (
            ", ".join(  # an optional column the folder lacks is read as empty, as load_learning_data does
                f'"{c.name}"' if c.name in present else null_columns([c]) for c in TABLES[name].columns
            )
        )
        where = USED_ACTIVITY if name == "activity" else "TRUE"
        con.execute(f"CREATE TEMP VIEW b_{name} AS SELECT {columns} FROM t_{name} WHERE {where}")
    return con


def duckdb_parquet(folder: Path, out: Path) -> tuple[float, int]:
    """The same SQL as views over the validated Parquet files, copied to Parquet; (read s, rows)."""
    from waymark.models.data import FEATURE_TABLES
    from waymark.models.features import population
    from waymark.models.features.build import feature_table

    start = time.perf_counter()
    con = feature_views(folder)
    read = time.perf_counter() - start
    engine = DuckDBViews(con)
    pop = population("b_registrations", "b_presentations", engine=engine)
    view = feature_table({name: f"b_{name}" for name in FEATURE_TABLES}, pop, engine=engine)
    target = out / "features.parquet"
    con.execute(f"COPY (SELECT * FROM {view}) TO '{target}' (FORMAT parquet)")
    (rows,) = con.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone() or (0,)
    return read, int(rows)


def duckdb_chunked(folder: Path, out: Path) -> tuple[float, int]:
    """``duckdb_parquet`` one module presentation at a time, each to its own Parquet file; (read s, rows).

    Exact, not an approximation: every feature is computed within one module presentation (each
    window and aggregate is partitioned by it), except the count of a student's earlier attempts at
    the module, which reads their registrations everywhere (``attempts``). Memory then follows the
    largest presentation rather than the cohort.
    """
    from waymark.models.data import FEATURE_TABLES
    from waymark.models.features import population
    from waymark.models.features.build import feature_table

    start = time.perf_counter()
    con = feature_views(folder)
    keys = con.execute("SELECT module_id, presentation_id FROM b_presentations ORDER BY ALL").fetchall()
    read = time.perf_counter() - start
    con.execute("CREATE TEMP TABLE part (module_id VARCHAR, presentation_id VARCHAR)")
    one = "(module_id, presentation_id) IN (SELECT * FROM part)"
    chunk = {
        "presentations": f"SELECT * FROM b_presentations WHERE {one}",
        "registrations": f"SELECT * FROM b_registrations WHERE {one}",
        "assessments": f"SELECT * FROM b_assessments WHERE {one}",
        "activity": f"SELECT * FROM b_activity WHERE {one}",
        "students": "SELECT * FROM b_students WHERE student_id IN (SELECT student_id FROM c_registrations)",
        "assessment_results": "SELECT * FROM b_assessment_results "
        "WHERE assessment_id IN (SELECT assessment_id FROM c_assessments)",
        "extensions": "SELECT * FROM b_extensions "
        "WHERE assessment_id IN (SELECT assessment_id FROM c_assessments)",
        # the chunk's students' registrations in every presentation: earlier attempts still count
        "attempts": "SELECT r.student_id, r.module_id, p.start_date FROM b_registrations r "
        "JOIN b_presentations p USING (module_id, presentation_id) "
        "WHERE r.student_id IN (SELECT student_id FROM c_registrations)",
    }
    for name, sql in chunk.items():  # the last three read the chunk's registrations and assessments
        con.execute(f"CREATE TEMP VIEW c_{name} AS {sql}")
    engine = DuckDBViews(con)
    pop = population("c_registrations", "c_presentations", engine=engine)
    view = feature_table({name: f"c_{name}" for name in [*FEATURE_TABLES, "attempts"]}, pop, engine=engine)
    for i, key in enumerate(keys):
        con.execute("DELETE FROM part")
        con.execute("INSERT INTO part VALUES (?, ?)", list(key))
        con.execute(f"COPY (SELECT * FROM {view}) TO '{out / f'part-{i:04d}.parquet'}' (FORMAT parquet)")
    (rows,) = con.execute(f"SELECT count(*) FROM read_parquet('{out}/part-*.parquet')").fetchone() or (0,)
    return read, int(rows)


def spark(folder: Path, out: Path, *, driver_memory: str) -> tuple[float, int]:
    """Spark local mode: load_tables, spark_features, written to Parquet; (read s, rows)."""
    from waymark.models.data import FEATURE_TABLES
    from waymark.models.spark import reading
    from waymark.models.spark.features import spark_features
    from waymark.models.spark.session import spark_session

    session = spark_session(conf={"spark.driver.memory": driver_memory})
    start = time.perf_counter()
    tables = reading.load_tables(folder, session)
    read = time.perf_counter() - start
    features = spark_features({name: tables[name] for name in FEATURE_TABLES}, session)
    features.write.mode("overwrite").parquet(str(out / "features"))
    rows = session.read.parquet(str(out / "features")).count()
    session.stop()
    return read, int(rows)


def child(engine: str, folder: Path, out: Path, *, driver_memory: str) -> None:
    """Run one engine and print its figures as JSON (the last line of its output)."""
    start = time.perf_counter()
    if engine == "duckdb":
        read, rows = duckdb_pandas(folder, out)
    elif engine == "duckdb-parquet":
        read, rows = duckdb_parquet(folder, out)
    elif engine == "duckdb-chunked":
        read, rows = duckdb_chunked(folder, out)
    else:
        read, rows = spark(folder, out, driver_memory=driver_memory)
    print(json.dumps({"seconds": time.perf_counter() - start, "read_seconds": read, "rows": rows}))


# --- the parent: cohorts, children, memory -----------------------------------------------------------


def cohort(workdir: Path, students: int) -> tuple[Path, int]:
    """The synthetic cohort of ``students`` (generated unless present, validated once); its activity rows."""
    from waymark.models.data import memo, read_manifest
    from waymark.models.data.publish import folder_fingerprint
    from waymark.training.ingest.synthetic import SynthConfig, generate

    folder = workdir / f"synth-{students}"
    if not read_manifest(folder).get("rows"):
        print(f"generating {students:,} students into {folder} ...", flush=True)
        generate(folder, SynthConfig(students=students, seed=1))
    con, _ = memo.open_valid(folder, fingerprint=folder_fingerprint(folder))  # validated once, remembered
    con.close()
    return folder, int(read_manifest(folder)["rows"]["activity"])


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of ``process`` and all its descendants (gone ones count as nothing)."""
    total = 0
    for p in (process, *process.children(recursive=True)):
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def watch(
    process: psutil.Process, *, limit: int, minutes: float, peak: list[int], stopped: list[str]
) -> None:
    """Sample the tree's memory until the process ends; stop it past ``limit`` bytes or ``minutes``."""
    deadline = time.monotonic() + 60 * minutes
    while True:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return
            now = tree_rss(process)
        except psutil.NoSuchProcess:
            return
        peak[0] = max(peak[0], now)
        if now > limit or time.monotonic() > deadline:
            stopped.append(
                f"stopped above {limit / 2**30:.1f} GB" if now > limit else f"stopped after {minutes:g} min"
            )
            for p in (*process.children(recursive=True), process):
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.kill()
            return
        time.sleep(SAMPLE_SECONDS)


def measure(engine: str, folder: Path, *, limit: int, minutes: float, driver_memory: str) -> dict[str, Any]:
    """Run ``engine`` on ``folder`` in a child process; its figures, peak tree memory and outcome."""
    with tempfile.TemporaryDirectory(dir=folder.parent) as out:
        command = [sys.executable, __file__, "--child", engine, str(folder), out, driver_memory]
        child_process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak, stopped = [0], list[str]()
        sampler = threading.Thread(
            target=watch,
            args=(psutil.Process(child_process.pid),),
            kwargs={"limit": limit, "minutes": minutes, "peak": peak, "stopped": stopped},
        )
        sampler.start()
        stdout, stderr = child_process.communicate()
        sampler.join()
    result: dict[str, Any] = {"engine": engine, "peak_mb": peak[0] / 2**20}
    if stopped:
        return {**result, "outcome": stopped[0]}
    if child_process.returncode != 0:
        lines = stderr.strip().splitlines() or ["no message"]
        last = next((line for line in reversed(lines) if "Error" in line), lines[-1])  # the error, not advice
        return {**result, "outcome": f"failed (exit {child_process.returncode}): {last[:120]}"}
    return {**result, **json.loads(stdout.strip().splitlines()[-1]), "outcome": "ok"}


def show(students: int, activity: int, r: dict[str, Any]) -> None:
    """One row of the table."""
    if r["outcome"] != "ok":
        print(
            f"{students:>10,} {activity:>13,} {r['engine']:<15} {r['outcome']} (peak {r['peak_mb']:,.0f} MB)"
        )
        return
    print(
        f"{students:>10,} {activity:>13,} {r['engine']:<15} {r['seconds']:>9.1f} {r['read_seconds']:>7.1f} "
        f"{r['peak_mb']:>10,.0f} {r['rows']:>13,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--max-rss-gb", type=float, default=0.8 * psutil.virtual_memory().total / 2**30)
    parser.add_argument("--max-minutes", type=float, default=60.0, help="stop an engine still running then")
    parser.add_argument("--spark-driver-memory", default="8g")
    args = parser.parse_args()
    from waymark.models.spark.session import default_master  # imports no PySpark

    workdir = (
        args.workdir
        or Path(os.environ.get("WAYMARK_BENCH_TMP") or tempfile.gettempdir()) / "waymark-bench-scale"
    )
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GB, Python {platform.python_version()}; "
        f"Spark {default_master()}, driver memory {args.spark_driver_memory}; "
        f"stop above {args.max_rss_gb:.0f} GB or after {args.max_minutes:g} min"
    )
    header = ("students", "activity rows", "engine", "seconds", "read s", "peak MB", "feature rows")
    print("{:>10} {:>13} {:<15} {:>9} {:>7} {:>10} {:>13}".format(*header))
    for students in args.students:
        folder, activity = cohort(workdir, students)
        for engine in args.engines:
            limit = int(args.max_rss_gb * 2**30)
            show(
                students,
                activity,
                measure(
                    engine,
                    folder,
                    limit=limit,
                    minutes=args.max_minutes,
                    driver_memory=args.spark_driver_memory,
                ),
            )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), driver_memory=sys.argv[5])
    else:
        main()
