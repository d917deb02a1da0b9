"""The fairness audit of scored test cohorts, by protected characteristic and pairwise intersection.

For each audited week and outreach capacity, and for each characteristic (and pair), it measures
every group: size, selection rate, false negative rate (needed support and was missed), false
positive rate, precision, AUC, calibration error, ABROCA against the reference group, and the
difference and ratio of each metric against the reference, each with a bootstrap confidence
interval. Students are resampled, not rows (a student on two modules is drawn once, with both rows),
and the same resamples serve every characteristic.

A missing value is its own group, "not recorded" (Fairlearn refuses missing values, and leaving
them out would hide exactly the students whose data is least complete). Disclosure control is
applied here, by the rules of ``fairness.disclosure``: a group with fewer students than the
policy's minimum is marked suppressed and gets no figures at all; in the other groups, a rate whose
denominator (students who needed support, who did not, who were selected, ...) is under the
minimum is withheld, and so are the differences and ratios computed from it. Then, as monitoring
does, complementary suppression (``withheld_groups``): the week's own figures (recall at capacity
in the model card, a parent group's row for an intersection) less the groups shown would give a
lone withheld group back, so the smallest shown group beside it is withheld too, group by group
and rate by rate. Nothing downstream (gate, report, model card) ever holds a withheld value.
"""

from __future__ import annotations

import functools
import itertools
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from waymark.fairness.disclosure import (
    DENOMINATORS,
    NONE_IS_SAFE,
    SELECTION_COUNTS,
    enough_students,
    groups_within,
    margins_of,
    parents_of,
    withheld_groups,
)
from waymark.fairness.metrics import (
    METRICS,
    Cohort,
    area_between,
    bootstrap_draws,
    counts_by_row,
    reliability_by_group,
    roc_on_grid,
)
from waymark.fairness.policy import Policy
from waymark.models import threads
from waymark.models.capacity import top_share
from waymark.models.data import ProtectedFrame

NOT_RECORDED = "not recorded"
NO_REFERENCE = (
    "none (every group's figure is withheld: too few students in it, or beside a group with too few)"
)
Interval = tuple[float, float, float]  # point, low, high
# What disclosure control may withhold.
WITHHELD_CAN_BE = (*METRICS, "abroca", "reliability", "needed_support")


@dataclass(frozen=True)
class GroupResult:
    """One group's figures: none when suppressed, and none of the ``withheld`` metrics.

    ``metrics``, ``differences`` and ``ratios`` hold only what disclosure control lets through;
    ``withheld`` names every metric (and ``abroca``) left out for too few students.
    """

    group: str
    students: int
    suppressed: bool
    positives: int | None = None
    selected: int | None = None  # students on the list: never published, it sets precision's step
    metrics: dict[str, Interval] = field(default_factory=dict)
    differences: dict[str, Interval] = field(default_factory=dict)
    ratios: dict[str, Interval] = field(default_factory=dict)
    abroca: float | None = None
    reliability: list[tuple[float, float, int]] = field(default_factory=list)
    withheld: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttributeAudit:
    """All groups of one characteristic (or pair) at one week and capacity."""

    attribute: str
    week: int
    capacity: float
    reference: dict[str, str]  # metric -> reference group
    groups: tuple[GroupResult, ...]

    @property
    def is_intersection(self) -> bool:
        """True for a pair of characteristics."""
        return " x " in self.attribute


def group_labels(protected: ProtectedFrame, *, intersections: bool) -> pd.DataFrame:
    """Group of each student under each characteristic and, optionally, each pair."""
    frame = protected.for_audit().set_index("student_id")
    labels = frame.astype("object").where(frame.notna(), NOT_RECORDED).astype(str)
    if intersections:
        for a, b in itertools.combinations(protected.attributes, 2):
            labels[f"{a} x {b}"] = a + "=" + labels[a] + " & " + b + "=" + labels[b]
    return labels


