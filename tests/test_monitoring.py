"""Monitoring (#17, items 3-5): drift, coverage, groups and list turnover, with answers known in advance."""

from __future__ import annotations

import dataclasses
import itertools
import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from waymark.fairness.monitoring import group_drift, group_estimate_shares
from waymark.models import drift, stability
from waymark.service import monitoring
from waymark.service.db.engine import transaction
from waymark.service.db.schema import Feedback, Indicator, ModelDecision, Publication, ScoringRun
from waymark.service.feedback_report import NO_FACTOR, feedback_summary
from waymark.service.scoring.summaries import summarise

POLICY = monitoring.load_policy()
MIN = 10  # the default fairness policy's min_group_size


def test_psi_matches_a_hand_computation() -> None:
    # Shares 0.5/0.5 become 0.8/0.2: 0.3 ln(0.8/0.5) + (-0.3) ln(0.2/0.5) = 0.141001 + 0.274887.
    assert drift.psi([50, 50], [80, 20]) == pytest.approx(0.415888, abs=1e-6)
    # Three bins, shares 0.25/0.25/0.5 against expected 0.2/0.3/0.5: 0.011157 + 0.009116.
    expected = 0.05 * math.log(0.25 / 0.2) + (-0.05) * math.log(0.25 / 0.3)
    assert expected == pytest.approx(0.020273, abs=1e-6)
    assert drift.psi([20, 30, 50], [25, 25, 50]) == pytest.approx(expected, abs=1e-9)
    assert drift.psi([1, 1], [1, 1]) == 0.0
    # An empty bin is floored at EMPTY_SHARE instead of making the index infinite.
    floored = (0.5 - 1e-4) * math.log(0.5 / 1e-4) + (0.5 - 1.0) * math.log(0.5 / 1.0)
    assert drift.psi([0, 10], [5, 5]) == pytest.approx(floored, rel=1e-9)


def test_counts_put_values_in_closed_right_bins_and_count_missing_apart() -> None:
    assert drift.counts(np.array([1.0, 1.5, 2.0, 3.0, np.nan]), [1.5, 2.5]) == [2, 1, 1, 1]


def test_the_training_reference_bins_each_week_and_feature_at_its_own_deciles() -> None:
    """The reference is computed for all features of a week at once; each column as ``edges_of`` alone."""
    rng = np.random.default_rng(7)
    n = 240
    rows = pd.DataFrame(
        {
            "week": np.repeat([4, 8], n // 2),
            "continuous": rng.normal(size=n),
            "ties": rng.choice([0.0, 1.0, 2.0, 5.0], size=n),
            "gaps": np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n)),
            "constant": np.zeros(n),
            "empty": np.full(n, np.nan),
        }
    )
    names = ["continuous", "ties", "gaps", "constant", "empty"]
    reference = drift.feature_reference(rows, names)
    assert list(reference) == ["4", "8"]
    for week, group in rows.groupby("week"):
        for name in names:
            values = group[name].to_numpy()
            edges = drift.edges_of(values)
            assert reference[str(week)][name] == {
                "edges": list(edges),
                "shares": drift.shares(drift.counts(values, edges)).tolist(),
            }
    assert reference["4"]["constant"]["edges"] == [0.0]
    assert reference["4"]["empty"] == {"edges": [], "shares": [0.0, 1.0]}
    assert len(reference["8"]["continuous"]["edges"]) == 9


def _cohort(modules: dict[str, int], *, week: int) -> pd.DataFrame:
    rows = [
        {
            "student_id": f"{m}{i:03d}",
            "module_id": m,
            "presentation_id": "P",
            "week": week,
            "clicks": float(i),
        }
        for m, n in modules.items()
        for i in range(n)
    ]
    return pd.DataFrame(rows)


def _activity(cohort: pd.DataFrame, *, weeks: int, off: dict[tuple[str, str], int]) -> pd.DataFrame:
    """Every student active from vle and library every week, except a source switched off from a week."""
    rows = []
    for student, module in cohort[["student_id", "module_id"]].itertuples(index=False):
        for source in ("vle", "library"):
            last = off.get((module, source), weeks + 1)
            rows += [
                {
                    "student_id": student,
                    "module_id": module,
                    "presentation_id": "P",
                    "source": source,
                    "day": 7 * w + 2,
                }
                for w in range(min(weeks, last - 1))
            ]
    return pd.DataFrame(rows)


