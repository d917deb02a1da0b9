"""A training-time mitigation the ethics committee can switch on: Fairlearn's ``GridSearch`` reduction.

Fairlearn's reductions turn a fairness constraint into a sequence of ordinary fits: each point of a
grid of Lagrange multipliers gives every training row a label and a weight (a row's label flips
where its weight turns negative), the family is fitted on them, and the point with the best balance
of error and constraint violation on the training rows is kept (``constraint_weight``; judged on
the validation presentations instead, the choice was within noise on the synthetic cohorts:
docs/fairness.md). Waymark keeps the labels and weights of that point and hands them to training
(``training.reweighting``), which fits, calibrates and evaluates the family as usual: the model is
one model of the same family, scored from the same features, explained exactly, and calibrated on
the rows' own labels.

The characteristic is read here, at training time only, from the fairness package's one reader
(``fairness.protected``); training sees a label and a weight per row, and scoring never sees
anything of it. Fairlearn's ``ExponentiatedGradient`` is not offered: its model is a random choice
among several fitted models, made again at each prediction, which gives no single estimate per
student to calibrate, explain or show.

The comparison a run reports (``compare``) is measured on its later presentations, week by week:
AUC and recall at the policy's first outreach capacity with and without the mitigation (the cost),
and the constraint's largest difference between groups at that capacity (the gain). Only groups with
at least the policy's minimum number of students, of students who needed support and of students
who did not are compared, and only the difference is published, never a group's own figures: on
the step the audit gives a share resting on the fewest counts of those groups
(``fairness.disclosure``), in the run's metrics and files as in the report. The full audit of the
mitigated candidate is the committee's evidence; this is the run's summary.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
from fairlearn.reductions import (
    DemographicParity,
    EqualizedOdds,
    ErrorRateParity,
    FalsePositiveRateParity,
    GridSearch,
    TruePositiveRateParity,
)
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import roc_auc_score, zero_one_loss
from sklearn.pipeline import Pipeline

from waymark.fairness.audit import NOT_RECORDED, group_labels
from waymark.fairness.disclosure import allowed, fewest, published_share
from waymark.fairness.policy import MitigationPolicy, Policy
from waymark.fairness.protected import load_protected_characteristics
from waymark.models.capacity import top_share
from waymark.models.data import ProtectedFrame


class MitigationError(ValueError):
    """The mitigation cannot be applied as the policy asks; the message says why."""


#: Each constraint the policy may name: Fairlearn's moment, and the rates whose group differences it
#: bounds (compared at the outreach capacity by ``compare``).
CONSTRAINTS: dict[str, tuple[Callable[[], Any], tuple[str, ...]]] = {
    # The same share found among the students of every group who needed support (equal miss rates).
    "true_positive_rate_parity": (TruePositiveRateParity, ("true_positive_rate",)),
    "false_positive_rate_parity": (FalsePositiveRateParity, ("false_positive_rate",)),
    "equalized_odds": (EqualizedOdds, ("true_positive_rate", "false_positive_rate")),
    "error_rate_parity": (ErrorRateParity, ("error_rate",)),
    "demographic_parity": (DemographicParity, ("selection_rate",)),
}

_RATES: dict[str, Callable[..., float]] = {
    "true_positive_rate": true_positive_rate,
    "false_positive_rate": false_positive_rate,
    "error_rate": zero_one_loss,
    "selection_rate": selection_rate,
}


class _Recorded(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """The family's pipeline as GridSearch fits it, keeping the labels and weights of its fit.

    Fairlearn's weights sum to about one; they are rescaled to mean 1 so that the family's own
    settings (LightGBM's minimum leaf weight, the logistic regression's penalty) mean what they
    mean in an ordinary fit.
    """

    def __init__(self, make: Callable[[], Pipeline]) -> None:
        self.make = make

    def fit(self, x: np.ndarray, y: Any, *, sample_weight: Any) -> _Recorded:
        weights = np.asarray(sample_weight, dtype=np.float64)
        self.labels_ = np.asarray(y, dtype=np.int64)
        self.weights_ = weights * (len(weights) / weights.sum())
        self.pipeline_ = self.make().fit(x, self.labels_, model__sample_weight=self.weights_)
        self.classes_ = self.pipeline_.classes_
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.pipeline_.predict(x))


@dataclass(frozen=True, eq=False)
class GridSearchMitigation:
    """The policy's ``[mitigation]``, bound to the protected characteristics of the training data."""

    policy: MitigationPolicy
    protected: ProtectedFrame
    min_group_size: int
    capacity: float
    count_rounding: int = 5

    def describe(self) -> str:
        """One sentence for the console, the run and the model card."""
        p = self.policy
        return (
            f"Fairlearn GridSearch under {p.constraint.replace('_', ' ')} by {' x '.join(p.attributes)} "
            f"({p.grid_size} grid points up to {p.grid_limit}, constraint weight {p.constraint_weight}); "
            "the characteristic "
            "weighed the training rows only and is never read when scoring"
        )

    def params(self) -> dict[str, str | int | float]:
        """The settings, logged with the run."""
        p = self.policy
        return {
            "method": p.method,
            "constraint": p.constraint,
            "attributes": " ".join(p.attributes),
            "grid_size": p.grid_size,
            "grid_limit": p.grid_limit,
            "constraint_weight": p.constraint_weight,
        }

    def groups(self, students: pd.Series) -> pd.Series:
        """Each student's group under the policy's characteristics (joined when there are several)."""
        labels = group_labels(self.protected, intersections=False)
        table = labels[list(self.policy.attributes)].reindex(students.to_numpy()).fillna(NOT_RECORDED)
        parts = [name + "=" + table[name].astype(str) for name in self.policy.attributes]
        joined = parts[0]
        for part in parts[1:]:
            joined = joined + " & " + part
        return pd.Series(joined.to_numpy(dtype=object), index=students.index, name="group")

    def reweigh(
        self, rows: pd.DataFrame, *, x: np.ndarray, estimator: Callable[[], Pipeline]
    ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """GridSearch over the family (``estimator()``): the chosen point's labels and weights.

        Parameters
        ----------
        rows
            The training rows: keys (``student_id`` among them) and ``label``, in the order of ``x``.
        x
            Their features.
        estimator
            Makes an unfitted pipeline of the chosen family.

        Returns
        -------
        tuple
            One label per row, one weight per row (mean 1), and what was chosen: the grid point, the
            size of its multipliers and whether one is at the grid's limit. (Not the share of labels
            flipped nor the weights: a reduction flips or weighs a whole group's positives or
            negatives at once, so either would give back the size of a group, however small.)

        Raises
        ------
        MitigationError
            If the training rows have one group only, or the best point of the grid predicts one
            class for everyone.
        """
        groups = self.groups(rows["student_id"])
        if groups.nunique() < 2:
            raise MitigationError(
                f"every training row is in one group of {' x '.join(self.policy.attributes)}: "
                "there is nothing to balance; name another characteristic in mitigation.attributes"
            )
        y = rows["label"].to_numpy(dtype=np.int64)
        moment, _ = CONSTRAINTS[self.policy.constraint]
        search = GridSearch(
            _Recorded(estimator),
            constraints=moment(),
            constraint_weight=self.policy.constraint_weight,
            grid_size=self.policy.grid_size,
            grid_limit=self.policy.grid_limit,
        )
        with warnings.catch_warnings():
            # Fairlearn 0.15 fills a float Series with True by .at, which pandas 3 deprecates (two
            # warnings from its own lines); the values it builds are unchanged.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"fairlearn\.")
            search.fit(x, y, sensitive_features=groups.to_numpy())
        best = search.predictors_[search.best_idx_]
        if not isinstance(best, _Recorded):
            raise MitigationError(
                "the grid's best point labels every training row alike (Fairlearn fell back to a constant "
                "model): lower mitigation.grid_limit or mitigation.constraint_weight in the policy"
            )
        multipliers = search.lambda_vecs_.iloc[:, search.best_idx_].to_numpy()
        chosen = {
            "grid_points": float(len(search.predictors_)),
            "grid_point": float(search.best_idx_),
            "multipliers_l1": float(np.abs(multipliers).sum()),
            # 1 when the chosen point is on the grid's edge: a larger grid_limit may narrow more
            "at_grid_limit": float(np.isclose(np.abs(multipliers).max(), self.policy.grid_limit)),
        }
        return best.labels_, best.weights_, chosen

    def compare(self, rows: pd.DataFrame, *, before: np.ndarray, after: np.ndarray) -> pd.DataFrame:
        """Per week of the later ``rows``: the cost (AUC, recall at capacity) and the gain (disparity).

        Parameters
        ----------
        rows
            The test presentations' rows: keys (``student_id``, ``week``) and ``label``.
        before, after
            Estimates without and with the mitigation, in the order of ``rows``. Only their order
            is used (AUC and the capacity's list), so ``before`` need not be calibrated.

        Returns
        -------
        pandas.DataFrame
            One row per week: ``auc_before``, ``auc_after``, ``recall_before``, ``recall_after``,
            ``disparity_before``, ``disparity_after`` (the largest difference of the constraint's
            rates between compared groups; NaN with fewer than two) and ``groups_compared``.
        """
        groups = self.groups(rows["student_id"])
        out = []
        weeks = rows["week"].to_numpy()
        for idx in rows.groupby("week").indices.values():
            y = rows["label"].to_numpy()[idx].astype(int)
            g = groups.to_numpy()[idx]
            record: dict[str, float] = {"week": float(weeks[idx[0]])}
            eligible, least = self._eligible(y, groups=g, students=rows["student_id"].to_numpy()[idx])
            for name, scores in (("before", before[idx]), ("after", after[idx])):
                chosen = top_share(np.asarray(scores, dtype=np.float64), self.capacity).astype(int)
                both = 0 < y.sum() < len(y)
                record[f"auc_{name}"] = float(roc_auc_score(y, scores)) if both else np.nan
                record[f"recall_{name}"] = float(chosen[y == 1].mean()) if y.any() else np.nan
                # a difference of two groups' shares: on the step of the fewest counts of the groups
                # compared, as the audit publishes it (fairness.disclosure), in the run as in the report
                disparity = self._disparity(y, chosen=chosen, groups=g, eligible=eligible)
                shown = published_share(disparity, students=least, step=self.count_rounding)
                record[f"disparity_{name}"] = np.nan if shown is None else shown
            record["groups_compared"] = float(len(eligible))
            out.append(record)
        table = pd.DataFrame(out)
        return table.astype({"week": int, "groups_compared": int}) if len(table) else table

    def _eligible(self, y: np.ndarray, *, groups: np.ndarray, students: np.ndarray) -> tuple[list[str], int]:
        """The groups to compare, and the fewest of their counts as the audit publishes counts.

        Groups with enough distinct students, students who needed support and students who did not. A
        student with two registrations in the week counts once, as in the audit.
        """
        frame = pd.DataFrame({"group": groups, "student": students, "label": y})
        counts = {
            "students": frame.groupby("group")["student"].nunique(),
            "positives": frame[frame["label"] == 1].groupby("group")["student"].nunique(),
            "negatives": frame[frame["label"] == 0].groupby("group")["student"].nunique(),
        }
        names = counts["students"].index
        aligned = {k: v.reindex(names, fill_value=0).to_numpy() for k, v in counts.items()}
        ok = allowed("selection_rate", aligned, min_size=self.min_group_size)
        least = [
            fewest(int(aligned["students"][i]), int(aligned["positives"][i]), step=self.count_rounding)
            for i in np.flatnonzero(ok)
        ]
        return [str(n) for n, keep in zip(names, ok, strict=True) if keep], min(least, default=0)

    def _disparity(
        self, y: np.ndarray, *, chosen: np.ndarray, groups: np.ndarray, eligible: list[str]
    ) -> float:
        if len(eligible) < 2:
            return float("nan")
        keep = np.isin(groups, eligible)
        _, rates = CONSTRAINTS[self.policy.constraint]
        frame = MetricFrame(
            metrics={r: _RATES[r] for r in rates},
            y_true=y[keep],
            y_pred=chosen[keep],
            sensitive_features=groups[keep],
        )
        return float(frame.difference(method="between_groups").max())


def mitigation_for(policy: Policy, folder: Path) -> GridSearchMitigation | None:
    """The policy's training-time mitigation, bound to the characteristics in ``folder``; None when off.

    The characteristics are read only when the policy switches a mitigation on.

    Raises
    ------
    MitigationError
        If the policy switches one on and the data has no protected characteristics.
    ContractViolation
        If the folder breaks the contract.
    """
    if policy.mitigation.method == "none":
        return None
    protected = load_protected_characteristics(folder)
    if protected is None:
        raise MitigationError(
            "the fairness policy switches on a training-time mitigation, but the data folder has no "
            "protected_characteristics table"
        )
    missing = [a for a in policy.mitigation.attributes if a not in protected.attributes]
    if missing:
        raise MitigationError(
            f"the mitigation's characteristic(s) {', '.join(missing)} are not in the data's "
            f"protected_characteristics table (it has {', '.join(protected.attributes) or 'none'}); "
            "change mitigation.attributes in the policy"
        )
    return GridSearchMitigation(
        policy.mitigation,
        protected,
        min_group_size=policy.min_group_size,
        capacity=policy.capacities[0],
        count_rounding=policy.count_rounding,
    )
