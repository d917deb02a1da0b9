"""Exact contributions: additive to the model's raw output, equal to LightGBM's own TreeSHAP."""

from __future__ import annotations

from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.champion import candidate, trained
from waymark.models.bundle import ModelBundle
from waymark.models.contributions import TreeTables, contributions
from waymark.models.data import load_learning_data
from waymark.models.estimators import GBM_MAX_DEPTH
from waymark.models.features import build_features
from waymark.models.settings import Settings
from waymark.training.pipeline import TrainingOutcome
from waymark.training.shap_plots import explanation, shap
from waymark.training.tracking import log_and_register


# The session's candidates on synth_dir (the champion, and the logistic one other modules register):
# any trained model of each family will do here, and these are trained once a session.
@pytest.fixture(scope="module")
def linear_outcome(synth_dir: Path) -> TrainingOutcome:
    return trained(synth_dir, candidate("logistic", seed=3))


@pytest.fixture(scope="module")
def trees_outcome(synth_dir: Path) -> TrainingOutcome:
    return trained(synth_dir, candidate("gbm", seed=3))


@pytest.fixture(scope="module")
def rows(synth_dir: Path) -> pd.DataFrame:
    return build_features(load_learning_data(synth_dir), weeks=[3, 9, 20])


@pytest.fixture(scope="module")
def linear(linear_outcome: TrainingOutcome, rows: pd.DataFrame) -> tuple[ModelBundle, np.ndarray]:
    return linear_outcome.bundle, linear_outcome.bundle.matrix(rows)


@pytest.fixture(scope="module")
def trees(trees_outcome: TrainingOutcome, rows: pd.DataFrame) -> tuple[ModelBundle, np.ndarray]:
    return trees_outcome.bundle, trees_outcome.bundle.matrix(rows)


@pytest.mark.parametrize("family", ["linear", "trees"])
def test_contributions_plus_base_equal_the_raw_output(family: str, request: pytest.FixtureRequest) -> None:
    bundle, x = request.getfixturevalue(family)
    result = contributions(bundle, x)
    assert result.values.shape == x.shape
    np.testing.assert_allclose(result.values.sum(axis=1) + result.base, bundle.margin(x), atol=1e-6, rtol=0)


def test_tree_contributions_equal_lightgbm_treeshap(trees: tuple[ModelBundle, np.ndarray]) -> None:
    bundle, x = trees
    assert bundle.booster is not None
    native = bundle.booster.predict(x[:500], pred_contrib=True)
    result = contributions(bundle, x[:500])
    np.testing.assert_allclose(result.values, native[:, :-1], atol=1e-9, rtol=0)
    assert result.base == pytest.approx(native[0, -1], abs=1e-9)


def test_linear_contributions_are_coefficient_times_standardised_distance(
    linear: tuple[ModelBundle, np.ndarray],
) -> None:
    bundle, x = linear
    assert bundle.linear is not None
    p = bundle.linear
    i = int(np.argmax(np.abs(p.coef)))
    expected = p.coef[i] * (x[:, i] - p.mean[i]) / p.scale[i]
    np.testing.assert_allclose(contributions(bundle, x).values[:, i], expected)
    at_mean = np.tile(np.asarray(p.mean), (3, 1))  # a row that does not differ from the mean gets nothing
    np.testing.assert_allclose(contributions(bundle, at_mean).values, 0.0, atol=1e-12)


def test_trees_deeper_than_the_estimators_cap_are_explained_exactly() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4000, 16))
    y = (x[:, :12].sum(axis=1) + rng.normal(size=4000) > 0).astype(int)
    params = {"objective": "binary", "num_leaves": 64, "max_depth": 10, "min_data_in_leaf": 5, "verbose": -1}
    booster = lightgbm.train({**params, "seed": 4, "deterministic": True}, lightgbm.Dataset(x, y), 3)
    tables = TreeTables.from_booster(booster.dump_model(), x.shape[1])
    assert tables.depth.max() > GBM_MAX_DEPTH  # paths test more features than the estimators allow
    result = tables.explain(x[:500])
    native = booster.predict(x[:500], pred_contrib=True)
    np.testing.assert_allclose(result.values, native[:, :-1], atol=1e-9, rtol=0)
    assert result.base == pytest.approx(native[0, -1], abs=1e-9)


