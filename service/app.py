"""The FastAPI application factory.

The service's endpoints arrive with the Service issue; today it answers liveness only, so that the
container image and its HEALTHCHECK have something real to check.
"""

from __future__ import annotations

from fastapi import FastAPI

from service import __name__ as _package


def create_app() -> FastAPI:
    """Build the application."""
    app = FastAPI(
        title="Waymark",
        version="0.1.0",
        description="Explained, non-labelling indicators for authorised staff and students' own data.",
    )

    @app.get("/health", tags=["operations"])
    def health() -> dict[str, str]:
        """Liveness: the process is up and answering."""
        return {"status": "ok", "component": _package}

    return app
