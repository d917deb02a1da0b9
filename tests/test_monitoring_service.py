"""``waymark monitor`` end to end: a governed champion scores two weeks, the monitor compares them and
the committee page's endpoint and ``/metrics`` read the stored report (#17, items 3-4)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from typer.testing import CliRunner

from tests.champion import Champion
from tests.service_setup import Served, api_client, auth, serve_cohort
from tests.vocabulary import forbidden_words
from waymark.cli import app
from waymark.models.registry import configure
from waymark.models.settings import get_settings
from waymark.service.db.engine import transaction
from waymark.service.db.schema import Indicator, ProcessingRestriction
from waymark.service.scoring import score

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_runs(
    champion: Champion, synth_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """Week 8 (by serve_cohort), then week 9, of the same cohort: two published runs."""
    served = serve_cohort(champion, synth_dir, "sqlite", tmp_path_factory.mktemp("monitored"))
    configure(served.settings)
    score(synth_dir, served.engine, model_name=champion.name, week=9)
    yield served
    served.engine.dispose()


@pytest.fixture(scope="module")
def report(two_runs: Served) -> dict[str, object]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WAYMARK_DATABASE_URL", two_runs.settings.database_url)
        env.setenv("WAYMARK_ENV", "development")  # a production command would mark it as one
        get_settings.cache_clear()
        try:
            table = CliRunner().invoke(app, ["monitor"])
            result = CliRunner().invoke(app, ["monitor", "--data", str(two_runs.folder), "--format", "json"])
        finally:
            get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert table.exit_code == 0, table.output
    assert "Outreach list turnover" in table.stdout
    found: dict[str, object] = json.loads(result.stdout)
    return found


def test_the_served_run_is_compared_with_the_training_reference_and_the_run_before(report: dict) -> None:  # type: ignore[type-arg]
    assert report["reference"] == "recorded"
    assert report["previous_run"] is not None and report["previous_run"]["id"] < report["run"]["id"]
    features = report["features"]
    assert features and all(row["psi_training"] is not None for row in features)
    # The same cohort scored a week later, by the same model: each feature's PSI against training is
    # measured in both runs, and the estimates' distribution barely moves between them.
    assert all(row["psi_training_previous"] is not None for row in features)
    overall = next(r for r in report["estimates"] if r["scope"] == "all modules")
    assert overall["psi_previous"] is not None and overall["psi_previous"] < 0.25
    assert overall["psi_training"] is not None
    assert report["stability"] and all(
        0 <= r["turnover"] <= 1 for r in report["stability"] if "turnover" in r
    )


def test_group_figures_are_aggregate_and_withhold_small_groups(report: dict) -> None:  # type: ignore[type-arg]
    groups = report["groups"]
    assert groups is not None and groups["groups"]
    assert all(g["students"] >= groups["min_group_size"] for g in groups["groups"])
    keys = {"characteristic", "group", "students", "previous_students", "mean", "previous_mean", "psi"}
    assert all(set(g) == {*keys, "audit_psi"} for g in groups["groups"])
    # the champion's audit kept each shown group's estimates at the audited weeks: the run is compared
    # with them too (the audit scored the test presentations, the run scores the same cohort's)
    assert any(g["audit_psi"] is not None for g in groups["groups"])
    assert "student_id" not in json.dumps(report)
    # A group of a dozen crosses any PSI threshold when one student changes bin: flagged only from 30.
    sizes = {
        f"{g['characteristic']}: {g['group']}": min(g["students"], g["previous_students"])
        for g in groups["groups"]
    }
    between_runs = [f for f in report["flags"] if f["kind"] == "group estimates against the previous run"]
    assert all(sizes[f["scope"]] >= 30 for f in between_runs)


def test_the_committee_and_metrics_read_the_stored_report(two_runs: Served, report: dict) -> None:  # type: ignore[type-arg]
    with api_client(two_runs) as client:
        reviewer = auth(two_runs, "ethics_reviewer", "rev-1")
        latest = client.get("/v1/monitoring/latest", headers=reviewer)
        assert latest.status_code == 200
        assert latest.json()["run"] == report["run"] and latest.json()["flags"] == report["flags"]
        assert (
            client.get("/v1/monitoring/latest", headers=auth(two_runs, "personal_tutor", "t-1")).status_code
            == 403
        )
        metrics = client.get("/metrics").text
    assert f"waymark_monitoring_run {float(report['run']['id'])}" in metrics
    coverage = sum(f["kind"] == "coverage" for f in report["flags"])
    assert f'waymark_monitoring_flags{{kind="coverage"}} {float(coverage)}' in metrics
    assert not forbidden_words(json.dumps(report))


def test_a_run_students_left_after_scoring_publishes_no_group_figures(two_runs: Served, report: dict) -> None:  # type: ignore[type-arg]
    """Two reports of the same run either side of one student's objection differed only in that
    student's groups, and gave back all five of their characteristics (a red team's finding)."""
    with transaction(two_runs.engine) as session:
        latest, before = report["run"]["id"], report["previous_run"]["id"]
        student = session.scalar(select(Indicator.student_id).where(Indicator.run_id == latest).limit(1))
        assert student is not None
        session.add(ProcessingRestriction(student_id=student, request_id=1, since=datetime.now(UTC)))

    def monitored() -> dict[str, Any]:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("WAYMARK_DATABASE_URL", two_runs.settings.database_url)
            env.setenv("WAYMARK_ENV", "development")
            get_settings.cache_clear()
            try:
                result = CliRunner().invoke(
                    app, ["monitor", "--data", str(two_runs.folder), "--format", "json"]
                )
            finally:
                get_settings.cache_clear()
        assert result.exit_code == 0, result.output
        whole: dict[str, Any] = json.loads(result.stdout)
        return whole

    objecting = monitored()
    groups = objecting["groups"]
    assert groups["groups"] == [] and "fewer students than when it was scored" in groups["previous_withheld"]
    # nor the list's figures, which would give back their module and whether they were listed
    assert objecting["stability"] == [] and "left out of run" in objecting["stability_withheld"]
    with transaction(two_runs.engine) as session:  # withdrawn: the same figures as before it
        session.execute(delete(ProcessingRestriction).where(ProcessingRestriction.student_id == student))
    again = monitored()
    assert (
        again["groups"]["groups"] == report["groups"]["groups"] and again["stability"] == report["stability"]
    )
    assert "stability_withheld" not in again
    # Erased from the run before only (as a run scored after an erasure is): this run's own groups and
    # the audit's reference are shown, not the comparison with the run before.
    with transaction(two_runs.engine) as session:
        session.execute(delete(Indicator).where(Indicator.run_id == before, Indicator.student_id == student))
    erased = monitored()["groups"]
    assert erased["groups"] and all(g["previous_mean"] is None for g in erased["groups"])
    assert erased["previous_withheld"].startswith("Not compared with the run before")
