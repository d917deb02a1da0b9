"""Development only: a real OpenID Connect provider on this machine, for the demo and the tests.

It is ``oidc-provider-mock`` (Authlib's provider, with users made up on the spot): the pages sign in
through the same authorization code flow as with an institution's identity provider. The demo's
people are registered in it with their Waymark roles and training attestation as claims, and it
honours the standard ``login_hint`` for them, so each is one click on the sign-in page. Nothing here
is used outside development mode.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx2
from sqlalchemy import Engine

from waymark.models.roles import STAFF_ROLES, Role
from waymark.service.grants import examples

# Sign-in examples for the roles that hold no relationship in access.csv.
UNSCOPED: dict[str, str] = {Role.ETHICS_REVIEWER: "E0001", Role.DPO: "D0001", Role.DATA_SCIENTIST: "DS001"}
Wsgi = Callable[[dict[str, Any], Any], Iterable[bytes]]


@dataclass(frozen=True)
class Person:
    """Someone the local provider signs in: their subject and the claims of their ID token."""

    sub: str
    claims: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LocalProvider:
    """A running local provider and the pages' client registered with it."""

    issuer: str
    client_id: str
    client_secret: str


def person(sub: str, roles: Iterable[str], *, name: str = "", training_days: int | None = 365) -> Person:
    """A person holding Waymark ``roles`` (in the packaged mapping's ``roles`` claim); staff are trained."""
    roles = list(roles)
    claims: dict[str, Any] = {"roles": roles, "name": name or sub, "preferred_username": sub}
    if training_days is not None and any(role in STAFF_ROLES for role in roles):
        claims["infosec_training_until"] = int(time.time()) + 86_400 * training_days
    return Person(sub, claims)


def demo_people(engine: Engine) -> list[tuple[str, Person]]:
    """One person per role, with real identifiers from the demo's relationships: (role, person)."""
    subs = {**examples(engine), **UNSCOPED}
    return [(role, person(sub, [role], name=f"{sub} (demo)")) for role, sub in subs.items() if sub]


def _honour_login_hint(app: Wsgi, subs: set[str]) -> Wsgi:
    """The mock shows a form asking whom to sign in; for a known ``login_hint`` answer it at once.

    The request then goes on exactly as the form's own submission would (the same URL, ``sub`` in
    the body), so the flow stays the provider's; only the click on its form is saved.
    """

    def wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "GET" and environ.get("PATH_INFO") == "/oauth2/authorize":
            hint = parse_qs(environ.get("QUERY_STRING", "")).get("login_hint", [""])[0]
            if hint in subs:
                body = urlencode({"sub": hint}).encode()
                environ = {
                    **environ,
                    "REQUEST_METHOD": "POST",
                    "CONTENT_TYPE": "application/x-www-form-urlencoded",
                    "CONTENT_LENGTH": str(len(body)),
                    "wsgi.input": io.BytesIO(body),
                }
        return app(environ, start_response)

    return wsgi


@contextmanager
def running(people: Iterable[Person], *, redirect_uris: list[str], port: int = 0) -> Iterator[LocalProvider]:
    """Run the provider on 127.0.0.1 (a free port unless given) with the pages' client registered.

    It runs in a process of its own: the mock is Flask and werkzeug, and its warnings, threads and
    debugger stay out of the service's process. It stops with the context, or when this process ends.
    """
    spec = {"port": port, "people": [{"sub": p.sub, "claims": p.claims} for p in people]}
    with subprocess.Popen(  # noqa: S603  # this interpreter running this module
        [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdin is not None and child.stdout is not None  # noqa: S101  # both are pipes
        try:
            child.stdin.write(json.dumps(spec) + "\n")
            child.stdin.flush()  # stdin stays open: the child ends when it closes
            ready = child.stdout.readline().strip()
            if not ready.isdigit():
                raise RuntimeError("the local identity provider did not start (see the messages above)")
            issuer = f"http://127.0.0.1:{ready}"
            yield LocalProvider(issuer, *_register(issuer, redirect_uris))
        finally:
            child.terminate()  # Popen's exit closes the pipes and waits for it


def _serve(spec: dict[str, Any]) -> None:
    """The provider's process: serve until stdin closes (the parent ended or stopped it)."""
    import authlib.deprecate  # sets its warnings to "always" on import; ours must come after
    import werkzeug.serving

    # the mock still uses Authlib's older interfaces
    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request in the demo's output
    import oidc_provider_mock  # development only: never imported by the service

    people = [oidc_provider_mock.User(sub=p["sub"], claims=p["claims"]) for p in spec["people"]]
    app = oidc_provider_mock.app(require_client_registration=True, require_nonce=True, user_claims=people)
    app.wsgi_app = _honour_login_hint(app.wsgi_app, {p.sub for p in people})
    server = werkzeug.serving.make_server("127.0.0.1", int(spec["port"]), app, threaded=True)
    sys.stdout.write(f"{server.server_port}\n")
    sys.stdout.flush()

    def watch() -> None:
        sys.stdin.read()  # returns at end of file
        server.shutdown()

    threading.Thread(target=watch, daemon=True).start()
    server.serve_forever(poll_interval=0.2)


def _register(issuer: str, redirect_uris: list[str]) -> tuple[str, str]:
    """Register the pages' confidential client (RFC 7591); returns its id and secret."""
    response = httpx2.post(
        f"{issuer}/oauth2/clients",
        json={"redirect_uris": redirect_uris, "token_endpoint_auth_method": "client_secret_basic"},
        timeout=10,
    )
    response.raise_for_status()
    client = response.json()
    return str(client["client_id"]), str(client["client_secret"])


if __name__ == "__main__":
    _serve(json.loads(sys.stdin.readline()))
