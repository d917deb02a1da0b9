"""The student-indicator endpoint (authorised, audited) beside ``mlflow models serve``, loaded by wrk.

    python bench/bench_service.py [--students 3000] [--seconds 20] [--postgres-url URL]

Builds a governed champion on a synthetic cohort, scores it into SQLite (and into a PostgreSQL
database the bench creates afresh), loads the relationships, then starts on loopback ``waymark
serve`` and ``mlflow models serve`` of the same model version. The load comes from ``wrk`` (compiled,
so the generator does not starve the servers of the two cores; installed with apt-get if missing
and run as root), with a Lua script rotating over many students' URLs, each with its own tutor's
token: every request is authorised and writes one access-log record. It prints, in the same run:

1. one client: p50 and p99 of ``GET /v1/students/{id}/indicator`` (SQLite, one worker) beside
   ``POST /invocations`` scoring one row of the same model, and the ratio of the p50s;
2. 64 connections on the indicator endpoint: requests/s and p99, on SQLite with one worker and on
   PostgreSQL with one worker per core (``waymark serve --workers N``);
3. after each, the access-log check: records written against requests answered (wrk cannot count
   the requests it cuts off in flight when its time is up, so an exact check follows: a fixed number
   of requests from 64 concurrent clients, records == requests), and ``verify_log`` of the chain.

The PostgreSQL URL comes from ``--postgres-url`` or ``WAYMARK_BENCH_POSTGRES_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/waymark_bench``); its database is dropped and created.
Numbers are loopback only; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import psycopg
from sqlalchemy import Engine, func, make_url, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.champion import Audited, approve_and_promote, govern, register, settings_in
from waymark.models.data import load_learning_data
from waymark.models.features import FEATURE_NAMES, build_features
from waymark.models.registry import configure
from waymark.models.settings import Settings
from waymark.service.audit import load_key, verify_log
from waymark.service.db.engine import make_engine, transaction, upgrade
from waymark.service.db.schema import AuditRecord, Indicator
from waymark.service.grants import import_grants
from waymark.service.scoring import score
from waymark.service.security import mint
from waymark.training.ingest.synthetic import SynthConfig, generate

NAME = "waymark-not-completing"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/waymark_bench"
CONNECTIONS = 64
ROTATION = 400  # (student, tutor) pairs the Lua script cycles through

LUA = r"""
local targets = {
%(targets)s
}
local counter = 0

