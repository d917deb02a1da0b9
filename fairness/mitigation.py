"""What per-group thresholds would change (report only: shown, never applied).

Fairlearn's ``ThresholdOptimizer``, given the audited model as a fitted classifier (``prefit``),
finds per-group thresholds under which every group has the same false negative rate (the share of
students who needed support and were missed), choosing the common rate that maximises balanced
accuracy: the mean of the share found among those who needed support and the share left alone
among those who did not, so that both errors count as shares of their own students, whatever
the prevalence. Its thresholds may be randomised between two cut-offs (a student between them
would be selected with some chance); the report shows both cut-offs and that chance.

Fairlearn chooses the operating point, not the outreach capacity, so its list is usually of another
size than the capacity's: the report shows, for each group, selection and miss rates with the
capacity's list (before) and under Fairlearn's thresholds (after), and how the list as a whole
would change (its share of the week, recall and precision). Applying such thresholds is a policy
decision for the committee, which may weigh it against treating students differently by group;
nothing here is applied, and scoring never reads it (``MitigationRow`` holds numbers only).

A group whose students all needed support (or none did) cannot be given a threshold (Fairlearn
refuses it): its students keep their place in the capacity's list.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.postprocessing import ThresholdOptimizer
from sklearn.base import BaseEstimator, ClassifierMixin

from waymark.fairness.disclosure import (
    DENOMINATORS,
    NONE_IS_SAFE,
    SELECTION_COUNTS,
    allowed,
    fewest,
    published_share,
    rounded_count,
    withheld_groups,
)
from waymark.models.capacity import top_share

CONSTRAINT = "false_negative_rate_parity"
OBJECTIVE = "balanced_accuracy_score"

#: Figures that are not rates of their own, withheld by the rule of the rate they would give back.
_RULES = {
    # The cut-offs are chosen among the group's students who needed support (their quantile).
    "threshold_low": "fnr_after",
    "threshold_high": "fnr_after",
    "chance_between": "fnr_after",
    "list_share_before": "list_share_after",
}

#: A group's own figures (the rest are the whole week's, the same on every row).
_FIGURES = ("selection_before", "selection_after", "fnr_before", "fnr_after", *_RULES)


#: A row's figures that are shares of the group's students (the rest are cut-offs, a chance, or shares
#: of the whole week's population).
GROUP_SHARES = frozenset(
    {"selection_before", "selection_after", "fnr_before", "fnr_after", "recall_after", "precision_after"}
)


@dataclass(frozen=True)
class MitigationRow:
    """One group's rates with the capacity's list and under Fairlearn's equal-miss-rate thresholds.

    A figure whose denominator is too small (``fairness.disclosure``) is NaN and named in ``withheld``.
    The group's rule: selected above ``threshold_high``; between ``threshold_low`` and
    ``threshold_high``, selected with chance ``chance_between``; NaN when the group has none.
    """

    attribute: str
    group: str
    students: int
    selection_before: float
    selection_after: float
    fnr_before: float
    fnr_after: float
    list_share_after: float  # of the whole week's population
    recall_after: float
    precision_after: float
    withheld: tuple[str, ...] = ()
    threshold_low: float = math.nan
    threshold_high: float = math.nan
    chance_between: float = math.nan
    list_share_before: float = math.nan  # the capacity's list, of the whole week's population
    # the group's students who needed support: with ``students``, the counts its shares' step rests on
    needed_support: int = 0
    # False for a group withheld beside a small one (complementary suppression, as the audit's own table
    # does): its figures and the week's would give the small group's back by subtraction
    named: bool = True

    def published(self, step: int) -> dict[str, Any]:
        """Rounded for the report, without the withheld figures or undefined ones (no cut-offs).

        A share of the group's students is given to the step its fewest counts allow
        (``fairness.disclosure.published_share``); the cut-offs, the chance between them and the
        list's share of the whole week keep four decimals.
        """
        rounded = rounded_count(self.students, step)
        least = fewest(self.students, self.needed_support, step=step)
        values = {
            k: published_share(v, students=least, step=step) if k in GROUP_SHARES else round(float(v), 4)
            for k, v in self.__dict__.items()
            if isinstance(v, float) and k not in self.withheld and not math.isnan(v)
        }
        return {"attribute": self.attribute, "group": self.group, "students": rounded, **values}


@dataclass(frozen=True)
class GroupRule:
    """A group's rule: above ``high`` selected; between ``low`` and ``high``, selected with ``chance``."""

    low: float
    high: float
    chance: float

    def selection(self, p: np.ndarray) -> np.ndarray:
        """The chance of being selected of each indicator value ``p``."""
        out: np.ndarray = np.where(p > self.high, 1.0, np.where(p > self.low, self.chance, 0.0))
        return out


