"""The directory and outreach through the API: in scope only, audited, kept, erased, exported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.champion import Champion
from tests.service_setup import Served, api_client, auth, backends, own_cohort
from tests.vocabulary import forbidden_words
from waymark.models.data import load_learning_data
from waymark.models.features import build_features
from waymark.service import worklist
from waymark.service.audit import load_key, operator
from waymark.service.db.engine import transaction
from waymark.service.db.schema import (
    AuditRecord,
    AuditReport,
    Consent,
    Contact,
    ContactEvent,
    DirectoryEntry,
    Indicator,
    Publication,
    ScoringRun,
    StaffVisit,
    TrainingExclusion,
)
from waymark.service.directory import COLUMNS as DIRECTORY_COLUMNS
from waymark.service.directory import DirectoryRefused, import_directory
from waymark.service.impact import exported_interventions
from waymark.service.security import Principal

# Mehrdadzadeh in Persian, a zero-width non-joiner between its parts
PERSIAN = "\u0645\u0647\u0631\u062f\u0627\u062f\u200c\u0632\u0627\u062f\u0647"


@pytest.fixture(scope="module", params=backends())
def own(
    request: pytest.FixtureRequest,
    champion: Champion,
    synth_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    root = tmp_path_factory.mktemp(f"workspace-{request.param}")
    with own_cohort(champion, synth_dir, request.param, root, directory=True) as served:
        yield served


@pytest.fixture(scope="module")
def client(own: Served) -> Iterator[TestClient]:
    with api_client(own) as client:
        yield client


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
            "other_name": entry.other_name,
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
        assert not (set(DIRECTORY_COLUMNS) - {"student_id"}) & set(frame.columns), name
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
    # The student has not answered: a contact can be an offer that asks them, but not a conversation yet.
    refused = client.post(
        f"/v1/students/{student}/contacts", json={**body, "status": "in_conversation"}, headers=headers
    )
    assert refused.status_code == 409 and "exemption" in refused.json()["detail"]
    # The refusal says the student has not agreed: in the access log like a read, and nothing else stays.
    assert _records(own, student, "contact_refused") == 1
    free_text = client.post(
        f"/v1/students/{student}/contacts", json={**body, "exemption": "I judged it best"}, headers=headers
    )
    assert free_text.status_code == 422 and free_text.json()["detail"].startswith("body.exemption:")
    assert _records(own, student, "contact_refused") == 2
    # A channel not on the list is refused before consent is looked at: nothing learnt, nothing recorded.
    wrong = client.post(
        f"/v1/students/{student}/contacts", json={**body, "channel": "pigeon"}, headers=headers
    )
    assert wrong.status_code == 422 and _records(own, student, "contact_refused") == 2
    with transaction(own.engine) as session:
        assert not session.scalar(
            select(func.count()).select_from(Contact).where(Contact.student_id == student)
        )
    intervention = {"purpose": "outreach_contact", "description": "a study plan"}
    gone = client.post(f"/v1/students/{student}/interventions", json=intervention, headers=headers)
    assert gone.status_code == 409 and _records(own, student, "intervention_refused") == 1
    wrong_channel = client.post(
        f"/v1/students/{student}/contacts", json={**body, "channel": "fax"}, headers=headers
    )
    assert wrong_channel.status_code == 422 and "body.channel" in wrong_channel.json()["detail"]
    with transaction(own.engine) as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 0
    offered = client.post(f"/v1/students/{student}/contacts", json=body, headers=headers)
    assert offered.status_code == 201 and offered.json()["basis"] == "asking", offered.text
    url = f"/v1/students/{student}/contacts/{offered.json()['id']}"
    assert client.patch(url, json={"status": "contacted"}, headers=headers).status_code == 200
    further = client.patch(url, json={"status": "in_conversation"}, headers=headers)
    assert further.status_code == 409 and "their own page" in further.json()["detail"]
    assert (
        _records(own, student, "contact_refused") == 3 and _records(own, student, "contact_write_asking") == 1
    )
    closed_offer = {"status": "closed", "outcome": "could_not_reach"}
    assert client.patch(url, json=closed_offer, headers=headers).status_code == 200
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
    assert [c["id"] for c in team] == [contact["id"], offered.json()["id"]]
    assert _records(own, student, "contact_write") == 1
    assert _records(own, student, "contact_update") == 4
    assert _records(own, student, "contacts_view") == 1
    assert not forbidden_words(json.dumps([options, team]))
    # The export of who was reached, for training, is a read of each student it names: recorded (a red
    # team found `waymark outreach export` wrote the file and nothing in any student's access log).
    exported = exported_interventions(own.engine, load_key(own.settings), caller=operator())
    assert student in set(exported["student_id"]) and _records(own, student, "outreach_export") == 1


def test_outreach_outside_the_callers_scope_is_refused_as_if_the_student_did_not_exist(
    own: Served, client: TestClient
) -> None:
    tutor, _student, _leader = _team(own)
    headers = auth(own, "personal_tutor", tutor)
    page = client.get("/v1/caseload", params={"limit": 100}, headers=headers).json()
    outsider = next(
        s for s in sorted(set(own.indicators.student_id)) if s not in {i["student_id"] for i in page["items"]}
    )
    body = {"channel": "email", "purpose": "outreach_contact", "exemption": "safeguarding", "note": "why"}
    assert client.post(f"/v1/students/{outsider}/contacts", json=body, headers=headers).status_code == 404
    assert client.get(f"/v1/students/{outsider}/contacts", headers=headers).status_code == 404
    assert client.get(f"/v1/students/{outsider}/consent", headers=headers).status_code == 404
    assert client.get("/v1/outreach/options", headers=auth(own, "student", outsider)).status_code == 403


def test_export_holds_and_erasure_removes_the_directory_entry_and_contacts(
    own: Served, client: TestClient
) -> None:
    tutor, student, _leader = _team(own)
    headers = auth(own, "personal_tutor", tutor)
    body = {
        "channel": "phone",
        "purpose": "study_skills_referral",
        "exemption": "safeguarding",
        "note": "why",
    }
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


def test_a_name_in_a_second_script_is_imported_shown_and_found(
    own: Served, client: TestClient, tmp_path: Path
) -> None:
    """A Jordanian university's records hold each name in Arabic and in Latin letters: the directory kept
    one, so staff typing the other found nobody, and students of one name were told apart by id alone."""
    staff, role = _wide(own)
    headers = auth(own, role, staff)
    student = str(_all(client, headers)[3]["student_id"])
    original = own.folder / "directory.csv"
    frame = pd.read_csv(original, dtype=str, keep_default_na=False)
    frame["other_name"] = ""
    frame.loc[frame.student_id == student, "other_name"] = "محمد العلي"
    path = tmp_path / "directory.csv"
    frame.to_csv(path, index=False)
    try:
        import_directory(own.engine, path, known=None)
        for typed in ("محمد العلي", "العلي محمد", "العلي"):
            assert [r["student_id"] for r in _all(client, headers, search=typed)] == [student], typed
        listed = {r["student_id"]: r["other_name"] for r in _all(client, headers)}  # shown on the list too
        assert listed[student] == "محمد العلي" and {n for s, n in listed.items() if s != student} == {None}
        caseload = client.get("/v1/caseload", params={"limit": 100}, headers=headers).json()["items"]
        assert {i["other_name"] for i in caseload if i["student_id"] == student} == {"محمد العلي"}
        shown = client.get(f"/v1/students/{student}/indicator", headers=headers).json()["directory"]
        assert (
            shown["other_name"] == "محمد العلي"
            and shown["display_name"] == _entry(own, student)["display_name"]
        )
        mine = client.get("/v1/me/directory", headers=auth(own, "student", student)).json()
        assert mine["other_name"] == "محمد العلي"
        frame.loc[frame.student_id == student, "other_name"] = "x" * 201
        frame.to_csv(path, index=False)
        with pytest.raises(DirectoryRefused, match="other_name is longer than 200 characters"):
            import_directory(own.engine, path, known=None)
        # an override turns the name after it around as shown; a line separator or an invisible
        # separator hides in it: refused, naming the character
        frame.loc[frame.student_id == student, "other_name"] = "Ali \u202eilA"
        frame.loc[frame.student_id == student, "display_name"] = "Mohammed\u2028Al-Ali"
        frame.loc[frame.student_id == student, "preferred_name"] = "Mo\u2063hammed"
        frame.to_csv(path, index=False)
        with pytest.raises(DirectoryRefused) as refused:
            import_directory(own.engine, path, known=None)
        said = str(refused.value)
        assert "other_name holds an invisible character (U+202E RIGHT-TO-LEFT OVERRIDE)" in said
        assert "display_name holds an invisible character (U+2028 LINE SEPARATOR)" in said
        assert "preferred_name holds an invisible character (U+2063 INVISIBLE SEPARATOR)" in said
        assert "nothing was imported" in said and _all(client, headers, search="محمد العلي") != []
        # embeddings an office export put around right-to-left text are removed and counted; the
        # direction marks and a Persian non-joiner are kept
        frame.loc[frame.student_id == student, "display_name"] = "\u202bعلي\u200f (Ali)\u202c"
        frame.loc[frame.student_id == student, "preferred_name"] = "\u2067علي\u2069"
        frame.loc[frame.student_id == student, "pronouns"] = "\u0e40\u0e02\u0e32\u200b"  # Thai: kept
        frame.loc[frame.student_id == student, "other_name"] = PERSIAN
        frame.to_csv(path, index=False)
        done = import_directory(own.engine, path, known=None)
        assert done.layout_removed == 2
        entry = _entry(own, student)
        assert (entry["display_name"], entry["preferred_name"]) == ("علي\u200f (Ali)", "علي")
        assert entry["other_name"] == PERSIAN
    finally:
        import_directory(own.engine, original, known=None)
    assert _all(client, headers, search="محمد العلي") == []  # the file without it: gone again


# The worklist ----------------------------------------------------------------------------------------


def _wide(served: Served) -> tuple[str, str]:
    """A staff member with a school-wide scope, and their role."""
    staff = served.access[served.access.relationship == "support_staff"]
    return str(staff.staff_id.iloc[0]), "support_staff"


def _listed_student(
    own: Served, client: TestClient, place: int
) -> tuple[dict[str, str], str, dict[str, str]]:
    """A wide-scope staff member's headers, the student at ``place`` on their worklist, and theirs."""
    staff, role = _wide(own)
    headers = auth(own, role, staff)
    student = str(_all(client, headers)[place]["student_id"])
    return headers, student, auth(own, "student", student)


