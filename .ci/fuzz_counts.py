"""Requests sent and server errors received, from a schemathesis NDJSON report: prints `REQUESTS ERRORS`."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def counts(report: Path) -> tuple[int, int]:
    """Every recorded interaction, and those answered with a 5xx status."""
    requests = errors = 0
    for line in report.read_text(encoding="utf-8").splitlines():
        event = json.loads(line).get("ScenarioFinished")
        if event is None:
            continue
        for interaction in event["recorder"].get("interactions", {}).values():
            response = interaction.get("response") or {}
            requests += 1
            errors += int(response.get("status_code", 0) >= 500)
    return requests, errors


if __name__ == "__main__":
    sys.stdout.write("{} {}\n".format(*counts(Path(sys.argv[1]))))
