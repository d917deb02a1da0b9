"""Sign-in to the pages with the institution's identity provider: OpenID Connect, code flow with PKCE.

Authlib does the OAuth work (discovery, PKCE, state and nonce, the code exchange, the ID token's
signature, issuer, audience, expiry and nonce). Its state for the few minutes of a sign-in lives in
Starlette's signed session cookie; once signed in, the person's session lives in the database
(``sessions``) and their browser holds only a random id in an HttpOnly, Secure, SameSite=Lax cookie.
Every form that changes something carries the session's CSRF token. The API keeps bearer tokens.

The routes are not in the OpenAPI schema (they are the browser's, and answer with redirects and
pages). Their few inputs (``next``, ``login_hint``, a form's ``role`` and ``csrf``) are checked here
and never stored as given: ``next`` must be a path on this site, ``role`` one the session already holds.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware

from waymark.models.roles import ROLES, STAFF_ROLES, Role
from waymark.models.settings import Settings
from waymark.service import sessions
from waymark.service.claims import RoleMapping, display_name, load_mapping, training_until
from waymark.service.middleware import Network, trusted_networks
from waymark.service.pages import message, signed_in
from waymark.service.schemas import is_identifier
from waymark.service.security import read_secret

router = APIRouter(include_in_schema=False)
FLOW_COOKIE = "__Host-waymark_signin"  # Authlib's state, nonce and PKCE verifier for one sign-in
FLOW_SECONDS = 600
_DEV_SECRET = "session-secret"  # noqa: S105  # a file name, not a secret
_MAX_NEXT = 512
_UNSAFE_NEXT = re.compile(r"[\x00-\x1f\x7f\\]")
log = logging.getLogger("waymark.service")


@dataclass(frozen=True, eq=False)
class SignInConfig:
    """The pages' identity provider client (None: sign-in is not configured) and the role mapping."""

    client: Any
    mapping: RoleMapping
    settings: Settings
    trusted: tuple[Network, ...]


def install(app: FastAPI, settings: Settings) -> None:
    """Add the sign-in routes and, when a client is configured, Authlib's client and its flow cookie."""
    mapping = load_mapping(settings)  # a broken mapping file refuses to start, signed in or not
    client = None
    if settings.oidc_issuer and settings.oidc_client_id:
        client = _client(settings)
        app.add_middleware(
            SessionMiddleware,
            secret_key=_flow_secret(settings),
            session_cookie=FLOW_COOKIE,
            max_age=FLOW_SECONDS,
            same_site="lax",
            https_only=True,
        )
    app.state.sign_in = SignInConfig(client, mapping, settings, trusted_networks(settings.trusted_proxies))
    app.include_router(router)


def _client(settings: Settings) -> Any:
    oauth = OAuth()
    secret = settings.oidc_client_secret or None
    return oauth.register(
        "idp",
        client_id=settings.oidc_client_id,
        client_secret=secret,
        server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={
            "scope": settings.oidc_scopes,
            "code_challenge_method": "S256",  # PKCE, for confidential clients too
            "timeout": 10,
            # Authlib builds an HTTP client for every sign-in, and each loaded the CA certificates
            # afresh (about 35 ms on the event loop, stalling every other request: a red team's finding).
            # One context, made as httpx makes its default, serves them all.
            "verify": httpx2.create_ssl_context(),
            **({} if secret else {"token_endpoint_auth_method": "none"}),
        },
    )


def _flow_secret(settings: Settings) -> str:
    secret = read_secret(
        settings,
        path=settings.session_secret_file,
        setting="WAYMARK_SESSION_SECRET_FILE",
        dev_name=_DEV_SECRET,
        what="sign-in to the pages needs a secret to sign its short-lived cookie",
    )
    return secret.decode("utf-8", errors="replace")


def _config(request: Request) -> SignInConfig:
    config: SignInConfig = request.app.state.sign_in
    return config


def local_path(target: str) -> bool:
    """Whether ``target`` is a path on this site (so a redirect to it cannot leave the site)."""
    if not target.startswith("/") or target.startswith("//") or len(target) > _MAX_NEXT:
        return False
    parts = urlsplit(target)
    return not (parts.scheme or parts.netloc or _UNSAFE_NEXT.search(target))


