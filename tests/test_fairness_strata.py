"""Where a calibration gap comes from (fairness.strata): the module mix, or within the modules."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from waymark.fairness.audit import NOT_RECORDED, audit_cohorts, group_labels
from waymark.fairness.policy import load_policy
from waymark.fairness.strata import within_modules
from waymark.models.data import ProtectedFrame

POLICY = dataclasses.replace(load_policy(), bootstrap_resamples=50, weeks=(8,), intersections=False)


def _cohort(cells: list[tuple[str, str, int, float, float]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows from (module, group, students, estimate, observed rate) cells, one row per student, week 8."""
    rows, people = [], []
    for module, group, n, estimate, rate in cells:
        needed = round(n * rate)
        for i in range(n):
            student = f"{module}-{group}-{i}"
            rows.append((student, module, 8, int(i < needed), estimate))
            people.append((student, group))
    scored = pd.DataFrame(rows, columns=["student_id", "module_id", "week", "label", "probability"])
    protected = ProtectedFrame(pd.DataFrame(people, columns=["student_id", "disability"]).astype("string"))
    return scored, group_labels(protected, intersections=False)


def _result(scored: pd.DataFrame, labels: pd.DataFrame, min_size: int = 10):  # type: ignore[no-untyped-def]
    audits = audit_cohorts(scored, labels, policy=dataclasses.replace(POLICY, min_group_size=min_size))
    (result,) = within_modules(scored, labels, audits=audits, min_size=min_size)
    return result


def test_a_gap_carried_by_the_module_mix_vanishes_within_modules() -> None:
    # Estimates are 0.2 too high in module A and right in B, for everyone alike; Y studies mostly A.
    scored, labels = _cohort(
        [
            ("A", "Y", 400, 0.6, 0.4),
            ("A", "N", 400, 0.6, 0.4),
            ("B", "Y", 100, 0.3, 0.3),
            ("B", "N", 1600, 0.3, 0.3),
        ]
    )
    result = _result(scored, labels)
    assert (result.group, result.reference) == ("Y", "N")
    # Overall: Y's gap is 0.16 (0.2 in 4 of 5), N's 0.04 (0.2 in 1 of 5).
    assert result.overall == pytest.approx(0.12, abs=1e-9)
    assert result.within == pytest.approx(0.0, abs=1e-9)
    assert result.modules == 2


def test_a_groups_own_gap_stays_within_modules() -> None:
    # In both modules Y's needs are underestimated by 0.1 beside N's, whatever the mix.
    scored, labels = _cohort(
        [
            ("A", "Y", 300, 0.4, 0.5),
            ("A", "N", 900, 0.4, 0.4),
            ("B", "Y", 100, 0.2, 0.3),
            ("B", "N", 900, 0.2, 0.2),
        ]
    )
    result = _result(scored, labels)
    assert result.overall == pytest.approx(-0.1, abs=1e-9)
    assert result.within == pytest.approx(-0.1, abs=1e-9)
    assert result.published()["within_modules"] == pytest.approx(-0.1)


def test_modules_with_too_few_students_of_either_group_are_left_out() -> None:
    scored, labels = _cohort(
        [
            ("A", "Y", 300, 0.4, 0.5),
            ("A", "N", 900, 0.4, 0.4),
            ("B", "Y", 8, 0.2, 0.5),  # eight students: not enough to count in B
            ("B", "N", 900, 0.2, 0.2),
        ]
    )
    result = _result(scored, labels)
    assert result.modules == 1
    assert result.within == pytest.approx(-0.1, abs=1e-9)  # A's alone, B's 0.3 left out


def test_students_missing_from_the_table_are_not_recorded_within_modules_too() -> None:
    scored, labels = _cohort(
        [
            ("A", "Y", 300, 0.4, 0.5),
            ("A", "N", 900, 0.4, 0.4),
            ("A", "gone", 50, 0.4, 0.6),  # no row in the characteristics table
            ("B", "Y", 100, 0.2, 0.3),
            ("B", "N", 900, 0.2, 0.2),
            ("B", "gone", 50, 0.2, 0.4),
        ]
    )
    labels = labels[labels["disability"] != "gone"]
    audits = audit_cohorts(
        scored, labels.reindex(scored["student_id"].unique()).fillna(NOT_RECORDED), policy=POLICY
    )
    results = {r.group: r for r in within_modules(scored, labels, audits=audits, min_size=10)}
    assert results[NOT_RECORDED].within == pytest.approx(-0.2, abs=1e-9)
    assert results[NOT_RECORDED].modules == 2


def test_with_no_module_large_enough_the_figure_is_withheld() -> None:
    cells = [(m, g, 9, 0.4, 1 / 3) for m in "ABCD" for g in ("Y", "N")]
    scored, labels = _cohort(cells)
    result = _result(scored, labels, min_size=10)
    assert math.isnan(result.within) and result.modules == 0
    assert "within_modules" not in result.published()
    assert np.isfinite(result.overall)
