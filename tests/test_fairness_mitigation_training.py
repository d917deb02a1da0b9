"""The committee's training-time mitigation (fairness.reduction): switched on by the policy, applied in
training through labels and weights only, recorded in the run and the model card, measured honestly."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from waymark.cli import app
from waymark.fairness.policy import DEFAULT_POLICY, MitigationPolicy, PolicyError, load_policy
from waymark.fairness.reduction import GridSearchMitigation, MitigationError, mitigation_for
from waymark.fairness.report import model_card, published
from waymark.fairness.run import audit_model
from waymark.models.data import ProtectedFrame
from waymark.models.features import FEATURE_NAMES
from waymark.models.registry import MITIGATION_TAG
from waymark.models.settings import Settings, get_settings
from waymark.models.targets import Target
from waymark.training.fitting import FitConfig, unfitted
from waymark.training.ingest.synthetic import SynthConfig, generate
from waymark.training.ingest.synthetic_people import Disparity
from waymark.training.pipeline import TrainingConfigError, TrainingOutcome, _calibrated, train_folder
from waymark.training.reweighting import Reweighting
from waymark.training.tracking import log_and_register

SWITCHED_ON = 'method = "grid_search"'
CONFIG = FitConfig(seed=1, families=("logistic",), cv_folds=2)


def _policy_file(tmp: Path, *changes: tuple[str, str]) -> Path:
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    for old, new in changes:
        assert old in text
        text = text.replace(old, new)
    path = tmp / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _on(tmp: Path, *changes: tuple[str, str]) -> Path:
    return _policy_file(tmp, ('method = "none"', SWITCHED_ON), *changes)


# --- the policy ----------------------------------------------------------------------------------------


def test_the_packaged_policy_has_no_mitigation() -> None:
    assert load_policy().mitigation.method == "none"


def test_a_policy_switches_grid_search_on_with_its_settings(tmp_path: Path) -> None:
    policy = load_policy(
        _on(tmp_path, ('attributes = ["disability"]', 'attributes = ["gender", "disability"]'))
    )
    assert policy.mitigation == MitigationPolicy(
        "grid_search", ("gender", "disability"), "true_positive_rate_parity", 15, 0.3, 0.5
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('method = "none"', 'method = "exponentiated_gradient"'), "mitigation.method"),
        (('constraint = "true_positive_rate_parity"', 'constraint = "happiness"'), "mitigation.constraint"),
        (("grid_limit = 0.3", "grid_limit = 0"), "mitigation.grid_limit"),
        (("constraint_weight = 0.5", "constraint_weight = 2"), "mitigation.constraint_weight"),
        (("grid_size = 15", "grid_size = 2.7"), "mitigation.grid_size"),
        (
            ('constraint = "true_positive_rate_parity"', 'constraints = "equalized_odds"'),
            "mitigation.constraints",
        ),
    ],
)
def test_a_bad_mitigation_setting_is_named(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(message)):
        load_policy(_policy_file(tmp_path, change))


def test_a_mitigation_switched_on_must_name_a_characteristic(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=re.escape("mitigation.attributes")):
        load_policy(_on(tmp_path, ('attributes = ["disability"]', "attributes = []")))


# --- GridSearch on a cohort with a known difference -------------------------------------------------------


def _cohort(n: int = 4000, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray, ProtectedFrame]:
    """Group "b"'s students need support more often than their features show (invisible to the model)."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b"], size=n, p=[0.75, 0.25])
    x = rng.normal(size=(n, len(FEATURE_NAMES)))
    logit = 1.2 * x[:, 0] - 0.8 * x[:, 1] + np.where(group == "b", 1.2, -0.4)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    ids = [f"S{i}" for i in range(n)]
    rows = pd.DataFrame({"student_id": ids, "week": rng.choice([4, 8], size=n), "label": y})
    protected = ProtectedFrame(pd.DataFrame({"student_id": ids, "disability": group}).astype("string"))
    return rows, x, protected


