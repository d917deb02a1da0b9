"""Exact contributions: additive to the model's raw output, equal to LightGBM's own TreeSHAP."""

from __future__ import annotations

from pathlib import Path

import lightgbm
import numpy as np
import pytest

from waymark.models.bundle import ModelBundle
from waymark.models.contributions import TreeTables, contributions
from waymark.models.data import load_learning_data
from waymark.models.estimators import GBM_MAX_DEPTH
from waymark.models.features import build_features
from waymark.models.targets import Target
from waymark.training.fitting import FitConfig
from waymark.training.pipeline import train_folder


def _trained(synth_dir: Path, family: str) -> tuple[ModelBundle, np.ndarray]:
    outcome = train_folder(
        synth_dir,
        target=Target.NOT_COMPLETING,
        config=FitConfig(seed=2, families=(family,), gbm_estimators=60, cv_folds=2),
    )
    rows = build_features(load_learning_data(synth_dir), weeks=[3, 9, 20])
    return outcome.bundle, outcome.bundle.matrix(rows)


@pytest.fixture(scope="module")
def linear(synth_dir: Path) -> tuple[ModelBundle, np.ndarray]:
    return _trained(synth_dir, "logistic")


@pytest.fixture(scope="module")
def trees(synth_dir: Path) -> tuple[ModelBundle, np.ndarray]:
    return _trained(synth_dir, "gbm")


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