def _all(client: TestClient, headers: dict[str, str], **params: object) -> list[dict[str, object]]:
    return _paged(client, headers, "/v1/worklist", **params)


Items = list[dict[str, object]]


def _paged(client: TestClient, headers: dict[str, str], path: str, **params: object) -> Items:
    """Every item of a paged list (the worklist, the caseload), page by page."""
    out: list[dict[str, object]] = []
    while True:
        page = client.get(path, params={**params, "offset": len(out), "limit": 100}, headers=headers)
        assert page.status_code == 200, page.text
        items = page.json()["items"]
        out += items
        if not items or len(out) >= page.json()["total"]:
            return out


def test_the_worklist_has_one_row_per_student_in_priority_order(own: Served, client: TestClient) -> None:
    staff, role = _wide(own)
    headers = auth(own, role, staff)
    rows = _all(client, headers)
    schools = set(own.access[(own.access.staff_id == staff) & (own.access.relationship == role)].scope_id)
    with transaction(own.engine) as session:
        erased = set(session.scalars(select(TrainingExclusion.student_id)))  # by the test above
    erased |= _said_no_unreached(own)  # left off the list (by other tests)
    mine = own.indicators[own.indicators.school_id.isin(schools) & ~own.indicators.student_id.isin(erased)]
    assert [r["student_id"] for r in rows] == sorted(
        set(mine.student_id), key=lambda s: (-max(_values(rows, s)), s)
    )
    tops = [max(_values(rows, str(r["student_id"]))) for r in rows]
    assert [r["support_priority"] for r in rows] == [tops.index(t) + 1 for t in tops]  # ties share one
    for row in rows:
        expected = mine[mine.student_id == row["student_id"]]
        got = {(g["module_id"], g["presentation_id"]) for g in row["registrations"]}  # type: ignore[union-attr]
        assert got == set(zip(expected.module_id, expected.presentation_id, strict=True))
    assert any(len(r["registrations"]) > 1 for r in rows)  # type: ignore[arg-type]


