"""What a scoring run keeps about itself for monitoring: counts per module presentation, never a student.

For each module presentation scored: its features counted in the bins the model's training reference
gives for that week (``models.drift``), its estimates counted in tenths, and how many of its scored
students were active from each source in each week so far. ``waymark monitor`` compares these with
the training reference and with the run before, without re-reading any data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from waymark.models import drift

PRESENTATION = ["module_id", "presentation_id"]


def summarise(
    features: pd.DataFrame,
    indicators: pd.DataFrame,
    *,
    activity: pd.DataFrame,
    reference: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    """The run's ``run_summaries`` rows (without ``run_id``): three kinds per module presentation.

    Parameters
    ----------
    features
        The scored registrations' keys (with ``week``) and features.
    indicators
        Their estimates: keys and ``probability``.
    activity
        The activity of the scored presentations (``student_id``, keys, ``source``, ``day``).
    reference
        The model bundle's training reference, or None for a bundle trained without one.
    """
    activity = activity.astype({"source": str, "module_id": str, "presentation_id": str})
    sources = sorted(activity["source"].unique())
    by_module = activity.groupby(PRESENTATION, sort=False)
    estimates = {key: g["probability"] for key, g in indicators.groupby(PRESENTATION, sort=False)}
    out = []
    for (module, pres), group in features.groupby(PRESENTATION, sort=True):
        week = int(group["week"].max())
        keys = {"module_id": str(module), "presentation_id": str(pres), "week": week}
        found = (module, pres) in by_module.groups
        acted = by_module.get_group((module, pres)) if found else activity.head(0)
        mine = estimates[(module, pres)]
        out += [
            {**keys, "kind": "features", "summary": _features(group, week=week, reference=reference)},
            {**keys, "kind": "estimates", "summary": _estimates(mine, week=week, reference=reference)},
            {**keys, "kind": "coverage", "summary": _coverage(group, acted, week=week, sources=sources)},
        ]
    return out


def _features(group: pd.DataFrame, *, week: int, reference: Mapping[str, Any] | None) -> dict[str, Any]:
    by_week = (reference or {}).get("features", {})
    ref_week = drift.reference_week(by_week, week)
    if ref_week is None:
        return {"rows": len(group), "reference_week": None, "counts": {}, "expected": {}}
    bins = by_week[ref_week]
    counted = {
        name: drift.counts(group[name].to_numpy(dtype=np.float64), ref["edges"])
        for name, ref in bins.items()
        if name in group.columns
    }
    expected = {name: bins[name]["shares"] for name in counted}
    return {"rows": len(group), "reference_week": int(ref_week), "counts": counted, "expected": expected}


def _estimates(values: pd.Series, *, week: int, reference: Mapping[str, Any] | None) -> dict[str, Any]:
    by_week = (reference or {}).get("estimates", {})
    ref_week = drift.reference_week(by_week, week)
    probability = values.to_numpy(dtype=np.float64)
    return {
        "rows": len(probability),
        "mean": float(probability.mean()),
        "counts": drift.counts(probability, drift.ESTIMATE_EDGES),
        "expected": by_week[ref_week] if ref_week is not None else None,
    }


def _coverage(group: pd.DataFrame, acted: pd.DataFrame, *, week: int, sources: list[str]) -> dict[str, Any]:
    """Scored students active from each source in each week 1..``week`` (days before the start left out)."""
    scored = acted[acted["student_id"].isin(group["student_id"]) & acted["day"].between(0, 7 * week - 1)]
    weeks = scored.assign(week=scored["day"] // 7 + 1)
    active = weeks.groupby(["source", "week"], observed=True)["student_id"].nunique()
    return {
        "registered": int(group["student_id"].nunique()),
        "active": {
            source: [int(active.get((source, w), 0)) for w in range(1, week + 1)] for source in sources
        },
    }
