"""Every action the access log records reads as words on the student's own page, never as a key."""

from __future__ import annotations

import re
from pathlib import Path

import waymark.service

SERVICE = Path(waymark.service.__file__).resolve().parent


def _recorded_actions() -> set[str]:
    """The action names the service's code passes to ``record`` as literals."""
    found: set[str] = set()
    for path in SERVICE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r"\.record\([^\n]*?,\s*\"([a-z_]+)\"", text))
        # audit.record(..., action="...") too; not record_action's, which concern no student
        found |= {
            m for line in text.splitlines() if "record_action(" not in line
            for m in re.findall(r"\baction=\"([a-z_]+)\"", line)
        }  # fmt: skip
    # and those named by a format: f"{kind}_request" for each kind of rights request
    return found | {"erasure_request", "rectification_request"}


def test_every_recorded_action_has_words_on_the_students_page() -> None:
    script = (SERVICE / "static" / "me.js").read_text(encoding="utf-8")
    table = script[script.index("const ACTION_TEXT = {") : script.index("};", script.index("ACTION_TEXT"))]
    worded = set(re.findall(r"\b([a-z_]+):\s*\"", table))
    actions = _recorded_actions()
    assert {"indicator_view", "consent_view", "erasure_processed", "outreach_export"} <= actions  # found
    assert actions - worded == set(), "actions the student's page would show as raw keys"
