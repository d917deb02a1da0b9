"""MLflow tracking of a training run and registration of its model with alias ``candidate``.

With ``models.registry`` (reads, and the governance mirror), the only module that imports mlflow.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import tempfile
import warnings
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.pandas_dataset import PandasDataset
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.types import ColSpec, DataType, Schema
from mlflow.types.utils import _infer_pandas_column
from mlflow.utils.requirements_utils import _get_pinned_requirement

import waymark.models.pyfunc_model
from waymark.models import drift
from waymark.models.bundle import ModelBundle
from waymark.models.data import folder_fingerprint
from waymark.models.data.publish import is_uri, local_folder
from waymark.models.features import FEATURES
from waymark.models.registry import (
    FAMILY_CHOICE_TAG,
    MITIGATION_TAG,
    OUTCOME_WORDS_TAG,
    SHA_TAG,
    TRAINED_BY_TAG,
    WARNINGS_TAG,
    configure,
    pairs_params,
)
from waymark.models.settings import Settings
from waymark.training import plots, shap_plots
from waymark.training.pipeline import TrainingOutcome

CANDIDATE = "candidate"
_METRIC_NAMES = {
    "auc": "auc",
    "pr_auc": "pr_auc",
    "brier": "brier",
    "ece": "ece",
    "recall_at_10pct": "recall_at_10pct",
    "precision_at_10pct": "precision_at_10pct",
    "recall_at_20pct": "recall_at_20pct",
    "precision_at_20pct": "precision_at_20pct",
    # What a reader of the figures needs to weigh them: each week's test rows, those with the outcome,
    # and the share whose presentation had ended by the cut-off.
    "n": "n",
    "positives": "positives",
    "ended_share": "ended_share",
}

# The pip requirements MLflow would infer for the served model, named so it need not infer them (it loads
# the model in a child process to see what it imports: 6 s a run): what the python_function flavour
# always needs (cloudpickle), MLflow's own dependencies that load, and waymark, which brings the rest.
# tests/test_training.py checks that MLflow still infers exactly these.
MODEL_PACKAGES = ("cloudpickle", "numpy", "pandas", "psutil", "scikit-learn", "scipy", "waymark")


@dataclass(frozen=True)
class Registered:
    """The registered model version of a run."""

    name: str
    version: str
    run_id: str
    sha256: str

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION``."""
        return f"models:/{self.name}/{self.version}"


def _experiment(name: str, settings: Settings) -> str:
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    local = (
        settings.mlflow_tracking_uri.startswith(("sqlite:", "file:"))
        or "://" not in settings.mlflow_tracking_uri
    )
    location = Path(settings.mlflow_artifacts).resolve().as_uri() if local else None
    return str(mlflow.create_experiment(name, artifact_location=location))


def week_metrics(outcome: TrainingOutcome) -> dict[str, float]:
    """Per-week test metrics named as PRODUCT §7 fixes them (``test_auc_w4``, ...)."""
    out = {}
    for week, row in outcome.test_weekly.iterrows():
        for column, name in _METRIC_NAMES.items():
            if column not in row:  # ended_share: a frame built elsewhere may not hold it
                continue
            value = float(row[column])
            if not math.isnan(value):
                out[f"test_{name}_w{week}"] = value
    return out


def mitigation_metrics(outcome: TrainingOutcome) -> dict[str, float]:
    """What the mitigation settled on, and its comparison on the test presentations week by week."""
    record = outcome.mitigation
    if record is None:
        return {}
    out = {f"mitigation_{k}": v for k, v in record.chosen.items()}
    for row in record.comparison.to_dict("records"):
        week = int(row["week"])
        out.update(
            {f"mitigation_{k}_w{week}": float(v) for k, v in row.items() if k != "week" and not math.isnan(v)}
        )
    return out


