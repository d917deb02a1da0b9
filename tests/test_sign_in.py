"""Sign-in to the pages through a real OpenID Connect provider (oidc-provider-mock, in this process).

The authorization code flow runs end to end: the service's /login redirects to the provider, the
provider's form is posted, its redirect brings the code back to /auth/callback, and the service
exchanges it and checks the ID token. The service runs under Starlette's TestClient at an https
address (its cookies are Secure); the provider is a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update

from tests.service_setup import Served
from waymark.models.pseudonyms import id_pseudonymiser
from waymark.service.app import create_app
from waymark.service.db.engine import transaction
from waymark.service.db.schema import (
    AccessGrant,
    AuditRecord,
    Indicator,
    Publication,
    StudentPreference,
    TrainingAttestation,
    WebSession,
)
from waymark.service.dev_provider import LocalProvider, Person, person, running
from waymark.service.security import AuthError, ConfigurationError, Verifier, mint

BASE = "https://testserver"
NUMBER = "24100001"  # a student number as the institution's exports and its identity provider write it
GROUPS = """
claim = "groups"
[roles]
"grp-tutors" = "personal_tutor"
"grp-leads" = ["module_leader", "programme_leader"]
"""
KEYCLOAK = """
claim = "realm_access.roles"
[roles]
"waymark-student" = "student"
"""


@pytest.fixture(scope="module")
def ids(served: Served) -> dict[str, str]:
    tutors = served.access[
        (served.access.relationship == "personal_tutor")
        & served.access.scope_id.isin(served.indicators.student_id)
    ]
    return {"tutor": str(tutors.staff_id.iloc[0]), "student": str(served.indicators.student_id.iloc[0])}


@pytest.fixture(scope="module")
def provider(ids: dict[str, str]) -> Iterator[LocalProvider]:
    people = [
        person(ids["tutor"], ["personal_tutor", "module_leader"], name="Tess Tutor"),
        person(ids["student"], ["student"], name="Sam Student"),
        person("untrained-1", ["personal_tutor"], training_days=None),
        person("nobody-1", ["not-a-waymark-role"]),
        Person(
            "grouped-1", {"groups": ["grp-tutors", "grp-unknown"], "infosec_training_until": 4_102_444_800}
        ),
        Person("keycloak-1", {"realm_access": {"roles": ["waymark-student", "offline_access"]}}),
        # The provider's own opaque subjects; the student number travels in a claim of its own.
        Person("opaque-1", {"roles": ["student"], "student_number": ids["student"]}),
        Person("opaque-2", {"roles": ["student"], "student_number": NUMBER}),
        Person("opaque-3", {"roles": ["student"]}),
        Person("opaque-4", {"roles": ["student", "support_staff"], "infosec_training_until": 4_102_444_800}),
    ]
    with running(people, redirect_uris=[f"{BASE}/auth/callback"]) as local:
        yield local


@pytest.fixture(scope="module")
def make_client(
    served: Served, provider: LocalProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., TestClient]]:
    opened: list[TestClient] = []

    def make(mapping: str | None = None, **update: Any) -> TestClient:
        settings: dict[str, Any] = {
            "oidc_issuer": provider.issuer,
            "oidc_client_id": provider.client_id,
            "oidc_client_secret": provider.client_secret,
            "rate_limit_per_minute": 1_000_000,
        }
        if mapping is not None:
            path = tmp_path_factory.mktemp("mapping") / "roles.toml"
            path.write_text(mapping)
            settings["oidc_role_mapping_file"] = path
        client = TestClient(create_app(served.settings.model_copy(update=settings | update)), base_url=BASE)
        opened.append(client.__enter__())
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def _provider_says(authorize_url: str, sub: str) -> str:
    """The provider's part: show its form, post it as ``sub``; returns where it sends the browser back."""
    with httpx2.Client(timeout=10) as browser:
        form = browser.get(authorize_url)
        assert form.status_code == 200 and "Authorize" in form.text
        answer = browser.post(authorize_url, data={"sub": sub})
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def sign_in(client: TestClient, sub: str, *, next_page: str | None = None) -> Any:
    started = client.get("/login", params={"next": next_page} if next_page else {}, follow_redirects=False)
    assert started.status_code == 302, started.text
    back = _provider_says(started.headers["location"], sub)
    assert back.startswith(f"{BASE}/auth/callback?")
    return client.get(back, follow_redirects=False)


