"""Retraining that does not learn its own effect (issue #17, item 2).

Outreach with a strong injected effect: in the training presentations, most registrations in the top
30% of week-4 estimates were contacted on day 28, and 80% of those who would have withdrawn or failed
completed instead. A model trained on that as observed learns that students like them complete; a
model trained under ``exclude_after_contact`` or ``weight`` does not.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from waymark.cli import app
from waymark.models.features import KEYS
from waymark.models.targets import Target
from waymark.training.censoring import censor, contact_days
from waymark.training.fitting import FitConfig
from waymark.training.pipeline import TrainingConfigError, TrainingOutcome, train_folder

REGISTRATION = ["student_id", "module_id", "presentation_id"]


def _config(policy: str = "ignore") -> FitConfig:
    return FitConfig(seed=3, families=("logistic",), cv_folds=2, intervention_policy=policy)


@pytest.fixture(scope="module")
def before(synth_dir: Path) -> TrainingOutcome:
    """The model trained before any outreach took place."""
    return train_folder(synth_dir, target=Target.NOT_COMPLETING, config=_config())


@pytest.fixture(scope="module")
def injected(
    synth_dir: Path, before: TrainingOutcome, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, pd.DataFrame]:
    """A copy of the cohort where outreach changed outcomes, and the record of that outreach."""
    rows = before.train_rows[before.train_rows["week"] == 4]
    estimate = before.bundle.probability(rows[list(before.bundle.feature_names)].to_numpy())
    rng = np.random.default_rng(0)
    chosen = (estimate >= np.quantile(estimate, 0.7)) & (rng.random(len(rows)) < 0.7)
    contacted = rows.loc[chosen, REGISTRATION].assign(contacted=True)
    out = tmp_path_factory.mktemp("injected") / "data"
    shutil.copytree(synth_dir, out)
    registrations = pd.read_parquet(synth_dir / "registrations.parquet")
    hit = registrations.merge(contacted, on=REGISTRATION, how="left")["contacted"].notna().to_numpy()
    not_yet = registrations["unregistration_day"].isna() | (registrations["unregistration_day"] > 28)
    helped = hit & registrations["final_result"].isin(["withdrawn", "fail"]).to_numpy() & not_yet.to_numpy()
    helped &= rng.random(len(registrations)) < 0.8
    registrations.loc[helped, "final_result"] = "pass"
    registrations.loc[helped, "unregistration_day"] = np.nan
    registrations.to_parquet(out / "registrations.parquet", index=False)
    starts = pd.read_parquet(synth_dir / "presentations.parquet")
    record = contacted.merge(starts, on=["module_id", "presentation_id"])
    record = record.assign(contacted_on=pd.to_datetime(record["start_date"]) + pd.Timedelta(days=28))
    return out, record[["student_id", "contacted_on"]]


def _contacted_like(outcome: TrainingOutcome, reference: TrainingOutcome) -> float:
    """Mean estimate, at week 4 of the later presentations, for the top 30% by ``reference``'s estimate."""

    def week4(o: TrainingOutcome) -> pd.Series:
        return o.test_scored[o.test_scored["week"] == 4].set_index(list(KEYS))["probability"]

    ref = week4(reference)
    return float(week4(outcome)[ref[ref >= ref.quantile(0.7)].index].mean())


@pytest.mark.slow
def test_the_naive_model_learns_the_outreach_effect_and_the_censored_ones_do_not(
    synth_dir: Path, before: TrainingOutcome, injected: tuple[Path, pd.DataFrame]
) -> None:
    folder, record = injected
    start = _contacted_like(before, before)
    trained = {
        policy: train_folder(
            folder, target=Target.NOT_COMPLETING, config=_config(policy), interventions=record
        )
        for policy in ("ignore", "exclude_after_contact", "weight")
    }
    naive_fall = start - _contacted_like(trained["ignore"], before)
    assert naive_fall > 0.2  # the next model would send outreach elsewhere
    for policy in ("exclude_after_contact", "weight"):
        fall = start - _contacted_like(trained[policy], before)
        assert fall < naive_fall / 2, (policy, fall, naive_fall)
        done = trained[policy].censoring
        assert done is not None
        assert done.contacted_registrations >= len(record)
    # Leaving the contacted registrations out makes the model blind to what outreach did to them:
    # it is the same model whether outreach helped or not.
    untouched = train_folder(
        synth_dir, target=Target.NOT_COMPLETING, config=_config("exclude_after_contact"), interventions=record
    )
    assert (
        abs(_contacted_like(untouched, before) - _contacted_like(trained["exclude_after_contact"], before))
        < 0.02
    )


def test_a_contact_after_the_outcome_changes_nothing() -> None:
    rows = pd.DataFrame(
        {
            "student_id": ["a", "b", "c"],
            "module_id": "M",
            "presentation_id": "P",
            "outcome_day": [10.0, 100.0, np.nan],  # withdrew on day 10; on day 100; completed
            "f": [1.0, 2.0, 3.0],
        }
    )
    contacts = pd.DataFrame({"student_id": ["a", "b", "c"], "module_id": "M", "presentation_id": "P"})
    contacts["contact_day"] = [30, 30, 30]
    kept, _, done = censor(rows, contacts, policy="exclude_after_contact", features=["f"])
    assert kept.tolist() == [True, False, False]
    assert done.contacted_registrations == 2


def test_contacts_are_placed_on_the_presentation_running_that_day() -> None:
    registrations = pd.DataFrame(
        {"student_id": ["a", "a"], "module_id": ["M", "M"], "presentation_id": ["P1", "P2"]}
    )
    presentations = pd.DataFrame(
        {
            "module_id": ["M", "M"],
            "presentation_id": ["P1", "P2"],
            "start_date": pd.to_datetime(["2024-10-07", "2025-10-06"]),
            "length_days": [262, 269],
        }
    )
    record = pd.DataFrame({"student_id": ["a", "a"], "contacted_on": ["2025-11-05", "2025-10-20"]})
    days = contact_days(record, registrations=registrations, presentations=presentations)
    assert days.to_dict("records") == [
        {"student_id": "a", "module_id": "M", "presentation_id": "P2", "contact_day": 14}
    ]


def test_a_censoring_policy_without_a_record_of_outreach_is_a_clear_error(synth_dir: Path) -> None:
    with pytest.raises(TrainingConfigError, match="needs the record of outreach"):
        train_folder(synth_dir, target=Target.NOT_COMPLETING, config=_config("weight"))


def test_the_command_refuses_an_unknown_intervention_policy(synth_dir: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--data", str(synth_dir), "--intervention-policy", "forget"])
    assert result.exit_code != 0
    assert "exclude_after_contact" in result.output
