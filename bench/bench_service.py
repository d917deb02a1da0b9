"""The student-indicator endpoint (authorised, audited) beside ``mlflow models serve`` on one row.

    python bench/bench_service.py [--students 3000] [--requests 2000]

Builds a governed champion on a synthetic cohort, scores it into SQLite, loads the relationships,
then starts, on loopback, ``waymark serve`` (one uvicorn worker) and ``mlflow models serve`` for the
same model version. Measures, in the same run:

1. one client, sequential: p50 and p99 of ``GET /v1/students/{id}/indicator`` (token checked, scope
   resolved, explanation and history read, one audit record written in the same transaction) and of
   ``POST /invocations`` scoring one row of the same model's features;
2. 64 concurrent clients (asyncio, one connection each) on the indicator endpoint: requests/s and p99.

The load generator shares the machine's two cores with the servers; numbers are loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.champion import govern, register, settings_in
from waymark.models.data import load_learning_data
from waymark.models.features import FEATURE_NAMES, build_features
from waymark.models.registry import configure
from waymark.models.settings import Settings
from waymark.service.db.engine import make_engine, upgrade
from waymark.service.grants import import_grants
from waymark.service.scoring import score
from waymark.service.security import mint
from waymark.training.ingest.synthetic import SynthConfig, generate

NAME = "waymark-not-completing"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not come up")


def _percentiles(ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def _sequential(client: httpx.Client, make: object, n: int) -> list[float]:
    out = []
    for i in range(n):
        method, url, kwargs = make(i)  # type: ignore[operator]
        t0 = time.perf_counter()
        response = client.request(method, url, **kwargs)
        out.append(1000 * (time.perf_counter() - t0))
        response.raise_for_status()
    return out


async def _concurrent(
    base: str, headers: dict[str, str], students: list[str], n: int, clients: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    per_client = n // clients

    async def worker(k: int) -> None:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
            for i in range(per_client):
                student = students[(k * per_client + i) % len(students)]
                t0 = time.perf_counter()
                response = await client.get(f"/v1/students/{student}/indicator")
                latencies.append(1000 * (time.perf_counter() - t0))
                response.raise_for_status()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(clients)))
    return per_client * clients / (time.perf_counter() - t0), latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrent-requests", type=int, default=12800)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "data"
        generate(folder, SynthConfig(students=args.students, seed=2))
        settings = settings_in(root)
        version = register(folder, settings, NAME, "gbm", seed=0)
        govern(folder, settings, NAME, version, root / "fairness")
        engine = make_engine(settings.database_url)
        upgrade(engine)
        configure(settings)
        score(folder, engine, model_name=NAME, week=8)
        import_grants(engine, folder / "access.csv")
        features = build_features(load_learning_data(folder), [8]).head(1)
        row = {
            "dataframe_split": {
                "columns": list(FEATURE_NAMES),
                "data": features[list(FEATURE_NAMES)].values.tolist(),
            }
        }
        env = {
            **os.environ,
            "WAYMARK_ENV": "development",
            "WAYMARK_DEV_KEY_DIR": str(root / "keys"),
            "WAYMARK_DATABASE_URL": settings.database_url,
            "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
            "WAYMARK_RATE_LIMIT_PER_MINUTE": "100000000",
            # mlflow models serve starts `uvicorn` by name
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        dev = Settings(WAYMARK_ENV="development", WAYMARK_DEV_KEY_DIR=str(root / "keys"))  # type: ignore[arg-type]
        support = next(
            line.split(",")[0]
            for line in (folder / "access.csv").read_text().splitlines()
            if ",support_staff," in line
        )
        token = mint(dev, "support_staff", sub=support, minutes=600)
        headers = {"Authorization": f"Bearer {token}"}
        wport, mport = _port(), _port()
        servers = [
            subprocess.Popen(
                [sys.executable, "-m", "waymark", "serve", "--port", str(wport)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mlflow",
                    "models",
                    "serve",
                    "-m",
                    f"models:/{NAME}/{version}",
                    "--env-manager",
                    "local",
                    "-p",
                    str(mport),
                    "-h",
                    "127.0.0.1",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
        ]
        try:
            base, mlflow_base = f"http://127.0.0.1:{wport}", f"http://127.0.0.1:{mport}"
            _wait(f"{base}/health")
            _wait(f"{mlflow_base}/ping")
            with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
                students = [
                    i["student_id"] for i in c.get("/v1/caseload", params={"limit": 100}).json()["items"]
                ]
                students += [
                    i["student_id"]
                    for i in c.get("/v1/caseload", params={"limit": 100, "offset": 100}).json()["items"]
                ]
            random.Random(0).shuffle(students)
            print(
                f"support-staff caseload sample: {len(students)} students; "
                f"{args.requests} sequential requests each"
            )
            with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
                _sequential(
                    c, lambda i: ("GET", f"/v1/students/{students[i % len(students)]}/indicator", {}), 200
                )
                ours = _sequential(
                    c,
                    lambda i: ("GET", f"/v1/students/{students[i % len(students)]}/indicator", {}),
                    args.requests,
                )
            with httpx.Client(base_url=mlflow_base, timeout=30) as c:
                _sequential(c, lambda i: ("POST", "/invocations", {"json": row}), 200)
                theirs = _sequential(c, lambda i: ("POST", "/invocations", {"json": row}), args.requests)
            (p50, p99), (m50, m99) = _percentiles(ours), _percentiles(theirs)
            print(
                "Waymark GET /v1/students/{id}/indicator (authorised, audited): "
                f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"
            )
            print(
                "mlflow models serve POST /invocations (one row, same model):   "
                f"p50 {m50:.2f} ms, p99 {m99:.2f} ms"
            )
            print(f"ratio of p50s (Waymark / MLflow): {p50 / m50:.2f}")
            rate, lat = asyncio.run(_concurrent(base, headers, students, args.concurrent_requests, 64))
            c50, c99 = _percentiles(lat)
            print(
                f"64 concurrent clients, one worker: {rate:,.0f} audited requests/s, "
                f"p50 {c50:.1f} ms, p99 {c99:.1f} ms"
            )
        finally:
            for s in servers:
                s.terminate()
                s.wait(timeout=30)


if __name__ == "__main__":
    main()
