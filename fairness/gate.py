"""The promotion gate: the policy's tolerances applied to the audit, check by check.

Each check compares every reported group of every single characteristic with its reference group
at the check's capacity, in every audited week. A group breaches when its interval lies wholly
outside the tolerance (or, with ``breach = "point_outside"``, when its point estimate does). A check
fails when any group breaches; it is inconclusive when none breaches but some interval straddles a
bound with the point outside (or cannot be computed). When the group's or the reference group's own
bootstrap interval for the metric is degenerate (every resample gave the same value: a false negative
rate of 1.0, interval [1.0, 1.0]), a rate of 0 or 1 is judged on its exact interval
(0 to about 3.7/n at 95%, n its denominator), too wide to decide for a handful of students; any
other flat value is not judged. A value withheld by disclosure control (a
group below the minimum size, or a rate whose denominator is) is never judged: the check is then
"not assessable (too few students)", which is neither a pass nor a failure, unless another group
fails it or is inconclusive. Otherwise the check passes. The gate fails when any check fails: such a
model cannot be promoted. Inconclusive and not-assessable checks do not block, but the committee
sees each with its reasons; when no group comparison of any check was confirmed within its
tolerance (its interval no wider than the policy's ``confirm_width`` times the tolerance's:
``CONFIRMED``), or none of a characteristic's (its groups
all too small to assess, say, as a university's Indigenous students were), the gate itself is
inconclusive: the model was shown neither fair nor unfair to those students, and only the committee's
stated override can accept that. A comparison of
the students with no record of a characteristic ("not recorded") counts as confirmed, but not as
confirming the characteristic: at an Australian institute, "Not stated" against "Neither" had stood
in for Indigenous students none of whose groups could be assessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from waymark.fairness.audit import NO_REFERENCE, NOT_RECORDED, AttributeAudit, GroupResult
from waymark.fairness.disclosure import (
    DENOMINATORS,
    STEPPED,
    TOO_FEW,
    published_comparison,
    rests_on,
    rounded_count,
)
from waymark.fairness.policy import Check, Policy

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
# A comparison within the tolerance whose interval is narrow enough to say so (``_judge``): confirmed.
# A point inside with a wide interval is no breach, but confirms nothing: a conservatoire's PASS had
# rested on calibration gaps of -0.26 to 0.08 against +-0.05, a German university's on a "divers"
# group's interval three times the tolerance's width.
CONFIRMED = "confirmed"
# A check that met a value withheld by disclosure control: neither a pass nor a failure.
NOT_ASSESSABLE = "not assessable"
# A comparison of the students with no record of a characteristic, found within the tolerance: a confirmed
# comparison, but not one that says anything of the characteristic's own groups.
WITHIN_NOT_RECORDED = "within (not recorded)"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one policy check."""

    check: Check
    status: str
    reasons: tuple[str, ...]
    confirmed: int = 0  # group comparisons found within the tolerance (some others may not be)
    confirmed_in: tuple[str, ...] = ()  # the characteristics with at least one of them

    @property
    def title(self) -> str:
        """E.g. ``false_negative_rate ratio within [0.8, 1.25] at 10% capacity``."""
        c = self.check
        return f"{c.metric} {c.kind} within [{c.low:g}, {c.high:g}] at {c.capacity:.0%} capacity"


def evaluate(audits: list[AttributeAudit], policy: Policy) -> tuple[str, list[CheckResult]]:
    """Gate status and the result of every check.

    Fail when any check fails. Otherwise inconclusive when no group comparison of any check was
    confirmed within its tolerance (as on a test set of a few small late-starting sections, or under
    a policy with no checks): nothing was shown to be wrong, and nothing was shown to be right either,
    so the committee approves such a model only with an override reason, as it would a failed one.
    Inconclusive too when a characteristic has no confirmed comparison in any check and week
    (``unconfirmed_characteristics``). Otherwise pass, each check's own status (inconclusive or not
    assessable ones included) shown with it.
    """
    results = [
        _check(
            check,
            audits,
            breach=policy.breach,
            width=policy.confirm_width,
            min_size=policy.min_group_size,
            confidence=policy.confidence,
            step=policy.count_rounding,
        )
        for check in policy.checks
    ]
    if any(r.status == FAIL for r in results):
        return FAIL, results
    if not any(r.confirmed for r in results) or unconfirmed_characteristics(audits, results):
        return INCONCLUSIVE, results
    return PASS, results