def _summaries(cohort: pd.DataFrame, activity: pd.DataFrame) -> monitoring.Summaries:
    indicators = cohort[["student_id", "module_id", "presentation_id"]].assign(probability=0.3)
    rows = summarise(cohort, indicators, activity=activity, reference=None)
    out: monitoring.Summaries = {}
    for row in rows:
        out.setdefault((row["module_id"], row["presentation_id"]), {})[row["kind"]] = row["summary"]
    return out


def test_a_source_switched_off_for_one_module_is_flagged_for_that_module_only() -> None:
    cohort = _cohort({"A": 40, "B": 40}, week=6)
    latest = _summaries(cohort, _activity(cohort, weeks=6, off={("A", "library"): 5}))
    rows, flags = monitoring.coverage_drift(latest, None, policy=POLICY, min_students=MIN)
    assert [(f["scope"], f["name"]) for f in flags] == [("A/P", "library")]
    a_library = next(r for r in rows if r["module"] == "A/P" and r["source"] == "library")
    assert a_library["weekly_share"] == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    # Against the previous run (week 4, library still on everywhere) the same module alone is flagged.
    earlier = _cohort({"A": 40, "B": 40}, week=4)
    previous = _summaries(earlier, _activity(earlier, weeks=4, off={}))
    _, flags = monitoring.coverage_drift(latest, previous, policy=POLICY, min_students=MIN)
    assert [(f["scope"], f["name"], f["threshold"]) for f in flags] == [("A/P", "library", 1.0)]


def test_a_shift_in_one_group_is_flagged_in_that_group_and_a_small_group_is_withheld() -> None:
    rng = np.random.default_rng(0)
    students = [f"s{i:03d}" for i in range(125)]
    labels = pd.DataFrame(
        {"disability": ["none"] * 50 + ["declared"] * 50 + ["not recorded"] * 5 + ["prefer not to say"] * 20},
        index=pd.Index(students, name="student_id"),
    )
    base = rng.uniform(0.05, 0.35, size=125)
    previous = pd.DataFrame({"student_id": students, "probability": base})
    shifted = base.copy()
    shifted[50:105] += 0.5  # the declared group and the five 'not recorded' students move; nobody else
    latest = pd.DataFrame({"student_id": students, "probability": shifted})
    result = group_drift(latest, previous, labels=labels, min_size=10, psi_flag=POLICY.group_psi_flag)
    assert [f["scope"] for f in result["flags"]] == ["disability: declared"]
    shown = {r["group"]: r for r in result["groups"]}
    # The group of five is not named at all; nor is the smallest group shown beside it, or subtracting the
    # shown groups from all 125 students would give the five back.
    assert set(shown) == {"declared", "none"}
    assert shown["none"]["psi"] == 0.0
    assert shown["declared"]["mean"] == pytest.approx(shown["declared"]["previous_mean"] + 0.5, abs=1e-3)
    assert result["withheld"] == {"disability": 2}


def test_a_group_is_sized_in_students_not_registrations() -> None:
    """Nine students, one on two modules: ten rows, still fewer than ten students, so never shown."""
    students = [f"s{i:03d}" for i in range(60)]
    labels = pd.DataFrame(
        {"ethnicity": ["a"] * 26 + ["b"] * 25 + ["c"] * 9}, index=pd.Index(students, name="student_id")
    )
    rows = pd.DataFrame({"student_id": [*students, "s059"], "probability": np.linspace(0.05, 0.9, 61)})
    assert (rows.merge(labels, left_on="student_id", right_index=True)["ethnicity"] == "c").sum() == 10
    # c withheld, and b beside it (c alone would be the whole cohort less a and b), as the audit does
    assert set(group_estimate_shares(rows, labels, min_size=10)["ethnicity"]) == {"a"}
    shown = {r["group"] for r in group_drift(rows, rows, labels=labels, min_size=10, psi_flag=0.25)["groups"]}
    assert "c" not in shown
    drifted = group_drift(rows, None, labels=labels, min_size=10, psi_flag=0.25)["groups"]
    assert {r["group"]: r["students"] for r in drifted}.get("a") == 26  # people, not rows


