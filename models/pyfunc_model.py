"""MLflow pyfunc wrapper, logged as code ("models from code"): MLflow runs this file, never a pickle.

It lets ``mlflow models serve`` score a Waymark model. The bundle's hash travels in the model
config and is checked on load, as everywhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel, PythonModelContext

from waymark.models.bundle import ModelBundle


class WaymarkModel(PythonModel):
    """Calibrated probability from Waymark features."""

    bundle: ModelBundle

    def load_context(self, context: PythonModelContext) -> None:
        """Load the bundle, checking its hash."""
        config = context.model_config or {}
        self.bundle = ModelBundle.load(Path(context.artifacts["bundle"]), str(config["bundle_sha256"]))

    # MLflow calls predict(context, model_input, params=...) positionally: the signature is MLflow's.
    def predict(  # noqa: PLR0917
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        """Probabilities for each row of features."""
        return self.bundle.probability(self.bundle.matrix(model_input))


mlflow.models.set_model(WaymarkModel())
