"""Students' rights and the DPO's work end to end; audit semantics; champion changes without restart.

These tests rescore and reject, so they use a served cohort of their own (SQLite, and PostgreSQL in CI).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, String, delete, func, select, text

from tests.champion import Champion, permissive_policy
from tests.service_setup import Served, api_client, auth, backends, own_cohort
from waymark.fairness.run import audit_model
from waymark.models.data import load_learning_data
from waymark.models.registry import configure
from waymark.models.settings import Settings, get_settings
from waymark.service import decisions, sessions
from waymark.service.access import narrowed, readable
from waymark.service.app import create_app
from waymark.service.db.engine import one_student_at_a_time, transaction
from waymark.service.db.schema import (
    AccessGrant,
    AuditRecord,
    Base,
    Consent,
    Contact,
    ContactEvent,
    DirectoryEntry,
    Feedback,
    Indicator,
    Intervention,
    ModelDecision,
    ProcessingRestriction,
    RightsRequest,
    ScoringRun,
    TrainingExclusion,
)
from waymark.service.grants import ImportRefused, import_grants
from waymark.service.scoring import publish, score
from waymark.service.security import Principal

# Where a processed erasure may leave the student's id, and why (docs/service.md lists the same).
STATUTORY = {
    "audit_log": "the record of who read the student's data, a legal record",
    "training_exclusions": "so the student is never trained on, scored or audited again",
    "rights_requests": "that the request was made and when it was handled (its free text is removed)",
}


@pytest.fixture(scope="module", params=backends())
def own(
    request: pytest.FixtureRequest,
    champion: Champion,
    synth_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    root = tmp_path_factory.mktemp(f"rights-{request.param}")
    with own_cohort(champion, synth_dir, request.param, root) as served:
        yield served


@pytest.fixture(scope="module")
def client(own: Served) -> Iterator[TestClient]:
    with api_client(own) as client:
        yield client


def _tutor(served: Served) -> tuple[str, str]:
    tutors = served.access[served.access.relationship == "personal_tutor"]
    tutors = tutors[tutors.scope_id.isin(served.indicators.student_id)]
    return str(tutors.staff_id.iloc[0]), str(tutors.scope_id.iloc[0])


def _tables_holding(engine: Engine, student: str) -> set[str]:
    """Tables with a row naming ``student`` in any text column (not only one called student_id)."""
    found = set()
    with transaction(engine) as session:
        for table in Base.metadata.sorted_tables:
            for column in table.c:
                if not isinstance(column.type, String):
                    continue
                query = select(func.count()).select_from(table).where(column == student)
                if session.scalar(query):
                    found.add(table.name)
    return found


def test_erased_student_is_not_rescored_and_only_statutory_fields_keep_their_id(
    own: Served, client: TestClient
) -> None:
    # A personal tutor's grant names this student (the last such, not the one other tests here read as).
    tutored = own.access[
        (own.access.relationship == "personal_tutor") & own.access.scope_id.isin(own.indicators.student_id)
    ]
    student = str(tutored.scope_id.iloc[-1])
    assert student != _tutor(own)[1]
    me = auth(own, "student", student)
    sessions.start(own.engine, sub=student, name="Their Real Name", roles=["student"], hours=1)
    consent = {"purpose": "outreach_contact", "granted": True}
    assert client.put("/v1/me/consent", json=consent, headers=me).status_code == 200
    fix = client.post(
        "/v1/me/rectification", json={"detail": "my programme is wrong: I moved to BSc History"}, headers=me
    )
    dpo = auth(own, "dpo", "dpo-1")
    decided = {"accept": True, "note": "Your move to BSc History was passed to Registry."}
    assert (
        client.post(f"/v1/dpo/rectification/{fix.json()['id']}", json=decided, headers=dpo).status_code == 200
    )
    request = client.post(
        "/v1/me/erasure", json={"detail": "please erase; I left after an illness"}, headers=me
    )
    before = _tables_holding(own.engine, student)
    assert {"access_grants", "web_sessions"} <= before
    assert client.post(f"/v1/dpo/erasure/{request.json()['id']}", headers=dpo).status_code == 200
    assert _tables_holding(own.engine, student) <= set(STATUTORY)
    # The institution's next export of relationships still lists the tutor's grant: it is not loaded again.
    import_grants(own.engine, own.folder / "access.csv")
    assert _tables_holding(own.engine, student) <= set(STATUTORY)
    with transaction(own.engine) as session:
        notes = session.scalars(
            select(RightsRequest.outcome_note).where(RightsRequest.student_id == student)
        ).all()
    assert "BSc History" not in str(notes)
    with transaction(own.engine) as session:
        texts = session.scalars(select(RightsRequest.detail).where(RightsRequest.student_id == student)).all()
    assert texts and all(t == "" for t in texts)
    outcome = client.get("/v1/me/requests", headers=me).json()
    assert {"kind": "erasure", "outcome": "erased"} in [
        {k: r[k] for k in ("kind", "outcome")} for r in outcome
    ]
    configure(own.settings)
    again = score(own.folder, own.engine, model_name="waymark-not-completing", week=8)
    with transaction(own.engine) as session:
        rows = session.scalar(
            select(func.count()).select_from(Indicator).where(Indicator.run_id == again.run_id)
        )
        mine = session.scalar(
            select(func.count())
            .select_from(Indicator)
            .where(Indicator.run_id == again.run_id, Indicator.student_id == student)
        )
    assert rows and mine == 0
    assert "indicators" not in _tables_holding(own.engine, student)
    # The data folder still holds the student (until `waymark data erase`), and the run says so.
    with transaction(own.engine) as session:
        erased = set(session.scalars(select(TrainingExclusion.student_id)))
    assert student in erased
    assert again.erased_in_folder == len(erased & set(own.indicators.student_id)) >= 1


def _erase(client: TestClient, own: Served, student: str) -> None:
    """The student asks for erasure and the DPO processes it, through the API."""
    asked = client.post("/v1/me/erasure", json={"detail": ""}, headers=auth(own, "student", student))
    done = client.post(f"/v1/dpo/erasure/{asked.json()['id']}", headers=auth(own, "dpo", "dpo-1"))
    assert done.status_code == 200, done.text


@pytest.mark.parametrize("when", ["before the rows are written", "after the rows are written"])
def test_an_erasure_processed_during_a_scoring_run_is_not_undone_by_its_publication(
    own: Served, client: TestClient, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """The run read the erased students before the erasure: it publishes without the student, either way.

    Before the fix, the first timing published the erased student's indicator to their tutor, and
    the second refused the whole run (a row fewer than produced).
    """
    tutor, student = _tutored(own, -2 if when.startswith("before") else -3)
    if when.startswith("before"):  # the job has read who was erased; the erasure lands as it scores
        read = publish.erased_students

        def then_erased(engine: Engine, *, key: str) -> frozenset[str]:
            found = read(engine, key=key)
            _erase(client, own, student)
            return found

        monkeypatch.setattr(publish, "erased_students", then_erased)
    else:  # every row is written, the erasure deletes the student's, and then the run publishes
        swap = publish.swap

        def erased_then_swap(engine: Engine, run_id: int, **kwargs: Any) -> int:
            _erase(client, own, student)
            return swap(engine, run_id, **kwargs)

        monkeypatch.setattr(publish, "swap", erased_then_swap)
    configure(own.settings)
    run = score(own.folder, own.engine, model_name="waymark-not-completing", week=8)
    with transaction(own.engine) as session:
        published = session.scalars(select(Indicator.student_id).where(Indicator.run_id == run.run_id)).all()
        stored = session.get(ScoringRun, run.run_id)
    assert stored is not None and stored.status == "complete"
    assert student not in published and run.students == stored.students == len(published) > 500
    read = client.get(f"/v1/students/{student}/indicator", headers=auth(own, "personal_tutor", tutor))
    assert read.status_code == 404


def test_the_fairness_audit_leaves_erased_students_out(champion: Champion, synth_dir: Path) -> None:
    configure(champion.settings)
    uri = f"models:/{champion.name}/{champion.version}"
    policy = dataclasses.replace(permissive_policy(), weeks=(8,), capacities=(0.1,), bootstrap_resamples=20)
    data = load_learning_data(synth_dir)
    some = frozenset(data.registrations.student_id.drop_duplicates().sample(200, random_state=0))

    def audited(exclude: frozenset[str]) -> int:
        first = audit_model(uri, synth_dir, policy=policy, exclude=exclude).audits[0]
        return sum(g.students for g in first.groups)

    everyone, fewer = audited(frozenset()), audited(some)
    registrations = int(data.registrations.student_id.isin(some).sum())
    assert 0 < everyone - fewer <= registrations


def test_the_dpo_decides_a_rectification_and_the_student_sees_the_outcome(
    own: Served, client: TestClient
) -> None:
    student = sorted(set(own.indicators.student_id))[0]
    me, dpo = auth(own, "student", student), auth(own, "dpo", "dpo-1")
    made = client.post(
        "/v1/me/rectification", json={"detail": "my study mode is part-time"}, headers=me
    ).json()
    listed = client.get("/v1/dpo/requests", headers=dpo).json()
    assert {"id": made["id"], "detail": "my study mode is part-time"} in [
        {"id": r["id"], "detail": r["detail"]} for r in listed
    ]
    decision = {"accept": False, "note": "The student record shows full-time study; ask Registry to check."}
    assert client.post(f"/v1/dpo/rectification/{made['id']}", json=decision, headers=dpo).status_code == 200
    assert client.post(f"/v1/dpo/rectification/{made['id']}", json=decision, headers=dpo).status_code == 404
    mine = {r["id"]: r for r in client.get("/v1/me/requests", headers=me).json()}[made["id"]]
    assert (mine["status"], mine["outcome"], mine["outcome_note"]) == ("done", "declined", decision["note"])
    # What was asked stays beside the outcome: the student and the DPO check a correction against it.
    assert mine["detail"] == "my study mode is part-time"
    with transaction(own.engine) as session:
        stored = session.get(RightsRequest, made["id"])
        assert stored is not None and stored.detail == "my study mode is part-time"
    assert client.post(f"/v1/dpo/rectification/{made['id']}", json=decision, headers=me).status_code == 403


def test_a_student_may_have_five_open_corrections_at_once_so_no_one_buries_the_dpos_queue(
    own: Served, client: TestClient
) -> None:
    """A red team filed 300 correction requests as one student in 2.3 s; each is a statutory request on
    the DPO's queue. The sixth open one is refused (nothing recorded); a withdrawn one makes room."""
    student = sorted(set(own.indicators.student_id))[-2]
    me = auth(own, "student", student)
    made = [
        client.post("/v1/me/rectification", json={"detail": f"mark {i} is wrong"}, headers=me)
        for i in range(6)
    ]
    assert [r.status_code for r in made] == [201] * 5 + [409]
    assert "You have 5 requests for a correction" in made[-1].json()["detail"]
    with transaction(own.engine) as session:
        kept = session.scalars(select(RightsRequest.detail).where(RightsRequest.student_id == student)).all()
    assert sorted(kept) == [f"mark {i} is wrong" for i in range(5)]
    assert client.delete(f"/v1/me/requests/{made[0].json()['id']}", headers=me).status_code == 200
    again = client.post("/v1/me/rectification", json={"detail": "marks 0 and 5 are wrong"}, headers=me)
    assert again.status_code == 201
    for r in client.get("/v1/me/requests", headers=me).json():
        if r["status"] == "open":
            assert client.delete(f"/v1/me/requests/{r['id']}", headers=me).status_code == 200


