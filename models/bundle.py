"""A trained model as Waymark stores it: no pickles, a recorded hash, checked on every load.

A logistic model is numbers in JSON; a gradient-boosted model is LightGBM's own text format. Loading
either parses data and never runs code from the file. The calibration (Platt scaling of the raw
margin) travels with it, so an indicator is always ``sigmoid(a * margin + b)``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from waymark.models.uncertainty import IntervalTable

FORMAT_VERSION = 1
_META = "bundle.json"
_BOOSTER = "booster.txt"


class BundleIntegrityError(Exception):
    """The stored model does not match its recorded hash; it is not loaded."""


@dataclass(frozen=True)
class LinearParams:
    """Standardisation and coefficients of a logistic model."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float


@dataclass(frozen=True, eq=False)
class ModelBundle:
    """Everything needed to turn features into a calibrated indicator."""

    target: str
    family: str
    feature_names: tuple[str, ...]
    calibration: tuple[float, float]  # (a, b): probability = sigmoid(a * margin + b)
    linear: LinearParams | None = None
    booster: lightgbm.Booster | None = None
    uncertainty: IntervalTable | None = None  # None in bundles trained before it was recorded
    # The training distributions a scoring run is compared with (``models.drift``): per week, each
    # feature's decile edges and shares, and the estimates' shares. Aggregate only; None in bundles
    # trained before it was recorded.
    reference: dict[str, Any] | None = None

    def matrix(self, features: pd.DataFrame) -> np.ndarray:
        """The feature matrix in the model's column order; refuses missing columns."""
        missing = [f for f in self.feature_names if f not in features.columns]
        if missing:
            raise ValueError(f"the data lacks features this model needs: {', '.join(missing)}")
        return features[list(self.feature_names)].to_numpy(dtype=np.float64)

    def margin(self, x: np.ndarray) -> np.ndarray:
        """Raw model output (log-odds before calibration), the quantity contributions add up to."""
        if self.linear is not None:
            p = self.linear
            z = (x - np.asarray(p.mean)) / np.asarray(p.scale)
            out: np.ndarray = z @ np.asarray(p.coef) + p.intercept
            return out
        if self.booster is None:
            raise ValueError("bundle has neither linear parameters nor a booster")
        return np.asarray(self.booster.predict(x, raw_score=True), dtype=np.float64)

    def used_features(self) -> tuple[str, ...]:
        """The features the estimate depends on: split on by a tree, or given a non-zero coefficient.

        A feature constant in training (a channel the institution does not record, say) is never
        split on and gets no weight: it is an input in name only, and statements of what the model
        uses leave it out.
        """
        if self.booster is not None:
            used = np.asarray(self.booster.feature_importance("split")) > 0
        elif self.linear is not None:
            used = np.asarray(self.linear.coef) != 0
        else:
            return self.feature_names
        return tuple(f for f, u in zip(self.feature_names, used, strict=True) if u)

    def probability(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probability."""
        a, b = self.calibration
        out: np.ndarray = 1.0 / (1.0 + np.exp(-(a * self.margin(x) + b)))
        return out

    def save(self, folder: Path) -> str:
        """Write the bundle to ``folder`` and return its sha256."""
        folder.mkdir(parents=True, exist_ok=True)
        meta: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "target": self.target,
            "family": self.family,
            "feature_names": list(self.feature_names),
            "calibration": list(self.calibration),
            "linear": None if self.linear is None else self.linear.__dict__,
        }
        if self.uncertainty is not None:
            meta["uncertainty"] = self.uncertainty.to_dict()
        if self.reference is not None:
            meta["reference"] = self.reference
        (folder / _META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if self.booster is not None:
            (folder / _BOOSTER).write_text(self.booster.model_to_string(), encoding="utf-8")
        return bundle_sha256(folder)

    @classmethod
    def load(cls, folder: Path, expected_sha256: str) -> ModelBundle:
        """Load a bundle, refusing it unless its sha256 equals ``expected_sha256``."""
        actual = bundle_sha256(folder)
        if actual != expected_sha256:
            raise BundleIntegrityError(
                f"model files in {folder} have sha256 {actual}, but the registry recorded "
                f"{expected_sha256}: the model was altered after registration and is not loaded"
            )
        meta = json.loads((folder / _META).read_text(encoding="utf-8"))
        if meta["format_version"] != FORMAT_VERSION:
            raise BundleIntegrityError(f"unknown bundle format {meta['format_version']}")
        booster = None
        if (folder / _BOOSTER).is_file():
            booster = lightgbm.Booster(model_str=(folder / _BOOSTER).read_text(encoding="utf-8"))
        linear = _linear(meta["linear"]) if meta["linear"] else None
        return cls(
            target=meta["target"],
            family=meta["family"],
            feature_names=tuple(meta["feature_names"]),
            calibration=(float(meta["calibration"][0]), float(meta["calibration"][1])),
            linear=linear,
            booster=booster,
            # Older bundles hold a "reliability" table instead, which gave intervals without a stated
            # coverage: it is not read, and asking such a bundle for intervals says to retrain.
            uncertainty=IntervalTable.from_dict(meta["uncertainty"]) if "uncertainty" in meta else None,
            reference=meta.get("reference"),
        )


def _linear(raw: dict[str, Any]) -> LinearParams:
    return LinearParams(
        tuple(float(v) for v in raw["mean"]),
        tuple(float(v) for v in raw["scale"]),
        tuple(float(v) for v in raw["coef"]),
        float(raw["intercept"]),
    )


def bundle_sha256(folder: Path) -> str:
    """One digest over the bundle's files (names and bytes, in name order)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.name in (_META, _BOOSTER)):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def from_pipeline(
    target: str,
    family: str,
    *,
    pipeline: Pipeline,
    feature_names: tuple[str, ...],
    calibration: tuple[float, float],
    uncertainty: IntervalTable | None = None,
) -> ModelBundle:
    """Export a fitted pipeline of ``models.estimators`` into a bundle."""
    if family == "logistic":
        scale, model = pipeline.named_steps["scale"], pipeline.named_steps["model"]
        linear = LinearParams(
            tuple(float(v) for v in scale.mean_),
            tuple(float(v) for v in scale.scale_),
            tuple(float(v) for v in model.coef_[0]),
            float(model.intercept_[0]),
        )
        return ModelBundle(target, family, feature_names, calibration, linear=linear, uncertainty=uncertainty)
    booster = pipeline.named_steps["model"].booster_
    return ModelBundle(target, family, feature_names, calibration, booster=booster, uncertainty=uncertainty)
