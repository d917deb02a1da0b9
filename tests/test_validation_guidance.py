"""Validation that guides (#14, item 6): the mistakes of a first export are named with their fix.

Each test writes a small folder reproducing what a new institution's export looked like: a
';'-separated file, dates where day numbers belong, whole numbers written as 150.0, misnamed files,
no protected characteristics, no assessments.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.contract_folder import VALID, make_folder, with_cell
from tests.vocabulary import forbidden_words
from waymark.cli import app
from waymark.models.data import TABLES, Finding, ValidationReport, load_learning_data, validate_folder
from waymark.models.data.guidance import known_entries
from waymark.models.data.quality import quality_report
from waymark.models.data.validation import connect

runner = CliRunner()


def error(report: ValidationReport, rule: str) -> Finding:
    matching = [f for f in report.findings if f.rule == rule]
    assert len(matching) == 1, report.to_text()
    return matching[0]


def warning(report: ValidationReport, rule: str) -> Finding:
    matching = [f for f in report.warnings if f.rule == rule]
    assert len(matching) == 1, report.to_text()
    assert matching[0].severity == "warning"
    return matching[0]


def write_separated(path: Path, rows: list[list[str]], sep: str) -> None:
    path.write_text("".join(sep.join(r) + "\n" for r in rows), encoding="utf-8")


# --- separators ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sep", "named", "in_toml"), [(";", "';'", 'separator = ";"'), ("\t", "tabs", "\\t")]
)
def test_a_file_separated_by_something_else_than_commas_is_named_with_the_fix(
    tmp_path: Path, sep: str, named: str, in_toml: str
) -> None:
    folder = make_folder(tmp_path)
    write_separated(folder / "registrations.csv", VALID["registrations"], sep)
    report = validate_folder(folder)
    finding = error(report, "separator")
    assert finding.table == "registrations"
    assert f"registrations.csv appears to be separated by {named}" in finding.message
    assert "6 columns" in finding.message
    assert "comma-separated" in finding.message
    assert "waymark data import --mapping" in finding.message
    assert in_toml in finding.message
    # The header is not also reported as one unexpected column and six missing ones.
    assert not [f for f in report.findings if f.rule in ("unexpected_column", "missing_column")]


def test_a_comma_file_with_a_semicolon_in_a_value_is_not_taken_for_a_separated_one(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, students=with_cell("students", 1, "programme_id", "P1;P2"))
    assert validate_folder(folder).ok


# --- dates where day numbers belong ---------------------------------------------------------


@pytest.mark.parametrize("value", ["2024-09-23", "23/09/2024", "2024-09-23 10:15:00"])
def test_a_date_in_a_day_column_is_explained_as_days_from_the_start_date(tmp_path: Path, value: str) -> None:
    folder = make_folder(tmp_path, registrations=with_cell("registrations", 2, "registration_day", value))
    report = validate_folder(folder)
    finding = error(report, "date_not_day")
    assert (finding.table, finding.column, finding.count) == ("registrations", "registration_day", 1)
    assert (finding.examples[0].file, finding.examples[0].row, finding.examples[0].value) == (
        "registrations.csv",
        2,
        value,
    )
    # The row's key as written, to find it in the institution's own export (a staged file's row is not).
    assert finding.examples[0].key == {"student_id": "S2", "module_id": "M1", "presentation_id": "2024J"}
    assert "counted from the presentation's start_date" in finding.message
    assert "waymark data import --mapping" in finding.message
    assert 'registration_day = { column = "...", date = "iso" }' in finding.message
    assert not [f for f in report.findings if f.rule == "type_int"]  # one finding, not two


def test_a_departure_before_registration_is_named_by_the_registrations_whole_key(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, registrations=with_cell("registrations", 2, "unregistration_day", "-20"))
    finding = error(validate_folder(folder), "unregistration_after_registration")
    assert finding.examples[0].key == {"student_id": "S2", "module_id": "M1", "presentation_id": "2024J"}


def test_a_date_typed_parquet_day_column_is_explained_too(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, assessments=None)
    frame = pd.DataFrame(VALID["assessments"][1:], columns=VALID["assessments"][0])
    frame["due_day"] = pd.to_datetime(pd.Series(["2024-10-27", "2025-01-10", None]))
    frame["weight"] = frame["weight"].astype(float)
    frame.to_parquet(folder / "assessments.parquet")
    finding = error(validate_folder(folder), "date_not_day")
    assert (finding.table, finding.column, finding.count) == ("assessments", "due_day", 2)


def test_a_date_in_a_column_that_is_not_a_day_stays_a_type_error(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, students=with_cell("students", 1, "num_prev_attempts", "2024-09-23"))
    report = validate_folder(folder)
    assert error(report, "type_int").column == "num_prev_attempts"
    assert not [f for f in report.findings if f.rule == "date_not_day"]


def test_a_start_date_with_a_time_zone_is_refused_as_its_date_depends_on_the_reader(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, presentations=None)
    frame = pd.DataFrame(VALID["presentations"][1:], columns=VALID["presentations"][0])
    frame["length_days"] = frame["length_days"].astype(int)
    midnight = pd.to_datetime(frame["start_date"])
    # Midnight in London in summer is 23:00 the day before in UTC: no reader can tell which day is meant.
    frame.assign(start_date=midnight.dt.tz_localize("Europe/London")).to_parquet(
        folder / "presentations.parquet"
    )
    finding = error(validate_folder(folder), "type_date")
    assert (finding.table, finding.column, finding.count) == ("presentations", "start_date", len(frame))
    assert "time zone" in finding.message and "write the date itself" in finding.message
    frame.assign(start_date=midnight).to_parquet(folder / "presentations.parquet")  # no zone: its own date
    assert validate_folder(folder).ok
    data = load_learning_data(folder)
    assert (data.presentations["start_date"].dt.strftime("%Y-%m-%d") == frame["start_date"]).all()


# --- whole numbers written as decimals ------------------------------------------------------


def test_whole_numbers_written_as_decimals_are_read_with_a_warning(tmp_path: Path) -> None:
    rows = with_cell("registrations", 1, "registration_day", "-10.0")
    rows[4][rows[0].index("registration_day")] = "150.00"
    rows[2][rows[0].index("unregistration_day")] = "30.0"
    report = validate_folder(make_folder(tmp_path, registrations=rows))
    assert report.ok, report.to_text()
    by_column = {w.column: w for w in report.warnings if w.rule == "integral_decimal"}
    assert by_column["registration_day"].count == 2
    assert [(e.file, e.row, e.value) for e in by_column["registration_day"].examples] == [
        ("registrations.csv", 1, "-10.0"),
        ("registrations.csv", 4, "150.00"),
    ]
    assert "pandas" in by_column["registration_day"].message
    loaded = load_learning_data(tmp_path).registrations
    assert loaded["registration_day"].tolist() == [-10, -5, 2, 150]
    assert loaded["unregistration_day"].dropna().tolist() == [30]


def test_a_real_fraction_in_a_whole_number_column_is_refused(tmp_path: Path) -> None:
    rows = with_cell("activity", 3, "count", "2.5")
    report = validate_folder(make_folder(tmp_path, activity=rows))
    finding = error(report, "type_int")
    assert (finding.table, finding.column, finding.examples[0].row) == ("activity", "count", 3)
    assert "fractions such as 2.5 are refused, not rounded" in finding.message


def test_a_float_parquet_column_of_whole_numbers_is_read_with_a_warning(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, activity=None)
    frame = pd.DataFrame(VALID["activity"][1:], columns=VALID["activity"][0])
    frame["day"] = frame["day"].astype(float)
    frame["count"] = [3.0, 2.0, 1.0, 1.0]
    frame.to_parquet(folder / "activity.parquet")
    report = validate_folder(folder)
    assert report.ok, report.to_text()
    assert {w.column for w in report.warnings if w.rule == "integral_decimal"} == {"day", "count"}
    frame["count"] = [3.0, 2.5, 1.0, 1.0]
    frame.to_parquet(folder / "activity.parquet")
    assert error(validate_folder(folder), "type_int").examples[0].row == 2


def test_an_identifier_written_as_a_decimal_is_warned_about(tmp_path: Path) -> None:
    rows = with_cell("assessments", 3, "assessment_id", "12.0")
    report = validate_folder(make_folder(tmp_path, assessments=rows))
    assert report.ok, report.to_text()
    finding = warning(report, "decimal_identifier")
    assert (finding.table, finding.column, finding.examples[0].row) == ("assessments", "assessment_id", 3)
    assert "does not match 12" in finding.message


# --- files the folder holds -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "advice"),
    [
        ("student_info.csv", "did you mean students? Rename it to students.csv"),
        ("activty.csv", "did you mean activity? Rename it to activity.csv"),
        ("students.xlsx", "save it in one of those forms"),
        ("studentVle.csv", "waymark data import-oulad"),
        ("notes.txt", "the tables are presentations, students"),
    ],
)
def test_an_unrecognised_file_is_named_with_the_nearest_table(tmp_path: Path, name: str, advice: str) -> None:
    folder = make_folder(tmp_path)
    (folder / name).write_text("x\n", encoding="utf-8")
    report = validate_folder(folder)
    assert report.ok, report.to_text()
    finding = warning(report, "unrecognised_file")
    assert finding.message.startswith(f"{name} is not a contract table, so it is not read")
    assert advice in finding.message


def test_waymark_own_files_and_staging_folders_are_not_flagged(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    (folder / "waymark-data.json").write_text("{}", encoding="utf-8")
    (folder / "directory.csv").write_text("staff_id\n", encoding="utf-8")
    (folder / ".data.staging-1234").mkdir()
    report = validate_folder(folder)
    assert not [w for w in report.warnings if w.rule == "unrecognised_file"], report.to_text()


def test_every_contract_table_is_a_known_file_name() -> None:
    # Derived from the contract: a table added to it (such as sources) is never flagged.
    for name in TABLES:
        assert {name, f"{name}.csv", f"{name}.parquet"} <= known_entries()


# --- tables whose absence matters later -----------------------------------------------------


def test_a_missing_protected_characteristics_table_is_a_warning_about_the_audit(tmp_path: Path) -> None:
    report = validate_folder(make_folder(tmp_path, protected_characteristics=None))
    assert report.ok, report.to_text()
    finding = warning(report, "missing_table")
    assert finding.table == "protected_characteristics"
    assert "fairness audit needs it before any model can be approved" in finding.message
    assert "protected_characteristics.csv" in finding.message


def test_no_warning_when_the_folder_is_complete(tmp_path: Path) -> None:
    report = validate_folder(make_folder(tmp_path))
    assert report.warnings == (), report.to_text()


def test_an_empty_assessments_table_warns_that_marked_work_will_not_be_mentioned(tmp_path: Path) -> None:
    folder = make_folder(
        tmp_path,
        assessments=[VALID["assessments"][0]],
        assessment_results=[VALID["assessment_results"][0]],
    )
    report = validate_folder(folder)
    assert report.ok, report.to_text()
    finding = warning(report, "no_assessments")
    assert "assessment feature" in finding.message
    assert "explanations will not mention marked work" in finding.message


def test_the_quality_report_says_what_no_marked_work_means(tmp_path: Path) -> None:
    folder = make_folder(
        tmp_path, assessments=[VALID["assessments"][0]], assessment_results=[VALID["assessment_results"][0]]
    )
    con = connect()
    assert validate_folder(folder, con=con).ok
    report = quality_report(con)
    assert report.overview["assessments"] == 0
    assert report.notes[0].startswith("No assessments are recorded: assessment features are empty")
    assert "No gaps large enough" not in report.to_text()


def test_assessments_without_results_warn_too(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, assessment_results=[VALID["assessment_results"][0]])
    finding = warning(validate_folder(folder), "no_results")
    assert finding.table == "assessment_results"
    assert finding.message.startswith("assessment_results has no rows: ")


def test_assessments_without_a_results_file_say_the_file_is_missing(tmp_path: Path) -> None:
    finding = warning(validate_folder(make_folder(tmp_path, assessment_results=None)), "no_results")
    assert finding.message.startswith("assessment_results has no file in the folder: ")


def test_absent_assessment_files_are_read_as_none_with_a_warning(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, assessments=None, assessment_results=None)
    report = validate_folder(folder)
    assert report.ok, report.to_text()
    message = warning(report, "no_assessments").message
    assert (
        message.startswith("assessments has no file in the folder: ")
        and "every assessment feature" in message
    )
    data = load_learning_data(folder)
    assert data.assessments.empty and data.assessment_results.empty
    assert list(data.assessments.columns) == list(TABLES["assessments"].column_names)


def test_results_without_their_assessments_file_are_refused_by_reference(tmp_path: Path) -> None:
    report = validate_folder(make_folder(tmp_path, assessments=None))
    assert not report.ok
    assert any(f.table == "assessment_results" and f.rule == "reference_assessments" for f in report.findings)


# --- the command -----------------------------------------------------------------------------


def test_validate_prints_warnings_and_still_exits_zero(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, protected_characteristics=None)
    (folder / "student_info.csv").write_text("x\n", encoding="utf-8")
    result = runner.invoke(app, ["data", "validate", str(folder)])
    assert result.exit_code == 0, result.output
    assert "No contract violations." in result.stdout
    assert "2 warnings" in result.stdout
    assert "student_info.csv is not a contract table" in result.stdout
    assert forbidden_words(result.stdout) == []
    result = runner.invoke(app, ["data", "validate", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["ok"] is True
    assert payload["violations"] == []
    assert {(w["table"], w["rule"], w["severity"]) for w in payload["warnings"]} == {
        ("(folder)", "unrecognised_file", "warning"),
        ("protected_characteristics", "missing_table", "warning"),
    }


def test_withdrawals_that_do_not_say_when_the_student_left_are_warned_of(tmp_path: Path) -> None:
    # S2 is the valid folder's one withdrawal (day 30); without its day, 100% of withdrawals are undated.
    undated = validate_folder(
        make_folder(
            tmp_path / "undated", registrations=with_cell("registrations", 2, "unregistration_day", "")
        )
    )
    [warning] = [w for w in undated.warnings if w.rule == "withdrawn_without_day"]
    assert undated.ok and warning.count == 1 and warning.table == "registrations"
    assert "unregistration_day" in warning.message and "after it happened" in warning.message
    assert warning.examples[0].key == {"student_id": "S2", "module_id": "M1", "presentation_id": "2024J"}
    dated = validate_folder(make_folder(tmp_path / "dated"))
    assert not [w for w in dated.warnings if w.rule == "withdrawn_without_day"]


def test_ids_that_differ_only_by_leading_zeros_are_named_beside_the_reference_error(tmp_path: Path) -> None:
    students = [list(r) for r in VALID["students"]]
    for r in students[1:]:
        r[0] = "000" + r[0][1:]  # S1 -> 0001: the records system keeps zeros
    registrations = [list(r) for r in VALID["registrations"]]
    for r in registrations[1:3]:
        r[0] = r[0][1:]  # S1 -> 1, S2 -> 2: another export lost them
    report = validate_folder(make_folder(tmp_path, students=students, registrations=registrations))
    [error] = [f for f in report.findings if f.rule == "reference_students" and f.table == "registrations"]
    [hint] = [w for w in report.warnings if w.rule == "reference_students_leading_zeros"]
    assert (hint.table, hint.count) == ("registrations", 2) and error.count == 4  # S3 (twice): nothing
    assert "leading zeros" in hint.message and "save it as text" in hint.message
    assert sorted(e.key["student_id"] for e in hint.examples) == ["1", "2"]
    clean = validate_folder(make_folder(tmp_path / "clean"))
    assert not [w for w in clean.warnings if w.rule.endswith("_leading_zeros")]


def test_work_due_long_before_the_data_ends_with_no_result_for_anyone_is_warned_of(
    synth_dir: Path, tmp_path: Path
) -> None:
    """A records system that exports marked work only: nobody's submission of the last assignment shows."""
    folder = tmp_path / "data"
    shutil.copytree(synth_dir, folder)
    assessments = pd.read_parquet(folder / "assessments.parquet")
    results = pd.read_parquet(folder / "assessment_results.parquet")
    first = assessments.sort_values("due_day").iloc[0]
    # and a final exam's (a Kenyan university's main exams were each said to read as missed by everyone,
    # where features never read a final)
    lengths = pd.read_parquet(folder / "presentations.parquet").set_index(["module_id", "presentation_id"])
    exams = assessments[assessments["type"] == "exam"]
    length = lengths.loc[list(zip(exams["module_id"], exams["presentation_id"], strict=True)), "length_days"]
    finals = exams[exams["due_day"].to_numpy() >= 0.75 * length.to_numpy()]
    assert len(finals)
    final = finals.index[0]  # due early in the last quarter, well before the data end
    assessments.loc[final, "due_day"] = int(np.ceil(0.76 * length.iloc[list(exams.index).index(final)]))
    assessments.to_parquet(folder / "assessments.parquet", index=False)
    gone = {first["assessment_id"], finals["assessment_id"].iloc[0]}
    results[~results["assessment_id"].isin(gone)].to_parquet(
        folder / "assessment_results.parquet", index=False
    )
    report = validate_folder(folder)
    assert report.ok, report.to_text()
    [warned] = [w for w in report.warnings if w.rule == "due_without_results"]
    assert [e.key for e in warned.examples] == [{"assessment_id": first["assessment_id"]}]
    assert "a student who missed it reads as having missed nothing" in warned.message
    assert not [w for w in validate_folder(synth_dir).warnings if w.rule == "due_without_results"]
