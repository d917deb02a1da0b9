"""What per-group thresholds would change (report only: never applied silently).

At one week and capacity, each group gets the threshold that would give it the overall false
negative rate. The report shows, for each group, selection and miss rates before and after, and
how the outreach list as a whole would change (its size, precision and recall). Applying such
thresholds is a policy decision for the committee, which may weigh it against treating students
differently by group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from waymark.fairness.disclosure import allowed
from waymark.models.capacity import top_share


@dataclass(frozen=True)
class MitigationRow:
    """One group's rates before and after equalising false negative rates.

    A rate whose denominator is too small (``fairness.disclosure``) is NaN and named in ``withheld``.
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

    def published(self, step: int) -> dict[str, Any]:
        """Rounded for the report, without the withheld rates."""
        rounded = int(step * round(self.students / step)) if step > 1 else self.students
        values = {
            k: round(float(v), 4)
            for k, v in self.__dict__.items()
            if isinstance(v, float) and k not in self.withheld
        }
        return {"attribute": self.attribute, "group": self.group, "students": rounded, **values}


def equalised_fnr(
    rows: pd.DataFrame, groups: pd.Series, *, capacity: float, attribute: str, min_size: int
) -> list[MitigationRow]:
    """Per-group thresholds giving every group the overall false negative rate at ``capacity``.

    Parameters
    ----------
    rows
        One week's scored rows: student_id, label, probability.
    groups
        The group of each row.
    capacity
        The outreach capacity (share of the week's rows).
    attribute
        The characteristic's name, copied into each row.
    min_size
        The policy's minimum group size: rates resting on fewer students are withheld.

    Returns
    -------
    list of MitigationRow
        One per group, withheld rates set to NaN.
    """
    p, y = rows["probability"].to_numpy(), rows["label"].to_numpy().astype(bool)
    labels = groups.to_numpy()
    before = top_share(p, capacity)
    target = 1 - before[y].mean() if y.any() else 0.0
    after = np.zeros_like(before)
    for g in np.unique(labels):
        rows_g = labels == g
        positives = p[rows_g & y]
        threshold = np.quantile(positives, target) if positives.size else np.inf
        after[rows_g] = p[rows_g] >= threshold
    ids = rows["student_id"].to_numpy()
    week = {
        "week_students": _distinct(ids, np.ones_like(y)),
        "week_positives": _distinct(ids, y),
        "week_negatives": _distinct(ids, ~y),
        "week_selected_after": _distinct(ids, after),
    }
    recall = after[y].mean() if y.any() else np.nan
    precision = y[after].mean() if after.any() else np.nan
    out = []
    for g in np.unique(labels):
        rows_g = labels == g
        pos = rows_g & y
        row = MitigationRow(
            attribute=attribute,
            group=str(g),
            students=_distinct(ids, rows_g),
            selection_before=float(before[rows_g].mean()),
            selection_after=float(after[rows_g].mean()),
            fnr_before=float(1 - before[pos].mean()) if pos.any() else np.nan,
            fnr_after=float(1 - after[pos].mean()) if pos.any() else np.nan,
            list_share_after=float(after.mean()),
            recall_after=float(recall),
            precision_after=float(precision),
        )
        counts = {
            **week,
            "students": row.students,
            "positives": _distinct(ids, pos),
            "negatives": _distinct(ids, rows_g & ~y),
        }
        out.append(_withhold(row, counts, min_size=min_size))
    return out


def _distinct(ids: np.ndarray, mask: np.ndarray) -> int:
    return int(pd.unique(ids[mask.astype(bool)]).size)


def _withhold(row: MitigationRow, counts: dict[str, int], *, min_size: int) -> MitigationRow:
    """The row with every rate that rests on too few students set to NaN (fairness.disclosure)."""
    rates = [k for k, v in row.__dict__.items() if isinstance(v, float)]
    withheld = tuple(k for k in rates if not allowed(k, counts, min_size=min_size))
    fields: dict[str, Any] = {**row.__dict__, **dict.fromkeys(withheld, math.nan), "withheld": withheld}
    return MitigationRow(**fields)
