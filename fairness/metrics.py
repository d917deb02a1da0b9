"""Group metrics from weighted sums: one code path for point estimates and bootstrap resamples.

A bootstrap resample of n students is a row of multinomial weights (how often each student was
drawn). Every metric here is a ratio of weighted sums by group (``GroupSums``: the confusion
counts, the sums by band of indicator values, and the ranked pairs that make AUC), so with a
(B x n) weight matrix all B resamples are computed at once; with a single row of ones the same
code gives the point estimate, which tests compare with Fairlearn's MetricFrame.

``weighted_sums`` computes the sums with sparse one-hot products (the reference, kept plain);
the audit gets the very same sums from ``fairness.resampling``, one compiled pass per
characteristic that serves every capacity at once.

``METRICS`` is the one table of the audited metrics: how each is computed, which direction is
better, and what it means in plain language (the report prints the meanings). The policy's gate
checks, the audit and the report all read it; tests/test_registries.py fails when an entry is
incomplete or the audit publishes a metric the table does not hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import sparse

ECE_BINS = 10


@dataclass(frozen=True)
class Cohort:
    """One audited cohort (a week at a capacity): labels, scores, selection, group codes."""

    label: np.ndarray  # 1: needed support (the outcome happened)
    probability: np.ndarray
    selected: np.ndarray  # in the outreach list at this capacity
    codes: np.ndarray  # group index of each row, 0..n_groups-1
    n_groups: int


def bootstrap_draws(n: int, resamples: int, *, rng: np.random.Generator) -> np.ndarray:
    """(resamples x n) rows drawn with replacement: each resample is n draws of the n rows."""
    draws: np.ndarray = rng.integers(0, n, size=(resamples, n))
    return draws


def counts_by_row(draws: np.ndarray, n: int) -> np.ndarray:
    """(n x 1 + B) counts: column 0 all ones (the point estimate), column 1 + b resample b's counts.

    ``draws`` is (B x n) as ``bootstrap_draws`` gives. Each student's counts in every resample are
    one contiguous row, in the smallest unsigned dtype that holds them (one byte, unless some row
    is drawn 256 times or more in a resample).
    """
    dtype = np.dtype(np.uint8)
    while True:
        out = np.empty((n, 1 + len(draws)), dtype=dtype)
        out[:, 0] = 1
        top = 0
        for b, row in enumerate(draws):
            counts = np.bincount(row, minlength=n)  # one small count per resample stays in cache
            top = max(top, int(counts.max(initial=0)))
            out[:, 1 + b] = counts
        if top <= np.iinfo(dtype).max:
            return out
        dtype = np.min_scalar_type(top)


def bootstrap_counts(n: int, resamples: int, *, rng: np.random.Generator) -> np.ndarray:
    """(resamples x n) counts of how often each row is drawn in each resample, in the smallest dtype.

    The draws are those of ``bootstrap_weights`` (same generator, same order), so the two agree.
    """
    return counts_by_row(bootstrap_draws(n, resamples, rng=rng), n)[:, 1:].T


def bootstrap_weights(n: int, resamples: int, *, rng: np.random.Generator) -> np.ndarray:
    """(resamples x n) counts of how often each row is drawn in each resample, as floats."""
    return bootstrap_counts(n, resamples, rng=rng).astype(np.float64)


def grouped_sums(weights: np.ndarray, codes: np.ndarray, *, values: np.ndarray, n_codes: int) -> np.ndarray:
    """For each resample, the weighted sum of ``values`` over the rows of each code: (B x n_codes).

    A sparse one-hot product: O(B x n) work.
    """
    onehot = sparse.csr_matrix((values, (codes, np.arange(len(codes)))), shape=(n_codes, len(codes)))
    return np.asarray((onehot @ weights.T).T)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    return out


def indicator_bins(probability: np.ndarray, bins: int = ECE_BINS) -> np.ndarray:
    """The band (0..bins-1) of each indicator value, equal widths over [0, 1]."""
    out: np.ndarray = np.clip(np.digitize(probability, np.linspace(0, 1, bins + 1)[1:-1]), 0, bins - 1)
    return out


@dataclass(frozen=True)
class GroupSums:
    """Weighted sums by group under B weightings (a row of ones gives the point estimate).

    Every audited metric is a ratio of these sums, so they are all a metric needs. Counts of
    students are whole numbers (exact in floating point), and so is ``ranked_pairs`` times two.
    """

    tn: np.ndarray  # (B x groups) did not need support, not selected
    fp: np.ndarray  # did not need support, selected
    fn: np.ndarray  # needed support, not selected
    tp: np.ndarray  # needed support, selected
    bin_size: np.ndarray  # (B x groups x bins) students in each band of indicator values
    bin_predicted: np.ndarray  # sum of indicators in each band
    bin_observed: np.ndarray  # students who needed support in each band
    #: (B x groups) pairs of a student who needed support and one who did not, in which the first
    #: has the higher indicator (a tie counts as half): the Mann-Whitney statistic, AUC's numerator.
    ranked_pairs: np.ndarray


def weighted_sums(cohort: Cohort, weights: np.ndarray, *, bins: int = ECE_BINS) -> GroupSums:
    """``GroupSums`` of a cohort under (B x n) weights, from sparse products (the reference path).

    ``fairness.resampling.resampled_sums`` computes the same sums in one pass for the audit; the
    tests hold the two equal.
    """
    y, s = cohort.label.astype(bool), cohort.selected.astype(bool)
    b, g = weights.shape[0], cohort.n_groups
    cell = cohort.codes * 4 + (y * 2 + s)  # 0 tn, 1 fp, 2 fn, 3 tp within each group
    confusion = grouped_sums(weights, cell, values=np.ones(len(y)), n_codes=g * 4).reshape(b, g, 4)
    banded = cohort.codes * bins + indicator_bins(cohort.probability, bins)

    def by_band(values: np.ndarray) -> np.ndarray:
        return grouped_sums(weights, banded, values=values, n_codes=g * bins).reshape(b, g, bins)

    pairs = np.zeros((b, g))
    for group in range(g):
        rows = np.flatnonzero(cohort.codes == group)
        if rows.size:
            pairs[:, group] = _ranked_pairs(cohort.probability[rows], y[rows], weights=weights[:, rows])
    return GroupSums(
        tn=confusion[..., 0],
        fp=confusion[..., 1],
        fn=confusion[..., 2],
        tp=confusion[..., 3],
        bin_size=by_band(np.ones(len(y))),
        bin_predicted=by_band(cohort.probability.astype(np.float64)),
        bin_observed=by_band(y.astype(np.float64)),
        ranked_pairs=pairs,
    )


def _ranked_pairs(score: np.ndarray, positive: np.ndarray, *, weights: np.ndarray) -> np.ndarray:
    order = np.argsort(score, kind="stable")
    score, positive, weights = score[order], positive[order], weights[:, order]
    starts = np.flatnonzero(np.r_[True, score[1:] != score[:-1]])  # one bucket per distinct score
    pos = np.add.reduceat(weights * positive, starts, axis=1)
    neg = np.add.reduceat(weights * ~positive, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negatives with a strictly lower score
    out: np.ndarray = (pos * (below + 0.5 * neg)).sum(axis=1)
    return out


def _selection_rate(s: GroupSums) -> np.ndarray:
    return _ratio(s.tp + s.fp, s.tn + s.fp + s.fn + s.tp)


def _false_negative_rate(s: GroupSums) -> np.ndarray:
    return _ratio(s.fn, s.tp + s.fn)


def _false_positive_rate(s: GroupSums) -> np.ndarray:
    return _ratio(s.fp, s.fp + s.tn)


def _precision(s: GroupSums) -> np.ndarray:
    return _ratio(s.tp, s.tp + s.fp)


def _auc(s: GroupSums) -> np.ndarray:
    """Weighted ROC AUC by group, ties counted as half (equal to roc_auc_score with unit weights)."""
    return _ratio(s.ranked_pairs, (s.tp + s.fn) * (s.tn + s.fp))


def _ece(s: GroupSums) -> np.ndarray:
    """Expected calibration error: sum over bands of |predicted - observed| mass / size."""
    return _ratio(np.abs(s.bin_predicted - s.bin_observed).sum(axis=2), s.bin_size.sum(axis=2))


def _calibration_gap(s: GroupSums) -> np.ndarray:
    """Mean predicted probability minus observed rate (signed; unbiased in small groups)."""
    return _ratio(s.bin_predicted.sum(axis=2) - s.bin_observed.sum(axis=2), s.bin_size.sum(axis=2))


def confusion_metrics(cohort: Cohort, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Size, selection rate, false negative rate, false positive rate and precision by group."""
    s = weighted_sums(cohort, weights)
    return {
        "size": s.tn + s.fp + s.fn + s.tp,
        "positives": s.tp + s.fn,
        "selection_rate": _selection_rate(s),
        "false_negative_rate": _false_negative_rate(s),
        "false_positive_rate": _false_positive_rate(s),
        "precision": _precision(s),
    }


