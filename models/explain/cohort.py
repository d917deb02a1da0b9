"""Explained indicators for a whole cohort: estimate, interval, factors, strengths, what could change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from waymark.models.bundle import ModelBundle
from waymark.models.contributions import Contributions, contributions
from waymark.models.data import ensure_feature_safe
from waymark.models.explain.change import STEPS, smallest_change
from waymark.models.explain.families import CONTEXT_FAMILIES, FACTOR_FAMILIES, family_columns, family_sums
from waymark.models.explain.sentences import brief, describe
from waymark.models.features.catalogue import FAMILIES, KEYS, SOURCES
from waymark.models.uncertainty import intervals

THRESHOLD = 0.05  # contributions (log-odds) smaller than this are not worth a sentence
TOP = 3


@dataclass(frozen=True, eq=False)
class ExplainedCohort:
    """One row per student with everything an indicator record holds."""

    indicators: pd.DataFrame
    contributions: Contributions


def explain_cohort(bundle: ModelBundle, features: pd.DataFrame) -> ExplainedCohort:
    """Score and explain every row of ``features`` (keys plus the model's features).

    Returns
    -------
    ExplainedCohort
        ``indicators`` has the keys, ``probability``, ``lower``, ``upper``, ``factors``,
        ``strengths``, ``context`` (lists of dicts), ``what_could_change`` (dict or None) and
        ``coverage`` and ``engagement`` (dicts); ``contributions`` holds the exact contributions behind them.
    """
    features = ensure_feature_safe(features, "features to score").reset_index(drop=True)
    x = bundle.matrix(features)
    probability = bundle.probability(x)
    contrib = contributions(bundle, x)
    cols = family_columns(bundle.feature_names)
    sums = family_sums(contrib.values, cols)
    rows = cast(list[dict[str, Any]], features.to_dict("records"))
    factors, strengths, context = _statements(rows, sums)
    lower, upper = intervals(bundle.reliability, probability)
    out = features[list(KEYS)].copy()
    out["probability"], out["lower"], out["upper"] = probability, lower, upper
    changes = _changes(
        bundle,
        x,
        probability=probability,
        features=features,
        rows=rows,
        sums=sums,
        cols=cols,
        factors=factors,
    )
    out = out.assign(
        factors=_objects(factors),
        strengths=_objects(strengths),
        context=_objects(context),
        what_could_change=_objects(changes),
        coverage=_objects([_coverage(r) for r in rows]),
        engagement=_objects([_engagement(r) for r in rows]),
    )
    return ExplainedCohort(out, contrib)


def _objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _applies(family: str, row: dict[str, Any]) -> bool:
    # A source that is not recorded for the module cannot speak about the student.
    return not (family == "attendance" and row["src_attendance_recorded"] < 1)


def _statement(family: str, row: dict[str, Any], *, value: float) -> dict[str, Any]:
    return {
        "family": family,
        "title": FAMILIES[family].title,
        "sentence": describe(family, row),
        "contribution": round(float(value), 4),
    }


def _statements(
    rows: list[dict[str, Any]], sums: dict[str, np.ndarray]
) -> tuple[list[list[dict[str, Any]]], list[list[dict[str, Any]]], list[list[dict[str, Any]]]]:
    factors, strengths, context = [], [], []
    actionable = [f for f in FACTOR_FAMILIES if f in sums]
    for i, row in enumerate(rows):
        vals = {f: float(sums[f][i]) for f in actionable if _applies(f, row)}
        up = sorted((f for f, v in vals.items() if v >= THRESHOLD), key=lambda f: -vals[f])[:TOP]
        down = sorted((f for f, v in vals.items() if v <= -THRESHOLD), key=lambda f: vals[f])[:TOP]
        factors.append([_statement(f, row, value=vals[f]) for f in up])
        strengths.append([_statement(f, row, value=vals[f]) for f in down])
        fixed = [f for f in CONTEXT_FAMILIES if f in sums and abs(sums[f][i]) >= THRESHOLD]
        context.append(
            [{"family": f, "title": FAMILIES[f].title, "sentence": describe(f, row)} for f in fixed]
        )
    return factors, strengths, context


def _changes(
    bundle: ModelBundle,
    x: np.ndarray,
    *,
    probability: np.ndarray,
    features: pd.DataFrame,
    rows: list[dict[str, Any]],
    sums: dict[str, np.ndarray],
    cols: dict[str, np.ndarray],
    factors: list[list[dict[str, Any]]],
) -> list[dict[str, Any] | None]:
    tried = [f for f in FACTOR_FAMILIES if f in sums]
    candidate = np.zeros((len(rows), len(tried)), dtype=bool)
    for i, found in enumerate(factors):
        for item in found:
            candidate[i, tried.index(item["family"])] = True
    group = features.groupby(["module_id", "presentation_id", "week"], sort=False).ngroup().to_numpy()
    best = smallest_change(
        bundle,
        x,
        probability=probability,
        group=group,
        sums=[sums[f] for f in tried],
        columns=[cols[f] for f in tried],
        candidate=candidate,
    )
    out: list[dict[str, Any] | None] = []
    for i in range(len(rows)):
        f = int(best.family[i])
        if f < 0:
            out.append(None)
            continue
        family, peer = tried[f], rows[int(best.peer[i])]
        now, then = float(probability[i]), float(best.probability[i])
        out.append(
            {
                "family": family,
                "title": FAMILIES[family].title,
                "sentence": (
                    f"{FAMILIES[family].title}: if this were like that of {STEPS[int(best.step[i])][1]} "
                    f"({brief(family, peer)}), the estimate would be about {round(100 * then)}% "
                    f"rather than {round(100 * now)}%."
                ),
                "estimate_after": round(then, 4),
            }
        )
    return out


def _coverage(row: dict[str, Any]) -> dict[str, Any]:
    recorded = [s for s in SOURCES if row[f"src_{s}_recorded"] >= 1]
    return {
        "sources_recorded": recorded,
        "sources_not_recorded": [s for s in SOURCES if s not in recorded],
        "activity_recorded_for_student": bool(row["act_any"] >= 1),
        "marked_work_available": bool(row["asm_has_score"] >= 1),
    }


def _engagement(row: dict[str, Any]) -> dict[str, int]:
    """The minimal summary a placement supervisor may see: counts, no factors, no estimate."""
    return {
        "active_days_last_14": round(row["act_active_days_last14"]),
        "assessments_due_so_far": round(row["asm_due"]),
        "assessments_submitted": round(row["asm_submitted"]),
    }
