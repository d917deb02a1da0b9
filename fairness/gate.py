"""The promotion gate: the policy's tolerances applied to the audit, check by check.

Each check compares every reported group of every single characteristic with its reference group
at the check's capacity, in every audited week. A group breaches when its interval lies wholly
outside the tolerance (or, with ``breach = "point_outside"``, when its point estimate does). A check
fails when any group breaches; it is inconclusive when none breaches but some group could not be
judged (too few students, no students who needed support, or an interval that straddles a bound
with the point outside); otherwise it passes. The gate fails when any check fails: such a model
cannot be promoted. Inconclusive checks do not block, but the committee sees each with its reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fairness.audit import AttributeAudit
from fairness.policy import Check, Policy

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one policy check."""

    check: Check
    status: str
    reasons: tuple[str, ...]

    @property
    def title(self) -> str:
        """E.g. ``false_negative_rate ratio within [0.8, 1.25] at 10% capacity``."""
        c = self.check
        return f"{c.metric} {c.kind} within [{c.low:g}, {c.high:g}] at {c.capacity:.0%} capacity"


def evaluate(audits: list[AttributeAudit], policy: Policy) -> tuple[str, list[CheckResult]]:
    """Gate status and the result of every check."""
    results = [_check(check, audits, policy.breach) for check in policy.checks]
    if any(r.status == FAIL for r in results):
        return FAIL, results
    return PASS, results


def _check(check: Check, audits: list[AttributeAudit], breach: str) -> CheckResult:
    failures, doubts = [], []
    relevant = [a for a in audits if a.capacity == check.capacity and not a.is_intersection]
    for audit in relevant:
        reference = audit.reference[check.metric]
        hidden = sum(g.suppressed for g in audit.groups)
        if hidden:
            # Never name a suppressed group: even its existence below the minimum size is a small cell.
            doubts.append(
                f"week {audit.week}, {audit.attribute}: {hidden} group(s) below the minimum size not judged"
            )
        for group in audit.groups:
            where = f"week {audit.week}, {audit.attribute} = {group.group}"
            if group.group == reference or group.suppressed:
                continue
            point, low, high = (group.ratios if check.kind == "ratio" else group.differences)[check.metric]
            verdict = _judge(point, low, high, check, breach)
            if verdict == FAIL:
                failures.append(
                    f"{where}: {check.kind} {point:.2f} (interval {low:.2f} to {high:.2f}) vs {reference}"
                )
            elif verdict == INCONCLUSIVE:
                doubts.append(
                    f"{where}: {check.kind} {_fmt(point)} "
                    f"(interval {_fmt(low)} to {_fmt(high)}): the interval straddles the tolerance"
                )
    if failures:
        return CheckResult(check, FAIL, tuple(failures))
    if doubts:
        return CheckResult(check, INCONCLUSIVE, tuple(doubts))
    if not relevant:
        return CheckResult(check, INCONCLUSIVE, ("no audited cohort at this capacity",))
    return CheckResult(check, PASS, ("every reported group is within the tolerance",))


def _judge(point: float, low: float, high: float, check: Check, breach: str) -> str:
    if math.isnan(point):
        return INCONCLUSIVE
    inside = check.low <= point <= check.high
    if breach == "point_outside":
        return PASS if inside else FAIL
    if math.isnan(low) or math.isnan(high):
        return PASS if inside else INCONCLUSIVE
    if high < check.low or low > check.high:
        return FAIL
    return PASS if inside else INCONCLUSIVE


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"
