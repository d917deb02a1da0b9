"""Training: targets, temporal split, determinism, MLflow run and registry, hash checks, errors."""

from __future__ import annotations

import importlib.metadata
import json
import warnings
from datetime import UTC, date, datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.pyfunc.model import get_default_pip_requirements
from mlflow.types.utils import _infer_schema
from mlflow.utils.environment import infer_pip_requirements
from typer.testing import CliRunner

from tests.champion import candidate, trained
from tests.contract_folder import VALID, make_folder, with_cell
from waymark.cli import app
from waymark.models.bundle import BundleIntegrityError, ModelBundle
from waymark.models.data import load_learning_data
from waymark.models.features import build_features, population
from waymark.models.registry import SHA_TAG, load_bundle
from waymark.models.settings import Settings, get_settings
from waymark.models.targets import Target, labels
from waymark.training.fitting import FitConfig
from waymark.training.pipeline import TrainingConfigError, TrainingOutcome, train_folder
from waymark.training.split import SplitError, temporal_split
from waymark.training.tracking import Registered, frame_schema, log_and_register, model_requirements

FAST = FitConfig(seed=3, gbm_estimators=40, cv_folds=2)


@pytest.fixture(scope="module")
def outcome(synth_dir: Path) -> TrainingOutcome:
    return train_folder(synth_dir, target=Target.NOT_COMPLETING, config=FAST)


@pytest.fixture(scope="module")
def registered(outcome: TrainingOutcome, mlflow_store: Settings) -> Registered:
    return log_and_register(outcome, "test-not-completing", settings=mlflow_store)


def test_not_completing_labels_withdrawn_and_failed(tmp_path: Path) -> None:
    data = load_learning_data(make_folder(tmp_path))
    got = labels(
        Target.NOT_COMPLETING,
        population(data.registrations, data.presentations, weeks=[1]),
        tables=data.tables(),
    )
    by_student = dict(zip(got["student_id"] + "/" + got["module_id"], got["label"], strict=True))
    assert by_student == {"S1/M1": 0, "S2/M1": 1, "S3/M1": 1}  # S3 on M2 has no result yet: left out


def test_next_assessment_label_needs_a_submission_by_the_due_day(tmp_path: Path) -> None:
    data = load_learning_data(make_folder(tmp_path))
    pop = population(data.registrations, data.presentations, weeks=[1, 3])
    got = labels(Target.NEXT_ASSESSMENT_NONSUBMISSION, pop, tables=data.tables())
    week1 = got[got["week"] == 1].set_index("student_id")["label"].to_dict()
    assert week1 == {"S1": 0, "S2": 1, "S3": 1}  # A1 due day 20: S1 on day 18, S3 late on day 22
    assert got[got["week"] == 3].empty  # after day 21 only the exam is left on M1


def test_the_split_is_temporal_and_validation_is_the_latest_training_start(synth_dir: Path) -> None:
    data = load_learning_data(synth_dir)
    split = temporal_split(data.presentations, date(2025, 8, 1))
    assert all(p.endswith(("2024J", "2025B")) for _, p in split.train)
    assert all(p.endswith(("2025J", "2026B")) for _, p in split.test)
    assert {p for _, p in split.validation} == {"2025B"}


def test_no_later_presentation_is_a_clear_error(synth_dir: Path) -> None:
    with pytest.raises(SplitError, match="no later presentation to test on"):
        train_folder(synth_dir, target=Target.NOT_COMPLETING, config=FAST, test_from=date(2030, 1, 1))


def test_too_few_positives_says_what_to_change(tmp_path: Path) -> None:
    # M2's one registration has its outcome (the tiny folder's M2 has not begun on its data's last date).
    folder = make_folder(tmp_path, registrations=with_cell("registrations", 4, "final_result", "pass"))
    with pytest.raises(TrainingConfigError, match=r"too few examples to train on: .* student-week rows"):
        train_folder(folder, target=Target.NOT_COMPLETING, config=FAST, test_from=date(2025, 1, 1))


def test_a_single_outcome_is_named_as_a_mapping_question_not_a_want_of_students(tmp_path: Path) -> None:
    rows = [list(r) for r in VALID["registrations"]]
    for r in rows[1:]:
        r[5], r[4] = "pass", ""  # final_result, unregistration_day: everybody passed
    folder = make_folder(tmp_path, registrations=rows)
    with pytest.raises(TrainingConfigError, match=r"same outcome: 0 positive .*registrations\.final_result"):
        train_folder(folder, target=Target.NOT_COMPLETING, config=FAST, test_from=date(2025, 1, 1))


