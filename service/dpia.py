"""A draft data protection impact assessment, filled from the deployment's transparency statement.

The facts (data in use, the model's accuracy and fairness, roles, retention, processing locations) are
the ones the transparency statement states; the institution's judgements are left marked
``[to complete]``. A DPIA is the institution's, made with its DPO: Waymark drafts what it knows.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from waymark.service.pages import HERE

TO_COMPLETE = "**[to complete]**"

_TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=False,  # noqa: S701  # Markdown for the DPO, not HTML
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def draft(statement: Mapping[str, Any], *, made_at: datetime) -> str:
    """The DPIA draft in Markdown, from a transparency statement (``transparency.statement``)."""
    return _TEMPLATES.get_template("dpia.md.j2").render(
        statement=statement, made_at=f"{made_at:%Y-%m-%d %H:%M %Z}".strip()
    )
