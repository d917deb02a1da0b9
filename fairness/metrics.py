"""Group metrics from weighted sums: one code path for point estimates and bootstrap resamples.

A bootstrap resample of n students is a row of multinomial weights (how often each student was
drawn). Every metric here is a ratio of weighted sums, so with a (B x n) weight matrix all B
resamples are computed at once; with a single row of ones the same code gives the point
estimate, which tests compare with Fairlearn's MetricFrame.

Sums by group are a product with a sparse one-hot matrix, which costs O(B x n) however many groups
there are.

``METRICS`` is the one table of the audited metrics: how each is computed, which direction is
better, and what it means in plain language (the report prints the meanings). The policy's gate
checks, the audit and the report all read it; tests/test_registries.py fails when an entry is
incomplete or the audit publishes a metric the table does not hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

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


def bootstrap_weights(n: int, resamples: int, *, rng: np.random.Generator) -> np.ndarray:
    """(resamples x n) counts of how often each row is drawn in each resample."""
    draws = rng.integers(0, n, size=(resamples, n)) + (np.arange(resamples) * n)[:, None]
    return np.bincount(draws.ravel(), minlength=resamples * n).reshape(resamples, n).astype(np.float64)


def grouped_sums(weights: np.ndarray, codes: np.ndarray, *, values: np.ndarray, n_codes: int) -> np.ndarray:
    """For each resample, the weighted sum of ``values`` over the rows of each code: (B x n_codes).

    A sparse one-hot product: O(B x n) work and no copy of the weight matrix.
    """
    onehot = sparse.csr_matrix((values, (codes, np.arange(len(codes)))), shape=(n_codes, len(codes)))
    return np.asarray((onehot @ weights.T).T)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    return out


@dataclass(frozen=True, eq=False)
class Resampled:
    """A cohort under (B x n) resample weights; a row of ones gives the point estimate.

    The confusion counts that four metrics rest on are summed once, on first use.
    """

    cohort: Cohort
    weights: np.ndarray

    @cached_property
    def confusion(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(B x groups) weighted true negatives, false positives, false negatives and true positives."""
        cohort, weights = self.cohort, self.weights
        y, s = cohort.label.astype(bool), cohort.selected.astype(bool)
        cell = cohort.codes * 4 + (y * 2 + s)  # 0 tn, 1 fp, 2 fn, 3 tp within each group
        counts = grouped_sums(weights, cell, values=np.ones(len(y)), n_codes=cohort.n_groups * 4)
        counts = counts.reshape(weights.shape[0], cohort.n_groups, 4)
        tn, fp, fn, tp = (counts[..., k] for k in range(4))
        return tn, fp, fn, tp


def _selection_rate(r: Resampled) -> np.ndarray:
    tn, fp, fn, tp = r.confusion
    return _ratio(tp + fp, tn + fp + fn + tp)


def _false_negative_rate(r: Resampled) -> np.ndarray:
    _, _, fn, tp = r.confusion
    return _ratio(fn, tp + fn)


def _false_positive_rate(r: Resampled) -> np.ndarray:
    tn, fp, _, _ = r.confusion
    return _ratio(fp, fp + tn)


def _precision(r: Resampled) -> np.ndarray:
    _, fp, _, tp = r.confusion
    return _ratio(tp, tp + fp)


