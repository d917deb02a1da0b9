"""The service: who may read what, tokens, the access log, students' rights, hardening and faults."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pandas as pd
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import delete, event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.champion import empty_mlflow_store
from tests.service_setup import Served, api_client, auth
from tests.vocabulary import forbidden_words
from waymark.models.explain.sentences import to_the_student
from waymark.models.settings import Settings
from waymark.service.app import create_app
from waymark.service.db.engine import transaction
from waymark.service.db.schema import AuditRecord, Indicator, TrainingAttestation, TrainingExclusion
from waymark.service.errors import WithheldTraceback
from waymark.service.grants import import_attestations
from waymark.service.security import DEV_KID, ConfigurationError, mint

# The indicator column each kind of scope names (a relationship may be given on several kinds: support
# staff on a school, or on named students).
SCOPE_COLUMN = {
    "student": "student_id",
    "module": "module_id",
    "programme": "programme_id",
    "school": "school_id",
}


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[TestClient]:
    with api_client(served) as client:
        yield client


def expected_rows(served: Served, staff: str, relationship: str) -> set[tuple[str, str, str]]:
    grants = served.access[(served.access.staff_id == staff) & (served.access.relationship == relationship)]
    covered = pd.Series(False, index=served.indicators.index)
    for scope_type, given in grants.groupby("scope_type"):
        covered |= served.indicators[SCOPE_COLUMN[str(scope_type)]].isin(given.scope_id)
    rows = served.indicators[covered]
    return set(zip(rows.student_id, rows.module_id, rows.presentation_id, strict=True))


def caseload_rows(client: TestClient, headers: dict[str, str]) -> list[tuple[str, str, str]]:
    out, offset = [], 0
    while True:
        page = client.get("/v1/caseload", params={"offset": offset, "limit": 100}, headers=headers).json()
        out += [(i["student_id"], i["module_id"], i["presentation_id"]) for i in page["items"]]
        offset += 100
        if offset >= page["total"]:
            return out


def test_every_staff_member_sees_exactly_their_caseload_in_support_priority_order(
    served: Served, client: TestClient
) -> None:
    staff = served.access[served.access.relationship != "placement_supervisor"][["staff_id", "relationship"]]
    checked = 0
    for sid, relationship in staff.drop_duplicates().itertuples(index=False):
        rows = caseload_rows(client, auth(served, relationship, sid))
        assert len(rows) == len(set(rows))
        assert set(rows) == expected_rows(served, sid, relationship), (sid, relationship)
        checked += 1
    assert checked > 20


def test_every_allowed_student_read_succeeds_and_every_other_is_refused_alike(
    served: Served, client: TestClient
) -> None:
    everyone = sorted(set(served.indicators.student_id))
    nobody = client.get(
        "/v1/students/S99999999/indicator", headers=auth(served, "personal_tutor", "x")
    ).json()
    leaks = 0
    for (sid, relationship), _ in served.access.groupby(["staff_id", "relationship"]):
        if relationship == "placement_supervisor":
            continue
        headers = auth(served, relationship, sid)
        rows = expected_rows(served, sid, relationship)
        allowed = {s for s, _, _ in rows}
        probe = sorted(allowed)[:5] + [s for s in everyone[::37] if s not in allowed][:10]
        for student in probe:
            response = client.get(f"/v1/students/{student}/indicator", headers=headers)
            if student in allowed:
                assert response.status_code == 200
                assert {(i["module_id"], i["presentation_id"]) for i in response.json()["indicators"]} == {
                    (m, p) for s, m, p in rows if s == student
                }
            else:
                leaks += response.status_code != 404 or response.json() != nobody
    assert leaks == 0


def test_roles_without_individual_access_read_no_indicator(served: Served, client: TestClient) -> None:
    student = served.indicators.student_id.iloc[0]
    for role in ("data_scientist", "ethics_reviewer", "dpo", "student", "placement_supervisor"):
        headers = auth(served, role, student if role == "student" else "someone")
        assert client.get("/v1/caseload", headers=headers).status_code == 403
        assert client.get(f"/v1/students/{student}/indicator", headers=headers).status_code == 403


def test_placement_supervisor_sees_only_a_minimal_engagement_summary(
    served: Served, client: TestClient
) -> None:
    grant = served.access[served.access.relationship == "placement_supervisor"].iloc[0]
    headers = auth(served, "placement_supervisor", grant.staff_id)
    body = client.get(f"/v1/students/{grant.scope_id}/engagement", headers=headers)
    if grant.scope_id not in set(served.indicators.student_id):
        assert body.status_code == 404
        return
    assert body.status_code == 200
    summary = body.json()["summaries"][0]
    assert set(summary) == {
        "student_id",
        "module_id",
        "presentation_id",
        "data_as_of",
        "active_days_last_14",
        "assessments_due_so_far",
        "assessments_submitted",
    }
    other = served.indicators.student_id[~served.indicators.student_id.isin([grant.scope_id])].iloc[0]
    assert client.get(f"/v1/students/{other}/engagement", headers=headers).status_code == 404


def _tutor(served: Served) -> tuple[str, str]:
    tutors = served.access[served.access.relationship == "personal_tutor"]
    tutors = tutors[tutors.scope_id.isin(served.indicators.student_id)]
    return str(tutors.staff_id.iloc[0]), str(tutors.scope_id.iloc[0])


# Tokens ---------------------------------------------------------------------------------------------------


def _claims(served: Served, **changes: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": served.settings.dev_issuer,
        "aud": served.settings.dev_issuer,
        "sub": "tutor",
        "role": "personal_tutor",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "infosec_training_until": now + 86_400,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _dev_private(served: Served) -> rsa.RSAPrivateKey:
    pem = (Path(served.settings.dev_key_dir) / "signing-key.pem").read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def _b64(value: object) -> str:
    return jwt.api_jws.base64url_encode(json.dumps(value).encode()).decode()


def _attacks(served: Served) -> dict[str, str]:
    key = _dev_private(served)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    good = jwt.encode(_claims(served), key, algorithm="RS256", headers={"kid": DEV_KID})
    head, body, _sig = good.split(".")
    unsigned = jwt.api_jws.base64url_encode(json.dumps({"alg": "none", "kid": DEV_KID}).encode()).decode()
    hs_header = jwt.api_jws.base64url_encode(
        json.dumps({"alg": "HS256", "kid": DEV_KID, "typ": "JWT"}).encode()
    )
    import hashlib
    import hmac

    signing_input = hs_header + b"." + body.encode()
    hs_sig = jwt.api_jws.base64url_encode(hmac.new(public_pem, signing_input, hashlib.sha256).digest())
    sign = lambda claims, k=key, kid=DEV_KID: jwt.encode(claims, k, algorithm="RS256", headers={"kid": kid})  # noqa: E731
    return {
        "alg none": f"{unsigned}.{body}.",
        "HS256 signed with the public key": (signing_input + b"." + hs_sig).decode(),
        "expired": sign(_claims(served, exp=int(time.time()) - 3600, nbf=int(time.time()) - 7200)),
        "not yet valid": sign(_claims(served, nbf=int(time.time()) + 3600)),
        "wrong issuer": sign(_claims(served, iss="https://evil.example")),
        "wrong audience": sign(_claims(served, aud="another-service")),
        "bad signature": sign(_claims(served), other),
        "tampered payload": f"{head}.{_b64(_claims(served, role='dpo'))}.{_sig}",
        "unknown kid": sign(_claims(served), kid="someone-elses-key"),
        "missing sub": sign(_claims(served, sub=None)),
        "missing exp": sign(_claims(served, exp=None)),
        "missing role": sign(_claims(served, role=None)),
        "unknown role": sign(_claims(served, role="superuser")),
        "garbage": "not-a-token",
    }


def test_every_token_attack_is_refused_with_401(served: Served, client: TestClient) -> None:
    results = {
        name: client.get("/v1/caseload", headers={"Authorization": f"Bearer {token}"}).status_code
        for name, token in _attacks(served).items()
    }
    assert results == dict.fromkeys(results, 401)
    assert client.get("/v1/caseload").status_code == 401


def test_a_token_in_the_url_is_not_accepted(served: Served, client: TestClient) -> None:
    token = mint(served.settings, "personal_tutor", sub="x")
    assert client.get("/v1/caseload", params={"access_token": token}).status_code == 401


def test_staff_without_current_training_attestation_get_403_with_a_reason(
    served: Served, client: TestClient, tmp_path: Path
) -> None:
    tutor, _ = _tutor(served)
    with transaction(served.engine) as session:  # as another test's sign-in may have stored it
        session.execute(delete(TrainingAttestation).where(TrainingAttestation.staff_id == tutor))
    response = client.get(
        "/v1/caseload", headers=auth(served, "personal_tutor", tutor, infosec_training_until=None)
    )
    assert response.status_code == 403
    assert "training" in response.json()["detail"]
    stored = tmp_path / "attest.csv"
    stored.write_text(f"staff_id,expires_on\n{tutor},2999-01-01\n", encoding="utf-8")
    import_attestations(served.engine, stored)
    assert (
        client.get(
            "/v1/caseload", headers=auth(served, "personal_tutor", tutor, infosec_training_until=None)
        ).status_code
        == 200
    )
    stored.write_text(f"staff_id,expires_on\n{tutor},2000-01-01\n", encoding="utf-8")
    import_attestations(served.engine, stored)
    assert (
        client.get(
            "/v1/caseload", headers=auth(served, "personal_tutor", tutor, infosec_training_until=None)
        ).status_code
        == 403
    )


# Audit ----------------------------------------------------------------------------------------------------


def _audit_count(served: Served) -> int:
    with transaction(served.engine) as session:
        return int(session.scalar(select(func.count()).select_from(AuditRecord)) or 0)


def test_every_individual_read_writes_exactly_one_audit_record_per_student(
    served: Served, client: TestClient
) -> None:
    tutor, student = _tutor(served)
    headers = {**auth(served, "personal_tutor", tutor), "Waymark-Purpose": "personal_tutoring"}
    before = _audit_count(served)
    page = client.get("/v1/caseload", params={"limit": 3}, headers=headers).json()
    students = {item["student_id"] for item in page["items"]}
    assert _audit_count(served) == before + len(students)  # one per student, not per registration
    client.get(f"/v1/students/{student}/indicator", headers=headers)
    assert _audit_count(served) == before + len(students) + 1
    client.get("/v1/students/S99999999/indicator", headers=headers)
    assert _audit_count(served) == before + len(students) + 1
    log = client.get("/v1/me/access-log", headers=auth(served, "student", student)).json()
    assert {
        "actor": tutor,
        "role": "personal_tutor",
        "purpose": "personal_tutoring",
        "action": "indicator_view",
    } in [{k: e[k] for k in ("actor", "role", "purpose", "action")} for e in log]


def test_an_answer_is_never_sent_when_its_access_record_cannot_commit(
    served: Served, client: TestClient
) -> None:
    """The read and its access-log records commit together before the response leaves, or not at all."""
    tutor, student = _tutor(served)
    headers = auth(served, "personal_tutor", tutor)

    def lost(session: Session) -> None:
        raise OperationalError("COMMIT", {}, Exception("the database went away at commit"))

    before = _audit_count(served)
    event.listen(Session, "before_commit", lost)
    try:
        refused = [
            client.get(f"/v1/students/{student}/indicator", headers=headers),
            client.get("/v1/caseload", headers=headers),
            client.get("/v1/me/export", headers=auth(served, "student", student)),
        ]
    finally:
        event.remove(Session, "before_commit", lost)
    assert [r.status_code for r in refused] == [503, 503, 503]
    assert all(student not in r.text for r in refused)
    assert _audit_count(served) == before
    assert client.get(f"/v1/students/{student}/indicator", headers=headers).status_code == 200
    assert _audit_count(served) == before + 1


def test_an_unexpected_error_is_logged_by_route_request_and_code_never_by_its_message(
    served: Served, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """An operations review's 500 was logged as "database error: ProgrammingError" alone. The log now
    says the route as declared, the request id the response carried and where in the code, and still
    never the message, which may hold a student's id."""
    tutor, student = _tutor(served)

    def broken(session: Session) -> None:
        raise KeyError(student)  # a message holding a student's id

    settings = served.settings.model_copy(update={"rate_limit_per_minute": 1_000_000})
    with (
        caplog.at_level(logging.ERROR),
        TestClient(create_app(settings), raise_server_exceptions=False) as quiet,
    ):
        event.listen(Session, "before_commit", broken)
        try:
            response = quiet.get(
                f"/v1/students/{student}/indicator", headers=auth(served, "personal_tutor", tutor)
            )
        finally:
            event.remove(Session, "before_commit", broken)
    assert response.status_code == 500
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("unexpected error")]
    assert said and "KeyError on GET /v1/students/{student_id}/indicator" in said[0], said
    assert re.search(r"\(request [0-9a-f]{32}\) at \S+\.py:\d+", said[0]), said[0]
    assert all(student not in r.getMessage() for r in caplog.records)
    # What the server logs of the same error keeps its line and loses the traceback with the message.
    server = logging.LogRecord(
        "uvicorn.error", logging.ERROR, "x", 1, "Exception in ASGI application", (), None
    )
    try:
        raise KeyError(student)
    except KeyError:
        server.exc_info = sys.exc_info()
    assert WithheldTraceback().filter(server) and server.exc_info is None
    assert student not in logging.Formatter().format(server)


