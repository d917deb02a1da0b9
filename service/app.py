"""The FastAPI application factory: settings in, one runtime built at start-up, routers per area."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from waymark.models.settings import Settings, get_settings
from waymark.service import errors, pages, signin, transparency
from waymark.service.api import governance, me, public, staff
from waymark.service.middleware import Guard, trusted_networks
from waymark.service.runtime import Runtime, build_runtime


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application (refuses to start without safe authentication settings)."""
    settings = settings or get_settings()
    runtime = build_runtime(settings)  # fails fast: no OIDC outside development -> no service
    try:
        return _application(settings, runtime)
    except BaseException:  # refused to start: nothing keeps the runtime's connections open
        runtime.close()
        raise


def _application(settings: Settings, runtime: Runtime) -> FastAPI:
    transparency.load_wording(settings.transparency_file)  # an unreadable wording file refuses to start

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = runtime
        # Endpoints run in a thread pool; fewer threads queue requests instead of making them fight
        # over the interpreter while one of them holds the access log's head (docs/deployment.md).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        yield
        runtime.close()

    app = FastAPI(
        title="Waymark",
        version="0.1.0",
        description=(
            "Explained, non-labelling indicators for authorised staff, and students' own data. "
            "Every read of a student's data is recorded in a tamper-evident access log."
        ),
        lifespan=lifespan,
        # Swagger UI and ReDoc load scripts from a CDN and run without the pages' script policy: on the
        # origin that holds staff sessions, only in development (/openapi.json describes the API anywhere).
        docs_url="/docs" if settings.development else None,
        redoc_url="/redoc" if settings.development else None,
    )
    app.state.runtime = runtime
    app.state.metrics_token = public.metrics_token(settings)  # an unreadable or short one refuses to start
    errors.install(app)
    for router in (staff.router, me.router, governance.router, public.router, pages.router):
        app.include_router(router)
    signin.install(app, settings)  # sign-in to the pages; the API keeps bearer tokens
    app.mount("/static", StaticFiles(directory=str(pages.HERE / "static")), name="static")
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:  # closed by default
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=["Authorization", "Content-Type", "Waymark-Purpose"],
        )
    app.add_middleware(
        Guard,
        settings=settings,
        verifier=runtime.verifier,
        trusted_proxies=trusted_networks(settings.trusted_proxies),  # a bad entry refuses to start
        engine=runtime.engine,
    )
    return app
