"""Did outreach help? Contacted students against comparable students who were not contacted.

Outreach goes first to the students with the highest estimates, so contacted students would have
completed less often even if outreach did nothing (confounding by indication): the naive difference
between contacted and not-contacted students mostly measures who was chosen. This module compares each
contacted student with the not-contacted student most like them at the time of contact: the same
prediction week (``stratum``), and the nearest propensity to be contacted, estimated from the
estimate and the features at that time (nearest-neighbour matching with replacement, inside a
caliper). The effect is the mean difference in completion over the matched contacted students (the
effect on those contacted), with a bootstrap interval that resamples students (each with all their
registrations) and repeats the matching, and standardised mean differences before and after
matching show whether the matched students are in fact comparable.

All functions are pure: a frame of units in, figures out. A unit is one registration at one
prediction week: ``unit`` (the registration's key), ``student_id`` (the bootstrap's cluster), ``stratum``,
``contacted`` (bool), ``completed`` (0/1) and the covariates. A registration never contacted can
appear at several weeks, as a possible comparison for contacted students at each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

Interval = tuple[float, float, float]  # point, low, high


@dataclass(frozen=True)
class ImpactSettings:
    """How the comparison is made."""

    caliper: float = 0.2  # in standard deviations of the propensity's log-odds
    resamples: int = 200
    confidence: float = 0.95
    seed: int = 0


@dataclass(frozen=True)
class Estimate:
    """The effect of contact on completion among the contacted students, and what it rests on."""

    effect: Interval  # matched difference in completion rate (contacted minus comparison)
    naive: Interval  # contacted minus every not-contacted unit: what a plain comparison shows
    contacted: int  # contacted registrations
    matched: int  # of which a comparable not-contacted student was found
    comparison: int  # distinct not-contacted registrations used as comparisons
    completed_contacted: float  # completion rate of the matched contacted students
    completed_comparison: float  # completion rate of their comparisons
    balance: dict[str, tuple[float, float]] = field(default_factory=dict)  # covariate -> SMD before, after


@dataclass(frozen=True)
class _Matched:
    treated: np.ndarray  # row positions of matched contacted units
    controls: np.ndarray  # row position of each one's comparison


def propensity_logit(units: pd.DataFrame, covariates: list[str], *, seed: int = 0) -> np.ndarray:
    """Log-odds of being contacted given the covariates (standardised, lightly regularised logistic).

    Newton's method with a Cholesky solve: for a few covariates and thousands of rows it reaches the
    same optimum as L-BFGS in a third of the time, which the bootstrap's hundreds of refits repeat.
    """
    model = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=1.0, max_iter=2000, random_state=seed, solver="newton-cholesky"),
    )
    y = units["contacted"].to_numpy(dtype=bool)
    model.fit(units[covariates].to_numpy(dtype=np.float64), y)
    out: np.ndarray = model.decision_function(units[covariates].to_numpy(dtype=np.float64))
    return out


def _nearest(pool: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Position in ``pool`` of each query's nearest value (one dimension: a sorted search; ties go low)."""
    order = np.argsort(pool, kind="stable")
    ranked = pool[order]
    above = np.clip(np.searchsorted(ranked, queries), 0, len(ranked) - 1)
    below = np.clip(above - 1, 0, len(ranked) - 1)
    closer_above = np.abs(ranked[above] - queries) < np.abs(queries - ranked[below])
    return order[np.where(closer_above, above, below)]


def match(units: pd.DataFrame, score: np.ndarray, *, caliper: float) -> _Matched:
    """Each contacted unit's nearest not-contacted unit in the same stratum, within the caliper.

    ``caliper`` is in standard deviations of ``score``; contacted units without a comparison that
    close are left unmatched (and counted), rather than compared with someone unlike them.
    """
    width = caliper * float(np.std(score)) if np.std(score) > 0 else np.inf
    contacted = units["contacted"].to_numpy(dtype=bool)
    strata = units["stratum"].to_numpy()
    treated, controls = [], []
    for stratum in np.unique(strata[contacted]):
        t = np.flatnonzero(contacted & (strata == stratum))
        c = np.flatnonzero(~contacted & (strata == stratum))
        if len(c) == 0:
            continue
        nearest = _nearest(score[c], score[t])
        close = np.abs(score[c][nearest] - score[t]) <= width
        treated.append(t[close])
        controls.append(c[nearest[close]])
    if not treated:
        return _Matched(np.array([], dtype=int), np.array([], dtype=int))
    return _Matched(np.concatenate(treated), np.concatenate(controls))


