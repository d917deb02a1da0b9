"""The fairness audit: Fairlearn-equal estimates, the injected disparity found, small cells never shown."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, false_negative_rate, false_positive_rate, selection_rate
from fairlearn.postprocessing import ThresholdOptimizer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import precision_score, roc_auc_score
from sqlalchemy import Engine

from tests.model_stub import StubModel
from tests.vocabulary import forbidden_words
from waymark.fairness.audit import NOT_RECORDED, audit_cohorts, group_labels
from waymark.fairness.gate import FAIL, evaluate
from waymark.fairness.metrics import Cohort, auc_by_group, bootstrap_weights, confusion_metrics
from waymark.fairness.mitigation import equalised_fnr
from waymark.fairness.policy import DEFAULT_POLICY, Policy, PolicyError, load_policy
from waymark.fairness.report import published, render_html
from waymark.fairness.run import AuditOutcome, ProxyResult, audit_model
from waymark.models.capacity import top_share
from waymark.models.data import ProtectedFrame
from waymark.models.settings import Settings
from waymark.models.targets import Target
from waymark.training.fitting import FitConfig
from waymark.training.ingest.synthetic import SynthConfig, generate
from waymark.training.ingest.synthetic_people import Disparity
from waymark.training.pipeline import train_folder
from waymark.training.tracking import log_and_register


@pytest.fixture(scope="module")
def fast_policy() -> Policy:
    return dataclasses.replace(load_policy(), bootstrap_resamples=200)


def _audited(tmp: Path, disparity: float, mlflow_store: Settings, policy: Policy, name: str) -> AuditOutcome:
    folder = tmp / name
    generate(folder, SynthConfig(students=3000, seed=5, disparity=Disparity("disability", "Y", disparity)))
    # Two calibration folds, not three: the audit's estimates agree to the third decimal, a third faster.
    outcome = train_folder(
        folder, target=Target.NOT_COMPLETING, config=FitConfig(seed=1, families=("logistic",), cv_folds=2)
    )
    registered = log_and_register(outcome, name, settings=mlflow_store)
    return audit_model(registered.uri, folder, policy=policy)


@pytest.fixture(scope="module")
def skewed(
    tmp_path_factory: pytest.TempPathFactory, mlflow_store: Settings, fast_policy: Policy
) -> AuditOutcome:
    return _audited(tmp_path_factory.mktemp("skewed"), 1.5, mlflow_store, fast_policy, "fair-skewed")


@pytest.fixture(scope="module")
def fair(
    tmp_path_factory: pytest.TempPathFactory, mlflow_store: Settings, fast_policy: Policy
) -> AuditOutcome:
    return _audited(tmp_path_factory.mktemp("fair"), 0.0, mlflow_store, fast_policy, "fair-plain")


def _group(outcome: AuditOutcome, attribute: str, group: str, week: int, capacity: float = 0.10):  # type: ignore[no-untyped-def]
    audit = next(
        a for a in outcome.audits if a.attribute == attribute and a.week == week and a.capacity == capacity
    )
    return next(g for g in audit.groups if g.group == group)


def _random_cohort(rng: np.random.Generator, n: int = 3000) -> tuple[pd.DataFrame, pd.Series]:
    groups = pd.Series(rng.choice(["a", "b", "c", None], size=n, p=[0.5, 0.3, 0.15, 0.05]))
    label = rng.random(n) < np.where(groups == "b", 0.5, 0.35)
    prob = np.round(np.clip(0.25 * label + 0.75 * rng.random(n), 0, 1), 2)  # rounding makes ties
    rows = pd.DataFrame(
        {
            "student_id": [f"S{i}" for i in range(n)],
            "week": 8,
            "label": label.astype(int),
            "probability": prob,
        }
    )
    return rows, groups


def test_point_estimates_equal_fairlearn_metricframe() -> None:
    rows, raw = _random_cohort(np.random.default_rng(3))
    groups = raw.fillna(NOT_RECORDED)
    selected = top_share(rows["probability"].to_numpy(), 0.10)
    codes, names = pd.factorize(groups, sort=True)
    cohort = Cohort(rows["label"].to_numpy(), rows["probability"].to_numpy(), selected, codes, len(names))
    ours = confusion_metrics(cohort, np.ones((1, len(rows))))
    ours_auc = auc_by_group(cohort, np.ones((1, len(rows))))[0]
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "false_negative_rate": false_negative_rate,
            "false_positive_rate": false_positive_rate,
            "precision": partial(precision_score, zero_division=0),
        },
        y_true=rows["label"],
        y_pred=selected.astype(int),
        sensitive_features=groups,
    ).by_group
    scores = MetricFrame(
        metrics={"auc": roc_auc_score},
        y_true=rows["label"],
        y_pred=rows["probability"],
        sensitive_features=groups,
    ).by_group
    for metric in ("selection_rate", "false_negative_rate", "false_positive_rate", "precision"):
        np.testing.assert_allclose(ours[metric][0], frame.loc[list(names), metric].to_numpy(), err_msg=metric)
    np.testing.assert_allclose(ours_auc, scores.loc[list(names), "auc"].to_numpy())


def test_bootstrap_intervals_surround_the_point_and_narrow_with_more_students() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (1000, 16000):
        rows, raw = _random_cohort(rng, n)
        codes, names = pd.factorize(raw.fillna(NOT_RECORDED), sort=True)
        cohort = Cohort(
            rows["label"].to_numpy(),
            rows["probability"].to_numpy(),
            top_share(rows["probability"].to_numpy(), 0.1),
            codes,
            len(names),
        )
        fnr = confusion_metrics(cohort, bootstrap_weights(n, 500, rng=rng))["false_negative_rate"]
        low, high = np.percentile(fnr, [2.5, 97.5], axis=0)
        point = confusion_metrics(cohort, np.ones((1, n)))["false_negative_rate"][0]
        assert np.all((low <= point) & (point <= high))
        widths.append(float(np.mean(high - low)))
    assert widths[1] < widths[0] / 2


def test_missing_values_form_a_not_recorded_group() -> None:
    frame = pd.DataFrame({"student_id": ["S1", "S2", "S3"], "disability": ["Y", None, "N"]}).astype("string")
    labels = group_labels(ProtectedFrame(frame), intersections=False)
    assert labels.loc["S2", "disability"] == NOT_RECORDED


def test_the_injected_disparity_is_found_with_the_right_sign_and_size(skewed: AuditOutcome) -> None:
    # The disparity raises disability=Y students' chance of not completing invisibly to the
    # features: the model underestimates their need and misses more of them.
    for week in (4, 8, 16):
        y = _group(skewed, "disability", "Y", week)
        gap, _low, high = y.differences["calibration_gap"]
        assert gap < -0.15 and high < 0, (week, gap, high)
    # So few disability = Y students are on the list that their miss rate, which would say which of those
    # few needed support, is withheld (fairness.disclosure); the list's reach shows it instead.
    y, n = (_group(skewed, "disability", g, 16) for g in ("Y", "N"))
    assert "false_negative_rate" in y.withheld
    assert y.metrics["selection_rate"][0] < n.metrics["selection_rate"][0]
    failed = [c for c in skewed.checks if c.status == FAIL]
    assert skewed.gate == FAIL and failed
    assert all("disability = Y" in r for c in failed for r in c.reasons)


def test_without_an_injected_disparity_the_same_group_is_not_flagged(fair: AuditOutcome) -> None:
    gap = _group(fair, "disability", "Y", 8).differences["calibration_gap"]
    assert gap[1] <= 0 <= gap[2] or abs(gap[0]) < 0.05
    assert fair.gate == "pass"


def test_every_characteristic_and_pair_is_audited(skewed: AuditOutcome) -> None:
    attributes = {a.attribute for a in skewed.audits}
    assert {"gender", "age_band", "disability", "ethnicity", "imd_band"} <= attributes
    assert "gender x disability" in attributes


def test_the_proxy_check_reports_every_characteristic(skewed: AuditOutcome) -> None:
    assert {p.attribute for p in skewed.proxies} == {
        "gender",
        "age_band",
        "disability",
        "ethnicity",
        "imd_band",
    }
    assert all(0.3 < p.auc < 0.8 for p in skewed.proxies)


def test_reports_use_no_labelling_words(skewed: AuditOutcome) -> None:
    report = published(skewed, skewed.mitigation)
    html = render_html(report, skewed.policy.weeks, capacities=skewed.policy.capacities)
    assert forbidden_words(html) == []
    assert forbidden_words(json.dumps(report)) == []


# --- small cells -----------------------------------------------------------------------------

TOKEN = st.text(alphabet="qwxzjk", min_size=8, max_size=8)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=40), min_size=2, max_size=6),
    names=st.lists(TOKEN, min_size=6, max_size=6, unique=True),
    seed=st.integers(0, 10_000),
)
def test_no_group_below_the_minimum_size_appears_in_json_or_html(
    sizes: list[int], names: list[str], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    names = names[: len(sizes)]
    students = [f"S{i}" for i in range(sum(sizes))]
    values = [name for name, size in zip(names, sizes, strict=True) for _ in range(size)]
    protected = ProtectedFrame(pd.DataFrame({"student_id": students, "club": values}).astype("string"))
    scored = pd.DataFrame(
        {
            "student_id": students,
            "week": 4,
            "label": rng.integers(0, 2, len(students)),
            "probability": rng.random(len(students)),
        }
    )
    policy = dataclasses.replace(load_policy(), weeks=(4,), bootstrap_resamples=20, min_group_size=10)
    audits = audit_cohorts(scored, group_labels(protected, intersections=False), policy=policy)
    gate, checks = evaluate(audits, policy)
    outcome = AuditOutcome(
        StubModel(),
        "run",
        ("M/P",),
        "fp",
        policy,
        audits,
        gate,  # type: ignore[arg-type]
        checks,
        [ProxyResult("club", 0.5, False)],
        ("club",),
        [],
    )
    report = published(outcome, [])
    # who trained it is kept beside the audit (model_decisions.trained_by), never published
    assert "DS-1" not in json.dumps(published(dataclasses.replace(outcome, trained_by="DS-1"), []))
    text = json.dumps(report) + render_html(report, policy.weeks, capacities=policy.capacities)
    named = {name: name in text for name in names}
    for name, size in zip(names, sizes, strict=True):
        assert not (named[name] and size < policy.min_group_size), (name, size)
    # What is not named is none, or the small groups and enough beside them that the total less the
    # named groups is no small group's figure: two groups or more, holding the minimum together.
    hidden = [size for name, size in zip(names, sizes, strict=True) if not named[name]]
    assert (
        not hidden or len(hidden) == len(sizes) or (len(hidden) > 1 and sum(hidden) >= policy.min_group_size)
    )
    # and a large group is withheld only beside a small one, the smallest of those named otherwise
    if all(size >= policy.min_group_size for size in sizes):
        assert all(named.values())
    large_hidden = [s for s in hidden if s >= policy.min_group_size]
    shown = [size for name, size in zip(names, sizes, strict=True) if named[name]]
    assert not large_hidden or not shown or max(large_hidden) <= min(shown)
    counts = [g["students"] for a in report["audits"] for g in a["groups"]]
    assert all(c % policy.count_rounding == 0 for c in counts)


# --- policy ------------------------------------------------------------------------------------


def test_the_default_policy_loads_and_is_copied_into_reports() -> None:
    policy = load_policy()
    assert policy.min_group_size == 10 and policy.bootstrap_resamples == 1000
    assert "false_negative_rate" in policy.text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('breach = "interval_outside"', 'breach = "sometimes"'), "gate.breach"),
        (('metric = "false_negative_rate"', 'metric = "happiness"'), "happiness"),
        (('reference = "largest"', 'reference = "tallest"'), "audit.reference"),
    ],
)
def test_a_bad_policy_names_the_setting(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(DEFAULT_POLICY.read_text(encoding="utf-8").replace(*change), encoding="utf-8")
    with pytest.raises(PolicyError, match=re.escape(message)):
        load_policy(path)


# --- governance --------------------------------------------------------------------------------


def _record(outcome: AuditOutcome, tmp: Path) -> str:
    from waymark.fairness.governance import mirror_audit
    from waymark.fairness.report import write_report

    uri = f"models:/{outcome.model.name}/{outcome.model.version}"
    report = write_report(outcome, tmp, test_metrics={})
    mirror_audit(
        uri,
        outcome.gate,
        bundle_sha256=outcome.model.sha256,
        run_id=outcome.run_id,
        folder=tmp,
        report=report,
    )
    return uri


def _decisions_db(outcome: AuditOutcome, tmp: Path) -> Engine:
    """A service database holding this outcome's audit, as `waymark fairness audit` records it."""
    from waymark.service import decisions
    from waymark.service.db.engine import make_engine, transaction, upgrade

    engine = make_engine(f"sqlite:///{tmp}/decisions.db")
    upgrade(engine)
    report = json.loads((tmp / "report.json").read_text(encoding="utf-8"))
    with transaction(engine) as session:
        decisions.record_audit(
            session,
            outcome.model.name,
            version=outcome.model.version,
            bundle_sha256=outcome.model.sha256,
            gate=outcome.gate,
            report=report,
            policy=outcome.policy,
            actor="auditor",
        )
    return engine


