"""Where a calibration gap comes from: inside modules, or the mix of modules each group studies.

A group's calibration gap against the reference group (mean indicator minus observed rate, the
gate's ``calibration_gap`` difference) can have two sources. If the model's estimates are too high
in some modules and too low in others, a group concentrated in the first looks overestimated though
within every module it is treated like everyone else: the module mix carries the gap, and a
calibration per module would remove it without any characteristic. If instead the group's estimates
are too low within each module, the gap is the group's own, and only the characteristic itself, or a
proxy of it, could remove it when scoring, which Waymark does not do.

So beside each published difference the audit states the difference **within modules**: in every
module where both the group and the reference group have at least the policy's minimum number of
students, the group's gap minus the reference group's, averaged with weights equal to the group's
students in each module. It is a point estimate, to be read beside the gate's interval; only the
average and how many modules it rests on are published (resting on one module, the average is that
module's figure, which still rests on enough students of each group), and it is withheld when no
module qualifies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from waymark.fairness.audit import NO_REFERENCE, NOT_RECORDED, AttributeAudit

METRIC = "calibration_gap"


@dataclass(frozen=True)
class WithinModules:
    """One group's calibration gap difference against the reference, overall and within modules."""

    attribute: str
    week: int
    group: str
    reference: str
    overall: float  # the audit's published point estimate
    within: float  # NaN when no module has enough students of both groups
    modules: int  # modules the average rests on

    def published(self) -> dict[str, object]:
        """As the report holds it (the within-module figure left out when withheld)."""
        out: dict[str, object] = {
            "characteristic": self.attribute,
            "week": self.week,
            "group": self.group,
            "reference": self.reference,
            "overall": None if math.isnan(self.overall) else round(self.overall, 4),
            "modules": self.modules,
        }
        if not math.isnan(self.within):
            out["within_modules"] = round(self.within, 4)
        return out


def within_modules(
    scored: pd.DataFrame, labels: pd.DataFrame, *, audits: list[AttributeAudit], min_size: int
) -> list[WithinModules]:
    """The calibration gap difference of every published group, within modules, for each week.

    Parameters
    ----------
    scored
        The test cohort's rows: student_id, module_id, week, label, probability.
    labels
        ``fairness.audit.group_labels``, indexed by student_id.
    audits
        The audit's results: each single characteristic's published differences and reference.
    min_size
        The policy's minimum group size, applied to each group in each module.

    Returns
    -------
    list of WithinModules
        One per week, characteristic and group with a published calibration gap difference (pairs
        of characteristics are left out: split by module too, few of their cells are large enough).
    """
    out = []
    seen: set[tuple[int, str]] = set()
    for audit in audits:
        reference = audit.reference.get(METRIC, NO_REFERENCE)
        if audit.is_intersection or reference == NO_REFERENCE or (audit.week, audit.attribute) in seen:
            continue  # the gap does not depend on the capacity: once per week and characteristic
        seen.add((audit.week, audit.attribute))
        rows = scored[scored["week"] == audit.week]
        # A student with no row in the table is "not recorded", as in the audit.
        groups = (
            labels[audit.attribute].reindex(rows["student_id"].to_numpy()).fillna(NOT_RECORDED).to_numpy()
        )
        cells = _cells(rows.assign(group=groups))
        for result in audit.groups:
            difference = result.differences.get(METRIC)
            if result.group == reference or difference is None:
                continue
            within, modules = _within(cells, group=result.group, reference=reference, min_size=min_size)
            out.append(
                WithinModules(
                    audit.attribute, audit.week, result.group, reference, difference[0], within, modules
                )
            )
    return out


def _cells(rows: pd.DataFrame) -> pd.DataFrame:
    """Students and calibration gap of each group in each module."""
    rows = rows.assign(gap=rows["probability"] - rows["label"])
    return rows.groupby(["module_id", "group"], observed=True).agg(
        students=("student_id", "nunique"), gap=("gap", "mean")
    )


def _within(cells: pd.DataFrame, *, group: str, reference: str, min_size: int) -> tuple[float, int]:
    table = cells.reset_index()
    mine = table[(table["group"] == group) & (table["students"] >= min_size)].set_index("module_id")
    theirs = table[(table["group"] == reference) & (table["students"] >= min_size)].set_index("module_id")
    both = mine.index.intersection(theirs.index)
    if both.empty:
        return math.nan, 0
    weights = mine.loc[both, "students"].to_numpy(dtype=np.float64)
    differences = (mine.loc[both, "gap"] - theirs.loc[both, "gap"]).to_numpy(dtype=np.float64)
    return float(np.average(differences, weights=weights)), len(both)
