"""Bad input and database faults on every backend: refused before the database, mapped to honest statuses."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from httpx import Response
from pydantic import TypeAdapter
from sqlalchemy import func, select

from tests.service_setup import Served
from waymark.service.app import create_app
from waymark.service.db.engine import transaction
from waymark.service.db.schema import AuditRecord, Consent, StudentPreference, TrainingAttestation
from waymark.service.schemas import LongNote, is_identifier
from waymark.service.security import ROLES, mint

NUL = "a\x00b"
ID_WIDTH = 64  # service/db/schema.py: ID = String(64)
REFUSED_UNREAD = {401, 403, 422}  # what may answer a bad value: never found, never accepted
Operation = tuple[str, str, dict[str, Any]]  # method, path, OpenAPI operation


@pytest.fixture(scope="module")
def app(served: Served) -> Iterator[FastAPI]:
    app = create_app(served.settings.model_copy(update={"rate_limit_per_minute": 1_000_000}))
    yield app
    app.state.runtime.close()  # some tests send requests without starting it (no lifespan to close it)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def identities(served: Served) -> dict[str, dict[str, str]]:
    """Every role (staff with a current training attestation) and nobody signed in."""
    signed = {
        role: {"Authorization": f"Bearer {mint(served.settings, role, sub=f'input-{role}')}"}
        for role in ROLES
    }
    return {**signed, "unauthenticated": {}}


# Walking the schema -----------------------------------------------------------------------------------------


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return _resolve(spec, spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]])
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    return _resolve(spec, options[0]) if options else schema


def _valid(schema: dict[str, Any]) -> Any:
    """A value the schema accepts, so that only the value under test is wrong."""
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return True
    pattern = schema.get("pattern")
    return "1" if pattern and not re.search(pattern, "x") else "x"


def _operations(spec: dict[str, Any]) -> list[Operation]:
    return [(method, path, op) for path, ops in spec["paths"].items() for method, op in ops.items()]


def _parameters(spec: dict[str, Any], op: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], bool]]:
    """(where, name, schema, required) of every parameter and JSON body field."""
    found = [
        (p["in"], p["name"], _resolve(spec, p["schema"]), p.get("required", False))
        for p in op.get("parameters", [])
    ]
    body = op.get("requestBody", {}).get("content", {}).get("application/json")
    if body:
        schema = _resolve(spec, body["schema"])
        found += [
            ("body", name, _resolve(spec, field), name in schema.get("required", []))
            for name, field in schema.get("properties", {}).items()
        ]
    return found


def _request(
    client: TestClient,
    spec: dict[str, Any],
    method: str,
    path: str,
    op: dict[str, Any],
    target: tuple[str, str],
    bad: str,
    headers: dict[str, str],
) -> tuple[int, str]:
    values: dict[str, dict[str, Any]] = {"path": {}, "query": {}, "header": {}, "body": {}}
    for where, name, schema, required in _parameters(spec, op):
        if (where, name) == target:
            values[where][name] = bad
        elif required:  # optional inputs stay out: only the value under test is wrong
            values[where][name] = _valid(schema)
    url = path.format(**{k: quote(str(v), safe="") for k, v in values["path"].items()})
    response = client.request(
        method,
        url,
        params=values["query"],
        headers={**headers, **{k: str(v) for k, v in values["header"].items()}},
        json=values["body"] if "requestBody" in op else None,
    )
    return response.status_code, response.text


def _bad_values(where: str, schema: dict[str, Any]) -> list[str]:
    values = ["a" * (ID_WIDTH + 1)]
    if where != "header":  # a NUL never survives HTTP header parsing; uvicorn refuses it before the app
        values.append(NUL)
    if schema.get("maxLength", 0) > ID_WIDTH:
        values.append("a" * (schema["maxLength"] + 1))
    return values


def _refused_alike(statuses: dict[str, tuple[int, str]], name: str) -> None:
    """Nobody gets the value accepted or read; whoever may call the endpoint is told which input is wrong."""
    assert {status for status, _ in statuses.values()} <= REFUSED_UNREAD, statuses
    told = [text for status, text in statuses.values() if status == 422]
    assert told and all(name.lower() in text.lower() for text in told), statuses


def test_every_string_input_declares_its_length_and_characters(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    loose = [
        f"{method.upper()} {path} {where}.{name}"
        for method, path, op in _operations(spec)
        for where, name, schema, _ in _parameters(spec, op)
        if schema.get("type") == "string" and "enum" not in schema
        if schema.get("format") != "date"  # parsed as an ISO date: anything else is refused whole
        if "maxLength" not in schema or "pattern" not in schema
    ]
    assert loose == []


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)  # FastAPI >= 0.16x keeps included routers nested
        if included is not None:
            yield from _api_routes(included.routes)


def test_routes_outside_the_schema_take_no_parameters(app: FastAPI) -> None:
    # The pages are served without the schema; none may take input that could reach the database.
    hidden = [r for r in _api_routes(app.routes) if not r.include_in_schema]
    assert {"/", "/caseload", "/me"} <= {r.path for r in hidden}
    assert all(
        not (r.dependant.path_params or r.dependant.query_params or r.dependant.body_params) for r in hidden
    )


def test_nul_bytes_and_over_long_values_are_refused_before_the_database_on_every_route(
    client: TestClient, identities: dict[str, dict[str, str]]
) -> None:
    spec = client.get("/openapi.json").json()
    checked = 0
    for method, path, op in _operations(spec):
        for where, name, schema, _ in _parameters(spec, op):
            for bad in _bad_values(where, schema):
                statuses = {
                    who: _request(client, spec, method, path, op, (where, name), bad, headers)
                    for who, headers in identities.items()
                }
                assert max(status for status, _ in statuses.values()) < 500, (method, path, name, statuses)
                if bad == NUL or len(bad) > schema.get("maxLength", ID_WIDTH):
                    _refused_alike(statuses, name)
                checked += 1
    assert checked > 40  # every route was walked, not an empty schema


def test_the_classic_nul_requests_are_422_not_503(
    served: Served, client: TestClient, identities: dict[str, dict[str, str]]
) -> None:
    tutor = identities["personal_tutor"]
    for url in ("/v1/caseload?module_id=%00", "/v1/students/%00/indicator"):
        response = client.get(url, headers=tutor)
        assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
        assert "not allowed" in response.json()["detail"]


def test_a_token_whose_subject_could_not_be_stored_is_refused(served: Served, client: TestClient) -> None:
    for sub in ("s\x00", "s" * (ID_WIDTH + 1), "s\ud800"):  # a lone surrogate cannot be encoded to store
        token = mint(served.settings, "student", sub=sub)
        response = client.get("/v1/me/consent", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401


def test_a_direction_override_is_refused_in_an_id_and_in_free_text(
    served: Served, client: TestClient, identities: dict[str, dict[str, str]]
) -> None:
    """Shown as a decision's actor, in a student's access log or, for an override reason, on the public
    transparency statement, an override turns the text after it around (a reviewer's finding)."""
    tutor = identities["personal_tutor"]
    turned = quote("S1\u202e9")
    response = client.get(f"/v1/students/{turned}/indicator", headers=tutor)
    assert response.status_code == 422 and "direction override" in response.json()["detail"]
    for sub in ("tutor\u202e1", "tutor\u20671"):  # an identity provider's subject, as the actor
        token = mint(served.settings, "personal_tutor", sub=sub)
        assert client.get("/v1/caseload", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    body = {"detail": "please correct my name: \u202eilA"}
    refused = client.post("/v1/me/rectification", json=body, headers=identities["student"])
    assert refused.status_code == 422 and "direction override" in refused.json()["detail"]
    # the embeddings right-to-left writing brings with it stay allowed in free text, not in an id
    assert TypeAdapter(LongNote).validate_python("\u202bعلي\u202c") == "\u202bعلي\u202c"
    assert not is_identifier("S\u202b1")


# Database errors --------------------------------------------------------------------------------------------


def _fault(served: Served, work: Callable[[Any], None]) -> Response:
    """POST /fault of the real application plus that route, doing ``work`` in a real transaction of the
    served database (the application started and stopped, so its connections are closed)."""
    app = create_app(served.settings)

    def fault() -> None:
        with transaction(served.engine) as session:
            work(session)

    app.add_api_route("/fault", fault, methods=["POST"])
    with TestClient(app) as client:
        return client.post("/fault")


def test_a_conflicting_write_is_409_and_stores_nothing(served: Served) -> None:
    from datetime import UTC, datetime

    def twice(session: Any) -> None:
        for _ in range(2):
            session.add(TrainingAttestation(staff_id="conflict-1", expires_at=datetime.now(UTC)))
            session.flush()
            session.expunge_all()

    response = _fault(served, twice)
    assert response.status_code == 409 and response.json()["title"] == "Conflict"
    with transaction(served.engine) as session:
        assert session.get(TrainingAttestation, "conflict-1") is None


def test_a_value_the_database_cannot_store_is_422(served: Served) -> None:
    if served.engine.dialect.name == "sqlite":
        pytest.skip("SQLite stores any length in a VARCHAR(64); PostgreSQL raises DataError")
    from datetime import UTC, datetime

    def too_long(session: Any) -> None:
        session.add(TrainingAttestation(staff_id="x" * (ID_WIDTH + 1), expires_at=datetime.now(UTC)))
        session.flush()

    response = _fault(served, too_long)
    assert response.status_code == 422 and "nothing was changed" in response.json()["detail"]


def _port_where_nothing_listens() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_postgresql_server_that_is_not_listening_gives_503(served: Served) -> None:
    port = _port_where_nothing_listens()
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/waymark?connect_timeout=2"
    with TestClient(create_app(served.settings.model_copy(update={"database_url": url}))) as down:
        response = down.get("/v1/me/consent", headers={"Authorization": f"Bearer {_student(served)}"})
        assert response.status_code == 503 and response.headers["retry-after"]
        assert "not reachable" in response.json()["detail"]
        assert down.get("/health").json()["database"] == "unavailable"


def _student(served: Served, sub: str = "input-student") -> str:
    return mint(served.settings, "student", sub=sub)


def _bearer(served: Served, student: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {_student(served, student)}"}


# Concurrent first writes -----------------------------------------------------------------------------------


def _at_once(app: FastAPI, calls: list[Callable[[TestClient], int]]) -> list[int]:
    """Run ``calls`` in threads released together, each with its own client; their statuses."""
    barrier = threading.Barrier(len(calls))
    statuses = [0] * len(calls)

    def run(i: int) -> None:
        client = TestClient(app)
        barrier.wait()
        statuses[i] = calls[i](client)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def _consent(auth: dict[str, str], granted: bool, client: TestClient) -> int:
    body = {"purpose": "outreach_contact", "granted": granted}
    return client.put("/v1/me/consent", json=body, headers=auth).status_code


def _preference(auth: dict[str, str], show: bool, client: TestClient) -> int:
    return client.put("/v1/me/preferences", json={"show_indicator": show}, headers=auth).status_code


def test_concurrent_first_consent_and_preference_writes_all_succeed(served: Served, app: FastAPI) -> None:
    # Start the access log first: the very first audit record of a new database races on its own
    # (the chain's head row), which is not what this test is about.
    started = TestClient(app).get("/v1/me/consent", headers=_bearer(served, "first-write-log"))
    assert started.status_code == 200
    students = [f"first-write-{i}" for i in range(6)]
    for student in students:
        auth = _bearer(served, student)
        consents = [partial(_consent, auth, i % 2 == 0) for i in range(4)]
        preferences = [partial(_preference, auth, i % 2 == 0) for i in range(4)]
        assert _at_once(app, consents + preferences) == [200] * 4 + [204] * 4
    with transaction(served.engine) as session:
        for model in (Consent, StudentPreference):
            count = select(func.count()).select_from(model).where(model.student_id.in_(students))
            assert session.scalar(count) == len(students)  # one row each, whoever won
        logged = select(func.count()).select_from(AuditRecord).where(AuditRecord.student_id.in_(students))
        assert session.scalar(logged) == 8 * len(students)  # every write succeeded and was logged once


# Bodies the JSON reader cannot take, and requests no route answers ------------------------------------------


def _problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


@pytest.mark.parametrize(
    "body",
    [b'{"purpose": "outreach_contact", "granted": true, "x": "\xff\xfe"}', b"[" * 100_000 + b"]" * 100_000,
     b'{"purpose": ' + b"9" * 5_000 + b"}", b'{"purpose": "outreach_contact", "granted": tru'],
    ids=["not-utf-8", "nested-deeper-than-the-reader-goes", "a-5000-digit-number", "cut-short"],
)  # fmt: skip
def test_a_body_the_json_reader_cannot_take_is_a_problem_not_a_crash(
    client: TestClient, identities: dict[str, dict[str, str]], body: bytes
) -> None:
    headers = {**identities["student"], "content-type": "application/json"}
    response = client.put("/v1/me/consent", content=body, headers=headers)
    assert response.status_code in {400, 413, 422}, response.text
    _problem(response, response.status_code)


def test_a_chunked_body_over_the_limit_is_413_like_a_declared_one(
    served: Served, client: TestClient, identities: dict[str, dict[str, str]]
) -> None:
    def chunks() -> Iterator[bytes]:  # no content-length: the size is known only while reading
        yield b'{"detail": "'
        for _ in range(served.settings.max_body_bytes // 1024 + 2):
            yield b"x" * 1024
        yield b'"}'

    response = client.post("/v1/me/rectification", content=chunks(), headers=identities["student"])
    assert "too large" in _problem(response, 413)["title"].lower()


def test_an_unknown_route_and_an_unknown_method_are_problems(
    client: TestClient, identities: dict[str, dict[str, str]]
) -> None:
    _problem(client.get("/v1/no-such-thing", headers=identities["student"]), 404)
    _problem(client.delete("/v1/me/consent", headers=identities["student"]), 405)