def standardised_differences(
    units: pd.DataFrame, covariates: list[str], *, matched: _Matched
) -> dict[str, tuple[float, float]]:
    """Standardised mean difference of each covariate before and after matching.

    Both use the pooled standard deviation before matching, so a fall is a fall in the difference and
    not a change of scale. Below 0.1 is conventionally read as balanced.
    """
    contacted = units["contacted"].to_numpy(dtype=bool)
    out = {}
    for name in covariates:
        x = units[name].to_numpy(dtype=np.float64)
        scale = np.sqrt((np.var(x[contacted]) + np.var(x[~contacted])) / 2) or 1.0
        before = (x[contacted].mean() - x[~contacted].mean()) / scale
        after = (
            (x[matched.treated].mean() - x[matched.controls].mean()) / scale
            if len(matched.treated)
            else np.nan
        )
        out[name] = (float(before), float(after))
    return out


_NONE = _Matched(np.array([], dtype=int), np.array([], dtype=int))


def _point(
    units: pd.DataFrame, covariates: list[str], *, settings: ImpactSettings
) -> tuple[float, float, _Matched]:
    """Matched and naive differences in completion for one (re)sample of units, and the matches."""
    y = units["completed"].to_numpy(dtype=np.float64)
    contacted = units["contacted"].to_numpy(dtype=bool)
    if not contacted.any() or contacted.all():
        return np.nan, np.nan, _NONE
    naive = float(y[contacted].mean() - y[~contacted].mean())
    matched = match(units, propensity_logit(units, covariates, seed=settings.seed), caliper=settings.caliper)
    if not len(matched.treated):
        return np.nan, naive, matched
    return float(y[matched.treated].mean() - y[matched.controls].mean()), naive, matched


def resample_registrations(units: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Students drawn with replacement, each bringing all the rows of all their registrations.

    Outreach reaches a student, not a registration, and a student's registrations are not independent,
    so the student is the bootstrap's cluster (``student_id``; ``unit``, the registration, where units
    carry no student).
    """
    codes, names = pd.factorize(units["student_id" if "student_id" in units.columns else "unit"])
    draws = np.bincount(rng.integers(0, len(names), len(names)), minlength=len(names))
    return units.iloc[np.repeat(np.arange(len(units)), draws[codes])].reset_index(drop=True)


def percentile_interval(point: float, draws: np.ndarray, *, confidence: float) -> Interval:
    """The point with the percentile interval of its bootstrap draws (NaN draws left out)."""
    kept = draws[~np.isnan(draws)]
    if np.isnan(point) or not len(kept):
        return (point, np.nan, np.nan)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(kept, [tail, 100 - tail])
    return (point, float(low), float(high))


def estimate(units: pd.DataFrame, *, covariates: list[str], settings: ImpactSettings) -> Estimate:
    """The matched effect of contact on completion, its naive counterpart, intervals and balance.

    Parameters
    ----------
    units
        One row per registration and week: ``unit``, ``stratum``, ``contacted``, ``completed`` and
        the ``covariates`` (the estimate's log-odds among them).
    covariates
        The columns the propensity to be contacted is estimated from.
    settings
        Caliper, bootstrap resamples, confidence and seed.

    Returns
    -------
    Estimate
    """
    units = units.reset_index(drop=True)
    effect, naive, matched = _point(units, covariates, settings=settings)
    rng = np.random.default_rng(settings.seed)
    draws = np.array(
        [
            _point(resample_registrations(units, rng), covariates, settings=settings)[:2]
            for _ in range(settings.resamples)
        ]
    ).reshape(-1, 2)
    contacted = units["contacted"].to_numpy(dtype=bool)
    y = units["completed"].to_numpy(dtype=np.float64)
    return Estimate(
        effect=percentile_interval(effect, draws[:, 0], confidence=settings.confidence),
        naive=percentile_interval(naive, draws[:, 1], confidence=settings.confidence),
        contacted=int(units.loc[contacted, "unit"].nunique()),
        matched=int(units.loc[matched.treated, "unit"].nunique()),
        comparison=int(units.loc[matched.controls, "unit"].nunique()),
        completed_contacted=float(y[matched.treated].mean()) if len(matched.treated) else np.nan,
        completed_comparison=float(y[matched.controls].mean()) if len(matched.controls) else np.nan,
        balance=standardised_differences(units, covariates, matched=matched) if len(matched.treated) else {},
    )