def test_a_failed_gate_blocks_promotion_unless_the_committee_states_an_override(
    skewed: AuditOutcome, tmp_path: Path, disposing: Callable[[Engine], Engine]
) -> None:
    from waymark.service import decisions
    from waymark.service.db.engine import transaction
    from waymark.service.decisions import GovernanceError

    _record(skewed, tmp_path)
    engine = disposing(_decisions_db(skewed, tmp_path))
    name, version = skewed.model.name, skewed.model.version
    with transaction(engine) as session, pytest.raises(GovernanceError, match=r"gate .* is 'fail'"):
        decisions.record_review(
            session,
            name,
            version=version,
            approve=True,
            reviewer="reviewer-1",
            note="approved to test the gate",
            recorded_by="r",
        )
    with transaction(engine) as session:
        decisions.record_review(
            session,
            name,
            version=version,
            approve=False,
            reviewer="reviewer-1",
            note="the gate failed",
            recorded_by="r",
        )
        assert "decision on" in decisions.blockers(session, name, version=version)[0]
        with pytest.raises(GovernanceError, match="rejected"):
            decisions.record_promotion(session, name, version=version, actor="operator")


def test_promotion_needs_a_recorded_approval_of_that_exact_version(
    fair: AuditOutcome, tmp_path: Path, disposing: Callable[[Engine], Engine]
) -> None:
    from mlflow import MlflowClient

    from waymark.fairness.governance import CHAMPION, events, mirror_promotion, mirror_review
    from waymark.service import decisions
    from waymark.service.db.engine import transaction
    from waymark.service.decisions import GovernanceError

    uri = _record(fair, tmp_path)
    engine = disposing(_decisions_db(fair, tmp_path))
    name, version = fair.model.name, fair.model.version
    with transaction(engine) as session, pytest.raises(GovernanceError, match="no ethics committee approval"):
        decisions.record_promotion(session, name, version=version, actor="operator")
    client = MlflowClient()
    first = client.get_model_version(name, version)
    second = client.create_model_version(name, first.source, run_id=first.run_id)
    with transaction(engine) as session:
        decisions.record_review(
            session,
            name,
            version=version,
            approve=True,
            reviewer="reviewer-2",
            note="fair enough for the pilot",
            recorded_by="r",
        )
        with pytest.raises(GovernanceError, match="no fairness audit is recorded"):
            decisions.record_promotion(session, name, version=str(second.version), actor="operator")
        decisions.record_promotion(session, name, version=version, actor="operator")
    mirror_review(uri, "approved", reviewer="reviewer-2", note="fair enough for the pilot")
    mirror_promotion(name, version, actor="operator")
    assert str(client.get_model_version_by_alias(name, CHAMPION).version) == version
    with transaction(engine) as session:
        decisions.record_review(
            session,
            name,
            version=version,
            approve=False,
            reviewer="reviewer-3",
            note="withdrawn after new evidence",
            recorded_by="r",
        )
        assert decisions.champion(session, name) is None
        with pytest.raises(GovernanceError, match=r"decision on .* is 'rejected'"):
            decisions.record_promotion(session, name, version=version, actor="operator")
    actions = [e.action for e in events(name)]
    assert actions[-3:] == ["fairness_audit", "review_approved", "promoted"]


