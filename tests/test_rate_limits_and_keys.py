"""Rate limits by verified subject or client address, and identity-provider keys that expire."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from tests.service_setup import Served
from waymark.models.settings import Settings
from waymark.service.app import create_app
from waymark.service.middleware import RateLimiter, client_address, trusted_networks
from waymark.service.security import AuthError, ConfigurationError, Verifier, mint

ISSUER, AUDIENCE = "https://idp.example.ac.uk", "waymark"


# --- a local identity provider -------------------------------------------------------------------


class Provider:
    """A JWKS endpoint we control: which keys it publishes, whether it answers, how often it was asked."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.fetches = 0
        self.hang = False
        self.released = threading.Event()  # lets a hanging handler finish when the test ends
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/jwks"

    def publish(self, *kids: str) -> None:
        """Publish exactly these keys (new ones are generated), withdrawing all others."""
        self.keys = {kid: self.keys.get(kid) or _rsa() for kid in kids}

    def document(self) -> bytes:
        keys = [
            {**jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key(), as_dict=True), "kid": kid, "use": "sig"}
            for kid, k in self.keys.items()
        ]
        return json.dumps({"keys": keys}).encode()

    def token(self, kid: str, sub: str = "s1", key: rsa.RSAPrivateKey | None = None) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "role": "student", "iat": now, "exp": now + 600}
        return jwt.encode(claims, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            provider.fetches += 1
            if provider.hang:
                provider.released.wait(30)
                return
            body = provider.document()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the client gave up; nothing to answer
                pass

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def provider() -> Iterator[Provider]:
    idp = Provider()
    idp.publish("key-a")
    yield idp
    idp.released.set()
    idp.server.shutdown()
    idp.server.server_close()


def production(url: str, **extra: float) -> Settings:
    values = {
        "WAYMARK_ENV": "production",
        "WAYMARK_OIDC_ISSUER": ISSUER,
        "WAYMARK_OIDC_AUDIENCE": AUDIENCE,
        "WAYMARK_OIDC_JWKS_URL": url,
        "WAYMARK_OIDC_JWKS_LIFESPAN_SECONDS": 300,
        "WAYMARK_OIDC_JWKS_COOLDOWN_SECONDS": 30,
        "WAYMARK_OIDC_JWKS_TIMEOUT_SECONDS": 3,
        **extra,
    }
    return Settings(**values)  # type: ignore[arg-type]


def refused(verifier: Verifier, token: str) -> str | None:
    """The refusal's message, or None when the token verified."""
    try:
        verifier.verify(token)
    except AuthError as exc:
        return str(exc)
    return None


# --- keys that expire ----------------------------------------------------------------------------


def test_a_token_signed_with_a_published_key_verifies(provider: Provider) -> None:
    verifier = Verifier(production(provider.url), clock=Clock())
    assert verifier.verify(provider.token("key-a", sub="ada")).sub == "ada"
    assert verifier.verify(provider.token("key-a", sub="bo")).sub == "bo"
    assert provider.fetches == 1  # the keys are kept between tokens


def test_a_withdrawn_key_stops_verifying_once_the_keys_expire(provider: Provider) -> None:
    clock = Clock()
    verifier = Verifier(production(provider.url), clock=clock)
    old_key = provider.keys["key-a"]
    assert refused(verifier, provider.token("key-a")) is None
    provider.publish("key-b")  # the provider withdraws A (a compromise) and signs with B only
    clock.now += 299
    assert refused(verifier, provider.token("key-a", key=old_key)) is None  # still within the lifespan
    clock.now += 2
    assert refused(verifier, provider.token("key-a", key=old_key)) == "token signed with an unknown key"
    assert refused(verifier, provider.token("key-b")) is None
    assert provider.fetches == 2


def test_the_event_loop_verifies_a_token_only_when_no_fetch_would_be_needed(provider: Provider) -> None:
    """The Guard verifies on the event loop when ``verifies_offline``; otherwise in a worker thread."""
    clock = Clock()
    verifier = Verifier(production(provider.url), clock=clock)
    token = provider.token("key-a")
    assert not verifier.verifies_offline(token)  # no keys yet: verifying would fetch them
    assert provider.fetches == 0  # asking never fetches
    assert refused(verifier, token) is None
    assert verifier.verifies_offline(token) and verifier.verifies_offline(provider.token("key-a", sub="bo"))
    provider.publish("key-a", "key-b")
    assert verifier.verifies_offline(provider.token("key-b"))  # unknown, but a fetch is not due yet
    clock.now += 31  # past the cooldown: an unknown key id would be fetched
    assert not verifier.verifies_offline(provider.token("key-b"))
    clock.now += 300  # past the keys' lifespan: even a known key id would be fetched again
    assert not verifier.verifies_offline(token)
    assert verifier.verifies_offline("not a token")  # refused before any key is looked up
    assert provider.fetches == 1


def test_a_newly_published_key_is_found_by_a_refresh_after_the_cooldown(provider: Provider) -> None:
    clock = Clock()
    verifier = Verifier(production(provider.url), clock=clock)
    assert refused(verifier, provider.token("key-a")) is None
    provider.publish("key-a", "key-b")
    clock.now += 31
    assert refused(verifier, provider.token("key-b")) is None
    assert provider.fetches == 2


def test_made_up_key_ids_cost_the_provider_one_fetch_per_cooldown(provider: Provider) -> None:
    clock = Clock()
    verifier = Verifier(production(provider.url), clock=clock)
    stranger = _rsa()
    flood = [provider.token(uuid.uuid4().hex, key=stranger) for _ in range(50)]
    for token in flood:
        assert refused(verifier, token) == "token signed with an unknown key"
        clock.now += 0.5  # 25 seconds in all: inside one cooldown
    assert provider.fetches == 1
    clock.now += 6  # the cooldown has passed: one more refresh, then quiet again
    for token in flood:
        assert refused(verifier, token) == "token signed with an unknown key"
    assert provider.fetches == 2
    assert refused(verifier, provider.token("key-a")) is None  # the real key was never disturbed


def test_keys_are_not_used_past_their_lifespan_when_the_provider_is_unreachable(
    provider: Provider,
) -> None:
    clock = Clock()
    verifier = Verifier(production(provider.url), clock=clock)
    token = provider.token("key-a")
    assert refused(verifier, token) is None
    provider.server.shutdown()
    provider.server.server_close()
    clock.now += 301
    assert refused(verifier, token) == "the identity provider's keys could not be fetched"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_an_unreachable_provider_refuses_tokens(provider: Provider) -> None:
    verifier = Verifier(production(f"http://127.0.0.1:{_closed_port()}/jwks"), clock=Clock())
    assert refused(verifier, provider.token("key-a")) == "the identity provider's keys could not be fetched"


def test_a_provider_that_never_answers_refuses_within_the_timeout(provider: Provider) -> None:
    provider.hang = True
    clock = Clock()
    verifier = Verifier(production(provider.url, WAYMARK_OIDC_JWKS_TIMEOUT_SECONDS=0.5), clock=clock)
    started = time.monotonic()
    assert refused(verifier, provider.token("key-a")) == "the identity provider's keys could not be fetched"
    assert time.monotonic() - started < 0.5 + 10  # did not hang: the configured timeout, plus a wide margin
    clock.now += 1
    assert refused(verifier, provider.token("key-a")) is not None
    assert provider.fetches == 1  # a failed fetch is not retried on every request


def test_a_jwks_url_that_is_not_http_is_refused_at_start() -> None:
    with pytest.raises(ConfigurationError, match="WAYMARK_OIDC_JWKS_URL"):
        Verifier(production("file:///etc/passwd"))


def test_a_key_id_that_is_not_a_string_is_refused(provider: Provider) -> None:
    verifier = Verifier(production(provider.url), clock=Clock())
    _head, body, signature = provider.token("key-a").split(".")
    for kid in (["key-a"], {"k": 1}, 7):
        head = jwt.api_jws.base64url_encode(json.dumps({"alg": "RS256", "kid": kid}).encode()).decode()
        assert refused(verifier, f"{head}.{body}.{signature}") is not None


# --- the limiter ---------------------------------------------------------------------------------


def test_the_limiter_tracks_a_bounded_number_of_identities() -> None:
    limiter = RateLimiter(per_minute=5, max_identities=1_000)
    for n in range(50_000):
        limiter.wait(f"addr:10.{n // 65536}.{n // 256 % 256}.{n % 256}", now=float(n) / 1000)
        assert len(limiter) <= 1_000
    assert len(limiter) == 1_000


def test_a_busy_identity_is_not_forgotten_while_strangers_stream_past() -> None:
    limiter = RateLimiter(per_minute=5, max_identities=100)
    waits = []
    for n in range(1_000):
        waits.append(limiter.wait("sub:busy", now=n / 1000))
        limiter.wait(f"addr:stranger-{n}", now=n / 1000)
    assert waits[:5] == [0] * 5 and all(w > 0 for w in waits[5:])


def test_a_limited_identity_is_told_when_to_come_back() -> None:
    limiter = RateLimiter(per_minute=5)
    assert [limiter.wait("sub:a", now=0.0) for _ in range(6)] == [0, 0, 0, 0, 0, 12]
    assert limiter.wait("sub:a", now=6.0) == 6
    assert limiter.wait("sub:a", now=12.0) == 0  # one request back every 60/5 seconds
    assert limiter.wait("sub:a", now=12.0) > 0


# --- the client address --------------------------------------------------------------------------


def _scope(peer: str, *forwarded: str) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return {"type": "http", "client": (peer, 443), "headers": headers}


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() -> None:
    trusted = trusted_networks("10.0.0.0/24")
    assert client_address(_scope("203.0.113.9", "198.51.100.1"), trusted) == "addr:203.0.113.9"
    assert client_address(_scope("203.0.113.9", "198.51.100.1"), ()) == "addr:203.0.113.9"


def test_behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() -> None:
    trusted = trusted_networks("10.0.0.0/24, 192.0.2.7")
    # the client wrote a made-up first hop; our proxies appended what they saw
    scope = _scope("10.0.0.5", "1.2.3.4, 198.51.100.1", "192.0.2.7")
    assert client_address(scope, trusted) == "addr:198.51.100.1"
    assert client_address(_scope("10.0.0.5", "10.0.0.6"), trusted) == "addr:10.0.0.6"
    assert client_address(_scope("10.0.0.5"), trusted) == "addr:10.0.0.5"
    assert client_address(_scope("10.0.0.5", "not-an-address"), trusted) == "addr:10.0.0.5"


def test_an_ipv6_client_is_limited_by_its_64_prefix() -> None:
    one = client_address(_scope("2001:db8:1:2::10"), ())
    assert one == client_address(_scope("2001:db8:1:2:ffff::1"), ()) == "addr:2001:db8:1:2::/64"
    assert client_address(_scope("::ffff:198.51.100.1"), ()) == "addr:198.51.100.1"


def test_a_bad_trusted_proxy_setting_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="WAYMARK_TRUSTED_PROXIES"):
        trusted_networks("10.0.0.0/24, proxy.example")


