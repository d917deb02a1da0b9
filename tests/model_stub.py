"""A stand-in for a loaded model, for report tests that need only its name, version and family."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class StubBundle:
    """The bundle fields a report reads."""

    target: str = "not_completing"
    family: str = "logistic"


@dataclasses.dataclass
class StubModel:
    """The loaded-model fields a report reads."""

    bundle: StubBundle = dataclasses.field(default_factory=StubBundle)
    name: str = "m"
    version: str = "1"
    sha256: str = "x"