class _Indicator(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """The audited model's indicators as a fitted classifier: column 0 of X is the indicator itself.

    ThresholdOptimizer only needs scores from a fitted estimator (``prefit=True``); the indicators
    are already computed, so it returns them.
    """

    def fit(self, x: np.ndarray, y: np.ndarray) -> _Indicator:
        """Nothing to learn."""
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(1 - indicator, indicator)."""
        p = np.asarray(x, dtype=np.float64)[:, 0]
        return np.column_stack([1 - p, p])


def threshold_optimizer(p: np.ndarray, y: np.ndarray, *, groups: np.ndarray) -> ThresholdOptimizer:
    """Fairlearn's ThresholdOptimizer fitted (prefit) on indicators ``p``, outcomes ``y`` and ``groups``.

    Only rows of groups with both outcomes should be passed: Fairlearn refuses any other group.
    """
    optimizer = ThresholdOptimizer(
        estimator=_Indicator(),
        constraints=CONSTRAINT,
        objective=OBJECTIVE,
        prefit=True,
        predict_method="predict_proba",
    )
    return optimizer.fit(p[:, None], y.astype(int), sensitive_features=groups)


def group_rules(optimizer: ThresholdOptimizer) -> dict[str, GroupRule]:
    """Each group's rule, read from the fitted optimizer's interpolation (cut-offs clipped to [0, 1])."""
    out = {}
    for group, rule in optimizer.interpolated_thresholder_.interpolation_dict.items():
        used = [(op, float(p)) for p, op in ((rule.p0, rule.operation0), (rule.p1, rule.operation1)) if p > 0]
        if any(op.operator != ">" for op, _ in used):
            raise ValueError(f"unexpected flipped threshold for group {group!r}")
        used.sort(key=lambda pair: float(pair[0].threshold))
        low, high = (float(np.clip(op.threshold, 0.0, 1.0)) for op in (used[0][0], used[-1][0]))
        out[str(group)] = GroupRule(low, high, used[0][1] if len(used) == 2 and low < high else 1.0)
    return out


def fairlearn_selection(
    p: np.ndarray, y: np.ndarray, *, groups: np.ndarray, before: np.ndarray
) -> tuple[np.ndarray, dict[str, GroupRule]]:
    """Each row's chance of selection under ThresholdOptimizer's rules, and the rules by group.

    Rows of a group with one outcome only keep ``before`` (Fairlearn gives them no threshold).
    """
    both = pd.Series(y.astype(bool)).groupby(groups).agg(["any", "all"])
    fitted = both.index[both["any"] & ~both["all"]].astype(str)
    rows = np.isin(groups, fitted)
    after = before.astype(np.float64)
    if not rows.any():
        return after, {}
    rules = group_rules(threshold_optimizer(p[rows], y[rows], groups=groups[rows]))
    for group, rule in rules.items():
        mine = groups == group
        after[mine] = rule.selection(p[mine])
    return after, rules


def equalised_fnr(
    rows: pd.DataFrame, groups: pd.Series, *, capacity: float, attribute: str, min_size: int
) -> list[MitigationRow]:
    """Rates with the capacity's list, and under ThresholdOptimizer's equal-miss-rate thresholds.

    Parameters
    ----------
    rows
        One week's scored rows: student_id, label, probability.
    groups
        The group of each row.
    capacity
        The outreach capacity (share of the week's rows): the list compared with.
    attribute
        The characteristic's name, copied into each row.
    min_size
        The policy's minimum group size: rates resting on fewer students are withheld.

    Returns
    -------
    list of MitigationRow
        One per group, withheld figures set to NaN. Rates after are expected values over
        Fairlearn's randomised selection between a group's two cut-offs.
    """
    p, y = rows["probability"].to_numpy(dtype=np.float64), rows["label"].to_numpy().astype(bool)
    labels = groups.to_numpy().astype(str)
    before = top_share(p, capacity)
    after, rules = fairlearn_selection(p, y, groups=labels, before=before)
    ids = rows["student_id"].to_numpy()
    week = {
        "week_students": _distinct(ids, np.ones_like(y)),
        "week_positives": _distinct(ids, y),
        "week_negatives": _distinct(ids, ~y),
        "week_selected_after": _distinct(ids, after > 0),
    }
    recall = float(after[y].mean()) if y.any() else np.nan
    precision = float(after[y].sum() / after.sum()) if after.sum() > 0 else np.nan
    # Complementary suppression, as the audit's own table does: a figure of a group is withheld too
    # where, beside a group whose figure is withheld, the week's total would give that one back.
    names = [str(g) for g in np.unique(labels)]
    runs = {
        kind: {g: _distinct(ids, (labels == g) & m) for g in names}
        for kind, m in (
            ("students", np.ones_like(y)),
            ("positives", y),
            ("negatives", ~y),
            ("listed", before),
            ("unlisted", ~before),
            ("listed_after", after > 0),
            ("unlisted_after", after < 1),
        )
    }

    @functools.cache
    def hidden(kinds: tuple[str, ...]) -> frozenset[str]:
        present = [k for k in kinds if k in runs]
        grouped = [runs[k] for k in present]
        # none on the list is safe only beside a published selection rate (fairness.disclosure)
        safe = [selecting() if k in NONE_IS_SAFE else frozenset() for k in present]
        if not grouped:
            return frozenset()
        return frozenset(withheld_groups(grouped, [names], min_size=min_size, none_is_safe=safe))

    def selecting() -> frozenset[str]:
        return frozenset(str(g) for g in names) - hidden(("students",)) - hidden(SELECTION_COUNTS)

    out = []
    for g in np.unique(labels):
        rows_g = labels == g
        pos = rows_g & y
        rule = rules.get(str(g))
        row = MitigationRow(
            attribute=attribute,
            group=str(g),
            students=_distinct(ids, rows_g),
            selection_before=float(before[rows_g].mean()),
            selection_after=float(after[rows_g].mean()),
            fnr_before=float(1 - before[pos].mean()) if pos.any() else np.nan,
            fnr_after=float(1 - after[pos].mean()) if pos.any() else np.nan,
            list_share_after=float(after.mean()),
            recall_after=recall,
            precision_after=precision,
            threshold_low=rule.low if rule else math.nan,
            threshold_high=rule.high if rule else math.nan,
            chance_between=rule.chance if rule else math.nan,
            list_share_before=float(before.mean()),
            # distinct students, as the audit's own counts (its shares' step is then the audit's)
            needed_support=_distinct(ids, pos),
            named=str(g) not in hidden(("students",)),
        )
        counts = {
            **week,
            "students": row.students,
            "positives": _distinct(ids, pos),
            "negatives": _distinct(ids, rows_g & ~y),
            "listed": _distinct(ids, rows_g & before),
            "unlisted": _distinct(ids, rows_g & ~before),
            "listed_after": _distinct(ids, rows_g & (after > 0)),
            "unlisted_after": _distinct(ids, rows_g & (after < 1)),
        }
        beside = {k for k in _FIGURES if str(g) in hidden(DENOMINATORS[_RULES.get(k, k)])}
        out.append(_withhold(row, counts, min_size=min_size, beside=beside))
    return out


def _distinct(ids: np.ndarray, mask: np.ndarray) -> int:
    return int(pd.unique(ids[mask.astype(bool)]).size)


def _withhold(
    row: MitigationRow, counts: dict[str, int], *, min_size: int, beside: set[str]
) -> MitigationRow:
    """The row with every figure that rests on too few students set to NaN (fairness.disclosure).

    ``beside``: the figures withheld beside another group's (complementary suppression).
    """
    figures = [k for k, v in row.__dict__.items() if isinstance(v, float)]
    held = {k for k in figures if k in beside or not allowed(_RULES.get(k, k), counts, min_size=min_size)}
    if "fnr_before" in held:
        # The miss rate after stands beside the one before: where that is withheld, so is this (the
        # audit's table had withheld a group's miss rate beside a small one, and this table, whose
        # wider counts hid another small group, showed the rate after; found by the property test).
        held |= {"fnr_after", *(k for k, rate in _RULES.items() if rate == "fnr_after")}
    withheld = tuple(k for k in figures if k in held)
    fields: dict[str, Any] = {**row.__dict__, **dict.fromkeys(withheld, math.nan), "withheld": withheld}
    return MitigationRow(**fields)
