"""The proxy check's folds run side by side, one thread each, and give cross_val_predict's AUC."""

from __future__ import annotations

import math
import types

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests.model_stub import stub_outcome
from waymark.fairness.audit import NOT_RECORDED
from waymark.fairness.policy import load_policy
from waymark.fairness.report import PROXY_UNCHECKED, model_card, published, render_html
from waymark.fairness.run import ProxyResult, proxy_check

FEATURES = ["f0", "f1", "f2", "f3"]


def _features_and_groups(n: int = 900) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(4)
    ids = [f"S{i}" for i in range(n)]
    x = rng.normal(size=(n, len(FEATURES)))
    features = pd.DataFrame(x, columns=FEATURES).assign(student_id=ids, week=8)
    region = np.where(x[:, 0] > 0.5, "north", np.where(x[:, 1] > 0, "south", "east"))
    region[rng.random(n) < 0.05] = "islands"  # a small class, still above the minimum
    groups = pd.DataFrame(
        {
            "club": np.where(x[:, 2] + rng.normal(0, 1, n) > 0, "a", "b"),  # two classes
            "region": region,  # four classes
            "lonely": np.where(np.arange(n) < 3, "x", NOT_RECORDED),  # too few to check at all
        },
        index=pd.Index(ids, name="student_id"),
    )
    return features, groups


def _cross_val_auc(x: np.ndarray, y: np.ndarray, seed: int) -> float:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    proba = cross_val_predict(model, x, y, cv=folds, method="predict_proba")
    if np.unique(y).size == 2:
        return float(roc_auc_score(y, proba[:, 1]))
    return float(roc_auc_score(y, proba, multi_class="ovr", average="macro"))


@pytest.mark.parametrize("cores", ["1", "2"])
def test_the_proxy_auc_is_cross_val_predicts_on_any_number_of_threads(
    cores: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYMARK_THREADS", cores)
    features, groups = _features_and_groups()
    bundle = types.SimpleNamespace(
        matrix=lambda rows: rows[FEATURES].to_numpy(), feature_names=tuple(FEATURES)
    )
    policy = load_policy()
    results = proxy_check(features, groups, bundle=bundle, policy=policy)  # type: ignore[arg-type]
    assert [r.attribute for r in results] == ["club", "region", "lonely"]
    # Too few to check is said (an art school's care-experienced students had left no row at all).
    assert math.isnan(results[2].auc) and not results[2].warning
    x = features[FEATURES].to_numpy()
    for result in results[:2]:
        y = groups[result.attribute].to_numpy()
        assert result.auc == pytest.approx(_cross_val_auc(x, y, policy.seed), abs=1e-12)
        assert result.warning == (max(result.auc, result.group_auc) >= policy.proxy_auc_warning)
    assert results[1].auc > 0.8  # the features do predict the region
    assert results[0].group is None and math.isnan(results[0].group_auc)  # two groups: their AUC alone
    assert (
        results[1].group in {"north", "south", "east", "islands"} and results[1].group_auc >= results[1].auc
    )


def test_a_feature_only_one_group_has_is_a_proxy_however_the_others_average() -> None:
    """A Chilean university's weekly sessions of one admission route's students (PACE), recorded as
    attendance: one-vs-rest AUC 0.997 for them, 0.693 averaged over the four routes, under the 0.70
    warning, and the committee was told nothing."""
    rng = np.random.default_rng(7)
    n = 1200
    ids = [f"S{i}" for i in range(n)]
    route = rng.choice(["regular", "equity", "special", "pace"], size=n, p=[0.5, 0.2, 0.2, 0.1])
    x = rng.normal(size=(n, len(FEATURES)))
    x[:, 3] = (route == "pace") * 3.0 + rng.normal(0, 0.2, n)  # their sessions, nobody else's
    features = pd.DataFrame(x, columns=FEATURES).assign(student_id=ids, week=8)
    groups = pd.DataFrame({"route": route}, index=pd.Index(ids, name="student_id"))
    bundle = types.SimpleNamespace(
        matrix=lambda rows: rows[FEATURES].to_numpy(), feature_names=tuple(FEATURES)
    )
    policy = load_policy()
    (result,) = proxy_check(features, groups, bundle=bundle, policy=policy)  # type: ignore[arg-type]
    assert result.auc < policy.proxy_auc_warning  # the average alone would not have warned
    assert result.group == "pace" and result.group_auc > 0.99 and result.warning
    # and what does it: a Saudi university's report said "1.00" for sex and nothing of the women's
    # campus's card readers that caused it
    assert [f for f, _ in result.features] == ["f3"] and result.features[0][1] > 0.99
    report = published(stub_outcome(policy, proxies=[result]), [])
    card = model_card(report, {})
    assert "for pace against the rest (warning); told apart most by f3 (1.00)" in card, card
    assert "told apart most by f3 (1.00)" in render_html(report, policy.weeks, capacities=policy.capacities)


def test_a_characteristic_the_proxy_check_could_not_try_is_said_in_the_report_and_the_card() -> None:
    policy = load_policy()
    outcome = stub_outcome(
        policy, proxies=[ProxyResult("club", 0.61, False), ProxyResult("care", math.nan, False)]
    )
    report = published(outcome, [])
    assert report["proxy_check"][1] == {
        "characteristic": "care",
        "auc": None,
        "warning": False,
        "group": None,
        "group_auc": None,
        "features": [],
    }
    html = render_html(report, policy.weeks, capacities=policy.capacities)
    assert "not checked: fewer than two recorded groups large enough to compare" in html
    assert f"- care: {PROXY_UNCHECKED}" in model_card(report, {})
