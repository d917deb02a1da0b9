"""Text as two systems' spellings of the same thing compare: without case or accents.

One system writes "Şahin", "FİZ101" or "İbrahim" where another writes "SAHIN", "fiz101" or "Ibrahim".
Decomposed (NFKD), stripped of combining marks and case-folded, with the dotless i (U+0131) read as i,
each pair meets. Python's ``"İ".lower()`` is "i" with a combining dot, and SQLite's ``lower()`` folds
ASCII only, so neither is used. For comparing and hinting only: values written out keep their spelling.
"""

from __future__ import annotations

import unicodedata

DOTLESS_I = "\u0131"


def bare(text: str) -> str:
    """``text`` decomposed (NFKD) without its combining marks: Saúde as Saude, Église as Eglise."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def folded(text: str) -> str:
    """``text`` without case or accents, dotted and dotless i alike."""
    return bare(text).casefold().replace(DOTLESS_I, "i")
