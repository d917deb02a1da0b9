"""Cells of a CSV file that a spreadsheet shows as text and never runs as a formula."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from waymark.models.data.reading import other_separator

# A cell starting with one of these is read as a formula (OWASP's CSV injection guidance).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value``, with a text one that a spreadsheet would run as a formula turned into text by a quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


#: The separators ``other_separator`` finds, as a sentence names them.
_SAID = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def separator_said(header: Sequence[str]) -> str:
    """Why a header read as one column could not be found, when it splits on another separator.

    A German university's relationship file, saved by a spreadsheet set to German, was refused as
    "missing column(s) staff_id, relationship, ..." with no word of its semicolons. The separators are
    those the data folder's reader names (``models.data.reading.other_separator``).
    """
    found = other_separator(header[0]) if len(header) == 1 else None
    if found is None:
        return ""
    return (
        f" (the header is one column, {header[0]!r}: the file is separated by {_SAID[found[0]]}, as a "
        "spreadsheet set to a language that writes decimal commas saves it; save it as CSV separated "
        "by commas)"
    )
