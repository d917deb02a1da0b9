"""Exact contributions summed into the families a person understands."""

from __future__ import annotations

import numpy as np

from waymark.models.features.catalogue import FEATURES, Kind, families_of

FACTOR_FAMILIES = families_of(Kind.FACTOR)
# Fixed facts: they may shape an indicator, and are described neutrally, never as something to change.
CONTEXT_FAMILIES = families_of(Kind.FIXED)
_FAMILY_OF = {f.name: f.family for f in FEATURES}


def family_columns(feature_names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """For each family, the positions of its features in a model's feature order."""
    out: dict[str, list[int]] = {}
    for i, name in enumerate(feature_names):
        out.setdefault(_FAMILY_OF[name], []).append(i)
    return {fam: np.array(cols, dtype=np.int64) for fam, cols in out.items()}


def family_sums(
    values: np.ndarray, columns: dict[str, np.ndarray], *, own: dict[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Each family's summed contribution per row (they add up to the row's total).

    With ``own`` (per family, rows by its features: ``typical.Standing.own``), only the features that
    are the row's own are summed.
    """
    if own is None:
        return {fam: values[:, cols].sum(axis=1) for fam, cols in columns.items()}
    return {fam: (values[:, cols] * own[fam]).sum(axis=1) for fam, cols in columns.items()}
