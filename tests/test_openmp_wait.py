"""OpenMP threads wait asleep, not spinning, unless the environment already says how they wait."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PRINT_POLICY = "import waymark, os; print(os.environ['OMP_WAIT_POLICY'])"


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_importing_waymark_sets_a_passive_wait_unless_one_is_given(given: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    done = subprocess.run(
        [sys.executable, "-c", PRINT_POLICY], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == expected
