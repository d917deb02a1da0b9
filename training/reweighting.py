"""A fairness mitigation at training time, as training sees it: the labels and weights a fit uses.

Training never reads a protected characteristic (PRODUCT §3). When the ethics committee's policy
switches a mitigation on, the fairness package (``fairness.reduction``, the only reader of the
characteristics) works out, for each training row, the label and the weight a fit should use, and
hands training only those. The model that results scores from the same features as any other;
nothing about a student's characteristics reaches scoring, the bundle or a response. Calibration,
the intervals and the evaluation use the rows' own labels, so the indicator still estimates what
happened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline


@dataclass(frozen=True, eq=False)
class Reweighting:
    """What a fit trains on in place of the rows' own labels: a label and a weight per training row."""

    labels: np.ndarray  # 0 or 1, one per training row, in the rows' order
    weights: np.ndarray  # positive, mean 1
    chosen: dict[str, float] = field(default_factory=dict)  # what the mitigation settled on, for the run


class Mitigation(Protocol):
    """A committee's training-time mitigation (``fairness.reduction.GridSearchMitigation``)."""

    def describe(self) -> str:
        """One sentence for the console, the run and the model card."""
        ...

    def params(self) -> dict[str, str | int | float]:
        """The settings, logged with the run (names of characteristics, never their values)."""
        ...

    def reweigh(
        self, rows: pd.DataFrame, *, x: np.ndarray, estimator: Callable[[], Pipeline]
    ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """The labels and weights to fit ``estimator()`` on, one per training row, and what was settled.

        ``rows`` holds the training rows' keys and label, in the order of their features ``x``.
        """
        ...

    def compare(self, rows: pd.DataFrame, *, before: np.ndarray, after: np.ndarray) -> pd.DataFrame:
        """Per week of the later ``rows``: accuracy and disparity without (``before``) and with ``after``."""
        ...


@dataclass(frozen=True, eq=False)
class MitigationRecord:
    """What a mitigated run did, for tracking and the model card."""

    description: str
    params: dict[str, str | int | float]
    chosen: dict[str, float]
    comparison: pd.DataFrame  # one row per week of the test presentations (``Mitigation.compare``)