function setup(thread)
  thread:set("start", math.random(#targets))
end

function init(args)
  counter = tonumber(wrk.thread:get("start")) or 0
end

function request()
  counter = counter %% #targets + 1
  local t = targets[counter]
  return wrk.format(t[1], t[2], t[3], t[4])
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "WRK requests=%%d duration_us=%%d p50_us=%%d p99_us=%%d non2xx=%%d errors=%%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, errors))
end
"""


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def lua_script(targets: list[tuple[str, str, dict[str, str], str | None]]) -> str:
    """A wrk script cycling through ``targets`` (method, path, headers, body); each thread starts apart."""
    rows = []
    for method, path, headers, body in targets:
        table = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())
        rows.append(
            f"  {{{_lua_string(method)}, {_lua_string(path)}, {{{table}}}, "
            f"{'nil' if body is None else _lua_string(body)}}},"
        )
    return LUA % {"targets": "\n".join(rows)}


@dataclass(frozen=True)
class Load:
    """What wrk measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int

    @property
    def rate(self) -> float:
        """Requests answered per second."""
        return self.requests / self.seconds

    @property
    def succeeded(self) -> int:
        """Requests answered 2xx (each wrote one access-log record)."""
        return self.requests - self.non_2xx


def ensure_wrk() -> str:
    """The wrk binary, installed with apt-get if missing (as root); exits with a clear message otherwise."""
    found = shutil.which("wrk")
    if found:
        return found
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is not installed: installing it with apt-get (Debian's package 'wrk') ...")
        install = ["apt-get", "install", "-y", "-q", "wrk"]
        if subprocess.run(install, check=False, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], check=False, capture_output=True)
            subprocess.run(install, check=False, capture_output=True)
        found = shutil.which("wrk")
        if found:
            return found
    sys.exit(
        "This benchmark needs wrk, a compiled HTTP load generator (so that the generator does not take "
        "the servers' cores). Install it (Debian/Ubuntu: sudo apt-get install wrk; macOS: brew install "
        "wrk) and run the benchmark again."
    )


def run_wrk(wrk: str, script: Path, base: str, *, connections: int, threads: int, seconds: int) -> Load:
    """Run wrk against ``base`` for ``seconds`` with ``connections`` and parse the script's summary line."""
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        base,
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    found = re.search(
        r"WRK requests=(\d+) duration_us=(\d+) p50_us=(\d+) p99_us=(\d+) non2xx=(\d+) errors=(\d+)",
        done.stdout,
    )
    if found is None:
        raise RuntimeError(f"wrk gave no summary:\n{done.stdout}\n{done.stderr}")
    n, us, p50, p99, bad, errors = (int(g) for g in found.groups())
    return Load(n, us / 1e6, p50 / 1000, p99 / 1000, bad, errors)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes], seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def running(command: list[str], env: dict[str, str], *, ready: str, log: Path) -> Iterator[None]:
    """A server started with ``command``, once ``ready`` answers; stopped afterwards."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait(ready, process)
            yield
        except RuntimeError:
            print(log.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def recreate_postgres(url: str) -> str:
    """Drop and create the bench's PostgreSQL database; returns its SQLAlchemy URL."""
    parsed = make_url(url)
    if not parsed.database or parsed.database in {"postgres", "test"}:
        sys.exit(f"refusing to drop {parsed.database!r}: name a database of the bench's own")
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}"')
        conn.execute(f'CREATE DATABASE "{parsed.database}"')
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def publish(engine: Engine, folder: Path, audited: Audited, *, governed_here: bool) -> None:
    """Bring ``engine`` up to date, record the champion's approval there, score week 8, load access."""
    upgrade(engine)
    if not governed_here:
        approve_and_promote(engine, audited)
    score(folder, engine, model_name=NAME, week=8)
    import_grants(engine, folder / "access.csv")


def records(engine: Engine) -> int:
    """Records in the access log."""
    with transaction(engine) as session:
        return int(session.scalar(select(func.count()).select_from(AuditRecord)) or 0)


def targets(folder: Path, dev: Settings, engine: Engine) -> list[tuple[str, str, dict[str, str], str | None]]:
    """Indicator reads of many scored students, each by one of their own tutors (so each is authorised)."""
    with transaction(engine) as session:
        scored = set(session.scalars(select(Indicator.student_id).distinct()))
    access = pd.read_csv(folder / "access.csv", dtype=str)
    tutors = access[(access.relationship == "personal_tutor") & access.scope_id.isin(scored)]
    tutors = tutors[["staff_id", "scope_id"]]
    pairs = list(tutors.drop_duplicates("scope_id").itertuples(index=False))
    random.Random(0).shuffle(pairs)
    tokens: dict[str, str] = {}
    out = []
    for staff, student in pairs[:ROTATION]:
        token = tokens.setdefault(staff, mint(dev, "personal_tutor", sub=staff, minutes=600))
        out.append(("GET", f"/v1/students/{student}/indicator", {"Authorization": f"Bearer {token}"}, None))
    return out


def exact_check(base: str, rotation: list[tuple[str, str, dict[str, str], str | None]], total: int) -> int:
    """Send exactly ``total`` audited reads from 64 concurrent clients; returns how many were answered 200."""

    def client(k: int) -> int:
        ok = 0
        with httpx.Client(base_url=base, timeout=60) as http:
            for i in range(k, total, CONNECTIONS):
                _method, path, headers, _body = rotation[i % len(rotation)]
                ok += http.get(path, headers=headers).status_code == 200
        return ok

    with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:
        return sum(pool.map(client, range(CONNECTIONS)))


