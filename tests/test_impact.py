"""Impact evaluation on synthetic cohorts whose outreach effect is known (issue #17, item 1).

Each cohort has confounding by indication: the higher a student's estimate, the likelier they were
contacted, and the estimate is calibrated (a student with estimate p completes with probability
1 - p without outreach). Outreach adds ``effect`` to the completion probability of those contacted.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.vocabulary import forbidden_words
from waymark.cli import app
from waymark.fairness.impact import ImpactSettings, _nearest, estimate
from waymark.models.settings import Settings, get_settings
from waymark.service.db.engine import transaction, up_to_date
from waymark.service.db.schema import Contact, ContactEvent, Indicator, ScoringRun
from waymark.service.impact import latest_report

COVARIATES = ["estimate_logit", "x"]
SETTINGS = ImpactSettings(resamples=120, seed=1)


def cohort(n: int, *, effect: float, only_group: str | None = None, seed: int = 0) -> pd.DataFrame:
    """Registrations with a known data-generating process; ``true_effect`` is each one's effect."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    group = rng.choice(["a", "b"], n)
    p = 0.15 + 0.75 / (1 + np.exp(-1.5 * x))  # the estimate of not completing, calibrated
    contacted = rng.random(n) < 1 / (1 + np.exp(4 - 6 * p))  # contact follows the estimate
    own = np.full(n, effect) if only_group is None else np.where(group == only_group, effect, 0.0)
    completed = (rng.random(n) < 1 - p + own * contacted).astype(int)
    return pd.DataFrame(
        {
            "unit": np.arange(n),
            "student_id": [f"s{i}" for i in range(n)],
            "stratum": rng.choice([4, 8], n),
            "contacted": contacted,
            "completed": completed,
            "estimate_logit": np.log(p / (1 - p)),
            "x": x,
            "group": group,
            "true_effect": own,
        }
    )


def _covers(interval: tuple[float, float, float], value: float) -> bool:
    return interval[1] <= value <= interval[2]


@pytest.mark.parametrize("effect", [0.0, 0.12])
def test_the_matched_estimate_recovers_a_known_effect_and_the_naive_difference_does_not(
    effect: float,
) -> None:
    units = cohort(3000, effect=effect)
    result = estimate(units, covariates=COVARIATES, settings=SETTINGS)
    assert _covers(result.effect, effect), result.effect
    # Contacted students were those least likely to complete: the plain comparison is far below the truth.
    assert result.naive[2] < effect - 0.05, result.naive
    assert result.matched > 0.9 * result.contacted


def test_matching_balances_the_estimate_and_the_features() -> None:
    result = estimate(cohort(3000, effect=0.0), covariates=COVARIATES, settings=SETTINGS)
    for name in COVARIATES:
        before, after = result.balance[name]
        assert before > 0.5  # contacted students had much higher estimates
        assert abs(after) < 0.1  # their comparisons did too


@pytest.mark.parametrize("size", [1, 2, 7, 300])
def test_each_contacted_unit_is_matched_to_the_nearest_comparison_score(size: int) -> None:
    rng = np.random.default_rng(size)
    pool = np.round(rng.normal(size=size), 1)  # rounded: ties among comparisons
    queries = np.concatenate([rng.normal(size=40) * 3, pool[:3]])
    nearest = _nearest(pool, queries)
    closest = np.abs(pool[None, :] - queries[:, None]).min(axis=1)
    assert np.array_equal(np.abs(pool[nearest] - queries), closest)


def test_an_effect_in_one_group_only_is_found_there_and_not_in_the_other() -> None:
    units = cohort(6000, effect=0.15, only_group="b", seed=3)
    within = {g: estimate(u, covariates=COVARIATES, settings=SETTINGS) for g, u in units.groupby("group")}
    assert _covers(within["b"].effect, 0.15), within["b"].effect
    assert within["b"].effect[1] > 0  # clearly above no effect
    assert _covers(within["a"].effect, 0.0), within["a"].effect
    overall = estimate(units, covariates=COVARIATES, settings=SETTINGS)
    truth = units.loc[units["contacted"], "true_effect"].mean()  # the effect among those contacted
    assert _covers(overall.effect, truth), (overall.effect, truth)