# --- the service ---------------------------------------------------------------------------------


@pytest.fixture
def limited(served: Served) -> Iterator[TestClient]:
    settings = served.settings.model_copy(update={"rate_limit_per_minute": 5, "trusted_proxies": "10.0.0.1"})
    with TestClient(create_app(settings), client=("10.0.0.1", 40_000)) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_made_up_tokens_draw_on_their_senders_address(served: Served, limited: TestClient) -> None:
    codes = [
        limited.get("/v1/caseload", headers=_bearer(f"junk-{n}") | {"X-Forwarded-For": "198.51.100.1"})
        for n in range(7)
    ]
    assert [c.status_code for c in codes] == [401] * 5 + [429] * 2
    assert codes[-1].headers["content-type"] == "application/problem+json"
    assert int(codes[-1].headers["retry-after"]) > 0
    student = _bearer(mint(served.settings, "student", sub="s-1"))
    signed_in = limited.get("/v1/transparency", headers=student | {"X-Forwarded-For": "198.51.100.1"})
    assert signed_in.status_code == 200  # a verified caller has their own allowance
    other = limited.get("/v1/transparency", headers={"X-Forwarded-For": "198.51.100.2"})
    assert other.status_code == 200


def test_a_subject_has_one_allowance_from_every_address(served: Served, limited: TestClient) -> None:
    student = _bearer(mint(served.settings, "student", sub="s-2"))
    codes = [
        limited.get("/v1/transparency", headers=student | {"X-Forwarded-For": f"198.51.100.{n}"}).status_code
        for n in range(7)
    ]
    assert codes == [200] * 5 + [429] * 2
    fresh_address = limited.get("/v1/transparency", headers={"X-Forwarded-For": "198.51.100.99"})
    assert fresh_address.status_code == 200


