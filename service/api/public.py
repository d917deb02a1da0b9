"""Endpoints anyone may call: the transparency statement, health and metrics."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from waymark.models.roles import ROLES
from waymark.service.api.deps import RuntimeDep
from waymark.service.db.engine import transaction

router = APIRouter(tags=["public"])
STATEMENT = Path(__file__).resolve().parents[1] / "transparency.toml"
WHO_SEES_WHAT = {role.value: spec.sees for role, spec in ROLES.items()}


@router.get("/v1/transparency")
def transparency(runtime: RuntimeDep) -> dict[str, Any]:
    """What Waymark uses, why, who can see what, and how to read an indicator."""
    statement = tomllib.loads(STATEMENT.read_text(encoding="utf-8"))
    champion = runtime.champion
    return {
        **statement,
        "who_sees_what": WHO_SEES_WHAT,
        "every_access_is_recorded": True,
        "model": None if champion is None else {"name": champion.name, "version": champion.version},
        "model_metrics_reported": (
            "per-week AUC, PR-AUC, Brier score, calibration, precision and recall at outreach capacity"
        ),
    }


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


@router.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics (requests and latency by route; nothing by person)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
