"""Outreach capacity: the share of a week's population a support team can contact."""

from __future__ import annotations

import math

import numpy as np


def top_share(probability: np.ndarray, share: float) -> np.ndarray:
    """Mask of the ``share`` of rows with the highest probability (ties: earlier rows first)."""
    k = math.ceil(share * probability.size)
    order = np.argsort(-probability, kind="stable")
    mask = np.zeros(probability.size, dtype=bool)
    mask[order[:k]] = True
    return mask
