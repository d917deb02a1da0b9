"""The audit's one-pass bootstrap: the plain path's sums, Fairlearn's point estimates, the same intervals."""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, false_negative_rate, false_positive_rate, selection_rate
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import precision_score, roc_auc_score

from waymark.fairness.audit import _intervals, audit_cohorts, group_labels
from waymark.fairness.metric_frame import audit_groups, metric_frame
from waymark.fairness.metrics import (
    METRICS,
    Cohort,
    bootstrap_counts,
    bootstrap_weights,
    counts_by_row,
    weighted_sums,
)
from waymark.fairness.policy import load_policy
from waymark.fairness.protected import load_protected_characteristics
from waymark.fairness.quality import measure_week
from waymark.fairness.resampling import resampled_sums
from waymark.models.capacity import top_share
from waymark.models.data import ProtectedFrame
from waymark.training.ingest.synthetic import SynthConfig, generate

CAPACITIES = (0.1, 0.2)


def _rows(rng: np.random.Generator, n: int, *, groups: int = 4) -> pd.DataFrame:
    """Students, some with two registrations; indicators rounded so that ties are common."""
    students = rng.integers(0, max(1, int(n * 0.8)), n)
    label = (rng.random(n) < 0.35).astype(int)
    return pd.DataFrame(
        {
            "student_id": [f"S{s}" for s in students],
            "week": 8,
            "label": label,
            "probability": np.round(np.clip(0.3 * label + 0.7 * rng.random(n), 0, 1), 2),
            "group": rng.choice([f"g{k}" for k in range(groups)], n),
            "club": rng.choice(["chess", "choir", "rowing"], n),
        }
    )


