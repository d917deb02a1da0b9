"""Impact evaluation on synthetic cohorts whose outreach effect is known (issue #17, item 1).

Each cohort has confounding by indication: the higher a student's estimate, the likelier they were
contacted, and the estimate is calibrated (a student with estimate p completes with probability
1 - p without outreach). Outreach adds ``effect`` to the completion probability of those contacted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from waymark.fairness.impact import ImpactSettings, estimate

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


def test_an_effect_in_one_group_only_is_found_there_and_not_in_the_other() -> None:
    units = cohort(6000, effect=0.15, only_group="b", seed=3)
    within = {g: estimate(u, covariates=COVARIATES, settings=SETTINGS) for g, u in units.groupby("group")}
    assert _covers(within["b"].effect, 0.15), within["b"].effect
    assert within["b"].effect[1] > 0  # clearly above no effect
    assert _covers(within["a"].effect, 0.0), within["a"].effect
    overall = estimate(units, covariates=COVARIATES, settings=SETTINGS)
    truth = units.loc[units["contacted"], "true_effect"].mean()  # the effect among those contacted
    assert _covers(overall.effect, truth), (overall.effect, truth)