def _labels(sex: list[str], disability: list[str]) -> pd.DataFrame:
    students = [f"s{i:03d}" for i in range(len(sex))]
    labels = pd.DataFrame({"sex": sex, "disability": disability}, index=pd.Index(students, name="student_id"))
    for a, b in itertools.combinations(["sex", "disability"], 2):  # as fairness.audit.group_labels names them
        labels[f"{a} x {b}"] = a + "=" + labels[a] + " & " + b + "=" + labels[b]
    return labels


def _suppression_holds(labels: pd.DataFrame, shown: set[tuple[str, str]], *, min_size: int) -> None:
    """Each total a reader knows or can work out (all students; each parent group of an intersection)
    withholds no group with students, or at least two holding the minimum together, or shows nothing."""
    for attribute in labels.columns:
        totals = [labels]
        if " x " in attribute:
            totals += [rows for p in attribute.split(" x ") for _, rows in labels.groupby(p)]
        for rows in totals:
            hidden = [g for g in set(rows[attribute]) if (attribute, g) not in shown]
            withheld = int(rows[attribute].isin(hidden).sum())
            nothing_shown = len(hidden) == rows[attribute].nunique()
            ok = withheld == 0 or (len(hidden) > 1 and withheld >= min_size) or nothing_shown
            assert ok, (attribute, hidden, withheld)


def test_no_group_below_the_minimum_can_be_worked_out_from_the_groups_shown() -> None:
    """Three disabled students among 300: neither subtraction from all students nor from a parent group of an
    intersection gives back their number or their mean, and every count is published rounded."""
    rng = np.random.default_rng(7)
    disability = ["N"] * 300
    for i in (3, 160, 161):
        disability[i] = "Y"
    labels = _labels(["F"] * 150 + ["M"] * 150, disability)
    estimates = pd.DataFrame({"student_id": labels.index, "probability": rng.uniform(0.05, 0.95, size=300)})
    previous = estimates.assign(probability=rng.uniform(0.05, 0.95, size=300))  # everyone moved: compared
    result = group_drift(
        estimates, previous, labels=labels, min_size=10, psi_flag=POLICY.group_psi_flag, rounding=5
    )
    shown = {(r["characteristic"], r["group"]) for r in result["groups"]}
    assert shown == {("sex", "F"), ("sex", "M")}
    assert result["withheld"] == {"sex": 0, "disability": 2, "sex x disability": 4}
    _suppression_holds(labels, shown, min_size=10)
    assert all(r["students"] % 5 == 0 and r["previous_students"] % 5 == 0 for r in result["groups"])


def test_a_group_withheld_beside_another_is_not_worked_out_through_a_second_total() -> None:
    """A review's case: with F and M, disability N and F&N shown, M&N = N - F&N, and M - M&N gave back the
    eight students of M&A and M&Y together. M&N may not be the lone withheld group of the total N."""
    cells = {("F", "A"): 8, ("F", "N"): 140, ("F", "Y"): 2, ("M", "A"): 7, ("M", "N"): 142, ("M", "Y"): 1}
    sex = [s for (s, _), n in cells.items() for _ in range(n)]
    disability = [d for (_, d), n in cells.items() for _ in range(n)]
    labels = _labels(sex, disability)
    estimates = pd.DataFrame({"student_id": labels.index, "probability": np.linspace(0.05, 0.95, len(sex))})
    result = group_drift(estimates, estimates, labels=labels, min_size=10, psi_flag=POLICY.group_psi_flag)
    shown = {(r["characteristic"], r["group"]) for r in result["groups"]}
    assert ("sex x disability", "sex=F & disability=N") not in shown
    _suppression_holds(labels, shown, min_size=10)


