"""A discrete-time hazard framing of ``not_completing``, pooled across prediction weeks: tried, not adopted.

Issue #15 asked for one more model family beside logistic regression and LightGBM, such as a
discrete-time hazard pooled across weeks. From a population row at week W (cut-off c = 7W, the
presentation ``length_days`` long), the rest of the presentation is cut into blocks of ``block_days``
(the last block runs to the end). The row becomes one person-period row per block the student is
still registered at the start of: its features as at the cut-off (nothing later is known), the
block's number, whether it is the last block, and how many blocks there are. Its label is 1 in the
block where the registration ends without completing (a withdrawal on its ``outcome_day``; a fail,
which has none, in the last block) and 0 before. One model of the block hazard is fitted on every
week's rows at once, and the chance of not completing is

    1 - prod over blocks b of (1 - hazard(x, b))

Measured by ``bench/bench_training.py --hazard`` on OULAD's validation presentations (fitted on 2013B,
scored on 2013J; the test presentations not consulted), it ranks as the direct model does: see
docs/training.md. It is not a model family of the pipeline: a product of hazards has no exact
additive contributions in log-odds, which every explanation Waymark gives is built from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

BLOCK_DAYS = 28


@dataclass(frozen=True)
class PersonPeriods:
    """The person-period rows: features with the block columns, labels, and the landmark row of each."""

    x: np.ndarray
    y: np.ndarray
    row: np.ndarray


def blocks_left(week: np.ndarray, length_days: np.ndarray, *, block_days: int = BLOCK_DAYS) -> np.ndarray:
    """Blocks from each row's cut-off to the end of its presentation (at least one)."""
    left = np.asarray(length_days, dtype=np.float64) - 7 * np.asarray(week, dtype=np.float64)
    return np.maximum(1, np.ceil(left / block_days)).astype(np.int64)


def event_block(
    week: np.ndarray,
    length_days: np.ndarray,
    *,
    label: np.ndarray,
    outcome_day: np.ndarray,
    block_days: int = BLOCK_DAYS,
) -> np.ndarray:
    """The block in which each registration ends without completing (1-based), 0 when it completes."""
    blocks = blocks_left(week, length_days, block_days=block_days)
    day = np.where(np.isnan(outcome_day), np.asarray(length_days, dtype=np.float64), outcome_day)
    block = np.floor((day - 7 * np.asarray(week)) / block_days).astype(np.int64) + 1
    return np.where(np.asarray(label) == 1, np.clip(block, 1, blocks), 0)


def block_columns(block: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """The columns a person-period row adds to the features: block number, last block, blocks in all."""
    return np.column_stack([block, block == blocks, blocks]).astype(np.float64)


def person_periods(
    x: np.ndarray,
    *,
    week: np.ndarray,
    length_days: np.ndarray,
    label: np.ndarray,
    outcome_day: np.ndarray,
    block_days: int = BLOCK_DAYS,
) -> PersonPeriods:
    """Expand landmark rows (features ``x`` at their cut-off) into person-period rows."""
    blocks = blocks_left(week, length_days, block_days=block_days)
    ends = event_block(week, length_days, label=label, outcome_day=outcome_day, block_days=block_days)
    last = np.where(ends > 0, ends, blocks)
    row = np.repeat(np.arange(len(x)), last)
    block = np.arange(len(row)) - np.repeat(np.cumsum(last) - last, last) + 1
    y = (block == ends[row]).astype(np.int64)
    return PersonPeriods(np.hstack([x[row], block_columns(block, blocks[row])]), y, row)


def chance_from_hazards(
    hazard: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    *,
    week: np.ndarray,
    length_days: np.ndarray,
    block_days: int = BLOCK_DAYS,
) -> np.ndarray:
    """1 - the product of (1 - hazard) over each row's blocks: the chance of not completing."""
    blocks = blocks_left(week, length_days, block_days=block_days)
    survival = np.ones(len(x))
    for b in range(1, int(blocks.max(initial=1)) + 1):
        live = blocks >= b
        if live.any():
            extra = block_columns(np.full(int(live.sum()), b), blocks[live])
            survival[live] *= 1.0 - hazard(np.hstack([x[live], extra]))
    return 1.0 - survival
