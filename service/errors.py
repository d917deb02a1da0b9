"""Errors as RFC 9457 problem details; nothing internal (and no token or personal data) leaks into them."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from pathlib import Path

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
    "string_pattern_mismatch": "contains a character that is not allowed here (control characters never "
    "are, nor an invisible direction override, which turns the text after it around as shown)",
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
    """Register the handlers, and keep the server from logging an answered error's message."""
    withhold_server_tracebacks()

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
    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        # Any other database error is a fault of ours (a bad query), not an outage: say so honestly.
        log.error("database error: %s", located(request, exc))
        return problem(500, "Internal error", detail="Something went wrong; nothing was changed.")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error: %s", located(request, exc))
        return problem(500, "Internal error", detail="Something went wrong; nothing was changed.")


class WithheldTraceback(logging.Filter):
    """Drops the traceback the server logs for an error the service already answered with a 500.

    Starlette hands an unexpected error back to the server after its 500 is sent, so that the server
    logs it: uvicorn logs the whole traceback, message included, and a message can hold a student's id.
    The service's own line (``located``) says where instead.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record, without its traceback."""
        if record.exc_info:
            record.exc_info, record.exc_text = None, None
            record.msg = (
                f"{record.msg} (traceback withheld: its message may hold personal data; the line "
                "'unexpected error: ...' of the waymark.service logger says where it arose)"
            )
        return True


_WITHHELD = WithheldTraceback()


def withhold_server_tracebacks() -> None:
    """Attach ``WithheldTraceback`` to the server's error logger (once per process)."""
    server = logging.getLogger("uvicorn.error")
    if _WITHHELD not in server.filters:
        server.addFilter(_WITHHELD)


def located(request: Request, exc: BaseException) -> str:
    """An error's class, route, request id and where in the code it arose, never its message.

    A message can hold a student's id or a value they gave (a ``KeyError('S123')``), so the log says
    where, not what: the route as declared (``/v1/students/{student_id}/indicator``, not the path the
    caller asked for), the request's id (as its access-log records carry it), and the code's frames.
    """
    route = request.scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None) or "(no route)"
    request_id = request.scope.get("state", {}).get("request_id", "-")
    frames = traceback.extract_tb(exc.__traceback__)[-LOGGED_FRAMES:]
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))
    return f"{type(exc).__name__} on {request.method} {template} (request {request_id}) at {where or '?'}"


#: The innermost frames of an error's traceback a log line names.
LOGGED_FRAMES = 6
