"""Drift by group: has the distribution of estimates moved for some groups only.

The service never reads protected characteristics; this module does, through the one reader
(``fairness.protected``), for the monitor's aggregate figures. It receives two runs' estimates (one
row per registration, no names) and returns, per characteristic and group, counts, mean estimates and
the population stability index between the runs. The model's own reference is its fairness audit:
the audit keeps, for each audited week, each shown group's share of estimates in the estimate bins
(:func:`group_estimate_shares`), and a run's groups are compared with that too. A group with fewer
students than the fairness policy's minimum in either run (or in the audit) is withheld, name and
all (CoP §7, as in the audit); so is an intersection. The groups of a characteristic add up to every
student, and an intersection's add up to each of its parents' groups: so in each such total and run,
the groups withheld are none or at least two holding the minimum together, more of the smallest shown
ones withheld where needed (complementary suppression, :func:`withheld_groups`), and counts are
published rounded as the audit's are. Nothing per student leaves this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from waymark.fairness.audit import NOT_RECORDED, group_labels
from waymark.fairness.disclosure import rounded_count, unnamed_groups
from waymark.fairness.protected import load_protected_characteristics
from waymark.models import drift

GroupShares = Mapping[str, Mapping[str, Sequence[float]]]  # characteristic -> group -> shares per bin


def group_estimate_shares(
    scored: pd.DataFrame, labels: pd.DataFrame, *, min_size: int, rounding: int = 1
) -> dict[str, Any]:
    """Each group's share of estimates in each of the estimate bins; groups below ``min_size`` left out.

    ``scored`` holds ``student_id`` and ``probability`` (one row per registration, one week);
    ``labels`` is ``fairness.audit.group_labels``'s table. The shares come from each bin's count
    rounded to ``rounding`` (the policy's count rounding), as the audit's counts are published, so one
    group's shares taken from another's (an intersection from its parent) tell no exact count; each
    share rests on the whole group, at least ``min_size`` students, as the audit's rates do, and the
    groups left out are those the audit withholds (``withheld_groups``: a small group, and the
    smallest beside it where it would be alone). Only shares leave: no student.
    """
    # Every scored student, as the audit counts them: one with no row in the protected table is in the
    # "not recorded" group (left out, the groups' sizes and so what is withheld would differ).
    groups = labels.reindex(scored["student_id"]).fillna(NOT_RECORDED).reset_index(drop=True)
    joined = pd.concat([scored[["student_id", "probability"]].reset_index(drop=True), groups], axis=1)
    out: dict[str, dict[str, list[float]]] = {}
    for attribute in labels.columns:
        out[attribute] = {}
        # The groups the audit names at this week: none under min_size students (people, not
        # registrations), and none left alone beside them in a total (complementary suppression): a
        # large group's shares beside the whole cohort's would give a small one's back.
        hidden = unnamed_groups([joined], attribute, labels=joined, min_size=min_size)
        for group, rows in joined.groupby(attribute, sort=True):
            values = rows["probability"].to_numpy(dtype=np.float64)
            if str(group) in hidden:
                continue
            counts = np.asarray(drift.counts(values, drift.ESTIMATE_EDGES), dtype=np.float64)
            counts = rounding * np.round(counts / rounding) if rounding > 1 else counts
            if counts.sum() > 0:
                out[attribute][str(group)] = [round(float(c), 4) for c in drift.shares(counts.tolist())]
    return out


def group_drift(
    latest: pd.DataFrame,
    previous: pd.DataFrame | None,
    *,
    labels: pd.DataFrame,
    min_size: int,
    psi_flag: float,
    min_judged: int = 30,
    reference: GroupShares | None = None,
    rounding: int = 1,
) -> dict[str, Any]:
    """Each group's estimates in ``latest`` against ``previous`` and the audit's, small groups withheld.

    Parameters
    ----------
    latest, previous
        Estimates of two runs: ``student_id`` and ``probability`` (one row per registration);
        ``previous`` None when there is no earlier run.
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
    reference
        The audit's shares for the run's week (:func:`group_estimate_shares`), None without one; a
        group the audit withheld is not compared with it.
    rounding
        The fairness policy's count rounding: ``students`` and ``previous_students`` are published
        to the nearest multiple.

    Returns
    -------
    dict
        ``groups``: rows of characteristic, group, students, previous_students, mean,
        previous_mean, psi (against the previous run) and audit_psi (against the audit);
        ``withheld``: how many groups were not shown, by characteristic (too small, or withheld
        beside one that was: :func:`withheld_groups`); ``flags``: the groups whose PSI against
        either reached ``psi_flag``.
    """
    rows, flags, withheld = [], [], {}
    # Two runs in which a handful of students' estimates moved (a rectification scored again, say)
    # would give back by differencing which group each of those students is in, whether the groups
    # are set side by side here or this report's beside the previous report's: no group figure is
    # published unless at least min_size students moved.
    if previous is not None and students_moved(latest, previous) < min_size:
        return {
            "groups": [],
            "withheld": {},
            "min_group_size": min_size,
            "flags": [],
            "previous_withheld": PREVIOUS_WITHHELD.format(min_size=min_size),
        }
    now = latest.join(labels, on="student_id", how="inner")
    before = None if previous is None else previous.join(labels, on="student_id", how="inner")
    for attribute in labels.columns:
        audited = (reference or {}).get(attribute, {})
        names = set(now[attribute]) | (set() if before is None else set(before[attribute]))
        estimates, students = {}, {}
        for group in sorted(names):
            mine = now[now[attribute] == group]
            a = mine["probability"].to_numpy(dtype=np.float64)
            b = None if before is None else before[before[attribute] == group]
            estimates[group] = (a, None if b is None else b["probability"].to_numpy(dtype=np.float64))
            students[group] = (mine["student_id"].nunique(), 0 if b is None else b["student_id"].nunique())
        # Each run's sizes, in students (a student on two modules is one person, two rows): a group in
        # one run only is withheld, and the run it is in must not give it back.
        runs = [now] if before is None else [now, before]
        hidden = unnamed_groups(runs, attribute, labels=labels, min_size=min_size)
        for group, (a, b) in estimates.items():
            if group in hidden:
                continue
            row = _row(
                attribute,
                group,
                now=a,
                before=b,
                students=students[group],
                audited=audited.get(group),
                rounding=rounding,
            )
            rows.append(row)
            for key, against in (("psi", "the previous run"), ("audit_psi", "the audit")):
                now_n, before_n = students[group]  # judged in students, as the sizes shown
                judged = min(now_n, before_n) if key == "psi" and b is not None else now_n
                if row[key] is not None and row[key] >= psi_flag and judged >= min_judged:
                    flags.append(
                        {
                            "kind": f"group estimates against {against}",
                            "scope": f"{attribute}: {group}",
                            "name": "estimate",
                            "value": row[key],
                            "threshold": psi_flag,
                        }
                    )
        withheld[attribute] = len(hidden)
    return {"groups": rows, "withheld": withheld, "min_group_size": min_size, "flags": flags}


#: Why the groups are not compared with the previous run (``group_drift``).
PREVIOUS_WITHHELD = (
    "No group figures in this report: fewer than {min_size} students' estimates changed since the "
    "previous run, and each group's figures beside the previous report's would point at the groups "
    "those few students are in."
)
#: Why a run's group figures are not published: students left it after it was scored.
LEFT_OUT_WITHHELD = (
    "No group figures in this report: {which} has fewer students than when it was scored (an objection "
    "or an erasure since), and its group figures beside an earlier report's would point at the groups "
    "those students are in. They return with {when}."
)
#: An estimate that moved less than this between two runs has not moved (``students_moved``).
UNMOVED = 0.005


def students_moved(latest: pd.DataFrame, previous: pd.DataFrame) -> int:
    """How many students' estimates differ between two runs: moved, or in one run only."""
    keys = [
        c
        for c in ("student_id", "module_id", "presentation_id")
        if c in latest.columns and c in previous.columns
    ]
    both = latest[[*keys, "probability"]].merge(
        previous[[*keys, "probability"]], on=keys, how="outer", suffixes=("", "_before"), indicator=True
    )
    changed = (both["_merge"] != "both") | ~np.isclose(
        both["probability"].to_numpy(np.float64),
        both["probability_before"].to_numpy(np.float64),
        atol=UNMOVED,
        rtol=0,
    )
    return int(both.loc[changed, "student_id"].nunique())


def _row(
    attribute: str,
    group: str,
    *,
    now: np.ndarray,
    before: np.ndarray | None,
    students: tuple[int, int],
    audited: Sequence[float] | None,
    rounding: int,
) -> dict[str, Any]:
    counts = drift.counts(now, drift.ESTIMATE_EDGES)
    return {
        "characteristic": attribute,
        "group": group,
        "students": rounded_count(students[0], rounding),
        "previous_students": None if before is None else rounded_count(students[1], rounding),
        "mean": round(float(now.mean()), 4),
        "previous_mean": None if before is None else round(float(before.mean()), 4),
        "psi": None
        if before is None
        else round(drift.psi(drift.counts(before, drift.ESTIMATE_EDGES), counts), 4),
        "audit_psi": None if audited is None else round(drift.psi(list(audited), counts), 4),
    }


def group_drift_of_folder(
    latest: pd.DataFrame,
    previous: pd.DataFrame | None,
    *,
    folder: Path,
    min_size: int,
    psi_flag: float,
    intersections: bool,
    min_judged: int = 30,
    reference: GroupShares | None = None,
    rounding: int = 1,
) -> dict[str, Any] | None:
    """:func:`group_drift` with the characteristics of a data folder; None when it records none."""
    protected = load_protected_characteristics(folder)
    if protected is None or not protected.attributes:
        return None
    labels = group_labels(protected, intersections=intersections)
    return group_drift(
        latest,
        previous,
        labels=labels,
        min_size=min_size,
        psi_flag=psi_flag,
        min_judged=min_judged,
        reference=reference,
        rounding=rounding,
    )
