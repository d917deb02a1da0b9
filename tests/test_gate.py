"""The gate on small groups: a degenerate interval makes a check inconclusive, never failed (issue #14)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape

from tests.model_stub import stub_outcome
from waymark.cli.fairness import _show, voided_note
from waymark.fairness.audit import AttributeAudit, GroupResult, audit_cohorts, group_labels
from waymark.fairness.gate import INCONCLUSIVE, NOT_ASSESSABLE, PASS, evaluate, unconfirmed_characteristics
from waymark.fairness.policy import DEFAULT_POLICY, Policy, PolicyError, differences_from_default, load_policy
from waymark.fairness.report import model_card, published, render_html
from waymark.models.data import ProtectedFrame
from waymark.models.registry import LoadedModel


def _cohort(*, small_missed: int, small_found: int) -> tuple[pd.DataFrame, ProtectedFrame]:
    """400 students in group A; 12 in group B, of whom some needed support (missed or found)."""
    rng = np.random.default_rng(3)
    a_label = rng.random(400) < 0.3
    a_probability = np.clip(np.where(a_label, 0.55, 0.2) + rng.normal(0, 0.2, 400), 0.01, 0.99)
    b_label = np.array([1] * (small_missed + small_found) + [0] * (12 - small_missed - small_found))
    b_probability = np.array(
        [0.02] * small_missed + [0.999] * small_found + [0.05] * (12 - small_missed - small_found)
    )
    students = [f"A{i}" for i in range(400)] + [f"B{i}" for i in range(12)]
    scored = pd.DataFrame(
        {
            "student_id": students,
            "week": 4,
            "label": np.concatenate([a_label.astype(int), b_label]),
            "probability": np.concatenate([a_probability, b_probability]),
        }
    )
    groups = pd.DataFrame({"student_id": students, "club": ["A"] * 400 + ["B"] * 12}).astype("string")
    return scored, ProtectedFrame(groups)


def _policy() -> Policy:
    # A small institution's policy: groups of 3 are reported, so the tiny group is judged at all.
    return dataclasses.replace(
        load_policy(), weeks=(4,), bootstrap_resamples=200, min_group_size=3, count_rounding=1
    )


def _fnr_check(scored: pd.DataFrame, protected: ProtectedFrame) -> tuple[str, tuple[str, ...]]:
    policy = _policy()
    audits = audit_cohorts(scored, group_labels(protected, intersections=False), policy=policy)
    _gate, checks = evaluate(audits, policy)
    check = next(c for c in checks if c.check.metric == "false_negative_rate")
    return check.status, check.reasons


def test_every_student_of_a_tiny_group_missed_is_not_judged_a_clear_breach() -> None:
    scored, protected = _cohort(small_missed=4, small_found=0)
    b = scored[scored.student_id.str.startswith("B")]
    assert (b.label == 1).sum() == 4 and (b.probability < 0.1).all()  # FNR 1.0 in every resample
    status, reasons = _fnr_check(scored, protected)
    assert status == INCONCLUSIVE
    assert any("club = B" in r and "degenerate interval" in r for r in reasons)


def test_a_measurable_difference_is_still_judged() -> None:
    scored, protected = _cohort(small_missed=2, small_found=2)
    _status, reasons = _fnr_check(scored, protected)
    assert not any("degenerate" in r for r in reasons)  # the group's interval has width: it is judged


def test_a_gate_that_confirmed_no_comparison_is_inconclusive_not_a_pass() -> None:
    """Found on a college's default test set (a few small late-starting sections): every check was
    inconclusive or not assessable, and the gate said "pass"."""
    scored, protected = _cohort(small_missed=4, small_found=0)
    policy = _policy()
    audits = audit_cohorts(scored, group_labels(protected, intersections=False), policy=policy)
    fnr = tuple(c for c in policy.checks if c.metric == "false_negative_rate")
    gate, checks = evaluate(audits, dataclasses.replace(policy, checks=fnr))
    assert [(c.status, c.confirmed) for c in checks] == [(INCONCLUSIVE, 0)] and gate == INCONCLUSIVE
    # The same check with a tolerance B's interval lies inside: one comparison confirmed, a pass.
    wide = tuple(dataclasses.replace(c, low=0.0, high=100.0) for c in fnr)
    _, flat = evaluate(audits, dataclasses.replace(policy, checks=wide))
    # the flat interval of four students is judged on its exact interval (0.4 to 1), which a tolerance
    # this wide contains
    assert (flat[0].status, flat[0].confirmed) == (PASS, 1)
    # (three of B on the list: with two, B's miss rate would say whether both needed support)
    scored, protected = _cohort(small_missed=2, small_found=3)
    audits = audit_cohorts(scored, group_labels(protected, intersections=False), policy=policy)
    gate, checks = evaluate(audits, dataclasses.replace(policy, checks=wide))
    assert (gate, checks[0].status, checks[0].confirmed) == (PASS, PASS, 1)


def test_a_comparison_of_students_with_no_record_does_not_confirm_their_characteristic() -> None:
    """Found at an Australian institute: its Aboriginal and Torres Strait Islander students were too few
    to assess, but "Not stated" against "Neither" was within the tolerance, and the gate counted the
    characteristic as confirmed. Mapped to empty ("not recorded"), such a group still counts as a
    comparison, never as one of its characteristic."""
    scored, _ = _cohort(small_missed=2, small_found=2)
    policy = _policy()
    wide = dataclasses.replace(
        policy, checks=tuple(dataclasses.replace(c, low=-100.0, high=100.0) for c in policy.checks)
    )
    # 396 of the characteristic's largest group, two groups of two (under the minimum size, 3), and the
    # twelve students of club B with nothing recorded; or, for comparison, with a group of their own.
    status = ["large"] * 396 + ["g0"] * 2 + ["g1"] * 2
    outcomes = {}
    for twelve in (None, "stated"):
        frame = pd.DataFrame(
            {
                "student_id": scored.student_id,
                "club": ["A"] * 400 + ["B"] * 12,
                "status": status + [twelve] * 12,
            }
        ).astype("string")
        audits = audit_cohorts(
            scored, group_labels(ProtectedFrame(frame), intersections=False), policy=policy
        )
        gate, checks = evaluate(audits, wide)
        table = next(a for a in audits if a.attribute == "status")
        shown = {g.group for g in table.groups if not g.suppressed}
        assert shown == {"large", twelve or "not recorded"}  # the twelve are compared with the large group
        outcomes[twelve] = gate, unconfirmed_characteristics(audits, checks), sum(c.confirmed for c in checks)
    (gate, unconfirmed, confirmed), (stated_gate, stated_unconfirmed, stated_confirmed) = outcomes.values()
    assert (stated_gate, stated_unconfirmed) == (PASS, [])
    assert (gate, unconfirmed) == (INCONCLUSIVE, ["status"])
    assert confirmed == stated_confirmed  # the comparison still counts as one made and confirmed
    # Where most students have nothing recorded, the reference is still a group of the characteristic:
    # "named" against "not recorded" would otherwise have confirmed it from the other side.
    mostly = ["named"] * 112 + [None] * 296 + ["g0"] * 2 + ["g1"] * 2
    frame = pd.DataFrame({"student_id": scored.student_id, "status": mostly}).astype("string")
    audits = audit_cohorts(scored, group_labels(ProtectedFrame(frame), intersections=False), policy=policy)
    table = next(a for a in audits if a.attribute == "status")
    assert set(table.reference.values()) == {"named"}
    gate, checks = evaluate(audits, wide)
    assert (gate, unconfirmed_characteristics(audits, checks)) == (INCONCLUSIVE, ["status"])


def test_a_characteristic_no_comparison_of_which_was_confirmed_makes_the_gate_inconclusive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found at an Australian university: its 32 Indigenous students fell into three groups too small
    to assess, nothing was said of them, and the gate passed on the other characteristics."""
    scored, _ = _cohort(small_missed=2, small_found=2)
    policy = _policy()
    wide = tuple(dataclasses.replace(c, low=-100.0, high=100.0) for c in policy.checks)
    # the status recorded: eight groups under the minimum size (3) beside one large group
    status = [f"g{i}" for i, n in enumerate([1] * 4 + [2] * 4) for _ in range(n)] + ["large"] * 400
    frame = pd.DataFrame(
        {"student_id": scored.student_id, "club": ["A"] * 400 + ["B"] * 12, "status": status}
    ).astype("string")
    labels = group_labels(ProtectedFrame(frame), intersections=False)
    audits = audit_cohorts(scored, labels, policy=policy)
    gate, checks = evaluate(audits, dataclasses.replace(policy, checks=wide))
    assert all(c.status != "fail" for c in checks) and any(c.confirmed for c in checks)
    assert gate == INCONCLUSIVE
    assert unconfirmed_characteristics(audits, checks) == ["status"]
    outcome = stub_outcome(policy, audits=audits, gate=gate, checks=checks, attributes=("club", "status"))
    report = published(outcome, [])
    why = report["gate"]["why_inconclusive"]
    assert report["gate"]["unconfirmed_characteristics"] == ["status"] and "no comparison of status" in why
    assert str(escape(why)) in render_html(report, policy.weeks, capacities=policy.capacities)
    assert why in model_card(report, {})
    # Without the small characteristic, the same audit passes; a pass is said to be no clear breach found,
    # not fairness shown (a statistician's review: a gap of 0.08 for 300 students passed half the time).
    kept = [a for a in audits if a.attribute != "status"]
    passed, kept_checks = evaluate(kept, dataclasses.replace(policy, checks=wide))
    assert passed == PASS
    means = "A pass means no clear breach was found, not that the model was shown to be fair"
    assert means not in " ".join(render_html(report, policy.weeks, capacities=policy.capacities).split())
    passed_outcome = stub_outcome(policy, audits=kept, gate=passed, checks=kept_checks, attributes=("club",))
    passing = published(passed_outcome, [])
    assert means in " ".join(render_html(passing, policy.weeks, capacities=policy.capacities).split())
    _show(passed_outcome, tmp_path)  # the command's headline says it too
    headline = capsys.readouterr().out.splitlines()[0]
    assert headline.endswith(": PASS (no clear breach found; not a finding that the model is fair)")
    # A pass's inconclusive check says what it found under it (a university's PASS hid a group's
    # calibration gap of -0.07, its interval -0.10 to -0.03), the first few, and how many more.
    straddles = [
        f"week {w}, club = C: difference -0.07 (interval -0.10 to -0.03): straddles" for w in (4, 8, 12, 16)
    ]
    unsure = dataclasses.replace(kept_checks[0], status="inconclusive", reasons=tuple(straddles))
    _show(dataclasses.replace(passed_outcome, checks=[unsure, *kept_checks[1:]]), tmp_path)
    lines = capsys.readouterr().out.splitlines()
    under = lines.index(next(line for line in lines if line.strip().startswith("inconclusive")))
    assert [line.strip() for line in lines[under + 1 : under + 5]] == [
        *straddles[:3],
        "... and 1 more in the report",
    ]