def _rows(served: Served, sub: str) -> list[WebSession]:
    with transaction(served.engine) as session:
        rows = list(session.scalars(select(WebSession).where(WebSession.sub == sub)))
        session.expunge_all()
        return rows


def _csrf(served: Served, sub: str) -> str:
    (row,) = _rows(served, sub)
    return row.csrf


def test_the_flow_is_the_code_flow_with_pkce_state_and_nonce(client: TestClient) -> None:
    started = client.get("/login", follow_redirects=False)
    query = parse_qs(urlsplit(started.headers["location"]).query)
    assert query["response_type"] == ["code"] and query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"][0] and query["state"][0] and query["nonce"][0]
    assert "openid" in query["scope"][0].split()
    assert query["redirect_uri"] == [f"{BASE}/auth/callback"]


def test_signing_in_starts_a_server_side_session_in_a_strict_cookie(
    served: Served, client: TestClient, ids: dict[str, str]
) -> None:
    client.cookies.clear()
    done = sign_in(client, ids["tutor"], next_page="/caseload")
    assert done.status_code == 303 and done.headers["location"] == "/caseload"
    (header,) = [h for h in done.headers.get_list("set-cookie") if h.startswith("__Host-waymark_session=")]
    attributes = {part.strip().lower() for part in header.split(";")}
    assert {"httponly", "secure", "samesite=lax", "path=/"} <= attributes
    cookie = SimpleCookie(header)["__Host-waymark_session"].value
    (row,) = _rows(served, ids["tutor"])
    assert row.id_hash == hashlib.sha256(cookie.encode()).hexdigest() and cookie not in row.id_hash
    assert row.roles == ["personal_tutor", "module_leader"] and row.active_role == "personal_tutor"
    assert row.name == "Tess Tutor" and len(row.csrf) >= 32
    page = client.get("/caseload")
    assert page.status_code == 200 and "Tess Tutor" in page.text and row.csrf in page.text
    # A page its script fills says so without JavaScript (a DPO's queue had looked empty); one that is
    # whole without it does not; and the home page is not "Waymark · Waymark".
    assert "<noscript>" in page.text and "This page needs JavaScript" in page.text
    home = client.get("/").text
    assert "<noscript>" not in home and "<title>Waymark</title>" in home
    assert client.get("/v1/caseload").status_code == 200  # the API reads the cookie, no token needed
    with transaction(served.engine) as session:  # the provider's training claim, kept for the session
        assert session.get(TrainingAttestation, ids["tutor"]) is not None
    client.post("/logout", data={"csrf": row.csrf})


