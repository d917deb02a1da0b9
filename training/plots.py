"""Evaluation plots for the MLflow run: ROC by week, reliability, recall at capacity by week."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

SHOWN_WEEKS = (4, 8, 16)


def roc_by_week(scored: pd.DataFrame, path: Path) -> Path:
    """ROC curves of the test weeks 4, 8 and 16 (those present)."""
    fig, ax = _figure(5, 5)
    for week in SHOWN_WEEKS:
        g = scored[scored["week"] == week]
        if 0 < g["label"].sum() < len(g):
            fpr, tpr, _ = roc_curve(g["label"], g["probability"])
            ax.plot(fpr, tpr, label=f"week {week}")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC on the later cohort")
    ax.legend()
    return _save(fig, path)


def reliability(scored: pd.DataFrame, path: Path, *, bins: int = 10) -> Path:
    """Predicted against observed rates, all test weeks pooled."""
    which = np.clip((scored["probability"] * bins).astype(int), 0, bins - 1)
    table = scored.groupby(which).agg(predicted=("probability", "mean"), observed=("label", "mean"))
    fig, ax = _figure(5, 5)
    ax.plot(table["predicted"], table["observed"], marker="o", label="model")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfectly calibrated")
    ax.set(xlabel="predicted probability", ylabel="observed rate", title="Calibration on the later cohort")
    ax.legend()
    return _save(fig, path)


def recall_at_capacity(weekly: pd.DataFrame, path: Path) -> Path:
    """Recall at 10% and 20% capacity, week by week."""
    fig, ax = _figure(7, 4)
    for column, label in (("recall_at_10pct", "top 10%"), ("recall_at_20pct", "top 20%")):
        ax.plot(weekly.index, weekly[column], marker=".", label=label)
    ax.set(xlabel="week", ylabel="recall", ylim=(0, 1), title="Share reached at outreach capacity")
    ax.legend()
    return _save(fig, path)


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    # Figures of their own, outside pyplot's global registry: nothing stays open if drawing fails.
    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
