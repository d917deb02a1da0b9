"""Cells of a CSV file that a spreadsheet shows as text and never runs as a formula."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# A cell starting with one of these is read as a formula (OWASP's CSV injection guidance).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value``, with a text one that a spreadsheet would run as a formula turned into text by a quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def separator_said(header: Sequence[str]) -> str:
    """Why a header read as one column could not be found, when that column holds another separator.

    A German university's relationship file, saved by a spreadsheet set to German, was refused as
    "missing column(s) staff_id, relationship, ..." with no word of its semicolons.
    """
    if len(header) != 1:
        return ""
    for separator, name in ((";", "semicolons"), ("\t", "tabs")):
        if separator in header[0]:
            return (
                f" (the header is one column, {header[0]!r}: the file is separated by {name}, as a "
                "spreadsheet set to a language that writes decimal commas saves it; save it as CSV "
                "separated by commas)"
            )
    return ""
