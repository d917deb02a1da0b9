"""Any table the audit publishes, as a Fairlearn ``MetricFrame`` for a data scientist to explore.

The audit computes its figures from weighted sums (``fairness.metrics``) so that a thousand
bootstrap resamples cost one pass; this module hands over the same point estimates the ordinary
way, through Fairlearn, on the same rows, groups and outreach list as the audit forms them:
the week's rows, each student's group under a characteristic or pair (a missing value is the group
"not recorded"), the list at a capacity from ``models.capacity.top_share``. Tests hold every
published point estimate, intersections included, equal to this frame's.

Characteristics come only through ``fairness.protected`` (``audit_groups``), and a frame holds
aggregates only. It is not disclosure-controlled: groups and rates the published report withholds
for too few students (``fairness.disclosure``) are in it, so it stays with whoever runs the audit.
Where a rate is undefined (no student who needed support, say) Fairlearn's own functions give 0
where the audit gives nothing; the audit withholds such rates in any case.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, false_negative_rate, false_positive_rate, selection_rate
from sklearn.metrics import precision_score, roc_auc_score

from waymark.fairness.audit import NOT_RECORDED, group_labels
from waymark.fairness.metrics import ECE_BINS, indicator_bins
from waymark.fairness.protected import load_protected_characteristics
from waymark.models.capacity import top_share


def audit_groups(folder: Path, *, intersections: bool = True) -> pd.DataFrame:
    """Each student's group under every characteristic and, optionally, every pair, as the audit forms them.

    Parameters
    ----------
    folder
        A data folder in the contract, with its protected_characteristics table.
    intersections
        Also the pairwise intersections (``"a x b"`` columns), as the policy's ``intersections``.

    Returns
    -------
    pandas.DataFrame
        Indexed by student_id, one column per characteristic (and pair).

    Raises
    ------
    ValueError
        If the folder has no protected characteristics.
    """
    protected = load_protected_characteristics(folder)
    if protected is None or not protected.attributes:
        raise ValueError(f"{folder} has no protected_characteristics table")
    return group_labels(protected, intersections=intersections)


def _auc(y_true: np.ndarray, y_pred: np.ndarray, *, score: np.ndarray) -> float:
    # Undefined with one class only (the audit leaves it out); roc_auc_score would raise.
    return float(roc_auc_score(y_true, score)) if np.unique(y_true).size == 2 else np.nan


def _ece(y_true: np.ndarray, y_pred: np.ndarray, *, score: np.ndarray) -> float:
    """Sum over ten equal-width bands of |mean indicator - observed rate|, weighted by band size."""
    band = indicator_bins(np.asarray(score), ECE_BINS)
    y, p = np.asarray(y_true, dtype=float), np.asarray(score, dtype=float)
    gaps = [abs(p[band == b].sum() - y[band == b].sum()) for b in np.unique(band)]
    return float(np.sum(gaps) / len(y))


def _calibration_gap(y_true: np.ndarray, y_pred: np.ndarray, *, score: np.ndarray) -> float:
    return float(np.mean(score) - np.mean(y_true))


def _students(y_true: np.ndarray, y_pred: np.ndarray, *, student: np.ndarray) -> float:
    # A student with two registrations in the week is one student (the audit counts them so).
    return float(np.unique(student).size)


def _positives(y_true: np.ndarray, y_pred: np.ndarray, *, student: np.ndarray) -> float:
    return float(np.unique(np.asarray(student)[np.asarray(y_true) == 1]).size)


#: The audit's metrics (``fairness.metrics.METRICS``) and counts, as functions Fairlearn calls.
FAIRLEARN_METRICS: dict[str, Callable[..., float]] = {
    "students": _students,
    "positives": _positives,
    "selection_rate": selection_rate,
    "false_negative_rate": false_negative_rate,
    "false_positive_rate": false_positive_rate,
    "precision": partial(precision_score, zero_division=np.nan),
    "auc": _auc,
    "ece": _ece,
    "calibration_gap": _calibration_gap,
}
_SCORED = ("auc", "ece", "calibration_gap")
_COUNTED = ("students", "positives")


def metric_frame(
    scored: pd.DataFrame, groups: pd.DataFrame, *, week: int, capacity: float, attribute: str
) -> MetricFrame:
    """The audit's table for one week, capacity and characteristic (or pair), as a Fairlearn MetricFrame.

    Parameters
    ----------
    scored
        Test cohort rows, as the audit takes them: student_id, week, label (1 = needed support),
        probability (e.g. ``TrainingOutcome.test_scored``).
    groups
        ``audit_groups`` (or ``fairness.audit.group_labels``), indexed by student_id.
    week
        The audited week.
    capacity
        The outreach capacity: share of the week's rows in the list.
    attribute
        A column of ``groups``: a characteristic, or a pair ``"a x b"``.

    Returns
    -------
    fairlearn.metrics.MetricFrame
        ``y_pred`` is the outreach list (1 = selected); indicator values reach the ranking and
        calibration metrics as a sample parameter. ``.by_group`` holds one row per group;
        ``.overall`` the whole week; ``.difference()``, ``.ratio()`` as Fairlearn defines them.

    Raises
    ------
    ValueError
        If the week has no rows, or ``attribute`` is not a column of ``groups``.
    """
    rows = scored[scored["week"] == week].reset_index(drop=True)
    if rows.empty:
        raise ValueError(f"no scored rows in week {week}")
    if attribute not in groups.columns:
        raise ValueError(f"no groups for {attribute!r}; known: {', '.join(map(str, groups.columns))}")
    probability = rows["probability"].to_numpy(dtype=np.float64)
    students = pd.factorize(rows["student_id"])[0]
    params: dict[str, dict[str, Any]] = {
        **{m: {"score": probability} for m in _SCORED},
        **{m: {"student": students} for m in _COUNTED},
    }
    return MetricFrame(
        metrics=FAIRLEARN_METRICS,
        y_true=rows["label"].to_numpy(dtype=int),
        y_pred=top_share(probability, capacity).astype(int),
        sensitive_features=_joined(groups[attribute], rows["student_id"]),
        sample_params=params,
    )


def _joined(column: pd.Series, student_ids: pd.Series) -> pd.Series:
    """Each row's group; a student without a record is "not recorded", as in the audit."""
    joined = column.reindex(student_ids).astype("object").where(lambda s: s.notna(), NOT_RECORDED)
    return pd.Series(joined.to_numpy(dtype=str), name=column.name)