# Students' rights -----------------------------------------------------------------------------------------


def test_a_student_chooses_whether_to_see_their_indicator_and_a_wellbeing_hold_yields_to_asking(
    served: Served, client: TestClient
) -> None:
    tutor, student = _tutor(served)
    me = auth(served, "student", student)
    assert client.get("/v1/me/indicator", headers=me).json()["shown"] is False
    asked = client.get("/v1/me/indicator", params={"ask": "true"}, headers=me).json()
    assert asked["shown"] is True and asked["indicators"][0]["student_id"] == student
    # What could change never shows the student a classmate's values (the peer's, in brackets for staff).
    changes = [i["what_could_change"] for i in asked["indicators"] if i["what_could_change"]]
    assert all("at this point (" not in c["sentence"] for c in changes)
    assert client.put("/v1/me/preferences", json={"show_indicator": True}, headers=me).status_code == 204
    assert client.get("/v1/me/indicator", headers=me).json()["shown"] is True
    hold = client.put(
        f"/v1/students/{student}/wellbeing-hold",
        json={"withheld": True},
        headers=auth(served, "personal_tutor", tutor),
    )
    assert hold.status_code == 204
    held = client.get("/v1/me/indicator", headers=me).json()
    # The saved choice stands (the page's box stays ticked), and the student is told it is set aside.
    assert held["shown"] is False and held["always"] is True
    assert "not shown automatically at the moment, although you chose to see it always" in held["message"]
    asked_now = client.get("/v1/me/indicator", params={"ask": "true"}, headers=me).json()
    assert "not a judgement of you" in asked_now["indicators"][0]["reading_note"]
    assert client.get("/v1/me/indicator", params={"ask": "true"}, headers=me).json()["shown"] is True


