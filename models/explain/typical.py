"""What sets a student apart from their module cohort at a week, one family at a time.

A family's contribution compares the student with the students the model was trained on, not with
their own module. Something true of everybody on the module at that point (no marks yet for anyone,
no assessment due yet) can then carry a large contribution for every student alike; shown as each
student's factor it would read as if it were about them. So, within each module presentation and week
(the cohort):

- the student is **typical** in a family when each of the family's features equals the cohort's
  median; a typical student's family is never their factor or strength;
- a family is **shared** when at least ``NEARLY_ALL`` of the cohort are typical in it: then, for its
  typical students, it is a fact about the cohort, said once as context;
- a cohort of fewer than ``MIN_COHORT`` students has no meaningful median, and saying what it has in
  common would tell staff about its few other students: nothing is said of it as context. A family
  every one of its students has alike (nothing marked yet for any of them) sets none of them apart; a
  family that only compares a student with the cohort (``COMPARED_WITH_COHORT``) has nothing to compare
  with; every other family sets its students apart, as before.

Within a family, a **feature** whose value at least ``NEARLY_ALL`` of a cohort (of at least
``MIN_COHORT``) share is the cohort's: for the students who have that value, its contribution is left
out of what the family says about them (``Standing.own``). In a week nobody on a module has recorded
activity ("0 in the last 14 days" for everyone), a student's study-resource count is then weighed by
what differs (their count so far), not by the empty fortnight everybody shares.

A **quiet stretch** (``quiet_stretch``) is a cohort of at least ``MIN_COHORT`` in which at least
``NEARLY_ALL`` have no activity in the last 14 days: a break in the calendar, whatever the
institution calls it. Days since the last activity then differ from student to student by when each
last worked before the break, and would set every one of them apart; for a student who was active
before it, and whose last activity is less than ``LONG_BEFORE`` days earlier than the cohort's
typical one, recent activity is the cohort's, said once as context. A student whose activity stopped
well before the others', or never started, keeps it as theirs, said beside the cohort's
(``sentences.QUIET_SHARE``). Where at least ``MOST_QUIET`` but fewer than ``NEARLY_ALL`` are quiet
and the quiet students stopped together (a break most observe), a quiet student whose last activity is
no earlier than the typical quiet student's is quiet as most of the cohort is: their recent activity is
context too; the others' is theirs, said beside the cohort's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from waymark.models.features.catalogue import COMPARED_WITH_COHORT, MIN_COHORT

NEARLY_ALL = 0.95
#: From this share of a cohort with no activity in the last 14 days, a sentence of none says so beside
#: the student's own (weighed as theirs unless in a stretch): a distance university's first week after
#: Christmas, 54% to 74% of every module quiet, read "the last recorded activity was 19 days ago" as the
#: student's own reason with no word of the others (a German university's review).
SAID_FROM = 0.5
#: In a quiet stretch, a last activity this many days or more before the cohort's typical one is the
#: student's own: two weeks, the span of the recent-activity window.
LONG_BEFORE = 14
#: From this share quiet, and with the quiet students' last activity within ``TOGETHER_DAYS`` of each
#: other for the middle half of them, a cohort is read as in a break most of it observes.
MOST_QUIET = 0.75
TOGETHER_DAYS = 7


@dataclass(frozen=True)
class Standing:
    """One family's standing for each row."""

    apart: np.ndarray  # bool: the row's values of the family differ from its cohort's median
    shared: (
        np.ndarray
    )  # the share of the cohort typical in the family, where it is shared and the row typical; else 0
    own: np.ndarray  # bool, rows by the family's features: the feature's contribution is the row's own


