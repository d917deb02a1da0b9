"""Per-student intervals: they hold their estimate, narrow with data, and cover true chances at their level.

The project's synthetic generator does not expose each student's true chance, so these tests draw
their own cohorts: features from a normal distribution and a known logistic chance of the outcome.
The model trained on them is the one training builds (``training.pipeline._calibrated``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from waymark.models.bundle import ModelBundle, bundle_sha256
from waymark.models.uncertainty import NOMINAL, grouped_coverage, intervals, scored_coverage
from waymark.training.known_chances import draw, held_out, trained

GBM_ROUNDS = 50  # few rounds: these tests are about the interval, not the model


def _cohort(rng: np.random.Generator, n: int, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return draw(rng, n, beta=beta)


def _trained(seed: int, n: int, *, family: str = "logistic") -> tuple[ModelBundle, np.ndarray]:
    return trained(seed, n, family=family, gbm_estimators=GBM_ROUNDS)


def _held_out(seed: int, n: int) -> tuple[float, float]:
    return held_out(seed, n, family="logistic", gbm_estimators=GBM_ROUNDS)


@pytest.fixture(scope="module")
def runs() -> dict[int, np.ndarray]:
    """Per training size, (coverage, width) of 40 training cohorts, each checked on a held-out one."""
    return {n: np.array([_held_out(seed, n) for seed in range(40)]) for n in (1000, 4000)}


def test_coverage_of_true_chances_on_a_held_out_cohort_is_within_three_points_of_nominal(
    runs: dict[int, np.ndarray],
) -> None:
    # The guarantee is on average over training cohorts: one cohort's model errs the same way for
    # many students, so a single run's coverage scatters widely around the level.
    for n, results in runs.items():
        assert abs(results[:, 0].mean() - NOMINAL) <= 0.03, (n, results[:, 0].mean())


def test_intervals_narrow_as_the_training_cohort_grows(runs: dict[int, np.ndarray]) -> None:
    assert runs[4000][:, 1].mean() < 0.7 * runs[1000][:, 1].mean()


def test_every_interval_holds_its_estimate_strictly_inside() -> None:
    bundle, beta = _trained(1, 1500, family="gbm")
    x, _, _ = _cohort(np.random.default_rng(2), 3000, beta)
    probability = bundle.probability(x)
    lower, upper = intervals(bundle.uncertainty, probability)
    assert (lower < probability).all()
    assert (probability < upper).all()


def test_intervals_are_wider_where_the_fold_fits_disagree_more() -> None:
    bundle, _ = _trained(3, 2000)
    assert bundle.uncertainty is not None
    variances = [b.variance for b in bundle.uncertainty.bins]
    # The middle estimates sit where the data is densest: the most extreme bins vary more.
    middle = variances[len(variances) // 2]
    assert max(variances[0], variances[-1]) > middle


def test_the_interval_table_survives_saving_and_loading(tmp_path: Path) -> None:
    bundle, beta = _trained(4, 1000)
    digest = bundle.save(tmp_path / "b")
    loaded = ModelBundle.load(tmp_path / "b", digest)
    x, _, _ = _cohort(np.random.default_rng(5), 200, beta)
    p = bundle.probability(x)
    np.testing.assert_allclose(intervals(loaded.uncertainty, p), intervals(bundle.uncertainty, p))


def test_a_bundle_from_before_the_interval_table_loads_and_refuses_intervals_by_saying_to_retrain(
    tmp_path: Path,
) -> None:
    bundle, _ = _trained(6, 1000)
    folder = tmp_path / "old"
    bundle.save(folder)
    meta = json.loads((folder / "bundle.json").read_text(encoding="utf-8"))
    del meta["uncertainty"]
    meta["reliability"] = [{"upper": 1.0, "students": 100, "observed_rate": 0.3}]
    (folder / "bundle.json").write_text(json.dumps(meta), encoding="utf-8")
    old = ModelBundle.load(folder, bundle_sha256(folder))
    assert old.uncertainty is None
    with pytest.raises(ValueError, match="retrain"):
        intervals(old.uncertainty, np.array([0.2, 0.5]))


def test_grouped_coverage_counts_a_group_covered_only_when_its_observed_rate_is_inside() -> None:
    week = np.repeat([4, 8], 400)
    scored = pd.DataFrame(
        {
            "week": week,
            "label": np.r_[np.tile([0, 1], 200), np.ones(400, dtype=int)],
            "probability": 0.5,
            "lower": 0.4,
            "upper": 0.6,
        }
    )
    table = grouped_coverage(scored, rows=400)
    assert table.loc[4, "coverage"] == 1.0  # observed 0.5 inside 0.4 to 0.6
    assert table.loc[8, "coverage"] == 0.0  # observed 1.0 outside, beyond its chance variation (0.04)
    assert table.loc[4, "mean_width"] == pytest.approx(0.2)
    assert list(table["groups"]) == [1, 1]


def test_intervals_that_hold_every_true_chance_are_not_scored_low_for_the_outcomes_chance() -> None:
    """A statistician's review: intervals 0.02 wide holding every student's true chance scored 0.71, the
    observed rates' own chance variation being counted against them."""
    rng = np.random.default_rng(11)
    truth = rng.uniform(0.05, 0.6, 20_000)
    scored = pd.DataFrame(
        {
            "week": 4,
            "label": (rng.random(truth.size) < truth).astype(int),
            "probability": truth,
            "lower": truth - 0.01,
            "upper": truth + 0.01,
        }
    )
    table = grouped_coverage(scored, rows=200)
    assert table.loc[4, "groups"] == 100
    assert table.loc[4, "coverage"] >= NOMINAL - 0.05


def test_scored_coverage_reports_each_week_beside_the_nominal_level() -> None:
    bundle, beta = _trained(7, 2000)
    rng = np.random.default_rng(8)
    x, y, _ = _cohort(rng, 2000, beta)
    scored = pd.DataFrame({"week": np.repeat([4, 8], 1000), "label": y, "probability": bundle.probability(x)})
    table = scored_coverage(bundle.uncertainty, scored, rows=250)
    assert list(table.index) == [4, 8]
    assert (table["nominal"] == NOMINAL).all()
    assert (table["groups"] == 4).all()
    # A model of the right form: the groups' observed rates fall inside their intervals.
    assert table["coverage"].mean() >= 0.75
