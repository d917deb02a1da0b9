"""Clauses of the Code of Practice whose behaviour no other test pins down (docs/code-of-practice.md)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.champion import Champion, permissive_policy
from tests.service_setup import Served, api_client, auth
from waymark.service import decisions
from waymark.service.app import create_app
from waymark.service.db.engine import transaction
from waymark.service.db.schema import Indicator

# An instruction starts with a verb telling the reader what to do, or says they must, should or need to.
IMPERATIVE = re.compile(
    r"^(?:increase|submit|attend|log|use|try|make|do|start|stop|engage|complete|read|watch|post|visit)\b"
    r"|\b(?:you|should|must|need to|have to|ought)\b",
    re.IGNORECASE,
)


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[TestClient]:
    with api_client(served) as client:
        yield client


def _tutor_and_tutee(served: Served) -> tuple[str, str]:
    tutors = served.access[served.access.relationship == "personal_tutor"]
    tutors = tutors[tutors.scope_id.isin(served.indicators.student_id)]
    return str(tutors.staff_id.iloc[0]), str(tutors.scope_id.iloc[0])


def test_what_could_change_is_always_conditional_never_an_instruction(served: Served) -> None:
    """§10 autonomy: every suggestion across the scored cohort says what the estimate would be if ..."""
    with transaction(served.engine) as session:
        suggestions = [c for c in session.scalars(select(Indicator.what_could_change)) if c]
    assert len(suggestions) > 100
    for change in suggestions:
        sentence = change["sentence"]
        assert re.search(
            r": if this were like .+, the estimate would be about (\d+%|over 99%|under 1%) rather than "
            r"(\d+%|over 99%|under 1%)\.$",
            sentence,
        )
        assert not IMPERATIVE.search(sentence.split(":", 1)[1]), sentence


def test_every_indicator_says_it_is_incomplete_with_an_interval_its_coverage_and_a_reading_note(
    served: Served, client: TestClient
) -> None:
    """§10 never complete: a range, not a point; which sources it could not see; how to read it."""
    tutor, student = _tutor_and_tutee(served)
    body = client.get(
        f"/v1/students/{student}/indicator", headers=auth(served, "personal_tutor", tutor)
    ).json()
    assert body["indicators"]
    for view in body["indicators"]:
        e = view["estimate"]
        assert e["lower"] <= e["value"] <= e["upper"]
        assert e["upper"] - e["lower"] > 0  # never a bare point
        assert set(view["coverage"]) >= {"sources_recorded", "sources_not_recorded"}
        assert "incomplete data" in view["reading_note"] and "not a judgement" in view["reading_note"]
    with transaction(served.engine) as session:
        widths = [u - lo for lo, u in session.execute(select(Indicator.lower, Indicator.upper)).all()]
    assert min(widths) > 0


def test_a_student_who_chooses_to_see_finds_every_staff_read_in_their_access_log(
    served: Served, client: TestClient
) -> None:
    """§9 choose to see: asking is recorded, and so is every member of staff who looked, with the purpose."""
    tutor, student = _tutor_and_tutee(served)
    me = auth(served, "student", student)
    staff = auth(served, "personal_tutor", tutor)
    assert client.get(f"/v1/students/{student}/indicator", headers=staff).status_code == 200
    assert client.get("/v1/me/indicator", params={"ask": "true"}, headers=me).json()["shown"] is True
    log = client.get("/v1/me/access-log", headers=me).json()
    by_tutor = [e for e in log if e["actor"] == tutor]
    assert by_tutor and by_tutor[-1]["role"] == "personal_tutor"
    assert by_tutor[-1]["purpose"] == "personal_tutoring"
    own = [e for e in log if e["actor"] == student and e["action"] == "own_indicator_view"]
    assert own and own[-1]["purpose"] == "own_data"


def test_no_endpoint_reads_the_access_log_or_anything_else_by_member_of_staff(client: TestClient) -> None:
    """§2(xvii): nothing can be asked about one member of staff; the access log is read per student only."""
    spec = client.app.openapi()  # type: ignore[attr-defined]
    staff_keyed = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            names = {p["name"] for p in op.get("parameters", [])} | set(re.findall(r"{(\w+)}", path))
            if names & {"staff_id", "actor", "staff", "sub", "tutor_id"}:
                staff_keyed.append(f"{method.upper()} {path}")
    assert staff_keyed == []
    (dpo_log,) = [op["get"] for p, op in spec["paths"].items() if p == "/v1/dpo/access-log"]
    (param,) = [p for p in dpo_log["parameters"] if p["in"] == "query"]
    assert param["name"] == "student_id" and param["required"] is True


def test_management_information_is_aggregate_and_names_no_student_or_member_of_staff(
    champion: Champion, served: Served
) -> None:
    """§2(xvi): the published fairness report and model card carry group figures, never a person."""
    assert champion.audited is not None
    report = json.dumps(champion.audited.report)
    students = pd.read_parquet(served.folder / "students.parquet").student_id.astype(str)
    staff = served.access.staff_id.unique()
    assert not [s for s in students if s in report]
    assert not [s for s in staff if s in report]
    groups = [g for a in champion.audited.report["audits"] for g in a["groups"]]
    assert groups and all(
        g["students"] >= champion.audited.report["policy"]["min_group_size"] for g in groups
    )


def test_the_fairness_results_are_at_the_outreach_capacity_for_every_characteristic(
    champion: Champion,
) -> None:
    """§2(xiv) and §9 equitable allocation: each group's figures at the capacity a team works to."""
    assert champion.audited is not None
    report, policy = champion.audited.report, champion.audited.policy
    audited = {(a["attribute"], a["capacity"]) for a in report["audits"]}
    for attribute in report["data"]["characteristics"]:
        assert {c for a, c in audited if a == attribute} == set(policy.capacities), attribute
    assert set(policy.capacities) >= {0.1, 0.2}
    for a in report["audits"]:
        for g in a["groups"]:
            assert {"selection_rate", "false_negative_rate"} <= set(g["metrics"]) | set(g["withheld"])


def test_a_caseload_page_is_never_larger_than_the_configured_page_size(served: Served) -> None:
    """§2(xiv) workload: a team works through its list a page at a time, at most WAYMARK_MAX_PAGE_SIZE."""
    settings = served.settings.model_copy(update={"max_page_size": 3, "rate_limit_per_minute": 1_000_000})
    with TestClient(create_app(settings)) as limited:
        headers = auth(served, "support_staff", _school(served))
        page = limited.get("/v1/caseload", params={"limit": 50}, headers=headers).json()
    assert page["limit"] == 3 and len(page["items"]) == 3 and page["total"] > 3


def _school(served: Served) -> str:
    return str(served.access[served.access.relationship == "support_staff"].staff_id.iloc[0])


def test_the_report_states_the_policy_it_was_audited_under_and_the_decision_is_bound_to_it(
    champion: Champion, served: Served
) -> None:
    """§2(ii): the institution's agreed policy is copied into the report, and its hash into the decision."""
    assert champion.audited is not None
    policy = champion.audited.policy
    assert champion.audited.report["policy"]["text"] == policy.text == permissive_policy().text
    assert "false_negative_rate" in champion.audited.report["policy"]["text"]
    with transaction(served.engine) as session:
        audit = decisions.latest_audit(session, champion.name, version=champion.version)
        assert audit is not None
        assert audit.policy_sha256 == decisions.policy_sha256(policy)
    stricter = dataclasses.replace(policy, min_group_size=policy.min_group_size + 5)
    assert decisions.policy_sha256(stricter) != audit.policy_sha256
