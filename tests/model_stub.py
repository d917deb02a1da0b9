"""A stand-in for a loaded model, for report tests that need only its name, version and family."""

from __future__ import annotations

import dataclasses
from typing import Any

from waymark.fairness.policy import Policy
from waymark.fairness.run import AuditOutcome


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


def stub_outcome(policy: Policy, **fields: Any) -> AuditOutcome:
    """An audit outcome of the stub model with no audited groups, for tests of what a report shows."""
    return AuditOutcome(
        **{
            "model": StubModel(),
            "run_id": "run",
            "test_presentations": ("M/P",),
            "data_fingerprint": "fp",
            "policy": policy,
            "audits": [],
            "gate": "pass",
            "checks": [],
            "proxies": [],
            "attributes": (),
            "mitigation": [],
            **fields,
        }
    )
