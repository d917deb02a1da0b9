"""A tiny, valid data folder written as CSV, for tests that break it one rule at a time."""

from __future__ import annotations

import csv
from pathlib import Path

VALID: dict[str, list[list[str]]] = {
    "presentations": [
        ["module_id", "presentation_id", "start_date", "length_days"],
        ["M1", "2024J", "2024-10-07", "100"],
        ["M2", "2025B", "2025-02-03", "90"],
    ],
    "students": [
        ["student_id", "programme_id", "year_of_study", "study_mode", "num_prev_attempts", "credits"],
        ["S1", "P1", "1", "full_time", "0", "120"],
        ["S2", "P1", "2", "part_time", "1", "60"],
        ["S3", "P2", "1", "full_time", "0", "120"],
    ],
    "registrations": [
        [
            "student_id",
            "module_id",
            "presentation_id",
            "registration_day",
            "unregistration_day",
            "final_result",
        ],
        ["S1", "M1", "2024J", "-10", "", "pass"],
        ["S2", "M1", "2024J", "-5", "30", "withdrawn"],
        ["S3", "M1", "2024J", "2", "", "fail"],
        ["S3", "M2", "2025B", "-1", "", ""],
    ],
    "assessments": [
        ["assessment_id", "module_id", "presentation_id", "type", "due_day", "weight"],
        ["A1", "M1", "2024J", "coursework", "20", "50"],
        ["A2", "M1", "2024J", "exam", "95", "50"],
        ["A3", "M2", "2025B", "quiz", "", "0"],
    ],
    "assessment_results": [
        ["student_id", "assessment_id", "submitted_day", "score"],
        ["S1", "A1", "18", "70.5"],
        ["S3", "A1", "22", "40"],
        ["S1", "A2", "95", ""],
    ],
    "activity": [
        ["student_id", "module_id", "presentation_id", "day", "source", "activity_type", "count"],
        ["S1", "M1", "2024J", "-3", "vle", "resource", "3"],
        ["S1", "M1", "2024J", "1", "vle", "forum", "2"],
        ["S2", "M1", "2024J", "5", "library", "loan", "1"],
        ["S3", "M1", "2024J", "99", "attendance", "present", "1"],
    ],
    "protected_characteristics": [
        ["student_id", "gender", "disability"],
        ["S1", "female", "N"],
        ["S2", "male", ""],
        ["S3", "female", "Y"],
    ],
    "access": [
        ["staff_id", "relationship", "scope_type", "scope_id"],
        ["tutor-1", "personal_tutor", "student", "S1"],
        ["modlead-M1", "module_leader", "module", "M1"],
    ],
}


def write_csv(path: Path, rows: list[list[str]]) -> None:
    """Write rows (header first) as a UTF-8 CSV file."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)


def make_folder(folder: Path, **overrides: list[list[str]] | None) -> Path:
    """Write the valid folder, replacing (or, with None, leaving out) the named tables."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in {**VALID, **overrides}.items():
        if rows is not None:
            write_csv(folder / f"{name}.csv", rows)
    return folder


def with_row(name: str, row: list[str]) -> list[list[str]]:
    """The valid table ``name`` with one more row."""
    return [*VALID[name], row]


def with_cell(name: str, row: int, column: str, value: str) -> list[list[str]]:
    """The valid table ``name`` with one cell changed (row 1 = first data row)."""
    rows = [list(r) for r in VALID[name]]
    rows[row][rows[0].index(column)] = value
    return rows
