"""What the service holds for its lifetime: settings, database, token verifier, the approved champion."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from sqlalchemy import Engine

from models.settings import Settings
from service.db.engine import make_engine
from service.scoring import ChampionUnavailableError, load_champion
from service.security import Verifier

log = logging.getLogger("waymark.service")


@dataclass(frozen=True)
class Champion:
    """The approved model whose indicators may be served."""

    name: str
    version: str


@dataclass(frozen=True, eq=False)
class Runtime:
    """Built once at start-up (FastAPI lifespan)."""

    settings: Settings
    engine: Engine
    verifier: Verifier
    champion: Champion | None


def _champion(settings: Settings) -> Champion | None:
    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    try:
        loaded = load_champion(settings.model_name)
    except ChampionUnavailableError as exc:
        log.warning("indicators are not available: %s", exc)
        return None
    except Exception:  # an unreachable registry must not start a service that serves stale approvals
        log.exception("indicators are not available: the model registry could not be read")
        return None
    return Champion(loaded.name, loaded.version)


def build_runtime(settings: Settings) -> Runtime:
    """Verify configuration, connect, and load the approved champion (refuses unsafe configuration)."""
    verifier = Verifier(settings)
    return Runtime(settings, make_engine(settings.database_url), verifier, _champion(settings))
