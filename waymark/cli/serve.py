"""``waymark serve`` and, for development mode, ``waymark token``."""

from __future__ import annotations

import errno
import logging
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from waymark.cli.console import out
from waymark.cli.errors import fail, handled
from waymark.models.settings import Settings, get_settings
from waymark.models.threads import cores
from waymark.service.api.public import MULTIPROCESS_DIR
from waymark.service.app import create_app
from waymark.service.db.engine import POOL_SIZE_ENV, opened, pool_size_for
from waymark.service.dev_provider import demo_people, running
from waymark.service.runtime import require_stores
from waymark.service.security import ROLES, mint

LOOPBACK, PORT = "127.0.0.1", 8000


def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = LOOPBACK,
    port: Annotated[int, typer.Option(help="Port.")] = PORT,
    *,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes; the access log stays one chain across them. Default: one per core in "
            "production on PostgreSQL, else 1.",
        ),
    ] = None,
    not_production: Annotated[
        bool,
        typer.Option(
            "--i-know-this-is-not-production",
            help="Development mode only: serve beyond loopback or on a non-SQLite database anyway.",
        ),
    ] = False,
    dev_provider: Annotated[
        bool,
        typer.Option(
            "--dev-provider",
            help="Development mode only: sign in to the pages through a local identity provider "
            "holding one person per role of the loaded relationships.",
        ),
    ] = False,
) -> None:
    """Run the HTTP service (brings the database schema up to date first)."""
    settings = get_settings()
    if not dev_provider:
        chosen = default_workers(settings) if workers is None else workers
        serve(settings, host, port=port, not_production=not_production, workers=chosen)
        return
    if not settings.development:
        raise fail("--dev-provider works only in development mode (WAYMARK_ENV=development)")
    if workers not in (None, 1):
        raise fail("--dev-provider runs one worker: leave out --workers")
    with local_sign_in(settings, host, port=port) as signed:
        serve(signed, host, port=port, not_production=not_production)


def address(host: str, port: int) -> str:
    """The service's address for people (an IPv6 host in brackets)."""
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


@contextmanager
def local_sign_in(settings: Settings, host: str, *, port: int) -> Iterator[Settings]:
    """Development: a local identity provider with one person per role; yields settings that use it."""
    with handled():
        people = demo_people(opened(settings))
    hosts = {host, *({"127.0.0.1", "localhost"} if host in {"127.0.0.1", "localhost"} else set())}
    callbacks = sorted(f"{address(h, port)}/auth/callback" for h in hosts)
    with running([p for _, p in people], redirect_uris=callbacks) as provider:
        yield settings.model_copy(
            update={
                "oidc_issuer": provider.issuer,
                "oidc_client_id": provider.client_id,
                "oidc_client_secret": provider.client_secret,
                # the local provider keeps no session of its own: nothing to end there
                "oidc_end_provider_session": False,
                "dev_sign_in": ",".join(f"{role}={p.sub}" for role, p in people),
            }
        )


def default_workers(settings: Settings) -> int:
    """One worker per core the process may use in production on PostgreSQL; else one.

    SQLite has one writer, and every request appends to the access log, so more processes only
    queue for it; development mode is for one person on this machine.
    """
    sqlite = settings.database_url.startswith("sqlite")  # as service.db.engine tells them apart
    return 1 if sqlite or settings.development else cores()


#: How the service's own log lines look (its messages name routes and request ids, never students).
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_lines() -> None:
    """Timestamped, levelled log lines at INFO for Waymark's own loggers, unless logging is configured.

    Uvicorn's access log stays off: request paths hold student ids (``/v1/students/{id}``), and the
    access log proper, with purpose and role, is the audited one in the database.
    """
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
        logging.getLogger("waymark").setLevel(logging.INFO)


def _port_free(host: str, port: int) -> None:
    """Refuse, naming the port, when something already listens there (else another server would answer)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            taken = exc.errno == errno.EADDRINUSE
            raise fail(
                f"cannot listen on {address(host, port)}: {exc.strerror or exc}."
                + (
                    " Another program (perhaps another Waymark) is using that port: stop it, or choose "
                    "another with --port."
                    if taken
                    else " Check --host names an address of this machine."
                )
            ) from exc


def serve(
    settings: Settings,
    host: str = LOOPBACK,
    *,
    port: int = PORT,
    not_production: bool = False,
    workers: int = 1,
) -> None:
    """Serve the application built from ``settings`` until interrupted, in ``workers`` processes.

    With more than one worker each process builds the application from the environment (as
    ``get_settings`` reads it), so ``settings`` must be those; each keeps its share of the database
    connections (``WAYMARK_DB_POOL_SIZE`` unless set). The access log's head is locked across
    processes (PostgreSQL: the row lock; SQLite: the writer lock beside the file), so it stays one chain.
    """
    import uvicorn

    exposure = settings.development_exposure(host)
    if exposure and not not_production:
        raise fail(
            f"Refusing to serve in development mode: {'; '.join(exposure)}. Development mode lets anyone "
            "with the key folder sign in as any role, so it is for this machine and throwaway data. "
            "Set WAYMARK_ENV=production with OIDC settings, or pass --i-know-this-is-not-production "
            "for a test environment holding no real data."
        )
    if workers > 1:
        os.environ.setdefault(POOL_SIZE_ENV, str(pool_size_for(workers)))  # the workers inherit it
    _port_free(host, port)
    log_lines()
    with handled():  # refuse to start here, with the reason, rather than inside uvicorn
        require_stores(settings)  # before anything makes a database of the default URL
        opened(settings)
        application = create_app(settings)
    processes = "" if workers == 1 else f", {workers} worker processes"
    docs = "API docs: /docs, " if settings.development else ""
    out.print(f"Waymark is starting on {address(host, port)} ({docs}health: /health{processes})")
    # proxy_headers off: the Guard alone decides which proxies' X-Forwarded-For to believe
    # (WAYMARK_TRUSTED_PROXIES); uvicorn would otherwise rewrite the client address from loopback peers.
    if workers == 1:
        uvicorn.run(application, host=host, port=port, log_level="warning", proxy_headers=False)
        return
    application.state.runtime.close()  # built only to refuse a bad configuration here
    with shared_metrics():
        uvicorn.run(
            f"{create_app.__module__}:{create_app.__name__}",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level="warning",
            proxy_headers=False,
        )


@contextmanager
def shared_metrics() -> Iterator[None]:
    """Every worker's /metrics counts in one folder, so that a scrape reaching any worker reads them all.

    Unless ``PROMETHEUS_MULTIPROC_DIR`` names one already, a new private folder, removed when the
    service stops (its counts start from zero at each start, as one process's do).
    """
    if os.environ.get(MULTIPROCESS_DIR):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="waymark-metrics-") as folder:
        os.environ[MULTIPROCESS_DIR] = folder  # the workers, started after this, inherit it
        try:
            yield
        finally:
            del os.environ[MULTIPROCESS_DIR]


def token_cmd(
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    sub: Annotated[str, typer.Option(help="Subject: the staff or student identifier.")],
    *,
    minutes: Annotated[int, typer.Option(min=1, max=1440, help="Minutes until it expires.")] = 60,
    training: Annotated[
        bool, typer.Option(help="Include a current information-security training attestation (staff).")
    ] = True,
) -> None:
    """Development only: mint a signed bearer token (refused unless WAYMARK_ENV=development)."""
    settings = get_settings()
    if not settings.development:
        raise fail("waymark token works only in development mode (WAYMARK_ENV=development)")
    with handled(also=(ValueError,)):
        typer.echo(mint(settings, role, sub=sub, minutes=minutes, training_days=365 if training else None))