def _tpr_gap(pipeline, x: np.ndarray, y: np.ndarray, group: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    predicted = pipeline.predict(x)
    rates = [predicted[(group == g) & (y == 1)].mean() for g in ("a", "b")]
    return abs(rates[0] - rates[1])


def test_grid_search_narrows_the_training_rows_difference_it_was_asked_to() -> None:
    rows, x, protected = _cohort()
    mitigation = GridSearchMitigation(
        MitigationPolicy("grid_search", ("disability",)), protected, min_group_size=10, capacity=0.1
    )
    labels, weights, chosen = mitigation.reweigh(rows, x=x, estimator=lambda: unfitted("logistic", CONFIG))
    y, group = rows["label"].to_numpy(), protected.for_audit()["disability"].to_numpy()
    assert labels.shape == weights.shape == y.shape
    assert weights.min() > 0 and weights.mean() == pytest.approx(1.0)
    assert chosen["multipliers_l1"] > 0  # not the unconstrained point
    plain = unfitted("logistic", CONFIG).fit(x, y)
    mitigated = unfitted("logistic", CONFIG).fit(x, labels, model__sample_weight=weights)
    gap = _tpr_gap(mitigated, x, y, group)
    assert gap < _tpr_gap(plain, x, y, group) - 0.01
    # Here the best point is on the grid's edge, and the run says so: a wider grid narrows further.
    assert chosen["at_grid_limit"] == 1
    wider = dataclasses.replace(
        mitigation, policy=MitigationPolicy("grid_search", ("disability",), grid_limit=1.0)
    )
    labels, weights, _ = wider.reweigh(rows, x=x, estimator=lambda: unfitted("logistic", CONFIG))
    assert (
        _tpr_gap(unfitted("logistic", CONFIG).fit(x, labels, model__sample_weight=weights), x, y, group) < gap
    )


def test_groups_join_several_characteristics_and_name_what_is_not_recorded() -> None:
    frame = pd.DataFrame({"student_id": ["a", "b"], "gender": ["F", None], "disability": ["Y", "N"]})
    mitigation = GridSearchMitigation(
        MitigationPolicy("grid_search", ("gender", "disability")),
        ProtectedFrame(frame.astype("string")),
        min_group_size=10,
        capacity=0.1,
    )
    assert mitigation.groups(pd.Series(["b", "a", "nobody"])).tolist() == [
        "gender=not recorded & disability=N",
        "gender=F & disability=Y",
        "gender=not recorded & disability=not recorded",
    ]


def test_the_comparison_publishes_differences_only_of_groups_large_enough() -> None:
    rows, x, protected = _cohort(n=1000)
    frame = protected.for_audit()
    frame.loc[:4, "disability"] = "c"  # a group of five
    mitigation = GridSearchMitigation(
        MitigationPolicy("grid_search", ("disability",)),
        ProtectedFrame(frame),
        min_group_size=10,
        capacity=0.2,
    )
    score = x[:, 0]
    table = mitigation.compare(
        rows, before=score, after=score + 0.1 * (frame["disability"] == "b").to_numpy(dtype=float)
    )
    assert list(table["week"]) == [4, 8]
    assert (table["groups_compared"] == 2).all()  # "c" is never compared
    assert (table["auc_before"] > 0.6).all() and (table["disparity_before"] >= 0).all()


def test_a_student_with_two_registrations_counts_once_towards_the_minimum() -> None:
    rows, x, protected = _cohort(n=1000)
    frame = protected.for_audit()
    frame.loc[:5, "disability"] = "c"  # six students ...
    twice = rows.iloc[:6].assign(module_id="other")  # ... each also on a second module: twelve rows
    rows, x = pd.concat([rows, twice], ignore_index=True), np.vstack([x, x[:6]])
    rows["week"] = 8
    mitigation = GridSearchMitigation(
        MitigationPolicy("grid_search", ("disability",)),
        ProtectedFrame(frame),
        min_group_size=10,
        capacity=0.2,
    )
    table = mitigation.compare(rows, before=x[:, 0], after=x[:, 0])
    assert table["groups_compared"].tolist() == [2]  # "c" has six students, however many rows


# --- a mitigated training run, tracked and audited -------------------------------------------------------


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mitigated") / "data"
    generate(folder, SynthConfig(students=3000, seed=5, disparity=Disparity("disability", "Y", 1.5)))
    return folder


@pytest.fixture(scope="module")
def mitigated(cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainingOutcome:
    # Five grid points, not fifteen: on this cohort both choose the same point, a third faster.
    policy = load_policy(_on(tmp_path_factory.mktemp("policy"), ("grid_size = 15", "grid_size = 5")))
    return train_folder(
        cohort, target=Target.NOT_COMPLETING, config=CONFIG, mitigation=mitigation_for(policy, cohort)
    )


@pytest.fixture(scope="module")
def plain(cohort: Path) -> TrainingOutcome:
    return train_folder(cohort, target=Target.NOT_COMPLETING, config=CONFIG)


def test_the_calibration_uses_the_rows_own_labels_not_the_mitigations(plain: TrainingOutcome) -> None:
    # Fitted on every label flipped, the model ranks backwards; calibrated on what happened, its
    # slope turns negative and its estimates still average the observed rate.
    rows = plain.train_rows
    x = rows[list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
    y = rows["label"].to_numpy()
    flipped = Reweighting(labels=1 - y, weights=np.ones(len(y)))
    bundle = _calibrated(Target.NOT_COMPLETING, "logistic", config=CONFIG, rows=rows, x=x, fit_on=flipped)
    assert bundle.calibration[0] < 0
    assert bundle.probability(x).mean() == pytest.approx(y.mean(), abs=0.01)


def test_the_mitigated_model_scores_from_the_features_alone(mitigated: TrainingOutcome) -> None:
    assert mitigated.bundle.feature_names == FEATURE_NAMES
    assert mitigated.mitigation is not None
    assert mitigated.mitigation.chosen["multipliers_l1"] > 0


def test_the_run_reports_the_cost_beside_the_gain_on_its_later_presentations(
    mitigated: TrainingOutcome, plain: TrainingOutcome
) -> None:
    assert mitigated.mitigation is not None
    table = mitigated.mitigation.comparison
    assert set(table["week"]) == set(mitigated.test_weekly.index)
    # "with" is the registered model itself; "without" ranks as the same run without the mitigation.
    assert np.allclose(table["auc_after"], mitigated.test_weekly["auc"].reindex(table["week"]))
    assert np.allclose(table["auc_before"], plain.test_weekly["auc"].reindex(table["week"]))
    # The injected difference against disability=Y is narrowed on the later cohort.
    assert table["disparity_after"].mean() < table["disparity_before"].mean()
    # Each a difference of two groups' shares, on the step the audit would publish it on (at least
    # 0.01, fairness.disclosure): at full precision, beside rounded counts, it could give them back.
    shown = table[["disparity_before", "disparity_after"]].stack().to_numpy()
    assert len(shown) and np.allclose(shown * 100, np.round(shown * 100), rtol=0, atol=1e-9)


def test_the_mitigated_model_is_calibrated_on_the_rows_own_labels(
    mitigated: TrainingOutcome, plain: TrainingOutcome
) -> None:
    # Fitted on reweighted rows, calibrated on what happened: its estimates stay as close to the
    # later cohort's outcomes as the plain model's.
    assert mitigated.test_weekly["ece"].mean() < plain.test_weekly["ece"].mean() + 0.02
    assert abs(mitigated.test_scored["probability"].mean() - mitigated.test_scored["label"].mean()) < 0.03


def test_the_run_and_the_model_card_record_the_mitigation(
    mitigated: TrainingOutcome, mlflow_store: Settings, cohort: Path, tmp_path: Path
) -> None:
    registered = log_and_register(mitigated, "mitigated", settings=mlflow_store)
    run = mlflow.get_run(registered.run_id)
    assert run.data.params["mitigation_method"] == "grid_search"
    assert run.data.params["mitigation_attributes"] == "disability"
    assert "GridSearch" in run.data.tags[MITIGATION_TAG]
    assert "mitigation_grid_point" in run.data.metrics
    assert "mitigation_disparity_after_w8" in run.data.metrics
    artifacts = mlflow.artifacts.download_artifacts(
        run_id=registered.run_id,
        artifact_path="evaluation/mitigation_comparison_by_week.csv",
        dst_path=str(tmp_path),
    )
    assert len(pd.read_csv(artifacts)) == len(mitigated.mitigation.comparison)  # type: ignore[union-attr]
    policy = dataclasses.replace(load_policy(), bootstrap_resamples=50)
    outcome = audit_model(registered.uri, cohort, policy=policy)
    card = model_card(published(outcome, outcome.mitigation), test_metrics={})
    assert "weigh the training rows" in card and "GridSearch" in card


def test_an_unmitigated_model_card_says_training_applied_none(
    plain: TrainingOutcome, cohort: Path, mlflow_store: Settings
) -> None:
    registered = log_and_register(plain, "unmitigated", settings=mlflow_store)
    assert mlflow.get_run(registered.run_id).data.params["mitigation_method"] == "none"
    policy = dataclasses.replace(load_policy(), bootstrap_resamples=50)
    outcome = audit_model(registered.uri, cohort, policy=policy)
    card = model_card(published(outcome, outcome.mitigation), test_metrics={})
    assert "training applied no fairness mitigation" in card


def test_a_mitigation_cannot_be_combined_with_outreach_weights(cohort: Path, tmp_path: Path) -> None:
    policy = load_policy(_on(tmp_path))
    contacts = pd.DataFrame(
        {"student_id": pd.Series([], dtype=str), "contacted_on": pd.Series([], dtype=str)}
    )
    with pytest.raises(TrainingConfigError, match="intervention_policy 'weight'"):
        train_folder(
            cohort,
            target=Target.NOT_COMPLETING,
            config=dataclasses.replace(CONFIG, intervention_policy="weight"),
            interventions=contacts,
            mitigation=mitigation_for(policy, cohort),
        )


def test_a_characteristic_the_data_lacks_is_refused_before_training(cohort: Path, tmp_path: Path) -> None:
    policy = load_policy(_on(tmp_path, ('attributes = ["disability"]', 'attributes = ["shoe_size"]')))
    with pytest.raises(MitigationError, match="shoe_size"):
        mitigation_for(policy, cohort)


def _cli(args: list[str], store: Settings, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.mlflow_tracking_uri)
    monkeypatch.setenv("WAYMARK_MLFLOW_ARTIFACTS", store.mlflow_artifacts)
    monkeypatch.setenv("WAYMARK_DATABASE_URL", store.database_url)  # training reads erasures there
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, args)
    finally:
        get_settings.cache_clear()


def test_the_command_line_refuses_a_missing_characteristic_and_registers_nothing(
    cohort: Path, tmp_path: Path, mlflow_store: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    policy = _on(tmp_path, ('attributes = ["disability"]', 'attributes = ["shoe_size"]'))
    args = ["train", "--data", str(cohort), "--policy", str(policy), "--name", "cli-refused"]
    result = _cli(args, mlflow_store, monkeypatch)
    assert result.exit_code == 2, result.output
    assert "shoe_size" in result.output and "mitigation.attributes" in result.output
    assert not MlflowClient().search_registered_models(filter_string="name = 'cli-refused'")


@pytest.mark.slow  # a second mitigated training run, through the command line: in .ci/run's heavier suite
def test_the_command_line_shows_the_cost_beside_the_gain(
    cohort: Path, tmp_path: Path, mlflow_store: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    policy = _on(tmp_path, ("grid_size = 15", "grid_size = 5"))
    args = ["train", "--data", str(cohort), "--policy", str(policy), "--family", "logistic"]
    result = _cli([*args, "--name", "cli-mitigated", "--format", "json"], mlflow_store, monkeypatch)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"{c} in --format json"))
    assert summary["mitigation"]["settings"]["constraint"] == "true_positive_rate_parity"
    weeks = [row["week"] for row in summary["mitigation"]["comparison"]]
    assert weeks == sorted(weeks) and 8 in weeks
