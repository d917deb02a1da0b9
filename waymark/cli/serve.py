"""``waymark serve`` and, for development mode, ``waymark token``."""

from __future__ import annotations

from typing import Annotated

import typer

from waymark.cli.console import out
from waymark.cli.errors import fail, handled
from waymark.models.settings import Settings, get_settings
from waymark.service.app import create_app
from waymark.service.db.engine import up_to_date
from waymark.service.security import ROLES, mint

LOOPBACK, PORT = "127.0.0.1", 8000


def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = LOOPBACK,
    port: Annotated[int, typer.Option(help="Port.")] = PORT,
    *,
    not_production: Annotated[
        bool,
        typer.Option(
            "--i-know-this-is-not-production",
            help="Development mode only: serve beyond loopback or on a non-SQLite database anyway.",
        ),
    ] = False,
) -> None:
    """Run the HTTP service (brings the database schema up to date first)."""
    serve(get_settings(), host, port=port, not_production=not_production)


def serve(
    settings: Settings, host: str = LOOPBACK, *, port: int = PORT, not_production: bool = False
) -> None:
    """Serve the application built from ``settings`` until interrupted."""
    import uvicorn

    exposure = settings.development_exposure(host)
    if exposure and not not_production:
        raise fail(
            f"Refusing to serve in development mode: {'; '.join(exposure)}. Development mode lets anyone "
            "with the key folder sign in as any role, so it is for this machine and throwaway data. "
            "Set WAYMARK_ENV=production with OIDC settings, or pass --i-know-this-is-not-production "
            "for a test environment holding no real data."
        )
    with handled():  # refuse to start here, with the reason, rather than inside uvicorn
        up_to_date(settings.database_url)
        application = create_app(settings)
    out.print(f"Waymark is listening on http://{host}:{port} (API docs: /docs, health: /health)")
    # proxy_headers off: the Guard alone decides which proxies' X-Forwarded-For to believe
    # (WAYMARK_TRUSTED_PROXIES); uvicorn would otherwise rewrite the client address from loopback peers.
    uvicorn.run(application, host=host, port=port, log_level="warning", proxy_headers=False)


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