def unconfirmed_characteristics(audits: list[AttributeAudit], results: list[CheckResult]) -> list[str]:
    """The audited characteristics none of whose group comparisons any check confirmed, in audit order.

    A comparison of the "not recorded" group does not confirm its characteristic (``WITHIN_NOT_RECORDED``).
    """
    confirmed = {a for r in results for a in r.confirmed_in}
    audited = dict.fromkeys(a.attribute for a in audits if not a.is_intersection)
    return [a for a in audited if a not in confirmed] if results else []


def partly_confirmed_text(audits: list[AttributeAudit], results: list[CheckResult]) -> str:
    """Which checks confirmed each characteristic some but not all of them confirmed; "" when none.

    A nursing school's gate passed with its 97 men's miss rate and false positive rate withheld at
    every week: gender counted as confirmed on one calibration comparison, and nothing said so.
    """
    audited = dict.fromkeys(a.attribute for a in audits if not a.is_intersection)
    said = []
    for attribute in audited:
        by = list(dict.fromkeys(r.check.metric for r in results if attribute in r.confirmed_in))
        not_by = [m for m in dict.fromkeys(r.check.metric for r in results) if m not in by]
        if by and not_by:
            said.append(
                f"{attribute} by {' and '.join(dict.fromkeys(by))} only, not by "
                f"{' or '.join(dict.fromkeys(not_by))}"
            )
    if not said:
        return ""
    return (
        f"Confirmed in part: {'; '.join(said)} (no comparison of its groups in those checks was within "
        "the tolerance with an interval narrow enough: withheld, inconclusive or too wide). Read those "
        "checks' reasons before relying on the pass for those students."
    )


def inconclusive_text(unconfirmed: list[str], *, any_confirmed: bool) -> str:
    """Why a gate is inconclusive, in the committee's words (one text for the command, report and page)."""
    if not any_confirmed or not unconfirmed:
        return (
            "No check was broken, but none could be confirmed either: every check is inconclusive or could "
            "not be assessed. Nothing was shown to be wrong, and nothing to be right, so the committee can "
            "approve this model only with a stated override reason."
        )
    return (
        f"No check was broken, but no comparison of {', '.join(unconfirmed)} had its interval within a "
        "tolerance in any audited week (its groups too small to assess, or their intervals too wide to "
        "decide; students with nothing recorded do not count as one of its groups): the model was shown "
        "neither fair nor unfair to those students, so the committee can approve it only with a stated "
        "override reason. Where groups are too small alone, the data's own "
        "categories may be combined in the mapping (docs/fairness.md)."
    )


