"""Loading registered models from MLflow, refusing any whose files do not match the recorded hash."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from waymark.models.bundle import BundleIntegrityError, ModelBundle

SHA_TAG = "bundle_sha256"
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


class ModelNotFoundError(LookupError):
    """No registered model version answers to the URI."""


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A verified bundle and where it came from."""

    bundle: ModelBundle
    name: str
    version: str
    sha256: str


def resolve(uri: str, client: MlflowClient | None = None) -> ModelVersion:
    """The model version a ``models:/name@alias`` or ``models:/name/version`` URI names."""
    match = _URI.match(uri)
    if not match:
        raise ModelNotFoundError(
            f"{uri!r} is not a model URI like models:/NAME@ALIAS or models:/NAME/VERSION"
        )
    client = client or MlflowClient()
    try:
        if match["alias"]:
            return client.get_model_version_by_alias(match["name"], match["alias"])
        return client.get_model_version(match["name"], match["version"])
    except mlflow.exceptions.MlflowException as exc:
        raise ModelNotFoundError(f"no registered model version for {uri}: {exc.message}") from exc


def load_bundle(
    uri: str, client: MlflowClient | None = None, expected_sha256: str | None = None
) -> LoadedModel:
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
    version = resolve(uri, client)
    expected = expected_sha256 or version.tags.get(SHA_TAG)
    if not expected:
        raise BundleIntegrityError(
            f"{version.name} version {version.version} has no recorded {SHA_TAG}; not loaded"
        )
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{version.name}/{version.version}", dst_path=tmp
        )
        bundle = ModelBundle.load(Path(local) / "artifacts" / "bundle", expected)
    return LoadedModel(bundle, version.name, str(version.version), expected)