def _policy_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_policy_cannot_switch_small_cell_suppression_off_or_gate_nothing(tmp_path: Path) -> None:
    """A red team audited with min_group_size = 1 and published groups of one student, and a policy
    without checks passed a gate that had compared nothing."""
    default = DEFAULT_POLICY.read_text(encoding="utf-8")
    assert "min_group_size = 10" in default
    with pytest.raises(PolicyError, match="at least 5"):
        load_policy(_policy_file(tmp_path, default.replace("min_group_size = 10", "min_group_size = 1")))
    assert load_policy(_policy_file(tmp_path, default.replace("min_group_size = 10", "min_group_size = 5")))
    unchecked = default[: default.index("[[gate.checks]]")] + default[default.index("[quality]") :]
    with pytest.raises(PolicyError, match=r"no \[\[gate\.checks\]\]"):
        load_policy(_policy_file(tmp_path, unchecked))
    # and were a policy to reach the gate without checks, nothing confirmed is no pass
    scored, protected = _cohort(small_missed=2, small_found=2)
    policy = _policy()
    audits = audit_cohorts(scored, group_labels(protected, intersections=False), policy=policy)
    assert evaluate(audits, dataclasses.replace(policy, checks=())) == (INCONCLUSIVE, [])


def test_the_committee_is_told_how_the_policy_differs_from_the_default(tmp_path: Path) -> None:
    default = DEFAULT_POLICY.read_text(encoding="utf-8")
    assert differences_from_default(load_policy()) == []
    lax = default.replace("min_group_size = 10", "min_group_size = 5").replace("max = 1.25", "max = 1000")
    differs = differences_from_default(load_policy(_policy_file(tmp_path, lax)))
    assert differs[0] == "min_group_size 5 (default 10)"
    assert differs[1].startswith("the gate's checks: false_negative_rate ratio within [0.8, 1000]")
    assert len(differs) == 2
    outcome = stub_outcome(load_policy(_policy_file(tmp_path, lax)))
    report = published(outcome, [])
    assert report["policy"]["differs_from_default"] == differs
    for shown in (render_html(report, (4,), capacities=(0.1,)), model_card(report, {})):
        assert "differs from Waymark's default in: min_group_size 5 (default 10)" in " ".join(shown.split())


