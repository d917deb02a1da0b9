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
from waymark.models.features.query import query

PRESENTATION = ["module_id", "presentation_id"]


#: Scored students active from each source in each week 1..W of their module presentation, W being
#: the presentation's scored week (``scored`` holds the scored keys); activity before the start
#: (day < 0) or from week W + 1 on is left out. One aggregate on either engine, not a pass per presentation.
ACTIVE_SQL = """
WITH s AS (
    SELECT DISTINCT module_id, presentation_id, student_id,
           max(week) OVER (PARTITION BY module_id, presentation_id) AS week
    FROM scored
)
SELECT a.module_id, a.presentation_id, a.source, CAST(a.day // 7 + 1 AS BIGINT) AS week,
       count(DISTINCT a.student_id) AS active
FROM activity a JOIN s
  ON a.module_id = s.module_id AND a.presentation_id = s.presentation_id AND a.student_id = s.student_id
WHERE a.day BETWEEN 0 AND 7 * s.week - 1 AND a.source IS NOT NULL
GROUP BY ALL
"""
ActiveCounts = dict[tuple[str, str, str, int], int]


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
    scored = features[[*PRESENTATION, "student_id", "week"]].astype(
        {"module_id": str, "presentation_id": str, "student_id": str}
    )
    counted = query(
        ACTIVE_SQL, activity=activity[[*PRESENTATION, "student_id", "source", "day"]], scored=scored
    )
    return assemble(
        presentation_summaries(features, reference=reference),
        indicators,
        active=active_counts(counted),
        sources=sorted(str(v) for v in activity["source"].dropna().unique()),
        reference=reference,
    )


def presentation_summaries(features: pd.DataFrame, *, reference: Mapping[str, Any] | None) -> pd.DataFrame:
    """Per module presentation in ``features``: its week, registered students and ``features`` summary.

    Each presentation is summarised from its own rows only, so the scoring job may call this on any
    part of the cohort that holds whole presentations (a Spark partition) and concatenate the results.
    """
    rows = []
    for (module, pres), group in features.groupby(PRESENTATION, sort=True):
        week = int(group["week"].max())
        rows.append(
            {
                "module_id": str(module),
                "presentation_id": str(pres),
                "week": week,
                "registered": int(group["student_id"].nunique()),
                "summary": _features(group, week=week, reference=reference),
            }
        )
    return pd.DataFrame(rows, columns=[*PRESENTATION, "week", "registered", "summary"])


def active_counts(counted: pd.DataFrame) -> ActiveCounts:
    """``ACTIVE_SQL``'s rows, from either engine, by (module, presentation, source, week)."""
    return {
        (str(m), str(p), str(src), int(w)): int(n)
        for m, p, src, w, n in counted[[*PRESENTATION, "source", "week", "active"]].itertuples(
            index=False, name=None
        )
    }


def assemble(
    presentations: pd.DataFrame,
    indicators: pd.DataFrame,
    *,
    active: ActiveCounts,
    sources: list[str],
    reference: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    """The ``run_summaries`` rows from what either engine computed.

    Parameters
    ----------
    presentations
        ``presentation_summaries``' rows, one per module presentation.
    indicators
        The estimates: keys and ``probability``.
    active
        ``active_counts`` of ``ACTIVE_SQL``.
    sources
        Every source in the scored presentations' activity, sorted.
    reference
        The model bundle's training reference, or None.

    Returns
    -------
    list of dict
        By module presentation in key order: ``features``, ``estimates`` and ``coverage``.
    """
    keyed = indicators.astype({"module_id": str, "presentation_id": str})
    estimates = {key: g["probability"] for key, g in keyed.groupby(PRESENTATION, sort=False)}
    out = []
    ordered = presentations.sort_values(PRESENTATION)
    columns = (ordered[c].tolist() for c in (*PRESENTATION, "week", "registered", "summary"))
    for module, pres, week, registered, summary in zip(*columns, strict=True):
        module, pres, week = str(module), str(pres), int(week)
        keys = {"module_id": module, "presentation_id": pres, "week": week}
        coverage = {
            "registered": int(registered),
            "active": {
                source: [active.get((module, pres, source, w), 0) for w in range(1, week + 1)]
                for source in sources
            },
        }
        out += [
            {**keys, "kind": "features", "summary": summary},
            {
                **keys,
                "kind": "estimates",
                "summary": _estimates(estimates[(module, pres)], week=week, reference=reference),
            },
            {**keys, "kind": "coverage", "summary": coverage},
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
