"""Contacts once consent is withdrawn, and once the student has no indicator served (CoP §6, PRODUCT §6).

A contact made on the student's consent is not carried on after they withdraw it, but can be closed.
The team's contacts stay readable and closable by staff who still support the student when no run is
served (the model's approval withdrawn) or the student is not in the served run; to anyone else the
student stays indistinguishable from one that does not exist. A student left out at their request is
read by nobody, but an open contact under an exemption stays with the staff following it up.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update

from tests.champion import Champion
from tests.service_setup import Served, api_client, auth, backends, own_cohort
from waymark.service import decisions
from waymark.service.app import create_app
from waymark.service.db.engine import transaction
from waymark.service.db.schema import (
    AccessGrant,
    AuditRecord,
    ContactEvent,
    Indicator,
    ModelDecision,
    Publication,
    ScoringRun,
)

CONSENT = "outreach_contact"


@pytest.fixture(scope="module", params=backends())
def own(
    request: pytest.FixtureRequest,
    champion: Champion,
    synth_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    root = tmp_path_factory.mktemp(f"contacts-scope-{request.param}")
    with own_cohort(champion, synth_dir, request.param, root) as served:
        yield served


@pytest.fixture(scope="module")
def client(own: Served) -> Iterator[TestClient]:
    with api_client(own) as client:
        yield client


def _tutored(own: Served, position: int) -> tuple[str, str]:
    """A personal tutor and their tutee with an indicator, chosen by position (each test its own)."""
    grants = own.access
    tutored = grants[
        (grants.relationship == "personal_tutor") & grants.scope_id.isin(own.indicators.student_id)
    ]
    row = tutored.iloc[position]
    return str(row.staff_id), str(row.scope_id)


def _strangers(own: Served, student: str) -> list[tuple[str, str]]:
    """A personal tutor and a module leader (role, staff id) with no relationship to ``student``."""
    grants = own.access
    modules = set(own.indicators[own.indicators.student_id == student].module_id)
    tutors = grants[grants.relationship == "personal_tutor"]
    leaders = grants[grants.relationship == "module_leader"]
    tutor = next(s for s in tutors.staff_id if student not in set(tutors[tutors.staff_id == s].scope_id))
    leader = next(s for s in leaders.staff_id if not modules & set(leaders[leaders.staff_id == s].scope_id))
    return [("personal_tutor", str(tutor)), ("module_leader", str(leader))]


def _leader_of(own: Served, student: str) -> str:
    grants = own.access
    modules = set(own.indicators[own.indicators.student_id == student].module_id)
    found = grants[(grants.relationship == "module_leader") & grants.scope_id.isin(modules)]
    return str(found.staff_id.iloc[0])


def _records(own: Served, student: str, action: str) -> int:
    with transaction(own.engine) as session:
        query = select(func.count()).select_from(AuditRecord)
        where = query.where(AuditRecord.student_id == student, AuditRecord.action == action)
        return int(session.scalar(where) or 0)


def _readers(client: TestClient, me: dict[str, str]) -> list[dict[str, object]]:
    """Who the student's own copy of their data says may read them."""
    export = client.get("/v1/me/export", headers=me)
    assert export.status_code == 200, export.text
    return list(export.json()["readers"])


def _contact(own: Served, client: TestClient, tutor: str, student: str) -> str:
    """A planned contact, under an exemption, with a follow-up; returns its address."""
    body = {
        "channel": "email",
        "purpose": CONSENT,
        "exemption": "safeguarding",
        "note": "a concern",
        "follow_up_on": "2026-12-14",
    }
    made = client.post(
        f"/v1/students/{student}/contacts", json=body, headers=auth(own, "personal_tutor", tutor)
    )
    assert made.status_code == 201, made.text
    return f"/v1/students/{student}/contacts/{made.json()['id']}"


