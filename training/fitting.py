"""Fitting: compare model families, refit, Platt-scale (the choice: ``training.choice``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from waymark.models.estimators import FAMILIES, THREADED_FAMILIES, monotone_constraints, on_usable_cores
from waymark.models.features import FEATURE_NAMES
from waymark.models.threads import cores
from waymark.training.evaluation import weekly_metrics


@dataclass(frozen=True)
class FitConfig:
    """Knobs of a training run."""

    seed: int = 0
    families: tuple[str, ...] = ("logistic", "gbm")
    gbm_estimators: int = 300
    # LightGBM settings replacing models.estimators.GBM_PARAMS, as (name, value) pairs: what a search on
    # the validation presentations chose (training.search), or set by hand. Empty: the defaults.
    gbm_params: tuple[tuple[str, float | int], ...] = ()
    # Search those settings on the validation presentations before the family is chosen (slower; the
    # defaults are what this search chose on OULAD).
    search: bool = False
    # Fix the direction of what a student does (models.estimators.MONOTONE_DIRECTIONS) in the gbm family.
    # Off by default: on OULAD's validation presentations it cost about 0.001 of mean weekly AUC.
    monotone: bool = False
    cv_folds: int = 3
    # Registrations contacted before their outcome (training.censoring): ignore, exclude_after_contact
    # or weight.
    intervention_policy: str = "ignore"


def unfitted(family: str, config: FitConfig, *, threads: int | None = None) -> Pipeline:
    """One family's pipeline with the run's settings, not yet fitted (``threads``: see ``fit``)."""
    return FAMILIES[family](
        config.seed,
        n_estimators=config.gbm_estimators,
        params=dict(config.gbm_params),
        monotone=monotone_constraints(FEATURE_NAMES) if config.monotone else (),
        threads=threads,
    )


def fit(
    family: str,
    config: FitConfig,
    *,
    x: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray | None = None,
    threads: int | None = None,
) -> Pipeline:
    """Fit one family's pipeline (each row weighted by ``weight`` when given).

    ``threads`` is what a family in ``THREADED_FAMILIES`` may use (None: the usable cores); it does not
    change the fitted model.
    """
    pipeline = unfitted(family, config, threads=threads)
    pipeline.fit(x, y, **({} if weight is None else {"model__sample_weight": weight}))
    return pipeline


def fit_subsets(
    family: str,
    config: FitConfig,
    *,
    x: np.ndarray,
    y: np.ndarray,
    subsets: Sequence[np.ndarray | None],
    weight: np.ndarray | None = None,
) -> list[Pipeline]:
    """``fit`` on each subset of the rows (an index array; None: every row), in the order given.

    The fits are independent, so a family in ``THREADED_FAMILIES`` runs them side by side, each with
    its share of the usable cores: LightGBM uses two threads poorly on a few hundred thousand rows
    (each round's histograms are small), and on OULAD's 390,532 training rows the final fit and three
    calibration folds took 47.9 s as two at a time with a thread each, against 63.0 s one after the
    other with two; the trees are the same, and each is returned set to predict on the usable cores.
    Other families, or one core, fit one after the other. Side by side, as many copies of a subset's
    rows are held at once as fits run (two of 148 MB on OULAD, where one had been). A fit that fails
    raises once the fits already running have ended; those not started are cancelled.
    """

    def one(rows: np.ndarray | None, threads: int) -> Pipeline:
        if rows is None:
            return fit(family, config, x=x, y=y, weight=weight, threads=threads)
        w = None if weight is None else weight[rows]
        return fit(family, config, x=x[rows], y=y[rows], weight=w, threads=threads)

    usable = cores()
    side_by_side = min(usable, len(subsets)) if family in THREADED_FAMILIES else 1
    if side_by_side <= 1:
        return [one(rows, usable) for rows in subsets]
    with ThreadPoolExecutor(side_by_side, thread_name_prefix="waymark-fit") as pool:
        running = [pool.submit(one, rows, usable // side_by_side) for rows in subsets]
        try:
            fitted = [job.result() for job in running]
        except BaseException:  # a failed fit, or an interrupt: start no more
            for job in running:
                job.cancel()
            raise
    return [on_usable_cores(pipeline) for pipeline in fitted]


def margins(pipeline: Pipeline, x: np.ndarray) -> np.ndarray:
    """Raw log-odds of a fitted pipeline."""
    return np.asarray(pipeline.decision_function(x), dtype=np.float64)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function."""
    out: np.ndarray = 1.0 / (1.0 + np.exp(-z))
    return out


def choose_family(
    config: FitConfig, x_fit: np.ndarray, *, y_fit: np.ndarray, validation: pd.DataFrame, x_val: np.ndarray
) -> tuple[str, pd.DataFrame]:
    """Pick the family with the best mean weekly AUC on the temporal validation presentations.

    The test presentations are never looked at. Ties go to the first family listed (the simpler).

    Returns
    -------
    tuple
        The chosen family and a table of validation metrics per family and week.
    """
    tables = []
    for family in config.families:
        pipeline = fit(family, config, x=x_fit, y=y_fit)
        scored = validation.assign(probability=sigmoid(margins(pipeline, x_val)))
        tables.append(weekly_metrics(scored).assign(family=family))
    return best_family(config, tables)


def best_family(config: FitConfig, tables: list[pd.DataFrame]) -> tuple[str, pd.DataFrame]:
    """The family with the best mean weekly AUC over ``tables`` (one per family); ties go to the first listed.

    Returns
    -------
    tuple
        The family and the tables as one, with ``week`` as a column.
    """
    table = pd.concat(tables).reset_index()
    means = table.groupby("family", sort=False)["auc"].mean()
    best = max(config.families, key=lambda f: (means.get(f, -math.inf), -config.families.index(f)))
    return best, table


def platt(margin: np.ndarray, y: np.ndarray, *, weight: np.ndarray | None = None) -> tuple[float, float]:
    """Platt scaling: (a, b) so that sigmoid(a * margin + b) is calibrated on these rows."""
    model = LogisticRegression(C=1e6, max_iter=1000).fit(margin.reshape(-1, 1), y, sample_weight=weight)
    return float(model.coef_[0][0]), float(model.intercept_[0])
