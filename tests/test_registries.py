"""The extension points are tables: each family and each fairness metric is declared once, completely."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from waymark.fairness.audit import audit_cohorts
from waymark.fairness.disclosure import DENOMINATORS
from waymark.fairness.metrics import METRICS, Direction
from waymark.fairness.policy import load_policy
from waymark.models.explain.families import CONTEXT_FAMILIES, FACTOR_FAMILIES
from waymark.models.explain.sentences import DESCRIBE
from waymark.models.features.catalogue import CHANNEL_FAMILY, CHANNELS, FAMILIES, FEATURES, Kind


def test_every_described_family_has_a_describer_and_every_describer_a_described_family() -> None:
    described = {name for name, family in FAMILIES.items() if family.kind is not Kind.BACKGROUND}
    assert set(DESCRIBE) - described == set(), "a describer for a family the catalogue does not describe"
    assert described - set(DESCRIBE) == set(), "a family the catalogue describes has no describer"


def test_the_kind_alone_decides_factors_and_neutral_context() -> None:
    assert {f for f in FAMILIES if FAMILIES[f].actionable} == set(FACTOR_FAMILIES)
    assert CONTEXT_FAMILIES == ("registration_timing", "study_history")
    background = set(FAMILIES) - set(FACTOR_FAMILIES) - set(CONTEXT_FAMILIES)
    assert background == {"upcoming_assessments", "data_coverage", "calendar", "cohort_context"}
    assert not any(FAMILIES[f].described for f in background)


def test_every_feature_is_in_a_family_of_the_table_and_every_family_has_features() -> None:
    used = {f.family for f in FEATURES}
    assert used - set(FAMILIES) == set()
    assert set(FAMILIES) - used == set()


def test_every_activity_channel_counts_towards_one_actionable_family() -> None:
    assert set(CHANNEL_FAMILY) == set(CHANNELS)
    assert all(FAMILIES[family].actionable for family in CHANNEL_FAMILY.values())


def test_every_metric_has_a_direction_and_a_plain_language_meaning() -> None:
    for name, metric in METRICS.items():
        assert metric.name == name
        assert isinstance(metric.direction, Direction), name
        assert metric.meaning.strip().endswith("."), f"{name} has no plain-language meaning"


def test_every_metric_names_the_counts_it_rests_on_for_disclosure_control() -> None:
    assert set(METRICS) <= set(DENOMINATORS)


def _scored(students: int = 1500) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(1)
    ids = [f"S{i}" for i in range(students)]
    label = (rng.random(students) < 0.3).astype(int)
    scored = pd.DataFrame(
        {
            "student_id": ids,
            "week": 4,
            "label": label,
            "probability": 0.2 + 0.5 * label * rng.random(students),
        }
    )
    groups = pd.DataFrame(
        {"club": rng.choice(["a", "b", "c"], students)}, index=pd.Index(ids, name="student_id")
    )
    return scored, groups


def test_the_audit_publishes_every_metric_of_the_table_and_no_other() -> None:
    scored, groups = _scored()
    policy = dataclasses.replace(load_policy(), weeks=(4,), bootstrap_resamples=20)
    audits = audit_cohorts(scored, groups, policy=policy)
    assert audits
    published: set[str] = set()
    for audit in audits:
        assert set(audit.reference) == set(METRICS)
        for group in audit.groups:
            assert set(group.metrics) <= set(METRICS)
            assert set(METRICS) <= set(group.metrics) | set(group.withheld)  # published, or said withheld
            assert set(group.differences) | set(group.ratios) <= set(METRICS)
            published |= set(group.metrics)
    assert published == set(METRICS)


def test_the_best_reference_for_a_signed_calibration_gap_is_the_group_nearest_zero() -> None:
    scored, groups = _scored()
    # Indicators: club a's raised by 0.3, club b's lowered by 0.1 (within [0, 1]), club c's exact.
    club = groups["club"].reindex(scored["student_id"]).to_numpy()
    shift = np.select([club == "a", club == "b"], [0.3, -0.1], 0.0)
    scored["probability"] = np.clip(scored["label"] + shift, 0, 1)
    policy = dataclasses.replace(load_policy(), weeks=(4,), bootstrap_resamples=5, reference="best")
    audit = audit_cohorts(scored, groups, policy=policy)[0]
    assert audit.reference["calibration_gap"] == "c"
    assert Direction.LOWER_IS_BETTER.best(np.array([0.2, np.nan, 0.1])) == 2
    assert Direction.HIGHER_IS_BETTER.best(np.array([0.2, np.nan, 0.1])) == 0
