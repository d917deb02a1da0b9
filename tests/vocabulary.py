"""Words never shown to a user (PRODUCT §2), and a scanner for them."""

from __future__ import annotations

import re

FORBIDDEN = (
    "at risk",
    "at-risk",
    "high risk",
    "medium risk",
    "low risk",
    "risk level",
    "risk band",
    "red",
    "amber",
    "green",
    "traffic light",
    "failing",
    "will fail",
    "likely to fail",
    "dropout",
    "drop out",
    "weak student",
    "struggling student",
    "poor student",
)
_PATTERN = re.compile(r"\b(" + "|".join(re.escape(w) for w in FORBIDDEN) + r")\b", re.IGNORECASE)


def forbidden_words(text: str) -> list[str]:
    """Every forbidden word or phrase found in ``text``."""
    return [m.group(0) for m in _PATTERN.finditer(text)]