def test_a_group_in_one_run_only_is_not_given_back_by_that_runs_total() -> None:
    """Three students of a new group this run (none before): the run's 60 students less the 27 and 30 shown
    would be them; so one more group is withheld in this run's total."""
    now = _labels(["F"] * 30 + ["M"] * 30, ["a"] * 27 + ["b"] * 30 + ["new"] * 3)
    before = now.index[:57]
    rng = np.random.default_rng(3)
    latest = pd.DataFrame({"student_id": now.index, "probability": rng.uniform(0.05, 0.95, 60)})
    previous = pd.DataFrame({"student_id": before, "probability": rng.uniform(0.05, 0.95, 57)})
    result = group_drift(latest, previous, labels=now, min_size=10, psi_flag=POLICY.group_psi_flag)
    shown = {r["group"] for r in result["groups"] if r["characteristic"] == "disability"}
    assert "new" not in shown and len(shown) <= 1 and result["withheld"]["disability"] >= 2


def test_the_audits_reference_counts_students_without_a_protected_row_as_the_audit_does() -> None:
    """25 scored students have no row in the protected table: the audit counts them "not recorded"
    (30 with the 5 recorded so), withholding C (5) and B (12) beside it; the reference had left them
    out and published B's shares."""
    sizes = {"A": 100, "B": 12, "C": 5, "not recorded": 5}
    labelled = [f"s{i:03d}" for i in range(sum(sizes.values()))]
    labels = pd.DataFrame(
        {"ethnicity": [g for g, n in sizes.items() for _ in range(n)]},
        index=pd.Index(labelled, name="student_id"),
    )
    scored = pd.DataFrame({"student_id": [*labelled, *(f"u{i:02d}" for i in range(25))]})
    scored = scored.assign(probability=np.linspace(0.05, 0.95, len(scored)))
    assert set(group_estimate_shares(scored, labels, min_size=10)["ethnicity"]) == {"A", "not recorded"}


def test_groups_are_compared_with_the_audits_reference_even_without_an_earlier_run() -> None:
    rng = np.random.default_rng(1)
    students = [f"s{i:03d}" for i in range(100)]
    labels = pd.DataFrame(
        {"disability": ["none"] * 50 + ["declared"] * 50}, index=pd.Index(students, name="student_id")
    )
    audited = pd.DataFrame({"student_id": students, "probability": rng.uniform(0.05, 0.35, size=100)})
    reference = group_estimate_shares(audited, labels, min_size=10)
    assert set(reference["disability"]) == {"none", "declared"}
    assert all(sum(shares) == pytest.approx(1.0) for shares in reference["disability"].values())
    assert group_estimate_shares(audited, labels, min_size=60) == {"disability": {}}  # small: left out
    few = pd.DataFrame({"student_id": students[:50], "probability": [0.95] * 3 + [0.15] * 47})
    kept = group_estimate_shares(few, labels, min_size=10, rounding=5)["disability"]["none"]
    assert sorted(k for k in kept if k) == [0.1, 0.9]  # counts rounded to fives: 45 and 5, not 47 and 3
    latest = audited.assign(probability=audited["probability"] + np.r_[np.zeros(50), np.full(50, 0.5)])
    result = group_drift(
        latest, None, labels=labels, min_size=10, psi_flag=POLICY.group_psi_flag, reference=reference
    )
    assert [(f["kind"], f["scope"]) for f in result["flags"]] == [
        ("group estimates against the audit", "disability: declared")
    ]
    shown = {r["group"]: r for r in result["groups"]}
    assert shown["none"]["audit_psi"] == 0.0 and shown["none"]["psi"] is None


def _run(probabilities: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "student_id": [f"s{i:03d}" for i in range(len(probabilities))],
            "module_id": "M",
            "presentation_id": "P",
            "probability": probabilities,
        }
    )


