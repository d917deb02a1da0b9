"""Disclosure control: which published figures rest on enough students to be shown (CoP §7).

A rate is only as anonymous as its denominator. A group of ten students with one who needed
support publishes a false negative rate of 0 or 1, and that tells whoever knows the group whether
that one student was missed. So every rate the audit publishes names the counts it rests on
(``DENOMINATORS``), and it is withheld when any of them is below the policy's minimum group size.
A difference or ratio is withheld when either of its two rates is. The whole group is withheld,
name and all, when it has fewer students than the minimum.

These rules are applied once, where the audit builds its results (``fairness.audit``, and
``fairness.mitigation`` for the threshold comparison), so the gate, the report, the HTML page and
the model card never hold a withheld value and cannot show or judge one by mistake.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet

import numpy as np
import pandas as pd

#: Shown by the gate and the report for anything withheld here.
TOO_FEW = "not assessable (too few students)"

#: The counts each published rate rests on; the rate is withheld if any is under the minimum.
DENOMINATORS: dict[str, tuple[str, ...]] = {
    # The share selected adds those found to those contacted without need: with few students who
    # needed support (or few who did not), a share of 0 or 1 gives back the very cell that the
    # false negative (or false positive) rate rule withholds. Ten students, one who needed support,
    # nobody selected: that student was missed.
    "selection_rate": ("students", "positives", "negatives"),
    # A miss rate counts those not selected among the students who needed support, and its
    # complement those selected: with few selected (or few not), the rate gives back whether those few
    # needed support, and staff know who was on the list (one student of 40 selected, 15 needing
    # support: a false negative rate of 14/15 said that one did).
    "false_negative_rate": ("positives", "listed", "unlisted"),
    "false_positive_rate": ("negatives", "listed", "unlisted"),
    # Precision's own denominator is the selected students; but its numerator counts students who
    # needed support and its complement those who did not, so with few of either it would give
    # back, times the selected count, the very cell that the FNR or FPR rule withholds.
    "precision": ("selected", "positives", "negatives"),
    # A ranking compares every student who needed support with every one who did not.
    "auc": ("positives", "negatives"),
    "abroca": ("positives", "negatives"),
    # Calibration compares the mean indicator with the observed rate over the group's students.
    "ece": ("students",),
    "calibration_gap": ("students",),
    # Observed rates by band of indicator values place the students who needed support (and those
    # who did not) in bands: with few of either, that is their indicator. Each band must also
    # hold enough students (``enough_students``).
    "reliability": ("students", "positives", "negatives"),
    # The count itself: with few students who needed support (or few who did not, the rest of a
    # published group size), "1 of 12 needed support" is a cell of one student.
    "needed_support": ("positives", "negatives"),
    # The threshold comparison (fairness.mitigation): per group, then for the whole week's list.
    "selection_before": ("students", "positives", "negatives"),
    "selection_after": ("students", "positives", "negatives"),
    "fnr_before": ("positives", "listed", "unlisted"),
    # After: the students who may be selected, and who may not, under the randomised cut-offs; and the
    # list before, or the rate after would stand beside the one withheld before.
    "fnr_after": ("positives", "listed", "unlisted", "listed_after", "unlisted_after"),
    "list_share_after": ("week_students",),
    "recall_after": ("week_positives",),
    "precision_after": ("week_selected_after", "week_positives", "week_negatives"),
}

#: Counts of the list (who was on it, who was not) whose zero gives nobody away: with none of a group
#: on the list, a miss rate of 1 says only what the published selection rate of 0 already does.
#: ``selected`` too (the listed students): a precision of none selected is not shown (nothing to divide
#: by), but its none withholds no other group's precision beside it, whose total it leaves unchanged (a
#: gate had called a group of 45, all 15 who needed support missed, too small to judge once the linked
#: rates of ``fairness.audit`` followed such a withheld precision). Only where that
#: selection rate is published, that is where the group's ``SELECTION_COUNTS`` all reach the minimum:
#: a rate of none, beside a withheld selection rate, gives back the cell the selection rule withholds
#: (a conservatoire's review: a false positive rate of 0 published for a group of 20 with fewer than
#: ten who needed support said nobody of the group was on the list, so each of those few was missed).
NONE_IS_SAFE = frozenset({"listed", "unlisted", "selected", "listed_after", "unlisted_after"})
SELECTION_COUNTS = DENOMINATORS["selection_rate"]

Counts = Mapping[str, np.ndarray] | Mapping[str, int]


def allowed(metric: str, counts: Counts, *, min_size: int) -> np.ndarray:
    """Whether ``metric`` may be shown, for each entry of the counts it rests on.

    Parameters
    ----------
    metric
        A key of ``DENOMINATORS``.
    counts
        Student counts by name (``students``, ``positives``, ...): arrays, one entry per group,
        or plain integers for one group.
    min_size
        The policy's minimum group size.

    Returns
    -------
    numpy.ndarray of bool
        True where every count the metric rests on is at least ``min_size`` (or, for a count of
        ``NONE_IS_SAFE``, none, where the selection rate beside it is published: ``selection_shown``).
    """
    selection = selection_shown(counts, min_size=min_size)
    out: np.ndarray = np.logical_and.reduce(
        [
            (np.asarray(counts[c]) >= min_size)
            | ((np.asarray(counts[c]) == 0) & (c in NONE_IS_SAFE) & selection)
            for c in DENOMINATORS[metric]
        ]
    )
    return out


def selection_shown(counts: Counts, *, min_size: int) -> np.ndarray:
    """Whether each group's selection rate may be published (where a count of none on the list is safe)."""
    if not all(c in counts for c in SELECTION_COUNTS):
        return np.asarray(False)
    out: np.ndarray = np.logical_and.reduce([np.asarray(counts[c]) >= min_size for c in SELECTION_COUNTS])
    return out