def _values(rows: list[dict[str, object]], student: str) -> list[float]:
    row = next(r for r in rows if r["student_id"] == student)
    return [g["estimate"]["value"] for g in row["registrations"]]  # type: ignore[index,union-attr]


def test_worklist_filters_narrow_the_list_and_keep_each_students_place(
    own: Served, client: TestClient
) -> None:
    staff, role = _wide(own)
    headers = auth(own, role, staff)
    rows = _all(client, headers)
    place = {r["student_id"]: r["support_priority"] for r in rows}
    module = rows[0]["registrations"][0]["module_id"]  # type: ignore[index]
    on_module = _all(client, headers, module_id=module)
    assert on_module and all(
        {g["module_id"] for g in r["registrations"]} == {module}
        for r in on_module  # type: ignore[union-attr]
    )
    assert all(place[r["student_id"]] == r["support_priority"] for r in on_module)
    named = next(r for r in rows if r["name"])
    found = _all(client, headers, search=str(named["name"]).split()[0].upper())
    assert named["student_id"] in {r["student_id"] for r in found}
    assert len(found) < len(rows)
    # The workspace sends the same filters in a body (a name typed into the search stays out of addresses).
    term = str(named["name"]).split()[0].upper()
    posted = client.post(
        "/v1/worklist", json={"search": term, "limit": 100, "module_id": module}, headers=headers
    )
    assert posted.status_code == 200, posted.text
    both = _all(client, headers, search=term, module_id=module)
    assert [r["student_id"] for r in posted.json()["items"]] == [r["student_id"] for r in both]
    refused = client.post("/v1/worklist", json={"search": term, "surname": term}, headers=headers)
    assert refused.status_code == 422  # an unknown filter is refused, not ignored
    planned, reached = rows[1]["student_id"], rows[2]["student_id"]
    body = {"channel": "email", "purpose": "outreach_contact", "exemption": "safeguarding", "note": "why"}
    for student, status, follow_up in ((planned, "to_contact", "2020-01-01"), (reached, "contacted", None)):
        made = client.post(
            f"/v1/students/{student}/contacts",
            json={**body, "status": status, "follow_up_on": follow_up},
            headers=headers,
        )
        assert made.status_code == 201, made.text
    not_contacted = {r["student_id"] for r in _all(client, headers, not_contacted=True)}
    assert planned in not_contacted and reached not in not_contacted
    assert [r["student_id"] for r in _all(client, headers, follow_up_due=True)] == [planned]
    assert {
        r["student_id"]: r["latest_contact"]["status"] for r in _all(client, headers) if r["latest_contact"]
    }[reached] == "contacted"  # type: ignore[index]