def test_tree_contributions_equal_shaps_tree_explainer(trees: tuple[ModelBundle, np.ndarray]) -> None:
    bundle, x = trees
    # Without background data, TreeExplainer is path-dependent TreeSHAP of the raw output (the margin).
    explainer = shap.TreeExplainer(bundle.booster)
    assert explainer.feature_perturbation == "tree_path_dependent" and explainer.model.model_output == "raw"
    theirs = explainer(x[:500])
    ours = contributions(bundle, x[:500])
    np.testing.assert_allclose(ours.values, theirs.values, atol=1e-9, rtol=0)
    np.testing.assert_allclose(ours.base, theirs.base_values, atol=1e-9, rtol=0)


def test_linear_contributions_equal_shaps_linear_explainer(linear: tuple[ModelBundle, np.ndarray]) -> None:
    bundle, x = linear
    assert bundle.linear is not None
    p = bundle.linear
    mean, scale, coef = np.asarray(p.mean), np.asarray(p.scale), np.asarray(p.coef)
    # The model on raw features is margin = x @ (coef / scale) + intercept - coef @ (mean / scale).
    model = (coef / scale, p.intercept - coef @ (mean / scale))
    # Waymark's values are interventional (features independent) against the training mean: an
    # Independent masker given that mean. The covariance does not enter interventional values.
    masker = shap.maskers.Independent({"mean": mean, "cov": np.diag(scale**2)})
    explainer = shap.LinearExplainer(model, masker)
    assert explainer.feature_perturbation == "interventional"
    theirs = explainer(x)
    ours = contributions(bundle, x)
    np.testing.assert_allclose(ours.values, theirs.values, atol=1e-9, rtol=1e-9)
    np.testing.assert_allclose(ours.base, theirs.base_values, atol=1e-9, rtol=0)


def test_the_linear_base_is_the_models_output_at_the_training_rows_mean(
    linear: tuple[ModelBundle, np.ndarray], linear_outcome: TrainingOutcome
) -> None:
    bundle, x = linear
    # The same explainer with the training rows themselves as background (all of them: the masker
    # would otherwise sample 100) gives the same values: the mean is the training rows'.
    train = bundle.matrix(linear_outcome.train_rows)
    masker = shap.maskers.Independent(train, max_samples=len(train))
    p = bundle.linear
    assert p is not None
    mean, scale, coef = np.asarray(p.mean), np.asarray(p.scale), np.asarray(p.coef)
    explainer = shap.LinearExplainer((coef / scale, p.intercept - coef @ (mean / scale)), masker)
    np.testing.assert_allclose(contributions(bundle, x[:500]).values, explainer(x[:500]).values, atol=1e-6)


@pytest.mark.parametrize("family", ["linear", "trees"])
def test_the_shap_explanation_holds_the_exact_contributions(
    family: str, request: pytest.FixtureRequest
) -> None:
    outcome: TrainingOutcome = request.getfixturevalue(f"{family}_outcome")
    explained = explanation(outcome.bundle, outcome.train_rows, sample=300, seed=1)
    x = np.asarray(explained.data)
    assert x.shape == (300, len(outcome.bundle.feature_names))
    assert list(explained.feature_names) == list(outcome.bundle.feature_names)
    np.testing.assert_allclose(explained.values, contributions(outcome.bundle, x).values)
    # On the margin: values plus base values are the model's raw output, row by row.
    np.testing.assert_allclose(
        explained.values.sum(axis=1) + explained.base_values, outcome.bundle.margin(x), atol=1e-6
    )


def test_the_training_run_logs_shaps_global_plots(
    trees_outcome: TrainingOutcome, mlflow_store: Settings
) -> None:
    registered = log_and_register(trees_outcome, "test-shap-plots", settings=mlflow_store)
    names = {a.path for a in MlflowClient().list_artifacts(registered.run_id, "explanations")}
    assert {
        "explanations/beeswarm.png",
        "explanations/bar.png",
        "explanations/mean_abs_contribution.csv",
    } <= names
    dependence = sorted(n for n in names if n.startswith("explanations/dependence_"))
    explained = explanation(trees_outcome.bundle, trees_outcome.train_rows, seed=trees_outcome.config.seed)
    top = np.argsort(-np.abs(explained.values).mean(axis=0))[:3]
    assert dependence == sorted(f"explanations/dependence_{explained.feature_names[i]}.png" for i in top)
