"""Explained indicators for a whole cohort: estimate, interval, factors, strengths, what could change."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from waymark.models.bundle import ModelBundle
from waymark.models.contributions import Contributions, contributions
from waymark.models.data import ensure_feature_safe
from waymark.models.explain.change import STEPS, smallest_change
from waymark.models.explain.coverage import SourceCoverage, family_sources, recorded_sources
from waymark.models.explain.families import CONTEXT_FAMILIES, FACTOR_FAMILIES, family_columns, family_sums
from waymark.models.explain.sentences import brief, describe, describe_cohort
from waymark.models.explain.typical import Standing, cohort_standing
from waymark.models.features.catalogue import FAMILIES, KEYS
from waymark.models.uncertainty import intervals

THRESHOLD = 0.05  # contributions (log-odds) smaller than this are not worth a sentence
TOP = 3


@dataclass(frozen=True, eq=False)
class ExplainedCohort:
    """One row per student with everything an indicator record holds."""

    indicators: pd.DataFrame
    contributions: Contributions


def explain_cohort(
    bundle: ModelBundle, features: pd.DataFrame, *, sources: SourceCoverage | None = None
) -> ExplainedCohort:
    """Score and explain every row of ``features`` (keys plus the model's features).

    Parameters
    ----------
    bundle
        The model.
    features
        Keys plus the model's features.
    sources
        Which sources each module presentation records and their labels (``SourceCoverage.of``);
        without it, the built-in sources' flags in ``features`` and their built-in names.

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
    group = features.groupby(["module_id", "presentation_id", "week"], sort=False).ngroup().to_numpy()
    said = _Said(sources or SourceCoverage(), recorded_sources(features, sources))
    standing = cohort_standing(x, group=group, columns=cols)
    factors, strengths, context = _statements(rows, sums, standing=standing, said=said)
    lower, upper = intervals(bundle.reliability, probability)
    out = features[list(KEYS)].copy()
    out["probability"], out["lower"], out["upper"] = probability, lower, upper
    changes = _changes(
        bundle,
        x,
        probability=probability,
        group=group,
        rows=rows,
        sums=sums,
        cols=cols,
        factors=factors,
        said=said,
    )
    out = out.assign(
        factors=_objects(factors),
        strengths=_objects(strengths),
        context=_objects(context),
        what_could_change=_objects(changes),
        coverage=_objects([_coverage(r, said.coverage(i)) for i, r in enumerate(rows)]),
        engagement=_objects([_engagement(r) for r in rows]),
    )
    return ExplainedCohort(out, contrib)


def _objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


@dataclass(frozen=True, eq=False)
class _Said:
    """What each row's module records, and the labels each family's sentence names (cached per module)."""

    sources: SourceCoverage
    recorded: list[tuple[str, ...]]
    _labels: dict[tuple[tuple[str, ...], str], tuple[str, ...] | None] = field(default_factory=dict)
    _coverage: dict[tuple[str, ...], tuple[list[str], list[str]]] = field(default_factory=dict)

    def labels(self, i: int, family: str) -> tuple[str, ...] | None:
        """Labels of the recorded sources ``family`` is built from; None when it is not built from any.

        An empty tuple means the module records none of its sources: the family says nothing.
        """
        key = (self.recorded[i], family)
        if key not in self._labels:
            fed = family_sources(family, self.recorded[i])
            self._labels[key] = None if fed is None else tuple(self.sources.label(s) for s in fed)
        return self._labels[key]

    def coverage(self, i: int) -> tuple[list[str], list[str]]:
        """Labels of the sources recorded for row ``i``'s module, and of those that are not."""
        recorded = self.recorded[i]
        if recorded not in self._coverage:
            missing = [s for s in self.sources.known if s not in recorded]
            self._coverage[recorded] = (
                [self.sources.label(s) for s in recorded],
                [self.sources.label(s) for s in missing],
            )
        return self._coverage[recorded]


def _statement(family: str, row: dict[str, Any], *, value: float, labels: tuple[str, ...]) -> dict[str, Any]:
    return {
        "family": family,
        "title": FAMILIES[family].title,
        "sentence": describe(family, row, sources=labels),
        "contribution": round(float(value), 4),
    }


def _context(family: str, sentence: str) -> dict[str, Any]:
    return {"family": family, "title": FAMILIES[family].title, "sentence": sentence}


def _statements(
    rows: list[dict[str, Any]], sums: dict[str, np.ndarray], *, standing: dict[str, Standing], said: _Said
) -> tuple[list[list[dict[str, Any]]], list[list[dict[str, Any]]], list[list[dict[str, Any]]]]:
    described = [f for f in (*FACTOR_FAMILIES, *CONTEXT_FAMILIES) if f in sums]
    # Python lists, read once per row and family (numpy scalars would be most of the time here).
    value = {f: sums[f].tolist() for f in described}
    apart = {f: standing[f].apart.tolist() for f in described}
    shared = {f: standing[f].shared.tolist() for f in described}
    factors, strengths, context = [], [], []
    for i, row in enumerate(rows):
        vals, labels, fixed, facts = {}, {}, [], []
        for f in described:
            named, v = said.labels(i, f), value[f][i]
            # A family built only from sources the module does not record is coverage, nothing else.
            if named == () or abs(v) < THRESHOLD:
                continue
            labels[f] = named or ()
            if apart[f][i] and FAMILIES[f].actionable:
                vals[f] = v
            elif apart[f][i]:
                fixed.append(_context(f, describe(f, row, sources=labels[f])))
            elif shared[f][i] > 0:
                facts.append(_context(f, describe_cohort(f, row, share=shared[f][i], sources=labels[f])))
        up = sorted((f for f, v in vals.items() if v > 0), key=lambda f: -vals[f])[:TOP]
        down = sorted((f for f, v in vals.items() if v < 0), key=lambda f: vals[f])[:TOP]
        factors.append([_statement(f, row, value=vals[f], labels=labels[f]) for f in up])
        strengths.append([_statement(f, row, value=vals[f], labels=labels[f]) for f in down])
        context.append(fixed + _once(facts))
    return factors, strengths, context


def _once(facts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each cohort-wide fact once, even when several families say it."""
    out: list[dict[str, Any]] = []
    for fact in facts:
        if all(fact["sentence"] != kept["sentence"] for kept in out):
            out.append(fact)
    return out


def _changes(
    bundle: ModelBundle,
    x: np.ndarray,
    *,
    probability: np.ndarray,
    group: np.ndarray,
    rows: list[dict[str, Any]],
    sums: dict[str, np.ndarray],
    cols: dict[str, np.ndarray],
    factors: list[list[dict[str, Any]]],
    said: _Said,
) -> list[dict[str, Any] | None]:
    tried = [f for f in FACTOR_FAMILIES if f in sums]
    candidate = np.zeros((len(rows), len(tried)), dtype=bool)
    for i, found in enumerate(factors):
        for item in found:
            candidate[i, tried.index(item["family"])] = True
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
                    f"({brief(family, peer, sources=said.labels(i, family) or ())}), "
                    f"the estimate would be about {round(100 * then)}% "
                    f"rather than {round(100 * now)}%."
                ),
                "estimate_after": round(then, 4),
            }
        )
    return out


def _coverage(row: dict[str, Any], sources: tuple[list[str], list[str]]) -> dict[str, Any]:
    recorded, missing = sources
    return {
        "sources_recorded": list(recorded),
        "sources_not_recorded": list(missing),
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