def test_a_tutor_reads_whether_a_hold_is_set_for_their_own_students_only_and_each_read_is_recorded(
    served: Served, client: TestClient
) -> None:
    """The staff page shows the hold's state beside its button, so reading it is a read of the student."""
    tutor, student = _tutor(served)
    tutor_headers = auth(served, "personal_tutor", tutor)
    url = f"/v1/students/{student}/wellbeing-hold"
    client.put(url, json={"withheld": False}, headers=tutor_headers)
    before = _audit_count(served)
    assert client.get(url, headers=tutor_headers).json() == {"withheld": False}
    assert _audit_count(served) == before + 1
    assert client.put(url, json={"withheld": True}, headers=tutor_headers).status_code == 204
    assert client.get(url, headers=tutor_headers).json() == {"withheld": True}
    with transaction(served.engine) as session:
        actions = session.scalars(
            select(AuditRecord.action)
            .where(AuditRecord.student_id == student)
            .order_by(AuditRecord.seq.desc())
        ).all()
    assert actions[:3] == ["wellbeing_hold_view", "wellbeing_hold_write", "wellbeing_hold_view"]
    others = sorted(
        set(served.indicators.student_id) - set(served.access[served.access.staff_id == tutor].scope_id)
    )
    assert client.get(f"/v1/students/{others[0]}/wellbeing-hold", headers=tutor_headers).status_code == 404
    leader = served.access[served.access.relationship == "module_leader"].staff_id.iloc[0]
    assert client.get(url, headers=auth(served, "module_leader", str(leader))).status_code == 403
    assert client.put(url, json={"withheld": False}, headers=tutor_headers).status_code == 204


