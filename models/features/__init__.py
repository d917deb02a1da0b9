"""Leakage-free weekly features, built from validated learning data with an explicit cut-off."""

from waymark.models.features.build import build_features
from waymark.models.features.catalogue import FAMILIES, FEATURE_NAMES, FEATURES, KEYS, Family, Feature, Kind
from waymark.models.features.population import population

__all__ = [
    "FAMILIES",
    "FEATURES",
    "FEATURE_NAMES",
    "KEYS",
    "Family",
    "Feature",
    "Kind",
    "build_features",
    "population",
]
