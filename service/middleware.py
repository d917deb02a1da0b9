"""One pure-ASGI layer for every request.

Request id, body-size cap, rate limit, security headers and Prometheus metrics. Pure ASGI (not
BaseHTTPMiddleware) keeps it off the hot path's latency.

The rate limit is per verified subject for a request with a valid bearer token or a live page session
(so colleagues behind one university address do not share an allowance), and per client address for
every other request, including one whose token or cookie names nobody: made-up tokens and cookies all
draw on their sender's address, not on a fresh allowance each. The token is verified here, once, and
the result kept in the request's state for ``current_principal`` (``verified``).
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import time
import uuid
from collections import OrderedDict

from prometheus_client import Counter, Histogram
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from waymark.models.settings import Settings
from waymark.service import sessions
from waymark.service.errors import Refused
from waymark.service.security import AuthError, ConfigurationError, Principal, Verifier

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
_VERIFIED = "waymark_verified"  # scope state: (token, Principal or AuthError)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class RateLimiter:
    """A token bucket per identity: bursts of ``per_minute``, refilled at ``per_minute`` a minute.

    Memory is bounded: at most ``max_identities`` buckets are kept, and the least recently seen
    identity is forgotten first (it comes back with a full bucket, as an idle identity would have).
    """

    def __init__(self, per_minute: int, max_identities: int = 100_000) -> None:
        self.per_minute = per_minute
        self.max_identities = max_identities
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # identity: (tokens, when)

    def __len__(self) -> int:
        """How many identities are tracked."""
        return len(self._buckets)

    def wait(self, identity: str, now: float) -> int:
        """Count a request: 0 when it may proceed, else the whole seconds to wait (Retry-After)."""
        tokens, when = self._buckets.pop(identity, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - when) * self.per_minute / 60)
        allowed = tokens >= 1
        self._buckets[identity] = (tokens - 1 if allowed else tokens, now)  # now the most recent
        if len(self._buckets) > self.max_identities:
            self._buckets.popitem(last=False)
        return 0 if allowed else max(1, math.ceil((1 - tokens) * 60 / self.per_minute))


def trusted_networks(spec: str) -> tuple[Network, ...]:
    """The trusted proxies named by WAYMARK_TRUSTED_PROXIES (ConfigurationError for a bad entry)."""
    try:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()
        )
    except ValueError as exc:
        raise ConfigurationError(f"WAYMARK_TRUSTED_PROXIES: {exc}") from exc


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def client_address(scope: Scope, trusted: tuple[Network, ...]) -> str:
    """The rate-limit key of the client: the peer, or behind trusted proxies the right-most untrusted hop.

    X-Forwarded-For is believed only as far as trusted proxies wrote it: each hop is read from the
    right while the hop that handed it over is a trusted proxy, so a client cannot choose its address.
    An IPv6 client is keyed by its /64, which one host usually has to itself.
    """
    client = scope.get("client")
    address = _address(client[0]) if client else None
    if address is None:
        return f"addr:{client[0] if client else 'unknown'}"
    for hop in reversed(_forwarded_for(scope)):
        if not any(address in network for network in trusted):
            break
        handed = _address(hop)
        if handed is None:  # not written by a proxy we trust; keep the last trusted hop
            break
        address = handed
    if address.version == 6:
        return f"addr:{ipaddress.ip_network(f'{address}/64', strict=False)}"
    return f"addr:{address}"


def _cookie(scope: Scope, name: str) -> str | None:
    header = _header(scope, b"cookie")
    return cookie_parser(header).get(name) if header else None


def _forwarded_for(scope: Scope) -> list[str]:
    hops: list[str] = []
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-for":
            hops += value.decode("latin-1").split(",")
    return hops


def _bearer(scope: Scope) -> str | None:
    # the same reading as FastAPI's HTTPBearer, so current_principal sees the same token
    authorization = _header(scope, b"authorization")
    scheme, _, token = (authorization or "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def _attempt(verifier: Verifier, token: str) -> Principal | AuthError:
    try:
        return verifier.verify(token)
    except AuthError as exc:
        return exc


def verified(scope: Scope, token: str, *, verifier: Verifier) -> Principal:
    """The caller ``token`` names, verified once per request (the Guard has usually done it already)."""
    state = scope.setdefault("state", {})
    done: tuple[str, Principal | AuthError] | None = state.get(_VERIFIED)
    if done is None or done[0] != token:
        done = state[_VERIFIED] = (token, _attempt(verifier, token))
    if isinstance(done[1], AuthError):
        raise done[1]
    return done[1]


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


async def _problem(
    send: Send, status: int, *, title: str, detail: str, extra: list[tuple[bytes, bytes]]
) -> None:
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + extra + SECURITY_HEADERS}
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    """The ASGI middleware."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        verifier: Verifier,
        trusted_proxies: tuple[Network, ...],
        engine: Engine | None = None,
    ) -> None:
        self.app = app
        self.engine = engine  # to find page sessions (None: page sessions draw on their address)
        self.max_body = settings.max_body_bytes
        self.limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_identities)
        self.verifier = verifier
        self.trusted = trusted_proxies

    async def _identity(self, scope: Scope) -> str:
        token = _bearer(scope)
        if token is not None:
            # in a worker thread only when verification has to fetch the identity provider's keys: a
            # hop to a thread costs a request more than checking a signature with a key already held
            if self.verifier.verifies_offline(token):
                result = _attempt(self.verifier, token)
            else:
                result = await run_in_threadpool(_attempt, self.verifier, token)
            scope.setdefault("state", {})[_VERIFIED] = (token, result)
            if isinstance(result, Principal):
                return f"sub:{result.sub}"
        elif self.engine is not None and not scope["path"].startswith("/static/"):
            cookie = _cookie(scope, sessions.COOKIE)
            if cookie:
                signed = await run_in_threadpool(sessions.of_request, self.engine, scope, cookie=cookie)
                if signed is not None:
                    return f"sub:{signed.sub}"
        return client_address(scope, self.trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: PLR0917 (ASGI calls it so)
        """Handle one ASGI event."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # The server names every request; a client's own X-Request-ID is kept beside it (for their
        # correlation), never instead of it, so a caller cannot choose what the access log records.
        given = _header(scope, b"x-request-id")
        request_id = uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["client_request_id"] = given if given and _REQUEST_ID.match(given) else None
        rid = [(b"x-request-id", request_id.encode())]
        status_seen = [500]
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _problem(
                send,
                413,
                title="Request too large",
                detail=f"Bodies are limited to {self.max_body} bytes.",
                extra=rid,
            )
            return
        wait = self.limiter.wait(await self._identity(scope), time.monotonic())
        if wait:
            await _problem(
                send,
                429,
                title="Too many requests",
                detail=f"Slow down and try again in {wait} seconds.",
                extra=[*rid, (b"retry-after", str(wait).encode())],
            )
            return
        received = [0]

        async def capped_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received[0] += len(message.get("body", b""))
                if received[0] > self.max_body:  # a body sent in chunks, with no length declared
                    # An HTTP error is the one kind FastAPI's body reader passes on as it is.
                    raise Refused(
                        413, title="Request too large", detail=f"Bodies are limited to {self.max_body} bytes."
                    )
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
    """The route as declared, without its converters (``{student_id}``, not ``{student_id:path}``)."""
    route = scope.get("route")
    return str(getattr(route, "path_format", None) or getattr(route, "path", "unmatched"))
