"""How far an indicator can be trusted: an interval for the student's chance, from how much the model moves.

What the interval is
--------------------
Training fits the model K times besides the fit on everyone (the folds of the out-of-fold
calibration: each fold fit leaves out a K-th of the students). For every training row the K fold
fits give K estimates; their spread is the delete-a-group jackknife estimate of how much the full
model's estimate for that row would change with another sample of students of the same size,
``(K-1)/K * sum_k (m_k - mean(m))^2`` in log-odds, times the Platt slope squared. Rows are cut into
bins of equal size by their calibrated estimate and each bin keeps the mean of its rows' variances.
A student's interval is, in log-odds,

    logit(estimate) +/- t(df, (1+level)/2) * sqrt(variance of the student's bin)

mapped back to a probability. Student's t is used because the spread comes from only K fits; its
degrees of freedom are Satterthwaite's, from how much the K-1 independent contrasts of the fold fits
disagree in each bin. The interval is symmetric around the estimate in log-odds, so it always holds
the estimate strictly inside (never on an edge); it narrows as the training cohort grows, and it is
wider for estimates where the fold fits disagree more (usually the extremes, where students are few).

The guarantee, and what it is not
---------------------------------
Coverage means: the share of students whose *true* chance of the outcome lies in their interval,
taken over training cohorts as well as students (one trained model errs the same way for many
students, so a single run's coverage scatters around the level). When students are exchangeable
between the training and the later presentations, the estimator behaves like a smooth average (the
jackknife's condition) and the model family can represent the true chances, that coverage is close
to the nominal level: on synthetic cohorts of known chances and a logistic model it is measured
within 3 points of 90% (``tests/test_uncertainty.py``). It is approximate, not exact in finite
samples. It says nothing about one student's outcome, and it does not cover bias: a model that
systematically misjudges a kind of student (features it lacks, a family too rigid or too smooth
for the truth) gives intervals around the wrong place; on the same synthetic cohorts LightGBM,
which cannot draw the logistic truth exactly, covers 0.47 (1,000 students) to 0.71 (4,000) with
training's 300 rounds (``bench/bench_intervals.py``). For the family training usually chooses,
the interval is thus the model's sampling uncertainty, and the pages call it the "model range",
not a 90% statement about the true chance.
A student's true chance is never observed in real data, so on real presentations only a grouped
check can be measured (:func:`grouped_coverage`): the rows of a week are put in groups of similar
estimate, and a group counts as covered when its observed outcome rate lies between the mean lower
and mean upper ends of its rows' intervals, each widened by the observed rate's own chance variation
(``NOMINAL``'s normal quantile times its standard error, sqrt(sum p(1 - p)) / n over the group's
estimates). Without that widening the check measured the outcomes' chance rather than the intervals:
intervals holding every student's true chance, 0.02 wide, scored 0.71 (a statistician's review). It
is a check of bias at the level of groups, not of the per-student coverage: if the intervals hold the
true chances, the grouped share is about the level or above; well below it means the model is biased
on the later presentations by more than its intervals allow. It cannot show intervals too narrow
(outcomes say nothing of a single student's chance: intervals of no width around unbiased estimates
pass it), and it rests on few groups (a week's rows over ``GROUP_ROWS``): one group more or less
covered moves it a lot.

Venn-ABERS predictors were considered: their pair (p0, p1) has a finite-sample validity (one of the
two is calibrated) but no level to measure coverage against, its width shrinks like 1/n whatever the
model's own uncertainty, and isotonic calibration would break the additive log-odds explanations
that Platt scaling keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from scipy.stats import t as student_t

NOMINAL = 0.90
DEFAULT_BINS = 10
GROUP_ROWS = 500  # rows per group in the grouped coverage check
METHOD = "jackknife-t"


@dataclass(frozen=True)
class IntervalBin:
    """One bin of estimates up to ``upper``: its pooled jackknife variance (log-odds squared)."""

    upper: float
    variance: float
    rows: int


@dataclass(frozen=True)
class IntervalTable:
    """What the bundle stores to give each estimate its interval."""

    level: float
    df: float  # degrees of freedom of the pooled variances (Satterthwaite)
    bins: tuple[IntervalBin, ...]
    method: str = METHOD

    def to_dict(self) -> dict[str, Any]:
        """The table as JSON-ready values."""
        bins = [b.__dict__ for b in self.bins]
        return {"method": self.method, "level": self.level, "df": self.df, "bins": bins}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> IntervalTable:
        """The table from :meth:`to_dict`'s values; refuses a method this version does not know."""
        if raw.get("method") != METHOD:
            raise ValueError(f"unknown interval method {raw.get('method')!r}; retrain with this version")
        bins = tuple(
            IntervalBin(float(b["upper"]), float(b["variance"]), int(b["rows"])) for b in raw["bins"]
        )
        return cls(float(raw["level"]), float(raw["df"]), bins)

    @property
    def multiplier(self) -> float:
        """Student's t quantile with ``df`` degrees of freedom at the two-sided level."""
        return float(student_t.ppf((1 + self.level) / 2, self.df))