def _check(
    check: Check,
    audits: list[AttributeAudit],
    *,
    breach: str,
    width: float,
    min_size: int,
    confidence: float,
    step: int = 1,
) -> CheckResult:
    relevant = [a for a in audits if a.capacity == check.capacity and not a.is_intersection]
    per_audit = [
        (
            a.attribute,
            _assess_audit(
                a, check, breach=breach, width=width, min_size=min_size, confidence=confidence, step=step
            ),
        )
        for a in relevant
    ]
    findings = [f for _, found in per_audit for f in found]
    by_status = {s: tuple(r for v, r in findings if v == s) for s in (FAIL, INCONCLUSIVE, NOT_ASSESSABLE)}
    confirmed = sum(v in (CONFIRMED, WITHIN_NOT_RECORDED) for v, _ in findings)
    within = tuple(dict.fromkeys(a for a, found in per_audit if any(v == CONFIRMED for v, _ in found)))
    if by_status[FAIL]:
        return CheckResult(check, FAIL, by_status[FAIL], confirmed, within)
    if by_status[INCONCLUSIVE]:
        return CheckResult(
            check, INCONCLUSIVE, by_status[INCONCLUSIVE] + by_status[NOT_ASSESSABLE], confirmed, within
        )
    if by_status[NOT_ASSESSABLE]:
        return CheckResult(check, NOT_ASSESSABLE, by_status[NOT_ASSESSABLE], confirmed, within)
    if not relevant:
        return CheckResult(check, INCONCLUSIVE, ("no audited cohort at this capacity",))
    if not confirmed and findings:
        why = "each compared group is within the tolerance, but every interval is too wide to confirm it"
        return CheckResult(check, INCONCLUSIVE, (why,))
    if not confirmed:
        return CheckResult(check, INCONCLUSIVE, ("no group to compare with its reference group",))
    return CheckResult(check, PASS, ("every reported group is within the tolerance",), confirmed, within)


def _assess_audit(
    audit: AttributeAudit,
    check: Check,
    *,
    breach: str,
    width: float,
    min_size: int,
    confidence: float,
    step: int = 1,
) -> list[tuple[str, str]]:
    """(verdict, reason) for every group of one table: a pass too, counted as a confirmed comparison."""
    out = []
    reference = audit.reference[check.metric]
    small = sum(g.suppressed and g.students < min_size for g in audit.groups)
    beside = sum(g.suppressed and g.students >= min_size for g in audit.groups)
    if small or beside:
        # Never name a suppressed group: even its existence below the minimum size is a small cell.
        said = f"week {audit.week}, {audit.attribute}: {_groups(small + beside)} {TOO_FEW}"
        if beside:  # complementary suppression: a large group withheld so the small one is not worked out
            said += (
                f": {_groups(small)} below the minimum size, and {_groups(beside)} of more students withheld "
                "beside it, or subtracting the groups shown from all students would give the small one back"
            )
        out.append((NOT_ASSESSABLE, said))
    if reference == NO_REFERENCE:
        return [*out, (NOT_ASSESSABLE, _no_reference_reason(audit, check.metric, min_size=min_size))]
    base = next((g for g in audit.groups if g.group == reference), None)
    for group in audit.groups:
        if group.group == reference or group.suppressed:
            continue
        where = f"week {audit.week}, {audit.attribute} = {group.group}"
        flat = [g for g in (group, base) if g is not None and _degenerate(g, check.metric)]
        compared = group.ratios if check.kind == "ratio" else group.differences
        # A withheld comparison is said to be withheld, flat or not: a Dutch committee read that the
        # reference group of 555 students was too small to measure a rate withheld beside a group of 70.
        if not flat or check.metric not in compared:
            found = _assess_group(
                where, group, base=base, check=check, breach=breach, width=width, min_size=min_size, step=step
            )
        elif base is not None:
            found = [
                _assess_flat(
                    where,
                    group,
                    base=base,
                    flat=flat,
                    reference=reference,
                    check=check,
                    breach=breach,
                    width=width,
                    confidence=confidence,
                    step=step,
                )
            ]
        else:
            found = [
                (
                    INCONCLUSIVE,
                    _degenerate_reason(
                        where, check.metric, groups=[g.group for g in flat], reference=reference
                    ),
                )
            ]
        if NOT_RECORDED in (group.group, reference):  # says nothing of the characteristic's own groups
            found = [(WITHIN_NOT_RECORDED if v == CONFIRMED else v, r) for v, r in found]
        out += found
    return out


#: The counts a rate rests on (``disclosure.DENOMINATORS``), in the committee's words.
_COUNTED = {
    "students": "students",
    "positives": "students who needed support",
    "negatives": "students who did not need support",
    "listed": "students on the list",
    "unlisted": "students not on it",
    "selected": "students on the list",
}