@dataclass(frozen=True)
class Quiet:
    """Per row: its cohort's quiet stretch, if it is in one (``quiet_stretch``)."""

    share: np.ndarray  # the share of the cohort with no activity in the last 14 days; 0 under SAID_FROM
    typical_since: np.ndarray  # the cohort's median days since the last activity (of those with any); nan
    quiet: np.ndarray  # bool: in a stretch with no activity in the last 14 days, or quiet as most are (alike)
    alike: np.ndarray  # bool: quiet as the cohort is (active before, not stopped long before the others)

    @classmethod
    def none(cls, rows: int) -> Quiet:
        """No row in a quiet stretch."""
        nobody = np.zeros(rows, dtype=bool)
        return cls(np.zeros(rows), np.full(rows, np.nan), nobody, nobody)


def quiet_stretch(*, last14: np.ndarray, ever: np.ndarray, since: np.ndarray, group: np.ndarray) -> Quiet:
    """Which rows are in a cohort's quiet stretch, and which of them are quiet as the cohort is.

    Parameters
    ----------
    last14
        Activity in the last 14 days per row (any scale on which 0 is none).
    ever
        Whether the row has any recorded activity before the cut-off.
    since
        Days since the row's last recorded activity.
    group
        Cohort code per row (module presentation and week), 0..G-1.
    """
    sizes = np.bincount(group)
    quiet = last14 <= 0
    share = (np.bincount(group, weights=quiet, minlength=len(sizes)) / np.maximum(sizes, 1))[group]
    large = ~in_small_cohort(group)
    said = (share >= SAID_FROM) & large
    stretch = (share >= NEARLY_ALL) & large
    if not said.any():
        return Quiet.none(len(group))
    counted = quiet & ever.astype(bool)
    by_group = pd.Series(np.where(counted, since, np.nan)).groupby(group)
    typical = by_group.median().reindex(range(len(sizes))).to_numpy()
    typical_since = np.where(said, typical[group], np.nan)
    # The quiet students stopped together (a break) where half of them stopped within a week of each other.
    spread = (by_group.quantile(0.75) - by_group.quantile(0.25)).reindex(range(len(sizes))).to_numpy()[group]
    together = (share >= MOST_QUIET) & large & (spread <= TOGETHER_DAYS)
    with np.errstate(invalid="ignore"):
        # Where most of the cohort stopped together but not nearly all, a quiet student who last worked
        # no earlier than the typical quiet student is quiet as the most are (a Polish university's
        # Christmas fortnight, 80% of each module quiet, gave students who worked later into it than
        # the typical one "No activity ... in the last 14 days" as their top factor). Not where quiet
        # students stopped at all sorts of times: that is each one's own going quiet.
        alike = counted & (
            (stretch & (since < typical_since + LONG_BEFORE))
            | (~stretch & together & (since <= typical_since))
        )
    return Quiet(np.where(said, share, 0.0), typical_since, (stretch & quiet) | alike, alike)


def cohort_standing(
    x: np.ndarray, *, group: np.ndarray, columns: dict[str, np.ndarray], quiet: Quiet | None = None
) -> dict[str, Standing]:
    """Each family's standing for every row of ``x``.

    Parameters
    ----------
    x
        Feature matrix (rows by the model's features).
    group
        Cohort code per row (module presentation and week), 0..G-1.
    columns
        For each family, the positions of its features in ``x``.
    quiet
        The rows' quiet stretches (``quiet_stretch``): recent activity is the cohort's for the rows
        quiet as their cohort is, and the stretch is a fact shared by every quiet row in it
        (``Standing.shared``), said as context wherever the row's own recent activity is not said.

    Returns
    -------
    dict
        Family -> ``Standing``.
    """
    sizes = np.bincount(group)
    small = in_small_cohort(group)
    out = {
        family: _standing(
            x[:, cols], group=group, sizes=sizes, small=small, compares=family in COMPARED_WITH_COHORT
        )
        for family, cols in columns.items()
    }
    if quiet is not None and quiet.alike.any() and "recent_activity" in out:
        recent = out["recent_activity"]
        out["recent_activity"] = Standing(
            apart=recent.apart & ~quiet.alike,
            shared=np.where(quiet.quiet, quiet.share, recent.shared),
            own=recent.own & ~quiet.alike[:, None],
        )
    return out