def test_turnover_of_the_top_tenth_is_the_share_of_the_list_that_is_new() -> None:
    first = [1.0 - i / 100 for i in range(100)]  # s000..s009 are the top 10
    second = list(first)
    for leaving, joining in ((0, 50), (1, 51), (2, 52)):  # three of the ten swap places with three others
        second[leaving], second[joining] = second[joining], second[leaving]
    table = stability.turnover_by_module(_run(first), _run(second), share=0.10)
    assert table.to_dict("records") == [
        {"module_id": "M", "presentation_id": "P", "listed": 10, "turnover": 0.3}
    ]
    table = stability.turnover_by_module(_run(first), _run(second), share=0.20)
    assert table["turnover"].item() == pytest.approx(3 / 20)


def _noisy_runs() -> list[pd.DataFrame]:
    """Six weekly runs: estimates 0.005 apart, wobbling by +-0.03 from run to run; s000 rises at run 3."""
    runs = []
    for t in range(6):
        values = [0.2 + 0.5 * i / 100 + (0.03 if (i + t) % 2 else -0.03) for i in range(100)]
        values[0] = 0.05 if t < 3 else 0.95
        runs.append(_run(values))
    return runs


def test_smoothing_steadies_the_list_and_delays_a_sharp_rise_as_documented() -> None:
    runs = _noisy_runs()
    smooth = stability.smoothed(runs, 0.5)
    raw = [
        stability.turnover_by_module(a, b, share=0.10)["turnover"].item() for a, b in itertools.pairwise(runs)
    ]
    steadied = [
        stability.turnover_by_module(a, b, share=0.10, score="smoothed")["turnover"].item()
        for a, b in itertools.pairwise(smooth)
    ]
    # The wobble (12 steps of 0.005 between highs and lows) swaps 6 of the top 10 every week; weight 0.5
    # shrinks an alternating wobble to a third, and 2 or 3 of the 10 change.
    assert raw == [0.6] * 5
    assert steadied == [0.3, 0.2, 0.3, 0.3, 0.2]
    # s000 is on the raw list from run 3; smoothed (0.5 * 0.05 + 0.5 * 0.95 = 0.50 at run 3) it waits a run.
    first_raw = stability.first_listed(runs, 0.10, score="probability")
    first_smooth = stability.first_listed(smooth, 0.10, score="smoothed")
    key = ("s000", "M", "P")
    assert (first_raw[key], first_smooth[key]) == (3, 4)
    assert stability.entry_delays(runs, 0.10, weight=0.0) == {
        "entered": 7.0,
        "median_delay_runs": 0.0,
        "never": 0.0,
    }


def _two_run_report(
    engine: Engine, cohort: pd.DataFrame, before: pd.DataFrame, *, off: dict[tuple[str, str], int]
) -> dict:  # type: ignore[type-arg]
    """The report of run 2 (week 6, sources ``off`` from a week) against run 1 (week 5), the list reversed."""
    summaries = [
        _summaries(cohort, _activity(cohort, weeks=6, off=off)),
        _summaries(before, _activity(before, weeks=5, off={})),
    ]
    runs = [_stored_run(engine, run_id) for run_id in (2, 1)]
    n = len(cohort)
    first = cohort[["student_id", "module_id", "presentation_id"]].assign(
        probability=[i / n for i in range(n)]
    )
    second = first.assign(probability=first["probability"].to_numpy()[::-1])
    return monitoring.build_report(
        runs, summaries=summaries, estimates=[first, second], policy=POLICY, min_students=MIN
    )


def test_the_monitor_report_flags_a_coverage_drop_and_churn_from_stored_runs(engine: Engine) -> None:
    cohort = _cohort({"A": 40, "B": 40}, week=6)
    before = _cohort({"A": 40, "B": 40}, week=5)
    report = _two_run_report(engine, cohort, before, off={("B", "vle"): 6})
    kinds = sorted((f["kind"], f["scope"], f["name"]) for f in report["flags"])
    assert ("coverage", "B/P", "vle") in kinds
    assert ("list turnover", "A/P", "top 10%") in kinds and ("list turnover", "B/P", "top 10%") in kinds
    assert report["reference"] == "none" and report["features"] == []
    report_id = monitoring.store(engine, report, target="not_completing")
    latest = monitoring.latest_report(engine)
    assert latest is not None and report_id and latest["flags"] == report["flags"]