def test_a_token_is_verified_once_per_request(
    served: Served, limited: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = limited.app.state.runtime.verifier  # type: ignore[attr-defined]
    calls: list[str] = []
    real = verifier.verify
    monkeypatch.setattr(verifier, "verify", lambda token: calls.append(token) or real(token))
    student = _bearer(mint(served.settings, "student", sub="s-3"))
    assert limited.get("/v1/caseload", headers=student).status_code == 403  # verified, then refused by role
    assert len(calls) == 1


def test_page_sessions_behind_one_address_each_have_their_own_allowance(
    served: Served, limited: TestClient
) -> None:
    from waymark.service import sessions

    engine = limited.app.state.runtime.engine  # type: ignore[attr-defined]
    office = {"X-Forwarded-For": "198.51.100.50"}  # two colleagues behind the university's one address
    first, _ = sessions.start(engine, sub="s-10", name="First", roles=["student"], hours=1, student_id="s-10")
    second, _ = sessions.start(
        engine, sub="s-11", name="Second", roles=["student"], hours=1, student_id="s-11"
    )

    def get(cookie: str) -> int:
        limited.cookies.clear()
        limited.cookies.set(sessions.COOKIE, cookie)
        return limited.get("/v1/me/indicator", headers=office).status_code

    codes = [get(first) for _ in range(7)]
    assert codes[:5] == [codes[0]] * 5 and codes[0] != 429 and codes[5:] == [429, 429]
    assert get(second) != 429  # the colleague's allowance is their own
    made_up = [get(f"made-up-{n}") for n in range(6)]  # cookies naming nobody draw on the address
    assert made_up == [401] * 5 + [429]
    limited.cookies.clear()