def summary_metrics(outcome: TrainingOutcome) -> dict[str, float]:
    """Means over weeks, validation means per family, and lead time."""
    out = {
        f"test_{c}_mean": float(outcome.test_weekly[c].mean())
        for c in ("auc", "pr_auc", "brier", "ece", "recall_at_10pct")
    }
    if not outcome.validation.empty:
        for family, g in outcome.validation.groupby("family"):
            out[f"val_auc_mean_{family}"] = float(g["auc"].mean())
    out.update({f"lead_{k}": v for k, v in outcome.lead.items() if not math.isnan(v)})
    return out


def log_and_register(outcome: TrainingOutcome, name: str, *, settings: Settings) -> Registered:
    """Log the run (params, metrics, lineage, artifacts, model) and register it as ``candidate``."""
    configure(settings)
    fingerprint = outcome.fingerprint or folder_fingerprint(local_folder(outcome.folder))
    with (
        mlflow.start_run(experiment_id=_experiment(f"waymark-{outcome.target.value}", settings)) as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        _log_params(outcome, fingerprint)
        mlflow.log_metrics(
            {**week_metrics(outcome), **summary_metrics(outcome), **mitigation_metrics(outcome)}
        )
        _log_lineage(outcome, fingerprint)
        mlflow.set_tag(FAMILY_CHOICE_TAG, outcome.choice.describe()[:5000])  # the model card reads it
        if settings.operator:  # who trained it, by the staff id sign-in names them by (WAYMARK_OPERATOR)
            mlflow.set_tag(TRAINED_BY_TAG, settings.operator)
        if outcome.mitigation is not None:  # so does the model card (fairness.report)
            mlflow.set_tag(MITIGATION_TAG, outcome.mitigation.description[:5000])
        if words := outcome.manifest.get("outcome_words"):  # what "not completing" means there (model card)
            mlflow.set_tag(OUTCOME_WORDS_TAG, json.dumps(words, ensure_ascii=False))
        if outcome.warnings:  # the committee's report reads them from this tag (fairness.run)
            mlflow.set_tag(WARNINGS_TAG, "\n".join(outcome.warnings)[:5000])
            mlflow.log_text("\n".join(outcome.warnings) + "\n", "evaluation/warnings.txt")
        _log_artifacts(outcome, Path(tmp))
        _log_explanations(outcome, Path(tmp))
        sha = with_reference(outcome).save(Path(tmp) / "bundle")
        sample = outcome.train_rows[list(outcome.bundle.feature_names)].head(20)
        with warnings.catch_warnings():
            # The signature is explicit; MLflow's input-example writer trips a pandas 3
            # deprecation, so no example is logged and MLflow's advice to add one is silenced.
            warnings.filterwarnings("ignore", message=".*An input example was not provided")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=waymark.models.pyfunc_model.__file__,
                artifacts={"bundle": str(Path(tmp) / "bundle")},
                model_config={"bundle_sha256": sha},
                pip_requirements=model_requirements(),
                signature=infer_signature(sample, outcome.bundle.probability(sample.to_numpy())),
            )
        version = mlflow.register_model(info.model_uri, name, tags={SHA_TAG: sha})
    client = MlflowClient()
    for key, value in {
        "target": outcome.target.value,
        "family": outcome.family,
        "data_fingerprint": fingerprint,
        "run_id": run.info.run_id,
    }.items():
        client.set_model_version_tag(name, version.version, key, value)
    client.set_registered_model_alias(name, CANDIDATE, version.version)
    return Registered(name, str(version.version), run.info.run_id, sha)


def model_requirements() -> list[str]:
    """``MODEL_PACKAGES`` pinned to their installed versions, as MLflow pins what it infers.

    A package that is not installed is left out, as MLflow's inference would leave it out (loading
    the model cannot import it): psutil, which MLflow imports when it can, is in the test extra only.
    """
    return [
        _get_pinned_requirement(package)  # type: ignore[no-untyped-call]
        for package in MODEL_PACKAGES
        if _installed(package)
    ]