def _no_reference_reason(audit: AttributeAudit, metric: str, *, min_size: int) -> str:
    """Why no group of ``audit`` could be a reference for ``metric``, however large its groups are.

    An institute's committee read "too few students" of a characteristic whose groups held 375 and 34
    students: the 34 held too few who needed support for their miss rate to be shown, and the 375's was
    withheld beside it, so that the week's recall less theirs would not give it back.
    """
    counts = list(dict.fromkeys(_COUNTED[c] for c in DENOMINATORS.get(metric, ("students",))))
    rests_on = ", ".join(counts[:-1]) + f" or {counts[-1]}" if len(counts) > 1 else counts[0]
    return (
        f"week {audit.week}, {audit.attribute}: no group's {metric} can be shown, so there is no reference "
        f"group to compare with: {TOO_FEW} (a group with fewer than {min_size} {rests_on} has it "
        "withheld, and so does the smallest group beside it, or the week's overall figure less the groups "
        "shown would give it back)"
    )


#: The rates a degenerate interval can be widened for: what each is a share of (``_exact_interval``).
RATE_OF = {
    "false_negative_rate": "positives",
    "false_positive_rate": "negatives",
    "selection_rate": "students",
}


def _exact_interval(group: GroupResult, metric: str, *, confidence: float) -> tuple[float, float] | None:
    """An interval for a rate every resample gave as 0 (or 1), n its denominator: 0 to b (or 1 - b to 1).

    b = 1 - ((1 - confidence) / 2) ** (1 / n), the exact (Clopper-Pearson) bound for none of n counted,
    at the policy's confidence (about 3.7 / n at 95%, the "rule of three" made two-sided). A group of
    a handful gets an interval too wide to judge; a group of a hundred one that says something. None
    for a metric that is not a rate of a count, or a flat value strictly between 0 and 1.
    """
    of = RATE_OF.get(metric)
    if of is None or (of != "students" and group.positives is None):
        return None
    positives = group.positives or 0
    n = {"students": group.students, "positives": positives, "negatives": group.students - positives}[of]
    point = group.metrics[metric][0]
    if n <= 0 or math.isnan(point):
        return None
    bound = 1 - ((1 - confidence) / 2) ** (1 / n)
    if point <= 0:
        return 0.0, bound
    if point >= 1:
        return 1 - bound, 1.0
    return None


def _assess_flat(
    where: str,
    group: GroupResult,
    *,
    base: GroupResult,
    flat: list[GroupResult],
    reference: str,
    check: Check,
    breach: str,
    width: float,
    confidence: float,
    step: int = 1,
) -> tuple[str, str]:
    """A comparison in which a side's resamples all gave one rate: judged on its exact interval.

    Not judged (inconclusive) when that interval cannot be formed, or is too wide to decide.
    """
    sides = []
    for side in (group, base):
        degenerate = any(side is g for g in flat)
        widened = (
            _exact_interval(side, check.metric, confidence=confidence)
            if degenerate
            else side.metrics[check.metric][1:]
        )
        if widened is None:
            return INCONCLUSIVE, _degenerate_reason(
                where, check.metric, groups=[g.group for g in flat], reference=reference
            )
        sides.append(widened)
    (g_low, g_high), (r_low, r_high) = sides
    point = (group.ratios if check.kind == "ratio" else group.differences)[check.metric][0]
    if check.kind == "difference":
        low, high = g_low - r_high, g_high - r_low
    elif r_low > 0:
        low, high = g_low / r_high, g_high / r_low
    else:
        return INCONCLUSIVE, _degenerate_reason(
            where, check.metric, groups=[g.group for g in flat], reference=reference
        )
    verdict = _judge(point, low=low, high=high, check=check, breach=breach, width=width)
    (point, low, high), note = _as_published(
        (point, low, high), check=check, group=group, base=base, step=step
    )
    whose = _whose([g.group for g in flat], reference=reference)
    said = (
        f"{where}: {check.metric} of {whose} has a degenerate interval (every resample gave the same value); "
        f"with the exact interval for its rate, the {check.kind} is {_fmt(point)} (interval {_fmt(low)} "
        f"to {_fmt(high)}) vs {reference}{note}"
    )
    if verdict == INCONCLUSIVE:
        return INCONCLUSIVE, f"{said}: too few students to decide, not judged"
    return verdict, said


