"""What the service holds for its lifetime: settings, database, token verifier, audit key, the champion."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

from waymark.models import registry
from waymark.models.registry import configure
from waymark.models.settings import Settings
from waymark.service.audit import check_key, load_key
from waymark.service.claims import load_mapping
from waymark.service.db.engine import make_engine, refuse_development_on_production
from waymark.service.db.schema import ScoringRun
from waymark.service.outreach import OutreachError, load_options
from waymark.service.scoring import ChampionUnavailableError, load_champion
from waymark.service.scoring.champion import approved_champion
from waymark.service.security import ConfigurationError, Verifier

log = logging.getLogger("waymark.service")


@dataclass(frozen=True)
class Champion:
    """The approved model whose indicators may be served."""

    name: str
    version: str
    features: tuple[str, ...] = ()  # the inputs the model uses (``used_features``), for the statement
    # its training run's metrics, read with its files (None: the registry could not say); the
    # transparency statement quotes them without asking the registry on a request
    metrics: Mapping[str, float] | None = None


class ChampionWatch:
    """The champion as governance has it now: re-read at most ``every`` seconds apart, and on demand.

    Reading the decision is one small query; the model's files are downloaded and checked against
    the recorded hash only when the approved version (or its hash) changes. A rejected or voided
    champion becomes ``None`` at the next check, so its indicators stop being served without a restart.
    """

    def __init__(self, settings: Settings, *, engine: Engine, every: float) -> None:
        self._settings, self._engine, self._every = settings, engine, every
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._verified: tuple[str, str] | None = None  # (version, sha256) whose files were checked
        self._features: tuple[str, ...] = ()  # the checked version's inputs
        self._metrics: Mapping[str, float] | None = None  # the checked version's training metrics
        self._current: Champion | None = None

    def dispose(self) -> None:
        """Close the watch's connections (at shutdown)."""
        self._engine.dispose()

    def current(self) -> Champion | None:
        """The champion, re-checked if the last check is older than the interval.

        One request re-checks; others meanwhile read what the check has so far (``None`` while a new
        version's files are fetched) rather than queue behind it: a registry that answers slowly holds
        the one request, never the service.
        """
        if time.monotonic() - self._checked >= self._every and self._lock.acquire(blocking=False):
            try:
                self._refresh_held()
            finally:
                self._lock.release()
        return self._current

    def refresh(self) -> None:
        """Re-read the governance record now (after a review is recorded, and on the interval).

        Raises
        ------
        sqlalchemy.exc.DBAPIError
            If the database cannot be read: nothing is served until it can (the caller answers 503).
        """
        with self._lock:
            self._refresh_held()

    def _refresh_held(self) -> None:
        # The champion checked last stays while its decision is read again (one small query); it is
        # cleared before a new version's files are fetched (``_read``) and on any failure.
        self._checked = time.monotonic()
        try:
            self._current = self._read()
        except DBAPIError:
            self._current = None
            self._checked = float("-inf")  # try again on the next request
            raise

    def _read(self) -> Champion | None:
        name = self._settings.model_name
        try:
            approved = approved_champion(self._engine, name)
            if self._verified != (approved.version, approved.bundle_sha256):
                self._current = None  # not served while the new version's files are fetched and checked
                self._features = _load_verified(self._settings, self._engine)
                self._verified = (approved.version, approved.bundle_sha256)
                self._metrics = None
            if self._metrics is None:  # read with the files, and again at each check until it is read
                self._metrics = _training_metrics(self._settings, version=approved.version)
        except ChampionUnavailableError as exc:
            log.warning("indicators are not available: %s", exc)
            return None
        except DBAPIError:
            raise
        except Exception:  # an unreachable registry or database must not leave stale approvals served
            log.exception("indicators are not available: the champion could not be checked")
            return None
        return Champion(name, approved.version, self._features, self._metrics)


def _load_verified(settings: Settings, engine: Engine) -> tuple[str, ...]:
    """Check the champion's files against their recorded hash; returns the features the model uses."""
    return load_champion(
        engine, settings.model_name, store=settings.mlflow_tracking_uri
    ).bundle.used_features()


def _training_metrics(settings: Settings, *, version: str) -> Mapping[str, float] | None:
    """The champion's training-run metrics; None (logged) when the registry cannot be read."""
    store, name = settings.mlflow_tracking_uri, settings.model_name
    try:
        found = registry.version(name, version, store=store)
        return dict(registry.run(found.run_id, store=store).metrics)
    except Exception:  # the statement then says the registry could not be read; never a guess
        log.exception("the training metrics of %s version %s could not be read", name, version)
        return None


