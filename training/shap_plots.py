"""SHAP's own global plots, drawn from Waymark's exact contributions (the one module importing shap).

The values are ``models.contributions``: exact SHAP values of the model's raw output, the margin
(log-odds before calibration), so SHAP's plots show them without SHAP recomputing anything. They
describe what the model learned over a sample of training rows (pooled over weeks); they are for
data scientists and the MLflow run, never for a student's page, where the plain-language factors
of ``models.explain`` stand instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from waymark.models.bundle import ModelBundle
from waymark.models.contributions import contributions

with warnings.catch_warnings():
    # shap 0.51 builds its colour maps with a call matplotlib 3.11 marks for deprecation; not ours.
    warnings.filterwarnings(
        "ignore", message="The set_(bad|over|under) function", category=PendingDeprecationWarning
    )
    # In a notebook without ipywidgets, its progress bars (unused here) fall back to text, and say so.
    warnings.filterwarnings("ignore", message="IProgress not found")
    import shap

#: Rows explained for the global plots: enough for the shapes, few enough to draw in about a second.
SAMPLE_ROWS = 1000
TOP_FEATURES = 3
MARGIN = "contribution to the raw output (log-odds, before calibration)"
MEAN_MARGIN = "mean absolute contribution to the raw output (log-odds)"


def explanation(
    bundle: ModelBundle, rows: pd.DataFrame, *, sample: int = SAMPLE_ROWS, seed: int = 0
) -> shap.Explanation:
    """A ``shap.Explanation`` of a sample of ``rows`` from Waymark's exact contributions.

    Parameters
    ----------
    bundle
        The model.
    rows
        Feature rows (any extra columns are ignored).
    sample
        At most this many rows, drawn without replacement (all of them when there are fewer).
    seed
        Seed of the draw.

    Returns
    -------
    shap.Explanation
        Values and base values on the model's margin (log-odds before calibration); ``data``
        holds the rows' feature values, so plots colour by them.
    """
    if len(rows) > sample:
        rows = rows.sample(n=sample, random_state=seed)
    x = bundle.matrix(rows)
    result = contributions(bundle, x)
    return shap.Explanation(
        values=result.values,
        base_values=np.full(len(x), result.base),
        data=x,
        feature_names=list(bundle.feature_names),
    )


def mean_contributions(explained: shap.Explanation) -> pd.DataFrame:
    """Each feature's mean absolute and mean signed contribution, largest absolute first."""
    values = np.asarray(explained.values)
    table = pd.DataFrame(
        {"mean_abs_contribution": np.abs(values).mean(axis=0), "mean_contribution": values.mean(axis=0)},
        index=pd.Index(list(explained.feature_names), name="feature"),
    )
    return table.sort_values("mean_abs_contribution", ascending=False, kind="stable")


def top_features(explained: shap.Explanation, *, top: int = TOP_FEATURES) -> list[str]:
    """The ``top`` features by mean absolute contribution, largest first."""
    return [str(name) for name in mean_contributions(explained).index[:top]]


def global_figures(explained: shap.Explanation, *, top: int = TOP_FEATURES) -> dict[str, Figure]:
    """SHAP's beeswarm and bar plots, and a dependence (scatter) plot for each of the top features.

    Keys are file stems: ``beeswarm``, ``bar``, ``dependence_<feature>``. The figures are closed in
    pyplot (nothing stays open), and still draw and save.
    """
    out = {
        "beeswarm": _drawn(
            lambda ax: shap.plots.beeswarm(explained, ax=ax, show=False, plot_size=None), xlabel=MARGIN
        ),
        "bar": _drawn(lambda ax: shap.plots.bar(explained, ax=ax, show=False), xlabel=MEAN_MARGIN),
    }
    for name in top_features(explained, top=top):
        out[f"dependence_{name}"] = _drawn(
            partial(_dependence, explained[:, name]),
            ylabel=f"contribution of {name}\n(log-odds, before calibration)",
        )
    return out


def save_global_plots(explained: shap.Explanation, folder: Path, *, top: int = TOP_FEATURES) -> list[Path]:
    """``global_figures`` saved as PNG files in ``folder``; returns their paths."""
    paths = []
    for stem, fig in global_figures(explained, top=top).items():
        path = folder / f"{stem}.png"
        fig.savefig(path, dpi=90, bbox_inches="tight")
        paths.append(path)
    return paths


def _dependence(column: shap.Explanation, ax: Axes) -> None:
    shap.plots.scatter(column, ax=ax, show=False)


def _drawn(draw: Callable[[Axes], object], *, xlabel: str | None = None, ylabel: str | None = None) -> Figure:
    # SHAP's plots draw through pyplot (colour bars, current axes), so the figure is pyplot's; it is
    # closed in the registry whatever happens, so a training run leaves no figure open.
    fig, ax = plt.subplots(figsize=(8, 6))
    try:
        draw(ax)
        # SHAP's own labels say "SHAP value"; these are contributions to the margin, and say so.
        if xlabel:
            ax.set_xlabel(xlabel)
        if ylabel:
            ax.set_ylabel(ylabel)
    finally:
        plt.close(fig)
    return fig
