"""CoP §2(i): support priority is the estimates' order, ties broken by student id (docs/service.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.service_setup import Served, api_client, auth
from waymark.service.db.engine import transaction
from waymark.service.db.schema import Indicator


@pytest.fixture
def tied(served: Served) -> Iterator[tuple[Served, str]]:
    """The shared batch with one tutor's first three tutees given the same, highest estimate (then undone)."""
    tutors = served.access[
        (served.access.relationship == "personal_tutor")
        & served.access.scope_id.isin(served.indicators.student_id)
    ]
    tutor = tutors.staff_id.value_counts().index[0]
    tutees = sorted(tutors[tutors.staff_id == tutor].scope_id)[:3]
    assert len(tutees) == 3
    chosen = Indicator.student_id.in_(tutees)
    with transaction(served.engine) as session:
        key = (Indicator.run_id, Indicator.student_id, Indicator.module_id, Indicator.presentation_id)
        before = session.execute(select(*key, Indicator.probability, Indicator.priority).where(chosen)).all()
        # scored without smoothing, a list's order value is the estimate itself (models.stability)
        session.execute(update(Indicator).where(chosen).values(probability=0.97, priority=0.97))
    yield served, tutor
    with transaction(served.engine) as session:
        for *values, probability, priority in before:
            same = [column == value for column, value in zip(key, values, strict=True)]
            session.execute(update(Indicator).where(*same).values(probability=probability, priority=priority))


def _rows(served: Served, tutor: str) -> list[tuple[float, str, str, str]]:
    tutees = served.access[
        (served.access.staff_id == tutor) & (served.access.relationship == "personal_tutor")
    ]
    with transaction(served.engine) as session:
        found = session.execute(
            select(
                Indicator.probability, Indicator.student_id, Indicator.module_id, Indicator.presentation_id
            ).where(Indicator.student_id.in_(list(tutees.scope_id)))
        ).all()
    return [tuple(r) for r in found]  # type: ignore[misc]


def test_caseload_support_priority_is_estimate_order_with_ties_broken_by_student_id(
    tied: tuple[Served, str],
) -> None:
    served, tutor = tied
    expected = [r[1:] for r in sorted(_rows(served, tutor), key=lambda r: (-r[0], r[1], r[2], r[3]))]
    with api_client(served) as client:
        got = _all(client, "/v1/caseload", auth(served, "personal_tutor", tutor))
    assert [(i["student_id"], i["module_id"], i["presentation_id"]) for i in got] == expected
    estimates = [i["estimate"]["value"] for i in got]
    # the same estimate, the same priority: the first of them's place (an Italian university's 222 equal
    # estimates had read as priorities 1 to 222, in an order nothing in the data gave)
    assert [i["support_priority"] for i in got] == _shared_places(estimates)
    assert estimates == sorted(estimates, reverse=True)
    top = [i["student_id"] for i in got if i["estimate"]["value"] == 0.97]
    assert len(set(top)) == 3 and top == sorted(top)  # the tie, in student-id order
    # each of them reads the same shared place on their own page as on the list
    with api_client(served) as client:
        for item in (i for i in got if i["estimate"]["value"] == 0.97):
            page = client.get(
                f"/v1/students/{item['student_id']}/indicator", headers=auth(served, "personal_tutor", tutor)
            ).json()
            [view] = [v for v in page["indicators"] if v["module_id"] == item["module_id"]]
            assert view["support_priority"] == item["support_priority"] == 1


def test_worklist_support_priority_is_each_students_highest_estimate_with_ties_by_student_id(
    tied: tuple[Served, str],
) -> None:
    served, tutor = tied
    highest: dict[str, float] = {}
    for p, student, _m, _p in _rows(served, tutor):
        highest[student] = max(p, highest.get(student, 0.0))
    expected = sorted(highest, key=lambda s: (-highest[s], s))
    with api_client(served) as client:
        got = _all(client, "/v1/worklist", auth(served, "personal_tutor", tutor))
    assert [i["student_id"] for i in got] == expected
    assert [i["support_priority"] for i in got] == _shared_places([highest[s] for s in expected])
    assert len(set(_shared_places([highest[s] for s in expected]))) < len(expected)  # the tie is there


def _shared_places(ordered: list[float]) -> list[int]:
    """Each value's place in a list in that order, ties sharing the first one's (1, 1, 1, 4, ...)."""
    return [ordered.index(v) + 1 for v in ordered]


def _all(client: TestClient, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = client.get(path, params={"offset": len(out), "limit": 2}, headers=headers).json()
        out += page["items"]
        if not page["items"] or len(out) >= page["total"]:
            return out