def _installed(package: str) -> bool:
    try:
        importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def with_reference(outcome: TrainingOutcome) -> ModelBundle:
    """The bundle with the training distributions that scoring runs are compared with (``models.drift``).

    Features are binned on the training rows, estimates on the test cohort (the latest presentations,
    scored out of sample, are the nearest thing to what a scoring run will see).
    """
    reference = {
        "features": drift.feature_reference(outcome.train_rows, outcome.bundle.feature_names),
        "estimates": drift.estimate_reference(outcome.test_scored),
    }
    return replace(outcome.bundle, reference=reference)


def _log_params(outcome: TrainingOutcome, fingerprint: str) -> None:
    split = outcome.split
    mlflow.log_params(
        {
            "target": outcome.target.value,
            "family": outcome.family,
            "family_choice": outcome.choice.method,
            **({"cv_grouped_by": outcome.choice.grouped_by} if outcome.choice.grouped_by else {}),
            **{f"config_{k}": v for k, v in asdict(outcome.config).items()},
            "test_from": split.test_from.isoformat(),
            "test_from_basis": split.basis,
            **pairs_params("train_presentations", split.train),
            **pairs_params("validation_presentations", split.validation),
            **pairs_params("test_presentations", split.test),  # read back by the fairness audit
            "n_features": len(outcome.bundle.feature_names),
            "n_train_rows": len(outcome.train_rows),
            "n_test_rows": len(outcome.test_scored),
            "calibration_a": outcome.bundle.calibration[0],
            "calibration_b": outcome.bundle.calibration[1],
            "data_fingerprint": fingerprint,
            "data_source": str(outcome.manifest.get("source", "unknown")),
            **(outcome.censoring.params() if outcome.censoring else {}),
            **(
                {f"mitigation_{k}": v for k, v in outcome.mitigation.params.items()}
                if outcome.mitigation
                else {"mitigation_method": "none"}
            ),
        }
    )


def frame_schema(frame: pd.DataFrame) -> Schema:
    """The schema MLflow infers for ``frame``, read from its dtypes with one vectorised null check per column.

    MLflow's own inference looks at every value in Python (a string column's values one by one, and
    each value of every column for missing ones): on OULAD's 390,532 training rows that took 35-70 s of
    a 146 s training run. Types come from the dtype as MLflow reads it (a string dtype is ``string``;
    an ``object`` column is still inferred from its values); a column is required when it has no
    missing value, as MLflow decides.
    """
    return Schema(
        [
            ColSpec(
                type=DataType.string if isinstance(col.dtype, pd.StringDtype) else _infer_pandas_column(col),
                name=str(name),
                required=not bool(col.isna().any()),
            )
            for name, col in frame.items()
        ]
    )


class _FrameDataset(PandasDataset):
    """A pandas dataset whose schema is ``frame_schema`` (the same as MLflow's, without the Python loop)."""

    @cached_property
    def schema(self) -> Schema | None:
        """The frame's schema; None when it cannot be inferred (as MLflow's dataset has it)."""
        try:
            return frame_schema(self.df)
        except MlflowException:
            return None


def _dataset(frame: pd.DataFrame, *, source: str, name: str, digest: str) -> PandasDataset:
    return _FrameDataset(frame, source=_source(source), targets="label", name=name, digest=digest)


def lineage_source(folder: Path | str) -> str:
    """Where the run's data came from: a local path resolved, a URI as given."""
    return folder if isinstance(folder, str) and is_uri(folder) else str(Path(folder).resolve())


