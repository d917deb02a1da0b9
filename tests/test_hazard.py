"""The hazard framing tried for issue #15: person-period rows and the chance rebuilt from hazards."""

from __future__ import annotations

import numpy as np
import pytest

from waymark.training.hazard import chance_from_hazards, event_block, person_periods


def test_each_landmark_row_becomes_one_row_per_block_it_is_still_registered_at() -> None:
    x = np.array([[10.0], [20.0], [30.0]])
    week, length = (
        np.array([2, 2, 2]),
        np.array([100, 100, 100]),
    )  # cut-off 14: blocks from days 14, 42, 70, 98
    label = np.array([0, 1, 1])
    outcome_day = np.array([np.nan, 50.0, np.nan])  # completes; withdraws on day 50; fails at the end
    periods = person_periods(x, week=week, length_days=length, label=label, outcome_day=outcome_day)
    assert periods.row.tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    assert periods.y.tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    assert periods.x[:, 0].tolist() == [10, 10, 10, 10, 20, 20, 30, 30, 30, 30]  # features as at the cut-off
    assert periods.x[:4, 1].tolist() == [1, 2, 3, 4]  # block number
    assert periods.x[:4, 2].tolist() == [0, 0, 0, 1]  # last block
    assert set(periods.x[:, 3]) == {4}  # blocks in all


def test_a_withdrawal_after_the_end_counts_in_the_last_block() -> None:
    block = event_block(
        np.array([1]), np.array([30]), label=np.array([1]), outcome_day=np.array([45.0]), block_days=28
    )
    assert block.tolist() == [1]


def test_the_chance_is_one_minus_the_product_of_the_block_survivals() -> None:
    x = np.zeros((2, 1))
    week, length = np.array([1, 10]), np.array([119, 119])  # 4 blocks left from day 7; 2 from day 70
    chance = chance_from_hazards(lambda rows: np.full(len(rows), 0.1), x, week=week, length_days=length)
    assert chance == pytest.approx([1 - 0.9**4, 1 - 0.9**2])