def test_a_split_refused_for_want_of_ended_presentations_names_those_left_out(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)  # M2/2025B: outcome not known, starting after the data's last date
    with pytest.raises(
        SplitError, match=r"no presentation starts on or after 2025-01-01.*Left out.*M2 \(2025B\)"
    ):
        train_folder(folder, target=Target.NOT_COMPLETING, config=FAST, test_from=date(2025, 1, 1))


def test_the_same_seed_gives_the_same_metrics(synth_dir: Path, outcome: TrainingOutcome) -> None:
    again = train_folder(synth_dir, target=Target.NOT_COMPLETING, config=FAST)
    pd.testing.assert_frame_equal(outcome.test_weekly, again.test_weekly)
    assert outcome.family == again.family


def test_the_model_is_better_than_chance_on_the_later_cohort(outcome: TrainingOutcome) -> None:
    assert outcome.test_weekly.loc[16, "auc"] > 0.7
    assert outcome.test_weekly.loc[16, "recall_at_10pct"] > 0.15


def test_the_family_is_chosen_on_validation_not_test(outcome: TrainingOutcome) -> None:
    means = outcome.validation.groupby("family")["auc"].mean()
    assert outcome.family == means.idxmax()
    assert set(means.index) == {"logistic", "gbm"}
    assert outcome.split.validation and not set(outcome.split.validation) & set(outcome.split.test)
    assert set(outcome.split.validation) <= set(outcome.split.train)


def test_the_run_records_params_metrics_lineage_and_artifacts(registered: Registered) -> None:
    run = MlflowClient().get_run(registered.run_id)
    assert run.data.params["target"] == "not_completing"
    for metric in (
        "test_auc_w4",
        "test_pr_auc_w4",
        "test_brier_w4",
        "test_ece_w4",
        "test_recall_at_10pct_w4",
        "test_precision_at_10pct_w4",
        "test_auc_w16",
        "test_n_w4",  # what a reader needs to weigh the week's figures (the transparency statement)
        "test_positives_w4",
        "test_ended_share_w4",
    ):
        assert metric in run.data.metrics, metric
    assert run.data.metrics["test_ended_share_w4"] == 0.0  # the synthetic presentations run far longer
    contexts = {i.tags[0].value for i in run.inputs.dataset_inputs}
    assert contexts == {"training", "testing"}
    names = {a.path for a in MlflowClient().list_artifacts(registered.run_id, "evaluation")}
    assert {
        "evaluation/test_by_week.csv",
        "evaluation/features.json",
        "evaluation/roc_by_week.png",
        "evaluation/calibration.png",
        "evaluation/recall_at_capacity_by_week.png",
    } <= names


def test_the_logged_datasets_carry_the_schema_mlflow_would_infer(
    registered: Registered, outcome: TrainingOutcome
) -> None:
    run = MlflowClient().get_run(registered.run_id)
    logged = {i.dataset.name: json.loads(i.dataset.schema) for i in run.inputs.dataset_inputs}
    rows = outcome.train_rows.astype({"label": "float64", "week": "float64"})
    assert logged["training-features"] == {"mlflow_colspec": _infer_schema(rows).to_dict()}
    assert {c["name"] for c in logged["test-labels"]["mlflow_colspec"]} >= {"student_id", "label"}


def test_the_models_requirements_are_those_mlflow_infers(registered: Registered) -> None:
    local = mlflow.artifacts.download_artifacts(artifact_uri=registered.uri)
    # As MLflow decides when not told: what loading the model imports, with the flavour's defaults.
    inferred = sorted({*infer_pip_requirements(local, "python_function"), *get_default_pip_requirements()})
    logged = Path(mlflow.pyfunc.get_model_dependencies(registered.uri)).read_text().split()
    assert logged == [f"mlflow=={mlflow.__version__}", *inferred]
    assert logged[1:] == model_requirements()


