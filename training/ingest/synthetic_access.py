"""Staff relationships for a synthetic cohort: who supports whom (the ``access`` table)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from waymark.training.ingest.synthetic_catalogue import PROGRAMMES, SCHOOLS

SUPPORT_STAFF_PER_SCHOOL = 2
PLACEMENT_PROGRAMMES = ("P-CMP", "P-MEC", "P-BIO")


def fixed_relationships() -> pd.DataFrame:
    """Module leaders, programme leaders and support staff: the same for every cohort size."""
    rows = [(f"modlead-{m}", "module_leader", "module", m) for _, m in PROGRAMMES.values()]
    rows += [(f"proglead-{p}", "programme_leader", "programme", p) for p in PROGRAMMES]
    rows += [
        (f"support-{s}-{k + 1}", "support_staff", "school", s)
        for s in SCHOOLS
        for k in range(SUPPORT_STAFF_PER_SCHOOL)
    ]
    return pd.DataFrame(rows, columns=["staff_id", "relationship", "scope_type", "scope_id"])


def tutees_and_placements(rng: np.random.Generator, students: pd.DataFrame, *, chunk: int) -> pd.DataFrame:
    """Personal tutors (10-60 tutees each, within a programme) and placement supervisors."""
    rows: list[pd.DataFrame] = []
    for prog, ids in students.groupby("programme_id")["student_id"]:
        members = ids.to_numpy()
        groups = max(1, round(len(members) / rng.uniform(20, 45)))
        for k, part in enumerate(np.array_split(members, groups)):
            rows.append(_rows(f"tutor-{chunk:04d}-{prog}-{k + 1:03d}", "personal_tutor", student_ids=part))
    eligible = students[
        students["programme_id"].isin(PLACEMENT_PROGRAMMES) & (students["year_of_study"] == 3)
    ]
    placed = eligible[rng.random(len(eligible)) < 0.25]["student_id"].to_numpy()
    for k, part in enumerate(np.array_split(placed, max(1, len(placed) // 3))):
        if len(part):
            rows.append(_rows(f"placement-{chunk:04d}-{k + 1:04d}", "placement_supervisor", student_ids=part))
    return pd.concat(rows, ignore_index=True)


def _rows(staff: str, relationship: str, *, student_ids: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {"staff_id": staff, "relationship": relationship, "scope_type": "student", "scope_id": student_ids}
    )
