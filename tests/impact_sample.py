"""A small impact report kept as ``waymark evaluate impact`` keeps one, for the API and page tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from waymark.fairness.disclosure import TOO_FEW
from waymark.fairness.impact_report import CANNOT_SHOW, headline
from waymark.models import registry
from waymark.service.impact import EXPERIMENT, REPORT_FILE


def _figures(effect: list[float], naive: list[float], *, contacted: int) -> dict[str, Any]:
    return {
        "effect": effect,
        "naive": naive,
        "contacted": contacted,
        "matched": contacted - 10,
        "comparison": 3 * contacted,
        "completed_contacted": 0.61,
        "completed_comparison": 0.55,
        "balance": {"estimate_logit": [0.92, 0.03], "clicks_per_week": [-0.41, -0.05]},
    }


def sample_report() -> dict[str, Any]:
    """Overall figures, one group shown, and one characteristic whose two groups were too small."""
    return {
        "generated_at": "2026-01-12T09:30:00+00:00",
        "since": "2025-11-01T00:00:00+00:00",
        "data_fingerprint": "f" * 16,
        "settings": {"caliper": 0.2, "resamples": 30, "confidence": 0.95, "seed": 0, "min_group_size": 10},
        "contacted_without_indicator": 3,
        "cannot_show": list(CANNOT_SHOW),
        "overall": _figures([0.06, -0.01, 0.13], [-0.18, -0.24, -0.12], contacted=120),
        "at_the_cut": {
            "followed": True,
            "first_stage": [0.82, 0.7, 0.9],
            "lists": 12,
            "inside": 60,
            "outside": 70,
            "effect": [0.09, 0.01, 0.17],
        },
        "groups": [
            {
                "attribute": "disability",
                "group": "N",
                **_figures([0.05, -0.03, 0.12], [-0.2, -0.27, -0.13], contacted=100),
            },
            {"attribute": "disability", "group": None, "withheld_groups": 1, "why": TOO_FEW},
            {"attribute": "age_band", "group": None, "withheld_groups": 2, "why": TOO_FEW},
        ],
    }


def keep_report(report: dict[str, Any], folder: Path) -> str:
    """Keep ``report`` in the configured MLflow store as ``waymark evaluate impact`` does; its run id."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return registry.record_evaluation(
        EXPERIMENT,
        "impact since 2025-11-01",
        params={"since": "2025-11-01"},
        metrics=headline(report),
        folder=folder,
    )