def test_a_follow_up_on_withdrawn_consent_is_not_due_and_the_row_says_to_close_it(
    own: Served, client: TestClient
) -> None:
    headers, student, mine = _listed_student(own, client, 4)
    agreed = {"purpose": "outreach_contact", "granted": True}
    assert client.put("/v1/me/consent", json=agreed, headers=mine).status_code == 200
    body = {
        "channel": "email",
        "purpose": "outreach_contact",
        "status": "to_contact",
        "follow_up_on": "2020-01-01",
    }
    made = client.post(f"/v1/students/{student}/contacts", json=body, headers=headers)
    assert made.status_code == 201 and made.json()["basis"] == "consent", made.text
    row = next(r for r in _all(client, headers) if r["student_id"] == student)
    assert row["follow_up_due"] and not row["consent_withdrawn"] and not row["declined_contact"]
    withdrawn = {**agreed, "granted": False}
    assert client.put("/v1/me/consent", json=withdrawn, headers=mine).status_code == 200
    assert student not in {r["student_id"] for r in _all(client, headers, follow_up_due=True)}
    # they said no to being contacted about support, but the contact resting on their consent is still
    # open: listed, so that it is closed (it would have dropped off with nothing left showing it)
    row = next(r for r in _all(client, headers) if r["student_id"] == student)
    assert not row["follow_up_due"] and row["consent_withdrawn"]
    # and the row says the student said no, whatever their contacts (a red team's student who declined
    # everything stayed at the top of the list, unmarked)
    assert row["declined_contact"]


def test_the_row_shows_the_contact_changed_last_and_the_earliest_follow_up_of_any_open_contact(
    own: Served, client: TestClient
) -> None:
    """A colleague's newer contact without a follow-up hides neither an older contact's due follow-up
    nor a hand-over note written on the older one."""
    headers, student, mine = _listed_student(own, client, 6)
    agreed = {"purpose": "outreach_contact", "granted": True}
    assert client.put("/v1/me/consent", json=agreed, headers=mine).status_code == 200
    body = {"channel": "email", "purpose": "outreach_contact", "status": "contacted"}
    first = client.post(
        f"/v1/students/{student}/contacts", json={**body, "follow_up_on": "2020-01-01"}, headers=headers
    )
    second = client.post(f"/v1/students/{student}/contacts", json=body, headers=headers)
    assert first.status_code == second.status_code == 201, first.text + second.text
    row = next(r for r in _all(client, headers) if r["student_id"] == student)
    assert row["latest_contact"]["id"] == second.json()["id"]
    assert row["next_follow_up_on"] == "2020-01-01" and row["follow_up_due"]
    assert student in {r["student_id"] for r in _all(client, headers, follow_up_due=True)}
    handed = {"status": "in_conversation", "note": "Handed over to the support team"}
    changed = client.patch(
        f"/v1/students/{student}/contacts/{first.json()['id']}", json=handed, headers=headers
    )
    assert changed.status_code == 200, changed.text
    row = next(r for r in _all(client, headers) if r["student_id"] == student)
    assert row["latest_contact"]["id"] == first.json()["id"]
    closed = {"status": "closed", "outcome": "referred_to_service"}
    done = client.patch(f"/v1/students/{student}/contacts/{first.json()['id']}", json=closed, headers=headers)
    assert done.status_code == 200, done.text
    row = next(r for r in _all(client, headers) if r["student_id"] == student)
    assert row["next_follow_up_on"] is None and not row["follow_up_due"]


