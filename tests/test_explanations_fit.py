"""Explanations that fit the data (#14, item 5): cohort-wide facts are context, sources are named by their
label, and a source a module does not record is coverage, never the student's disengagement."""

from __future__ import annotations

from pathlib import Path

from tests.contract_folder import make_folder
from waymark.models.data import FEATURE_TABLES, load_with_source_labels, source_label, source_labels
from waymark.models.data.contract import DEFAULT_SOURCE_LABELS
from waymark.models.features.catalogue import SOURCES

LABELS = [["source", "label"], ["exams", "exam sittings"], ["library", "the university library"]]


def test_the_sources_table_names_sources_and_is_never_a_model_input(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "data", sources=LABELS)
    data, labels = load_with_source_labels(folder)
    assert "sources" not in FEATURE_TABLES
    assert "sources" not in data.tables()
    assert labels["exams"] == "exam sittings"
    assert labels["library"] == "the university library"
    assert labels["vle"] == "the learning platform"


def test_without_a_sources_table_every_built_in_source_has_its_own_name(tmp_path: Path) -> None:
    labels = source_labels(make_folder(tmp_path / "data"))
    assert set(DEFAULT_SOURCE_LABELS) == set(SOURCES)
    assert labels == DEFAULT_SOURCE_LABELS


def test_a_source_nobody_named_is_never_called_the_learning_platform() -> None:
    assert source_label(DEFAULT_SOURCE_LABELS, "exams") == "'exams' records"
    assert source_label({"exams": ""}, "exams") == "'exams' records"
