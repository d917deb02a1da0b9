"""Drift by group: has the distribution of estimates moved for some groups only, between two scoring runs.

The service never reads protected characteristics; this module does, through the one reader
(``fairness.protected``), for the monitor's aggregate figures. It receives two runs' estimates (one
row per registration, no names) and returns, per characteristic and group, counts, mean estimates and
the population stability index between the runs. A group with fewer students than the fairness
policy's minimum in either run is withheld, name and all (CoP §7, as in the audit); so is an
intersection. Nothing per student leaves this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from waymark.fairness.audit import group_labels
from waymark.fairness.disclosure import enough_students
from waymark.fairness.protected import load_protected_characteristics
from waymark.models import drift


def group_drift(
    latest: pd.DataFrame,
    previous: pd.DataFrame,
    *,
    labels: pd.DataFrame,
    min_size: int,
    psi_flag: float,
    min_judged: int = 30,
) -> dict[str, Any]:
    """Each group's estimates in ``latest`` against ``previous``, small groups withheld.

    Parameters
    ----------
    latest, previous
        Estimates of two runs: ``student_id`` and ``probability`` (one row per registration).
    labels
        Group of each student under each characteristic (``fairness.audit.group_labels``), indexed
        by student_id.
    min_size
        The fairness policy's minimum group size.
    psi_flag
        The monitoring policy's threshold for a group's PSI.
    min_judged
        A group is flagged only with at least this many registrations in both runs: over ten bins,
        a group of a dozen moves its PSI past any threshold when one student changes bin.

    Returns
    -------
    dict
        ``groups``: rows of characteristic, group, students, previous_students, mean,
        previous_mean, psi; ``withheld``: how many groups were too small to show, by characteristic;
        ``flags``: the groups whose PSI reached ``psi_flag``.
    """
    rows, flags, withheld = [], [], {}
    now = latest.join(labels, on="student_id", how="inner")
    before = previous.join(labels, on="student_id", how="inner")
    for attribute in labels.columns:
        hidden = 0
        for group in sorted(set(now[attribute]) | set(before[attribute])):
            a = now.loc[now[attribute] == group, "probability"].to_numpy(dtype=np.float64)
            b = before.loc[before[attribute] == group, "probability"].to_numpy(dtype=np.float64)
            if not (enough_students(a.size, min_size) and enough_students(b.size, min_size)):
                hidden += 1
                continue
            row = _row(attribute, group, now=a, before=b)
            rows.append(row)
            if row["psi"] >= psi_flag and min(a.size, b.size) >= min_judged:
                flags.append(
                    {
                        "kind": "group estimates",
                        "scope": f"{attribute}: {group}",
                        "name": "estimate",
                        "value": row["psi"],
                        "threshold": psi_flag,
                    }
                )
        withheld[attribute] = hidden
    return {"groups": rows, "withheld": withheld, "min_group_size": min_size, "flags": flags}


def _row(attribute: str, group: str, *, now: np.ndarray, before: np.ndarray) -> dict[str, Any]:
    return {
        "characteristic": attribute,
        "group": group,
        "students": int(now.size),
        "previous_students": int(before.size),
        "mean": round(float(now.mean()), 4),
        "previous_mean": round(float(before.mean()), 4),
        "psi": round(
            drift.psi(drift.counts(before, drift.ESTIMATE_EDGES), drift.counts(now, drift.ESTIMATE_EDGES)), 4
        ),
    }


def group_drift_of_folder(
    latest: pd.DataFrame,
    previous: pd.DataFrame,
    *,
    folder: Path,
    min_size: int,
    psi_flag: float,
    intersections: bool,
    min_judged: int = 30,
) -> dict[str, Any] | None:
    """:func:`group_drift` with the characteristics of a data folder; None when it records none."""
    protected = load_protected_characteristics(folder)
    if protected is None or not protected.attributes:
        return None
    labels = group_labels(protected, intersections=intersections)
    return group_drift(
        latest, previous, labels=labels, min_size=min_size, psi_flag=psi_flag, min_judged=min_judged
    )