def audit_cohorts(scored: pd.DataFrame, labels: pd.DataFrame, *, policy: Policy) -> list[AttributeAudit]:
    """Audit every week, capacity and characteristic of the policy.

    Each week's resamples are drawn once (students, with replacement; the generator seeded by the
    policy and used week by week in order) and serve every characteristic and capacity. Each
    characteristic's sums for all resamples and capacities come from one pass
    (``fairness.resampling``); characteristics run side by side, one per thread, on as many
    threads as the process may use (``models.threads.cores()``), with BLAS and numba capped to the
    same number. The kernel releases the GIL and nothing waits by spinning.

    Parameters
    ----------
    scored
        Test cohort rows: student_id, week, label (1 = needed support), probability.
    labels
        Output of ``group_labels``, indexed by student_id.
    policy
        The fairness policy.

    Returns
    -------
    list of AttributeAudit
        Week by week in the policy's order, then characteristic by characteristic, then capacity.
    """
    rng = np.random.default_rng(policy.seed)
    weeks = []
    for week in policy.weeks:
        rows = scored[scored["week"] == week].reset_index(drop=True)
        if rows.empty:
            continue
        # Students are drawn, not rows: a student on several modules brings all their rows into a
        # resample, as often as they are drawn (rows of one student are not independent).
        # Column 0 is the point estimate; each row's counts in every resample are one row.
        students = pd.factorize(rows["student_id"])[0]
        n = int(students.max()) + 1
        counts = counts_by_row(bootstrap_draws(n, policy.bootstrap_resamples, rng=rng), n)[students]
        weeks.append(
            _Week(
                week,
                rows,
                counts,
                joined=labels.reindex(rows["student_id"]).fillna(NOT_RECORDED).reset_index(drop=True),
                students=students,
                chosen={c: top_share(rows["probability"].to_numpy(), c) for c in policy.capacities},
            )
        )
    jobs = [(w, attribute) for w in weeks for attribute in labels.columns]
    with threads.capped() as n, ThreadPoolExecutor(max_workers=n) as pool:
        tables = pool.map(lambda job: _audit_attribute(job[0], job[1], policy=policy), jobs)
        return [audit for table in tables for audit in table]


@dataclass(frozen=True, eq=False)
class _Week:
    """One audited week: its rows, their resample counts (n x 1 + B), and each row's groups."""

    week: int
    rows: pd.DataFrame
    counts: np.ndarray
    joined: pd.DataFrame  # each row's group under every characteristic and pair
    students: np.ndarray  # each row's student as a code (a student may have several registrations)
    chosen: dict[float, np.ndarray]  # the outreach list at each capacity


def _audit_attribute(week: _Week, attribute: str, *, policy: Policy) -> list[AttributeAudit]:
    # Here, not at the top (nor SciPy's statistics below): the gate, which every governance decision
    # reads, imports this module, and the two took about a second of `waymark model promote`'s 4.5 s.
    from waymark.fairness.resampling import resampled_sums

    rows = week.rows
    codes, names = pd.factorize(week.joined[attribute], sort=True)
    totals = margins_of(week.joined, attribute)
    label, probability = rows["label"].to_numpy(), rows["probability"].to_numpy()
    chosen = week.chosen
    if not chosen:
        return []
    sums = resampled_sums(
        label,
        probability,
        selections=list(chosen.values()),
        codes=codes,
        n_groups=len(names),
        counts=week.counts,
    )
    # Metrics that do not depend on the capacity are computed once per week.
    ranking = {name: m.compute(sums[0]) for name, m in METRICS.items() if not m.uses_selection}
    base = Cohort(
        label=label,
        probability=probability,
        selected=np.zeros(len(rows), dtype=bool),
        codes=codes,
        n_groups=len(names),
    )
    bins = reliability_by_group(base, students=week.students)
    curves = _Curves(base)
    out = []
    for (capacity, selected), at_capacity in zip(chosen.items(), sums, strict=True):
        cohort = Cohort(
            label=label, probability=probability, selected=selected, codes=codes, n_groups=len(names)
        )
        counts = _counts(week.students, cohort)
        inherited = _withheld_in_parents(week, attribute, selected=selected, min_size=policy.min_group_size)
        named, shown = _shown(
            counts, names, totals=totals, min_size=policy.min_group_size, inherited=inherited
        )
        values = {
            name: m.compute(at_capacity) if m.uses_selection else ranking[name] for name, m in METRICS.items()
        }
        reference = _reference(
            values, names, students=counts["students"], shown=shown, strategy=policy.reference
        )
        intervals = _all_intervals(values, reference, confidence=policy.confidence)
        _widen_calibration_gaps(
            intervals,
            counts,
            reference=reference["calibration_gap"],
            confidence=policy.confidence,
            min_size=policy.min_group_size,
        )
        frame = _Frame(names, counts, named, shown, reference, intervals, curves, bins, policy.min_group_size)
        out.append(
            AttributeAudit(
                attribute=attribute,
                week=week.week,
                capacity=capacity,
                # A reference is always a group whose figure is shown; without one there is none.
                reference={m: NO_REFERENCE if i is None else str(names[i]) for m, i in reference.items()},
                groups=tuple(_group(g, frame) for g in range(len(names))),
            )
        )
    return out