def _reachable_by_supporters_only(
    own: Served, client: TestClient, tutor: str, student: str, url: str
) -> None:
    """The tutor reads it; a leader of the student's last module who never worked on the student's
    contacts does not (their grant, given now, does not reach back to a student no run now holds);
    strangers are told nothing."""
    headers = auth(own, "personal_tutor", tutor)
    before = _records(own, student, "contacts_view")
    seen = client.get(f"/v1/students/{student}/contacts", headers=headers)
    assert seen.status_code == 200, seen.text
    assert [f"/v1/students/{student}/contacts/{c['id']}" for c in seen.json()] == [url]
    team = client.get(
        f"/v1/students/{student}/contacts", headers=auth(own, "module_leader", _leader_of(own, student))
    )
    assert team.status_code == 404, team.text
    assert _records(own, student, "contacts_view") == before + 1  # every read stays audited
    for role, stranger in _strangers(own, student):
        other = auth(own, role, stranger)
        assert client.get(f"/v1/students/{student}/contacts", headers=other).status_code == 404
        closing = {"status": "closed", "outcome": "no_action_needed"}
        assert client.patch(url, json=closing, headers=other).status_code == 404
    assert _records(own, student, "contacts_view") == before + 1
    closed = client.patch(
        url, json={"status": "closed", "outcome": "could_not_reach", "note": "left"}, headers=headers
    )
    assert closed.status_code == 200, closed.text
    assert (closed.json()["status"], closed.json()["outcome"]) == ("closed", "could_not_reach")
    assert _records(own, student, "contact_update") == 1


def test_a_contact_on_withdrawn_consent_is_refused_going_on_and_recorded_but_can_be_closed(
    own: Served, client: TestClient
) -> None:
    tutor, student = _tutored(own, 0)
    headers, me = auth(own, "personal_tutor", tutor), auth(own, "student", student)
    given = client.put("/v1/me/consent", json={"purpose": CONSENT, "granted": True}, headers=me)
    assert given.status_code == 200
    body = {"channel": "email", "purpose": CONSENT, "follow_up_on": "2026-12-14", "note": "planned"}
    made = client.post(f"/v1/students/{student}/contacts", json=body, headers=headers)
    assert made.status_code == 201 and made.json()["basis"] == "consent"
    url = f"/v1/students/{student}/contacts/{made.json()['id']}"
    assert (
        client.put("/v1/me/consent", json={"purpose": CONSENT, "granted": False}, headers=me).status_code
        == 200
    )

    refused = client.patch(url, json={"status": "contacted", "note": "called anyway"}, headers=headers)
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert "withdrawn or declined their agreement to be contacted about support" in detail
    assert CONSENT not in detail and "_" not in detail  # plain words, no internal keys
    assert _records(own, student, "contact_refused") == 1  # it tells the caller something: recorded
    for going_on in ({"follow_up_on": "2026-12-21"}, {"note": "will call"}, {"status": "in_conversation"}):
        assert client.patch(url, json=going_on, headers=headers).status_code == 409
    assert _records(own, student, "contact_refused") == 4
    # A wrong request is refused before consent is looked at: nothing learnt, nothing recorded.
    assert client.patch(url, json={"status": "closed"}, headers=headers).status_code == 422
    assert _records(own, student, "contact_refused") == 4
    unchanged = client.get(f"/v1/students/{student}/contacts", headers=headers).json()[0]
    assert (unchanged["status"], unchanged["note"], len(unchanged["history"])) == ("to_contact", "planned", 1)

    # Tidying is allowed: the form's resent state with the follow-up cleared, then closing with a note.
    tidied = client.patch(
        url, json={"status": "to_contact", "note": "planned", "clear_follow_up": True}, headers=headers
    )
    assert tidied.status_code == 200 and tidied.json()["follow_up_on"] is None
    closed = client.patch(
        url,
        json={"status": "closed", "outcome": "no_action_needed", "note": "the student withdrew consent"},
        headers=headers,
    )
    assert closed.status_code == 200, closed.text
    assert [s["status"] for s in closed.json()["history"]] == ["to_contact", "to_contact", "closed"]
    assert _records(own, student, "contact_update") == 2