def auc_by_group(cohort: Cohort, weights: np.ndarray) -> np.ndarray:
    """Weighted ROC AUC by group, ties counted as half (equal to roc_auc_score with unit weights)."""
    return _auc(weighted_sums(cohort, weights))


def reliability_by_group(
    cohort: Cohort, bins: int = ECE_BINS, *, students: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point estimates per group and bin: mean predicted, observed rate, size (for plots).

    The size counts rows, or, given ``students`` (each row's student, 0..n-1), distinct students: a
    medical school's students on five placement blocks a year made a band of 12 registrations a band
    of a few students, and its published size said "students".
    """
    cell = cohort.codes * bins + indicator_bins(cohort.probability, bins)
    ones = np.ones((1, len(cell)))
    n_cells = cohort.n_groups * bins
    size = grouped_sums(ones, cell, values=np.ones(len(cell)), n_codes=n_cells)[0]
    predicted = _ratio(grouped_sums(ones, cell, values=cohort.probability, n_codes=n_cells)[0], size)
    observed = _ratio(
        grouped_sums(ones, cell, values=cohort.label.astype(np.float64), n_codes=n_cells)[0], size
    )
    if students is not None:
        n_students = max(int(students.max(initial=-1)) + 1, 1)
        pairs = np.unique(cell.astype(np.int64) * n_students + students)
        size = np.bincount(pairs // n_students, minlength=n_cells).astype(np.float64)
    shape = (cohort.n_groups, bins)
    return predicted.reshape(shape), observed.reshape(shape), size.reshape(shape)


def roc_points(score: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at every threshold, from (0, 0) to (1, 1)."""
    order = np.argsort(-score, kind="stable")
    score, positive = score[order], positive[order].astype(bool)
    ends = np.r_[np.flatnonzero(score[1:] != score[:-1]), score.size - 1]
    tps, fps = np.cumsum(positive)[ends], np.cumsum(~positive)[ends]
    tpr = np.r_[0.0, tps / max(positive.sum(), 1)]
    fpr = np.r_[0.0, fps / max((~positive).sum(), 1)]
    return fpr, tpr


ABROCA_GRID = 1001


def roc_on_grid(score: np.ndarray, positive: np.ndarray, *, grid: int = ABROCA_GRID) -> np.ndarray:
    """True positive rate at ``grid`` evenly spaced false positive rates from 0 to 1."""
    fpr, tpr = roc_points(score, positive)
    out: np.ndarray = np.interp(np.linspace(0.0, 1.0, grid), fpr, tpr)
    return out


def area_between(curve: np.ndarray, other: np.ndarray) -> float:
    """Absolute area between two ROC curves given on the same evenly spaced grid (``roc_on_grid``)."""
    return float(np.trapezoid(np.abs(curve - other), np.linspace(0.0, 1.0, curve.size)))


def abroca(
    score: np.ndarray,
    positive: np.ndarray,
    *,
    group: np.ndarray,
    reference: np.ndarray,
    grid: int = ABROCA_GRID,
) -> float:
    """Absolute area between the ROC curves of ``group`` and ``reference`` rows."""
    return area_between(
        roc_on_grid(score[group], positive[group], grid=grid),
        roc_on_grid(score[reference], positive[reference], grid=grid),
    )


class Direction(StrEnum):
    """Which values of a metric are better (the policy's "best" reference group follows it)."""

    LOWER_IS_BETTER = "lower_is_better"
    HIGHER_IS_BETTER = "higher_is_better"
    #: A signed error: either sign is a fault (needs under- or overestimated), zero is best.
    NEAREST_ZERO_IS_BETTER = "nearest_zero_is_better"

    def best(self, values: np.ndarray) -> int:
        """Position of the best of ``values``, ignoring NaN (at least one must be a number)."""
        if self is Direction.HIGHER_IS_BETTER:
            return int(np.nanargmax(values))
        return int(np.nanargmin(np.abs(values) if self is Direction.NEAREST_ZERO_IS_BETTER else values))


@dataclass(frozen=True)
class Metric:
    """One audited metric: computed for every group and resample, compared with the reference group."""

    name: str
    #: (B x groups) values from a cohort's weighted sums by group.
    compute: Callable[[GroupSums], np.ndarray]
    direction: Direction
    #: What it means, in plain language, for the committee's report.
    meaning: str
    #: True when it depends on who the outreach list selects, so it is computed at each capacity.
    uses_selection: bool


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "selection_rate",
            _selection_rate,
            Direction.HIGHER_IS_BETTER,
            "Share of the group placed in the outreach list at this capacity.",
            uses_selection=True,
        ),
        Metric(
            "false_negative_rate",
            _false_negative_rate,
            Direction.LOWER_IS_BETTER,
            "Of the group's students who needed support, the share the list missed.",
            uses_selection=True,
        ),
        Metric(
            "false_positive_rate",
            _false_positive_rate,
            Direction.LOWER_IS_BETTER,
            "Of the group's students who did not need support, the share contacted anyway.",
            uses_selection=True,
        ),
        Metric(
            "precision",
            _precision,
            Direction.HIGHER_IS_BETTER,
            "Of the group's students in the list, the share who needed support.",
            uses_selection=True,
        ),
        Metric(
            "auc",
            _auc,
            Direction.HIGHER_IS_BETTER,
            "How well indicators rank students who needed support above those who did not (0.5 is chance).",
            uses_selection=False,
        ),
        Metric(
            "ece",
            _ece,
            Direction.LOWER_IS_BETTER,
            "Average gap between indicators and what happened, over ten bands of indicator values.",
            uses_selection=False,
        ),
        Metric(
            "calibration_gap",
            _calibration_gap,
            Direction.NEAREST_ZERO_IS_BETTER,
            "Mean indicator minus the observed rate: negative means needs were underestimated.",
            uses_selection=False,
        ),
    )
}
