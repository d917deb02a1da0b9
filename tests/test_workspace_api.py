"""The directory and outreach through the API: in scope only, audited, kept, erased, exported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.champion import Champion
from tests.service_setup import Served, backends, serve_cohort
from tests.vocabulary import forbidden_words
from waymark.models.data import load_learning_data
from waymark.models.features import build_features
from waymark.service.app import create_app
from waymark.service.db.engine import transaction
from waymark.service.db.schema import AuditRecord, Contact, ContactEvent, DirectoryEntry
from waymark.service.directory import import_directory
from waymark.service.security import mint


@pytest.fixture(scope="module", params=backends())
def own(
    request: pytest.FixtureRequest,
    champion: Champion,
    synth_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    served = serve_cohort(
        champion, synth_dir, request.param, tmp_path_factory.mktemp(f"workspace-{request.param}")
    )
    import_directory(served.engine, synth_dir / "directory.csv", known=None)
    yield served
    served.engine.dispose()


@pytest.fixture(scope="module")
def client(own: Served) -> Iterator[TestClient]:
    settings = own.settings.model_copy(update={"rate_limit_per_minute": 1_000_000})
    with TestClient(create_app(settings)) as client:
        yield client


def auth(served: Served, role: str, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(served.settings, role, sub=sub)}"}


def _team(served: Served) -> tuple[str, str, str]:
    """A personal tutor, one of their students, and a module leader of one of that student's modules."""
    grants = served.access
    leaders = grants[grants.relationship == "module_leader"]
    tutors = grants[
        (grants.relationship == "personal_tutor") & grants.scope_id.isin(served.indicators.student_id)
    ]
    for tutor, student in zip(tutors.staff_id, tutors.scope_id, strict=True):
        modules = set(served.indicators[served.indicators.student_id == student].module_id)
        found = leaders[leaders.scope_id.isin(modules)]
        if len(found):
            return str(tutor), str(student), str(found.staff_id.iloc[0])
    raise AssertionError("the synthetic cohort has a tutor whose student's module has a leader")


def _records(served: Served, student: str, action: str) -> int:
    with transaction(served.engine) as session:
        query = select(func.count()).select_from(AuditRecord)
        return int(
            session.scalar(query.where(AuditRecord.student_id == student, AuditRecord.action == action)) or 0
        )


def _entry(served: Served, student: str) -> dict[str, str | None]:
    with transaction(served.engine) as session:
        entry = session.get(DirectoryEntry, student)
        assert entry is not None
        return {
            "display_name": entry.display_name,
            "preferred_name": entry.preferred_name,
            "pronouns": entry.pronouns,
            "email": entry.email,
        }


def test_staff_see_the_name_and_contact_of_students_in_scope_only(own: Served, client: TestClient) -> None:
    tutor, student, _leader = _team(own)
    headers = auth(own, "personal_tutor", tutor)
    indicator = client.get(f"/v1/students/{student}/indicator", headers=headers).json()
    assert indicator["directory"] == _entry(own, student)
    page = client.get("/v1/caseload", params={"limit": 100}, headers=headers).json()
    named = {i["student_id"]: i["name"] for i in page["items"]}
    expected = _entry(own, student)
    assert named[student] == (expected["preferred_name"] or expected["display_name"])
    outsider = next(s for s in sorted(set(own.indicators.student_id)) if s not in named)
    refused = client.get(f"/v1/students/{outsider}/indicator", headers=headers)
    assert refused.status_code == 404
    assert _entry(own, outsider)["email"] not in refused.text


def test_a_student_sees_their_own_entry_and_the_read_is_logged(own: Served, client: TestClient) -> None:
    _tutor, student, _leader = _team(own)
    before = _records(own, student, "directory_view")
    mine = client.get("/v1/me/directory", headers=auth(own, "student", student))
    assert mine.json() == _entry(own, student)
    assert _records(own, student, "directory_view") == before + 1


def test_the_directory_never_reaches_learning_data_or_features(synth_dir: Path) -> None:
    emails = set(_emails(synth_dir))
    data = load_learning_data(synth_dir)
    for name, frame in {**data.tables(), "features": build_features(data, (4,))}.items():
        assert not {"display_name", "preferred_name", "pronouns", "email"} & set(frame.columns), name
        text = frame.astype(str).to_numpy().ravel()
        assert not emails & set(text), name


def _emails(folder: Path) -> list[str]:
    lines = (folder / "directory.csv").read_text(encoding="utf-8").splitlines()[1:]
    return [line.rsplit(",", 1)[1] for line in lines[:200]]