def enough_students(students: np.ndarray | int, min_size: int) -> np.ndarray:
    """Whether a group (or a band of indicator values) has enough students to be named at all."""
    return np.asarray(students) >= min_size


def rounded_count(n: int, step: int) -> int:
    """A published count: ``n`` to the nearest multiple of the policy's ``step`` (``count_rounding``)."""
    return int(step * round(n / step)) if step > 1 else int(n)


#: The step a published share of students is given to, by the fewest students it rests on. A share
#: given to four decimals beside counts rounded to 5 gave the exact counts back (9 of 37 is 0.2432, and
#: no other count of 35 to 39 students makes it), and with them a small cell by subtraction of two
#: tables. On a step at least one student's worth of its count, no share of 10 to 400 students
#: rounded to 5 pins its counts down (``tests/test_disclosure.py`` tries them all).
SHARE_STEPS: tuple[tuple[int, float], ...] = ((100, 0.01), (50, 0.02), (20, 0.05), (0, 0.1))

#: Published metrics given on that step: shares of counted students (or of pairs of them: AUC,
#: ABROCA), which could give back a count; and the ECE and the calibration gap, which mix in the
#: model's estimates but, where few of a group needed support, are widened by exact bounds that rest on
#: the counts alone (the width of a rare group's interval had given back its 3 of 40, a count withheld).
STEPPED = frozenset(
    {
        "selection_rate",
        "false_negative_rate",
        "false_positive_rate",
        "precision",
        "auc",
        "abroca",
        "ece",
        "calibration_gap",
    }
)


def share_step(students: int) -> float:
    """The step of a share resting on ``students`` (the fewest of its published, rounded counts)."""
    return next(step for least, step in SHARE_STEPS if students >= least)


def published_share(value: float | None, *, students: int, step: int) -> float | None:
    """A share of students as published: on ``share_step``'s step where counts are rounded (``step`` > 1).

    A policy that publishes exact counts (``count_rounding = 1``) gives shares to four decimals: they
    tell nothing its counts do not. Differences and ratios of shares take ``published_comparison``'s
    step. None (and NaN) stay None.
    """
    return on_grid(value, share_step(students) if step > 1 else None)


def on_grid(value: float | None, grid: float | None) -> float | None:
    """``value`` on ``grid``: its nearest multiple, half up (0.25 on 0.1 is 0.3).

    Four decimals when ``grid`` is None. None (and NaN) stay None.
    """
    if value is None or not np.isfinite(value):
        return None
    if grid is None:
        return round(float(value), 4)
    return round(math.floor(float(value) / grid + 0.5) * grid, 4)


#: The steps a ratio of two shares may be published on, finest first.
RATIO_STEPS: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0)


def ratio_step(group: float, reference: float, *, group_step: float, reference_step: float) -> float | None:
    """The step of a ratio of two published shares, ``group`` / ``reference``, each on its own step.

    A ratio on its shares' step, times the reference group's published share, placed the group's share
    more finely than its own step (a ratio of 1.35 beside a reference of 0.20 puts a small group's
    rate, published as 0.25 on a step of 0.05, between 0.265 and 0.28). The first of ``RATIO_STEPS``
    on which every ratio the two published shares allow, times the reference's share, spans at least
    the group's own step, and divided into the group's share spans at least the reference's; None when
    none does (a reference published as 0, or so small beside its step that even a step of 5 would say
    more).
    """
    if reference == 0:
        return None
    a, b = abs(group), abs(reference)
    return next((s for s in RATIO_STEPS if _spans(a, b, steps=(group_step, reference_step), step=s)), None)


