"""The data contract, its validation, and the typed learning data that features are built from."""

from waymark.models.data.contract import FEATURE_TABLES, TABLES, Column, Kind, Table
from waymark.models.data.dataset import (
    LearningData,
    ProtectedDataError,
    ProtectedFrame,
    attempts_of,
    ensure_feature_safe,
    load_learning_data,
    load_with_source_labels,
    presentation_name,
    source_labels,
)
from waymark.models.data.findings import ContractViolation, Finding, ValidationReport
from waymark.models.data.notice import source_label
from waymark.models.data.publish import (
    OutputFolderError,
    folder_fingerprint,
    read_manifest,
    staged_folder,
    write_manifest,
)
from waymark.models.data.validation import validate_folder

__all__ = [
    "FEATURE_TABLES",
    "TABLES",
    "Column",
    "ContractViolation",
    "Finding",
    "Kind",
    "LearningData",
    "OutputFolderError",
    "ProtectedDataError",
    "ProtectedFrame",
    "Table",
    "ValidationReport",
    "attempts_of",
    "ensure_feature_safe",
    "folder_fingerprint",
    "load_learning_data",
    "load_with_source_labels",
    "presentation_name",
    "read_manifest",
    "source_label",
    "source_labels",
    "staged_folder",
    "validate_folder",
    "write_manifest",
]