def confusion_metrics(cohort: Cohort, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Size, selection rate, false negative rate, false positive rate and precision by group."""
    r = Resampled(cohort, weights)
    tn, fp, fn, tp = r.confusion
    return {
        "size": tn + fp + fn + tp,
        "positives": tp + fn,
        "selection_rate": _selection_rate(r),
        "false_negative_rate": _false_negative_rate(r),
        "false_positive_rate": _false_positive_rate(r),
        "precision": _precision(r),
    }


def ece_by_group(cohort: Cohort, weights: np.ndarray, *, bins: int = ECE_BINS) -> np.ndarray:
    """Expected calibration error by group: sum over bins of |predicted - observed| mass / size."""
    which = np.clip(np.digitize(cohort.probability, np.linspace(0, 1, bins + 1)[1:-1]), 0, bins - 1)
    cell = cohort.codes * bins + which
    n_cells = cohort.n_groups * bins
    predicted = grouped_sums(weights, cell, values=cohort.probability, n_codes=n_cells)
    observed = grouped_sums(weights, cell, values=cohort.label.astype(np.float64), n_codes=n_cells)
    size = grouped_sums(weights, cohort.codes, values=np.ones(len(cohort.codes)), n_codes=cohort.n_groups)
    gap = np.abs(predicted - observed).reshape(weights.shape[0], cohort.n_groups, bins).sum(axis=2)
    return _ratio(gap, size)


def calibration_gap_by_group(cohort: Cohort, weights: np.ndarray) -> np.ndarray:
    """Mean predicted probability minus observed rate, by group (signed; unbiased in small groups)."""
    size = grouped_sums(weights, cohort.codes, values=np.ones(len(cohort.codes)), n_codes=cohort.n_groups)
    predicted = grouped_sums(weights, cohort.codes, values=cohort.probability, n_codes=cohort.n_groups)
    observed = grouped_sums(
        weights, cohort.codes, values=cohort.label.astype(np.float64), n_codes=cohort.n_groups
    )
    return _ratio(predicted - observed, size)


def reliability_by_group(cohort: Cohort, bins: int = ECE_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point estimates per group and bin: mean predicted, observed rate, size (for plots)."""
    which = np.clip(np.digitize(cohort.probability, np.linspace(0, 1, bins + 1)[1:-1]), 0, bins - 1)
    cell = cohort.codes * bins + which
    ones = np.ones((1, len(cell)))
    n_cells = cohort.n_groups * bins
    size = grouped_sums(ones, cell, values=np.ones(len(cell)), n_codes=n_cells)[0]
    predicted = _ratio(grouped_sums(ones, cell, values=cohort.probability, n_codes=n_cells)[0], size)
    observed = _ratio(
        grouped_sums(ones, cell, values=cohort.label.astype(np.float64), n_codes=n_cells)[0], size
    )
    shape = (cohort.n_groups, bins)
    return predicted.reshape(shape), observed.reshape(shape), size.reshape(shape)


def auc_by_group(cohort: Cohort, weights: np.ndarray) -> np.ndarray:
    """Weighted ROC AUC by group, ties counted as half (equal to roc_auc_score with unit weights)."""
    out = np.full((weights.shape[0], cohort.n_groups), np.nan)
    for g in range(cohort.n_groups):
        rows = np.flatnonzero(cohort.codes == g)
        if rows.size:
            out[:, g] = _weighted_auc(
                cohort.probability[rows], cohort.label[rows].astype(bool), weights=weights[:, rows]
            )
    return out


def _weighted_auc(score: np.ndarray, positive: np.ndarray, *, weights: np.ndarray) -> np.ndarray:
    order = np.argsort(score, kind="stable")
    score, positive, weights = score[order], positive[order], weights[:, order]
    starts = np.flatnonzero(np.r_[True, score[1:] != score[:-1]])  # one bucket per distinct score
    pos = np.add.reduceat(weights * positive, starts, axis=1)
    neg = np.add.reduceat(weights * ~positive, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negatives with a strictly lower score
    total_pos, total_neg = pos.sum(axis=1), neg.sum(axis=1)
    return _ratio((pos * (below + 0.5 * neg)).sum(axis=1), total_pos * total_neg)


def _auc(r: Resampled) -> np.ndarray:
    return auc_by_group(r.cohort, r.weights)


def _ece(r: Resampled) -> np.ndarray:
    return ece_by_group(r.cohort, r.weights)


def _calibration_gap(r: Resampled) -> np.ndarray:
    return calibration_gap_by_group(r.cohort, r.weights)


def roc_points(score: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at every threshold, from (0, 0) to (1, 1)."""
    order = np.argsort(-score, kind="stable")
    score, positive = score[order], positive[order].astype(bool)
    ends = np.r_[np.flatnonzero(score[1:] != score[:-1]), score.size - 1]
    tps, fps = np.cumsum(positive)[ends], np.cumsum(~positive)[ends]
    tpr = np.r_[0.0, tps / max(positive.sum(), 1)]
    fpr = np.r_[0.0, fps / max((~positive).sum(), 1)]
    return fpr, tpr


def abroca(
    score: np.ndarray, positive: np.ndarray, *, group: np.ndarray, reference: np.ndarray, grid: int = 1001
) -> float:
    """Absolute area between the ROC curves of ``group`` and ``reference`` rows."""
    fpr_grid = np.linspace(0.0, 1.0, grid)
    curves = []
    for rows in (group, reference):
        fpr, tpr = roc_points(score[rows], positive[rows])
        curves.append(np.interp(fpr_grid, fpr, tpr))
    return float(np.trapezoid(np.abs(curves[0] - curves[1]), fpr_grid))


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
    #: (B x groups) values for a resampled cohort.
    compute: Callable[[Resampled], np.ndarray]
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