def _groups(n: int) -> str:
    return "1 group" if n == 1 else f"{n} groups"


def _degenerate(group: GroupResult, metric: str) -> bool:
    """True when every bootstrap resample gave the group the same value of ``metric``."""
    value = group.metrics.get(metric)
    return value is not None and not math.isnan(value[1]) and value[1] == value[2]


def _whose(groups: list[str], *, reference: str) -> str:
    return " and ".join(f"the reference group {g}" if g == reference else g for g in groups)


def _degenerate_reason(where: str, metric: str, *, groups: list[str], reference: str) -> str:
    """Why a comparison is not judged, naming which side's interval is degenerate.

    A conservatoire's committee read "ethnicity = 10: ... of 31 has a degenerate interval ..., so the
    group is too small" of its 170 students, when group 31 was the reference.
    """
    whose = _whose(groups, reference=reference)
    which = "that group is" if len(groups) == 1 else "those groups are"
    return (
        f"{where}: {metric} of {whose} has a degenerate interval (every resample gave the same value), "
        f"so {which} too small to measure this: not judged"
    )


def _assess_group(
    where: str,
    group: GroupResult,
    *,
    base: GroupResult | None,
    check: Check,
    breach: str,
    width: float,
    min_size: int,
    step: int = 1,
) -> list[tuple[str, str]]:
    reference = base.group if base is not None else "the reference group"
    compared = group.ratios if check.kind == "ratio" else group.differences
    if check.metric not in compared:
        # Disclosure control withheld the value: it is neither a pass nor a breach.
        return [
            (
                NOT_ASSESSABLE,
                _withheld_reason(where, check.metric, group=group, base=base, min_size=min_size, step=step),
            )
        ]
    point, low, high = compared[check.metric]
    verdict = _judge(point, low=low, high=high, check=check, breach=breach, width=width)
    (point, low, high), note = _as_published(
        (point, low, high), check=check, group=group, base=base, step=step
    )
    if verdict == FAIL:
        return [
            (
                FAIL,
                f"{where}: {check.kind} {_fmt(point)} (interval {_fmt(low)} to {_fmt(high)}) "
                f"vs {reference}{note}",
            )
        ]
    if verdict == INCONCLUSIVE:
        interval = f"(interval {_fmt(low)} to {_fmt(high)})"
        return [
            (
                INCONCLUSIVE,
                f"{where}: {check.kind} {_fmt(point)} {interval}: the interval straddles the tolerance{note}",
            )
        ]
    return [(verdict, where)]


def _withheld_reason(
    where: str, metric: str, *, group: GroupResult, base: GroupResult | None, min_size: int, step: int = 1
) -> str:
    """Why one group's comparison is not shown, as far as its own published counts tell.

    A polytechnic's committee read "gender = Woman: false_negative_rate not assessable (too few
    students)" of 800 students, 400 of whom needed support: her miss rate was withheld beside the
    non-binary group of 20, so that the week's figure less the groups shown would not give theirs back.
    Counts are said as the tables publish them, rounded to the policy's ``step``: an art school's exact
    "24 students" beside the tables' 25, then 23 at the next week, told that one student who left was
    autistic.
    """
    if metric not in group.withheld and base is not None and metric in base.withheld:
        return f"{where}: {metric} not assessable (the reference group {base.group}'s is withheld)"
    counts = _known_counts(group)
    needs = DENOMINATORS.get(metric, ("students",))
    if any(counts.get(c, min_size) < min_size for c in needs):
        return f"{where}: {metric} {TOO_FEW}"
    beside = (
        "beside a smaller group (so that the week's figure less the groups shown does not give the smaller "
        "one's back)"
    )
    if all(c in counts for c in needs):
        return (
            f"{where}: {metric} not assessable: withheld, though the group has "
            f"{_about(group.students, step)} students, " + beside
        )
    held = f"{_about(group.students, step)} students" + (
        f", {_about(group.positives, step)} of whom needed support" if group.positives is not None else ""
    )
    unknown = list(dict.fromkeys(_COUNTED[c] for c in needs if c not in counts))
    which = ", ".join(unknown[:-1]) + f" or {unknown[-1]}" if len(unknown) > 1 else unknown[0]
    return (
        f"{where}: {metric} not assessable: withheld, though the group has {held}: either it has fewer "
        f"than {min_size} {which}, or the figure is held back {beside}"
    )


