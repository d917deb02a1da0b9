"""Where commands write: results to standard output; progress, problems and errors to standard error."""

from __future__ import annotations

from rich.console import Console

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
