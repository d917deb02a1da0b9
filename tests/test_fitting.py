"""Independent fits side by side: each with its share of the cores, the same models, in order."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from waymark.training import fitting
from waymark.training.fitting import FitConfig, fit, fit_subsets, margins


def _rows(n: int = 3_000, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(fitting.FEATURE_NAMES)))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(size=n) > 0).astype(np.int64)
    return x, y


def _threads(pipeline: Pipeline) -> int:
    return int(pipeline.named_steps["model"].get_params()["n_jobs"])


def _fitted_on(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """The threads each ``fit`` that ``fit_subsets`` makes is given, in the order the fits start."""
    seen: list[int | None] = []

    def recorded(
        family: str,
        config: FitConfig,
        *,
        x: np.ndarray,
        y: np.ndarray,
        weight: np.ndarray | None = None,
        threads: int | None = None,
    ) -> Pipeline:
        seen.append(threads)
        return fit(family, config, x=x, y=y, weight=weight, threads=threads)

    monkeypatch.setattr(fitting, "fit", recorded)
    return seen


def test_gbm_fits_share_the_cores_and_match_fits_one_after_the_other(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = _rows()
    config = FitConfig(gbm_estimators=20)
    weight = np.linspace(0.5, 1.5, len(y))
    subsets = [None, np.arange(0, 2_000), np.arange(1_000, 3_000)]
    monkeypatch.setenv("WAYMARK_THREADS", "2")
    threads = _fitted_on(monkeypatch)
    together = fit_subsets("gbm", config, x=x, y=y, weight=weight, subsets=subsets)
    assert threads == [1, 1, 1]  # two at a time, a core each
    assert [_threads(p) for p in together] == [2, 2, 2]  # and each then predicts on both cores
    for rows, pipeline in zip(subsets, together, strict=True):
        at = slice(None) if rows is None else rows
        alone = fit("gbm", config, x=x[at], y=y[at], weight=weight[at])
        np.testing.assert_array_equal(margins(pipeline, x), margins(alone, x))  # same trees, same order


def test_four_cores_give_each_of_two_fits_two_and_logistic_fits_one_after_the_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x, y = _rows(800)
    monkeypatch.setenv("WAYMARK_THREADS", "4")
    config = FitConfig(gbm_estimators=5)
    halves = [np.arange(0, 400), np.arange(400, 800)]
    threads = _fitted_on(monkeypatch)
    fit_subsets("gbm", config, x=x, y=y, subsets=halves)
    assert threads == [2, 2]
    threads.clear()
    fit_subsets("logistic", config, x=x, y=y, subsets=halves)
    assert threads == [4, 4]


def test_one_core_fits_one_after_the_other_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = _rows(800)
    monkeypatch.setenv("WAYMARK_THREADS", "1")
    threads = _fitted_on(monkeypatch)
    fitted = fit_subsets("gbm", FitConfig(gbm_estimators=5), x=x, y=y, subsets=[None, np.arange(400)])
    assert threads == [1, 1] and [_threads(p) for p in fitted] == [1, 1]


def test_a_failing_fit_raises_rather_than_leaving_a_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = _rows(600)
    monkeypatch.setenv("WAYMARK_THREADS", "2")
    beyond = np.array([0, 1, len(y)])  # a row that is not there
    with pytest.raises(IndexError, match="out of bounds"):
        fit_subsets("gbm", FitConfig(gbm_estimators=5), x=x, y=y, subsets=[None, beyond])
