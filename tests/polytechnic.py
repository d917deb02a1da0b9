"""A small polytechnic's exports, built in a test's folder: a student-records extract and an activity log.

The records extract is written as such systems write it: ``;``-separated, dates as dd/mm/yyyy,
outcomes in the institution's words (Graduate, Dropout, Enrolled), whole numbers as ``30.0``. The
activity log has one row per click with an ISO timestamp. ``MAPPING`` maps both into the contract.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

STARTS = {"2023S1": date(2023, 9, 18), "2024S2": date(2024, 2, 19)}
COURSES = ("INF101", "MAT102")
STUDENTS = tuple(f"20{n:05d}" for n in range(1, 13))
OUTCOMES = ("Graduate", "Dropout", "Graduate", "Enrolled")

MAPPING = """\
version = 1
name = "polytechnic"
description = "Student-records extract and learning-platform clicks of a small polytechnic"
timezone = "Europe/Lisbon"
empty = ["assessments", "assessment_results"]

[pseudonymise]
columns = ["student_id"]

[inputs.records]
files = ["records*.csv"]
separator = ";"

[inputs.clicks]
files = ["clicks*.csv"]

[tables.presentations]
from = "records"
ignore = ["admission_grade"]
[tables.presentations.columns]
module_id = "course_code"
presentation_id = "semester"
start_date = { column = "semester_start", date = "%d/%m/%Y" }
length_days = { value = 140 }

[tables.students]
from = "records"
duplicates = "last"
order_by = { column = "semester_start", date = "%d/%m/%Y" }
[tables.students.columns]
student_id = "student_number"
credits = "credits_enrolled"

[tables.registrations]
from = "records"
[tables.registrations.columns]
student_id = "student_number"
module_id = "course_code"
presentation_id = "semester"
registration_day = { column = "enrolment_date", date = "%d/%m/%Y" }
unregistration_day = { value = "" }
final_result = { column = "status", values = { Graduate = "pass", Dropout = "withdrawn", Enrolled = "" } }

[tables.protected_characteristics]
from = "records"
duplicates = "last"
[tables.protected_characteristics.columns]
student_id = "student_number"
nationality = "nationality"

[tables.activity]
from = "clicks"
aggregate = "count"
ignore = ["ip_address"]
[tables.activity.columns]
student_id = "user"
module_id = "course"
presentation_id = "term"
day = { column = "time", timestamp = "iso" }
source = { value = "vle" }
activity_type = { column = "tool", values = { forum = "forum", quiz = "quiz" }, keep_unmapped = true }

[sources]
vle = "the learning platform (Moodle)"
"""


def records_rows() -> list[list[str]]:
    """One row per student and registration, with the extract's own spellings."""
    rows = []
    for i, student in enumerate(STUDENTS):
        for semester, start in STARTS.items():
            course = COURSES[i % 2]
            enrolled = (start - timedelta(days=10 + i)).strftime("%d/%m/%Y")
            status = "Enrolled" if semester == "2024S2" else OUTCOMES[i % 4]
            nationality = "PT" if i % 3 else "BR"
            rows.append(
                [
                    student,
                    course,
                    semester,
                    start.strftime("%d/%m/%Y"),
                    enrolled,
                    status,
                    f"{30 + (i % 2) * 6}.0",
                    "150.0",
                    nationality,
                ]
            )
    return rows


RECORDS_HEADER = [
    "student_number",
    "course_code",
    "semester",
    "semester_start",
    "enrolment_date",
    "status",
    "credits_enrolled",
    "admission_grade",
    "nationality",
]


def write_records(folder: Path, rows: list[list[str]] | None = None, *, name: str = "records.csv") -> Path:
    """The records extract, ``;``-separated."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [";".join(RECORDS_HEADER)] + [";".join(r) for r in (rows or records_rows())]
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def click_rows(weeks: range) -> list[list[str]]:
    """Clicks of every student in the given weeks of each semester (a forum post, a quiz, a page)."""
    rows = []
    for i, student in enumerate(STUDENTS):
        course = COURSES[i % 2]
        for semester, start in STARTS.items():
            for week in weeks:
                moment = datetime(start.year, start.month, start.day, 9 + i % 8, 30) + timedelta(
                    days=7 * week + i % 5
                )
                for tool in ("forum", "quiz", "page")[: 1 + (i + week) % 3]:
                    rows.append([student, course, semester, moment.isoformat() + "Z", tool, "10.0.0.1"])
    return rows


def write_clicks(folder: Path, rows: list[list[str]], *, name: str = "clicks.csv") -> Path:
    """The activity log, comma-separated, one row per click."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["user,course,term,time,tool,ip_address"] + [",".join(r) for r in rows]
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_extract(folder: Path, *, weeks: range = range(4)) -> Path:
    """A whole extract (records and clicks) in ``folder``, and the mapping beside it."""
    write_records(folder)
    write_clicks(folder, click_rows(weeks))
    return folder


def write_mapping(folder: Path, text: str = MAPPING) -> Path:
    """The mapping file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "polytechnic.toml"
    path.write_text(text, encoding="utf-8")
    return path


def write_secret(folder: Path, value: str = "a" * 64, *, name: str = "secret.key") -> Path:
    """A secret file of at least 32 bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(value, encoding="utf-8")
    return path