def interval_table(
    probability: np.ndarray,
    fold_margins: np.ndarray,
    *,
    slope: float,
    level: float = NOMINAL,
    bins: int = DEFAULT_BINS,
) -> IntervalTable:
    """Bins of equal row count over the estimates, each with its rows' mean jackknife variance.

    Parameters
    ----------
    probability
        Out-of-fold calibrated estimates of the training rows.
    fold_margins
        Rows by K: each fold fit's margin for every training row (K at least 2).
    slope
        The Platt slope ``a`` that maps margins to calibrated log-odds.
    level
        Nominal coverage of the intervals.
    bins
        How many bins.

    Returns
    -------
    IntervalTable
        The bins' upper estimates and variances (calibrated log-odds squared), and the degrees of
        freedom of those variances.
    """
    k = fold_margins.shape[1]
    if k < 2:
        raise ValueError("the jackknife needs at least two fold fits")
    squares = (slope * _contrasts(fold_margins)) ** 2
    order = np.argsort(probability, kind="stable")
    parts = [p for p in np.array_split(order, bins) if len(p)]
    per_bin = np.array([squares[p].mean(axis=0) for p in parts])  # bins by K-1
    variance = (k - 1) / k * per_bin.sum(axis=1)
    out = [
        IntervalBin(float(probability[p].max()), float(v), len(p))
        for p, v in zip(parts, variance, strict=True)
    ]
    # The last bin must catch every later estimate, however high.
    out[-1] = IntervalBin(1.0, out[-1].variance, out[-1].rows)
    return IntervalTable(level, _satterthwaite(per_bin), tuple(out))


def _contrasts(fold_margins: np.ndarray) -> np.ndarray:
    """The K fold margins as K-1 orthonormal (Helmert) contrasts: uncorrelated replicates.

    For an estimator that behaves like an average, the K fold estimates share most of their data;
    orthonormal contrasts of them are uncorrelated with equal variance, and the sum of their squares
    equals the sum of squared deviations from the fold mean that the jackknife uses.
    """
    k = fold_margins.shape[1]
    helmert = np.zeros((k, k - 1))
    for j in range(1, k):
        helmert[:j, j - 1] = 1.0
        helmert[j, j - 1] = -float(j)
        helmert[:, j - 1] /= np.sqrt(j * (j + 1))
    out: np.ndarray = fold_margins @ helmert
    return out


def _satterthwaite(per_bin: np.ndarray) -> float:
    """Degrees of freedom of a bin's pooled variance, from how much its K-1 replicates disagree.

    Each replicate's mean square is a quadratic form in the fold fits' deviations; its relative
    variance is 2/d for d effective dimensions, so the pooled variance has about (K-1) d degrees of
    freedom. The relative variance is averaged over bins, and d is kept at least 1.
    """
    replicates = per_bin.shape[1]
    if replicates < 2:
        return 1.0
    spread = per_bin.var(axis=1, ddof=1)
    # The squared mean overstates the squared expectation by the variance of the mean; without
    # taking that off, a few replicates would look more alike than they are.
    level = per_bin.mean(axis=1) ** 2 - spread / replicates
    relative = float(spread.sum()) / max(float(level.sum()), 1e-300)
    dimensions = 2.0 / max(relative, 1e-9)
    return float(replicates * max(1.0, dimensions))


