"""Cells of a CSV file that a spreadsheet shows as text and never runs as a formula."""

from __future__ import annotations

from typing import Any

# A cell starting with one of these is read as a formula (OWASP's CSV injection guidance).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value``, with a text one that a spreadsheet would run as a formula turned into text by a quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