def _large_cohort(
    *, group_positives: int, group_size: int, found: int
) -> tuple[pd.DataFrame, ProtectedFrame]:
    """400 students in A (about one in eight needing support, most of them found at 10% capacity);
    group B with ``group_positives`` of ``group_size`` needing support, ``found`` of whom the list finds."""
    rng = np.random.default_rng(5)
    a_label = rng.random(400) < 0.12
    a_probability = np.where(a_label, rng.uniform(0.6, 0.95, 400), rng.uniform(0.01, 0.5, 400))
    b_label = np.array([1] * group_positives + [0] * (group_size - group_positives))
    b_probability = np.array(
        [0.99] * found + [0.02] * (group_positives - found) + [0.05] * (group_size - group_positives)
    )
    students = [f"A{i}" for i in range(400)] + [f"B{i}" for i in range(group_size)]
    scored = pd.DataFrame(
        {
            "student_id": students,
            "week": 4,
            "label": np.concatenate([a_label.astype(int), b_label]),
            "probability": np.concatenate([a_probability, b_probability]),
        }
    )
    groups = pd.DataFrame({"student_id": students, "club": ["A"] * 400 + ["B"] * group_size}).astype("string")
    return scored, ProtectedFrame(groups)


def test_a_flat_rate_of_a_group_large_enough_to_say_something_is_judged() -> None:
    """An institution's audit: 45 students with a disability, 15 of whom needed support, every one of them
    missed (false negative rate 1.0 in every resample), and the gate called the group too small to measure.
    With the exact interval for the flat rate (0.78 to 1.0) the ratio to the reference is a
    clear breach. (Four such students still cannot be judged: the first test of this file.)"""
    policy = dataclasses.replace(load_policy(), weeks=(4,), bootstrap_resamples=200)
    fnr = tuple(c for c in policy.checks if c.metric == "false_negative_rate")
    policy = dataclasses.replace(policy, checks=fnr)
    scored, protected = _large_cohort(group_positives=15, group_size=45, found=0)
    audits = audit_cohorts(scored, group_labels(protected, intersections=False), policy=policy)
    gate, checks = evaluate(audits, policy)
    assert (gate, checks[0].status) == ("fail", "fail")
    assert any("club = B" in r and "exact interval" in r for r in checks[0].reasons)


