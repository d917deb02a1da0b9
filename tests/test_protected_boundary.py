"""Protected characteristics cannot reach the path that builds features (PRODUCT §3, CoP §4)."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from tests.contract_folder import VALID, make_folder
from waymark.fairness.protected import load_protected_characteristics
from waymark.models.data import (
    LearningData,
    ProtectedDataError,
    ProtectedFrame,
    ensure_feature_safe,
    load_learning_data,
    validate_folder,
)
from waymark.models.data.contract import PROTECTED_COLUMN_NAMES

ROOT = Path(__file__).parents[1]


def test_learning_data_has_no_field_for_protected_characteristics() -> None:
    names = {f.name for f in dataclasses.fields(LearningData)}
    assert names == {
        "presentations",
        "students",
        "registrations",
        "assessments",
        "assessment_results",
        "activity",
        "attempts",  # registrations as (student_id, module_id, start_date): models.data.attempts_of
        "extensions",  # a student's own due day for an assessment
    }


def test_loaded_learning_data_carries_no_protected_column(tmp_path: Path) -> None:
    data = load_learning_data(make_folder(tmp_path))
    for name, frame in data.tables().items():
        assert not {c.lower() for c in frame.columns} & PROTECTED_COLUMN_NAMES, name


def test_a_protected_column_in_the_students_table_is_refused(tmp_path: Path) -> None:
    rows = [[*r, v] for r, v in zip(VALID["students"], ["gender", "female", "male", "female"], strict=True)]
    report = validate_folder(make_folder(tmp_path, students=rows))
    assert [(f.table, f.rule, f.column) for f in report.findings] == [
        ("students", "protected_column", "gender")
    ]


def test_learning_data_refuses_a_frame_with_a_protected_column(tmp_path: Path) -> None:
    data = load_learning_data(make_folder(tmp_path))
    tables = data.tables()
    tables["students"] = tables["students"].assign(ethnicity="x")
    with pytest.raises(ProtectedDataError, match="ethnicity"):
        LearningData(**tables)


def test_learning_data_refuses_protected_characteristics_in_place_of_a_table(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    protected = load_protected_characteristics(folder)
    assert protected is not None
    tables = load_learning_data(folder).tables()
    tables["students"] = protected  # type: ignore[assignment]
    with pytest.raises(ProtectedDataError, match="fairness audit"):
        LearningData(**tables)


def test_a_protected_frame_is_not_a_dataframe_and_is_refused_as_feature_input(tmp_path: Path) -> None:
    protected = load_protected_characteristics(make_folder(tmp_path))
    assert protected is not None
    assert not isinstance(protected, pd.DataFrame)
    with pytest.raises(ProtectedDataError):
        ensure_feature_safe(protected)
    with pytest.raises(ProtectedDataError):
        ensure_feature_safe(protected.for_audit())


def test_the_audit_reader_keeps_missing_values_missing(tmp_path: Path) -> None:
    protected = load_protected_characteristics(make_folder(tmp_path))
    assert isinstance(protected, ProtectedFrame)
    frame = protected.for_audit()
    assert protected.attributes == ("gender", "disability")
    assert frame.loc[frame["student_id"] == "S2", "disability"].isna().all()


def test_only_the_fairness_package_reads_protected_characteristics() -> None:
    readers = []
    for path in ROOT.glob("*/**/*.py"):
        top, *rest = path.relative_to(ROOT).parts
        if top in {"tests", "fairness", ".venv", "bench", "notebooks", "build"} or (
            top == "waymark" and len(rest) > 1
        ):
            continue  # waymark/models, waymark/service, ... are links to the top-level folders
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "for_audit":
                readers.append(str(path.relative_to(ROOT)))
            if isinstance(node, ast.ImportFrom) and node.module == "waymark.fairness.protected":
                readers.append(str(path.relative_to(ROOT)))
    assert sorted(set(readers)) == []
