"""Exact contributions for a 40,000-student synthetic cohort, beside shap.TreeExplainer, one run.

    python bench/bench_explain.py [--students 40000]

Generates the cohort, trains the gradient-boosted family on its earlier year, builds week-8
features for every registration of the cohort, then times Waymark's exact contributions for all
of them and shap's TreeExplainer on a sample of the same rows of the same model, and checks that
both agree. (Scoring, factors and publication, the rest of the scoring issue, are not built yet.)
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import shap

from waymark.models.contributions import TreeTables, contributions
from waymark.models.data import load_learning_data
from waymark.models.features import build_features
from waymark.models.targets import Target
from waymark.training.fitting import FitConfig
from waymark.training.ingest.synthetic import SynthConfig, generate
from waymark.training.pipeline import train_folder

SHAP_SAMPLE = 2000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=40_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cohort"
        generate(folder, SynthConfig(students=args.students, seed=3))
        outcome = train_folder(
            folder, target=Target.NOT_COMPLETING, config=FitConfig(families=("gbm",), cv_folds=2)
        )
        rows = build_features(load_learning_data(folder), weeks=[8])
        x = outcome.bundle.matrix(rows)
        booster = outcome.bundle.booster
        assert booster is not None
        trees = booster.num_trees()
        contributions(outcome.bundle, x[:10])  # compile the kernel once, as a service does at start-up
        start = time.perf_counter()
        tables = TreeTables.from_booster(booster.dump_model(), x.shape[1])
        build = time.perf_counter() - start
        start = time.perf_counter()
        ours = tables.explain(x)
        ours_s = time.perf_counter() - start
        explainer = shap.TreeExplainer(booster)
        sample = x[:SHAP_SAMPLE]
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = explainer.shap_values(sample)
        shap_s = time.perf_counter() - start
        theirs = theirs[1] if isinstance(theirs, list) else theirs
        gap = float(np.abs(ours.values[:SHAP_SAMPLE] - theirs).max())
        additivity = float(np.abs(ours.values.sum(axis=1) + ours.base - outcome.bundle.margin(x)).max())
        print(
            f"model: LightGBM, {trees} trees, depth <= 6; {len(x):,} registrations at week 8 of a "
            f"{args.students:,}-student cohort, {x.shape[1]} features"
        )
        print(
            f"Waymark exact contributions: {ours_s:.2f} s for {len(x):,} rows = "
            f"{len(x) / ours_s:,.0f} rows/s "
            f"(+ {build:.2f} s to build the tables, once per model)"
        )
        print(
            f"shap.TreeExplainer, same model: {shap_s:.2f} s for {SHAP_SAMPLE:,} rows = "
            f"{SHAP_SAMPLE / shap_s:,.0f} rows/s"
        )
        print(
            f"ratio: {(len(x) / ours_s) / (SHAP_SAMPLE / shap_s):.1f}x; largest difference from shap "
            f"{gap:.1e}; additivity error {additivity:.1e}"
        )


if __name__ == "__main__":
    main()