def test_a_module_below_the_disclosure_minimum_keeps_its_row_but_no_figures_and_no_flag(
    engine: Engine,
) -> None:
    """Eight students on B: its mean estimate, bands, weekly shares and turnover would come close to
    each student's own, so they are withheld, and the source switched off there is not flagged. So
    are A's, the smallest module beside it: all modules less C would give B back."""
    cohort = _cohort({"A": 40, "B": 8, "C": 40}, week=6)
    before = _cohort({"A": 40, "B": 8, "C": 40}, week=5)
    off = {("A", "vle"): 6, ("B", "vle"): 6, ("C", "vle"): 6}
    report = _two_run_report(engine, cohort, before, off=off)
    by_scope = {r["scope"]: r for r in report["estimates"]}
    assert by_scope["B/P"]["rows"] == 8 and by_scope["B/P"]["withheld"] == monitoring.WITHHELD
    for scope in ("A/P", "B/P"):
        assert all(by_scope[scope][k] is None for k in monitoring.ESTIMATE_FIGURES), scope
        cover = [r for r in report["coverage"] if r["module"] == scope]
        assert cover and all(r["weekly_share"] is None and r["withheld"] for r in cover)
        turnover = [r for r in report["stability"] if r.get("module") == scope]
        assert turnover and all(r["turnover"] is None and r["turnover_smoothed"] is None for r in turnover)
    assert by_scope["C/P"]["mean"] is not None and "withheld" not in by_scope["C/P"]
    assert by_scope["all modules"]["rows"] == 88 and by_scope["all modules"]["shares"]  # both in the total
    assert {f["scope"] for f in report["flags"]} == {"C/P"}  # C's drop and churn; nothing about A or B
    assert report["min_students"] == MIN


def test_withheld_modules_leave_no_small_one_to_subtraction() -> None:
    def sizes(*runs: dict[str, int]) -> list[monitoring.Summaries]:
        return [{(m, "P"): {"estimates": {"rows": n}} for m, n in run.items()} for run in runs]

    assert monitoring.withheld_modules(sizes({"A": 40, "B": 8}), min_students=10) == {"A/P", "B/P"}
    # Two small ones holding ten together: each alone cannot be worked out.
    assert monitoring.withheld_modules(sizes({"A": 40, "B": 4, "C": 6}), min_students=10) == {"B/P", "C/P"}
    # Small in the run before only: withheld now too, with a neighbour in that run.
    assert monitoring.withheld_modules(
        sizes({"A": 40, "B": 30, "C": 50}, {"A": 40, "B": 6, "C": 50}), min_students=10
    ) == {"A/P", "B/P"}
    # A module new in this run is not withheld for missing from the run before.
    assert monitoring.withheld_modules(sizes({"A": 40, "N": 50}, {"A": 40}), min_students=10) == set()


def test_a_run_of_a_version_rejected_since_is_not_the_run_before(engine: Engine) -> None:
    for run_id, version in ((1, "1"), (2, "2"), (3, "3")):
        _stored_run(engine, run_id, version=version)
    with transaction(engine) as session:
        session.add(Publication(target="not_completing", run_id=3, published_at=datetime.now(UTC)))
    for version, kind in (("2", "approved"), ("1", "approved"), ("2", "rejected"), ("3", "approved")):
        _decided(engine, version, kind)
    assert [r.id for r in monitoring.runs_of(engine, "not_completing")] == [3, 1]
    _decided(engine, "2", "approved")  # approved again: its run is the run before once more
    assert [r.id for r in monitoring.runs_of(engine, "not_completing")] == [3, 2, 1]


def _decided(engine: Engine, version: str, kind: str) -> None:
    """The committee's decision ``kind`` on version ``version`` of model "m"."""
    with transaction(engine) as session:
        session.add(
            ModelDecision(
                model_name="m",
                model_version=version,
                kind=kind,
                bundle_sha256="x" * 64,
                actor="committee",
                recorded_by="committee",
                at=datetime.now(UTC),
            )
        )


