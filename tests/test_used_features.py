"""What the model uses: a feature constant in training is an input in name only.

The transparency statement and the DPIA name the feature families of the champion's inputs; a channel
the institution does not record (no discussion forum, say) is all zeros in training, is never split on
and gets no weight, and must not be stated as data the model uses.
"""

from __future__ import annotations

import numpy as np
import pytest

from waymark.models.bundle import from_pipeline
from waymark.service.transparency import families
from waymark.training.fitting import FitConfig, fit

NAMES = ("act_last7", "ch_vle_communication_total", "asm_submitted")


@pytest.mark.parametrize("family", ["logistic", "gbm"])
def test_a_feature_constant_in_training_is_not_among_the_features_used(family: str) -> None:
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(size=600), np.zeros(600), rng.integers(0, 4, size=600)]).astype(float)
    y = (x[:, 0] + 0.5 * x[:, 2] + rng.normal(size=600) > 1).astype(int)
    pipeline = fit(family, FitConfig(gbm_estimators=20), x=x, y=y)
    bundle = from_pipeline(
        "not_completing", family, pipeline=pipeline, feature_names=NAMES, calibration=(1.0, 0.0)
    )
    assert bundle.used_features() == ("act_last7", "asm_submitted")
    # So the statement's families leave out discussion, which no source recorded.
    stated = families(bundle.used_features())
    assert stated and "discussion" not in stated
    assert len(families(NAMES)) == len(stated) + 1
