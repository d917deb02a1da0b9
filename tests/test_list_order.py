"""The monitoring policy's smoothing orders the outreach list (#17 item 4): stored at scoring, read by all.

Week 8 is scored without smoothing, week 9 of the same cohort with the past weighted 0.5. Each indicator
stores its place in the list (``priority``); the worklist, the caseload and the impact evaluation's view
at the capacity cut all follow it, and staff are told how the list is ordered.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.champion import Champion
from tests.service_setup import Served, api_client, auth, serve_cohort
from tests.vocabulary import forbidden_words
from waymark.models.registry import configure
from waymark.models.stability import smooth_step, smoothed
from waymark.service.db.engine import transaction
from waymark.service.db.schema import Indicator, Publication, ScoringRun, list_order
from waymark.service.impact import indicators_since
from waymark.service.scoring import score

WEIGHT = 0.5
REGISTRATION = ["student_id", "module_id", "presentation_id"]


def test_one_smoothing_step_is_the_monitors_formula() -> None:
    previous = np.array([0.2, np.nan, 0.9])
    current = np.array([0.6, 0.3, 0.1])
    assert smooth_step(previous, current, weight=0.25).tolist() == pytest.approx([0.5, 0.3, 0.3])
    assert smooth_step(previous, current, weight=0.0).tolist() == current.tolist()
    runs = [
        pd.DataFrame(
            {"student_id": ["a", "c"], "module_id": "M", "presentation_id": "P", "probability": [0.2, 0.9]}
        ),
        pd.DataFrame(
            {"student_id": ["a", "b", "c"], "module_id": "M", "presentation_id": "P", "probability": current}
        ),
    ]
    assert smoothed(runs, 0.25)[-1]["smoothed"].tolist() == pytest.approx([0.5, 0.3, 0.3])
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        smooth_step(previous, current, weight=1.0)


@pytest.fixture(scope="module")
def two_runs(
    champion: Champion, synth_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    served = serve_cohort(champion, synth_dir, "sqlite", tmp_path_factory.mktemp("list-order"))
    configure(served.settings)
    score(synth_dir, served.engine, model_name=champion.name, week=9, smoothing=WEIGHT)
    yield served
    served.engine.dispose()


def _runs(served: Served) -> tuple[ScoringRun, ScoringRun, pd.DataFrame, pd.DataFrame]:
    with transaction(served.engine) as session:
        first, second = session.scalars(select(ScoringRun).order_by(ScoringRun.id)).all()
        served_id = session.scalar(select(Publication.run_id))
        assert served_id == second.id
        session.expunge_all()
    with served.engine.connect() as conn:
        frames = [
            pd.read_sql(
                select(
                    *(getattr(Indicator, c) for c in REGISTRATION), Indicator.probability, Indicator.priority
                ).where(Indicator.run_id == run.id),
                conn,
            )
            for run in (first, second)
        ]
    return first, second, frames[0], frames[1]


def test_each_indicator_stores_its_smoothed_place_and_the_run_its_weight(two_runs: Served) -> None:
    first, second, before, after = _runs(two_runs)
    assert first.smoothing == 0 and second.smoothing == WEIGHT
    # without smoothing the list order is the estimate itself
    assert before["priority"].tolist() == before["probability"].tolist()
    joined = after.merge(before, on=REGISTRATION, how="left", suffixes=("", "_before"))
    assert joined["priority_before"].notna().sum() > 100  # the same cohort, a week later
    expected = np.where(
        joined["priority_before"].isna(),
        joined["probability"],
        WEIGHT * joined["priority_before"] + (1 - WEIGHT) * joined["probability"],
    )
    assert joined["priority"].to_numpy() == pytest.approx(expected)
    # ... and it is what the monitor's what-if figures compute from the two runs' estimates
    runs = [before.drop(columns="priority"), after.drop(columns="priority")]
    monitor = smoothed(runs, WEIGHT)[-1].merge(after, on=REGISTRATION)
    assert monitor["smoothed"].to_numpy() == pytest.approx(monitor["priority"].to_numpy())
    # the smoothing changes the order, or this test would show nothing
    assert (after["priority"] != after["probability"]).any()


@pytest.fixture(scope="module")
def client(two_runs: Served) -> Iterator[TestClient]:
    with api_client(two_runs) as client:
        yield client


def _wide(served: Served) -> tuple[str, str]:
    staff = served.access[served.access.relationship == "support_staff"]
    return str(staff.staff_id.iloc[0]), "support_staff"


def _pages(client: TestClient, path: str, headers: dict[str, str]) -> tuple[list[dict], dict]:  # type: ignore[type-arg]
    out: list[dict] = []  # type: ignore[type-arg]
    while True:
        page = client.get(path, params={"offset": len(out), "limit": 100}, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        out += body["items"]
        if not body["items"] or len(out) >= body["total"]:
            return out, body


def test_the_worklist_and_the_caseload_follow_the_smoothed_order_and_say_so(
    two_runs: Served, client: TestClient
) -> None:
    staff, role = _wide(two_runs)
    headers = auth(two_runs, role, staff)
    _, _, _, after = _runs(two_runs)
    rows, last = _pages(client, "/v1/worklist", headers)
    places = after.groupby("student_id")["priority"].max()
    estimates = after.groupby("student_id")["probability"].max()
    shown = [r["student_id"] for r in rows]
    assert shown == sorted(shown, key=lambda s: (-places[s], s))
    # ordered by the estimates alone, the same students would come in another order
    assert shown != sorted(shown, key=lambda s: (-estimates[s], s))
    assert "averaged over recent runs" in last["order_note"] and "50%" in last["order_note"]
    assert not forbidden_words(last["order_note"])
    # the estimates shown are this run's, not the smoothed values
    got = {
        (r["student_id"], g["module_id"]): g["estimate"]["value"] for r in rows for g in r["registrations"]
    }
    values = after.set_index(["student_id", "module_id"])["probability"]
    assert all(values[key] == pytest.approx(v) for key, v in got.items())

    items, _ = _pages(client, "/v1/caseload", headers)
    keyed = after.set_index(REGISTRATION)["priority"]
    order = [keyed[(i["student_id"], i["module_id"], i["presentation_id"])] for i in items]
    assert order == sorted(order, reverse=True)


def test_a_run_before_the_order_was_stored_is_ordered_by_its_estimate(two_runs: Served) -> None:
    with transaction(two_runs.engine) as session:
        run_id = session.scalar(select(Publication.run_id))
        values = session.execute(
            select(Indicator.probability, list_order(Indicator)).where(Indicator.run_id == run_id).limit(5)
        ).all()
        assert len(values) == 5
        session.execute(Indicator.__table__.update().where(Indicator.run_id == run_id).values(priority=None))
        again = session.execute(
            select(Indicator.probability, list_order(Indicator)).where(Indicator.run_id == run_id)
        ).all()
        assert all(order == estimate for estimate, order in again)
        session.rollback()


def test_the_impact_evaluation_reads_the_order_staff_worked_down(two_runs: Served) -> None:
    frame = indicators_since(two_runs.engine, datetime(2000, 1, 1, tzinfo=UTC))
    latest = frame[frame["run_id"] == frame["run_id"].max()]
    _, _, _, after = _runs(two_runs)
    merged = latest.merge(after, on=REGISTRATION, suffixes=("", "_stored"))
    assert merged["priority"].to_numpy() == pytest.approx(merged["priority_stored"].to_numpy())