THIRD_PERSON = re.compile(r"\b(this|the) student\b", re.IGNORECASE)


def test_a_students_own_indicator_speaks_to_them_not_about_them(served: Served, client: TestClient) -> None:
    """A red team read "about 52% of this student's own earlier weekly rate" on a student's own page."""
    with transaction(served.engine) as session:
        stored = session.execute(
            select(Indicator.student_id, Indicator.factors, Indicator.strengths, Indicator.context)
        ).all()
    said = {row.student_id: [i["sentence"] for items in row[1:] for i in items] for row in stored}
    everything = [s for sentences in said.values() for s in sentences]
    assert any(THIRD_PERSON.search(s) for s in everything)  # the stored sentences are written for staff
    assert not [s for s in map(to_the_student, everything) if THIRD_PERSON.search(s)]
    # Through the API, for a student whose sentences speak of "the student" to staff.
    student = next(s for s, sentences in said.items() if any(THIRD_PERSON.search(x) for x in sentences))
    own = client.get(
        "/v1/me/indicator", params={"ask": "true"}, headers=auth(served, "student", student)
    ).json()
    sentences = [
        i["sentence"]
        for ind in own["indicators"]
        for key in ("factors", "strengths", "context")
        for i in ind[key]
    ]
    assert sentences and not [s for s in sentences if THIRD_PERSON.search(s)]
    assert any(" your " in f" {s} " or s.startswith("You ") or " you" in s for s in sentences)


