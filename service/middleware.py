"""One pure-ASGI layer for every request.

Request id, body-size cap, per-identity rate limit, security headers and Prometheus metrics. Pure
ASGI (not BaseHTTPMiddleware) keeps it off the hot path's latency.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections import deque

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("waymark_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "waymark_http_request_seconds",
    "HTTP request duration",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"frame-ancestors 'none'",
    ),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_DOCS = ("/docs", "/redoc")  # Swagger UI loads its own scripts; the API pages keep the strict policy


class RateLimiter:
    """A sliding one-minute window per identity (a hash of the bearer token, else the client address)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[str, deque[float]] = {}

    def allow(self, identity: str, now: float) -> bool:
        """Count a request; False when the identity has used its minute."""
        hits = self._hits.setdefault(identity, deque())
        while hits and now - hits[0] >= 60:
            hits.popleft()
        if len(hits) >= self.per_minute:
            return False
        hits.append(now)
        if len(self._hits) > 100_000:  # bounded memory: forget idle identities
            self._hits = {k: v for k, v in self._hits.items() if v and now - v[-1] < 60}
        return True


def _identity(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return hashlib.sha256(value).hexdigest()[:32]
    client = scope.get("client")
    return f"addr:{client[0] if client else 'unknown'}"


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


async def _problem(
    send: Send, status: int, title: str, detail: str, extra: list[tuple[bytes, bytes]]
) -> None:
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + extra + SECURITY_HEADERS}
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    """The ASGI middleware."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, rate_limit_per_minute: int) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.limiter = RateLimiter(rate_limit_per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI event."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = _header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        rid = [(b"x-request-id", request_id.encode())]
        status_seen = [500]
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _problem(
                send, 413, "Request too large", f"Bodies are limited to {self.max_body} bytes.", rid
            )
            return
        if not self.limiter.allow(_identity(scope), time.monotonic()):
            await _problem(
                send,
                429,
                "Too many requests",
                "Slow down and try again in a minute.",
                [*rid, (b"retry-after", b"60")],
            )
            return
        received = [0]

        async def capped_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received[0] += len(message.get("body", b""))
                if received[0] > self.max_body:
                    raise ValueError("request body too large")
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_seen[0] = message["status"]
                docs = scope["path"].startswith(_DOCS)
                extra = [h for h in SECURITY_HEADERS if not (docs and h[0] == b"content-security-policy")]
                message["headers"] = [*message.get("headers", []), *rid, *extra]
            await send(message)

        try:
            await self.app(scope, capped_receive, send_with_headers)
        finally:
            route = _route(scope)
            REQUESTS.labels(scope["method"], route, str(status_seen[0])).inc()
            LATENCY.labels(route).observe(time.perf_counter() - started)


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))
