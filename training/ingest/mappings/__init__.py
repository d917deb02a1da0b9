"""Ready mappings for the systems UK universities run (docs/ready-mappings.md).

Each ``NAME.toml`` here is a mapping file for ``waymark data import --mapping``; copy one and adapt it
when an institution's export differs.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def ready_mappings() -> dict[str, Path]:
    """The ready mapping files shipped with Waymark, by name (the file name without ``.toml``)."""
    folder = Path(str(files(__name__)))
    return {path.stem: path for path in sorted(folder.glob("*.toml"))}