def test_interventions_need_consent_or_a_stated_exemption(served: Served, client: TestClient) -> None:
    tutor, student = _tutor(served)
    staff = auth(served, "personal_tutor", tutor)
    body = {"purpose": "study_skills_referral", "description": "Offer a study skills session"}
    assert client.post(f"/v1/students/{student}/interventions", json=body, headers=staff).status_code == 409
    # Free text does not stand in for consent: only an exemption of the institution's (service/outreach.toml).
    free = {**body, "exemption_reason": "Statutory duty of care: immediate welfare concern"}
    refused = client.post(f"/v1/students/{student}/interventions", json=free, headers=staff)
    assert refused.status_code == 422 and "safeguarding" in refused.json()["detail"]
    exempt = {**body, "exemption_reason": "safeguarding"}
    assert client.post(f"/v1/students/{student}/interventions", json=exempt, headers=staff).status_code == 201
    me = auth(served, "student", student)
    consent = client.put(
        "/v1/me/consent", json={"purpose": "study_skills_referral", "granted": True}, headers=me
    )
    assert consent.json()["consents"]["study_skills_referral"] is True
    assert client.post(f"/v1/students/{student}/interventions", json=body, headers=staff).status_code == 201
    actions = [e["action"] for e in client.get("/v1/me/access-log", headers=me).json()]
    assert "intervention_write_under_exemption" in actions and "intervention_write" in actions


def test_feedback_is_recorded_only_for_an_indicator_in_scope(served: Served, client: TestClient) -> None:
    tutor, student = _tutor(served)
    row = served.indicators[served.indicators.student_id == student].iloc[0]
    body = {"module_id": row.module_id, "presentation_id": row.presentation_id, "value": "useful"}
    staff = auth(served, "personal_tutor", tutor)
    assert client.post(f"/v1/students/{student}/feedback", json=body, headers=staff).status_code == 201
    assert client.post("/v1/students/S99999999/feedback", json=body, headers=staff).status_code == 404
    assert (
        client.post(
            f"/v1/students/{student}/feedback", json={**body, "value": "red"}, headers=staff
        ).status_code
        == 422
    )


def test_export_holds_the_students_data_as_json_and_csv(served: Served, client: TestClient) -> None:
    tutor, student = _tutor(served)
    me = auth(served, "student", student)
    # their tutor's read is recorded: the log holds it, whichever test ran before
    assert client.get(
        f"/v1/students/{student}/indicator", headers=auth(served, "personal_tutor", tutor)
    ).is_success
    data = client.get("/v1/me/export", headers=me).json()
    assert {r["student_id"] for r in data["indicators"]} == {student}
    assert all(r["model_name"] and r["model_version"] for r in data["indicators"])
    assert data["access_log"] and all(r["student_id"] == student for r in data["access_log"])
    # who may read them through their modules, programme or school, by kind and count (no names)
    modules = {r["module_id"] for r in data["indicators"]}
    assert data["readers"] and all(
        set(r) == {"relationship", "scope_type", "scope_id", "staff"} for r in data["readers"]
    )
    assert {r["scope_id"] for r in data["readers"] if r["scope_type"] == "module"} <= modules
    csv_text = client.get("/v1/me/export", params={"format": "csv"}, headers=me).text
    assert csv_text.splitlines()[0] == "record_type,record,field,value" and "indicators" in csv_text
    # one value per cell, nested ones named by their path (factors had been JSON inside one cell)
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert not [r for r in rows if r["value"].startswith(("[", "{"))]
    first = data["indicators"][0]
    cells = {r["field"]: r["value"] for r in rows if (r["record_type"], r["record"]) == ("indicators", "1")}
    said = lambda v: "" if v is None else str(v)  # noqa: E731
    nested = {"factors", "strengths", "context", "coverage", "engagement"}
    for field in nested:  # lists of mappings (the factors), and mappings (the coverage)
        items = first[field] if isinstance(first[field], list) else [first[field]]
        for i, item in enumerate(items, start=1):
            place = f"{field}.{i}" if isinstance(first[field], list) else field
            for key, value in item.items():
                if not isinstance(value, dict | list):
                    assert cells[f"{place}.{key}"] == said(value), (place, key)
    assert any(first[field] for field in nested)