def test_a_large_group_withheld_beside_a_small_one_is_not_called_too_small() -> None:
    """An institution's audit: 272 men, 224 women and 5 students of another gender. Complementary
    suppression withholds the 224 beside the five, and the gate had said both were too few."""
    rng = np.random.default_rng(2)
    sizes = {"M": 272, "V": 224, "X": 5}
    gender = [g for g, n in sizes.items() for _ in range(n)]
    scored, protected = _by_gender(gender, rng.random(len(gender)) < 0.3, rng)
    policy = dataclasses.replace(load_policy(), weeks=(4,), bootstrap_resamples=50)
    audits = audit_cohorts(scored, group_labels(protected, intersections=False), policy=policy)
    _, checks = evaluate(audits, policy)
    reasons = " ".join(r for c in checks for r in c.reasons)
    assert (
        "2 groups not assessable (too few students): 1 group below the minimum size, and 1 group" in reasons
    )
    assert "withheld beside it" in reasons and "224" not in reasons and "V" not in reasons.split()


def _by_gender(
    gender: list[str], label: np.ndarray, rng: np.random.Generator
) -> tuple[pd.DataFrame, ProtectedFrame]:
    """Week-4 estimates near 0.6 for those who needed support and 0.2 for the rest, with some noise."""
    scored = pd.DataFrame(
        {
            "student_id": [f"s{i}" for i in range(len(gender))],
            "week": 4,
            "label": label.astype(int),
            "probability": np.clip(np.where(label, 0.6, 0.2) + rng.normal(0, 0.2, len(gender)), 0.01, 0.99),
        }
    )
    groups = pd.DataFrame({"student_id": scored["student_id"], "gender": gender}).astype("string")
    return scored, ProtectedFrame(groups)


