"""How much the outreach list changes between runs, and what smoothing the estimates would change.

The list for a share ``s`` of a module presentation is its ``ceil(s * n)`` highest estimates (equal
estimates by student id, as the caseload orders them). Turnover is the share of this run's list that
was not on the previous run's list.

Smoothing ranks by ``w * previous smoothed + (1 - w) * this run's estimate`` (an exponentially
weighted mean over runs; ``w = 0`` is no smoothing). It steadies the list, and the price is lead
time: a student whose estimate rises sharply reaches the list some runs later (``entry_delays``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

KEY = ["student_id", "module_id", "presentation_id"]
PRESENTATION = ["module_id", "presentation_id"]


def top_list(run: pd.DataFrame, share: float, *, score: str = "probability") -> set[tuple[str, str, str]]:
    """The registrations in the top ``share`` of each module presentation of one run."""
    listed: set[tuple[str, str, str]] = set()
    for _, group in run.groupby(PRESENTATION, sort=False):
        size = math.ceil(share * len(group))
        ordered = group.sort_values([score, "student_id"], ascending=[False, True]).head(size)
        listed.update(ordered[KEY].itertuples(index=False, name=None))
    return listed


def turnover(previous: set[tuple[str, str, str]], current: set[tuple[str, str, str]]) -> float:
    """The share of ``current`` that was not in ``previous`` (nan when ``current`` is empty)."""
    return len(current - previous) / len(current) if current else float("nan")


def smoothed(runs: Sequence[pd.DataFrame], weight: float) -> list[pd.DataFrame]:
    """Each run with a ``smoothed`` estimate: ``weight`` times the previous smoothed value plus the rest.

    Parameters
    ----------
    runs
        Runs in order, oldest first: ``student_id, module_id, presentation_id, probability``.
    weight
        Weight of the past, in [0, 1); 0 gives the estimates themselves. A registration new in a run
        starts from its own estimate.
    """
    out: list[pd.DataFrame] = []
    last: dict[tuple[str, str, str], float] = {}
    for run in runs:
        keys = list(run[KEY].itertuples(index=False, name=None))
        before = np.array([last.get(k, np.nan) for k in keys], dtype=np.float64)
        values = smooth_step(before, run["probability"].to_numpy(dtype=np.float64), weight=weight)
        last = dict(zip(keys, values.tolist(), strict=True))
        out.append(run.assign(smoothed=values))
    return out


def smooth_step(previous: np.ndarray, current: np.ndarray, *, weight: float) -> np.ndarray:
    """One run's smoothed values: ``weight * previous + (1 - weight) * current``; NaN ``previous``: new.

    The one formula of smoothing, used by the monitor's what-if figures and by scoring, which stores
    each indicator's smoothed value as the order of the list (``Indicator.priority``).
    """
    if not 0 <= weight < 1:
        raise ValueError(f"a smoothing weight must be in [0, 1), not {weight}")
    out: np.ndarray = np.where(np.isnan(previous), current, weight * previous + (1 - weight) * current)
    return out


def turnover_by_module(
    previous: pd.DataFrame, current: pd.DataFrame, *, share: float, score: str = "probability"
) -> pd.DataFrame:
    """Per module presentation of ``current``: its list size and the turnover since ``previous``."""
    before = top_list(previous, share, score=score)
    rows = []
    for (module, pres), group in current.groupby(PRESENTATION, sort=True):
        now = top_list(group, share, score=score)
        had = {k for k in before if k[1:] == (module, pres)}
        rows.append(
            {
                "module_id": module,
                "presentation_id": pres,
                "listed": len(now),
                "turnover": turnover(had, now) if had else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=[*PRESENTATION, "listed", "turnover"])


def first_listed(
    runs: Sequence[pd.DataFrame], share: float, *, score: str
) -> dict[tuple[str, str, str], int]:
    """The index of the first run in which each registration is on the list."""
    first: dict[tuple[str, str, str], int] = {}
    for index, run in enumerate(runs):
        for key in top_list(run, share, score=score):
            first.setdefault(key, index)
    return first


def entry_delays(runs: Sequence[pd.DataFrame], share: float, *, weight: float) -> dict[str, float]:
    """How many runs later registrations reach the list with smoothing than without (lead time lost).

    Counts only registrations that reach the unsmoothed list after the first run (those on it from
    the start have no entry to delay). ``never`` counts those that the smoothed list had not reached
    by the last run.
    """
    with_weight = smoothed(runs, weight)
    raw = first_listed(with_weight, share, score="probability")
    smooth = first_listed(with_weight, share, score="smoothed")
    entering = {k: i for k, i in raw.items() if i > 0}
    delays = [smooth[k] - i for k, i in entering.items() if k in smooth]
    return {
        "entered": float(len(entering)),
        "median_delay_runs": float(np.median(delays)) if delays else float("nan"),
        "never": float(sum(k not in smooth for k in entering)),
    }