def test_a_student_can_say_no_before_being_asked_and_is_then_offered_nothing(
    own: Served, client: TestClient
) -> None:
    headers, student, mine = _listed_student(own, client, 7)
    answers = client.get("/v1/me/consent", headers=mine).json()["answers"]
    assert set(answers.values()) == {"not answered"}
    no = {"purpose": "outreach_contact", "granted": False}
    assert (
        client.put("/v1/me/consent", json=no, headers=mine).json()["answers"]["outreach_contact"]
        == "declined"
    )
    body = {"channel": "email", "purpose": "study_skills_referral", "status": "to_contact"}
    refused = client.post(f"/v1/students/{student}/contacts", json=body, headers=headers)
    assert refused.status_code == 409 and "said no" in refused.json()["detail"], refused.text
    unsaid = client.post(
        f"/v1/students/{student}/contacts", json={**body, "exemption": "safeguarding"}, headers=headers
    )
    assert unsaid.status_code == 422 and unsaid.json()["detail"].startswith("body.note:")
    assert _records(own, student, "contact_refused") == 2  # both tell the caller the student said no
    # Staff who support the student see the answers before saving anything; the read is recorded.
    seen = _records(own, student, "consent_view")
    shown = client.get(f"/v1/students/{student}/consent", headers=headers)
    assert shown.status_code == 200 and shown.json()["answers"]["outreach_contact"] == "declined"
    assert shown.json()["answers"]["wellbeing_referral"] == "not answered"
    assert _records(own, student, "consent_view") == seen + 1


def _found(client: TestClient, headers: dict[str, str], student: str) -> dict[str, object]:
    """The student's row as a search by their id finds it."""
    return next(r for r in _all(client, headers, search=student) if r["student_id"] == student)


def _said_no_unreached(served: Served) -> set[str]:
    """Students who said no to being contacted about support, with no contact open."""
    with transaction(served.engine) as session:
        answers = {(c.student_id, c.purpose): c.granted for c in session.scalars(select(Consent))}
        reached = set(session.scalars(select(Contact.student_id).where(Contact.status != "closed")))
    said_no = {s for (s, p), granted in answers.items() if p == "outreach_contact" and not granted}
    return said_no - reached