def _nobody_needed_support(group_size: int) -> tuple[pd.DataFrame, ProtectedFrame]:
    """400 calibrated students in A; in B, ``group_size`` estimated at 0.12 of whom none needed support."""
    rng = np.random.default_rng(11)
    a_probability = rng.uniform(0.05, 0.6, 400)
    a_label = rng.random(400) < a_probability
    students = [f"A{i}" for i in range(400)] + [f"B{i}" for i in range(group_size)]
    scored = pd.DataFrame(
        {
            "student_id": students,
            "week": 4,
            "label": np.concatenate([a_label.astype(int), np.zeros(group_size, dtype=int)]),
            "probability": np.concatenate([a_probability, rng.uniform(0.10, 0.14, group_size)]),
        }
    )
    groups = pd.DataFrame({"student_id": students, "club": ["A"] * 400 + ["B"] * group_size}).astype("string")
    return scored, ProtectedFrame(groups)


@pytest.mark.parametrize(("group_size", "expected"), [(20, INCONCLUSIVE), (400, "fail")])
def test_a_calibration_gap_where_nobody_needed_support_allows_for_the_outcome_that_could_have_been(
    group_size: int, expected: str
) -> None:
    """An art school's audit failed on two groups of 20 in which nobody left: every resample observed
    a rate of 0, so the gap's interval held the estimates' spread alone (0.07 to 0.14). With the exact
    bound for none of 20 observed (0.17 at 95%) the gap cannot be told from the tolerance; for none of
    400 (0.009) an overestimate of 0.12 is still a clear breach."""
    policy = dataclasses.replace(load_policy(), weeks=(4,), bootstrap_resamples=200)
    gap = tuple(c for c in policy.checks if c.metric == "calibration_gap")
    policy = dataclasses.replace(policy, checks=gap)
    scored, protected = _nobody_needed_support(group_size)
    audits = audit_cohorts(scored, group_labels(protected, intersections=False), policy=policy)
    _gate, checks = evaluate(audits, policy)
    assert checks[0].status == expected, checks[0].reasons
    b = next(g for g in audits[0].groups if g.group == "B")
    point, low, high = b.metrics["calibration_gap"]
    bound = 1 - 0.025 ** (1 / group_size)
    assert 0.11 < point < 0.13 and low < point - bound + 0.02 and high < point + 0.02
    ratio = b.ratios["calibration_gap"]
    assert math.isnan(ratio[1]) and math.isnan(ratio[2])  # no bound for a ratio of gaps: left undefined


