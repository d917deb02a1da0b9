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
from waymark.models.features.query import DUCKDB

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

    Returns
    -------
    list of dict
        By module presentation in key order: ``features``, ``estimates`` and ``coverage``.
    """
    sources = sorted(str(v) for v in activity["source"].dropna().unique())
    active = _active_counts(features, activity)
    estimates = {key: g["probability"] for key, g in indicators.groupby(PRESENTATION, sort=False)}
    out = []
    for (module, pres), group in features.groupby(PRESENTATION, sort=True):
        week = int(group["week"].max())
        keys = {"module_id": str(module), "presentation_id": str(pres), "week": week}
        mine = estimates[(module, pres)]
        coverage = {
            "registered": int(group["student_id"].nunique()),
            "active": {
                source: [active.get((str(module), str(pres), source, w), 0) for w in range(1, week + 1)]
                for source in sources
            },
        }
        out += [
            {**keys, "kind": "features", "summary": _features(group, week=week, reference=reference)},
            {**keys, "kind": "estimates", "summary": _estimates(mine, week=week, reference=reference)},
            {**keys, "kind": "coverage", "summary": coverage},
        ]
    return out


def _active_counts(features: pd.DataFrame, activity: pd.DataFrame) -> dict[tuple[str, str, str, int], int]:
    """Scored students active from each source in each week 1..W of their module presentation.

    W is the presentation's scored week; activity before the start (day < 0) or from week W + 1 on
    is left out. One aggregate over the whole activity table (DuckDB), not one pass per presentation.
    """
    scored = features[[*PRESENTATION, "student_id", "week"]].astype(
        {"module_id": str, "presentation_id": str, "student_id": str}
    )
    scored = scored.assign(week=scored.groupby(PRESENTATION)["week"].transform("max").astype("int64"))
    counted = DUCKDB.query(
        "SELECT a.module_id, a.presentation_id, a.source, CAST(a.day // 7 + 1 AS BIGINT) AS week, "
        "count(DISTINCT a.student_id) AS active "
        "FROM activity a JOIN (SELECT DISTINCT * FROM scored) s "
        "ON a.module_id = s.module_id AND a.presentation_id = s.presentation_id "
        "AND a.student_id = s.student_id "
        "WHERE a.day BETWEEN 0 AND 7 * s.week - 1 AND a.source IS NOT NULL GROUP BY ALL",
        activity=activity[[*PRESENTATION, "student_id", "source", "day"]],
        scored=scored,
    )
    return {
        (str(m), str(p), str(src), int(w)): int(n)
        for m, p, src, w, n in counted.itertuples(index=False, name=None)
    }


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
