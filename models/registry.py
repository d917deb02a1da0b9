"""The door to MLflow's model registry: the only module besides ``training.tracking`` that imports mlflow.

Here are the reads (model versions, their runs' parameters and metrics, verified bundles) and the
governance writes the fairness audit and the service make (version tags, the champion alias, event
runs, files kept beside a model's run). Training runs are written by ``training.tracking``. Nothing
returned here is an MLflow object: callers get :class:`Version` and plain mappings, so MLflow can be
upgraded, or replaced, by changing this module alone.

Reads take an optional ``store`` (a tracking URI): a long-running service names its own store on
every call instead of relying on the process-wide one that :func:`configure` sets for commands.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import mlflow.artifacts
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from waymark.models.settings import Settings

if TYPE_CHECKING:  # the bundle (LightGBM, scikit-learn) is imported when a model is loaded, not before
    from waymark.models.bundle import ModelBundle

SHA_TAG = "bundle_sha256"
WARNINGS_TAG = "training_warnings"  # a training run's suspiciously good results, one per line
FAMILY_CHOICE_TAG = "family_choice"  # how a training run settled its model family, in words
MITIGATION_TAG = "mitigation"  # the fairness policy's training-time mitigation, in words (absent: none)
# the export's own words each outcome was mapped from, as JSON {"fail": [...], ...} (absent: not known)
OUTCOME_WORDS_TAG = "outcome_words"
# the staff id of the person who trained the run (WAYMARK_OPERATOR; absent: not named)
TRAINED_BY_TAG = "trained_by"
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


class ModelNotFoundError(LookupError):
    """No registered model version answers to the URI."""


@dataclass(frozen=True)
class Version:
    """One registered model version, as Waymark reads it."""

    name: str
    version: str
    run_id: str
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION``."""
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class Run:
    """A run's recorded parameters, metrics and tags."""

    run_id: str
    params: Mapping[str, str]
    metrics: Mapping[str, float]
    tags: Mapping[str, str]


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A verified bundle and where it came from."""

    bundle: ModelBundle
    name: str
    version: str
    sha256: str


#: MLflow's HTTP retries and timeout unless the environment sets them: its own (7 retries, backoff 2,
#: 120 s a request) held a serving worker's champion check for about four minutes while a tracking
#: server was down. Three tries of at most 20 s each fail within about a minute.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


def configure(settings: Settings) -> None:
    """Point MLflow at the configured tracking store, without progress bars or chatter, with bounded waits."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)


def _client(store: str | None) -> MlflowClient:
    return MlflowClient(tracking_uri=store, registry_uri=store)


def _version(found: ModelVersion) -> Version:
    return Version(found.name, str(found.version), found.run_id or "", dict(found.tags))


def resolve(uri: str, *, store: str | None = None) -> Version:
    """The model version a ``models:/name@alias`` or ``models:/name/version`` URI names."""
    match = _URI.match(uri)
    if not match:
        raise ModelNotFoundError(
            f"{uri!r} is not a model URI like models:/NAME@ALIAS or models:/NAME/VERSION"
        )
    client = _client(store)
    try:
        if match["alias"]:
            return _version(client.get_model_version_by_alias(match["name"], match["alias"]))
        return _version(client.get_model_version(match["name"], match["version"]))
    except mlflow.exceptions.MlflowException as exc:
        raise ModelNotFoundError(f"no registered model version for {uri}: {exc.message}") from exc


def version(name: str, number: str, *, store: str | None = None) -> Version:
    """Version ``number`` of the registered model ``name``."""
    return resolve(f"models:/{name}/{number}", store=store)


def versions(name: str, *, store: str | None = None) -> list[Version]:
    """Every version of the registered model ``name``, oldest first (none when it is not registered)."""
    found = _client(store).search_model_versions(f"name='{name}'")
    return sorted((_version(v) for v in found), key=lambda v: int(v.version))


#: MLflow cuts a parameter's value at 6,000 characters (with a warning); a list is kept in parts under it.
PARAM_PART = 5000


