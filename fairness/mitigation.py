"""What per-group thresholds would change (report only: never applied silently).

At one week and capacity, each group gets the threshold that would give it the overall false
negative rate. The report shows, for each group, selection and miss rates before and after, and
how the outreach list as a whole would change (its size, precision and recall). Applying such
thresholds is a policy decision for the committee, which may weigh it against treating students
differently by group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.capacity import top_share


@dataclass(frozen=True)
class MitigationRow:
    """One group's rates before and after equalising false negative rates."""

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

    def published(self, step: int) -> dict[str, Any]:
        """Rounded for the report."""
        rounded = int(step * round(self.students / step)) if step > 1 else self.students
        values = {k: round(float(v), 4) for k, v in self.__dict__.items() if isinstance(v, float)}
        return {"attribute": self.attribute, "group": self.group, "students": rounded, **values}


def equalised_fnr(
    rows: pd.DataFrame, groups: pd.Series, capacity: float, attribute: str
) -> list[MitigationRow]:
    """Per-group thresholds giving every group the overall false negative rate at ``capacity``."""
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
    recall = after[y].mean() if y.any() else np.nan
    precision = y[after].mean() if after.any() else np.nan
    out = []
    for g in np.unique(labels):
        rows_g = labels == g
        pos = rows_g & y
        out.append(
            MitigationRow(
                attribute,
                str(g),
                int(rows["student_id"][rows_g].nunique()),
                float(before[rows_g].mean()),
                float(after[rows_g].mean()),
                float(1 - before[pos].mean()) if pos.any() else np.nan,
                float(1 - after[pos].mean()) if pos.any() else np.nan,
                float(after.mean()),
                float(recall),
                float(precision),
            )
        )
    return out