def test_outreach_is_recorded_with_its_basis_followed_up_and_seen_by_the_team(
    own: Served, client: TestClient
) -> None:
    tutor, student, leader = _team(own)
    headers = auth(own, "personal_tutor", tutor)
    options = client.get("/v1/outreach/options", headers=headers).json()
    assert "email" in [c["key"] for c in options["channels"]]
    assert "safeguarding" in [e["key"] for e in options["exemptions"]]
    body = {"channel": "email", "purpose": "outreach_contact", "follow_up_on": "2026-12-14", "note": "first"}
    refused = client.post(f"/v1/students/{student}/contacts", json=body, headers=headers)
    assert refused.status_code == 409 and "exemption" in refused.json()["detail"]
    free_text = client.post(
        f"/v1/students/{student}/contacts", json={**body, "exemption": "I judged it best"}, headers=headers
    )
    assert free_text.status_code == 422 and free_text.json()["detail"].startswith("body.exemption:")
    wrong_channel = client.post(
        f"/v1/students/{student}/contacts", json={**body, "channel": "fax"}, headers=headers
    )
    assert wrong_channel.status_code == 422 and "body.channel" in wrong_channel.json()["detail"]
    with transaction(own.engine) as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 0
    me = auth(own, "student", student)
    client.put("/v1/me/consent", json={"purpose": "outreach_contact", "granted": True}, headers=me)
    made = client.post(f"/v1/students/{student}/contacts", json=body, headers=headers)
    assert made.status_code == 201
    contact = made.json()
    assert (contact["basis"], contact["status"], contact["staff_id"]) == ("consent", "to_contact", tutor)
    url = f"/v1/students/{student}/contacts/{contact['id']}"
    assert client.patch(url, json={"status": "contacted"}, headers=headers).status_code == 200
    assert client.patch(url, json={"status": "closed"}, headers=headers).status_code == 422
    closed = client.patch(
        url, json={"status": "closed", "outcome": "agreed_action", "clear_follow_up": True}, headers=headers
    ).json()
    assert (closed["status"], closed["outcome"], closed["follow_up_on"]) == ("closed", "agreed_action", None)
    assert [s["status"] for s in closed["history"]] == ["to_contact", "contacted", "closed"]
    team = client.get(f"/v1/students/{student}/contacts", headers=auth(own, "module_leader", leader)).json()
    assert [c["id"] for c in team] == [contact["id"]]
    assert _records(own, student, "contact_write") == 1
    assert _records(own, student, "contact_update") == 2
    assert _records(own, student, "contacts_view") == 1
    assert not forbidden_words(json.dumps([options, team]))


def test_outreach_outside_the_callers_scope_is_refused_as_if_the_student_did_not_exist(
    own: Served, client: TestClient
) -> None:
    tutor, _student, _leader = _team(own)
    headers = auth(own, "personal_tutor", tutor)
    page = client.get("/v1/caseload", params={"limit": 100}, headers=headers).json()
    outsider = next(
        s for s in sorted(set(own.indicators.student_id)) if s not in {i["student_id"] for i in page["items"]}
    )
    body = {"channel": "email", "purpose": "outreach_contact", "exemption": "safeguarding"}
    assert client.post(f"/v1/students/{outsider}/contacts", json=body, headers=headers).status_code == 404
    assert client.get(f"/v1/students/{outsider}/contacts", headers=headers).status_code == 404
    assert client.get("/v1/outreach/options", headers=auth(own, "student", outsider)).status_code == 403


def test_export_holds_and_erasure_removes_the_directory_entry_and_contacts(
    own: Served, client: TestClient
) -> None:
    tutor, student, _leader = _team(own)
    headers = auth(own, "personal_tutor", tutor)
    body = {"channel": "phone", "purpose": "study_skills_referral", "exemption": "safeguarding"}
    assert client.post(f"/v1/students/{student}/contacts", json=body, headers=headers).status_code == 201
    me = auth(own, "student", student)
    exported = client.get("/v1/me/export", headers=me).json()
    assert exported["directory"][0]["email"] == _entry(own, student)["email"]
    assert {c["channel"] for c in exported["contacts"]} >= {"phone"}
    assert len(exported["contact_history"]) >= len(exported["contacts"])
    request = client.post("/v1/me/erasure", json={"detail": "please"}, headers=me).json()
    assert (
        client.post(f"/v1/dpo/erasure/{request['id']}", headers=auth(own, "dpo", "dpo-1")).status_code == 200
    )
    with transaction(own.engine) as session:
        for model in (DirectoryEntry, Contact, ContactEvent):
            query = select(func.count()).select_from(model).where(model.student_id == student)
            assert session.scalar(query) == 0, model.__tablename__
    again = import_directory(own.engine, own.folder / "directory.csv", known=None)
    assert again.skipped_erased == 1
    with transaction(own.engine) as session:
        assert session.get(DirectoryEntry, student) is None