def test_the_report_files_are_written_and_attached_to_the_run(fair: AuditOutcome, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    _record(fair, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {
        "report.html",
        "report.json",
        "model_card.md",
        "quality_gate.json",
        "quality_comparison.csv",
    }
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in html and "alt=" in html and "<caption>" in html
    card = (tmp_path / "model_card.md").read_text(encoding="utf-8")
    assert "§2(xvii)" in card
    assert "Registrations outreach reached before their outcome: `ignore`" in card  # the training policy
    stored = MlflowClient().list_artifacts(fair.run_id, "fairness")
    assert stored, "the audit is logged with the model's run"


# --- the per-group threshold comparison (Fairlearn's ThresholdOptimizer, shown, never applied) ---


class _Scores(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Indicators already computed, as a fitted classifier over one column."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> _Scores:
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.column_stack([1 - x[:, 0], x[:, 0]])


def test_the_thresholds_shown_are_those_of_fairlearns_threshold_optimizer() -> None:
    rows, raw = _random_cohort(np.random.default_rng(8), n=4000)
    groups = raw.fillna(NOT_RECORDED)
    shown = {m.group: m for m in equalised_fnr(rows, groups, capacity=0.1, attribute="club", min_size=10)}
    optimizer = ThresholdOptimizer(
        estimator=_Scores(),
        constraints="false_negative_rate_parity",
        objective="balanced_accuracy_score",
        prefit=True,
        predict_method="predict_proba",
    ).fit(rows[["probability"]].to_numpy(), rows["label"], sensitive_features=groups)
    chance = optimizer._pmf_predict(rows[["probability"]].to_numpy(), sensitive_features=groups)[:, 1]
    y = rows["label"].to_numpy() == 1
    for group, rule in optimizer.interpolated_thresholder_.interpolation_dict.items():
        m, mine = shown[group], (groups == group).to_numpy()
        cuts = sorted(
            op.threshold for p, op in ((rule.p0, rule.operation0), (rule.p1, rule.operation1)) if p > 0
        )
        assert (m.threshold_low, m.threshold_high) == pytest.approx((cuts[0], cuts[-1]), abs=1e-12)
        assert m.selection_after == pytest.approx(chance[mine].mean(), abs=1e-12)
        assert m.fnr_after == pytest.approx(1 - chance[mine & y].mean(), abs=1e-12)
    # Equal miss rates after (the constraint), unequal before; the whole list's share is Fairlearn's.
    after = [m.fnr_after for m in shown.values()]
    assert max(after) - min(after) < 1e-9 and len({round(m.fnr_before, 6) for m in shown.values()}) > 1
    assert shown["a"].list_share_after == pytest.approx(chance.mean(), abs=1e-12)
    assert shown["a"].list_share_before == pytest.approx(0.1, abs=0.01)


def test_a_group_with_one_outcome_keeps_the_capacity_list_and_gets_no_threshold() -> None:
    rows, raw = _random_cohort(np.random.default_rng(9), n=2000)
    groups = raw.fillna(NOT_RECORDED).to_numpy(dtype=object)
    groups[np.flatnonzero(rows["label"].to_numpy() == 0)[:30]] = "only-completed"
    shown = {
        m.group: m for m in equalised_fnr(rows, pd.Series(groups), capacity=0.1, attribute="club", min_size=0)
    }  # nothing withheld here, to see what the group would get
    lone = shown["only-completed"]
    assert lone.selection_after == lone.selection_before
    assert np.isnan(lone.threshold_low) and np.isnan(lone.threshold_high)
    assert not np.isnan(shown["a"].threshold_high)


def test_scoring_never_reads_the_threshold_comparison() -> None:
    # The comparison is a report: only the audit (fairness.run) and its report import it, and
    # Fairlearn's post-processing is imported nowhere else.
    root = Path(__file__).parents[1]
    readers, optimizers = set(), set()
    for path in root.glob("*/**/*.py"):
        if path.parts[len(root.parts)] not in {"models", "training", "fairness", "service", "waymark"}:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if any(n.endswith("fairness.mitigation") for n in names):
                readers.add(path.relative_to(root).as_posix())
            if any(n.startswith("fairlearn.postprocessing") for n in names):
                optimizers.add(path.relative_to(root).as_posix())
    assert readers == {"fairness/run.py", "fairness/report.py"}
    assert optimizers == {"fairness/mitigation.py"}


@pytest.mark.slow  # .ci/run installs a Japanese font for it, beside Chromium
def test_chinese_japanese_or_korean_group_names_are_drawn_when_a_font_has_them() -> None:
    """A Japanese university's 22以上 drew as 22□□: group names fall back to an installed CJK font
    (other scripts, Arabic, Thai or Devanagari, need a font added to ``CJK_FONTS``' kind of list)."""
    import warnings

    from waymark.fairness.report import CJK_FONTS, _font_families, _plot

    if not set(_font_families()) & set(CJK_FONTS):
        pytest.skip("no CJK font installed (Debian: fonts-ipafont-gothic or fonts-noto-cjk)")
    interval = {"point": 0.3, "low": 0.2, "high": 0.4}
    groups = [
        {"group": name, "metrics": {"false_negative_rate": interval}, "withheld": []}
        for name in ("18-21", "22以上", "回答しない")
    ]
    report = {"audits": [{"attribute": "年齢", "week": 4, "capacity": 0.1, "groups": groups}]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drawn = _plot(report, "年齢", week=4, capacity=0.1)
    assert drawn is not None and "22以上: 0.30" in drawn[1]
    assert not [w for w in caught if "Glyph" in str(w.message)], [str(w.message) for w in caught]
