"""The error a format reader raises when a file is not the export it claims to be."""

from __future__ import annotations

from pathlib import Path


class ExportFormatError(ValueError):
    """A file does not have the shape of its declared export; the message names the file and what is wrong."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path.name}: {problem}")
        self.path = path
        self.problem = problem


def require_columns(path: Path, found: list[str], *, needed: tuple[str, ...], export: str) -> None:
    """Refuse a file that lacks a column its export always has (names compared case-insensitively)."""
    have = {c.casefold() for c in found}
    missing = [c for c in needed if c.casefold() not in have]
    if missing:
        raise ExportFormatError(
            path, f"not {export}: no column {', '.join(repr(c) for c in missing)} (found {', '.join(found)})"
        )