def test_a_student_absent_from_the_served_run_keeps_their_contacts_for_those_who_support_them(
    own: Served, client: TestClient
) -> None:
    tutor, student = _tutored(own, 1)
    url = _contact(own, client, tutor, student)
    with transaction(own.engine) as session:  # a later run without the student (they withdrew, say)
        before = session.get(Publication, own.settings.target)
        assert before is not None
        served_id = before.run_id
        now = session.get(ScoringRun, served_id)
        assert now is not None
        later = ScoringRun(
            **{c.name: getattr(now, c.name) for c in ScoringRun.__table__.columns if c.name != "id"}
        )
        session.add(later)
        session.flush()
        later_id = later.id
        for row in session.scalars(
            select(Indicator).where(Indicator.run_id == served_id, Indicator.student_id != student)
        ):
            session.add(Indicator(**{**{c.name: getattr(row, c.name) for c in Indicator.__table__.columns},
                                     "run_id": later_id}))  # fmt: skip
        before.run_id = later_id
    try:
        headers = auth(own, "personal_tutor", tutor)
        assert client.get(f"/v1/students/{student}/indicator", headers=headers).status_code == 404
        _reachable_by_supporters_only(own, client, tutor, student, url)
    finally:
        with transaction(own.engine) as session:
            publication = session.get(Publication, own.settings.target)
            assert publication is not None
            publication.run_id = served_id
            session.flush()
            session.execute(delete(Indicator).where(Indicator.run_id == later_id))
            session.execute(delete(ScoringRun).where(ScoringRun.id == later_id))


def test_contacts_stay_reachable_by_those_who_support_the_student_once_the_model_is_rejected(
    own: Served,
) -> None:
    tutor, student = _tutored(own, 2)
    settings = own.settings.model_copy(
        update={"rate_limit_per_minute": 1_000_000, "champion_recheck_seconds": 0.0}
    )
    with transaction(own.engine) as session:
        version = session.scalar(select(ModelDecision.model_version).where(ModelDecision.kind == "promoted"))
    assert version is not None

    def review(approve: bool) -> None:
        with transaction(own.engine) as session:
            decisions.record_review(
                session, "waymark-not-completing", version=version, approve=approve, reviewer="E2",
                note="reinstated" if approve else "withdrawn", recorded_by="cli",
            )  # fmt: skip

    with TestClient(create_app(settings)) as running:
        url = _contact(own, running, tutor, student)
        review(False)
        try:
            headers = auth(own, "personal_tutor", tutor)
            assert running.get("/v1/caseload", headers=headers).json()["available"] is False
            assert running.get(f"/v1/students/{student}/indicator", headers=headers).status_code == 404
            _reachable_by_supporters_only(own, running, tutor, student, url)
        finally:
            review(True)
        assert running.get("/v1/caseload", headers=auth(own, "personal_tutor", tutor)).json()["available"]