class DevelopmentGuard:
    """Whether this development-mode process has read that its database was never used in production.

    Development signs anyone in with a key on this machine: no caller is accepted until the mark is
    read (``refuse_development_on_production``), at start-up or, if the database could not be read
    then (a reviewer: a lock held through the start had let it serve a production database), at the
    first request.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine, self._confirmed, self._lock = engine, False, threading.Lock()

    def confirm(self) -> None:
        """Read the mark once; raises ``ProductionDatabase``, or the database's error while unreadable."""
        if self._confirmed:
            return
        with self._lock:
            if not self._confirmed:
                refuse_development_on_production(self._engine)
                self._confirmed = True


@dataclass(frozen=True, eq=False)
class Runtime:
    """Built once at start-up (FastAPI lifespan)."""

    settings: Settings
    engine: Engine
    verifier: Verifier
    audit_key: bytes
    watch: ChampionWatch = field(repr=False)
    development: DevelopmentGuard | None = field(default=None, repr=False)  # development mode only

    @property
    def champion(self) -> Champion | None:
        """The approved champion now (None: indicators are not available)."""
        return self.watch.current()

    def close(self) -> None:
        """Close the database connections (at shutdown, or when the service refuses to start)."""
        self.engine.dispose()
        self.watch.dispose()


def require_stores(settings: Settings) -> None:
    """Refuse to run the service outside development on the default stores (``Settings.unset_stores``)."""
    if unset := settings.unset_stores():
        raise ConfigurationError(
            "outside development mode the service needs its database and model registry named: "
            + "; ".join(unset)
            + " (the defaults are new SQLite files in the working directory, for development)"
        )


def warn_without_secret(settings: Settings, engine: Engine) -> str | None:
    """Warn (and return the warning) when the served ids are pseudonyms and no secret is configured.

    A law school served its pseudonymised batches without ``WAYMARK_PSEUDONYM_SECRET_FILE``: every
    student signing in with their number was told there was no indicator for them, and nothing said why.
    """
    if settings.pseudonym_secret_file is not None:
        return None
    with engine.connect() as connection:
        latest = connection.execute(
            select(ScoringRun.pseudonym_key)
            .where(ScoringRun.status == "complete")
            .order_by(ScoringRun.id.desc())
            .limit(1)
        ).scalar_one_or_none()
    if not latest:
        return None
    said = (
        f"the published indicators carry pseudonyms (key {latest}) and WAYMARK_PSEUDONYM_SECRET_FILE is not "
        "set: students signing in with their number, and staff typing one, will find no record. Give the "
        "imports' secret"
    )
    log.warning("%s", said)
    return said


def build_runtime(settings: Settings) -> Runtime:
    """Verify configuration, connect, and check the approved champion (refuses unsafe configuration)."""
    require_stores(settings)
    configure(settings)  # one store per process: the governance mirror writes to it (reads name it)
    # a token's other roles, through the mapping the sign-in uses (the committee's approvals read them)
    verifier = Verifier(settings, held=load_mapping(settings).roles)
    try:  # read by every worklist and contact: a broken file refuses the start, not each request
        load_options(settings.outreach_file)
    except OutreachError as exc:
        raise ConfigurationError(f"WAYMARK_OUTREACH_FILE: {exc}") from exc
    key = load_key(settings)
    engine = make_engine(settings.database_url)
    # On SQLite the watch reads beside the writer (it may look while the same thread's request holds it).
    reads = make_engine(settings.database_url, reads_only=True) if engine.dialect.name == "sqlite" else engine
    watch = ChampionWatch(settings, engine=reads, every=settings.champion_recheck_seconds)
    guard = DevelopmentGuard(engine) if settings.development else None
    try:
        if guard is not None:  # a production database refuses the start; an unreadable one, each caller
            guard.confirm()
        check_key(engine, key)  # a key that did not write the log's latest record is refused here
        watch.refresh()
        warn_without_secret(settings, engine)
    except DBAPIError:  # start anyway: requests answer 503 until the database is back (the key is
        log.exception("the database could not be read at start-up")  # then checked at the first record)
    return Runtime(
        settings=settings, engine=engine, verifier=verifier, audit_key=key, watch=watch, development=guard
    )