def test_a_student_withdraws_an_open_request_and_the_dpo_may_decline_an_erasure_with_a_reason(
    own: Served, client: TestClient
) -> None:
    """A red team found no way for a student to take back a request, nor for the DPO to refuse an
    erasure the law lets them refuse (a legal claim): the only action on one was to erase."""
    student = sorted(set(own.indicators.student_id))[1]
    me, dpo = auth(own, "student", student), auth(own, "dpo", "dpo-1")
    asked = client.post("/v1/me/erasure", json={"detail": "erase please"}, headers=me).json()
    other = auth(own, "student", sorted(set(own.indicators.student_id))[2])
    assert client.delete(f"/v1/me/requests/{asked['id']}", headers=other).status_code == 404  # not theirs
    assert client.delete(f"/v1/me/requests/{asked['id']}", headers=me).status_code == 200
    assert client.delete(f"/v1/me/requests/{asked['id']}", headers=me).status_code == 404  # not open now
    assert asked["id"] not in {r["id"] for r in client.get("/v1/dpo/requests", headers=dpo).json()}
    mine = {r["id"]: r for r in client.get("/v1/me/requests", headers=me).json()}[asked["id"]]
    assert (mine["status"], mine["outcome"], mine["detail"]) == ("done", "withdrawn", "")
    words = "erase it: I am appealing my marks"
    again = client.post("/v1/me/erasure", json={"detail": words}, headers=me).json()  # may ask anew
    refused = client.post(f"/v1/dpo/erasure/{again['id']}/refusal", json={"note": ""}, headers=dpo)
    assert refused.status_code == 422  # a reason is required
    reason = "Your records are needed for an academic appeal you have open (UK GDPR Art. 17(3)(e))."
    declined = client.post(f"/v1/dpo/erasure/{again['id']}/refusal", json={"note": reason}, headers=dpo)
    assert declined.status_code == 200
    mine = {r["id"]: r for r in client.get("/v1/me/requests", headers=me).json()}[again["id"]]
    assert (mine["outcome"], mine["outcome_note"]) == ("declined", reason)
    assert mine["detail"] == words  # nothing was erased: the student keeps what they asked
    with transaction(own.engine) as session:
        assert session.get(TrainingExclusion, student) is None  # nothing was erased
    read = client.get("/v1/me/indicator", params={"ask": "true"}, headers=me).json()
    assert read["shown"]
    log = {e["action"] for e in client.get("/v1/me/access-log", headers=me).json()}
    assert {"erasure_withdrawn", "erasure_declined"} <= log


def test_estimates_resting_on_data_the_student_disputes_say_so_until_the_next_run(
    own: Served, client: TestClient
) -> None:
    """A red team's finding: an accepted correction of a mark changed nothing that was served, and
    nothing said the estimate rested on the disputed mark."""
    tutor = sorted(own.access[own.access.relationship == "personal_tutor"].staff_id)[-1]
    staff = auth(own, "personal_tutor", tutor)
    listed = client.get("/v1/worklist", headers=staff).json()["items"]  # a student the tutor reads now
    student = str(listed[-1]["student_id"])
    me, dpo = auth(own, "student", student), auth(own, "dpo", "dpo-1")

    def notices() -> tuple[str | None, str | None]:
        read = client.get(f"/v1/students/{student}/indicator", headers=staff)
        mine = client.get("/v1/me/indicator", params={"ask": "true"}, headers=me)
        assert read.status_code == mine.status_code == 200, (read.text, mine.text)
        # the worklist's row says so too (a reviewer found the disputed student first there, unmarked)
        rows = client.get("/v1/worklist", params={"search": student}, headers=staff).json()["items"]
        row = next(r for r in rows if r["student_id"] == student)
        assert row["correction_pending"] is (read.json()["correction"] is not None)
        return read.json()["correction"], mine.json()["correction"]

    assert notices() == (None, None)
    made = client.post("/v1/me/rectification", json={"detail": "my A2 mark is 68, not 19"}, headers=me).json()
    staff_said, own_said = notices()
    assert staff_said and "has not decided yet" in staff_said and "The student asked on" in staff_said
    assert own_said and own_said.startswith("You asked on")
    accepted = {"accept": True, "note": "Registry corrected the mark."}
    assert client.post(f"/v1/dpo/rectification/{made['id']}", json=accepted, headers=dpo).status_code == 200
    staff_said, own_said = notices()
    # Accepted: made in the records system, not yet in the data the estimates are made from, however
    # many runs since (a weekly run on data not yet corrected had taken the notice away).
    assert staff_said and "was accepted on" in staff_said and "has not yet been recorded" in staff_said
    assert own_said and own_said.startswith("A correction you asked for was accepted on")
    waiting = {r["id"]: r for r in client.get("/v1/dpo/requests", headers=dpo).json()}
    assert waiting[made["id"]]["outcome"] == "accepted"  # on the DPO's queue until recorded as applied
    with transaction(own.engine) as session:
        stored = session.get(RightsRequest, made["id"])
        assert stored is not None and stored.processed_at is not None
        stored.processed_at = datetime.now(UTC) - timedelta(days=30)  # long before the served run
    assert notices()[0] is not None
    # The DPO records that it reached the data: the estimates made before that rest on the old data.
    applied = client.post(f"/v1/dpo/rectification/{made['id']}/applied", headers=dpo)
    assert applied.status_code == 200, applied.text
    assert client.post(f"/v1/dpo/rectification/{made['id']}/applied", headers=dpo).status_code == 404
    assert made["id"] not in {r["id"] for r in client.get("/v1/dpo/requests", headers=dpo).json()}
    staff_said, own_said = notices()
    assert staff_said and "reached the data on" in staff_said and "rest on the data before" in staff_said
    assert own_said and own_said.startswith("A correction you asked for reached the data on")
    # Once a run has scored after that, the estimates rest on the corrected data: nothing to say.
    with transaction(own.engine) as session:
        stored = session.get(RightsRequest, made["id"])
        assert stored is not None
        stored.applied_at = datetime.now(UTC) - timedelta(days=1)  # before the served run began
    assert notices() == (None, None)
    log = {e["action"] for e in client.get("/v1/me/access-log", headers=me).json()}
    assert "correction_applied" in log


