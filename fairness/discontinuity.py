"""A second view of outreach's effect: students just inside and just outside the capacity cut.

Where staff worked down the list in support-priority order until their time ran out, whether a
student was contacted turned on where the cut fell, not on anything staff knew about them: a student
ranked just above the cut and one just below it looked almost the same to Waymark, and to anyone
else. Comparing their outcomes at the cut (a regression discontinuity) is free of the unmeasured
confounding that the matched comparison (``fairness.impact``) cannot rule out, but it speaks only for
students near the cut and only where the list was in fact followed.

Each list is one module's students in one scoring run (``stratum`` and ``module_id``); its cut lies
between the last contacted place and the next, where the number contacted from that list would have
reached. A student's distance from the cut is their estimate's log-odds minus the log-odds midway
between those two places (positive: inside the cut). Within ``bandwidth`` of the cut, on each side, a
line weighted by closeness to the cut (triangular kernel) is fitted to completion and to contact;
the effect is the jump in completion divided by the jump in the share contacted (a fuzzy design:
staff may have skipped or added students near the cut). When that share jumps by less than
``min_first_stage`` the list was not followed closely enough for this view to say anything, and it
says so instead of dividing by a small number. Intervals resample registrations (as the matched
comparison does) and repeat the whole fit.

All functions are pure: a frame of units in (``fairness.impact``'s, with ``module_id``), figures out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from waymark.fairness.impact import Interval, percentile_interval, resample_registrations

LIST = ["stratum", "module_id"]


@dataclass(frozen=True)
class DiscontinuitySettings:
    """How close to the cut a student must be, and when the list counts as followed."""

    bandwidth: float = 1.0  # in log-odds of the estimate, on each side of the cut
    min_first_stage: float = 0.5  # the jump in the share contacted below which nothing is estimated
    resamples: int = 200
    confidence: float = 0.95
    seed: int = 0


@dataclass(frozen=True)
class Discontinuity:
    """The jumps at the cut, with intervals, and how many students each side of it they rest on."""

    effect: Interval  # jump in completion / jump in the share contacted (NaN when not followed)
    first_stage: Interval  # jump in the share contacted at the cut
    outcome_jump: Interval  # jump in completion at the cut
    inside: int  # registrations within the bandwidth on the contacted side
    outside: int  # and on the other side
    lists: int  # module lists that had a cut (some contacted, some not)
    followed: bool  # the share contacted jumped by at least ``min_first_stage``
    cells: tuple[int, ...] = ()  # each side's registrations who completed and who did not (small cells)


def distance_from_cut(units: pd.DataFrame) -> pd.DataFrame:
    """The units of every list with a cut, with ``distance`` (log-odds; positive inside the cut).

    A list's cut falls after as many places, in descending order of the estimate, as it had students
    contacted; lists where nobody or everybody was contacted have no cut and are left out. Where the
    list was ordered by smoothed estimates (``order_logit``: the monitoring policy's smoothing), the
    places and the distance are in that order's log-odds, the order staff worked down.
    """
    running = "order_logit" if "order_logit" in units.columns else "estimate_logit"
    ordered = units.sort_values([*LIST, running], ascending=[True, True, False], kind="stable")
    grouped = ordered.groupby(LIST, sort=False)
    place = grouped.cumcount().to_numpy()
    size = grouped["contacted"].transform("size").to_numpy()
    taken = grouped["contacted"].transform("sum").to_numpy().astype(int)
    logit = ordered[running].to_numpy(dtype=np.float64)
    has_cut = (taken > 0) & (taken < size)
    # the log-odds of the last place inside the cut and of the first outside, spread to the whole list
    last_in = pd.Series(np.where(place == taken - 1, logit, np.nan), index=ordered.index)
    first_out = pd.Series(np.where(place == taken, logit, np.nan), index=ordered.index)
    keys = [ordered[c] for c in LIST]
    inside_edge = last_in.groupby(keys, sort=False).transform("max")
    cut = (inside_edge + first_out.groupby(keys, sort=False).transform("max")) / 2
    out = ordered.assign(distance=logit - cut.to_numpy())
    return out.loc[has_cut].reset_index(drop=True)


def _side_intercept(x: np.ndarray, y: np.ndarray, *, w: np.ndarray) -> float:
    """The weighted straight line's value at the cut (x = 0); NaN when it cannot be fitted."""
    if np.count_nonzero(w) < 2 or np.ptp(x[w > 0]) == 0:
        return float(w @ y / w.sum()) if w.sum() > 0 else np.nan
    design = np.column_stack([np.ones_like(x), x]) * np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(design, y * np.sqrt(w), rcond=None)
    return float(coef[0])


def jumps(near: pd.DataFrame, *, bandwidth: float) -> tuple[float, float]:
    """Jumps at the cut in completion and in the share contacted (inside minus outside)."""
    x = near["distance"].to_numpy(dtype=np.float64)
    w = np.clip(1 - np.abs(x) / bandwidth, 0, None)  # triangular: the closest count most
    inside = x >= 0
    found = []
    for column in ("completed", "contacted"):
        y = near[column].to_numpy(dtype=np.float64)
        within = _side_intercept(x[inside], y[inside], w=w[inside])
        found.append(within - _side_intercept(x[~inside], y[~inside], w=w[~inside]))
    return found[0], found[1]


def _point(near: pd.DataFrame, settings: DiscontinuitySettings) -> tuple[float, float, float]:
    outcome, first = jumps(near, bandwidth=settings.bandwidth)
    effect = outcome / first if first >= settings.min_first_stage else np.nan
    return effect, first, outcome


def discontinuity(units: pd.DataFrame, *, settings: DiscontinuitySettings) -> Discontinuity:
    """The effect of contact on completion at the capacity cut of each module's list.

    Parameters
    ----------
    units
        ``fairness.impact``'s units with ``module_id``: ``unit``, ``stratum``, ``module_id``,
        ``contacted``, ``completed``, ``estimate_logit``.
    settings
        Bandwidth, the first-stage threshold, bootstrap resamples, confidence and seed.

    Returns
    -------
    Discontinuity
    """
    placed = distance_from_cut(units)
    near = placed[placed["distance"].abs() < settings.bandwidth].reset_index(drop=True)
    inside = near["distance"].to_numpy() >= 0
    effect, first, outcome = _point(near, settings) if len(near) else (np.nan, np.nan, np.nan)
    rng = np.random.default_rng(settings.seed)
    times = settings.resamples if len(near) else 0
    draws = np.array([_point(resample_registrations(near, rng), settings) for _ in range(times)])
    draws = draws.reshape(-1, 3)
    followed = bool(first >= settings.min_first_stage)
    return Discontinuity(
        effect=percentile_interval(effect, draws[:, 0], confidence=settings.confidence),
        first_stage=percentile_interval(first, draws[:, 1], confidence=settings.confidence),
        outcome_jump=percentile_interval(outcome, draws[:, 2], confidence=settings.confidence),
        cells=tuple(
            int(near.loc[side & (near["completed"].to_numpy() == done), "unit"].nunique())
            for side in (inside, ~inside)
            for done in (1, 0)
        ),
        inside=int(near.loc[inside, "unit"].nunique()),
        outside=int(near.loc[~inside, "unit"].nunique()),
        lists=int(placed.groupby(LIST).ngroups) if len(placed) else 0,
        followed=followed,
    )