class _Curves:
    """Each group's ROC curve on ABROCA's grid, computed once and shared by every capacity."""

    def __init__(self, cohort: Cohort) -> None:
        self.cohort = cohort
        self._curves: dict[int, np.ndarray] = {}

    def curve(self, g: int) -> np.ndarray:
        if g not in self._curves:
            rows = self.cohort.codes == g
            self._curves[g] = roc_on_grid(self.cohort.probability[rows], self.cohort.label[rows])
        return self._curves[g]

    def abroca(self, g: int, *, reference: int) -> float:
        """Absolute area between the ROC curves of group ``g`` and the ``reference`` group."""
        return area_between(self.curve(g), self.curve(reference))


@dataclass(frozen=True)
class _Frame:
    """What one characteristic's groups share at one week and capacity."""

    names: pd.Index
    counts: dict[str, np.ndarray]
    named: np.ndarray  # may the group be named at all
    shown: dict[str, np.ndarray]  # metric -> may the group's value be published (disclosure rules)
    reference: dict[str, int | None]
    intervals: dict[str, dict[str, np.ndarray]]
    curves: _Curves
    reliability: tuple[np.ndarray, np.ndarray, np.ndarray]
    min_size: int


def _counts(students: np.ndarray, cohort: Cohort) -> dict[str, np.ndarray]:
    """Distinct students by group in each count a published rate can rest on.

    ``students`` codes each row's student (0..n_students-1); a student with two registrations in
    the week counts once in a group.
    """
    y, s = cohort.label.astype(bool), cohort.selected.astype(bool)
    masks = {
        "students": np.ones(len(y), dtype=bool),
        "positives": y,
        "negatives": ~y,
        "selected": s,
        "listed": s,
        "unlisted": ~s,
    }
    n_students = int(students.max(initial=-1)) + 1
    out = {}
    for name, mask in masks.items():
        pairs = np.unique(cohort.codes[mask].astype(np.int64) * n_students + students[mask])
        out[name] = np.bincount(pairs // max(n_students, 1), minlength=cohort.n_groups)
    return out


def _shown(
    counts: dict[str, np.ndarray],
    names: pd.Index,
    *,
    totals: list[list[str]],
    min_size: int,
    inherited: dict[str, frozenset[str]] | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The groups that may be named, and for every published metric those whose value may be shown.

    Each count a figure rests on is one "run" of ``withheld_groups``: a group is withheld where any
    is under ``min_size`` (``fairness.disclosure.allowed``), and then in every total of ``totals``
    (``margins_of``) a lone withheld group takes the smallest shown one beside it. ``inherited``
    names, per metric, groups withheld from the start (``_withheld_in_parents``).
    """
    keys = [str(n) for n in names]

    @functools.cache  # metrics resting on the same counts (AUC and ABROCA, ...) share one pass
    def kept(kinds: tuple[str, ...], already: frozenset[str] = frozenset()) -> np.ndarray:
        runs = [{k: int(n) for k, n in zip(keys, counts[kind], strict=True)} for kind in kinds]
        # none on the list is safe only beside a published selection rate (fairness.disclosure)
        safe = [selecting if kind in NONE_IS_SAFE else frozenset() for kind in kinds]
        hidden = withheld_groups(runs, totals, min_size=min_size, none_is_safe=safe, already=already)
        return np.array([k not in hidden for k in keys], dtype=bool)

    given = {m: set(groups) for m, groups in (inherited or {}).items()}
    named = kept(("students",), frozenset(given.get("students", ())))
    selecting = frozenset(
        k
        for k, ok in zip(
            keys, named & kept(SELECTION_COUNTS, frozenset(given.get("selection_rate", ()))), strict=True
        )
        if ok
    )
    while True:
        shown = {m: named & kept(DENOMINATORS[m], frozenset(given.get(m, ()))) for m in WITHHELD_CAN_BE}
        more = _given_back(shown, keys, named=named, counts=counts)
        if not more:
            return named, shown
        for metric, groups in more.items():
            given[metric] = given.get(metric, set()) | groups


#: A group's confusion matrix has three degrees of freedom, so any three of these rates give the rest
#: exactly (the calibration gap and reliability bands give the share who needed support roughly):
#: a selection rate withheld beside a small group was worked back exactly (0.1887) from the false
#: negative and false positive rates and the precision published for the same group (a US university's
#: veterans not recorded, withheld beside 25 on active duty). Where any is withheld, two at most are
#: shown: the first in this order.
LINKED_RATES = ("false_negative_rate", "selection_rate", "false_positive_rate", "precision", "needed_support")


#: The count a linked rate divides by: with none, the rate has no value to give back.
_DIVIDES_BY = {
    "false_negative_rate": "positives",
    "false_positive_rate": "negatives",
    "precision": "selected",
}


def _given_back(
    shown: dict[str, np.ndarray], keys: list[str], *, named: np.ndarray, counts: dict[str, np.ndarray]
) -> dict[str, set[str]]:
    """Per metric, the named groups whose shown linked rates would give back one withheld beside them."""
    more: dict[str, set[str]] = {}
    for i, key in enumerate(keys):
        showing = [m for m in LINKED_RATES if shown[m][i]]
        withheld = [
            m for m in LINKED_RATES if not shown[m][i] and (m not in _DIVIDES_BY or counts[_DIVIDES_BY[m]][i])
        ]
        if named[i] and withheld and len(showing) > 2:
            for metric in showing[2:]:
                more.setdefault(metric, set()).add(key)
    return more


def _withheld_in_parents(
    week: _Week, attribute: str, *, selected: np.ndarray, min_size: int
) -> dict[str, frozenset[str]]:
    """Per metric (and ``students``: not named), an intersection's groups whose parent's table withholds it.

    An intersection's groups within a parent group add up to that group: where the parent's table
    withholds a figure (a group too small, or the complement beside one), its groups here showing it
    would give it back. All exchange students of a Korean university had no recorded disability, so
    "exchange & none" published the selection rate the admission-track table withheld as the complement
    of a rural-admission group of about 50, whose count then followed by subtraction. Such a figure is
    withheld in every group of that parent here, and complementary suppression goes on from there.
    """
    parents = parents_of(week.joined, attribute)
    if not parents:
        return {}
    label, probability = week.rows["label"].to_numpy(), week.rows["probability"].to_numpy()
    pairs = week.joined[[attribute, *parents]].drop_duplicates()
    out: dict[str, set[str]] = {m: set() for m in ("students", *WITHHELD_CAN_BE)}
    for parent in parents:
        codes, names = pd.factorize(week.joined[parent], sort=True)
        cohort = Cohort(
            label=label, probability=probability, selected=selected, codes=codes, n_groups=len(names)
        )
        named, shown = _shown(
            _counts(week.students, cohort), names, totals=margins_of(week.joined, parent), min_size=min_size
        )
        # a parent group not named at all (its size withheld beside a small one) names no group here:
        # its groups' sizes would add up to it
        for metric, ok in {"students": named, **shown}.items():
            withheld = {str(n) for n, keep in zip(names, ok & named, strict=True) if not keep}
            out[metric] |= groups_within(pairs, attribute, parent=parent, groups=withheld)
    return {m: frozenset(groups) for m, groups in out.items()}


def _group(g: int, frame: _Frame) -> GroupResult:
    name, counts = str(frame.names[g]), frame.counts
    if not frame.named[g]:
        return GroupResult(name, int(counts["students"][g]), True, withheld=WITHHELD_CAN_BE)
    # A precision of a group nobody of which was selected has nothing to divide by: not shown, though
    # its none, beside the published selection rate of 0, withholds nothing beside it (NONE_IS_SAFE).
    shown = {**frame.shown}
    if "precision" in shown and math.isnan(frame.intervals["value"]["precision"][0, g]):
        shown["precision"] = shown["precision"].copy()
        shown["precision"][g] = False
    # A difference or ratio is shown only when both the group's and the reference's values are.
    compared = [m for m in METRICS if shown[m][g] and frame.reference[m] is not None]
    ref_auc = frame.reference["auc"]
    with_abroca = bool(shown["abroca"][g]) and ref_auc is not None
    return GroupResult(
        name,
        int(counts["students"][g]),
        False,
        int(counts["positives"][g]) if shown["needed_support"][g] else None,
        int(counts["selected"][g]),
        metrics={m: _column(frame.intervals["value"][m], g) for m in METRICS if shown[m][g]},
        differences={m: _column(frame.intervals["difference"][m], g) for m in compared},
        ratios={m: _column(frame.intervals["ratio"][m], g) for m in compared},
        abroca=frame.curves.abroca(g, reference=ref_auc) if with_abroca and ref_auc is not None else None,
        reliability=_reliability(frame, g),
        withheld=tuple(m for m in WITHHELD_CAN_BE if not shown[m][g]),
    )


def _reliability(frame: _Frame, g: int) -> list[tuple[float, float, int]]:
    """Bands of indicator values with enough students to show their observed rate."""
    if not frame.shown["reliability"][g]:
        return []
    predicted, observed, sizes = frame.reliability
    return [
        (float(p), float(o), int(n))
        for p, o, n in zip(predicted[g], observed[g], sizes[g], strict=True)
        if enough_students(int(n), frame.min_size)
    ]


def _reference(
    values: dict[str, np.ndarray],
    names: pd.Index,
    *,
    students: np.ndarray,
    shown: dict[str, np.ndarray],
    strategy: str,
) -> dict[str, int | None]:
    """The reference group of each metric, always one whose value of that metric is shown.

    Never the students with nothing recorded while another group is shown: compared with them, a group
    is compared with no group of the characteristic (where most of a characteristic is not recorded,
    "Neither" against "not recorded" had confirmed it at the gate).
    """
    out: dict[str, int | None] = {}
    named = np.array([str(n) != NOT_RECORDED for n in names], dtype=bool)
    for m in METRICS:
        ok = shown[m] & named if (shown[m] & named).any() else shown[m]
        largest = int(np.argmax(np.where(ok, students, -1))) if ok.any() else None
        if largest is None:
            out[m] = None
        elif strategy.startswith("group:"):
            wanted = strategy.removeprefix("group:")
            hits = [i for i, n in enumerate(names) if str(n) == wanted and ok[i]]
            out[m] = hits[0] if hits else largest
        elif strategy == "best":
            point = np.where(ok, values[m][0], np.nan)
            out[m] = largest if np.all(np.isnan(point)) else METRICS[m].direction.best(point)
        else:
            out[m] = largest
    return out


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    return out


def _all_intervals(
    values: dict[str, np.ndarray], reference: dict[str, int | None], *, confidence: float
) -> dict[str, dict[str, np.ndarray]]:
    """(3 x groups) arrays of point, low, high for every metric and its difference and ratio."""
    out: dict[str, dict[str, np.ndarray]] = {"value": {}, "difference": {}, "ratio": {}}
    for m in METRICS:
        # Without a reference the comparisons are withheld; any column serves as a placeholder.
        ref = values[m][:, [reference[m] or 0]]
        out["value"][m] = _intervals(values[m], confidence)
        out["difference"][m] = _intervals(values[m] - ref, confidence)
        out["ratio"][m] = _intervals(_safe_ratio(values[m], ref), confidence)
    return out


def _widen_calibration_gaps(
    intervals: dict[str, dict[str, np.ndarray]],
    counts: dict[str, np.ndarray],
    *,
    reference: int | None,
    confidence: float,
    min_size: int,
) -> None:
    """Widen the calibration gap's intervals of groups with few students who needed support (or few not).

    Every resample of a group in which nobody (or everybody) needed support observes a rate of 0 (or 1),
    so its bootstrap interval holds the spread of the estimates alone, as if the outcome could not have
    been otherwise: 20 students of whom none left read as clearly overestimated (a college's audit
    failed on two such groups). With one or a few, the resamples hold only as many outcomes as were
    seen: 12 Aboriginal students with one non-completion in 18 enrolments read as a gap of 0.12
    (interval 0.06 to 0.20) and failed an Australian university's gate. Where either count is under the
    policy's minimum group size, the observed rate k / n is given its exact (Clopper-Pearson) interval
    instead, as the gate does for flat rates (``gate._exact_interval``): the gap (estimate less observed)
    can be lower by as much as the rate could be higher, and higher by as much as it could be lower, and
    so can a difference against the group, or against a reference group with few. The interval kept is
    the wider of that and the resamples' own.
    """
    from scipy import stats  # here, not at the top: see ``_audit_attribute``

    n = np.maximum(counts["students"], 1).astype(float)
    k = np.clip(counts["positives"].astype(float), 0, n)
    tail = (1 - confidence) / 2
    upper = np.where(k >= n, 1.0, stats.beta.ppf(1 - tail, k + 1, np.maximum(n - k, 1e-9)))
    lower = np.where(k <= 0, 0.0, stats.beta.ppf(tail, np.maximum(k, 1e-9), n - k + 1))
    few = (counts["positives"] < min_size) | (counts["negatives"] < min_size)
    rate = k / n
    down = np.where(few, upper - rate, 0.0)  # the observed rate could have been this much higher
    up = np.where(few, rate - lower, 0.0)  # ... or this much lower
    # The wider of the resamples' interval and the exact one about the point: the resamples already hold
    # some of the outcome's chance, so the two are not added (60 students, 9 who needed support, had
    # read -0.20 to 0.16 where each alone gave about -0.09 to 0.08).
    value, difference = intervals["value"]["calibration_gap"], intervals["difference"]["calibration_gap"]
    value[1] = np.where(few, np.fmin(value[1], value[0] - down), value[1])
    value[2] = np.where(few, np.fmax(value[2], value[0] + up), value[2])
    if reference is None:  # no difference is published
        return
    # The difference is the group's gap less the reference's (the reference's own stays as it is).
    others = np.arange(len(n)) != reference
    widened = others & (few | few[reference])
    below, above = difference[0] - (down + up[reference]), difference[0] + (up + down[reference])
    difference[1] = np.where(widened, np.fmin(difference[1], below), difference[1])
    difference[2] = np.where(widened, np.fmax(difference[2], above), difference[2])
    # A ratio of two signed gaps has no such bound: its interval is left undefined where either side
    # was widened (a check on it is then never failed on the estimates alone).
    ratio = intervals["ratio"]["calibration_gap"]
    ratio[1:, widened] = np.nan


def _intervals(samples: np.ndarray, confidence: float) -> np.ndarray:
    """Point estimates (row 0) and percentile intervals of the resamples (rows 1..), for every column.

    An interval is left undefined when the point is, or when more than half the resamples are
    (a group with almost no students who needed support, say).
    """
    point, boot = samples[0], samples[1:]
    tail = (1 - confidence) / 2
    low, high = _nan_quantile(boot, tail), _nan_quantile(boot, 1 - tail)
    enough = np.isfinite(point) & (np.isnan(boot).mean(axis=0) <= 0.5)
    return np.vstack([point, np.where(enough, low, np.nan), np.where(enough, high, np.nan)])


def _nan_quantile(values: np.ndarray, q: float) -> np.ndarray:
    """Column quantiles ignoring NaN, linear interpolation (as np.nanquantile), in one vector pass."""
    ordered = np.sort(values, axis=0)  # NaN sort last
    valid = (~np.isnan(values)).sum(axis=0)
    position = q * np.maximum(valid - 1, 0)
    below = np.floor(position).astype(int)
    above = np.minimum(below + 1, np.maximum(valid - 1, 0))
    lo = np.take_along_axis(ordered, below[None, :], axis=0)[0]
    hi = np.take_along_axis(ordered, above[None, :], axis=0)[0]
    out: np.ndarray = np.where(valid > 0, lo + (hi - lo) * (position - below), np.nan)
    return out


def _column(intervals: np.ndarray, g: int) -> Interval:
    return (float(intervals[0, g]), float(intervals[1, g]), float(intervals[2, g]))