def test_retention_run_applies_the_policy_to_every_kind_and_logs_itself(own: Served, tmp_path: Path) -> None:
    long_ago, now = datetime.now(UTC) - timedelta(days=800), datetime.now(UTC)
    with transaction(own.engine) as session:
        run = session.scalar(select(ScoringRun.id).order_by(ScoringRun.id))
        for at, who in ((long_ago, "OLD"), (now, "NEW")):
            session.add(Feedback(run_id=run, student_id=f"{who}1", module_id="M", presentation_id="P",
                                 staff_id="t", value="useful", note="", at=at))  # fmt: skip
            session.add(Intervention(student_id=f"{who}1", staff_id="t", purpose="outreach_contact",
                                     description="call", basis="consent", at=at))  # fmt: skip
            session.add(Consent(student_id=f"{who}1", purpose="outreach_contact", granted=True, at=at))
            session.add(RightsRequest(student_id=f"{who}1", kind="rectification", detail="", status="done",
                                      created_at=at, processed_at=at, outcome="accepted",
                                      applied_at=at))  # fmt: skip
            contact = Contact(student_id=f"{who}1", staff_id="t", role="personal_tutor", run_id=None,
                              channel="email", purpose="outreach_contact", basis="consent", exemption=None,
                              status="closed", outcome="agreed_action", follow_up_on=None, note="",
                              created_at=at, updated_at=at)  # fmt: skip
            session.add(contact)
            session.flush()
            session.add(ContactEvent(contact_id=contact.id, student_id=f"{who}1", staff_id="t",
                                     status="closed", outcome="agreed_action", follow_up_on=None, note="",
                                     at=at))  # fmt: skip
            session.add(DirectoryEntry(student_id=f"{who}1", display_name="A B", preferred_name=None,
                                       pronouns=None, email="a.b@example.ac.uk", imported_at=at))  # fmt: skip
    env = {
        **{k: v for k, v in os.environ.items() if k.startswith(("PATH", "HOME"))},
        "WAYMARK_DATABASE_URL": own.settings.database_url,
        "WAYMARK_ENV": "development",
        "WAYMARK_DEV_KEY_DIR": str(own.settings.dev_key_dir),
    }
    done = subprocess.run(
        [sys.executable, "-m", "waymark", "retention", "run"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (
        "1 feedback notes, 1 interventions, 1 contacts, 1 directory entries, 1 lapsed consents, "
        "1 closed requests" in " ".join(done.stdout.split())
    )
    kinds = ("feedback", "interventions", "contacts", "contact_events", "student_directory", "consents")
    for table in (*kinds, "rights_requests"):
        assert table not in _tables_holding(own.engine, "OLD1")
        assert table in _tables_holding(own.engine, "NEW1")
    with transaction(own.engine) as session:
        logged = session.scalars(select(AuditRecord).where(AuditRecord.action == "retention_run")).all()
    assert len(logged) == 1 and logged[0].role == "operator"


def test_a_caller_records_only_their_roles_purposes(own: Served, client: TestClient) -> None:
    tutor, student = _tutor(own)
    headers = auth(own, "personal_tutor", tutor)
    for purpose, status in (("data_protection", 403), ("own_data", 403), ("student_support", 200)):
        answer = client.get(
            f"/v1/students/{student}/indicator", headers={**headers, "Waymark-Purpose": purpose}
        )
        assert answer.status_code == status, purpose
    dpo_reading = client.get(
        "/v1/dpo/requests", headers={**auth(own, "dpo", "dpo-1"), "Waymark-Purpose": "personal_tutoring"}
    )
    assert dpo_reading.status_code == 403


def test_the_server_names_each_request_and_keeps_the_clients_id_beside_it(
    own: Served, client: TestClient
) -> None:
    tutor, student = _tutor(own)
    answer = client.get(
        f"/v1/students/{student}/indicator",
        headers={**auth(own, "personal_tutor", tutor), "X-Request-ID": "pretend-i-am-the-dpo"},
    )
    server_id = answer.headers["x-request-id"]
    assert server_id != "pretend-i-am-the-dpo"
    with transaction(own.engine) as session:
        rec = session.scalars(select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(1)).one()
    assert (rec.request_id, rec.client_request_id, rec.student_id) == (
        server_id,
        "pretend-i-am-the-dpo",
        student,
    )


def test_a_rejected_champion_stops_being_served_without_a_restart(own: Served, client: TestClient) -> None:
    tutor, student = _tutor(own)
    staff, reviewer = auth(own, "personal_tutor", tutor), auth(own, "ethics_reviewer", "E0001")
    with transaction(own.engine) as session:
        version = session.scalar(select(ModelDecision.model_version).where(ModelDecision.kind == "promoted"))
    path = f"/v1/models/waymark-not-completing/versions/{version}/review"
    assert client.get("/v1/caseload", headers=staff).json()["available"] is True
    rejected = client.post(
        path, json={"approve": False, "note": "withdrawn pending review"}, headers=reviewer
    )
    assert rejected.status_code == 200 and rejected.json()["ethics_decision"] == "rejected"
    assert client.get("/v1/caseload", headers=staff).json()["available"] is False
    assert client.get(f"/v1/students/{student}/indicator", headers=staff).status_code == 404
    read = client.get(f"/v1/fairness/reports/waymark-not-completing/versions/{version}", headers=reviewer)
    unnamed = client.post(path, json={"approve": True, "note": "reinstated after review"}, headers=reviewer)
    assert unnamed.status_code == 422 and "audit_id" in unnamed.text  # an approval names what was read
    body = {"approve": True, "note": "reinstated after review", "audit_id": read.json()["audit_id"]}
    restored = client.post(path, json=body, headers=reviewer)
    assert restored.status_code == 200 and restored.json()["champion"] is True
    assert client.get("/v1/caseload", headers=staff).json()["available"] is True
    with transaction(own.engine) as session:
        kinds = session.scalars(
            select(ModelDecision.recorded_by).order_by(ModelDecision.id.desc()).limit(2)
        ).all()
    assert kinds == ["E0001", "E0001"]


def test_a_decision_made_elsewhere_reaches_a_running_service_at_its_next_check(own: Served) -> None:
    settings = own.settings.model_copy(update={"champion_recheck_seconds": 0.0})
    tutor, _ = _tutor(own)
    staff = auth(own, "personal_tutor", tutor)
    with transaction(own.engine) as session:
        version = session.scalar(select(ModelDecision.model_version).where(ModelDecision.kind == "promoted"))
    assert version is not None
    with TestClient(create_app(settings)) as running:
        assert running.get("/v1/caseload", headers=staff).json()["available"] is True
        with transaction(own.engine) as session:  # e.g. `waymark model review --reject` on another machine
            decisions.record_review(
                session,
                "waymark-not-completing",
                version=version,
                approve=False,
                reviewer="E2",
                note="withdrawn",
                recorded_by="cli",
            )
        try:
            assert running.get("/v1/caseload", headers=staff).json()["available"] is False
        finally:
            with transaction(own.engine) as session:
                decisions.record_review(
                    session,
                    "waymark-not-completing",
                    version=version,
                    approve=True,
                    reviewer="E2",
                    note="reinstated",
                    recorded_by="cli",
                )
        assert running.get("/v1/caseload", headers=staff).json()["available"] is True


def test_the_dpo_sees_what_retention_would_remove_before_it_runs(own: Served, client: TestClient) -> None:
    dpo = auth(own, "dpo", "dpo-1")
    long_ago = datetime.now(UTC) - timedelta(days=800)
    with transaction(own.engine) as session:
        session.add(Consent(student_id="OLD2", purpose="outreach_contact", granted=True, at=long_ago))
        session.add(DirectoryEntry(student_id="OLD2", display_name="C D", preferred_name=None, pronouns=None,
                                   email="c.d@example.ac.uk", imported_at=long_ago))  # fmt: skip
    before = client.get("/v1/dpo/retention", headers=dpo).json()
    assert (before["due"]["consents"], before["due"]["directory_entries"]) == (1, 1)
    assert before["retention_days"] == own.settings.retention_days
    assert "student_directory" in _tables_holding(own.engine, "OLD2")  # counting removed nothing
    assert client.post("/v1/dpo/retention", headers=dpo).status_code == 200
    after = client.get("/v1/dpo/retention", headers=dpo).json()
    assert (after["due"]["consents"], after["due"]["directory_entries"]) == (0, 0)
    assert after["last_run_at"] is not None
    assert client.get("/v1/dpo/retention", headers=auth(own, "ethics_reviewer", "rev-1")).status_code == 403


def _waiting_on_a_lock(engine: Engine) -> bool:
    """Whether a transaction of this database waits for an advisory lock another one holds."""
    query = text(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        "WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()"
    )
    with engine.connect() as connection:
        return bool(connection.scalar(query))


def test_two_erasure_requests_sent_at_once_make_one(own: Served, client: TestClient) -> None:
    """A double click: the second request waits for the first's transaction and is then refused.

    Before the fix both found no open request under PostgreSQL's READ COMMITTED and both were
    recorded. SQLite's write transactions already run one at a time.
    """
    if own.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's write transactions run one at a time from their start")
    student = "student-double-click"
    answers: list[Any] = []
    second = threading.Thread(
        target=lambda: answers.append(
            client.post("/v1/me/erasure", json={"detail": "again"}, headers=auth(own, "student", student))
        )
    )
    with transaction(own.engine) as session:  # the first request, between its check and its commit
        one_student_at_a_time(session, student)
        session.add(
            RightsRequest(
                student_id=student, kind="erasure", detail="", status="open", created_at=datetime.now(UTC)
            )
        )
        session.flush()
        second.start()
        while second.is_alive() and not _waiting_on_a_lock(own.engine):
            time.sleep(0.02)
    second.join()
    assert answers[0].status_code == 409, answers[0].text
    with transaction(own.engine) as session:
        kinds = session.scalars(select(RightsRequest.kind).where(RightsRequest.student_id == student)).all()
    assert kinds == ["erasure"]


def _tutored(served: Served, back: int) -> tuple[str, str]:
    """A personal tutor and their student: row ``-back`` (tests that erase the student count from the end)."""
    tutored = served.access[
        (served.access.relationship == "personal_tutor")
        & served.access.scope_id.isin(served.indicators.student_id)
    ]
    row = tutored.iloc[-back]
    return str(row.staff_id), str(row.scope_id)


def _until_it_waits(engine: Engine, other: threading.Thread) -> None:
    """Return once ``other`` waits for an advisory lock this test holds, or has finished without one."""
    deadline = time.monotonic() + 30  # a wait on anything else (a row lock) must not hang the suite
    while other.is_alive() and not _waiting_on_a_lock(engine) and time.monotonic() < deadline:
        time.sleep(0.02)


def test_an_erasure_processed_during_a_staff_write_erases_what_it_wrote(
    own: Served, client: TestClient
) -> None:
    """A tutor's write under way when the DPO processes an erasure: the erasure waits, then removes it.

    Before the fix, under PostgreSQL's READ COMMITTED, the erasure deleted what was committed and the
    write committed after it, leaving an intervention naming an erased student.
    """
    if own.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's write transactions run one at a time from their start")
    tutor, student = _tutored(own, 3)
    asked = client.post("/v1/me/erasure", json={"detail": ""}, headers=auth(own, "student", student))
    answers: list[Any] = []
    dpo = threading.Thread(
        target=lambda: answers.append(
            client.post(f"/v1/dpo/erasure/{asked.json()['id']}", headers=auth(own, "dpo", "dpo-1"))
        )
    )
    with transaction(own.engine) as session:  # the tutor's write, between its scope check and its commit
        one_student_at_a_time(session, student)
        session.add(Intervention(student_id=student, staff_id=tutor, purpose="outreach_contact",
                                 description="call", basis="consent", at=datetime.now(UTC)))  # fmt: skip
        session.flush()
        dpo.start()
        _until_it_waits(own.engine, dpo)
    dpo.join()
    assert answers[0].status_code == 200, answers[0].text
    assert _tables_holding(own.engine, student) <= set(STATUTORY)


def test_a_staff_write_sent_during_an_erasure_finds_the_student_gone(own: Served, client: TestClient) -> None:
    """A tutor's write arriving while an erasure is being processed waits for it and is then refused (404).

    Before the fix it read the student's indicator before the erasure committed and wrote a hold after.
    """
    if own.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's write transactions run one at a time from their start")
    tutor, student = _tutored(own, 2)
    answers: list[Any] = []
    write = threading.Thread(
        target=lambda: answers.append(
            client.put(
                f"/v1/students/{student}/wellbeing-hold",
                json={"withheld": True},
                headers=auth(own, "personal_tutor", tutor),
            )
        )
    )
    with transaction(own.engine) as session:  # the erasure, between its deletes and its commit
        one_student_at_a_time(session, student)
        session.execute(delete(Indicator).where(Indicator.student_id == student))
        write.start()
        _until_it_waits(own.engine, write)
    write.join()
    assert answers[0].status_code == 404, answers[0].text
    assert "student_preferences" not in _tables_holding(own.engine, student)


def test_processing_an_erasure_closes_the_same_students_other_open_requests(
    own: Served, client: TestClient
) -> None:
    """Two open erasure requests (recorded before one open request was the rule) are both answered by one
    erasure, and so is an open rectification: its detail is gone with the data, and a red team found it
    left in the DPO's queue for a student Waymark no longer holds."""
    student = "student-asked-twice"
    with transaction(own.engine) as session:
        made = [
            RightsRequest(
                student_id=student, kind=kind, detail="x", status="open", created_at=datetime.now(UTC)
            )
            for kind in ("erasure", "erasure", "rectification")
        ]
        session.add_all(made)
        session.flush()
        first, *_ = ids = [r.id for r in made]
    done = client.post(f"/v1/dpo/erasure/{first}", headers=auth(own, "dpo", "dpo-1"))
    assert done.status_code == 200, done.text
    mine = {r["id"]: r for r in client.get("/v1/me/requests", headers=auth(own, "student", student)).json()}
    assert [(mine[i]["kind"], mine[i]["status"], mine[i]["outcome"]) for i in ids] == [
        ("erasure", "done", "erased"),
        ("erasure", "done", "erased"),
        ("rectification", "done", "erased"),
    ]


def test_data_whose_ids_were_made_with_another_key_than_an_erasure_is_refused(
    own: Served, client: TestClient, tmp_path: Path
) -> None:
    """A red team imported the same export with a second secret: the erased student came back under a new
    pseudonym and was scored without a word. The erasure now records the key of the ids it was made
    under, and data whose ids were made otherwise is refused by scoring (and training and audits)."""
    import json
    import shutil

    from waymark.models.data.publish import MANIFEST
    from waymark.service.scoring import ScoringError

    _, student = _tutored(own, 4)
    with transaction(own.engine) as session:
        served_key = session.scalar(
            select(ScoringRun.pseudonym_key)
            .where(ScoringRun.status == "complete")
            .order_by(ScoringRun.id.desc())
        )
    _erase(client, own, student)
    with transaction(own.engine) as session:
        erasure = session.get(TrainingExclusion, student)
        assert erasure is not None and erasure.pseudonym_key == served_key == ""  # the synthetic ids
    again = tmp_path / "data"
    shutil.copytree(own.folder, again)
    manifest = json.loads((again / MANIFEST).read_text(encoding="utf-8"))
    (again / MANIFEST).write_text(json.dumps({**manifest, "pseudonym_key": "0123456789abcdef"}))
    configure(own.settings)
    with pytest.raises(ScoringError, match="pseudonym key 0123456789abcdef"):
        score(again, own.engine, model_name="waymark-not-completing", week=8)
    with pytest.raises(publish.ErasureKeyError, match="Import the data with the secret"):
        publish.erased_students(own.engine, key="0123456789abcdef")
    assert student in publish.erased_students(own.engine, key="")


def test_an_objection_or_erasure_under_an_id_waymark_holds_nothing_under_is_recorded_and_flagged(
    own: Served, client: TestClient
) -> None:
    """A red team's student signed in as s00000091 where the records write S00000091: their objection
    and erasure were answered as done while their tutor still read them. Refused, a student not scored
    yet could not object (a reviewer): recorded, said plainly, and flagged on the DPO's list."""
    tutor, student = _tutored(own, -8)
    written_otherwise = auth(own, "student", student.lower() if student != student.lower() else f"x{student}")
    dpo = auth(own, "dpo", "dpo-1")
    for asked in ("objection", "erasure"):
        made = client.post(f"/v1/me/{asked}", json={"detail": ""}, headers=written_otherwise)
        assert made.status_code == 201, made.text
        assert "holds nothing under the student number your sign-in gives" in made.json()["note"]
        assert f"before deciding your {asked}" in made.json()["note"]
        flagged = {r["kind"]: r["held"] for r in client.get("/v1/dpo/requests", headers=dpo).json()
                   if r["id"] == made.json()["id"]}  # fmt: skip
        assert flagged == {asked: False}
    assert (
        client.get(
            f"/v1/students/{student}/indicator", headers=auth(own, "personal_tutor", tutor)
        ).status_code
        == 200
    )
    # A student the service holds gets no such note, and the DPO's list says so.
    mine = auth(own, "student", student)
    asked = client.post("/v1/me/rectification", json={"detail": "my postcode"}, headers=mine).json()
    assert asked.get("note") is None
    listed = {r["id"]: r["held"] for r in client.get("/v1/dpo/requests", headers=dpo).json()}
    assert listed[asked["id"]] is True
    for r in client.get("/v1/me/requests", headers=written_otherwise).json():  # left as they were
        client.delete(f"/v1/me/requests/{r['id']}", headers=written_otherwise)
    client.delete(f"/v1/me/requests/{asked['id']}", headers=mine)


def test_a_student_who_objects_is_left_out_at_once_and_stays_out_once_the_objection_is_upheld(
    own: Served, client: TestClient
) -> None:
    """Erasure was the only way out of the list (docs/reviews.md). An objection (GDPR Art. 21) leaves
    the student out from the moment it is made: no staff member reads them, no run scores them, no
    training or audit reads them; upheld, their estimates go; withdrawn, they are scored again."""
    tutor, student = _tutored(own, -5)
    staff, me, dpo = (
        auth(own, "personal_tutor", tutor),
        auth(own, "student", student),
        auth(own, "dpo", "dpo-1"),
    )
    assert client.get(f"/v1/students/{student}/indicator", headers=staff).status_code == 200
    made = client.post(
        "/v1/me/objection", json={"detail": "I care for my mother; lists add to it"}, headers=me
    )
    assert made.status_code == 201, made.text
    assert client.post("/v1/me/objection", json={"detail": ""}, headers=me).status_code == 409  # one stands
    # at once, and before the DPO has decided: the tutor reads nothing of them, and no list holds them
    assert client.get(f"/v1/students/{student}/indicator", headers=staff).status_code == 404
    rows = client.get("/v1/worklist", params={"search": student}, headers=staff).json()["items"]
    assert student not in {r["student_id"] for r in rows}
    assert client.get("/v1/me/indicator", params={"ask": "true"}, headers=me).json()["shown"]  # they still do
    export = client.get("/v1/me/export", headers=me).json()
    assert export["readers"] == [] and export["restrictions"][0]["upheld"] is False
    key = publish.folder_key(own.folder)
    assert student in publish.left_out_students(own.engine, key=key)  # training and the audit read this
    assert student not in publish.erased_students(own.engine, key=key)  # `waymark data erase` removes nothing
    configure(own.settings)
    run = score(own.folder, own.engine, model_name="waymark-not-completing", week=8)
    with transaction(own.engine) as session:
        published = set(session.scalars(select(Indicator.student_id).where(Indicator.run_id == run.run_id)))
    assert student not in published and run.restricted == 1 and len(published) > 500
    # the DPO upholds it, with a note; the estimates made of them go, and they stay out
    queue = {r["id"]: r for r in client.get("/v1/dpo/requests", headers=dpo).json()}
    assert queue[made.json()["id"]]["kind"] == "objection"
    number = made.json()["id"]
    decided = {"uphold": True, "note": ""}
    assert client.post(f"/v1/dpo/objection/{number}", json=decided, headers=dpo).status_code == 422
    decided["note"] = "Upheld: you will not be scored or listed while it stands."
    assert client.post(f"/v1/dpo/objection/{number}", json=decided, headers=dpo).status_code == 200
    with transaction(own.engine) as session:
        kept = session.scalar(
            select(func.count()).select_from(Indicator).where(Indicator.student_id == student)
        )
    assert kept == 0
    mine = {r["id"]: r for r in client.get("/v1/me/requests", headers=me).json()}[number]
    assert (mine["outcome"], mine["outcome_note"]) == ("accepted", decided["note"])
    assert client.post("/v1/me/objection", json={"detail": ""}, headers=me).status_code == 409
    # they withdraw it: the next run scores them, and their tutor reads them again
    assert client.delete(f"/v1/me/requests/{number}", headers=me).status_code == 200
    assert student not in publish.left_out_students(own.engine, key=key)
    withdrawn = {r["id"]: r for r in client.get("/v1/me/requests", headers=me).json()}[number]
    assert withdrawn["outcome"] == "withdrawn" and decided["note"] in withdrawn["outcome_note"]  # kept
    again = score(own.folder, own.engine, model_name="waymark-not-completing", week=8)
    assert again.restricted == 0
    assert client.get(f"/v1/students/{student}/indicator", headers=staff).status_code == 200
    log = {e["action"] for e in client.get("/v1/me/access-log", headers=me).json()}
    assert {"objection_request", "objection_processed", "objection_withdrawn"} <= log


def test_the_dpo_may_decline_an_objection_with_the_grounds_the_student_reads(
    own: Served, client: TestClient
) -> None:
    """Declined, the restriction ends once the student has had notice (GDPR Art. 18(3): told before a
    restriction is lifted; it had ended with the decision): the tutor then reads the stored estimate."""
    tutor, student = _tutored(own, -6)
    staff, me, dpo = (
        auth(own, "personal_tutor", tutor),
        auth(own, "student", student),
        auth(own, "dpo", "dpo-1"),
    )
    number = client.post("/v1/me/objection", json={"detail": ""}, headers=me).json()["id"]
    assert client.get(f"/v1/students/{student}/indicator", headers=staff).status_code == 404
    assert (
        client.post(
            f"/v1/dpo/objection/{number}", json={"uphold": False, "note": "x"}, headers=me
        ).status_code
        == 403
    )
    grounds = "Declined: your course's accrediting body requires the University to monitor engagement."
    declined = client.post(
        f"/v1/dpo/objection/{number}", json={"uphold": False, "note": grounds}, headers=dpo
    )
    assert declined.status_code == 200
    assert declined.json()["note"].startswith(
        "Tell the student, who reads it in their requests in Waymark when they look: You stay left out until "
    )  # the DPO too
    assert (
        client.post(
            f"/v1/dpo/objection/{number}", json={"uphold": False, "note": grounds}, headers=dpo
        ).status_code
        == 404
    )
    # told before it ends: left out for the notice given with the decision, which says until when
    assert client.get(f"/v1/students/{student}/indicator", headers=staff).status_code == 404
    mine = {r["id"]: r for r in client.get("/v1/me/requests", headers=me).json()}[number]
    assert mine["outcome"] == "declined" and mine["outcome_note"].startswith(
        f"{grounds} You stay left out until "
    )
    until = datetime.fromisoformat(mine["restricted_until"])
    until = until if until.tzinfo else until.replace(tzinfo=UTC)
    # the DPO's list keeps it, with the day and nothing to decide, until the notice runs out
    listed = {r["id"]: r for r in client.get("/v1/dpo/requests", headers=dpo).json()}[number]
    assert (listed["status"], listed["restricted"], listed["restricted_until"]) == (
        "done",
        True,
        mine["restricted_until"],
    )
    assert mine["restricted"] and timedelta(days=6.9) < until - datetime.now(UTC) <= timedelta(days=7)
    zone = own.settings.timezone  # said in the institution's time, the zone named
    assert f"{until.astimezone(ZoneInfo(zone)):%d %B %Y, %H:%M} ({zone} time)" in mine["outcome_note"]
    # the student may object again meanwhile: a new request, left out under it from now on
    again = client.post("/v1/me/objection", json={"detail": "new grounds"}, headers=me)
    assert again.status_code == 201, again.text
    assert client.delete(f"/v1/me/requests/{again.json()['id']}", headers=me).status_code == 200
    _notice_runs_out(own, number)
    assert client.get(f"/v1/students/{student}/indicator", headers=staff).status_code == 200
    mine = {r["id"]: r for r in client.get("/v1/me/requests", headers=me).json()}[number]
    assert (mine["restricted"], mine["restricted_until"]) == (False, None)
    assert number not in {r["id"] for r in client.get("/v1/dpo/requests", headers=dpo).json()}
    assert client.delete(f"/v1/me/requests/{number}", headers=me).status_code == 404  # nothing stands


def test_the_notice_is_counted_by_the_databases_clock_and_may_be_none(
    own: Served, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service keeps built statements for each caller (``service.reads``): a moment bound into one
    when it was built would keep a student out, or let them be read, after it. ``standing`` asks the
    database's clock. With ``WAYMARK_RESTRICTION_NOTICE_DAYS=0`` a decision lifts the restriction at
    once, as before the notice, and the student is told with it."""
    from waymark.service import objections

    compiled = objections.standing().compile(own.engine)
    assert "CURRENT_TIMESTAMP" in str(compiled) and not compiled.params
    tutor, student = _tutored(own, -12)
    staff, me, dpo = (
        auth(own, "personal_tutor", tutor),
        auth(own, "student", student),
        auth(own, "dpo", "dpo-1"),
    )
    monkeypatch.setattr(client.app.state.runtime.settings, "restriction_notice_days", 0)
    number = client.post("/v1/me/objection", json={"detail": ""}, headers=me).json()["id"]
    assert client.get(f"/v1/students/{student}/indicator", headers=staff).status_code == 404
    grounds = {"uphold": False, "note": "The accrediting body requires engagement monitoring."}
    declined = client.post(f"/v1/dpo/objection/{number}", json=grounds, headers=dpo)
    assert declined.status_code == 200 and declined.json()["note"] is None  # no notice to pass on
    assert client.get(f"/v1/students/{student}/indicator", headers=staff).status_code == 200
    mine = {r["id"]: r for r in client.get("/v1/me/requests", headers=me).json()}[number]
    assert (mine["outcome_note"], mine["restricted"]) == (grounds["note"], False)


def _notice_runs_out(served: Served, request: int) -> None:
    """Move the end of the notice a decision gave for ``request`` into the past, as time would."""
    with transaction(served.engine) as session:
        found = session.scalar(
            select(ProcessingRestriction).where(ProcessingRestriction.request_id == request)
        )
        assert found is not None and found.lifts_at is not None
        found.lifts_at = datetime.now(UTC) - timedelta(seconds=1)


def test_a_student_who_contests_their_data_is_left_out_while_it_is_weighed_if_they_ask(
    own: Served, client: TestClient
) -> None:
    """GDPR Art. 18(1)(a): a student contesting the accuracy of their data may have its processing
    restricted while the DPO checks it. Only an objection restricted it ("Not yet fixed" in
    docs/reviews.md). Asked for, the student is left out at once; declined, they are read again once
    they have had notice; accepted, they stay out until the corrected data is recorded as reaching
    Waymark, and for the notice then given."""
    tutor, student = _tutored(own, -9)
    staff, me, dpo = (
        auth(own, "personal_tutor", tutor),
        auth(own, "student", student),
        auth(own, "dpo", "dpo-1"),
    )
    key = publish.folder_key(own.folder)

    def read() -> int:
        return client.get(f"/v1/students/{student}/indicator", headers=staff).status_code

    def flags(headers: dict[str, str], url: str) -> dict[int, bool]:
        return {r["id"]: r["restricted"] for r in client.get(url, headers=headers).json()}

    # asked without the restriction: the tutor reads them, with the notice of an open correction
    plain = client.post("/v1/me/rectification", json={"detail": "my second mark is missing"}, headers=me)
    assert plain.status_code == 201 and plain.json()["note"] is None
    assert read() == 200 and flags(me, "/v1/me/requests")[plain.json()["id"]] is False
    asked = client.post(
        "/v1/me/rectification",
        json={"detail": "the logins counted in week 3 are not mine", "restrict": True},
        headers=me,
    )
    assert asked.status_code == 201, asked.text
    number = asked.json()["id"]
    assert "you are left out" in asked.json()["note"]
    assert read() == 404  # at once, before the DPO decides
    assert student in publish.left_out_students(own.engine, key=key)
    assert flags(me, "/v1/me/requests")[number] is True
    assert (
        flags(dpo, "/v1/dpo/requests")[number] is True
        and flags(dpo, "/v1/dpo/requests")[plain.json()["id"]] is False
    )
    assert client.get("/v1/me/indicator", params={"ask": "true"}, headers=me).json()["shown"]  # they still do
    assert client.get("/v1/me/export", headers=me).json()["restrictions"][0]["ground"] == "accuracy"
    configure(own.settings)
    run = score(own.folder, own.engine, model_name="waymark-not-completing", week=8)
    with transaction(own.engine) as session:
        published = set(session.scalars(select(Indicator.student_id).where(Indicator.run_id == run.run_id)))
    assert student not in published and run.restricted == 1
    # accepted: still left out, until the corrected data is recorded as reaching Waymark
    accepted = {"accept": True, "note": "Registry confirms the week 3 logins were a shared machine."}
    assert client.post(f"/v1/dpo/rectification/{number}", json=accepted, headers=dpo).status_code == 200
    assert read() == 404 and flags(me, "/v1/me/requests")[number] is True
    applied = client.post(f"/v1/dpo/rectification/{number}/applied", headers=dpo)
    assert applied.status_code == 200 and applied.json()["note"].startswith("Tell the student, who reads it")
    assert student in publish.left_out_students(own.engine, key=key)  # told first: the notice runs
    mine = {r["id"]: r for r in client.get("/v1/me/requests", headers=me).json()}[number]
    assert "the corrected data reached Waymark. You stay left out until " in mine["outcome_note"]
    _notice_runs_out(own, number)
    assert student not in publish.left_out_students(own.engine, key=key)
    assert flags(me, "/v1/me/requests")[number] is False
    # the run made while they were left out holds nothing of them: the next scores them again
    assert read() == 404
    assert score(own.folder, own.engine, model_name="waymark-not-completing", week=8).restricted == 0
    assert read() == 200
    # declined: left out for the notice; the student may end it sooner, the outcome staying declined
    second = client.post("/v1/me/rectification", json={"detail": "x", "restrict": True}, headers=me).json()
    assert read() == 404
    declined = {"accept": False, "note": "The records show the submission on time."}
    assert client.post(f"/v1/dpo/rectification/{second['id']}", json=declined, headers=dpo).status_code == 200
    assert read() == 404 and flags(me, "/v1/me/requests")[second["id"]] is True
    ended = client.delete(f"/v1/me/requests/{second['id']}", headers=me)
    assert ended.status_code == 200 and "no longer left out for this request" in ended.json()["note"]
    assert read() == 200
    mine = {r["id"]: r for r in client.get("/v1/me/requests", headers=me).json()}[second["id"]]
    assert (mine["outcome"], mine["restricted"]) == ("declined", False)
    ended_on = datetime.now(ZoneInfo(own.settings.timezone))
    assert mine["outcome_note"].endswith(f"You ended the time left out on {ended_on:%d %B %Y}.")
    # an objection and a correction each restrict: declining one leaves the other standing
    third = client.post("/v1/me/rectification", json={"detail": "y", "restrict": True}, headers=me).json()
    objected = client.post("/v1/me/objection", json={"detail": ""}, headers=me).json()
    grounds = {"uphold": False, "note": "The accrediting body requires engagement monitoring."}
    assert client.post(f"/v1/dpo/objection/{objected['id']}", json=grounds, headers=dpo).status_code == 200
    _notice_runs_out(own, objected["id"])
    assert read() == 404
    withdrawn = client.delete(f"/v1/me/requests/{third['id']}", headers=me)
    assert withdrawn.status_code == 200 and read() == 200
    assert client.delete(f"/v1/me/requests/{third['id']}", headers=me).status_code == 404
    log = [e["action"] for e in client.get("/v1/me/access-log", headers=me).json()]
    assert log.count("rectification_request") == 4 and "correction_applied" in log


def test_a_student_may_end_the_restriction_of_an_accepted_correction_and_it_stays_on_the_dpos_list(
    own: Served, client: TestClient
) -> None:
    """Left out until an accepted correction reaches the data, the student may ask to be read again
    meanwhile; the correction stays accepted, waiting on the DPO's list to be recorded as applied."""
    tutor, student = _tutored(own, -10)
    staff, me, dpo = (
        auth(own, "personal_tutor", tutor),
        auth(own, "student", student),
        auth(own, "dpo", "dpo-1"),
    )
    number = client.post(
        "/v1/me/rectification", json={"detail": "wrong module", "restrict": True}, headers=me
    ).json()["id"]
    accepted = {"accept": True, "note": "Registry will move you to the right module."}
    assert client.post(f"/v1/dpo/rectification/{number}", json=accepted, headers=dpo).status_code == 200
    assert client.get(f"/v1/students/{student}/indicator", headers=staff).status_code == 404
    assert number not in _past_retention(own)  # it keeps its student out: retention leaves it
    ended = client.delete(f"/v1/me/requests/{number}", headers=me)
    assert ended.status_code == 200 and "no longer left out" in ended.json()["note"]
    assert client.get(f"/v1/students/{student}/indicator", headers=staff).status_code == 200
    mine = {r["id"]: r for r in client.get("/v1/me/requests", headers=me).json()}[number]
    assert (mine["outcome"], mine["restricted"]) == ("accepted", False)
    waiting = {r["id"]: r for r in client.get("/v1/dpo/requests", headers=dpo).json()}
    assert waiting[number]["outcome"] == "accepted" and waiting[number]["restricted"] is False
    assert client.delete(f"/v1/me/requests/{number}", headers=me).status_code == 404  # nothing left to end
    log = [e["action"] for e in client.get("/v1/me/access-log", headers=me).json()]
    assert "restriction_withdrawn" in log
    assert number not in _past_retention(own)  # still to be recorded as reaching the data
    assert client.post(f"/v1/dpo/rectification/{number}/applied", headers=dpo).status_code == 200
    assert number in _past_retention(own)


def test_a_restriction_ends_after_its_notice_in_every_reader_and_retention_then_removes_it(
    own: Served, client: TestClient
) -> None:
    """GDPR Art. 18(3): the notice a decision gives keeps the student out until it runs out, counted by
    the database's clock in every reader; then the restriction keeps nobody out, retention removes it,
    and the request ages as any other. Without notice (``WAYMARK_RESTRICTION_NOTICE_DAYS=0``) it ends
    with the decision."""
    from waymark.service import objections

    student = "S-NOTICE-1"
    key = publish.folder_key(own.folder)
    with transaction(own.engine) as session:
        asked = [
            RightsRequest(
                student_id=student, kind=kind, detail="", status="open", created_at=datetime.now(UTC)
            )
            for kind in ("objection", "rectification")
        ]
        session.add_all(asked)
        session.flush()
        for req in asked:
            objections.restrict(session, req)
        numbers = [req.id for req in asked]
    with transaction(own.engine) as session:
        objection, correction = (session.get(RightsRequest, n) for n in numbers)
        assert objection is not None and correction is not None
        assert objections.end_after_notice(session, correction, days=0) is not None  # ends now: the row goes
        until = objections.end_after_notice(session, objection, days=3)
        assert until is not None and timedelta(days=2.9) < until - datetime.now(UTC) <= timedelta(days=3)
        assert objections.end_after_notice(session, correction, days=3) is None  # it held none
        for req in (objection, correction):
            req.status, req.outcome, req.processed_at = (
                "done",
                "declined",
                datetime.now(UTC) - timedelta(days=9),
            )
    with transaction(own.engine) as session:
        assert objections.still_restricted(session, student)
        assert set(objections.restricted_by(session, [objection, correction])) == {numbers[0]}
        assert objections.restriction(session, student) is None  # in its notice: they may object again
    assert student in publish.left_out_students(own.engine, key=key)
    assert numbers[0] not in _past_retention(own) and numbers[1] in _past_retention(own)
    _notice_runs_out(own, numbers[0])
    with transaction(own.engine) as session:
        assert not objections.still_restricted(session, student)
    assert student not in publish.left_out_students(own.engine, key=key)
    assert numbers[0] in _past_retention(own)
    ran = client.post("/v1/dpo/retention", headers=auth(own, "dpo", "dpo-1"))
    assert ran.status_code == 200 and ran.json()["restrictions_ended"] >= 1
    with transaction(own.engine) as session:
        left = select(ProcessingRestriction).where(ProcessingRestriction.student_id == student)
        assert session.scalars(left).first() is None  # the requests stay until their own period ends


def _past_retention(served: Served) -> set[int]:
    """The requests a retention run with a period ending tomorrow would remove."""
    from waymark.service import retention

    with transaction(served.engine) as session:
        _, expired = retention._expired(session, datetime.now(UTC) + timedelta(days=1))
        _, rows = expired["requests"]
        return set(session.scalars(select(RightsRequest.id).where(rows)))


def test_a_targeted_support_team_reads_only_the_students_it_is_assigned(
    own: Served, client: TestClient, tmp_path: Path
) -> None:
    """A widening-participation team supporting 40 named students could be given only a whole school
    ("Not yet fixed" in docs/reviews.md): support staff may now hold a relationship on named students."""
    _, student = _tutored(own, -11)
    school = own.indicators.loc[own.indicators.student_id == student, "school_id"].iloc[0]
    indicators = own.indicators
    same_school = indicators[(indicators.school_id == school) & (indicators.student_id != student)]
    other = str(same_school.student_id.iloc[0])
    staff = auth(own, "support_staff", "wp-1")
    path = tmp_path / "access.csv"
    path.write_text(f"staff_id,relationship,scope_type,scope_id\nwp-1,support_staff,student,{student}\n")
    try:
        assert import_grants(own.engine, path) == 1
        assert client.get(f"/v1/students/{student}/indicator", headers=staff).status_code == 200
        assert client.get(f"/v1/students/{other}/indicator", headers=staff).status_code == 404  # same school
        listed = client.get("/v1/worklist", headers=staff).json()["items"]
        assert {r["student_id"] for r in listed} == {student}
        assert narrowed(own.engine, Principal("wp-1", "support_staff", None)).scopes == ("student",)
        path.write_text(f"staff_id,relationship,scope_type,scope_id\nwp-1,support_staff,module,{school}\n")
        with pytest.raises(ImportRefused, match="has scope_type 'school' or 'student', not 'module'"):
            import_grants(own.engine, path)
    finally:
        import_grants(own.engine, own.folder / "access.csv")


def test_a_schools_support_staff_still_read_through_the_schools_index(own: Served) -> None:
    """Read over a school or named students, the scope was an OR that no index served: every row of
    the run was read for a school's support staff (a reviewer's finding). Each request now names only
    the kinds of scope the caller holds."""
    held = own.access[own.access.relationship == "support_staff"]
    caller = narrowed(own.engine, Principal(str(held.staff_id.iloc[0]), "support_staff", None))
    assert caller.scopes == ("school",)
    assert narrowed(own.engine, Principal("nobody", "support_staff", None)).scopes == ()  # reads no one
    if own.engine.dialect.name != "sqlite":
        return
    with transaction(own.engine) as session:
        run = session.scalar(select(ScoringRun.id).where(ScoringRun.status == "complete"))
    with own.engine.connect() as conn:
        sent = str(readable(caller, run).compile(conn, compile_kwargs={"literal_binds": True}))
        plan = str(conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sent}").fetchall())
    assert "ix_indicators_run_school (run_id=? AND school_id=?)" in plan, plan  # not the whole run


def test_a_module_relationship_on_one_presentation_reads_only_that_presentations_students(
    own: Served, client: TestClient, tmp_path: Path
) -> None:
    """A US course's full-term and 8-week sections run in one term, each its own instructor's: a module
    leader's grant covered every presentation of the module, so each read the other's students."""
    indicators = own.indicators
    module = str(indicators.groupby("module_id").presentation_id.nunique().idxmax())
    on_module = indicators[indicators.module_id == module]
    presentations = sorted(set(on_module.presentation_id))
    staff = auth(own, "module_leader", "lead-9")
    header = "staff_id,relationship,scope_type,scope_id,presentation_id\n"
    path = tmp_path / "access.csv"

    def listed(*held: str) -> set[str]:
        path.write_text(header + "".join(f"lead-9,module_leader,module,{module},{p}\n" for p in held))
        import_grants(own.engine, path)
        found: set[str] = set()
        while True:
            got = client.get("/v1/worklist", headers=staff, params={"offset": len(found), "limit": 100})
            assert got.status_code == 200, got.text
            items = got.json()["items"]
            found |= {str(r["student_id"]) for r in items}
            if not items:
                return found

    try:
        students = {p: set(on_module[on_module.presentation_id == p].student_id) for p in presentations}
        everyone = listed("")  # empty: every presentation, as before (less any another test left out)
        assert everyone and everyone <= set(on_module.student_id)
        for presentation, theirs in students.items():
            assert listed(presentation) == everyone & theirs
        assert listed("ANOTHER-SECTION") == set()
        assert listed(*presentations) == everyone  # one instructor of both sections
        one = next(iter(everyone & students[presentations[0]]))
        path.write_text(header + f"lead-9,module_leader,module,{module},NOT-{presentations[0]}\n")
        import_grants(own.engine, path)
        assert client.get(f"/v1/students/{one}/indicator", headers=staff).status_code == 404

        def leaders() -> list[object]:  # who may read them, as the student's own copy of their data says
            export = client.get("/v1/me/export", headers=auth(own, "student", one))
            assert export.status_code == 200, export.text
            return [r["staff"] for r in export.json()["readers"] if r["relationship"] == "module_leader"]

        assert leaders() == []  # a grant on another presentation of the module is no recipient
        path.write_text(header + f"lead-9,module_leader,module,{module},{presentations[0]}\n")
        import_grants(own.engine, path)
        assert leaders() == [1]
        if own.engine.dialect.name == "sqlite":  # the module's index still finds the rows
            with transaction(own.engine) as session:
                run = session.scalar(select(ScoringRun.id).where(ScoringRun.status == "complete"))
            with own.engine.connect() as conn:
                sent = readable(Principal("lead-9", "module_leader", None), run)
                compiled = str(sent.compile(conn, compile_kwargs={"literal_binds": True}))
                plan = str(conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").fetchall())
            assert "ix_indicators_run_module (run_id=? AND module_id=?)" in plan, plan
        path.write_text(header + f"tutor-1,personal_tutor,student,{one},{presentations[0]}\n")
        with pytest.raises(ImportRefused, match="a student relationship holds none"):
            import_grants(own.engine, path)
        path.write_text(
            header.replace("presentation_id", "section") + f"lead-9,module_leader,module,{module},A\n"
        )
        with pytest.raises(ImportRefused, match="section look like the presentation"):  # not ignored, wider
            import_grants(own.engine, path)
        grant = f"lead-9,module_leader,module,{module},"
        path.write_text(f"{header}{grant}{presentations[0]}\n{grant}\n")
        with pytest.raises(ImportRefused, match=r"lines 2 and 3: .* on every presentation of it and on"):
            import_grants(own.engine, path)  # the one row would mean nothing beside the whole module
        path.write_text(
            header.replace("\n", ",term_time_only\n") + f"lead-9,module_leader,module,{module},,Y\n"
        )
        assert import_grants(own.engine, path) == 1  # a staff column that is no presentation is not refused
        # an id no sign-in carries (an invisible override an office export of Arabic text added)
        path.write_text(f"{header}lead-\u202e9,module_leader,module,{module},\n", encoding="utf-8")
        refused = r"line 2: an id holds U\+202E, a control character or an invisible"
        with pytest.raises(ImportRefused, match=refused):
            import_grants(own.engine, path)
    finally:
        import_grants(own.engine, own.folder / "access.csv")


def test_a_relationship_reads_only_on_the_days_the_file_gives_it(
    own: Served, client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A medical school's clinical supervisors were named on the year's rota with no dates: one whose
    block had ended in October, and one whose block starts in April, both read the student now."""
    tutor, student = _tutored(own, -7)
    staff = auth(own, "personal_tutor", tutor)
    today = datetime.now(UTC).date()
    header = "staff_id,relationship,scope_type,scope_id,valid_from,valid_until\n"

    def read_with(valid_from: object, valid_until: object) -> int:
        path = tmp_path / "access.csv"
        path.write_text(
            f"{header}{tutor},personal_tutor,student,{student},{valid_from},{valid_until}\n", encoding="utf-8"
        )
        import_grants(own.engine, path)
        return client.get(f"/v1/students/{student}/indicator", headers=staff).status_code

    try:
        assert read_with(today - timedelta(days=60), today - timedelta(days=1)) == 404  # ended
        assert read_with(today + timedelta(days=1), "") == 404  # not begun
        assert read_with(today, today) == 200  # both days included
        assert read_with("", "") == 200  # no bound: until further notice
        bad = tmp_path / "bad.csv"
        bad.write_text(f"{header}{tutor},personal_tutor,student,{student},06/12/2026,\n", encoding="utf-8")
        with pytest.raises(ImportRefused, match="YYYY-MM-DD"):
            import_grants(own.engine, bad)
        bad.write_text(
            f"{header}{tutor},personal_tutor,student,{student},{today},{today - timedelta(days=1)}\n"
        )
        with pytest.raises(ImportRefused, match="is after valid_until"):
            import_grants(own.engine, bad)
        bad.write_text(f"{header}{tutor},personal_tutor,student,{student},2026-W49-7,\n", encoding="utf-8")
        with pytest.raises(ImportRefused, match="YYYY-MM-DD"):  # an ISO week day, which the contract refuses
            import_grants(own.engine, bad)
        misspelt = header.replace("valid_until", "valid_to")
        bad.write_text(f"{misspelt}{tutor},personal_tutor,student,{student},,{today}\n", encoding="utf-8")
        with pytest.raises(ImportRefused, match="valid_to look like the days"):  # not ignored, unbounded
            import_grants(own.engine, bad)
        twice = f"{tutor},personal_tutor,student,{student}"
        bad.write_text(f"{header}{twice},{today},{today}\n{twice},,\n", encoding="utf-8")
        with pytest.raises(ImportRefused, match=r"lines 2 and 3: .* listed for days that overlap"):
            import_grants(own.engine, bad)  # a period with no days holds always: which would hold?
        assert client.get(f"/v1/students/{student}/indicator", headers=staff).status_code == 200  # unchanged
        # Two blocks with the same student: read in each, not in the months between (it had been one
        # span across both), whichever order the rota lists them in.
        autumn = f"{twice},{today - timedelta(days=90)},{today - timedelta(days=30)}"
        spring = f"{twice},{today + timedelta(days=30)},{today + timedelta(days=90)}"
        path = tmp_path / "access.csv"
        path.write_text(f"{header}{spring}\n{autumn}\n", encoding="utf-8")
        assert import_grants(own.engine, path) == 2
        assert client.get(f"/v1/students/{student}/indicator", headers=staff).status_code == 404
        with transaction(own.engine) as session:
            periods = session.execute(
                select(AccessGrant.period, AccessGrant.valid_from)
                .where(AccessGrant.staff_id == tutor, AccessGrant.scope_id == student)
                .order_by(AccessGrant.period)
            ).all()
        assert [p for p, _ in periods] == [0, 1] and periods[0][1] < periods[1][1]  # numbered by first day
        now = f"{twice},{today},{today + timedelta(days=10)}"
        assert read_with(today - timedelta(days=90), today - timedelta(days=30)) == 404
        path.write_text(f"{header}{autumn}\n{now}\n", encoding="utf-8")
        import_grants(own.engine, path)
        assert client.get(f"/v1/students/{student}/indicator", headers=staff).status_code == 200
        touching = f"{twice},{today - timedelta(days=30)},{today}"  # shares the autumn block's last day
        bad.write_text(f"{header}{autumn}\n{touching}\n", encoding="utf-8")
        with pytest.raises(ImportRefused, match="overlap"):
            import_grants(own.engine, bad)
        # The days are the institution's (WAYMARK_TIMEZONE), not the database's (UTC on SQLite): a
        # relationship beginning on the day it already is at UTC+14 holds there and not yet at UTC-12,
        # read by the same kept statement.
        begins = datetime.now(ZoneInfo("Etc/GMT-14")).date()
        assert read_with(begins, "") == (200 if begins <= today else 404)  # the default zone is UTC
        for zone, status in (("Etc/GMT-14", 200), ("Etc/GMT+12", 404), ("Etc/GMT-14", 200)):
            monkeypatch.setenv("WAYMARK_TIMEZONE", zone)
            get_settings.cache_clear()
            assert client.get(f"/v1/students/{student}/indicator", headers=staff).status_code == status, zone
        monkeypatch.setenv("WAYMARK_TIMEZONE", "Europe/Cardif")
        with pytest.raises(ValueError, match="'Europe/Cardif' is not an IANA time zone"):
            Settings()  # type: ignore[call-arg]
    finally:
        monkeypatch.delenv("WAYMARK_TIMEZONE", raising=False)
        get_settings.cache_clear()
        import_grants(own.engine, own.folder / "access.csv")