def test_a_student_who_said_no_to_contact_leaves_the_worklist_unless_an_exemption_keeps_a_contact_open(
    own: Served, client: TestClient
) -> None:
    """Code of Practice §6: the worklist is of whom to reach, and the student asked not to be reached.

    The list closes up behind them; a search still finds them, marked, at the place they would take;
    a contact opened under an exemption (a safeguarding concern) keeps them listed until it is closed.
    """
    staff, role = _wide(own)
    headers = auth(own, role, staff)
    with transaction(own.engine) as session:  # one no other test has touched, whatever the order
        touched = set(session.scalars(select(Contact.student_id))) | set(
            session.scalars(select(Consent.student_id))
        )
    student = next(str(r["student_id"]) for r in _all(client, headers)[1:] if r["student_id"] not in touched)
    mine = auth(own, "student", student)
    before = client.get("/v1/worklist", headers=headers, params={"limit": 1}).json()
    rows = _all(client, headers)
    at = next(i for i, r in enumerate(rows) if r["student_id"] == student)
    no = {"purpose": "outreach_contact", "granted": False}
    assert client.put("/v1/me/consent", json=no, headers=mine).status_code == 200
    after = client.get("/v1/worklist", headers=headers, params={"limit": 1}).json()
    assert after["total"] == before["total"] - 1
    assert after["not_listed"] == before["not_listed"] + 1
    left = _all(client, headers)
    assert [r["student_id"] for r in left] == [r["student_id"] for r in rows if r["student_id"] != student]
    tops = [max(_values(left, str(r["student_id"]))) for r in left]
    assert [r["support_priority"] for r in left] == [tops.index(t) + 1 for t in tops]  # no gap left
    found = _found(client, headers, student)
    assert found["declined_contact"] and found["support_priority"] == rows[at]["support_priority"]
    # the caseload keeps every registration in its order, and says so on each (a system driving outreach
    # from it must not reach them)
    flagged = {str(i["student_id"]) for i in _paged(client, headers, "/v1/caseload") if i["declined_contact"]}
    with transaction(own.engine) as session:
        declined = set(
            session.scalars(
                select(Consent.student_id).where(
                    Consent.purpose == "outreach_contact", Consent.granted.is_(False)
                )
            )
        )
    assert student in flagged and flagged <= declined
    # A safeguarding concern: staff open a contact under the exemption, with their reason.
    body = {
        "channel": "phone",
        "purpose": "wellbeing_referral",
        "status": "contacted",
        "exemption": "safeguarding",
        "note": "A welfare concern raised by a flatmate",
        "follow_up_on": "2020-01-01",
    }
    made = client.post(f"/v1/students/{student}/contacts", json=body, headers=headers)
    assert made.status_code == 201 and made.json()["basis"] == "exemption", made.text
    listed = next(r for r in _all(client, headers) if r["student_id"] == student)
    assert listed["declined_contact"] and listed["follow_up_due"]
    assert student in {r["student_id"] for r in _all(client, headers, follow_up_due=True)}
    closed = {"status": "closed", "outcome": "referred_to_service", "note": "Referred to the wellbeing team"}
    shut = client.patch(f"/v1/students/{student}/contacts/{made.json()['id']}", json=closed, headers=headers)
    assert shut.status_code == 200, shut.text
    assert student not in {r["student_id"] for r in _all(client, headers)}
    # Changing their mind puts them back, at their place.
    yes = {"purpose": "outreach_contact", "granted": True}
    assert client.put("/v1/me/consent", json=yes, headers=mine).status_code == 200
    back = {r["student_id"]: r["support_priority"] for r in _all(client, headers)}
    assert back[student] == rows[at]["support_priority"]


def test_changed_and_new_since_the_last_visit(own: Served, client: TestClient) -> None:
    staff, role = _wide(own)
    headers = auth(own, role, staff)
    rows = _all(client, headers)
    moved = rows[3]["student_id"]
    with transaction(own.engine) as session:
        indicator = session.scalars(select(Indicator).where(Indicator.student_id == moved)).first()
        assert indicator is not None
        indicator.previous_probability = max(0.0, indicator.probability - 0.2)
        visit = session.get(StaffVisit, (staff, role))
        assert visit is not None
        visit.last_seen_at = datetime.now(UTC) - timedelta(days=2)
    changed = _all(client, headers, changed=True)
    assert [r["student_id"] for r in changed] == [moved]
    assert changed[0]["changed_since_last_run"] is True
    page = client.get("/v1/worklist", headers=headers).json()
    assert page["previous_visit"] is not None
    assert all(r["new_since_last_visit"] for r in page["items"])  # indicated by a run after that visit
    # the count covers the whole list, not the page shown, and the filter keeps exactly those students
    assert page["new_since_last_visit"] == page["total"] > len(page["items"])
    assert len(_all(client, headers, new=True)) == page["total"]
    with transaction(own.engine) as session:
        visit = session.get(StaffVisit, (staff, role))
        assert visit is not None
        visit.previous_seen_at = datetime.now(UTC)
    again = client.get("/v1/worklist", headers=headers).json()
    assert not any(r["new_since_last_visit"] for r in again["items"])
    assert again["new_since_last_visit"] == 0 and _all(client, headers, new=True) == []


def test_the_module_filter_offers_every_module_of_the_list_not_only_the_page(
    own: Served, client: TestClient
) -> None:
    staff, role = _wide(own)
    headers = auth(own, role, staff)
    page = client.get("/v1/worklist", headers=headers, params={"limit": 1}).json()
    everyone = {g["module_id"] for r in _all(client, headers) for g in r["registrations"]}  # type: ignore[union-attr]
    assert page["modules"] == sorted(everyone) and len(everyone) > 1