def test_erasure_removes_analytics_keeps_the_log_and_excludes_from_training(
    served: Served, client: TestClient
) -> None:
    students = sorted(set(served.indicators.student_id))
    student, neighbour = students[-1], students[-2]
    me = auth(served, "student", student)
    request = client.post("/v1/me/erasure", json={"detail": "please erase"}, headers=me).json()
    again = client.post("/v1/me/erasure", json={"detail": "did it work?"}, headers=me)
    assert again.status_code == 409 and "already asked for erasure" in again.json()["detail"]  # one is open
    dpo = auth(served, "dpo", "dpo-1")
    assert client.get("/v1/dpo/requests", headers=dpo).status_code == 200
    assert client.post(f"/v1/dpo/erasure/{request['id']}", headers=dpo).status_code == 200
    with transaction(served.engine) as session:
        assert (
            session.scalar(select(func.count()).select_from(Indicator).where(Indicator.student_id == student))
            == 0
        )
        assert (
            session.scalar(
                select(func.count()).select_from(Indicator).where(Indicator.student_id == neighbour)
            )
            > 0
        )
        assert session.get(TrainingExclusion, student) is not None
    assert client.get("/v1/me/indicator", params={"ask": "true"}, headers=me).json()["shown"] is False
    assert client.post(f"/v1/dpo/erasure/{request['id']}", headers=dpo).status_code == 404


# Vocabulary and protected characteristics -----------------------------------------------------------------


def test_no_response_carries_a_protected_characteristic_or_a_word_never_shown(
    served: Served, client: TestClient, synth_dir: Path
) -> None:
    protected = pd.read_parquet(synth_dir / "protected_characteristics.parquet").astype(str)
    values = {v for c in protected.columns if c != "student_id" for v in protected[c].dropna() if len(v) >= 4}
    names = {c for c in protected.columns if c != "student_id"}
    tutor, student = _tutor(served)
    bodies = [
        client.get("/v1/caseload", params={"limit": 100}, headers=auth(served, "personal_tutor", tutor)).text,
        client.get(f"/v1/students/{student}/indicator", headers=auth(served, "personal_tutor", tutor)).text,
        client.get("/v1/me/export", headers=auth(served, "student", student)).text,
        client.get("/v1/transparency").text,
        client.get("/openapi.json").text,
    ]
    for school in served.access[served.access.relationship == "support_staff"].staff_id.unique()[:3]:
        bodies.append(
            client.get(
                "/v1/caseload", params={"limit": 100}, headers=auth(served, "support_staff", school)
            ).text
        )
    for text in bodies:
        assert forbidden_words(text) == []
        assert not [n for n in names if f'"{n}"' in text]
        assert not [v for v in values if f'"{v}"' in text]


# Hardening and faults -------------------------------------------------------------------------------------


def test_responses_carry_security_headers_and_problem_details(served: Served, client: TestClient) -> None:
    response = client.get("/v1/students/x/indicator")
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-request-id"]
    assert (
        "access-control-allow-origin"
        not in client.options(
            "/v1/caseload", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
        ).headers
    )


def test_oversized_bodies_and_page_sizes_are_refused(served: Served, client: TestClient) -> None:
    tutor, student = _tutor(served)
    staff = auth(served, "personal_tutor", tutor)
    huge = {"purpose": "outreach_contact", "description": "x" * 20_000}
    assert client.post(f"/v1/students/{student}/interventions", json=huge, headers=staff).status_code == 413
    assert client.get("/v1/caseload", params={"limit": 10_000}, headers=staff).status_code == 422


