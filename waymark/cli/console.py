"""Where commands write: results to standard output; progress, problems and errors to standard error."""

from __future__ import annotations

import sys
from enum import StrEnum

from rich.console import Console

# Piped or redirected, rich would assume 80 columns and cut tables short: give them room instead.
_PIPED_WIDTH = 240
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else _PIPED_WIDTH)
err = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else _PIPED_WIDTH)


class OutputFormat(StrEnum):
    """How a command prints its results: a table for people, JSON (null where not measurable) for scripts."""

    TABLE = "table"
    JSON = "json"


def builder_line(builder: str | None, *, recorded: bool, development: bool) -> str:
    """What ``waymark train`` says of who ran it: the committee's check reads it."""
    if builder and recorded:
        return (
            f"Recorded {builder} (WAYMARK_OPERATOR) as holding the data scientist's role: an approval of "
            "theirs is refused."
        )
    if builder:
        return (
            f"Could not record {builder} (WAYMARK_OPERATOR) as holding the data scientist's role: the "
            "database role may not write it. Apply service/db/grants.sql again (docs/operations.md)."
        )
    if development:
        return ""
    return (
        "WAYMARK_OPERATOR is not set: the committee's check cannot tell who built this model. Set it to "
        "your staff id, as the identity provider names you (docs/configuration.md)."
    )