def test_each_worklist_read_is_logged_once_per_student(own: Served, client: TestClient) -> None:
    staff, role = _wide(own)
    page = client.get("/v1/worklist", params={"limit": 5}, headers=auth(own, role, staff)).json()
    with transaction(own.engine) as session:
        last = session.scalars(
            select(AuditRecord)
            .where(AuditRecord.action == "worklist_view")
            .order_by(AuditRecord.seq.desc())
            .limit(5)
        ).all()
    assert sorted(r.student_id for r in last) == sorted(i["student_id"] for i in page["items"])


# The committee's reading ---------------------------------------------------------------------------


def test_the_committee_reads_the_report_exactly_as_audited_and_the_decisions(
    own: Served, client: TestClient
) -> None:
    reviewer = auth(own, "ethics_reviewer", "rev-1")
    versions = client.get("/v1/fairness/reports", headers=reviewer).json()
    served = next(v for v in versions if v["champion"])
    assert served["report_url"] == f"/v1/fairness/reports/{served['name']}/versions/{served['version']}"
    report = client.get(served["report_url"], headers=reviewer)
    assert report.status_code == 200
    body = report.json()
    assert body["gate"] == served["fairness_gate"] and body["report"]["audits"]
    assert not forbidden_words(report.text)
    assert client.get(served["report_url"], headers=auth(own, "data_scientist", "ds-1")).status_code == 200
    tutor, _student, _leader = _team(own)
    assert client.get(served["report_url"], headers=auth(own, "personal_tutor", tutor)).status_code == 403
    history = client.get(f"/v1/models/{served['name']}/decisions", headers=reviewer).json()
    assert [d["kind"] for d in history][:3] == ["audit", "approved", "promoted"]
    assert history[1]["audit_id"] == history[0]["id"]
    assert all(d["recorded_by"] for d in history)  # who entered each, beside whose decision it was
    with transaction(own.engine) as session:
        stored = session.get(AuditReport, history[0]["id"])
        assert stored is not None
        original = stored.report
        stored.report = {**original, "gate": {"result": "pass", "checks": []}}
    altered = client.get(served["report_url"], headers=reviewer)
    assert altered.status_code == 409 and "does not match" in altered.json()["detail"]
    with transaction(own.engine) as session:
        restored = session.get(AuditReport, history[0]["id"])
        assert restored is not None
        restored.report = original
    reread = client.get(served["report_url"], headers=reviewer)
    assert reread.status_code == 200
    again = client.post(
        f"/v1/models/{served['name']}/versions/{served['version']}/review",
        json={"approve": True, "note": "read the report again", "audit_id": reread.json()["audit_id"]},
        headers=reviewer,
    )
    assert again.status_code == 200 and again.json()["champion"] is True  # a review answers the truth