def _spans(group: float, reference: float, *, steps: tuple[float, float], step: float) -> bool:
    """Whether each ratio on ``step`` that the published shares allow says no more than they do.

    ``steps`` are the shares' own; a share lies between 0 and 1.
    """
    a_lo, a_hi = max(group - steps[0] / 2, 0.0), min(group + steps[0] / 2, 1.0)
    b_lo, b_hi = reference - steps[1] / 2, min(reference + steps[1] / 2, 1.0)
    ratio = math.floor(a_lo / b_hi / step + 0.5) * step
    while ratio <= a_hi / b_lo + step / 2:
        lo, hi = max(ratio - step / 2, 0.0), ratio + step / 2
        if hi * b_hi - lo * b_lo < a_hi - a_lo - 1e-9:
            return False
        if lo > 0 and a_hi / lo - a_lo / hi < b_hi - b_lo - 1e-9:
            return False
        ratio += step
    return True


def published_comparison(
    kind: str,
    values: Sequence[float],
    *,
    group: tuple[float, int],
    reference: tuple[float, int],
    step: int,
) -> tuple[list[float | None], float | None]:
    """A group's difference or ratio with its reference group's share, as published, and its step.

    ``group`` and ``reference`` are each side's measured share and the fewest of its published counts
    (``fewest``); ``values`` the comparison's point and interval bounds. A difference takes the step
    of the fewer students of the two: each side's share stands on its own step, and a difference on the
    coarser of the two places neither more finely. A ratio takes ``ratio_step`` of the two shares as
    published; it is withheld (None) where there is none. The step is None where counts are exact
    (``step`` <= 1: four decimals, as ``published_share``).
    """
    if step <= 1:
        return [on_grid(v, None) for v in values], None
    grid: float | None
    if kind == "difference":
        grid = share_step(min(group[1], reference[1]))
    else:
        mine = published_share(group[0], students=group[1], step=step)
        theirs = published_share(reference[0], students=reference[1], step=step)
        grid = (
            None
            if mine is None or theirs is None
            else ratio_step(
                mine, theirs, group_step=share_step(group[1]), reference_step=share_step(reference[1])
            )
        )
        if grid is None:
            return [None for _ in values], None
    return [on_grid(v, grid) for v in values], grid


def fewest(students: int, positives: int | None, *, step: int) -> int:
    """The fewest of a group's published counts: its students, and those who needed support and not.

    A count of those who needed support that is withheld (None: too few, or beside too few) counts as
    none: its shares take the coarsest step.
    """
    if positives is None:
        return 0
    counts = [students, positives, students - positives]
    return min(rounded_count(c, step) for c in counts)


def rests_on(metric: str, *, students: int, positives: int | None, selected: int | None, step: int) -> int:
    """The fewest published counts a group's share ``metric`` rests on, which set its step.

    ``fewest``; and for precision, whose denominator is the students on the list, the list's count
    too (a count not given counts as none).
    """
    least = fewest(students, positives, step=step)
    if metric == "precision":
        least = min(least, rounded_count(selected or 0, step))
    return least