def test_the_login_hint_of_a_registered_person_signs_in_with_one_click(
    served: Served, client: TestClient, ids: dict[str, str]
) -> None:
    client.cookies.clear()
    started = client.get("/login", params={"login_hint": ids["student"]}, follow_redirects=False)
    with httpx2.Client(timeout=10) as browser:
        back = browser.get(started.headers["location"]).headers["location"]  # no form shown
    done = client.get(back, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/me"  # a student starts on their page
    client.post("/logout", data={"csrf": _csrf(served, ids["student"])})


def test_roles_come_from_the_claim_the_mapping_file_names(
    served: Served, make_client: Callable[..., TestClient]
) -> None:
    grouped = make_client(GROUPS)
    assert sign_in(grouped, "grouped-1").status_code == 303
    (row,) = _rows(served, "grouped-1")
    assert row.roles == ["personal_tutor"] and row.name == "grouped-1"  # the unknown group grants nothing
    keycloak = make_client(KEYCLOAK)
    assert sign_in(keycloak, "keycloak-1").status_code == 303
    (row,) = _rows(served, "keycloak-1")
    assert row.roles == ["student"]


def test_an_account_without_a_waymark_role_is_refused_and_gets_no_session(
    served: Served, client: TestClient
) -> None:
    client.cookies.clear()
    refused = sign_in(client, "nobody-1")
    assert refused.status_code == 403 and "no Waymark role" in refused.text
    assert _rows(served, "nobody-1") == [] and "__Host-waymark_session" not in refused.headers.get(
        "set-cookie", ""
    )


def test_a_person_switches_between_their_roles(
    served: Served, client: TestClient, ids: dict[str, str]
) -> None:
    client.cookies.clear()
    sign_in(client, ids["tutor"])
    csrf = _csrf(served, ids["tutor"])
    assert client.post("/session/role", data={"role": "module_leader"}).status_code == 403  # no token
    assert _rows(served, ids["tutor"])[0].active_role == "personal_tutor"
    moved = client.post("/session/role", data={"role": "module_leader", "csrf": csrf}, follow_redirects=False)
    assert moved.status_code == 303 and _rows(served, ids["tutor"])[0].active_role == "module_leader"
    assert "as Module leader" in client.get("/").text
    refused = client.post("/session/role", data={"role": "dpo", "csrf": csrf})
    assert refused.status_code == 403 and _rows(served, ids["tutor"])[0].active_role == "module_leader"
    client.post("/logout", data={"csrf": csrf})


def test_signing_out_ends_the_session(served: Served, client: TestClient, ids: dict[str, str]) -> None:
    client.cookies.clear()
    sign_in(client, ids["student"])
    cookie = client.cookies["__Host-waymark_session"]
    refused = client.post("/logout")  # no CSRF token: nothing happens
    assert refused.status_code == 403 and len(_rows(served, ids["student"])) == 1
    out = client.post("/logout", data={"csrf": _csrf(served, ids["student"])}, follow_redirects=False)
    assert out.status_code == 303 and _rows(served, ids["student"]) == []
    assert (
        '__Host-waymark_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    )
    again = TestClient(client.app, base_url=BASE, cookies={"__Host-waymark_session": cookie})  # a copy kept
    assert again.get("/v1/me/indicator").status_code == 401
    assert again.get("/me", follow_redirects=False).headers["location"] == "/login?next=/me"


def test_a_post_from_another_site_does_not_sign_the_browser_out(
    served: Served, client: TestClient, ids: dict[str, str]
) -> None:
    """A form on another site posting to /logout arrives without the SameSite=Lax cookie: it is told to
    go home, and the browser's cookie is left alone (it had been deleted, signing the user out)."""
    cross = TestClient(client.app, base_url=BASE)  # no cookie, as the browser sends such a POST
    for path in ("/logout", "/session/role"):
        out = cross.post(path, data={"csrf": "guessed", "role": "dpo"}, follow_redirects=False)
        assert out.status_code == 303 and "set-cookie" not in out.headers, (path, out.headers)
    stale = TestClient(client.app, base_url=BASE, cookies={"__Host-waymark_session": "no-such-session"})
    out = stale.post("/logout", data={"csrf": "x"}, follow_redirects=False)
    assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]  # a dead cookie is cleared


def test_signing_out_ends_the_providers_session_too_and_comes_back_to_sign_in(
    served: Served, make_client: Callable[..., TestClient], provider: LocalProvider, ids: dict[str, str]
) -> None:
    client = make_client()
    sign_in(client, ids["student"])
    out = client.post("/logout", data={"csrf": _csrf(served, ids["student"])}, follow_redirects=False)
    assert out.status_code == 303 and _rows(served, ids["student"]) == []
    target = urlsplit(out.headers["location"])
    with httpx2.Client(timeout=10) as browser:
        advertised = browser.get(provider.issuer.rstrip("/") + "/.well-known/openid-configuration").json()
        assert f"{target.scheme}://{target.netloc}{target.path}" == advertised["end_session_endpoint"]
        query = parse_qs(target.query)
        assert query == {"client_id": [provider.client_id], "post_logout_redirect_uri": [f"{BASE}/"]}
        page = browser.get(out.headers["location"])  # the provider asks, then sends the browser back
        assert page.status_code == 200
        back = browser.post(urljoin(str(page.url), "end_session/confirm"), data={"redirect_uri": f"{BASE}/"})
        assert back.status_code == 302 and back.headers["location"] == f"{BASE}/"
    local_only = make_client(oidc_end_provider_session=False)
    sign_in(local_only, ids["student"])
    out = local_only.post("/logout", data={"csrf": _csrf(served, ids["student"])}, follow_redirects=False)
    assert out.headers["location"] == "/"


def test_an_expired_session_goes_back_to_sign_in_with_the_page_remembered(
    served: Served, client: TestClient, ids: dict[str, str]
) -> None:
    client.cookies.clear()
    sign_in(client, ids["tutor"])
    with transaction(served.engine) as session:
        session.execute(
            update(WebSession)
            .where(WebSession.sub == ids["tutor"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    page = client.get("/caseload", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/caseload"
    assert client.get("/v1/caseload").status_code == 401
    assert _rows(served, ids["tutor"]) == []  # the expired row is gone
    back = sign_in(client, ids["tutor"], next_page="/caseload")
    assert back.headers["location"] == "/caseload"
    client.post("/logout", data={"csrf": _csrf(served, ids["tutor"])})


def test_a_cookie_write_without_the_csrf_token_is_refused_and_saves_nothing(
    served: Served, client: TestClient, ids: dict[str, str]
) -> None:
    client.cookies.clear()
    sign_in(client, ids["student"])
    csrf, body = _csrf(served, ids["student"]), {"show_indicator": True}

    def stored() -> bool | None:
        with transaction(served.engine) as session:
            row = session.get(StudentPreference, ids["student"])
            return None if row is None else row.show_indicator

    before = stored()
    for headers in ({}, {"X-CSRF-Token": "not-the-token"}, {"X-CSRF-Token": ""}):
        refused = client.put("/v1/me/preferences", json=body, headers=headers)
        assert refused.status_code == 403 and "CSRF" in refused.json()["title"]
        assert stored() == before
    assert client.put("/v1/me/preferences", json=body, headers={"X-CSRF-Token": csrf}).status_code == 204
    assert stored() is True
    client.post("/logout", data={"csrf": csrf})


def test_a_request_another_site_started_reads_and_records_nothing(
    served: Served, client: TestClient, ids: dict[str, str]
) -> None:
    """A link on another site (or a sibling subdomain) carries the Lax cookie on a GET: refused before
    any read, so no access record in the tutor's name and no "new since your last visit" moves."""
    client.cookies.clear()
    sign_in(client, ids["tutor"])

    def records() -> int:
        with transaction(served.engine) as session:
            return int(session.scalar(select(func.count()).select_from(AuditRecord)) or 0)

    before = records()
    for site in ("cross-site", "same-site", "Cross-Site"):
        refused = client.get("/v1/worklist", headers={"Sec-Fetch-Site": site})
        assert refused.status_code == 403 and refused.json()["title"] == "Request from another site"
    assert records() == before
    for site in ("same-origin", "none"):  # this site's own pages; an address typed or bookmarked
        assert client.get("/v1/caseload", headers={"Sec-Fetch-Site": site}).status_code == 200
    assert records() > before
    client.post("/logout", data={"csrf": _csrf(served, ids["tutor"])})


@pytest.mark.parametrize(
    "target",
    ["https://elsewhere.example/", "//elsewhere.example/x", "/\\elsewhere.example", "javascript:x", "me"],
)
def test_only_a_path_on_this_site_is_a_place_to_return_to(client: TestClient, target: str) -> None:
    refused = client.get("/login", params={"next": target}, follow_redirects=False)
    assert refused.status_code == 400 and "location" not in refused.headers


def test_a_staff_member_without_training_signs_in_but_reads_no_student(
    served: Served, client: TestClient
) -> None:
    client.cookies.clear()
    sign_in(client, "untrained-1")
    refused = client.get("/v1/caseload")
    assert refused.status_code == 403 and "training" in refused.json()["detail"]
    client.post("/logout", data={"csrf": _csrf(served, "untrained-1")})


def test_a_callback_that_is_not_the_answer_to_our_request_is_refused(
    served: Served, client: TestClient
) -> None:
    client.cookies.clear()
    refused = client.get("/auth/callback", params={"code": "made-up", "state": "made-up"})
    assert refused.status_code == 400 and "did not complete" in refused.text
    assert "__Host-waymark_session" not in refused.headers.get("set-cookie", "")
    # An error from the query string is not shown: it would put anyone's words on the page.
    said = client.get("/auth/callback", params={"error": "Account locked: call 0800 000 000", "state": "x"})
    assert said.status_code == 400 and "0800" not in said.text and "Sign in again" in said.text


def test_bearer_tokens_work_as_before(served: Served, client: TestClient, ids: dict[str, str]) -> None:
    client.cookies.clear()
    token = mint(served.settings, "student", sub=ids["student"])
    answer = client.get("/v1/me/indicator", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    write = client.put(
        "/v1/me/preferences", json={"show_indicator": False}, headers={"Authorization": f"Bearer {token}"}
    )
    assert write.status_code == 204  # no CSRF token: a bearer token is not sent by a browser on its own
    assert client.get("/v1/me/indicator").status_code == 401


def test_without_a_client_sign_in_says_it_is_not_configured(served: Served, tmp_path: Path) -> None:
    with TestClient(create_app(served.settings), base_url=BASE) as plain:
        answer = plain.get("/login")
        assert answer.status_code == 503 and "WAYMARK_OIDC_CLIENT_ID" in answer.text
        assert plain.get("/caseload", follow_redirects=False).headers["location"] == "/login?next=/caseload"


def test_signing_in_again_replaces_the_browsers_session(
    served: Served, client: TestClient, ids: dict[str, str]
) -> None:
    client.cookies.clear()
    sign_in(client, ids["student"])
    first = client.cookies["__Host-waymark_session"]
    sign_in(client, ids["student"])
    assert client.cookies["__Host-waymark_session"] != first and len(_rows(served, ids["student"])) == 1
    client.post("/logout", data={"csrf": _csrf(served, ids["student"])})


def test_a_mapping_file_naming_a_role_waymark_does_not_know_refuses_to_start(
    served: Served, tmp_path: Path
) -> None:
    mapping = tmp_path / "roles.toml"
    mapping.write_text('claim = "roles"\n[roles]\nadmins = "superuser"\n')
    with pytest.raises(ConfigurationError, match="superuser"):
        create_app(served.settings.model_copy(update={"oidc_role_mapping_file": mapping}))


def test_a_student_reads_as_the_number_their_sign_in_carries_not_the_providers_subject(
    served: Served, make_client: Callable[..., TestClient], ids: dict[str, str]
) -> None:
    numbered = make_client(student_id_claim="student_number")
    assert sign_in(numbered, "opaque-1").status_code == 303
    (row,) = _rows(served, "opaque-1")
    assert row.student_id == ids["student"]
    own = numbered.get("/v1/me/indicator", params={"ask": "true"}).json()
    assert own["shown"] and {i["student_id"] for i in own["indicators"]} == {ids["student"]}


def test_in_a_pseudonymised_deployment_a_student_reads_and_writes_as_their_pseudonym(
    served: Served, make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    secret = tmp_path / "pseudonym.secret"
    secret.write_text("s" * 40)
    pseudonym = id_pseudonymiser(secret.read_bytes())(NUMBER)
    numbered = make_client(student_id_claim="student_number", pseudonym_secret_file=secret)
    assert sign_in(numbered, "opaque-2").status_code == 303
    (row,) = _rows(served, "opaque-2")
    assert row.student_id == pseudonym
    saved = numbered.put(
        "/v1/me/preferences", json={"show_indicator": True}, headers={"X-CSRF-Token": row.csrf}
    )
    assert saved.status_code == 204
    with transaction(served.engine) as session:
        assert session.get(StudentPreference, pseudonym) is not None  # what staff and scoring look up
        assert (
            session.get(StudentPreference, NUMBER) is None
            and session.get(StudentPreference, "opaque-2") is None
        )
    token = mint(served.settings, "student", sub="opaque-2", student_number=NUMBER)
    verifier = Verifier(
        served.settings.model_copy(
            update={"student_id_claim": "student_number", "pseudonym_secret_file": secret}
        )
    )
    assert verifier.verify(token).sub == pseudonym
    dpo = mint(served.settings, "dpo", sub="dpo-1")
    log = numbered.get(  # the DPO types the number; the log is found under the pseudonym
        "/v1/dpo/access-log", params={"student_id": NUMBER}, headers={"Authorization": f"Bearer {dpo}"}
    )
    assert log.status_code == 200 and log.json(), log.text
    # A school mentor, who has no list to pick from, types the trainee's number (it had answered 404).
    mentor = "mentor-of-" + NUMBER
    with transaction(served.engine) as session:
        session.add(
            AccessGrant(
                staff_id=mentor, relationship="placement_supervisor", scope_type="student", scope_id=pseudonym
            )
        )
        session.add(
            AccessGrant(
                staff_id=mentor, relationship="personal_tutor", scope_type="student", scope_id=pseudonym
            )
        )
        served_run = session.scalar(select(Publication.run_id))
        model = session.scalar(select(Indicator).where(Indicator.run_id == served_run).limit(1))
        assert model is not None
        copied = {c.key: getattr(model, c.key) for c in Indicator.__table__.columns if c.key != "id"}
        session.add(Indicator(**{**copied, "student_id": pseudonym}))  # the trainee's, under their pseudonym
    numbered.cookies.clear()  # the student's session: the mentor's token speaks alone
    try:
        read = numbered.get(
            f"/v1/students/{NUMBER}/engagement",
            headers={"Authorization": f"Bearer {mint(served.settings, 'placement_supervisor', sub=mentor)}"},
        )
        assert read.status_code == 200, read.text
        assert read.json()["student_id"] == pseudonym
        # and a personal tutor typing the number reads the indicator (a medical school's had been told no)
        tutor = {"Authorization": f"Bearer {mint(served.settings, 'personal_tutor', sub=mentor)}"}
        indicator = numbered.get(f"/v1/students/{NUMBER}/indicator", headers=tutor)
        assert indicator.status_code == 200, indicator.text
        assert indicator.json()["student_id"] == pseudonym
    finally:
        with transaction(served.engine) as session:
            session.execute(delete(AccessGrant).where(AccessGrant.staff_id == mentor))
            session.execute(delete(Indicator).where(Indicator.student_id == pseudonym))


def test_a_number_the_sign_in_writes_otherwise_is_read_as_the_exports_write_it(served: Served) -> None:
    """A Spanish university's federation gives urn:schac:personalUniqueID:es:DNI:42654350e for the
    records' 42654350E, and an online university's provider upper-case UUIDs for lower-case ones: each
    student was told there was no indicator for them, and their requests filed under no record."""
    settings = served.settings.model_copy(
        update={
            "student_id_claim": "schacPersonalUniqueID",
            "student_id_extract": r"^urn:schac:personalUniqueID:es:DNI:(.+)$",
            "student_id_case": "upper",
        }
    )
    verifier = Verifier(settings)
    for written in ("urn:schac:personalUniqueID:es:DNI:42654350e", "42654350e", " 42654350E "):
        token = mint(served.settings, "student", sub="opaque-5", schacPersonalUniqueID=written)
        assert verifier.verify(token).sub == "42654350E", written
    assert verifier.students.named("42654350e") == "42654350E"  # as the DPO or a tutor types it
    uuid = Verifier(served.settings.model_copy(update={"student_id_case": "lower"}))
    token = mint(served.settings, "student", sub="0B81DC42-44C2-4F6B-AF4B-288CD9E5BA08")
    assert uuid.verify(token).sub == "0b81dc42-44c2-4f6b-af4b-288cd9e5ba08"
    turkish = Verifier(served.settings.model_copy(update={"student_id_case": "turkish-upper"}))
    assert turkish.verify(mint(served.settings, "student", sub="o220201034i")).sub == "O220201034\u0130"
    with pytest.raises(ConfigurationError, match="needs a group"):
        Verifier(served.settings.model_copy(update={"student_id_extract": "^urn:.*$"}))


def test_a_student_whose_sign_in_carries_no_number_is_refused_and_staff_keep_their_other_role(
    served: Served, make_client: Callable[..., TestClient]
) -> None:
    numbered = make_client(student_id_claim="student_number")
    refused = sign_in(numbered, "opaque-3")
    assert refused.status_code == 403 and "student number" in refused.text
    assert _rows(served, "opaque-3") == []
    numbered.cookies.clear()
    assert sign_in(numbered, "opaque-4").status_code == 303
    (row,) = _rows(served, "opaque-4")
    assert row.roles == ["support_staff"] and row.student_id is None
    token = mint(served.settings, "student", sub="opaque-3")
    verifier = Verifier(served.settings.model_copy(update={"student_id_claim": "student_number"}))
    with pytest.raises(AuthError, match="student_number"):
        verifier.verify(token)


def test_a_short_pseudonym_secret_refuses_to_start(served: Served, tmp_path: Path) -> None:
    short = tmp_path / "short.secret"
    short.write_text("too short")
    with pytest.raises(ConfigurationError, match="WAYMARK_PSEUDONYM_SECRET_FILE"):
        Verifier(served.settings.model_copy(update={"pseudonym_secret_file": short}))


def test_the_student_number_claim_may_be_namespaced_and_is_read_as_the_imports_read_ids(
    served: Served,
) -> None:
    from waymark.service.security import StudentIds

    namespaced = StudentIds(
        served.settings.model_copy(update={"student_id_claim": "https://example.edu/number"})
    )
    assert namespaced.of({"https://example.edu/number": " 24100001.0 "}) == NUMBER
    nested = StudentIds(served.settings.model_copy(update={"student_id_claim": "ext.number"}))
    assert nested.of({"ext": {"number": 24100001}}) == NUMBER
    assert nested.of({"ext": {"number": "x" * 65}}) is None  # longer than any id the records carry


def test_a_signed_in_number_loses_the_characters_the_imports_took_out(served: Served) -> None:
    """A Philippine university's identity provider gives 2022-00011-MN-3, its learning platform (and so
    the imports, with replace = { "-" = "" }) 202200011MN3: its students found no record."""
    from waymark.service.security import StudentIds

    plain = StudentIds(served.settings)
    assert plain.of({"sub": "2022-00011-MN-3"}) == "2022-00011-MN-3"  # as written, unless told
    removed = StudentIds(served.settings.model_copy(update={"student_id_remove": "- "}))
    assert removed.of({"sub": " 2022-00011-MN-3 "}) == "202200011MN3"
    assert removed.written("2022 00011 mn 3") == "202200011mn3"  # a number staff type, as the imports do
    cased = StudentIds(
        served.settings.model_copy(update={"student_id_remove": "-", "student_id_case": "upper"})
    )
    assert cased.of({"sub": "2022-00011-mn-3"}) == "202200011MN3"
    # each character goes wherever it is: a letter or a digit could make one student's number another's
    with pytest.raises(ConfigurationError, match="never letters or digits"):
        StudentIds(served.settings.model_copy(update={"student_id_remove": "-MN"}))


@pytest.mark.parametrize(
    "typed",
    ["bscs/f22/015", "BSCS F22 015", "BSCS-F22-015", " bscs/f22/15 ", "23000374", "23000374.0", "0023000374",
     "2300037.00", "s/1"],
)  # fmt: skip
def test_a_signed_in_or_typed_number_takes_the_separators_and_zeros_the_imports_give(
    served: Served, typed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Pakistani university's mappings wrote roll numbers BSCS-F22-015 (replace = { "/" = "-" }), and
    staff typing BSCS/F22/015 found nobody; no setting mirrored a mapping's pad either (a sign-in
    23000374 for the records' 0023000374). The service reads a number as the mapping's SQL does."""
    import duckdb

    from waymark.models.data.contract import TABLES
    from waymark.models.settings import Settings
    from waymark.service.security import StudentIds
    from waymark.training.ingest.mapping.convert import column_sql, trimmed
    from waymark.training.ingest.mapping.schema import ColumnSpec

    monkeypatch.setenv("WAYMARK_STUDENT_ID_REPLACE", '{"/": "-", " ": "-"}')  # as JSON, in the environment
    monkeypatch.setenv("WAYMARK_STUDENT_ID_PAD", "10")
    from_env = Settings()
    assert (from_env.student_id_replace, from_env.student_id_pad) == ({"/": "-", " ": "-"}, 10)
    rules = {"student_id_case": "upper", "student_id_replace": from_env.student_id_replace}
    rules["student_id_pad"] = from_env.student_id_pad
    ids = StudentIds(served.settings.model_copy(update=rules))
    column = next(c for c in TABLES["students"].columns if c.name == "student_id")
    spec = ColumnSpec(column="x", case="upper", replace={"/": "-", " ": "-"}, pad=10)
    sql = column_sql(spec, column, cell=lambda n: trimmed(f'"{n}"'), pseudonymise=False)
    imported = duckdb.execute(f"SELECT {sql.value} FROM (SELECT CAST(? AS VARCHAR) AS x)", [typed]).fetchall()
    assert [(ids.of({"sub": typed}),)] == imported
    # only separators, each by a separator: a letter or a digit could make one student's number another's
    for wrong in ({"O": "0"}, {"-": "0"}, {"": "-"}, {"_": " "}):
        with pytest.raises(ConfigurationError, match="never letters or digits"):
            StudentIds(served.settings.model_copy(update={"student_id_replace": wrong}))


def test_a_student_session_from_before_the_upgrade_must_sign_in_again(
    served: Served, make_client: Callable[..., TestClient], ids: dict[str, str]
) -> None:
    from waymark.service import sessions

    client = make_client()
    cookie, _ = sessions.start(served.engine, sub=ids["student"], name="Old", roles=["student"], hours=1)
    client.cookies.clear()
    client.cookies.set(sessions.COOKIE, cookie)
    answer = client.get("/v1/me/consent")
    assert answer.status_code == 401 and "Sign in again" in answer.text


def test_the_name_an_identity_provider_gives_is_shown_without_control_or_direction_characters() -> None:
    """The header shows "{name}, as {role}": an override in the name would turn the role around."""
    from waymark.service.claims import display_name

    assert display_name({"name": "Erin\u202e Reviewer\u0007"}) == "Erin Reviewer"
    assert display_name({"name": "\u2067\u2069", "preferred_username": "erin"}) == "erin"  # nothing left
    assert display_name({"name": "\u0639\u0644\u064a \u200fAli"}) == "\u0639\u0644\u064a \u200fAli"  # a mark
