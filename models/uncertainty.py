"""How far an indicator can be trusted: an interval from how similar estimates turned out before.

Training keeps a reliability table: the out-of-fold calibrated estimates of the training rows cut into
bins of equal size, with, for each bin, how many distinct students it holds and how often the outcome
happened. An indicator's interval is the Wilson interval of its bin's observed rate (students, not
student-weeks, count as the sample size, because one student's weeks are not independent), widened
to contain the estimate itself. It says: "of students given similar estimates in earlier
presentations, between L and U had this outcome".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z_90 = 1.6448536269514722  # two-sided 90% normal quantile
DEFAULT_BINS = 10


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of the reliability table: estimates up to ``upper``."""

    upper: float
    students: int
    observed_rate: float


def reliability_table(
    probability: np.ndarray, outcome: np.ndarray, *, students: np.ndarray, bins: int = DEFAULT_BINS
) -> tuple[ReliabilityBin, ...]:
    """Bins of equal row count over the estimates, with distinct students and observed rate.

    Parameters
    ----------
    probability
        Out-of-fold calibrated estimates of the training rows.
    outcome
        The rows' labels (0 or 1).
    students
        The rows' student identifiers.
    bins
        How many bins.
    """
    order = np.argsort(probability, kind="stable")
    out = []
    for part in np.array_split(order, bins):
        if len(part) == 0:
            continue
        out.append(
            ReliabilityBin(
                float(probability[part].max()),
                len(np.unique(students[part])),
                float(outcome[part].mean()),
            )
        )
    # The last bin must catch every later estimate, however high.
    last = out[-1]
    out[-1] = ReliabilityBin(1.0, last.students, last.observed_rate)
    return tuple(out)


def wilson(rate: float, n: int, *, z: float = Z_90) -> tuple[float, float]:
    """Wilson score interval for a proportion."""
    if n <= 0:
        return 0.0, 1.0
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def intervals(table: tuple[ReliabilityBin, ...], probability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper ends of each estimate's interval (each contains its estimate)."""
    if not table:
        raise ValueError("the model has no reliability table; retrain it with this version of Waymark")
    uppers = np.array([b.upper for b in table])
    ends = np.array([wilson(b.observed_rate, b.students) for b in table])
    which = np.minimum(np.searchsorted(uppers, probability, side="left"), len(table) - 1)
    lower = np.minimum(ends[which, 0], probability)
    upper = np.maximum(ends[which, 1], probability)
    return lower, upper