def _assert_sums_equal(fast: object, plain: object) -> None:
    for name in ("tn", "fp", "fn", "tp", "bin_size", "bin_observed", "ranked_pairs"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(plain, name), err_msg=name)
    # Sums of indicator values are added in another order: equal to the last bits.
    np.testing.assert_allclose(fast.bin_predicted, plain.bin_predicted, rtol=1e-12, atol=1e-12)  # type: ignore[attr-defined]


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 300),
    groups=st.integers(1, 6),
    resamples=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_the_one_pass_sums_equal_the_plain_weighted_sums(
    n: int, groups: int, resamples: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    rows = _rows(rng, n, groups=groups)
    # A group code with no rows at all must come out as zeros, not shift the others.
    codes = pd.factorize(rows["group"], sort=True)[0] + 1
    n_groups = codes.max() + 2
    label, probability = rows["label"].to_numpy(), rows["probability"].to_numpy()
    selections = [top_share(probability, c) for c in CAPACITIES]
    counts = np.vstack([np.ones((1, n), np.uint8), bootstrap_counts(n, resamples, rng=rng)])
    fast = resampled_sums(
        label,
        probability,
        selections=selections,
        codes=codes,
        n_groups=n_groups,
        counts=np.ascontiguousarray(counts.T),
    )
    for selected, at_capacity in zip(selections, fast, strict=True):
        plain = weighted_sums(Cohort(label, probability, selected, codes, n_groups), counts.astype(float))
        _assert_sums_equal(at_capacity, plain)
        assert not at_capacity.tn[:, 0].any() and not at_capacity.ranked_pairs[:, -1].any()


def test_the_counts_are_the_bootstrap_weights_of_the_same_draws() -> None:
    counts = bootstrap_counts(500, 30, rng=np.random.default_rng(7))
    weights = bootstrap_weights(500, 30, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(counts, weights)
    assert counts.dtype == np.uint8 and (counts.sum(axis=1) == 500).all()


def test_counts_too_large_for_a_byte_get_a_wider_type() -> None:
    draws = np.zeros((3, 300), dtype=np.int64)  # every resample draws row 0, 300 times
    counts = counts_by_row(draws, 300)
    assert counts.dtype == np.uint16
    assert (counts[:, 0] == 1).all() and (counts[0, 1:] == 300).all() and not counts[1:, 1:].any()


def test_bad_input_to_the_one_pass_sums_is_refused() -> None:
    label, probability = np.array([0, 1, 1]), np.array([0.1, 0.5, 0.9])
    ones = np.ones((3, 2), dtype=np.uint8)
    with pytest.raises(ValueError, match="group codes"):
        resampled_sums(label, probability, selections=[], codes=np.array([0, 1, 2]), n_groups=2, counts=ones)
    with pytest.raises(ValueError, match="whole numbers"):
        resampled_sums(label, probability, selections=[], codes=np.zeros(3), n_groups=1, counts=ones * 0.5)
    with pytest.raises(ValueError, match="rows"):
        resampled_sums(label, probability, selections=[], codes=np.zeros(3), n_groups=1, counts=ones[:2])


def _audit(rows: pd.DataFrame, *, resamples: int, columns: tuple[str, ...] = ("group",)) -> list:  # type: ignore[type-arg]
    policy = dataclasses.replace(
        load_policy(), weeks=(8,), capacities=CAPACITIES, bootstrap_resamples=resamples, min_group_size=10
    )
    labels = rows.drop_duplicates("student_id").set_index("student_id")[list(columns)]
    return audit_cohorts(rows, labels, policy=policy)


def test_the_audits_point_estimates_equal_fairlearn_metricframe() -> None:
    rows = _rows(np.random.default_rng(11), 4000).drop_duplicates("student_id").reset_index(drop=True)
    audits = _audit(rows, resamples=20)
    for audit in audits:
        selected = top_share(rows["probability"].to_numpy(), audit.capacity).astype(int)
        rates = MetricFrame(
            metrics={
                "selection_rate": selection_rate,
                "false_negative_rate": false_negative_rate,
                "false_positive_rate": false_positive_rate,
                "precision": partial(precision_score, zero_division=0),
                "size": lambda y_true, y_pred: float(len(y_true)),
            },
            y_true=rows["label"],
            y_pred=selected,
            sensitive_features=rows["group"],
        ).by_group
        auc = MetricFrame(
            metrics=roc_auc_score,
            y_true=rows["label"],
            y_pred=rows["probability"],
            sensitive_features=rows["group"],
        ).by_group
        assert [g.group for g in audit.groups] == list(rates.index)
        for group in audit.groups:
            assert not group.suppressed and group.students == rates.loc[group.group, "size"]
            for metric in ("selection_rate", "false_negative_rate", "false_positive_rate", "precision"):
                assert group.metrics[metric][0] == pytest.approx(rates.loc[group.group, metric], abs=1e-12)
            assert group.metrics["auc"][0] == pytest.approx(auc.loc[group.group], abs=1e-12)


def test_the_audits_intervals_are_the_plain_paths_for_the_same_seed() -> None:
    rows = _rows(np.random.default_rng(5), 1500)
    resamples = 60
    audits = _audit(rows, resamples=resamples)
    first_group = rows.drop_duplicates("student_id").set_index("student_id")["group"]
    codes, names = pd.factorize(first_group.reindex(rows["student_id"]), sort=True)
    rng = np.random.default_rng(load_policy().seed)  # the policy's seed, first (and only) week
    # Students are drawn, not rows: a student's rows count as often as the student is drawn.
    students = pd.factorize(rows["student_id"])[0]
    assert students.max() + 1 < len(rows)  # some students have several rows here
    drawn = bootstrap_weights(int(students.max()) + 1, resamples, rng=rng)
    weights = np.vstack([np.ones(len(rows)), drawn[:, students]])
    label, probability = rows["label"].to_numpy(), rows["probability"].to_numpy()
    for audit in audits:
        selected = top_share(probability, audit.capacity)
        sums = weighted_sums(Cohort(label, probability, selected, codes, len(names)), weights)
        for g, group in enumerate(audit.groups):
            assert group.group == names[g]
            for metric, (point, low, high) in group.metrics.items():
                expected = _intervals(METRICS[metric].compute(sums), load_policy().confidence)[:, g]
                np.testing.assert_allclose([point, low, high], expected, rtol=1e-10, err_msg=metric)


def test_the_audit_is_the_same_on_one_thread_as_on_several(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _rows(np.random.default_rng(2), 2000, groups=5)
    monkeypatch.setenv("WAYMARK_THREADS", "1")
    one = _audit(rows, resamples=30, columns=("group", "club"))
    monkeypatch.setenv("WAYMARK_THREADS", "3")
    several = _audit(rows, resamples=30, columns=("group", "club"))
    assert [a.attribute for a in several] == ["group", "group", "club", "club"]
    assert repr(one) == repr(several)  # repr: an undefined interval is NaN, and NaN != NaN


def _protected(rows: pd.DataFrame, rng: np.random.Generator) -> ProtectedFrame:
    """Two characteristics with missing values, for most (not all) of the students in ``rows``."""
    students = rows["student_id"].drop_duplicates().to_numpy()[:-25]  # the last 25 have no record
    frame = pd.DataFrame(
        {
            "student_id": students,
            "disability": rng.choice(["N", "Y", None], students.size, p=[0.8, 0.15, 0.05]),
            "age_band": rng.choice(["0-35", "35-55", "55<="], students.size, p=[0.6, 0.3, 0.1]),
        }
    )
    return ProtectedFrame(frame.astype("string"))


def test_every_published_point_estimate_equals_the_metricframe_intersections_included() -> None:
    rng = np.random.default_rng(17)
    rows = _rows(rng, 5000).drop(columns=["group", "club"])  # students with two registrations too
    groups = group_labels(_protected(rows, rng), intersections=True)
    policy = dataclasses.replace(
        load_policy(), weeks=(8,), capacities=CAPACITIES, bootstrap_resamples=20, min_group_size=10
    )
    audits = audit_cohorts(rows, groups, policy=policy)
    assert {a.attribute for a in audits} == {"disability", "age_band", "disability x age_band"}
    compared = 0
    for audit in audits:
        frame = metric_frame(
            rows, groups, week=8, capacity=audit.capacity, attribute=audit.attribute
        ).by_group
        assert [g.group for g in audit.groups] == list(frame.index)
        for group in (g for g in audit.groups if not g.suppressed):
            at = frame.loc[group.group]
            assert group.students == at["students"]
            if "needed_support" not in group.withheld:  # withheld beside a small cell, say
                assert group.positives == at["positives"]
            for metric, (point, _, _) in group.metrics.items():
                assert point == pytest.approx(at[metric], abs=1e-12), (audit.attribute, group.group, metric)
                compared += 1
            for metric, (point, _, _) in group.differences.items():
                reference = frame.loc[audit.reference[metric], metric]
                assert point == pytest.approx(at[metric] - reference, abs=1e-12)
                ratio = at[metric] / reference if reference > 0 else np.nan  # as the audit divides
                assert group.ratios[metric][0] == pytest.approx(ratio, rel=1e-12, nan_ok=True)
    # Every metric of the table is compared somewhere, and small cells are in the audit's results too.
    assert compared > 100
    assert any(g.suppressed for a in audits for g in a.groups)


def test_the_metricframe_reads_characteristics_through_the_protected_reader(tmp_path: Path) -> None:
    folder = tmp_path / "cohort"
    generate(folder, SynthConfig(students=400, seed=3))
    protected = load_protected_characteristics(folder)
    assert protected is not None
    groups = audit_groups(folder)
    pd.testing.assert_frame_equal(groups, group_labels(protected, intersections=True))
    assert [c for c in groups.columns if " x " not in c] == list(protected.attributes)
    rng = np.random.default_rng(0)
    scored = pd.DataFrame(
        {"student_id": groups.index, "week": 8, "label": rng.integers(0, 2, len(groups))}
    ).assign(probability=lambda f: np.clip(0.3 * f["label"] + 0.7 * rng.random(len(f)), 0, 1))
    attribute = protected.attributes[0]
    frame = metric_frame(scored, groups, week=8, capacity=0.2, attribute=attribute)
    assert frame.overall["selection_rate"] == pytest.approx(0.2, abs=0.01)
    assert set(frame.by_group.index) == set(groups[attribute])
    with pytest.raises(ValueError, match="no scored rows in week 9"):
        metric_frame(scored, groups, week=9, capacity=0.2, attribute=attribute)


def test_a_student_with_two_rows_is_drawn_once_so_duplicated_rows_leave_every_interval_as_it_was() -> None:
    # Every student's row twice (two modules with the same figures): with students drawn, each resample
    # weighs both copies alike, so every rate, AUC and interval is the one-row cohort's. Drawing rows
    # would treat the copies as independent students and narrow every interval.
    rows = _rows(np.random.default_rng(8), 1500).drop_duplicates("student_id").sort_values("student_id")
    once = _audit(rows.reset_index(drop=True), resamples=40)
    twice = _audit(
        pd.concat([rows, rows]).sort_values("student_id", kind="stable").reset_index(drop=True), resamples=40
    )
    for a, b in zip(once, twice, strict=True):
        for g, h in zip(a.groups, b.groups, strict=True):
            assert h.students == g.students  # students, not rows
            for metric, interval in g.metrics.items():
                np.testing.assert_allclose(h.metrics[metric], interval, rtol=1e-9, err_msg=metric)


def test_the_quality_gate_draws_students_too() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {"student_id": [f"S{i}" for i in range(600)], "label": rng.integers(0, 2, 600)}
    ).assign(probability=lambda f: np.clip(0.3 + 0.4 * f["label"] + rng.normal(0, 0.2, 600), 0.01, 0.99))
    one = measure_week(8, frame, resamples=50, confidence=0.95, rng=np.random.default_rng(1))
    two = measure_week(
        8, pd.concat([frame, frame]), resamples=50, confidence=0.95, rng=np.random.default_rng(1)
    )
    for measure in ("auc", "ece"):
        np.testing.assert_allclose(two.candidate[measure], one.candidate[measure], rtol=1e-9)
