"""The capacity-cut view of outreach on synthetic lists whose effect is known (issue #17, item 1).

Each list is one module's students in one run, ordered by a calibrated estimate (a student with
estimate p completes with probability 1 - p without outreach); staff contact the first ``capacity``
places, sometimes swapping a few near the cut; outreach adds ``effect`` to completion.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from waymark.fairness.discontinuity import DiscontinuitySettings, discontinuity, distance_from_cut

SETTINGS = DiscontinuitySettings(resamples=150, seed=2)


def lists(
    *, effect: float, n_lists: int = 40, size: int = 400, capacity: int = 100, swaps: int = 0, seed: int = 0
) -> pd.DataFrame:
    """``n_lists`` lists; ``swaps`` of each list's contacted places near the cut traded with the next ones."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_lists):
        logit = np.sort(rng.normal(-0.5, 1.5, size))[::-1]  # descending: the list's order
        contacted = np.arange(size) < capacity
        if swaps:
            skipped = rng.choice(np.arange(capacity - 20, capacity), swaps, replace=False)
            added = rng.choice(np.arange(capacity, capacity + 20), swaps, replace=False)
            contacted[skipped], contacted[added] = False, True
        p = 1 / (1 + np.exp(-logit))
        completed = (rng.random(size) < np.clip(1 - p + effect * contacted, 0, 1)).astype(int)
        frames.append(
            pd.DataFrame(
                {
                    "unit": [f"r{i}-{j}" for j in range(size)],
                    "stratum": i % 2,
                    "module_id": f"M{i // 2}",
                    "contacted": contacted,
                    "completed": completed,
                    "estimate_logit": logit,
                }
            )
        )
    return pd.concat(frames, ignore_index=True).sample(frac=1, random_state=seed)  # order must not matter


def _covers(interval: tuple[float, float, float], value: float) -> bool:
    return interval[1] <= value <= interval[2]


def test_the_cut_lies_between_the_last_contacted_place_and_the_next() -> None:
    units = pd.DataFrame(
        {
            "unit": list("abcde") + list("vwxyz"),
            "stratum": [1] * 10,
            "module_id": ["M1"] * 5 + ["M2"] * 5,
            "contacted": [True, True, False, False, False] + [False] * 5,  # M2: nobody, so no cut
            "completed": [0] * 10,
            "estimate_logit": [3.0, 2.0, 1.0, 0.0, -1.0] * 2,
        }
    )
    placed = distance_from_cut(units)
    assert list(placed["unit"]) == list("abcde")
    assert list(placed["distance"]) == [1.5, 0.5, -0.5, -1.5, -2.5]


def test_a_smoothed_list_is_cut_in_the_order_staff_worked_down() -> None:
    # the list was ordered by smoothed estimates (order_logit): c and a were above b on it
    units = pd.DataFrame(
        {
            "unit": list("abcd"),
            "stratum": [1] * 4,
            "module_id": ["M1"] * 4,
            "contacted": [True, False, True, False],
            "completed": [0] * 4,
            "estimate_logit": [3.0, 2.0, 1.0, 0.0],
            "order_logit": [2.0, 0.5, 2.5, -1.0],
        }
    )
    placed = distance_from_cut(units)
    assert list(placed["unit"]) == list("cabd")
    assert list(placed["distance"]) == [1.25, 0.75, -0.75, -2.25]


@pytest.mark.parametrize(("effect", "swaps"), [(0.0, 0), (0.15, 0), (0.15, 4)])
def test_the_jump_at_the_cut_recovers_a_known_effect(effect: float, swaps: int) -> None:
    units = lists(effect=effect, swaps=swaps, seed=int(effect * 100) + swaps)
    result = discontinuity(units, settings=SETTINGS)
    assert result.followed and result.lists == 40
    assert _covers(result.effect, effect), result.effect
    assert result.first_stage[0] == pytest.approx(1.0 if swaps == 0 else 0.6, abs=0.25)
    if effect:
        assert result.effect[1] > 0  # a real effect is told apart from none
    assert result.inside > 500 and result.outside > 500


def test_a_list_that_was_not_followed_gives_no_estimate_and_says_why() -> None:
    units = lists(effect=0.15, seed=5)
    rng = np.random.default_rng(5)
    units["contacted"] = rng.permutation(units["contacted"].to_numpy())  # contacts unrelated to the order
    result = discontinuity(units, settings=SETTINGS)
    assert not result.followed
    assert np.isnan(result.effect[0]) and abs(result.first_stage[0]) < 0.5


def test_the_view_is_withheld_when_either_side_has_too_few_who_completed_or_did_not() -> None:
    from waymark.fairness.impact import ImpactSettings
    from waymark.fairness.impact_report import at_the_cut
    from waymark.fairness.policy import load_policy

    units = lists(effect=0.0, n_lists=4, size=60, capacity=20, seed=7)
    units["completed"] = np.where(units["contacted"], 1, units["completed"])  # everyone inside completed
    found = discontinuity(units, settings=SETTINGS)
    assert found.cells[1] == 0  # inside the cut, nobody who did not complete
    policy = load_policy()
    shown = at_the_cut(units, settings=ImpactSettings(resamples=20), policy=policy)
    assert set(shown) == {"withheld"}