def _redirect_uri(request: Request, config: SignInConfig) -> str:
    if config.settings.public_url:
        return config.settings.public_url.rstrip("/") + "/auth/callback"
    url = request.url_for("auth_callback")
    if config.trusted and _from_trusted_proxy(request, config.trusted):
        proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
        host = request.headers.get("x-forwarded-host", "").split(",")[0].strip()
        url = url.replace(scheme=proto or None, netloc=host or None)
    return str(url)


def _from_trusted_proxy(request: Request, trusted: tuple[Network, ...]) -> bool:
    peer = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in trusted)


@router.get("/login")
async def login(request: Request) -> Response:
    """Start the authorization code flow (PKCE); ``next`` is where to return, a path on this site."""
    config = _config(request)
    target = request.query_params.get("next") or ""
    if target and not local_path(target):
        return message(request, 400, title="Sign-in refused", text="Waymark returns only to its own pages.")
    if config.client is None:
        return message(
            request,
            503,
            title="Sign-in is not configured",
            text="Set WAYMARK_OIDC_ISSUER and WAYMARK_OIDC_CLIENT_ID (docs/configuration.md), "
            "or run `waymark demo`, which starts a local identity provider.",
        )
    hint = request.query_params.get("login_hint") or ""
    request.session["next"] = target
    try:
        return await config.client.authorize_redirect(  # type: ignore[no-any-return]
            request, _redirect_uri(request, config), **({"login_hint": hint} if is_identifier(hint) else {})
        )
    except (httpx2.HTTPError, OAuthError, ValueError):
        return _unreachable(request)


def _unreachable(request: Request) -> HTMLResponse:
    return message(
        request,
        503,
        title="The identity provider cannot be reached",
        text="Sign-in goes through your institution's identity provider, which did not answer. "
        "Try again shortly.",
    )


@router.get("/auth/callback", name="auth_callback")
async def callback(request: Request) -> Response:
    """Finish the flow: exchange the code, check the ID token, map its claims to roles, start a session."""
    config = _config(request)
    if config.client is None:
        return RedirectResponse("/login", status_code=303)
    try:
        token = await config.client.authorize_access_token(request)
    except OAuthError as exc:  # state mismatch, a denied request, a bad or replayed code, a bad ID token
        # The error can come from the query string: logged, never shown (a red team put its own words
        # on the institution's page through it).
        log.info("a sign-in did not complete: %.200r", exc.error)
        return message(
            request,
            400,
            title="Sign-in did not complete",
            text="Your institution's sign-in was refused, cancelled or took too long. Sign in again.",
        )
    except (httpx2.HTTPError, ValueError):
        return _unreachable(request)
    claims = dict(token.get("userinfo") or {})
    roles = config.mapping.roles(claims)
    sub = claims.get("sub")
    students = request.app.state.runtime.verifier.students
    student = students.of(claims) if Role.STUDENT in roles else None
    if Role.STUDENT in roles and student is None:
        log.warning("the student role was left out of a sign-in: %s", students.missing())
        roles = [role for role in roles if role != Role.STUDENT]
        if not roles:
            return message(
                request,
                403,
                title="Your student number did not come with your sign-in",
                text="You signed in as a student, but your institution's sign-in did not say your student "
                "number, so Waymark cannot find your records. Nothing was recorded. Tell the Waymark "
                "administrators or your data protection office.",
            )
    if not isinstance(sub, str) or not is_identifier(sub) or not roles:
        return message(
            request,
            403,
            title="Your account has no Waymark role",
            text="You signed in, but your institution has not given your account a role in Waymark. "
            "Ask your data protection office or the Waymark administrators if you need access.",
        )
    return await _begin(request, config, claims=claims, sub=sub, roles=roles, student=student)


async def _begin(
    request: Request,
    config: SignInConfig,
    *,
    claims: dict[str, Any],
    sub: str,
    roles: list[Role],
    student: str | None = None,
) -> Response:
    engine = request.app.state.runtime.engine
    earlier = request.cookies.get(sessions.COOKIE)
    if earlier:  # signing in again replaces the browser's session; the old id names nothing any more
        await run_in_threadpool(sessions.end, engine, earlier)
    until = training_until(claims)
    if until is not None and any(role in STAFF_ROLES for role in roles):
        await run_in_threadpool(lambda: sessions.record_training(engine, sub, until=until))
    cookie, signed = await run_in_threadpool(
        lambda: sessions.start(
            engine,
            sub=sub,
            name=display_name(claims),
            roles=list(roles),
            hours=config.settings.session_hours,
            student_id=student,
        )
    )
    target = request.session.pop("next", "") or landing(signed.active_role)
    response = RedirectResponse(target if local_path(target) else "/", status_code=303)
    response.set_cookie(
        sessions.COOKIE,
        cookie,
        max_age=int(config.settings.session_hours * 3600),
        path="/",
        secure=True,
        httponly=True,
        samesite="lax",
    )
    return response