def test_each_identity_is_rate_limited(served: Served) -> None:
    settings = served.settings.model_copy(update={"rate_limit_per_minute": 5})
    with TestClient(create_app(settings)) as limited:
        headers = auth(served, "personal_tutor", "t")
        codes = [limited.get("/v1/caseload", headers=headers).status_code for _ in range(7)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
        assert limited.get("/v1/caseload", headers=auth(served, "personal_tutor", "u")).status_code == 200


def test_database_unavailable_gives_503_and_writes_nothing(served: Served, tmp_path: Path) -> None:
    settings = served.settings.model_copy(update={"database_url": f"sqlite:///{tmp_path}/missing/dir/x.db"})
    with TestClient(create_app(settings)) as down:
        response = down.get("/v1/caseload", headers=auth(served, "personal_tutor", "t"))
        assert response.status_code == 503 and "database" in response.json()["detail"]
        assert down.get("/health").status_code == 503


def test_without_an_approved_champion_indicators_are_not_available(served: Served, tmp_path: Path) -> None:
    settings = served.settings.model_copy(update={"mlflow_tracking_uri": empty_mlflow_store(tmp_path)})
    tutor, student = _tutor(served)
    with TestClient(create_app(settings)) as bare:
        headers = auth(served, "personal_tutor", tutor)
        caseload = bare.get("/v1/caseload", headers=headers).json()
        assert caseload["available"] is False and caseload["items"] == []
        assert bare.get(f"/v1/students/{student}/indicator", headers=headers).status_code == 404
        assert bare.get("/health").json()["model"] == "not available"


def test_outside_development_the_service_refuses_to_start_without_oidc(served: Served) -> None:
    with pytest.raises(ConfigurationError, match="WAYMARK_OIDC_ISSUER"):
        create_app(served.settings.model_copy(update={"env": "production"}))


def test_health_and_metrics(served: Served, client: TestClient) -> None:
    assert client.get("/health").json()["database"] == "ok"
    metrics = client.get("/metrics").text
    assert "waymark_http_requests_total" in metrics and "tutor" not in metrics


def test_ethics_reviewers_read_reports_and_record_decisions_others_cannot(
    served: Served, client: TestClient
) -> None:
    reviewer = auth(served, "ethics_reviewer", "rev-1")
    reports = client.get("/v1/fairness/reports", headers=reviewer).json()
    assert any(r["champion"] and r["fairness_gate"] == "pass" for r in reports)
    tutor, _ = _tutor(served)
    assert (
        client.get("/v1/fairness/reports", headers=auth(served, "personal_tutor", tutor)).status_code == 403
    )
    version = reports[0]["version"]
    read = client.get(reports[0]["report_url"], headers=reviewer).json()
    decision = client.post(
        f"/v1/models/{reports[0]['name']}/versions/{version}/review",
        json={"approve": True, "note": "reviewed again by the committee", "audit_id": read["audit_id"]},
        headers=reviewer,
    )
    assert decision.status_code == 200 and decision.json()["ethics_reviewer"] == "rev-1"
    refused = client.post(
        f"/v1/models/{reports[0]['name']}/versions/{version}/review",
        json={"approve": True, "note": "n", "audit_id": read["audit_id"]},
        headers=auth(served, "personal_tutor", tutor),
    )
    assert refused.status_code == 403


def test_a_reviewer_whose_token_was_used_as_a_data_scientists_cannot_approve(
    served: Served, client: TestClient
) -> None:
    """A bearer token names one role: a person holding two is seen as both where each is used."""
    reports = client.get("/v1/fairness/reports", headers=auth(served, "data_scientist", "both-1")).json()
    name, version = reports[0]["name"], reports[0]["version"]
    reviewer = auth(served, "ethics_reviewer", "both-1")
    read = client.get(reports[0]["report_url"], headers=reviewer).json()
    refused = client.post(
        f"/v1/models/{name}/versions/{version}/review",
        json={"approve": True, "note": "my own model", "audit_id": read["audit_id"]},
        headers=reviewer,
    )
    assert refused.status_code == 409 and "data scientist's role" in refused.json()["detail"]
    history = client.get(f"/v1/models/{name}/decisions", headers=reviewer).json()
    assert history and all(d["actor"] != "both-1" for d in history)


def test_a_reviewer_whose_token_lists_the_data_scientists_role_too_cannot_approve(
    served: Served, client: TestClient
) -> None:
    """Identity providers put every role a person holds in the token (Entra ID's ``roles``): read through
    the institution's role mapping, it refuses the approval before that role is ever used."""
    both = ["ethics_reviewer", "data_scientist"]
    token = mint(served.settings, "ethics_reviewer", sub="both-2", roles=both)
    reviewer = {"Authorization": f"Bearer {token}"}
    reports = client.get("/v1/fairness/reports", headers=reviewer).json()
    name, version = reports[0]["name"], reports[0]["version"]
    read = client.get(reports[0]["report_url"], headers=reviewer).json()
    body = {"approve": True, "note": "my own model", "audit_id": read["audit_id"]}
    refused = client.post(f"/v1/models/{name}/versions/{version}/review", json=body, headers=reviewer)
    assert refused.status_code == 409 and "as their sign-in says" in refused.json()["detail"]
    alone = {"Authorization": f"Bearer {mint(served.settings, 'ethics_reviewer', sub='both-2')}"}
    again = client.post(f"/v1/models/{name}/versions/{version}/review", json=body, headers=alone)
    assert again.status_code == 409  # reading the reports with it recorded the role: refused without it too
    assert "has held the data scientist's role" in again.json()["detail"]


def test_transparency_statement_is_public_and_names_who_sees_what(client: TestClient) -> None:
    body = client.get("/v1/transparency").json()
    assert body["who_sees_what"]["dpo"].endswith("not indicators")
    assert body["data_sources"] and body["how_to_read"]


def test_settings_in_development_mint_tokens_and_production_refuses(tmp_path: Path) -> None:
    prod = Settings(WAYMARK_ENV="production", WAYMARK_DEV_KEY_DIR=str(tmp_path))
    with pytest.raises(ConfigurationError):
        mint(prod, "student", sub="s")


def test_retention_removes_only_what_is_older_than_the_period(served: Served, client: TestClient) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from waymark.service.db.schema import ScoringRun

    with transaction(served.engine) as session:
        old = ScoringRun(
            target="not_completing",
            model_name="waymark-not-completing",
            model_version="0",
            bundle_sha256="0" * 64,
            data_fingerprint="0" * 64,
            data_as_of="2000-01-01",
            status="complete",
            students=3,
            started_at=datetime(2000, 1, 1, tzinfo=UTC),
        )
        session.add(old)
        session.flush()
        rows = session.scalars(select(Indicator).limit(3)).all()
        copies = [
            {c.key: getattr(r, c.key) for c in Indicator.__table__.columns} | {"run_id": old.id} for r in rows
        ]
        session.execute(insert(Indicator), copies)
    before = client.get(
        "/v1/caseload",
        headers=auth(
            served,
            "support_staff",
            str(served.access[served.access.relationship == "support_staff"].staff_id.iloc[0]),
        ),
    ).json()["total"]
    result = client.post("/v1/dpo/retention", headers=auth(served, "dpo", "dpo-1")).json()
    assert result["runs"] == 1 and result["indicators"] == 3 and result["feedback"] == 0
    after = client.get(
        "/v1/caseload",
        headers=auth(
            served,
            "support_staff",
            str(served.access[served.access.relationship == "support_staff"].staff_id.iloc[0]),
        ),
    ).json()["total"]
    assert after == before > 0


def test_out_of_range_identifiers_are_refused_not_crashed_on(served: Served, client: TestClient) -> None:
    # Found by schemathesis: an integer beyond 64 bits reached SQLite and raised OverflowError.
    dpo = auth(served, "dpo", "dpo-1")
    assert client.post("/v1/dpo/erasure/99999999999999999999", headers=dpo).status_code == 422


def test_the_dpo_checks_the_whole_access_log_from_the_pages_and_no_one_else_can(
    served: Served, client: TestClient
) -> None:
    """The DPO's page verifies the chain as `waymark access-log verify` does; staff and students cannot."""
    dpo = auth(served, "dpo", "dpo-1")
    student = str(served.indicators["student_id"].iloc[0])
    assert client.get("/v1/dpo/access-log", params={"student_id": student}, headers=dpo).status_code == 200
    found = client.get("/v1/dpo/access-log/verification", headers=dpo)
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["intact"] is True and body["problems"] == [] and body["records"] > 0
    tutor = str(served.access.loc[served.access.relationship == "personal_tutor", "staff_id"].iloc[0])
    for role, sub in (("personal_tutor", tutor), ("student", "S-nobody")):
        refused = client.get("/v1/dpo/access-log/verification", headers=auth(served, role, sub))
        assert refused.status_code == 403