def test_a_model_package_that_is_not_installed_is_not_required(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain install (``make run``: no test extra) has no psutil; training must not fail naming it."""
    real = importlib.metadata.version

    def version(package: str) -> str:
        if package == "psutil":
            raise importlib.metadata.PackageNotFoundError(package)
        return real(package)

    monkeypatch.setattr(importlib.metadata, "version", version)
    names = [r.split("==")[0] for r in model_requirements()]
    assert "psutil" not in names and {"numpy", "scikit-learn", "waymark"} <= set(names)


def test_the_fast_schema_is_mlflows_for_every_kind_of_column() -> None:
    frame = pd.DataFrame(
        {
            "arrow_text": pd.array(["a", "b", None], dtype=pd.StringDtype("pyarrow")),
            "text": pd.Series(["a", "b", "c"], dtype="str"),
            "text_missing": ["x", None, "y"],
            "objects": pd.Series([1.5, 2.5, None], dtype=object),
            "real": [1.0, np.nan, 2.0],
            "whole": [1, 2, 3],
            "nullable_whole": pd.array([1, None, 3], dtype="Int64"),
            "nullable_real": pd.array([1.0, 2.0, 3.0], dtype="Float64"),
            "flag": [True, False, True],
            "when": pd.to_datetime(["2024-01-01", None, "2024-02-01"]),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's hint about integer columns
        assert frame_schema(frame).to_dict() == _infer_schema(frame).to_dict()
        assert frame_schema(frame.head(0)).to_dict() == _infer_schema(frame.head(0)).to_dict()


def test_the_version_is_registered_as_candidate_with_its_hash(registered: Registered) -> None:
    client = MlflowClient()
    version = client.get_model_version_by_alias("test-not-completing", "candidate")
    assert str(version.version) == registered.version
    assert version.tags[SHA_TAG] == registered.sha256


def test_the_registered_model_loads_and_predicts_like_the_trained_one(
    registered: Registered, outcome: TrainingOutcome
) -> None:
    loaded = load_bundle("models:/test-not-completing@candidate")
    x = outcome.bundle.matrix(outcome.train_rows.head(50))
    np.testing.assert_allclose(loaded.bundle.probability(x), outcome.bundle.probability(x))


def test_mlflow_pyfunc_serves_the_same_probabilities(
    registered: Registered, outcome: TrainingOutcome
) -> None:
    model = mlflow.pyfunc.load_model(registered.uri)
    sample = outcome.train_rows[list(outcome.bundle.feature_names)].head(5)
    np.testing.assert_allclose(
        np.asarray(model.predict(sample)), outcome.bundle.probability(sample.to_numpy())
    )


def test_a_model_whose_files_changed_is_refused(registered: Registered, tmp_path: Path) -> None:
    client = MlflowClient()
    source = client.get_model_version("test-not-completing", registered.version).source
    model_id = source.split("/")[-1]
    location = client.get_logged_model(model_id).artifact_location
    meta = Path(location.removeprefix("file://")) / "artifacts" / "bundle" / "bundle.json"
    original = meta.read_text(encoding="utf-8")
    try:
        data = json.loads(original)
        data["calibration"][1] += 0.5
        meta.write_text(json.dumps(data), encoding="utf-8")
        with pytest.raises(BundleIntegrityError, match="altered after registration"):
            load_bundle(registered.uri)
    finally:
        meta.write_text(original, encoding="utf-8")
    assert load_bundle(registered.uri).sha256 == registered.sha256


def test_a_bundle_round_trips_without_pickles(outcome: TrainingOutcome, tmp_path: Path) -> None:
    sha = outcome.bundle.save(tmp_path / "b")
    assert {p.suffix for p in (tmp_path / "b").iterdir()} <= {".json", ".txt"}
    again = ModelBundle.load(tmp_path / "b", sha)
    x = outcome.bundle.matrix(outcome.train_rows.head(30))
    np.testing.assert_allclose(again.margin(x), outcome.bundle.margin(x))


def test_both_families_export_the_pipelines_margins(synth_dir: Path) -> None:
    data = load_learning_data(synth_dir)
    for family in ("logistic", "gbm"):
        # A run of that family alone: the session's candidate (the champion's run for gbm), trained once.
        result = trained(synth_dir, candidate(family, seed=3))
        assert result.config.families == (family,)
        assert result.family == family
        x = result.bundle.matrix(build_features(data, weeks=[5]))
        assert np.isfinite(result.bundle.margin(x)).all()


def test_cli_rejects_an_unknown_target(synth_dir: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--data", str(synth_dir), "--target", "dropout_risk"])
    assert result.exit_code == 2
    assert "unknown target" in result.stderr and "not_completing" in result.stderr


def test_cli_trains_and_registers(
    synth_dir: Path, mlflow_store: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store.mlflow_tracking_uri)
    monkeypatch.setenv("WAYMARK_MLFLOW_ARTIFACTS", mlflow_store.mlflow_artifacts)
    # training reads the database's erasures: outside development it must be named (else refused)
    monkeypatch.setenv("WAYMARK_DATABASE_URL", mlflow_store.database_url)
    # the person training, by the staff id sign-in names them by: refused as an approver from now on
    monkeypatch.setenv("WAYMARK_OPERATOR", "DS-Ana")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app,
            [
                "train",
                "--data",
                str(synth_dir),
                "--target",
                "next_assessment_nonsubmission",
                "--family",
                "logistic",
                "--name",
                "cli-next",
            ],
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "Registered models:/cli-next/1 (alias candidate)" in result.stdout
    version = MlflowClient().get_model_version_by_alias("cli-next", "candidate")
    assert str(version.version) == "1"
    assert "Recorded DS-Ana (WAYMARK_OPERATOR) as holding the data scientist's role" in result.stderr
    assert MlflowClient().get_run(str(version.run_id)).data.tags["trained_by"] == "DS-Ana"
    from waymark.service import roles_held
    from waymark.service.db.engine import make_engine, transaction
    from waymark.service.db.schema import ModelDecision

    engine = make_engine(mlflow_store.database_url)
    try:
        with transaction(engine) as session:
            assert set(roles_held.builders(session, ["ds-ana"])) == {"ds-ana"}  # whatever its case
            # an ethics reviewer's approval on record: an environment naming them trains nothing, since
            # recording them as a builder would stop their approvals counting (the served model's too)
            session.add(
                ModelDecision(
                    model_name="cli-next",
                    model_version="1",
                    kind="approved",
                    bundle_sha256="0" * 64,
                    actor="rev-1",
                    recorded_by="rev-1",
                    note="fine",
                    at=datetime.now(UTC),
                )
            )
        monkeypatch.setenv("WAYMARK_OPERATOR", "Rev-1")
        get_settings.cache_clear()
        refused = CliRunner().invoke(app, ["train", "--data", str(synth_dir), "--name", "cli-next"])
        assert refused.exit_code != 0 and "who has approved 1 model version(s)" in refused.stderr
        with transaction(engine) as session:
            assert roles_held.builders(session, ["rev-1"]) == {}
    finally:
        get_settings.cache_clear()
        engine.dispose()
    assert [str(v.version) for v in MlflowClient().search_model_versions("name='cli-next'")] == ["1"]


def test_erased_students_are_left_out_of_training(synth_dir: Path) -> None:
    erased = frozenset({"S00000001", "S00000002", "S00000003"})
    outcome = train_folder(
        synth_dir,
        target=Target.NOT_COMPLETING,
        config=FitConfig(families=("logistic",), cv_folds=2),
        exclude=erased,
    )
    assert not set(outcome.train_rows["student_id"]) & erased
    assert not set(outcome.test_scored["student_id"]) & erased


@pytest.mark.slow  # an integration run of a minute or so: in .ci/run's heavier suite
def test_cli_output_says_what_happened_in_full_and_never_nan(
    synth_dir: Path, mlflow_store: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store.mlflow_tracking_uri)
    monkeypatch.setenv("WAYMARK_MLFLOW_ARTIFACTS", mlflow_store.mlflow_artifacts)
    monkeypatch.setenv("WAYMARK_DATABASE_URL", mlflow_store.database_url)  # training reads erasures there
    monkeypatch.delenv("WAYMARK_OPERATOR", raising=False)  # as a data scientist's own shell may set it
    args = ["train", "--data", str(synth_dir), "--family", "logistic", "--name", "cli-output"]
    get_settings.cache_clear()
    try:
        table = CliRunner().invoke(app, args)
        as_json = CliRunner().invoke(app, [*args, "--format", "json"])
    finally:
        get_settings.cache_clear()
    assert table.exit_code == 0 and as_json.exit_code == 0, table.output + as_json.output
    text = table.stdout
    assert "Family: logistic, set by --family" in text and "chosen" not in text.lower()
    assert "of which validation [" in text and "-> test [" in text
    assert "precision@10%" in text and "recall@20%" in text  # piped, the table keeps every column
    assert "nan" not in text.lower()
    # outside development, nobody named as the person training: said, as the committee's check is blind
    unnamed = "WAYMARK_OPERATOR is not set: the committee's check cannot tell who built this model"
    assert unnamed in table.stderr and unnamed in as_json.stderr  # on stderr whatever the format
    summary = json.loads(as_json.stdout, parse_constant=lambda c: pytest.fail(f"{c} in --format json"))
    assert summary["family"] == "logistic" and summary["families_considered"] == ["logistic"]
    assert summary["split"]["test"] and summary["evaluation"]
    assert summary["split"]["left_out_outcomes_not_known"] == []  # every outcome of this folder is known
    assert "Left out of training" not in text
    assert summary["registered"]["uri"] == "models:/cli-output/2"
