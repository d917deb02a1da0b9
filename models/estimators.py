"""The two model families, as scikit-learn pipelines, deterministic for a seed."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lightgbm import LGBMClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from waymark.models.threads import cores

# Trees stay shallow: exact contributions work at any depth, but their tables cost 2^depth per leaf
# (models.contributions), and engagement signals need few-way interactions.
GBM_MAX_DEPTH = 6
#: LightGBM settings, chosen on the validation presentations of full OULAD (fit on 2013B, validated on
#: 2013J, never on the test presentations; docs/training.md): small trees with many rows per leaf and a
#: slow rate generalised to modules the fit had not seen better than 31 leaves of 50 rows at 0.05.
GBM_PARAMS: dict[str, float | int] = {
    "learning_rate": 0.025,
    "num_leaves": 15,
    "min_child_samples": 200,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
}
#: Features whose direction is fixed when ``monotone`` is asked for: +1 where more of it can only raise
#: the estimate, -1 where it can only lower it. Only what a student does (activity, submissions, marks),
#: so an explanation never says that more work raised an estimate.
MONOTONE_DIRECTIONS: dict[str, int] = {
    **dict.fromkeys(
        (
            "act_total",
            "act_active_days",
            "act_weeks_active_share",
            "act_last7",
            "act_last14",
            "act_active_days_last14",
            "act_total_pct",
            "act_last14_pct",
            "act_active_days_pct",
            "act_total_z",
            "act_last14_z",
            "asm_submitted",
            "asm_submitted_share",
            "asm_next_submitted",
            "asm_submitted_pct",
            "asm_score_mean",
            "asm_score_pct",
            "asm_last_score",
            "asm_min_score",
        ),
        -1,
    ),
    **dict.fromkeys(
        ("act_days_since_last", "asm_missed", "asm_weight_missed", "asm_days_since_submission", "asm_late"),
        1,
    ),
}


def monotone_constraints(feature_names: Sequence[str]) -> list[int]:
    """LightGBM's monotone_constraints for features in this order (0: unconstrained)."""
    return [MONOTONE_DIRECTIONS.get(name, 0) for name in feature_names]


def make_logistic(seed: int, **_: object) -> Pipeline:
    """Regularised logistic regression on standardised features: the transparent baseline.

    Newton's method with a Cholesky solve reaches the optimum in a few steps on rows many times the
    features; L-BFGS took about four times as long to stop short of it (1,500 synthetic students).
    """
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("model", LogisticRegression(C=0.5, max_iter=3000, random_state=seed, solver="newton-cholesky")),
        ]
    )


def make_gbm(
    seed: int,
    n_estimators: int = 300,
    *,
    params: dict[str, float | int] | None = None,
    monotone: Sequence[int] = (),
    threads: int | None = None,
    **_: object,
) -> Pipeline:
    """Gradient-boosted trees (LightGBM), deterministic: fixed threads, row-wise histograms.

    Parameters
    ----------
    seed
        Random seed.
    n_estimators
        Boosting rounds.
    params
        Settings that replace those of ``GBM_PARAMS`` (a search's choice, ``training.search``).
    monotone
        ``monotone_constraints`` per feature (``monotone_constraints``); empty: none.
    threads
        LightGBM's threads; None: the usable cores (``models.threads.cores``). The trees do not depend
        on it (``deterministic``, row-wise histograms).

    Returns
    -------
    sklearn.pipeline.Pipeline
        One step, ``model``.
    """
    constraints: dict[str, object] = (
        {"monotone_constraints": list(monotone), "monotone_constraints_method": "advanced"}
        if any(monotone)
        else {}
    )
    model = LGBMClassifier(
        n_estimators=n_estimators,
        max_depth=GBM_MAX_DEPTH,
        subsample_freq=1,
        random_state=seed,
        n_jobs=threads or cores(),  # the usable cores, never the host's (models.threads)
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    ).set_params(**{**GBM_PARAMS, **(params or {})}, **constraints)
    return Pipeline([("model", model)])


FAMILIES: dict[str, Callable[..., Pipeline]] = {"logistic": make_logistic, "gbm": make_gbm}
#: Families whose fit takes a number of threads (``threads``): several of their fits can share the cores
#: side by side (``training.fitting.fit_subsets``). A logistic fit's BLAS takes the cores itself.
THREADED_FAMILIES: frozenset[str] = frozenset({"gbm"})


def on_usable_cores(pipeline: Pipeline) -> Pipeline:
    """A ``THREADED_FAMILIES`` pipeline fitted on fewer threads, set to predict on the usable cores again.

    LightGBM's scikit-learn model predicts on the threads it was given: the training run's own
    predictions from a fit made on one thread beside another (the calibration folds' margins) would
    otherwise run on one. The saved bundle's booster takes OpenMP's threads; its text records the fit's.
    """
    return pipeline.set_params(model__n_jobs=cores())
