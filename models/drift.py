"""Distributions compared between training and scoring runs: bins, counts, population stability index.

Training records, for each week and feature, the edges of the training values' deciles and the
share of training rows in each bin (``reference``); the model bundle carries them, so a scoring run
counts its own rows in the same bins and a monitor compares the two without re-reading training data.
Estimates use fixed bins (tenths of 0..1), so any two runs, of any model, can be compared.

The population stability index of expected shares ``e`` and actual shares ``a`` over the same bins is
``sum((a - e) * ln(a / e))``. An empty bin would make it infinite, so every share is floored at
``EMPTY_SHARE`` first (a common convention; it is stated beside every figure in docs/monitoring.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

#: The floor for a bin's share before the index is computed (an empty bin would make it infinite).
EMPTY_SHARE = 1e-4
#: Fixed bins of an estimate: (0, 0.1], (0.1, 0.2], ... (0.9, 1].
ESTIMATE_EDGES: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(1, 10))
_QUANTILES = np.linspace(0.1, 0.9, 9)


def edges_of(values: np.ndarray) -> tuple[float, ...]:
    """Bin edges at the deciles of ``values`` (missing values ignored; repeated edges merged)."""
    present = values[~np.isnan(values)]
    if present.size == 0:
        return ()
    return tuple(float(v) for v in np.unique(np.quantile(present, _QUANTILES)))


def counts(values: np.ndarray, edges: Sequence[float]) -> list[int]:
    """Rows in each bin ``(-inf, e1], (e1, e2], ..., (ek, inf)``, then the missing values' count."""
    values = np.asarray(values, dtype=np.float64)
    missing = np.isnan(values)
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values[~missing], side="left")
    binned = np.bincount(index, minlength=len(edges) + 1)
    return [int(c) for c in binned] + [int(missing.sum())]


def shares(binned: Sequence[float]) -> np.ndarray:
    """Counts as shares of their total (all zero when the total is zero)."""
    array = np.asarray(binned, dtype=np.float64)
    total = array.sum()
    return array / total if total > 0 else array


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """The population stability index of ``actual`` against ``expected`` (counts or shares, same bins).

    Parameters
    ----------
    expected, actual
        Counts or shares over the same bins; each is normalised to shares first.

    Returns
    -------
    float
        ``sum((a - e) * ln(a / e))`` with every share floored at ``EMPTY_SHARE``; nan when either
        side has no rows or the bins differ in number.
    """
    if len(expected) != len(actual) or sum(expected) <= 0 or sum(actual) <= 0:
        return float("nan")
    e = np.maximum(shares(expected), EMPTY_SHARE)
    a = np.maximum(shares(actual), EMPTY_SHARE)
    return float(np.sum((a - e) * np.log(a / e)))


def feature_reference(rows: pd.DataFrame, feature_names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per week and feature: the training values' decile edges and the share of rows in each bin.

    Parameters
    ----------
    rows
        Training rows: a ``week`` column and the features.
    feature_names
        The features to summarise.

    Returns
    -------
    dict
        ``{week: {feature: {"edges": [...], "shares": [...]}}}`` with weeks as text (JSON keys).
    """
    names = list(feature_names)
    out: dict[str, dict[str, Any]] = {}
    for week, group in rows.astype({"week": "int64"}).groupby("week", sort=True):
        matrix = group[names].to_numpy(dtype=np.float64, na_value=np.nan)
        out[str(week)] = {
            name: {"edges": list(edges), "shares": shares(counts(matrix[:, j], edges)).tolist()}
            for j, (name, edges) in enumerate(zip(names, _column_edges(matrix), strict=True))
        }
    return out


def _column_edges(matrix: np.ndarray) -> list[tuple[float, ...]]:
    """``edges_of`` each column of ``matrix``, the deciles of all complete columns found in one call.

    NumPy computes a quantile along an axis column by column with the same arithmetic as for one
    column, so the edges are those of ``edges_of``; a column with a missing value goes through it.
    """
    complete = ~np.isnan(matrix).any(axis=0) if len(matrix) else np.zeros(matrix.shape[1], dtype=bool)
    deciles = iter(np.quantile(matrix[:, complete], _QUANTILES, axis=0).T) if complete.any() else iter(())
    return [
        tuple(float(v) for v in np.unique(next(deciles))) if whole else edges_of(matrix[:, j])
        for j, whole in enumerate(complete.tolist())
    ]


def estimate_reference(scored: pd.DataFrame) -> dict[str, list[float]]:
    """Per week, the share of (test-cohort) estimates in each of ``ESTIMATE_EDGES``' bins."""
    return {
        str(week): shares(counts(group["probability"].to_numpy(), ESTIMATE_EDGES)).tolist()
        for week, group in scored.astype({"week": "int64"}).groupby("week", sort=True)
    }


def reference_week(available: Iterable[str], week: int) -> str | None:
    """The reference week for a scored ``week``: that week, else the nearest earlier, else the first."""
    weeks = sorted(int(w) for w in available)
    if not weeks:
        return None
    earlier = [w for w in weeks if w <= week]
    return str(earlier[-1] if earlier else weeks[0])


def pooled(parts: Iterable[Mapping[str, Sequence[int]]], name: str) -> list[int]:
    """Counts of ``name`` summed over several summaries that share its bins."""
    total: list[int] = []
    for part in parts:
        values = list(part[name])
        total = values if not total else [x + y for x, y in zip(total, values, strict=True)]
    return total