def test_a_degenerate_reference_is_named_as_the_reference() -> None:
    """A conservatoire's committee read that its group of 170 was "too small to measure" when the
    degenerate interval was the reference group's."""
    from waymark.fairness.gate import _degenerate_reason

    said = _degenerate_reason("week 3, ethnicity = 10", "false_positive_rate", groups=["31"], reference="31")
    assert "false_positive_rate of the reference group 31 has a degenerate interval" in said
    assert "so that group is too small" in said
    both = _degenerate_reason("week 3, club = B", "auc", groups=["B", "A"], reference="A")
    assert "auc of B and the reference group A has" in both and "those groups are too small" in both


def test_auditing_the_served_champion_again_says_it_voids_its_approval() -> None:
    served = LoadedModel(bundle=None, name="waymark-not-completing", version="3", sha256="a" * 64)  # type: ignore[arg-type]
    note = voided_note(served, audited="3")
    assert (
        note is not None
        and "voids the committee's approval" in note
        and "models:/waymark-not-completing/3" in note
    )
    assert voided_note(served, audited="4") is None and voided_note(None, audited="3") is None


def test_a_characteristic_some_checks_confirmed_and_others_did_not_is_said_so() -> None:
    """A nursing school's gate passed with its 97 men's miss rate and false positive rate withheld at
    every week: gender counted as confirmed on one calibration comparison, and nothing said so."""
    from types import SimpleNamespace

    from waymark.fairness.gate import CheckResult, partly_confirmed_text

    policy = load_policy()
    audits = [SimpleNamespace(attribute=a, is_intersection=False) for a in ("gender", "disability")]
    checks = [
        CheckResult(
            check,
            "pass",
            (),
            3,
            ("gender", "disability") if check.metric == "calibration_gap" else ("disability",),
        )
        for check in policy.checks
    ]
    said = partly_confirmed_text(audits, checks)  # type: ignore[arg-type]
    others = [c.metric for c in policy.checks if c.metric != "calibration_gap"]
    assert said.startswith(f"Confirmed in part: gender by calibration_gap only, not by {' or '.join(others)}")
    assert "disability" not in said
    every = [dataclasses.replace(c, confirmed_in=("gender", "disability")) for c in checks]
    assert partly_confirmed_text(audits, every) == ""  # type: ignore[arg-type]


def test_a_large_groups_rate_withheld_beside_a_small_one_is_not_called_too_few_students() -> None:
    """A polytechnic's committee read "gender = Woman: false_negative_rate not assessable (too few
    students)" of 800 students, 400 of whom needed support: her miss rate was withheld beside a group of
    20 with few who needed support, so that the week's figure less the groups shown would not give it."""
    rng = np.random.default_rng(4)
    gender = ["M"] * 600 + ["W"] * 402 + ["X"] * 30
    scored, protected = _by_gender(gender, np.concatenate([rng.random(1002) < 0.4, np.arange(30) < 3]), rng)
    policy = dataclasses.replace(load_policy(), weeks=(4,), bootstrap_resamples=50)
    fnr = tuple(c for c in policy.checks if c.metric == "false_negative_rate")
    audits = audit_cohorts(
        scored,
        group_labels(protected, intersections=False),
        policy=dataclasses.replace(policy, checks=fnr),
    )
    (audit,) = [a for a in audits if a.attribute == "gender" and a.capacity == fnr[0].capacity]
    held = {g.group for g in audit.groups if "false_negative_rate" in g.withheld and not g.suppressed}
    assert {"X", "W"} <= held | {audit.reference["false_negative_rate"]}, held  # W withheld beside X
    _, checks = evaluate(audits, dataclasses.replace(policy, checks=fnr))
    reasons = [r for c in checks for r in c.reasons]
    said = {g: [r for r in reasons if f"gender = {g}:" in r] for g in ("W", "X")}
    # X's count of students who needed support is itself withheld: both causes are said.
    assert said["X"] and all("fewer than 10 students who needed support" in r for r in said["X"]), reasons
    for reason in said["W"]:
        assert "too few students" not in reason, reason
        assert "held back beside a smaller group" in reason, reason
        # counts as the tables publish them (rounded to 5): an exact count week by week told who left
        assert "has about 400 students" in reason and "402" not in reason, reason


