"""The audit's bootstrap in one pass: a characteristic's group sums for every resample and capacity.

``fairness.metrics.weighted_sums`` gives the sums every metric rests on (``GroupSums``) from
sparse products, one product per kind of sum and one sort per group for AUC, over a (B x n)
float matrix of weights. The audit needs them for 15 characteristics and pairs, several capacities
and 1,001 weightings (the point estimate and 1,000 resamples) each week, so here they come from
one compiled pass over the week's rows per characteristic:

- the week's resamples are drawn once, of students (``metrics.bootstrap_draws``: the policy's
  seed, week by week), and kept as small whole-number counts (``metrics.counts_by_row``, students
  x 1 + B with a first column of ones for the point estimate), then given to each of the
  student's rows (``fairness.audit.audit_cohorts``), so each row's counts in every resample are
  one contiguous row;
- the rows are visited grouped by the characteristic and, within a group, in order of indicator
  value; each row adds its counts to its group's confusion cell at every capacity, to its band of
  indicator values, and to the running sums that give the Mann-Whitney pairs (AUC's numerator)
  with ties counted as half, exactly as ``weighted_sums`` does.

The sums are the same numbers: counts and pairs are whole (or half) numbers, exact in floating
point, so the rates and AUC are identical; sums of indicator values are added in another order,
so ECE and the calibration gap may differ in the last bits. tests/test_fairness_resampling.py
holds the two paths equal. The kernel runs without the GIL and starts no threads of its own: the
audit runs one characteristic per thread, as many threads as ``models.threads.cores()``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from waymark.fairness.metrics import ECE_BINS, GroupSums, indicator_bins


def resampled_sums(
    label: np.ndarray,
    probability: np.ndarray,
    *,
    selections: Sequence[np.ndarray],
    codes: np.ndarray,
    n_groups: int,
    counts: np.ndarray,
    bins: int = ECE_BINS,
) -> list[GroupSums]:
    """The ``GroupSums`` of a cohort at each selection, under every weighting in ``counts``.

    Parameters
    ----------
    label, probability
        Each row's outcome (nonzero: needed support) and indicator value.
    selections
        One mask of selected rows per capacity.
    codes
        Each row's group, 0..n_groups-1.
    n_groups
        Number of groups.
    counts
        (n x B) whole-number weights: column b holds how often each row is drawn in weighting b
        (a column of ones gives the point estimate). Any unsigned or signed integer dtype.
    bins
        Bands of indicator values for calibration.

    Returns
    -------
    list of GroupSums
        One per selection, each with (B x groups) arrays, equal to ``weighted_sums`` of the cohort
        at that selection under ``counts.T``.

    Raises
    ------
    ValueError
        If the shapes disagree, a code is outside 0..n_groups-1, or ``counts`` is not whole numbers.
    """
    n = len(label)
    if counts.ndim != 2 or counts.shape[0] != n or len(probability) != n or len(codes) != n:
        raise ValueError(f"counts must be (rows x weightings) with {n} rows, and every array {n} long")
    if n and (codes.min() < 0 or codes.max() >= n_groups):
        raise ValueError(f"group codes must lie in 0..{n_groups - 1}")
    if not np.issubdtype(counts.dtype, np.integer):
        raise ValueError(f"counts must be whole numbers, not {counts.dtype}")
    b = counts.shape[1]
    selected = np.asarray([np.asarray(s, dtype=bool) for s in selections], dtype=np.uint8).reshape(-1, n)
    codes = np.asarray(codes, dtype=np.int64)
    probability = np.asarray(probability, dtype=np.float64)
    order = np.lexsort((probability, codes))  # by group, then by indicator value
    confusion = np.zeros((len(selections), n_groups * 4, b))
    banded = np.zeros((3, n_groups * bins, b))  # students, sum of indicators, students who needed support
    pairs = np.zeros((n_groups, b))
    _one_pass(
        np.ascontiguousarray(counts),
        order,
        codes,
        (np.asarray(label) != 0).astype(np.uint8),
        selected,
        indicator_bins(probability, bins).astype(np.int64) + codes * bins,
        probability,
        confusion,
        banded,
        pairs,
    )
    banded_by = banded.reshape(3, n_groups, bins, b).transpose(0, 3, 1, 2)  # (3, B, groups, bins)
    return [
        GroupSums(
            tn=confusion[c, 0::4].T,  # (B x groups)
            fp=confusion[c, 1::4].T,
            fn=confusion[c, 2::4].T,
            tp=confusion[c, 3::4].T,
            bin_size=banded_by[0],
            bin_predicted=banded_by[1],
            bin_observed=banded_by[2],
            ranked_pairs=pairs.T,
        )
        for c in range(len(selections))
    ]


@numba.njit(cache=True, nogil=True)
# numba compiles positional parameters only, so the kernel keeps them.
def _one_pass(counts, order, codes, label, selected, band, probability, confusion, banded, pairs):  # type: ignore[no-untyped-def]  # noqa: PLR0917
    """Visit rows by group and indicator value; add each row's counts (a contiguous row) to its sums.

    ``below`` holds, per weighting, the weight of the group's rows that did not need support with
    a lower indicator; ``pos`` and ``neg`` the current run of equal indicators, closed into the
    group's pairs when the value changes: pos x (below + neg / 2), as ``weighted_sums`` does.
    """
    n, b = counts.shape
    below = np.zeros(b)
    pos = np.zeros(b)
    neg = np.zeros(b)
    for k in range(n):
        r = order[k]
        g = codes[r]
        if k == 0 or codes[order[k - 1]] != g:
            below[:] = 0.0
        w = counts[r]
        y = label[r]
        p = probability[r]
        for c in range(selected.shape[0]):
            cell = confusion[c, g * 4 + y * 2 + selected[c, r]]
            for j in range(b):
                cell[j] += w[j]
        size, predicted, observed = banded[0, band[r]], banded[1, band[r]], banded[2, band[r]]
        for j in range(b):
            size[j] += w[j]
            predicted[j] += w[j] * p
        run = pos if y else neg
        if y:
            for j in range(b):
                observed[j] += w[j]
        for j in range(b):
            run[j] += w[j]
        if k == n - 1 or codes[order[k + 1]] != g or probability[order[k + 1]] != p:
            out = pairs[g]
            for j in range(b):
                out[j] += pos[j] * (below[j] + 0.5 * neg[j])
                below[j] += neg[j]
                pos[j] = 0.0
                neg[j] = 0.0