def intervals(table: IntervalTable | None, probability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper ends of each estimate's interval (each holds its estimate strictly inside)."""
    if table is None:
        raise ValueError(
            "this model was trained before Waymark's intervals had a stated coverage and cannot give "
            "one; retrain it with this version of Waymark"
        )
    uppers = np.array([b.upper for b in table.bins])
    half = table.multiplier * np.sqrt([b.variance for b in table.bins])
    which = np.minimum(np.searchsorted(uppers, probability, side="left"), len(uppers) - 1)
    p = np.clip(probability, 1e-12, 1 - 1e-12)
    centre = np.log(p / (1 - p))
    return _sigmoid(centre - half[which]), _sigmoid(centre + half[which])


def coverage(lower: np.ndarray, upper: np.ndarray, *, truth: np.ndarray) -> float:
    """Share of students whose true chance ``truth`` lies in their interval (known only in simulation)."""
    return float(np.mean((truth >= lower) & (truth <= upper)))


def grouped_coverage(scored: pd.DataFrame, *, rows: int = GROUP_ROWS) -> pd.DataFrame:
    """The grouped check on real outcomes, per week: coverage, mean width, groups, nominal.

    Rows of each week are sorted by estimate and cut into groups of about ``rows`` rows. A group is
    covered when its observed outcome rate lies between the mean lower and mean upper ends of its
    rows' intervals, widened by the observed rate's own chance variation (the module docstring).

    Parameters
    ----------
    scored
        Scored rows with ``week``, ``label``, ``probability``, ``lower`` and ``upper``.
    rows
        About how many rows a group holds.

    Returns
    -------
    pandas.DataFrame
        Indexed by week: ``coverage`` (share of groups covered), ``mean_width`` (mean of
        ``upper - lower`` over rows), ``groups``.
    """
    return pd.DataFrame(
        [_week_coverage(week, frame, rows=rows) for week, frame in scored.groupby("week", sort=True)],
        columns=["week", "coverage", "mean_width", "groups"],
    ).set_index("week")


def scored_coverage(
    table: IntervalTable | None, scored: pd.DataFrame, *, rows: int = GROUP_ROWS
) -> pd.DataFrame:
    """The grouped check (:func:`grouped_coverage`) on scored rows, with their intervals from ``table``.

    Parameters
    ----------
    table
        The bundle's interval table.
    scored
        Scored rows with ``week``, ``label`` and ``probability`` (e.g. ``TrainingOutcome.test_scored``).
    rows
        About how many rows a group holds.

    Returns
    -------
    pandas.DataFrame
        Indexed by week: ``coverage``, ``nominal``, ``mean_width``, ``groups``.
    """
    lower, upper = intervals(table, scored["probability"].to_numpy(dtype=np.float64))
    out = grouped_coverage(scored.assign(lower=lower, upper=upper), rows=rows)
    out.insert(1, "nominal", table.level if table is not None else np.nan)
    return out


def _week_coverage(week: object, frame: pd.DataFrame, *, rows: int) -> tuple[object, float, float, int]:
    order = np.argsort(frame["probability"].to_numpy(), kind="stable")
    parts = np.array_split(order, max(1, len(order) // rows))
    y, lo, hi, p = (frame[c].to_numpy(dtype=np.float64) for c in ("label", "lower", "upper", "probability"))
    z = float(norm.ppf(0.5 + NOMINAL / 2))
    covered = []
    for part in parts:
        noise = z * np.sqrt(np.sum(p[part] * (1 - p[part]))) / max(part.size, 1)
        covered.append(lo[part].mean() - noise <= y[part].mean() <= hi[part].mean() + noise)
    return week, float(np.mean(covered)), float((hi - lo).mean()), len(parts)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-z))
    return out