def test_a_calibration_gap_of_a_group_with_one_who_needed_support_allows_for_the_outcome_seen_once() -> None:
    """An Australian university's gate failed on 12 Aboriginal students with one non-completion: "difference
    0.12 (interval 0.06 to 0.20)". The resamples held only the outcomes seen, zero to a few copies of the
    one; the exact interval of one of 12 (0.2% to 38%) leaves the gap undecided."""
    rng = np.random.default_rng(11)
    a_probability = rng.uniform(0.05, 0.6, 400)
    a_label = rng.random(400) < a_probability
    students = [f"A{i}" for i in range(400)] + [f"B{i}" for i in range(12)]
    scored = pd.DataFrame(
        {
            "student_id": students,
            "week": 4,
            "label": np.concatenate([a_label.astype(int), [1] + [0] * 11]),
            "probability": np.concatenate([a_probability, rng.uniform(0.18, 0.24, 12)]),
        }
    )
    groups = pd.DataFrame({"student_id": students, "club": ["A"] * 400 + ["B"] * 12}).astype("string")
    policy = dataclasses.replace(load_policy(), weeks=(4,), bootstrap_resamples=200)
    policy = dataclasses.replace(
        policy, checks=tuple(c for c in policy.checks if c.metric == "calibration_gap")
    )
    audits = audit_cohorts(scored, group_labels(ProtectedFrame(groups), intersections=False), policy=policy)
    _gate, checks = evaluate(audits, policy)
    assert checks[0].status != "fail", checks[0].reasons
    b = next(g for g in audits[0].groups if g.group == "B")
    point, low, _high = b.metrics["calibration_gap"]
    assert 0.08 < point < 0.16 and low < point - 0.25  # the rate of one in 12 could have been up to 38%
    # A group of 400 with many of each outcome is left to its resamples.
    a = next(g for g in audits[0].groups if g.group == "A")
    assert a.metrics["calibration_gap"][1] > a.metrics["calibration_gap"][0] - 0.1


@pytest.mark.parametrize("reference_rate", [(0.0, 0.0, 0.0), (0.01, 0.0, 0.03)], ids=["flat", "varied"])
def test_a_rate_withheld_beside_a_flat_reference_is_said_withheld_not_too_small(
    reference_rate: tuple[float, float, float],
) -> None:
    """A Dutch university's committee read that its reference group of 555 students "is too small to
    measure this" where every listed student needed support (a false positive rate of 0 in every
    resample), of a comparison withheld beside a group of 70 with few on the list."""
    metrics = ("selection_rate", "false_negative_rate", "false_positive_rate", "precision", "calibration_gap")
    reference = GroupResult(
        "Nederlands", 555, False, positives=380, metrics={"false_positive_rate": reference_rate}
    )
    withheld = GroupResult(
        "westers",
        72,
        False,
        positives=52,
        withheld=("false_negative_rate", "false_positive_rate", "precision"),
    )
    audit = AttributeAudit("migration", 8, 0.10, dict.fromkeys(metrics, "Nederlands"), (reference, withheld))
    policy = load_policy()
    _gate, checks = evaluate([audit], policy)
    [fpr] = [c for c in checks if c.check.metric == "false_positive_rate"]
    assert fpr.status == NOT_ASSESSABLE, fpr.reasons
    [reason] = fpr.reasons
    assert "too small" not in reason and "degenerate" not in reason, reason
    assert "withheld, though the group has about 70 students, about 50 of whom needed support" in reason