def _about(n: int, step: int) -> str:
    """A count as the tables publish it: rounded to ``step``, and said to be so."""
    return str(n) if step <= 1 else f"about {rounded_count(n, step)}"


def _known_counts(group: GroupResult) -> dict[str, int]:
    """The counts a group's published figures give exactly: its students, and those who needed support.

    Not those who did not, nor those on the list: a student with two registrations can be on both sides
    of either, so neither follows from the others (and the selection rate is over registrations).
    """
    out = {"students": group.students}
    if group.positives is not None:
        out["positives"] = group.positives
    return out


def _judge(point: float, *, low: float, high: float, check: Check, breach: str, width: float) -> str:
    """FAIL, INCONCLUSIVE, PASS (within, confirming nothing) or CONFIRMED for one comparison.

    Confirmed: the point inside the tolerance and the interval no wider than ``width`` times the
    tolerance's own width (the policy's ``gate.confirm_width``): narrow enough that the point says
    something. Wider, the point inside is no breach but no evidence either.
    """
    if math.isnan(point):
        return INCONCLUSIVE
    inside = check.low <= point <= check.high
    precise = not (math.isnan(low) or math.isnan(high)) and high - low <= width * (check.high - check.low)
    if breach == "point_outside":
        return FAIL if not inside else CONFIRMED if precise else PASS
    if math.isnan(low) or math.isnan(high):
        return PASS if inside else INCONCLUSIVE
    if high < check.low or low > check.high:
        return FAIL
    if not inside:
        return INCONCLUSIVE
    return CONFIRMED if precise else PASS


def _as_published(
    values: tuple[float, float, float],
    *,
    check: Check,
    group: GroupResult,
    base: GroupResult | None,
    step: int,
) -> tuple[tuple[float, float, float], str]:
    """A comparison judged on its measured figures, said as the report publishes them; and a note.

    A share of students is given to no finer a step than its rounded counts allow
    (``fairness.disclosure.published_comparison``), in the gate's reasons as in the report. Where that
    step is coarser than the two decimals the reason prints, the note says so: a difference published
    as 0.05 can have failed a tolerance of 0.05.
    """
    if check.metric not in STEPPED or step <= 1:
        return values, ""

    def side(g: GroupResult) -> tuple[float, int]:
        value = g.metrics[check.metric][0] if check.metric in g.metrics else math.nan
        return value, rests_on(
            check.metric, students=g.students, positives=g.positives, selected=g.selected, step=step
        )

    mine = side(group)
    published, grid = published_comparison(
        check.kind, values, group=mine, reference=mine if base is None else side(base), step=step
    )
    point, low, high = (_or_nan(v) for v in published)
    if grid is None:
        note = " (not published: the reference group's rate is too small to give a ratio of it safely)"
    elif grid > 0.01:
        why = "for few students" if check.kind == "difference" else "beside the reference group's rate"
        note = f" (as the report publishes it, on a step of {grid:g} {why}; judged on the measured figures)"
    else:
        note = ""
    return (point, low, high), note


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"
