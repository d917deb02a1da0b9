"""Endpoints anyone may call: the transparency statement, health and metrics."""

from __future__ import annotations

import hmac
import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Gauge, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import text

from waymark.models.settings import Settings
from waymark.service import monitoring, transparency
from waymark.service.api.deps import RuntimeDep
from waymark.service.db.engine import transaction
from waymark.service.errors import Refused
from waymark.service.runtime import Runtime
from waymark.service.security import read_secret

router = APIRouter(tags=["public"])
# From the latest `waymark monitor` report: counts only, by kind of figure (no module, group or person).
# Across worker processes the latest value set wins (each scrape sets them from the database).
MONITORING_FLAGS = Gauge(
    "waymark_monitoring_flags",
    "Shifts flagged by the latest monitoring report, by kind",
    ["kind"],
    multiprocess_mode="mostrecent",
)
MONITORING_RUN = Gauge(
    "waymark_monitoring_run",
    "Scoring run compared by the latest monitoring report",
    multiprocess_mode="mostrecent",
)
#: Set (by ``waymark serve --workers N``, or by whoever runs several processes) to a folder every worker
#: writes its counts to: a scrape then reads all of them, not the one process it reached.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def current_statement(runtime: Runtime) -> dict[str, Any]:
    """The statement as this deployment is now, in the wording of ``WAYMARK_TRANSPARENCY_FILE``."""
    wording = transparency.load_wording(runtime.settings.transparency_file)
    return transparency.statement(transparency.gather(runtime), wording)


@router.get("/v1/transparency")
def transparency_statement(runtime: RuntimeDep) -> dict[str, Any]:
    """What Waymark uses, why, who can see what, how well the model in service works, how to read it."""
    return current_statement(runtime)


@router.get("/health")
def health(runtime: RuntimeDep) -> JSONResponse:
    """Liveness and readiness: the mode, whether the database answers and an approved model is loaded."""
    try:
        with transaction(runtime.engine) as session:
            session.execute(text("SELECT 1"))
        champion = runtime.champion  # re-reads the governance record from the database when due
        database = "ok"
    except Exception:
        database, champion = "unavailable", None
    body = {
        "status": "ok" if database == "ok" else "unavailable",
        "mode": runtime.settings.mode,
        "database": database,
        "model": "not available" if champion is None else f"{champion.name} version {champion.version}",
    }
    return JSONResponse(body, status_code=200 if database == "ok" else 503)


def metrics_token(settings: Settings) -> bytes | None:
    """The token a scraper must send to read /metrics (``WAYMARK_METRICS_TOKEN_FILE``); None without one.

    Raises
    ------
    ConfigurationError
        When the file cannot be read or holds fewer than 32 bytes.
    """
    if settings.metrics_token_file is None:
        return None
    return read_secret(
        settings,
        path=settings.metrics_token_file,
        setting="WAYMARK_METRICS_TOKEN_FILE",
        dev_name="metrics.token",
        what="a metrics scraper presents it as a bearer token",
    )


@router.get("/metrics")
def metrics(request: Request, runtime: RuntimeDep) -> Response:
    """Prometheus metrics (requests and latency by route, monitoring flags by kind; nothing by person).

    Open in development; otherwise only to a scraper presenting ``WAYMARK_METRICS_TOKEN_FILE``'s token
    (404 to anyone else, and to everyone without one: route counts say how often students' rights
    were used).
    """
    token: bytes | None = request.app.state.metrics_token
    # Read from the request, not declared: the scraper's credential is no input of the API's schema.
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if token is None:
        allowed = runtime.settings.development
    else:
        allowed = scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token)
    if not allowed:
        raise Refused(404, title="Not found", detail="Nothing is served at this address.")
    _monitoring_gauges(runtime)
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)


def _registry() -> CollectorRegistry:
    """The metrics of this process, or with ``PROMETHEUS_MULTIPROC_DIR`` set of every worker, summed."""
    folder = os.environ.get(MULTIPROCESS_DIR)
    if not folder:
        return REGISTRY
    if not os.path.isdir(folder):  # removed under the running service (a temporary-files cleaner, say)
        raise Refused(
            503,
            title="Metrics unavailable",
            detail=f"The folder the workers keep their metrics in ({MULTIPROCESS_DIR}) is gone: restart "
            "the service, and keep that folder out of any temporary-files cleaning.",
        )
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def _monitoring_gauges(runtime: Runtime) -> None:
    try:
        report = monitoring.latest_report(runtime.engine)
    except Exception:  # the database is down: /health says so; metrics still answer
        return
    if report is None:
        return
    MONITORING_FLAGS.clear()
    for kind in ("feature", "estimates", "coverage", "list turnover", "group estimates"):
        MONITORING_FLAGS.labels(kind=kind).set(sum(f["kind"].startswith(kind) for f in report["flags"]))
    MONITORING_RUN.set(report["run"]["id"])
