"""The extension points are tables: each family and each fairness metric is declared once, completely."""

from __future__ import annotations

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
