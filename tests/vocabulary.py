"""Words never shown to a user (PRODUCT §2), and a scanner for them."""

from __future__ import annotations

import re

from waymark.models.vocabulary import LABELLING_WORDS

# Waymark's words are held to the product's list and to the colour words of traffic lights too (an
# institution's own text may name a Green Library; Waymark's never says green).
FORBIDDEN = (*LABELLING_WORDS, "red", "amber", "green")
_PATTERN = re.compile(r"\b(" + "|".join(re.escape(w) for w in FORBIDDEN) + r")\b", re.IGNORECASE)


def forbidden_words(text: str) -> list[str]:
    """Every forbidden word or phrase found in ``text``."""
    return [m.group(0) for m in _PATTERN.finditer(text)]