def _service_record(url: str, folder: Path) -> None:
    """One complete scoring run at week 8 of the 2025J presentations, and contacts after it."""
    registrations = pd.read_parquet(folder / "registrations.parquet")
    rows = registrations[registrations["presentation_id"] == "2025J"].reset_index(drop=True)
    rng = np.random.default_rng(0)
    p = np.where(rows["final_result"].isin(["withdrawn", "fail"]), 0.6, 0.3) + rng.uniform(
        -0.2, 0.2, len(rows)
    )
    engine = up_to_date(url)
    ran, reached = datetime(2025, 12, 1, tzinfo=UTC), datetime(2025, 12, 3, tzinfo=UTC)
    with transaction(engine) as session:
        run = ScoringRun(
            target="not_completing",
            model_name="m",
            model_version="1",
            bundle_sha256="0" * 64,
            data_fingerprint="f",
            data_as_of="2025-12-01",
            status="complete",
            students=len(rows),
            started_at=ran,
            finished_at=ran,
        )
        session.add(run)
        session.flush()
        for i, r in enumerate(rows.to_dict("records")):
            session.add(
                Indicator(
                    run_id=run.id,
                    student_id=r["student_id"],
                    module_id=r["module_id"],
                    presentation_id=r["presentation_id"],
                    week=8,
                    as_of="2025-12-01",
                    probability=float(p[i]),
                    lower=0.0,
                    upper=1.0,
                    factors=[],
                    strengths=[],
                    context=[],
                    coverage={},
                    engagement={},
                )
            )
            if p[i] > 0.55 and rng.random() < 0.6:  # contact follows the estimate
                contact = Contact(
                    student_id=r["student_id"],
                    staff_id="t",
                    role="personal_tutor",
                    run_id=run.id,
                    channel="email",
                    purpose="support",
                    basis="consent",
                    status="contacted",
                    created_at=reached,
                    updated_at=reached,
                )
                session.add(contact)
                session.flush()
                session.add(
                    ContactEvent(
                        contact_id=contact.id,
                        student_id=r["student_id"],
                        staff_id="t",
                        status="contacted",
                        at=reached,
                    )
                )


@pytest.mark.slow
def test_evaluate_impact_writes_the_report_and_keeps_it_in_mlflow(
    synth_dir: Path, mlflow_store: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/waymark.db"
    _service_record(url, synth_dir)
    monkeypatch.setenv("WAYMARK_DATABASE_URL", url)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store.mlflow_tracking_uri)
    monkeypatch.setenv("WAYMARK_MLFLOW_ARTIFACTS", mlflow_store.mlflow_artifacts)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app,
            [
                "evaluate",
                "impact",
                "--since",
                "2025-11-01",
                "--data",
                str(synth_dir),
                "--out",
                str(tmp_path / "impact"),
                "--resamples",
                "30",
                "--format",
                "json",
            ],
        )
        kept = latest_report()
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "impact" / "impact.json").read_text())
    assert kept is not None and kept["overall"] == report["overall"]
    assert report["overall"]["contacted"] > 0 and report["overall"]["effect"][1] is not None
    assert "estimate_logit" in report["overall"]["balance"]
    assert {g["attribute"] for g in report["groups"]} >= {"disability"}
    cut = report["at_the_cut"]  # the capacity-cut view: a figure, or why there is none
    assert "withheld" in cut or ("effect" in cut if cut["followed"] else cut["why"])
    assert "At the capacity cut" in (tmp_path / "impact" / "impact.html").read_text()
    text = (tmp_path / "impact" / "impact.html").read_text() + json.dumps(report)
    students = pd.read_parquet(synth_dir / "students.parquet")["student_id"]
    assert not [s for s in students if s in text]  # no student is named
    assert forbidden_words(text) == []


def test_the_bootstrap_draws_students_each_with_all_their_registrations() -> None:
    from waymark.fairness.impact import resample_registrations

    units = pd.DataFrame(
        {  # S1 on two modules; S3's one registration at two weeks
            "unit": ["S1/M1/A", "S1/M2/A", "S2/M1/A", "S3/M1/A", "S3/M1/A"],
            "student_id": ["S1", "S1", "S2", "S3", "S3"],
        }
    )
    rng = np.random.default_rng(0)
    for _ in range(50):
        drawn = resample_registrations(units, rng)
        s1 = drawn.loc[drawn["student_id"] == "S1", "unit"].value_counts()
        assert s1.get("S1/M1/A", 0) == s1.get("S1/M2/A", 0)  # both of S1's registrations, as often
        assert (drawn["student_id"] == "S3").sum() % 2 == 0
        assert len(drawn) > 0