_STARTS = {
    Role.STUDENT: "/me",
    Role.ETHICS_REVIEWER: "/committee",
    Role.DATA_SCIENTIST: "/committee",
    Role.DPO: "/dpo",
}


def landing(role: str) -> str:
    """Where a role starts: the worklist for staff who support students, else the role's own page or home."""
    if role not in set(Role):
        return "/"
    spec = ROLES.get(Role(role))
    return "/caseload" if spec is not None and spec.supports_students else _STARTS.get(Role(role), "/")


async def _form(request: Request) -> dict[str, str]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return {}
    try:
        parsed = parse_qs((await request.body()).decode("utf-8"), max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {key: values[0] for key, values in parsed.items()}


async def _checked(request: Request) -> tuple[sessions.SignedIn | None, dict[str, str], Response | None]:
    """The session and the form of a POST, or the answer refusing it (403: not the session's CSRF token)."""
    form = await _form(request)
    signed = await run_in_threadpool(signed_in, request)
    if signed is None:
        # A cookie that names no session is cleared. Without one there is nothing to clear: a POST from
        # another site arrives without the (SameSite=Lax) cookie, and must not sign the browser out.
        answer = RedirectResponse("/", status_code=303)
        return None, form, _signed_out(answer) if sessions.COOKIE in request.cookies else answer
    given = form.get(sessions.CSRF_FIELD) or request.headers.get(sessions.CSRF_HEADER)
    if not signed.csrf_matches(given):
        return (
            signed,
            form,
            message(
                request,
                403,
                title="Refused",
                text="This form's security token is missing or out of date, so nothing was changed. "
                "Reload the page and try again.",
            ),
        )
    return signed, form, None


def _signed_out(response: Response) -> Response:
    response.delete_cookie(sessions.COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Sign out: the session ends here, then (when it offers one) at the identity provider too."""
    _, _, refused = await _checked(request)
    if refused is not None:
        return refused
    cookie = request.cookies.get(sessions.COOKIE, "")
    await run_in_threadpool(sessions.end, request.app.state.runtime.engine, cookie)
    return _signed_out(RedirectResponse(await _provider_sign_out(request) or "/", status_code=303))


async def _provider_sign_out(request: Request) -> str | None:
    """The provider's end-session address (OpenID Connect RP-Initiated Logout), or None.

    Waymark's own session has already ended: when the provider cannot be reached, sign-out still
    lands on Waymark's sign-in page.
    """
    config = _config(request)
    if config.client is None or not config.settings.oidc_end_provider_session:
        return None
    try:
        metadata = await config.client.load_server_metadata()
    except (httpx2.HTTPError, OAuthError, ValueError):
        return None
    endpoint = metadata.get("end_session_endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
        return None
    back = _site_root(request, config)
    query = urlencode({"client_id": config.settings.oidc_client_id, "post_logout_redirect_uri": back})
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


def _site_root(request: Request, config: SignInConfig) -> str:
    """Where the provider sends the browser back after signing out: this site's sign-in page."""
    return _redirect_uri(request, config).removesuffix("/auth/callback") + "/"


@router.post("/session/role")
async def switch_role(request: Request) -> Response:
    """Act in another of one's own roles."""
    signed, form, refused = await _checked(request)
    if refused is not None:
        return refused
    assert signed is not None  # noqa: S101  # _checked refuses every request without a session
    role = form.get("role", "")
    cookie = request.cookies.get(sessions.COOKIE, "")
    engine = request.app.state.runtime.engine
    if not await run_in_threadpool(lambda: sessions.switch(engine, cookie, role=role)):
        return message(request, 403, title="Refused", text="You do not hold that role.")
    return RedirectResponse(landing(role), status_code=303)
