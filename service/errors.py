"""Errors as RFC 9457 problem details; nothing internal (and no token or personal data) leaks into them."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("waymark.service")
PROBLEM = "application/problem+json"


def problem(
    status: int, title: str, *, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


class Refused(HTTPException):
    """An HTTP error with a title and a reason the caller can act on."""

    def __init__(
        self, status: int, *, title: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status, detail, headers)
        self.title = title


def not_found() -> Refused:
    """The same answer for a student that does not exist and one outside the caller's scope."""
    return Refused(404, title="Not found", detail="No indicator for this student is available to you.")


_FRIENDLY = {
    "string_pattern_mismatch": "contains a character that is not allowed here (control characters never are)",
    "string_unicode": "is not valid text",
}


def _reasons(exc: RequestValidationError) -> str:
    """Where each problem is and what it is; never the rejected value (it may be personal data)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {_FRIENDLY.get(e['type'], e['msg'])}"
        for e in exc.errors()[:10]
    )


_TITLES = {
    400: "Invalid request",
    401: "Unauthorised",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
}
_BODY_UNREADABLE = (
    "The body could not be read as JSON: it must be UTF-8, not nested too deeply, and hold no number "
    "of more than 4,300 digits."
)


def install(app: FastAPI) -> None:
    """Register the handlers."""

    # Starlette's own, which FastAPI's is one of: the router's 404 and 405 and the body reader's 400
    # (a body that is not UTF-8, nested deeper than the reader goes, a number too long to read).
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = getattr(exc, "title", None) or _TITLES.get(exc.status_code, "Error")
        detail = _BODY_UNREADABLE if exc.detail == "There was an error parsing the body" else str(exc.detail)
        return problem(exc.status_code, title, detail=detail, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(422, "Invalid request", detail=_reasons(exc))

    @app.exception_handler(IntegrityError)
    async def conflict(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("conflicting write refused: %s", type(exc).__name__)
        return problem(
            409,
            "Conflict",
            detail=(
                "This conflicts with something recorded at the same moment; nothing was changed. Try again."
            ),
        )

    @app.exception_handler(DataError)
    async def not_storable(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("value refused by the database: %s", type(exc).__name__)
        return problem(
            422,
            "Invalid request",
            detail="A value could not be stored (too long or malformed); nothing was changed.",
        )

    @app.exception_handler(OperationalError)  # connection refused or lost, or a transient failure
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeout)  # every connection busy
    async def database_down(_request: Request, exc: Exception) -> JSONResponse:
        log.error("database unavailable: %s", type(exc).__name__)
        return problem(
            503,
            "Service unavailable",
            detail="The database is not reachable or too busy; nothing was changed. Try again shortly.",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(DBAPIError)
    async def database_error(_request: Request, exc: Exception) -> JSONResponse:
        # Any other database error is a fault of ours (a bad query), not an outage: say so honestly.
        log.error("database error: %s", type(exc).__name__)
        return problem(500, "Internal error", detail="Something went wrong; nothing was changed.")

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error: %s", type(exc).__name__)
        return problem(500, "Internal error", detail="Something went wrong; nothing was changed.")