def withheld_groups(
    sizes: Sequence[Mapping[str, int]],
    margins: Sequence[Sequence[str]],
    *,
    min_size: int,
    none_is_safe: Sequence[AbstractSet[str]] = (),
    already: AbstractSet[str] = frozenset(),
) -> set[str]:
    """The groups not to show: those under ``min_size`` in any run, then enough beside them in every total.

    ``sizes`` holds each run's students per group (0 where a group is not in that run); ``margins`` the
    sets of groups that add up to a total a reader knows or can work out (all students first, then each
    parent group of an intersection: ``margins_of``). In every run and margin, the withheld groups with
    students must be none, or at least two holding ``min_size`` together: a lone one would be the total
    less the shown groups, and a few together would be a small group's figures. Otherwise the smallest
    shown group (ties by name) is withheld as well, until that holds or nothing there is shown. A parent
    group's margin of one group is withheld whole: its one group is the parent, and would say what every
    student of the parent is in the other characteristic. This repeats over every margin until none
    changes, since withholding a group in one margin can leave it alone in another (the usual rule of
    complementary suppression; it does not solve every combination of totals a determined reader could
    form). A run flagged in ``none_is_safe`` (a count of ``NONE_IS_SAFE``) names the groups whose
    selection rate is published: none of them is withheld for having none in that run. Groups in
    ``already`` are withheld from the start (a figure another table withholds that these groups add up
    to).
    """
    names = set().union(*sizes) if sizes else set()
    safe = list(none_is_safe) + [frozenset()] * (len(sizes) - len(none_is_safe))
    hidden = set(already) & names | {
        g
        for g in names
        for run, zero_ok in zip(sizes, safe, strict=True)
        if not enough_students(run.get(g, 0), min_size) and not (g in zero_ok and run.get(g, 0) == 0)
    }
    # A total of one group is that group: an intersection that is the whole of its parent group says
    # what every student of the parent is in the other characteristic (a Vietnamese university's ten
    # students from Điện Biên, all of them Thái, named beside the province: the province a class list
    # shows gave each one's ethnicity).
    # (Not all students' total, the first: a characteristic whose students were all of one group in a
    # run says nothing of anyone that the run's own list of groups does not.)
    hidden |= {margin[0] for margin in margins[1:] if len(margin) == 1 and margin[0] in names}
    changed = True
    while changed:
        changed = False
        for margin in margins:
            inside = [g for g in margin if g in names]
            for run in sizes:
                while True:
                    withheld = [g for g in inside if g in hidden and run.get(g, 0) > 0]
                    held = sum(run.get(g, 0) for g in withheld)
                    # a group with none in this run (safe in a ``none_is_safe`` one) hides nothing beside it
                    shown = sorted(
                        (g for g in inside if g not in hidden and run.get(g, 0) > 0),
                        key=lambda g: (run.get(g, 0), g),
                    )
                    if not shown or not withheld or (len(withheld) > 1 and held >= min_size):
                        break
                    hidden.add(shown[0])
                    changed = True
    return hidden


def margins_of(labels: pd.DataFrame, attribute: str) -> list[list[str]]:
    """The totals ``attribute``'s groups add up to: all students, and each parent group of an intersection.

    An intersection column of ``fairness.audit.group_labels`` is named ``"a x b"`` after its parents.
    """
    totals = [sorted(labels[attribute].unique().tolist())]
    parents = [p for p in attribute.split(" x ") if p in labels.columns and p != attribute]
    if len(parents) == 2:
        for parent in parents:
            # the distinct pairs: every student's label read in Python took seconds of a full OULAD audit
            pairs = labels[[parent, attribute]].drop_duplicates()
            for _, rows in pairs.groupby(parent, sort=True):
                totals.append(sorted(rows[attribute].tolist()))
    return totals


def unnamed_groups(
    runs: Sequence[pd.DataFrame], attribute: str, *, labels: pd.DataFrame, min_size: int
) -> set[str]:
    """The groups of ``attribute`` not named at all, by their distinct students in each run.

    ``runs``: frames of ``student_id`` and the group columns (one run, or a run and the one before it,
    as monitoring compares them); ``labels``: every student's groups, whose totals the groups add up
    to (``margins_of``). ``withheld_groups`` over each run's sizes; for an intersection, its groups
    within a parent group that the parent's own table does not name are withheld from the start, as
    the audit does (``fairness.audit._withheld_in_parents``): their sizes would add up to the parent's.
    """

    def sizes(column: str) -> list[dict[str, int]]:
        return [
            {str(g): int(n) for g, n in run.groupby(column, sort=True)["student_id"].nunique().items()}
            for run in runs
        ]

    already: set[str] = set()
    parents = parents_of(labels, attribute)
    pairs = labels[[attribute, *parents]].drop_duplicates()
    for parent in parents:
        hidden = withheld_groups(sizes(parent), margins_of(labels, parent), min_size=min_size)
        already |= groups_within(pairs, attribute, parent=parent, groups=hidden)
    return withheld_groups(
        sizes(attribute), margins_of(labels, attribute), min_size=min_size, already=already
    )


def parents_of(labels: pd.DataFrame, attribute: str) -> list[str]:
    """The two characteristics an intersection column ``"a x b"`` is made of; none for a characteristic."""
    parents = [p for p in attribute.split(" x ") if p != attribute and p in labels.columns]
    return parents if len(parents) == 2 else []


def groups_within(pairs: pd.DataFrame, attribute: str, *, parent: str, groups: AbstractSet[str]) -> set[str]:
    """The groups of the intersection ``attribute`` that lie within ``groups`` of its ``parent``.

    ``pairs``: the distinct rows of the intersection and its parents (taken once by the caller).
    """
    return set(pairs.loc[pairs[parent].astype(str).isin(groups), attribute].astype(str))