def pairs_params(key: str, pairs: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """``pairs`` (module_id, presentation_id) as run parameters: JSON in parts ``key.0``, ``key.1``, ...

    A run's parameters cannot be changed once logged, so what they name stays what was trained on,
    and JSON keeps any id whole (spaces, slashes), however many presentations there are.
    """
    text = json.dumps([list(p) for p in pairs], separators=(",", ":"))
    parts = [text[i : i + PARAM_PART] for i in range(0, len(text), PARAM_PART)] or ["[]"]
    return {f"{key}.{i}": part for i, part in enumerate(parts)}


def params_pairs(params: Mapping[str, str], key: str) -> tuple[tuple[str, str], ...] | None:
    """The pairs ``pairs_params`` kept under ``key``; None when the run kept none (an older run)."""
    parts: list[str] = []
    while f"{key}.{len(parts)}" in params:
        parts.append(params[f"{key}.{len(parts)}"])
    if not parts:
        return None
    return tuple((str(m), str(p)) for m, p in json.loads("".join(parts)))


def run(run_id: str, *, store: str | None = None) -> Run:
    """The parameters, metrics and tags recorded for ``run_id``."""
    data = _client(store).get_run(run_id).data
    return Run(run_id, dict(data.params), dict(data.metrics), dict(data.tags))


def load_bundle(uri: str, *, expected_sha256: str | None = None, store: str | None = None) -> LoadedModel:
    """Download a registered model and load its bundle after checking the recorded sha256.

    expected_sha256, when given, is the hash to check against instead of the version's tag: the
    service passes the hash its own governance record holds, since a tag is editable in the registry.

    Raises
    ------
    ModelNotFoundError
        If the URI names no version.
    BundleIntegrityError
        If the version has no recorded hash or its files do not match it.
    """
    from waymark.models.bundle import BundleIntegrityError, ModelBundle

    found = resolve(uri, store=store)
    expected = expected_sha256 or found.tags.get(SHA_TAG)
    if not expected:
        raise BundleIntegrityError(
            f"{found.name} version {found.version} has no recorded {SHA_TAG}; not loaded"
        )
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=found.uri, dst_path=tmp, tracking_uri=store, registry_uri=store
        )
        bundle = ModelBundle.load(Path(local) / "artifacts" / "bundle", expected)
    return LoadedModel(bundle, found.name, found.version, expected)


# Governance writes: the MLflow mirror of decisions Waymark's database holds (fairness.governance).


def tag_version(found: Version, tags: Mapping[str, str], *, remove: tuple[str, ...] = ()) -> None:
    """Set ``tags`` on a model version and delete the tags named in ``remove`` that it carries."""
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(found.name, found.version, key, value)
    for key in remove:
        if key in found.tags:
            client.delete_model_version_tag(found.name, found.version, key)


def point_alias(name: str, alias: str, *, number: str) -> None:
    """Make ``alias`` of the registered model ``name`` point at version ``number``."""
    MlflowClient().set_registered_model_alias(name, alias, number)


def keep_files(run_id: str, folder: Path, *, artifact_path: str) -> None:
    """Keep the files of ``folder`` beside the run ``run_id``, under ``artifact_path``."""
    MlflowClient().log_artifacts(run_id, str(folder), artifact_path=artifact_path)


def keep_text(run_id: str, text: str, *, artifact_file: str) -> None:
    """Keep ``text`` as the file ``artifact_file`` beside the run ``run_id``."""
    MlflowClient().log_text(run_id, text, artifact_file)


def _experiment(name: str) -> str:
    found = mlflow.get_experiment_by_name(name)
    return str(found.experiment_id) if found else str(mlflow.create_experiment(name))


def record_run(experiment: str, run_name: str, *, tags: Mapping[str, str], params: Mapping[str, str]) -> None:
    """Keep an event as a run of its own in ``experiment`` (created when missing)."""
    with mlflow.start_run(experiment_id=_experiment(experiment), run_name=run_name):
        mlflow.set_tags(dict(tags))
        mlflow.log_params(dict(params))


def runs(experiment: str) -> list[Run]:
    """Every run of ``experiment``, oldest first (none when the experiment does not exist)."""
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        return []
    kept = MlflowClient().search_runs(
        [found.experiment_id], order_by=["attributes.start_time ASC"], max_results=50000
    )
    return [Run(r.info.run_id, dict(r.data.params), dict(r.data.metrics), dict(r.data.tags)) for r in kept]


def record_evaluation(
    experiment: str,
    run_name: str,
    *,
    params: Mapping[str, str | int | float],
    metrics: Mapping[str, float],
    folder: Path,
) -> str:
    """Keep an evaluation (an impact evaluation, ...) as a run: its params, metrics and report files.

    Returns
    -------
    str
        The run's id.
    """
    with mlflow.start_run(experiment_id=_experiment(experiment), run_name=run_name) as run:
        mlflow.log_params(dict(params))
        mlflow.log_metrics(dict(metrics))
        mlflow.log_artifacts(str(folder))
        return str(run.info.run_id)


def latest_text(experiment: str, artifact_file: str, *, store: str | None = None) -> str | None:
    """The file ``artifact_file`` of the newest run of ``experiment`` (None when there is none)."""
    client = _client(store)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    newest = client.search_runs([found.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
    if not newest:
        return None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = mlflow.artifacts.download_artifacts(
                run_id=newest[0].info.run_id, artifact_path=artifact_file, dst_path=tmp, tracking_uri=store
            )
            return Path(local).read_text(encoding="utf-8")
    except (MlflowException, OSError):
        return None