def test_a_safeguarding_contact_stays_with_those_who_support_the_student_while_they_are_left_out(
    own: Served, client: TestClient
) -> None:
    """A safeguarding follow-up had left its tutor's worklist, unreadable and unclosable, once the student
    objected (docs/reviews.md): the restriction covers being scored and listed, not the duty of care."""
    tutor, student = _tutored(own, 3)
    headers, me = auth(own, "personal_tutor", tutor), auth(own, "student", student)
    leader = auth(own, "module_leader", _leader_of(own, student))
    contacts = f"/v1/students/{student}/contacts"
    assert (
        client.put("/v1/me/consent", json={"purpose": CONSENT, "granted": True}, headers=me).status_code
        == 200
    )
    agreed = client.post(
        contacts, json={"channel": "email", "purpose": CONSENT, "note": "n"}, headers=headers
    )
    assert agreed.status_code == 201 and agreed.json()["basis"] == "consent"
    # agreed to, with the safeguarding exemption named as well: kept with it, so it outlasts the objection
    concern = {"channel": "phone", "purpose": CONSENT, "exemption": "safeguarding", "note": "a worry"}
    agreed_concern = client.post(contacts, json=concern, headers=headers)
    assert agreed_concern.status_code == 201, agreed_concern.text
    assert (agreed_concern.json()["basis"], agreed_concern.json()["exemption"]) == ("consent", "safeguarding")
    both_kept = [int(agreed_concern.json()["id"])]

    def under(exemption: str, note: str) -> int:
        body = {
            "channel": "phone",
            "purpose": "outreach_contact" if exemption == "sponsorship_duty" else "wellbeing_referral",
            "exemption": exemption,
            "note": note,
            "follow_up_on": "2026-12-14",
        }
        made = client.post(contacts, json=body, headers=headers)
        assert made.status_code == 201 and made.json()["basis"] == "exemption", made.text
        return int(made.json()["id"])

    # consent to outreach was given above: a visa sponsor's follow-up is on it, so the student withdraws
    # it first (a contact under sponsorship_duty must be an exemption's)
    client.put("/v1/me/consent", json={"purpose": CONSENT, "granted": False}, headers=me)
    visa = under("sponsorship_duty", "attendance follow-up for the sponsor")
    kept = under("safeguarding", "a concern for their safety")
    both_kept.insert(0, kept)  # newest first
    url = f"{contacts}/{kept}"
    objected = client.post("/v1/me/objection", json={"detail": "lists add to my worries"}, headers=me)
    assert objected.status_code == 201, objected.text
    try:
        assert client.get(f"/v1/students/{student}/indicator", headers=headers).status_code == 404
        page = client.get("/v1/worklist", headers=headers).json()
        assert student not in {r["student_id"] for r in page["items"]}  # on no list
        held = [(h["student_id"], h["contact_id"], h["exemption"]) for h in page["left_out_follow_ups"]]
        # soonest follow-up first; the sponsor's follow-up is not kept
        assert held == [(student, kept, "safeguarding"), (student, both_kept[1], "safeguarding")]
        assert page["left_out_follow_ups"][0]["exemption_text"].startswith("A safeguarding concern")
        # only those contacts: not the sponsor's, not the one on their agreement alone, nor their answers
        seen = client.get(contacts, headers=headers)
        assert seen.status_code == 200 and [c["id"] for c in seen.json()] == both_kept
        # a leader of their module who never worked on them: not theirs to follow up
        assert client.get(contacts, headers=leader).status_code == 404
        assert client.get("/v1/worklist", headers=leader).json()["left_out_follow_ups"] == []
        assert client.get(f"/v1/students/{student}/consent", headers=headers).status_code == 404
        for other in (agreed.json()["id"], visa):
            assert client.patch(f"{contacts}/{other}", json={"note": "x"}, headers=headers).status_code == 404
        body = {"channel": "phone", "purpose": CONSENT, "exemption": "safeguarding", "note": "again"}
        assert client.post(contacts, json=body, headers=headers).status_code == 404  # none opened meanwhile
        # the same person in a role without the relationship, and strangers, are told nothing
        assert client.get(contacts, headers=auth(own, "support_staff", tutor)).status_code == 404
        for role, stranger in _strangers(own, student):
            other = auth(own, role, stranger)
            assert client.get(contacts, headers=other).status_code == 404
            assert client.patch(url, json={"note": "x"}, headers=other).status_code == 404
            assert client.get("/v1/worklist", headers=other).json()["left_out_follow_ups"] == []
        assert _records(own, student, "contacts_view_under_exemption") == 1
        assert _records(own, student, "follow_up_listed") == 1
        # the student's copy names who may still read them: it had listed nobody (GDPR Art. 15(1)(c))
        tutors = own.access[(own.access.relationship == "personal_tutor") & (own.access.scope_id == student)]
        assert _readers(client, me) == [
            {
                "relationship": "personal_tutor",
                "scope_type": "student",
                "scope_id": student,
                "staff": tutors.staff_id.nunique(),
            }
        ]
        # one who moved a kept contact on, with no relationship naming the student, is counted apart
        leader_id = _leader_of(own, student)
        with transaction(own.engine) as session:
            moved = ContactEvent(
                contact_id=kept,
                student_id=student,
                staff_id=leader_id,
                status="to_contact",
                note="",
                at=datetime.now(UTC),
            )
            session.add(moved)
            session.flush()
            moved_id = moved.id
        assert client.get(contacts, headers=leader).status_code == 200  # indicators.follows_up
        assert _readers(client, me) == [
            {"relationship": "personal_tutor", "scope_type": "student", "scope_id": student,
             "staff": tutors.staff_id.nunique()},
            {"relationship": "opened_or_followed_up", "scope_type": "kept_contacts",
             "scope_id": "safeguarding", "staff": 1},
        ]  # fmt: skip
        # one who moved it on whose relationships, current as they are, reach other students only: not
        # a reader (a tutor whose relationship with the student ended, say), as follows_up reads it
        _, stranger = _strangers(own, student)[0]
        with transaction(own.engine) as session:
            away = ContactEvent(
                contact_id=kept, student_id=student, staff_id=stranger, status="to_contact", note="",
                at=datetime.now(UTC),
            )  # fmt: skip
            session.add(away)
            session.flush()
            away_id = away.id
        assert client.get(contacts, headers=auth(own, "personal_tutor", stranger)).status_code == 404
        assert _readers(client, me)[-1]["staff"] == 1
        with transaction(own.engine) as session:
            session.execute(delete(ContactEvent).where(ContactEvent.id == away_id))
        # upheld, the estimates made of them go: only a relationship naming the student still reaches it
        dpo = auth(own, "dpo", "dpo-1")
        queue = {r["id"]: r for r in client.get("/v1/dpo/requests", headers=dpo).json()}
        assert queue[objected.json()["id"]]["kept_contacts"] == 2  # the DPO sees what stays in reach
        # and who may reach it: the tutors naming the student, and the leader who moved one on
        assert queue[objected.json()["id"]]["kept_contact_readers"] == tutors.staff_id.nunique() + 1
        decided = {"uphold": True, "note": "Upheld."}
        assert (
            client.post(f"/v1/dpo/objection/{objected.json()['id']}", json=decided, headers=dpo).status_code
            == 200
        )
        assert client.get(contacts, headers=leader).status_code == 404
        # nor, then, is the leader who moved it on counted among its readers
        assert [r["relationship"] for r in _readers(client, me)] == ["personal_tutor"]
        with transaction(own.engine) as session:
            session.execute(delete(ContactEvent).where(ContactEvent.id == moved_id))
        followed = client.patch(url, json={"status": "contacted", "note": "spoke to them"}, headers=headers)
        assert followed.status_code == 200, followed.text
        # a relationship that has ended reaches nothing, whoever opened the contact
        with transaction(own.engine) as session:
            session.execute(
                update(AccessGrant)
                .where(AccessGrant.staff_id == tutor, AccessGrant.scope_id == student)
                .values(valid_until=date(2020, 1, 1))
            )
        try:
            assert client.get(contacts, headers=headers).status_code == 404
            # nor is a relationship past its days counted among the readers
            others = tutors.staff_id.nunique() - 1
            assert _readers(client, me) == (
                [
                    {
                        "relationship": "personal_tutor",
                        "scope_type": "student",
                        "scope_id": student,
                        "staff": others,
                    }
                ]
                if others
                else []
            )
        finally:
            with transaction(own.engine) as session:
                session.execute(
                    update(AccessGrant)
                    .where(AccessGrant.staff_id == tutor, AccessGrant.scope_id == student)
                    .values(valid_until=None)
                )
        closing = {"status": "closed", "outcome": "referred_to_service", "note": "with the safeguarding lead"}
        assert client.patch(url, json=closing, headers=headers).status_code == 200
        assert client.get(contacts, headers=headers).status_code == 200  # one is still open
        done = client.patch(f"{contacts}/{both_kept[1]}", json=closing, headers=headers)
        assert done.status_code == 200, done.text
        assert client.get(contacts, headers=headers).status_code == 404  # nothing of theirs in reach now
        assert client.get("/v1/worklist", headers=headers).json()["left_out_follow_ups"] == []
        assert _readers(client, me) == []  # nor in anyone's: the copy says so
        said = {e["action"] for e in client.get("/v1/me/access-log", headers=me).json()}
        assert {"contacts_view_under_exemption", "follow_up_listed", "contact_update"} <= said
    finally:
        assert client.delete(f"/v1/me/requests/{objected.json()['id']}", headers=me).status_code == 200