def audit_check(engine: Engine, settings: Settings, *, before: int, answered: int, exact: bool) -> None:
    """Print records against requests answered, and whether the chain verifies."""
    written = records(engine) - before
    if exact:
        same = "yes" if written == answered else "NO"
        print(
            f"  access log: {written:,} records, {answered:,} requests answered; records == requests: {same}"
        )
    else:
        print(
            f"  access log: {written:,} records for {answered:,} requests wrk saw answered 2xx "
            f"(+{written - answered} answered after wrk stopped reading; at most {CONNECTIONS} in flight)"
        )
    checked = verify_log(engine, load_key(settings))
    state = "verifies" if not checked.problems else f"BROKEN: {checked.problems[:3]}"
    print(f"  chain of {checked.records:,} records {state}")


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=3000)
    parser.add_argument("--seconds", type=int, default=20, help="Length of each wrk run.")
    parser.add_argument("--exact-requests", type=int, default=2000, help="Requests of the exact audit check.")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="PostgreSQL workers.")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("WAYMARK_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only (a smoke run).")
    args = parser.parse_args()
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "data"
        generate(folder, SynthConfig(students=args.students, seed=2))
        settings = settings_in(root)
        version = register(folder, settings, NAME, "gbm", seed=0)
        audited = govern(folder, settings, NAME, version, root / "fairness")
        configure(settings)
        sqlite = make_engine(settings.database_url)
        publish(sqlite, folder, audited, governed_here=True)
        features = build_features(load_learning_data(folder), [8]).head(1)
        row = {
            "dataframe_split": {
                "columns": list(FEATURE_NAMES),
                "data": features[list(FEATURE_NAMES)].to_numpy().tolist(),
            }
        }
        env = {
            **os.environ,
            "WAYMARK_ENV": "development",
            "WAYMARK_DEV_KEY_DIR": str(root / "keys"),
            "WAYMARK_DATABASE_URL": settings.database_url,
            "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
            "WAYMARK_MLFLOW_ARTIFACTS": str(settings.mlflow_artifacts),
            "WAYMARK_RATE_LIMIT_PER_MINUTE": "100000000",
            # mlflow models serve starts `uvicorn` by name
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        dev = Settings(WAYMARK_ENV="development", WAYMARK_DEV_KEY_DIR=str(root / "keys"))  # type: ignore[arg-type]
        server_settings = settings.model_copy(update={"env": "development", "dev_key_dir": root / "keys"})
        rotation = targets(folder, dev, sqlite)
        reads = root / "reads.lua"
        reads.write_text(lua_script(rotation))
        invocation = root / "invocations.lua"
        invocation.write_text(
            lua_script([("POST", "/invocations", {"Content-Type": "application/json"}, _json(row))])
        )
        print(
            f"{args.students:,} students; wrk rotates over {len(rotation)} students' indicator reads, each "
            f"by one of their tutors (authorised, audited); {args.seconds} s per run; {os.cpu_count()} cores"
        )
        wport, mport = _port(), _port()
        base, mlflow_base = f"http://127.0.0.1:{wport}", f"http://127.0.0.1:{mport}"
        waymark = [sys.executable, "-m", "waymark", "serve", "--port", str(wport)]
        mlflow = [
            *(sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{NAME}/{version}"),
            *("--env-manager", "local", "-p", str(mport), "-h", "127.0.0.1"),
        ]
        warm = max(2, args.seconds // 5)
        with (
            running(waymark, env, ready=f"{base}/health", log=root / "waymark-sqlite.log"),
            running(mlflow, env, ready=f"{mlflow_base}/ping", log=root / "mlflow.log"),
        ):
            run_wrk(wrk, reads, base, connections=1, threads=1, seconds=warm)
            run_wrk(wrk, invocation, mlflow_base, connections=1, threads=1, seconds=warm)
            time.sleep(1)
            before = records(sqlite)
            ours = run_wrk(wrk, reads, base, connections=1, threads=1, seconds=args.seconds)
            audit_check(sqlite, server_settings, before=before, answered=ours.succeeded, exact=False)
            theirs = run_wrk(wrk, invocation, mlflow_base, connections=1, threads=1, seconds=args.seconds)
            print(
                "one client: Waymark GET /v1/students/{id}/indicator (authorised, audited, SQLite): "
                f"p50 {ours.p50_ms:.2f} ms, p99 {ours.p99_ms:.2f} ms"
            )
            print(
                "one client: mlflow models serve POST /invocations (one row, same model):            "
                f"p50 {theirs.p50_ms:.2f} ms, p99 {theirs.p99_ms:.2f} ms"
            )
            print(f"ratio of p50s (Waymark / MLflow): {ours.p50_ms / theirs.p50_ms:.2f}")
            _check_answers(ours, theirs)
        threads = min(os.cpu_count() or 1, 4)
        with running(waymark, env, ready=f"{base}/health", log=root / "waymark-sqlite-64.log"):
            concurrent(
                "SQLite, 1 worker",
                wrk,
                reads,
                base,
                engine=sqlite,
                settings=server_settings,
                seconds=args.seconds,
                threads=threads,
                exact=args.exact_requests,
                rotation=rotation,
            )
        if args.no_postgres:
            print("PostgreSQL: skipped (--no-postgres)")
            return
        url = recreate_postgres(args.postgres_url)
        postgres = make_engine(url)
        publish(postgres, folder, audited, governed_here=False)
        pg_env = {**env, "WAYMARK_DATABASE_URL": url}
        pg_settings = server_settings.model_copy(update={"database_url": url})
        served = [*waymark, "--workers", str(args.workers), "--i-know-this-is-not-production"]
        with running(served, pg_env, ready=f"{base}/health", log=root / "waymark-postgres.log"):
            run_wrk(wrk, reads, base, connections=CONNECTIONS, threads=threads, seconds=warm)
            concurrent(
                f"PostgreSQL, {args.workers} workers",
                wrk,
                reads,
                base,
                engine=postgres,
                settings=pg_settings,
                seconds=args.seconds,
                threads=threads,
                exact=args.exact_requests,
                rotation=rotation,
            )
        postgres.dispose()


def concurrent(
    label: str,
    wrk: str,
    script: Path,
    base: str,
    *,
    engine: Engine,
    settings: Settings,
    seconds: int,
    threads: int,
    exact: int,
    rotation: list[tuple[str, str, dict[str, str], str | None]],
) -> None:
    """64 connections for ``seconds``, then the exact audit check; prints both."""
    time.sleep(1)  # requests a warm-up run left in flight commit before counting
    before = records(engine)
    load = run_wrk(wrk, script, base, connections=CONNECTIONS, threads=threads, seconds=seconds)
    time.sleep(1)  # let the last requests wrk cut off commit before counting
    print(
        f"{CONNECTIONS} connections, {label}: {load.rate:,.0f} audited requests/s, "
        f"p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms "
        f"({load.requests:,} answered, {load.non_2xx} not 2xx, {load.errors} socket errors)"
    )
    audit_check(engine, settings, before=before, answered=load.succeeded, exact=False)
    before = records(engine)
    answered = exact_check(base, rotation, exact)
    print(
        f"exact check, {label}: {exact:,} audited reads from {CONNECTIONS} concurrent clients, "
        f"{answered:,} answered"
    )
    audit_check(engine, settings, before=before, answered=answered, exact=True)


def _check_answers(*loads: Load) -> None:
    for load in loads:
        if load.non_2xx or load.errors:
            print(f"  warning: {load.non_2xx} responses not 2xx and {load.errors} socket errors")


def _json(value: object) -> str:
    return json.dumps(value)


if __name__ == "__main__":
    main()