class HadoopUriSource(DatasetSource):
    """A data folder at a Hadoop URI MLflow has no source type for (``s3a://``, ``abfs://``...).

    It names the folder in the run's lineage; MLflow cannot load it (Spark reads it:
    ``--engine spark``).
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri

    @staticmethod
    def _get_source_type() -> str:
        return "hadoop_uri"

    def load(self) -> Any:
        """Refused: the folder is read by Spark, not by MLflow."""
        raise MlflowException(f"{self.uri} is read by Spark (waymark ... --engine spark), not by MLflow")

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False  # never chosen by MLflow's resolver; tracking names it when no other applies

    @classmethod
    def _resolve(cls, raw_source: Any) -> HadoopUriSource:
        return cls(str(raw_source))

    def to_dict(self) -> dict[str, Any]:
        """The URI, as MLflow stores a source."""
        return {"uri": self.uri}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> HadoopUriSource:
        """The source ``to_dict`` stored."""
        return cls(str(source_dict["uri"]))


def _source(source: str) -> DatasetSource:
    """MLflow's source for ``source``; a URI it knows no type for is a ``HadoopUriSource``."""
    try:
        return resolve_dataset_source(source)
    except MlflowException:
        if not is_uri(source):
            raise
        return HadoopUriSource(source)


def _log_lineage(outcome: TrainingOutcome, fingerprint: str) -> None:
    source = lineage_source(outcome.folder)
    as_float = {
        "label": "float64",
        "week": "float64",
    }  # integer columns make MLflow warn about missing values
    scored = outcome.test_scored.drop(columns=["probability"]).astype({**as_float, "outcome_day": "float64"})
    with warnings.catch_warnings():
        # A local path matches MLflow's local-artifact source twice; it picks the right one and warns.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        digest = fingerprint[:16]
        rows = outcome.train_rows.astype(as_float)
        train = _dataset(rows, source=source, name="training-features", digest=digest)
        test = _dataset(scored, source=source, name="test-labels", digest=digest)
    mlflow.log_input(train, context="training")
    mlflow.log_input(test, context="testing")


def _log_artifacts(outcome: TrainingOutcome, tmp: Path) -> None:
    folder = tmp / "evaluation"
    folder.mkdir()
    outcome.test_weekly.to_csv(folder / "test_by_week.csv")
    outcome.interval_coverage.to_csv(folder / "interval_coverage_by_week.csv")  # models.uncertainty
    if not outcome.validation.empty:  # on the validation presentations, or out of fold (family_choice)
        outcome.validation.to_csv(folder / "validation_by_family_and_week.csv", index=False)
    if outcome.mitigation is not None:  # the cost beside the gain (fairness.reduction.compare)
        outcome.mitigation.comparison.to_csv(folder / "mitigation_comparison_by_week.csv", index=False)
    (folder / "lead_time.json").write_text(json.dumps(outcome.lead, indent=2), encoding="utf-8")
    (folder / "split.json").write_text(
        json.dumps(
            {
                "test_from": outcome.split.test_from.isoformat(),
                "basis": outcome.split.basis,
                "start_dates": outcome.split.start_rows(),
                "family_choice": outcome.choice.describe(),
                "train": outcome.split.train,
                "validation": outcome.split.validation,
                "test": outcome.split.test,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    features = [{"name": f.name, "family": f.family, "description": f.description} for f in FEATURES]
    (folder / "features.json").write_text(json.dumps(features, indent=2), encoding="utf-8")
    plots.roc_by_week(outcome.test_scored, folder / "roc_by_week.png")
    plots.reliability(outcome.test_scored, folder / "calibration.png")
    plots.recall_at_capacity(outcome.test_weekly, folder / "recall_at_capacity_by_week.png")
    mlflow.log_artifacts(str(folder), artifact_path="evaluation")


def _log_explanations(outcome: TrainingOutcome, tmp: Path) -> None:
    """SHAP's global plots of the exact contributions on a sample of training rows (training.shap_plots)."""
    folder = tmp / "explanations"
    folder.mkdir()
    explained = shap_plots.explanation(outcome.bundle, outcome.train_rows, seed=outcome.config.seed)
    shap_plots.save_global_plots(explained, folder)
    shap_plots.mean_contributions(explained).to_csv(folder / "mean_abs_contribution.csv")
    mlflow.log_artifacts(str(folder), artifact_path="explanations")