def test_a_name_is_found_whatever_its_accents_case_or_dotted_i_and_a_number_by_the_id_it_carries(
    own: Served, client: TestClient
) -> None:
    """A Turkish university's staff typed "Şahin", "Özge" or "İbrahim" exactly as the directory wrote
    them and found nobody (SQLite's lower() folds ASCII only); a tutor typing their tutee's number found
    nobody either where ids are pseudonyms. A Polish university's staff typing "laski" for "Łaski" found
    nobody too: the stroked l has no decomposition."""
    staff, role = _wide(own)
    headers = auth(own, role, staff)
    rows = _all(client, headers)
    student = str(rows[-1]["student_id"])
    with transaction(own.engine) as session:
        entry = session.get(DirectoryEntry, student)
        assert entry is not None
        kept = (entry.display_name, entry.preferred_name, entry.search_name)
        session.delete(entry)
        session.flush()
        session.add(
            DirectoryEntry(
                student_id=student,
                display_name="İbrahim Şahin Özdemir-Łaski",
                preferred_name="I\u015f\u0131k",  # with s-cedilla and the dotless i
                pronouns=None,
                email=entry.email,
                imported_at=entry.imported_at,
            )
        )
    try:
        typed_forms = ("Şahin", "şahin", "SAHIN", "İbrahim", "ibrahim", "IBRAHIM", "Özdemir", "IŞIK", "isik")
        typed_forms += ("Łaski", "łaski", "laski", "LASKI")
        # punctuation and spaces alike, and spaces left out ("zhangwei" for Zhang Wei)
        typed_forms += ("Şahin İbrahim", "laski ibrahim", "ozdemir-lask sahin")  # words in any order
        for typed in (*typed_forms, "sahin-ozdemir", "ibrahim  sahin", "ibrahimsahin", "SahinOzdemir"):
            found = [r["student_id"] for r in _all(client, headers, search=typed)]
            assert found == [student], typed
        assert _all(client, headers, search="Şahinx") == []
        assert _all(client, headers, search="ibrahim sahinx") == []  # every word, not any
        # each word at the start of a word of the name: "Muhammad Ali" had listed Muhammad Malik first
        assert _all(client, headers, search="ibrahim ahin") == []
        # The number, as the imports' secret would turn it into the id records carry (worklist.Filters).
        with transaction(own.engine) as session:
            run = session.scalar(select(ScoringRun).join(Publication, Publication.run_id == ScoringRun.id))
            assert run is not None
            listed = worklist.page(
                session,
                Principal(sub=staff, role=role, training_until=None),
                run=run,
                filters=worklist.Filters(search="250201001", students=(student,)),
                offset=0,
                limit=10,
                previous_visit=None,
                today=datetime.now(UTC).date(),
            )
        assert [r.student_id for r in listed.rows] == [student]
        # A part of a pseudonym names nobody: a few digits of a roll number had listed students whose
        # pseudonyms happened to hold them.
        with transaction(own.engine) as session:

            def found(**given: object) -> list[str]:
                rows = worklist.page(
                    session,
                    Principal(sub=staff, role=role, training_until=None),
                    run=run,
                    filters=worklist.Filters(search=student[-5:], **given),  # type: ignore[arg-type]
                    offset=0,
                    limit=1000,
                    previous_visit=None,
                    today=datetime.now(UTC).date(),
                ).rows
                return [r.student_id for r in rows]

            assert student in found()  # ids as written: a part of one is a fair search
            assert student not in found(pseudonyms=True)
    finally:
        with transaction(own.engine) as session:
            entry = session.get(DirectoryEntry, student)
            assert entry is not None
            entry.display_name, entry.preferred_name, entry.search_name = kept


def test_a_number_typed_without_its_leading_zeros_or_with_them_is_tried_both_ways() -> None:
    from waymark.service.api.staff import number_forms

    assert number_forms("43692839") == ("43692839", "043692839", "0043692839", "00043692839")
    assert number_forms("043692839") == ("043692839", "43692839", "0043692839", "00043692839")
    assert number_forms("G00123456") == ("G00123456",)  # not a number: as typed only
    assert number_forms("000") == ("000", "0", "00", "0000")


def test_a_number_pasted_with_a_spreadsheets_quote_is_searched_without_it() -> None:
    from waymark.service.api.staff import typed_number

    assert typed_number("'2202310017") == typed_number(" 2202310017 ") == "2202310017"
    assert typed_number(" '' ") is None and typed_number(None) is None and typed_number("a\tb") is None


def test_arabic_names_written_two_ways_fold_alike_for_search() -> None:
    """An Egyptian university's فاطمه found none of its 14 فاطمة; مصطفى and مصطفي each found a
    different ten."""
    from waymark.service.db.schema import search_key

    assert search_key("فاطمة") == search_key("فاطمه")
    assert search_key("مصطفى") == search_key("مصطفي")
    assert search_key("أسامة") == search_key("اسامه")  # hamza forms already met
    assert search_key("محـمد") == search_key("محمد")  # tatweel
    assert search_key("علی") == search_key("علي")  # the Persian and Urdu yeh
    assert search_key("فاطمة") != search_key("فاطم")


def test_kazakh_names_typed_on_a_russian_keyboard_or_with_a_latin_i_are_found() -> None:
    """A Kazakh university's staff typing on a Russian keyboard found 22 of 96 students, and a first name
    typed with a Latin i for the Kazakh one missed 17 of 96."""
    from waymark.service.db.schema import search_key

    written = "\u041d\u04b1\u0440\u043b\u0430\u043d \u049a\u0430\u0439\u0440\u0430\u0442\u043e\u0432"
    russian = "\u041d\u0443\u0440\u043b\u0430\u043d \u041a\u0430\u0439\u0440\u0430\u0442\u043e\u0432"
    assert search_key(written) == search_key(russian)
    alibek, latin_i = "\u04d8\u043b\u0456\u0431\u0435\u043a", "\u0410\u043bi\u0431\u0435\u043a"
    assert search_key(alibek) == search_key(latin_i) == search_key("\u0410\u043b\u0438\u0431\u0435\u043a")
    assert search_key("Maria Lopez") == "maria lopez"  # a Latin name keeps its letters