def _stored_run(engine: Engine, run_id: int, *, version: str = "1") -> ScoringRun:
    with transaction(engine) as session:
        run = ScoringRun(
            id=run_id,
            target="not_completing",
            model_name="m",
            model_version=version,
            bundle_sha256="x" * 64,
            data_fingerprint="f",
            data_as_of="2024-01-01",
            status="complete",
            students=80,
            started_at=datetime.now(UTC),
        )
        session.add(run)
    return run


def test_feedback_is_counted_by_module_and_by_the_factor_families_shown(engine: Engine) -> None:
    _stored_run(engine, 1)
    factors = {
        "s1": [{"family": "recent_activity"}, {"family": "submissions"}],
        "s2": [],
        "s3": [{"family": "submissions"}],
    }
    with transaction(engine) as session:
        for student, shown in factors.items():
            session.add(_indicator(student, shown))
        for student, value, note in (
            ("s1", "useful", ""),
            ("s2", "not_applicable", "a name"),
            ("s3", "useful", ""),
        ):
            session.add(
                Feedback(
                    run_id=1,
                    student_id=student,
                    module_id="M",
                    presentation_id="P",
                    staff_id="t",
                    value=value,
                    note=note,
                    at=datetime.now(UTC),
                )
            )
    summary = feedback_summary(engine)
    assert summary["total"] == 3 and summary["with_note"] == 1
    assert summary["by_module"] == {"M/P": {"useful": 2, "not_applicable": 1}}
    assert {k: {v: n for v, n in c.items() if v != "title"} for k, c in summary["by_family"].items()} == {
        "recent_activity": {"useful": 1},
        "submissions": {"useful": 2},
        NO_FACTOR: {"not_applicable": 1},
    }
    assert "a name" not in str(summary)


def _indicator(student: str, factors: list[dict[str, str]]) -> Indicator:
    return Indicator(
        run_id=1,
        student_id=student,
        module_id="M",
        presentation_id="P",
        week=6,
        as_of="2024-01-01",
        probability=0.3,
        lower=0.2,
        upper=0.4,
        factors=factors,
        strengths=[],
        context=[],
        coverage={},
        engagement={},
    )


def test_with_smoothing_on_the_flag_judges_the_order_staff_see() -> None:
    runs = _noisy_runs()  # the raw top 10 swaps 6 of 10 every run; smoothed at 0.5, 2 or 3
    loose = dataclasses.replace(POLICY, turnover_flag=0.5, min_rows=1)
    _, raw_flags = monitoring.list_stability(
        runs, policy=dataclasses.replace(loose, smoothing=0.0), min_students=MIN
    )
    _, smooth_flags = monitoring.list_stability(
        runs, policy=dataclasses.replace(loose, smoothing=0.5), min_students=MIN
    )
    assert [f["name"] for f in raw_flags] == ["top 10%"]
    assert smooth_flags == []  # the list staff see turned over by 0.2 or 0.3, under the flag


def test_runs_in_which_a_few_students_moved_are_not_compared_by_group() -> None:
    """A red team rescored after correcting one student's marks: every other estimate was unchanged, and
    each characteristic's group with the largest change in its mean gave back that student's group."""
    rng = np.random.default_rng(1)
    students = [f"s{i:03d}" for i in range(120)]
    labels = pd.DataFrame(
        {"disability": ["none"] * 60 + ["declared"] * 60}, index=pd.Index(students, name="student_id")
    )
    keys = {"student_id": students, "module_id": "M", "presentation_id": "P"}
    previous = pd.DataFrame({**keys, "probability": rng.uniform(0.1, 0.9, size=120)})
    for moved in (1, MIN - 1, MIN):
        latest = previous.copy()
        latest.loc[: moved - 1, "probability"] = 0.02  # rectified: these estimates fall
        result = group_drift(latest, previous, labels=labels, min_size=MIN, psi_flag=POLICY.group_psi_flag)
        shown = {r["group"]: r for r in result["groups"]}
        # not the groups side by side, nor this report's means beside the previous report's
        compared = moved >= MIN
        assert set(shown) == ({"none", "declared"} if compared else set())
        assert all(r["previous_mean"] is not None and r["psi"] is not None for r in shown.values())
        assert ("previous_withheld" in result) == (not compared)