def quiet_weeks(keys: pd.DataFrame, *, group: np.ndarray, active: pd.DataFrame) -> np.ndarray:
    """Per row: in how many of its own weeks so far at least ``NEARLY_ALL`` of its cohort had no activity.

    Parameters
    ----------
    keys
        module_id, presentation_id, week (W) and, if known, reg_day per row; the student's weeks so
        far are those from the week they registered in (0 if before the start) to W - 1.
    group
        Cohort code per row (module presentation and week), 0..G-1.
    active
        ``coverage.ACTIVE_BY_WEEK_SQL``'s rows: students active per module presentation and week
        (a week with no row had nobody active).

    A break whatever the calendar calls it, or a week before a source was in use: no student's own
    regularity. 0 in a cohort of fewer than ``MIN_COHORT``.
    """
    sizes = np.bincount(group)
    counts = {
        (str(m), str(p), int(b)): int(n)
        for m, p, b, n in active[["module_id", "presentation_id", "b", "active"]].itertuples(index=False)
    }
    week = keys["week"].astype("int64").to_numpy()
    reg_day = keys["reg_day"].to_numpy(dtype=np.float64) if "reg_day" in keys else np.zeros(len(week))
    # The student's own weeks start in the week they registered in (as ``sentences.own_weeks``).
    own_first = np.clip(np.floor(reg_day / 7), 0, week).astype(np.int64)
    first = pd.DataFrame(
        {
            "g": group,
            "m": keys["module_id"].astype(str).to_numpy(),
            "p": keys["presentation_id"].astype(str).to_numpy(),
            "w": week,
        }
    ).drop_duplicates("g")
    # Per cohort, how many of weeks b..W-1 were quiet, for every b from 0 to W (a suffix count).
    quiet_from: dict[int, np.ndarray] = {}
    for g, m, p, w in first.itertuples(index=False):
        size = int(sizes[g])
        quiet = [
            size >= MIN_COHORT and (size - counts.get((m, p, b), 0)) / size >= NEARLY_ALL for b in range(w)
        ]
        quiet_from[g] = np.r_[np.cumsum(np.asarray(quiet, dtype=np.int64)[::-1])[::-1], 0]
    weeks: np.ndarray = np.array(
        [quiet_from[g][b] for g, b in zip(group.tolist(), own_first.tolist(), strict=True)], dtype=np.int64
    )
    return weeks


def in_small_cohort(group: np.ndarray) -> np.ndarray:
    """Per row: whether its cohort (``group``, 0..G-1) has fewer than ``MIN_COHORT`` students."""
    small: np.ndarray = np.bincount(group)[group] < MIN_COHORT
    return small


def _standing(
    values: np.ndarray, *, group: np.ndarray, sizes: np.ndarray, small: np.ndarray, compares: bool
) -> Standing:
    median = pd.DataFrame(values).groupby(group).median().reindex(range(len(sizes))).to_numpy()
    at_median = np.isclose(values, median[group], rtol=1e-9, atol=1e-9)
    typical = at_median.all(axis=1)
    share = _share(typical, group=group, sizes=sizes)
    shared = typical & ~small & (share >= NEARLY_ALL)
    # Every student typical is every student alike (each equals the median); one student alone is not.
    alike = (share >= 1) & (sizes[group] > 1)
    small_apart = ~(alike | compares)
    feature_share = np.column_stack(
        [_share(at_median[:, k], group=group, sizes=sizes) for k in range(values.shape[1])]
    )
    cohorts = at_median & ~small[:, None] & (feature_share >= NEARLY_ALL)
    return Standing(
        apart=np.where(small, small_apart, ~typical), shared=np.where(shared, share, 0.0), own=~cohorts
    )


def _share(flags: np.ndarray, *, group: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Per row: the share of its cohort for which ``flags`` holds."""
    counted = np.bincount(group, weights=flags, minlength=len(sizes))
    share: np.ndarray = (counted / np.maximum(sizes, 1))[group]
    return share
