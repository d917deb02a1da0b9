"""The contract check names the table, column, row and rule of every violation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tests.contract_folder import VALID, make_folder, with_cell, with_row, write_csv
from waymark.models.data import Finding, ValidationReport, load_learning_data, validate_folder
from waymark.models.features import build_features


def only(report: ValidationReport, rule: str) -> Finding:
    matching = [f for f in report.findings if f.rule == rule]
    assert len(matching) == 1, report.to_text()
    return matching[0]


def test_the_hand_made_folder_is_valid(tmp_path: Path) -> None:
    report = validate_folder(make_folder(tmp_path))
    assert report.ok, report.to_text()
    assert report.row_counts["registrations"] == 4


def test_missing_required_file_is_named(tmp_path: Path) -> None:
    report = validate_folder(make_folder(tmp_path, registrations=None))
    finding = only(report, "missing_file")
    assert finding.table == "registrations"
    assert "registrations.csv" in finding.message


def test_optional_tables_may_be_absent(tmp_path: Path) -> None:
    report = validate_folder(make_folder(tmp_path, protected_characteristics=None, access=None))
    assert report.ok, report.to_text()


def test_missing_column_is_named(tmp_path: Path) -> None:
    rows = [r[:-1] for r in VALID["activity"]]  # drop "count"
    finding = only(validate_folder(make_folder(tmp_path, activity=rows)), "missing_column")
    assert (finding.table, finding.column) == ("activity", "count")


def test_unexpected_column_is_refused(tmp_path: Path) -> None:
    rows = [[*r, "x"] for r in VALID["assessments"]]
    rows[0][-1] = "title"
    finding = only(validate_folder(make_folder(tmp_path, assessments=rows)), "unexpected_column")
    assert (finding.table, finding.column) == ("assessments", "title")


def test_wrong_type_names_row_column_and_value(tmp_path: Path) -> None:
    rows = with_cell("registrations", 3, "registration_day", "soon")
    finding = only(validate_folder(make_folder(tmp_path, registrations=rows)), "type_int")
    assert (finding.table, finding.column, finding.count) == ("registrations", "registration_day", 1)
    example = finding.examples[0]
    assert (example.file, example.row, example.value) == ("registrations.csv", 3, "soon")


def test_a_fraction_is_not_a_whole_number(tmp_path: Path) -> None:
    rows = with_cell("activity", 2, "count", "2.5")
    finding = only(validate_folder(make_folder(tmp_path, activity=rows)), "type_int")
    assert finding.examples[0].row == 2


def test_credits_may_come_in_parts(tmp_path: Path) -> None:
    """European courses are often 7.5 credits (ECTS): a college's records were refused as not whole."""
    folder = make_folder(tmp_path, students=with_cell("students", 2, "credits", "7.5"))
    assert validate_folder(folder).ok
    assert 7.5 in load_learning_data(folder).students["credits"].tolist()


def test_required_value_missing(tmp_path: Path) -> None:
    rows = with_cell("students", 2, "student_id", "")
    finding = only(validate_folder(make_folder(tmp_path, students=rows)), "required")
    assert (finding.table, finding.column, finding.examples[0].row) == ("students", "student_id", 2)


def test_duplicate_key_names_the_repeated_row(tmp_path: Path) -> None:
    rows = with_row("students", ["S2", "P9", "1", "full_time", "0", "120"])
    finding = only(validate_folder(make_folder(tmp_path, students=rows)), "unique_key")
    assert finding.examples[0].row == 4
    assert finding.examples[0].key == {"student_id": "S2"}
    assert "row 2" in str(finding.examples[0].value)


def test_a_relationship_may_hold_several_periods_but_not_two_from_the_same_day(tmp_path: Path) -> None:
    """A clinical supervisor with the same student in two blocks is two rows (``valid_from`` is part of
    the key); a file without the days keeps one row per relationship."""
    header = ["staff_id", "relationship", "scope_type", "scope_id", "valid_from", "valid_until"]
    block = ["T1", "placement_supervisor", "student", "S1"]
    two = [header, [*block, "2026-09-01", "2026-10-31"], [*block, "2027-03-01", "2027-04-30"]]
    assert validate_folder(make_folder(tmp_path / "two", access=two)).ok
    same_day = [*two, [*block, "2026-09-01", "2026-09-30"]]
    finding = only(validate_folder(make_folder(tmp_path / "same", access=same_day)), "unique_key")
    assert finding.examples[0].row == 3 and finding.examples[0].key["valid_from"] == "2026-09-01"
    undated = [header[:4], block, block]
    assert only(validate_folder(make_folder(tmp_path / "undated", access=undated)), "unique_key")
    # days that overlap from different first days, as the import refuses them (listed in any order)
    for name, later in (("inside", ["2026-10-01", "2026-10-15"]), ("open", ["", "2026-09-01"])):
        rows = [*two, [*block, *later]]
        finding = only(validate_folder(make_folder(tmp_path / name, access=rows)), "periods_overlap")
        assert finding.examples[0].value.startswith("overlaps the days of row"), name


def test_an_id_with_a_control_character_or_an_invisible_direction_control_is_refused(tmp_path: Path) -> None:
    """The service refuses them in every id it is given (a token's subject, a path, a relationship), so
    a staff member or module whose records carried one could be neither signed in as nor granted; the
    data had accepted them. Right-to-left letters, and the joiners some scripts need, stay ids."""
    header = ["staff_id", "relationship", "scope_type", "scope_id"]
    rows = [
        header,
        ["tutor-\u202e4", "personal_tutor", "school", "sci"],  # an override: reads as "4-rotut"
        ["tutor-\u20665\u2069", "personal_tutor", "school", "sci"],  # an isolate around a digit
        ["tutor\t6", "personal_tutor", "school", "sci"],
        ["\u05de\u05d5\u05e8\u05d4-7", "personal_tutor", "school", "sci"],  # Hebrew letters
        ["\u0645\u0639\u0644\u200c\u0645-8", "personal_tutor", "school", "sci"],  # a zero-width non-joiner
    ]
    finding = only(validate_folder(make_folder(tmp_path / "ids", access=rows)), "unseen_in_identifier")
    assert [e.row for e in finding.examples] == [1, 2, 3] and finding.column == "staff_id"
    assert "U+202A to U+202E" in finding.message and "replace" in finding.message


def test_a_module_relationship_may_hold_one_presentation_and_no_other_relationship_one(
    tmp_path: Path,
) -> None:
    """A US course's full-term and 8-week sections, each its own instructor's: one instructor may hold
    both (the presentation is part of the key), and periods overlap only within one presentation."""
    header = ["staff_id", "relationship", "scope_type", "scope_id", "presentation_id", "valid_from"]
    rows = [
        header,
        ["L1", "module_leader", "module", "M1", "2025B", ""],
        ["L1", "module_leader", "module", "M1", "2025B-8W", ""],
        ["L2", "module_leader", "module", "M1", "", "2026-01-01"],
        ["L2", "module_leader", "module", "M1", "", "2026-09-01"],  # overlaps its January period
    ]
    report = validate_folder(make_folder(tmp_path / "sections", access=rows))
    finding = only(report, "periods_overlap")
    assert finding.examples[0].row == 4 and finding.examples[0].key["presentation_id"] is None
    on_a_tutee = [header, ["T1", "personal_tutor", "student", "S1", "2025B", ""]]
    finding = only(
        validate_folder(make_folder(tmp_path / "tutee", access=on_a_tutee)), "presentation_outside_module"
    )
    assert finding.examples[0].value == "student 2025B" and "leave it empty" in finding.message
    twice = [*rows[:2], rows[1]]
    assert only(validate_folder(make_folder(tmp_path / "twice", access=twice)), "unique_key")
    # listed on the whole module and on one presentation: the one would mean nothing
    both = [*rows[:3], ["L1", "module_leader", "module", "M1", "", ""]]
    finding = only(
        validate_folder(make_folder(tmp_path / "both", access=both)), "module_whole_and_presentation"
    )
    assert sorted(e.row for e in finding.examples) == [1, 2]


def test_activity_for_unknown_registration_is_refused(tmp_path: Path) -> None:
    rows = with_row("activity", ["S1", "M2", "2025B", "3", "vle", "resource", "1"])
    finding = only(validate_folder(make_folder(tmp_path, activity=rows)), "reference_registrations")
    assert finding.table == "activity"
    assert finding.examples[0].row == 5


def test_result_for_unknown_assessment_is_refused(tmp_path: Path) -> None:
    rows = with_row("assessment_results", ["S1", "A9", "10", "50"])
    finding = only(validate_folder(make_folder(tmp_path, assessment_results=rows)), "reference_assessments")
    assert finding.examples[0].key == {"assessment_id": "A9"}


def test_result_of_a_student_not_on_the_assessments_module_is_refused(tmp_path: Path) -> None:
    rows = with_row("assessment_results", ["S2", "A3", "10", "50"])  # S2 is not on M2 2025B
    finding = only(validate_folder(make_folder(tmp_path, assessment_results=rows)), "reference_registrations")
    assert finding.examples[0].key == {"student_id": "S2", "assessment_id": "A3"}


def test_registration_on_unknown_presentation_is_refused(tmp_path: Path) -> None:
    rows = with_row("registrations", ["S1", "M1", "2030J", "0", "", ""])
    report = validate_folder(make_folder(tmp_path, registrations=rows))
    assert only(report, "reference_presentations").examples[0].row == 5


def test_negative_counts_are_refused(tmp_path: Path) -> None:
    rows = with_cell("activity", 1, "count", "-4")
    finding = only(validate_folder(make_folder(tmp_path, activity=rows)), "minimum")
    assert (finding.column, finding.examples[0].row, finding.examples[0].value) == ("count", 1, "-4")


def test_an_activity_type_naming_an_absence_is_warned_of(tmp_path: Path) -> None:
    """A Bangladeshi university's biometric P/A rows mapped to present and absent: every absence was
    counted as an attendance, and nothing warned."""
    for kept in ("absent", "no_show", "missed_class", "ausencia_registrada", "not_present", "fravar"):
        rows = with_cell("activity", 2, "activity_type", kept)
        report = validate_folder(make_folder(tmp_path / kept, activity=rows))
        (finding,) = [w for w in report.warnings if w.rule == "non_event_activity"]
        assert finding.values == ((kept, 1),) and "keep = " in finding.message
    for fine in (
        "missed_lecture_recording_view",
        "presence",
        "absolute_value_quiz",
        "resource",
        "absence_request_form",
    ):
        rows = with_cell("activity", 2, "activity_type", fine)
        report = validate_folder(make_folder(tmp_path / fine, activity=rows))
        assert not [w for w in report.warnings if w.rule == "non_event_activity"], fine


def test_a_registration_made_after_the_presentations_last_whole_week_is_warned_of(tmp_path: Path) -> None:
    """A Norwegian university's August resit rows kept their own sign-up date: registrations past the
    end, in no week, so 39% of a module's fails were neither trained nor tested on, and validation
    said nothing. M1 2024J is 100 days long: its 14 whole weeks end on day 97, so a registration from
    day 98 is in no week (a reviewer: warned only from day 100, it had missed those)."""

    def registered_on(day: str) -> list[Finding]:
        rows = with_cell("registrations", 3, "registration_day", day)
        report = validate_folder(make_folder(tmp_path / day, registrations=rows))
        assert report.ok, report.to_text()
        return [w for w in report.warnings if w.rule == "registered_after_the_end"]

    assert registered_on("97") == []
    for day in ("98", "100"):
        (finding,) = registered_on(day)
        assert (finding.column, finding.examples[0].row, finding.examples[0].value) == (
            "registration_day",
            3,
            day,
        )
        assert "read registration_day from the first sitting" in finding.message


def test_days_beyond_the_presentation_length_are_kept_with_a_warning(tmp_path: Path) -> None:
    # Revision and exam-period activity after the last teaching day is common: not a reason to refuse
    # the whole extract (features never read past the presentation's last week).
    # M1 2024J is 100 days long: days 0 to 99, so day 100 is the first day after it.
    last = validate_folder(make_folder(tmp_path / "last", activity=with_cell("activity", 4, "day", "99")))
    assert not [w for w in last.warnings if w.rule == "day_within_presentation"], last.to_text()
    rows = with_cell("activity", 4, "day", "100")
    report = validate_folder(make_folder(tmp_path, activity=rows))
    assert report.ok, report.to_text()
    (finding,) = [w for w in report.warnings if w.rule == "day_within_presentation"]
    assert (finding.column, finding.examples[0].row, finding.examples[0].value) == ("day", 4, "100")
    # Every week's features are the same with and without a busy day past the end.
    after = with_row("activity", ["S1", "M1", "2024J", "101", "vle", "resource", "40"])
    features = [
        build_features(load_learning_data(make_folder(tmp_path / name, activity=rows)))
        for name, rows in (("without", VALID["activity"]), ("with", after))
    ]
    pd.testing.assert_frame_equal(*features)


def test_unknown_final_result_is_refused(tmp_path: Path) -> None:
    rows = with_cell("registrations", 1, "final_result", "dropped")
    finding = only(validate_folder(make_folder(tmp_path, registrations=rows)), "allowed_values")
    assert finding.examples[0].value == "dropped"


def test_an_outcome_vocabulary_of_its_own_is_refused_with_its_values_counted_and_how_to_map_them(
    tmp_path: Path,
) -> None:
    rows = [list(r) for r in VALID["registrations"]]
    column = rows[0].index("final_result")
    said = ["Completed", "Completed", "Deferred"]
    for row, value in zip(rows[1:], said, strict=False):
        row[column] = value
    finding = only(validate_folder(make_folder(tmp_path, registrations=rows)), "allowed_values")
    assert finding.count == len(said)
    assert finding.values == (("Completed", 2), ("Deferred", 1)) and finding.distinct_values == 2
    text = finding.describe()
    assert "values found: 'Completed' (2 rows), 'Deferred' (1 row)" in text
    assert "leave it empty where the outcome is not known yet" in text and "docs/mapping.md" in text


def test_free_text_activity_type_is_refused(tmp_path: Path) -> None:
    rows = with_cell("activity", 1, "activity_type", "Reading: Mental health and you")
    report = validate_folder(make_folder(tmp_path, activity=rows))
    assert only(report, "identifier").column == "activity_type"


def test_access_scope_must_fit_the_relationship(tmp_path: Path) -> None:
    rows = with_row("access", ["tutor-2", "personal_tutor", "school", "sci"])
    finding = only(validate_folder(make_folder(tmp_path, access=rows)), "scope_matches_relationship")
    assert finding.examples[0].row == 3
    assert "support_staff: school or student" in finding.message
    # support staff on named students (a targeted team), not on a module
    assigned = with_row("access", ["wp-1", "support_staff", "student", "S1"])
    assert validate_folder(make_folder(tmp_path / "assigned", access=assigned)).ok
    module = with_row("access", ["wp-1", "support_staff", "module", "M1"])
    refused = validate_folder(make_folder(tmp_path / "module", access=module))
    assert only(refused, "scope_matches_relationship")


def test_non_utf8_text_is_refused_with_its_line(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    content = (folder / "students.csv").read_bytes().replace(b"P2", b"P\xe92")
    (folder / "students.csv").write_bytes(content)
    finding = only(validate_folder(folder), "not_utf8")
    assert finding.table == "students"
    assert "line 4" in finding.message


def test_empty_file_is_refused(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    (folder / "assessments.csv").write_bytes(b"")
    finding = only(validate_folder(folder), "empty_file")
    assert finding.table == "assessments"


def test_header_only_registrations_has_no_rows(tmp_path: Path) -> None:
    folder = make_folder(
        tmp_path,
        registrations=[VALID["registrations"][0]],
        activity=[VALID["activity"][0]],
        assessment_results=[VALID["assessment_results"][0]],
    )
    assert only(validate_folder(folder), "no_rows").table == "registrations"


def test_a_parquet_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, activity=None)
    (folder / "activity.parquet").write_text("student_id,day\nS1,3\n", encoding="utf-8")
    finding = only(validate_folder(folder), "not_parquet")
    assert "activity.parquet" in finding.message


def test_malformed_csv_rows_are_listed_with_their_rows(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    with (folder / "students.csv").open("a", encoding="utf-8") as fh:
        fh.write("S4,P1\r\nS5,P1,1,full_time,0,120,extra\r\n")
    finding = only(validate_folder(folder), "malformed_row")
    assert [e.row for e in finding.examples] == [4, 5]


def test_unparseable_csv_is_refused_with_a_reason(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    with (folder / "students.csv").open("a", encoding="utf-8", newline="") as fh:
        fh.write('S4,"P1,1,full_time,0,120\n')  # unterminated quote, and a different line ending
    finding = only(validate_folder(folder), "malformed_csv")
    assert "students.csv" in finding.message


def test_two_copies_of_a_table_are_ambiguous(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    write_csv(folder / "x.csv", VALID["students"])
    pq.write_table(pacsv.read_csv(folder / "x.csv"), folder / "students.parquet")
    assert only(validate_folder(folder), "ambiguous_source").table == "students"


def test_every_violation_is_reported_not_just_the_first(tmp_path: Path) -> None:
    folder = make_folder(
        tmp_path,
        activity=with_cell("activity", 1, "count", "-1"),
        registrations=with_cell("registrations", 2, "final_result", "gone"),
        students=with_cell("students", 3, "year_of_study", "first"),
        presentations=None,
    )
    report = validate_folder(folder)
    rules = {(f.table, f.rule) for f in report.findings}
    assert {
        ("activity", "minimum"),
        ("registrations", "allowed_values"),
        ("students", "type_int"),
        ("presentations", "missing_file"),
    } <= rules


def test_all_offending_rows_are_counted(tmp_path: Path) -> None:
    rows = [VALID["activity"][0]] + [
        ["S1", "M1", "2024J", str(d), "vle", "resource", "-1"] for d in range(50)
    ]
    report = validate_folder(make_folder(tmp_path, activity=rows), max_examples=10)
    finding = only(report, "minimum")
    assert finding.count == 50
    assert len(finding.examples) == 10


def test_json_report_carries_table_column_row_and_rule(tmp_path: Path) -> None:
    rows = with_cell("registrations", 3, "registration_day", "soon")
    payload = json.loads(validate_folder(make_folder(tmp_path, registrations=rows)).to_json())
    assert payload["ok"] is False
    violation = payload["violations"][0]
    assert violation["table"] == "registrations"
    assert violation["column"] == "registration_day"
    assert violation["rule"] == "type_int"
    assert violation["examples"][0]["row"] == 3


def _as_parquet(csv_folder: Path, out: Path, float_days: bool = False) -> Path:
    out.mkdir()
    for path in csv_folder.glob("*.csv"):
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types={"student_id": pa.string(), "start_date": pa.string()}
            ),
        )
        if float_days and "day" in table.column_names:
            table = table.set_column(table.column_names.index("day"), "day", table["day"].cast(pa.float64()))
        pq.write_table(table, out / f"{path.stem}.parquet")
    return out


def test_parquet_and_csv_copies_validate_alike(tmp_path: Path) -> None:
    csv_folder = make_folder(tmp_path / "csv", activity=with_cell("activity", 1, "count", "-4"))
    parquet = _as_parquet(csv_folder, tmp_path / "pq")
    a, b = validate_folder(csv_folder), validate_folder(parquet)
    assert [(f.table, f.rule, f.count) for f in a.findings] == [
        (f.table, f.rule, f.count) for f in b.findings
    ]
    assert b.findings[0].examples[0].row == 1


def test_whole_numbers_stored_as_floats_are_accepted_but_fractions_are_not(tmp_path: Path) -> None:
    folder = _as_parquet(make_folder(tmp_path / "csv"), tmp_path / "pq", float_days=True)
    assert validate_folder(folder).ok
    table = pq.read_table(folder / "activity.parquet")
    days = table["day"].to_pylist()
    days[2] = 5.5
    pq.write_table(
        table.set_column(table.column_names.index("day"), "day", pa.array(days, pa.float64())),
        folder / "activity.parquet",
    )
    finding = only(validate_folder(folder), "type_int")
    assert (finding.examples[0].file, finding.examples[0].row) == ("activity.parquet", 3)


def test_a_folder_of_parquet_parts_names_the_part(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, activity=None)
    (folder / "activity").mkdir()
    rows = VALID["activity"]
    for k, chunk in enumerate((rows[1:3], [*rows[3:], ["S9", "M1", "2024J", "1", "vle", "x", "1"]])):
        write_csv(tmp_path / "part.csv", [rows[0], *chunk])
        table = pacsv.read_csv(
            tmp_path / "part.csv",
            convert_options=pacsv.ConvertOptions(column_types={"student_id": pa.string()}),
        )
        pq.write_table(table, folder / "activity" / f"part-{k}.parquet")
    finding = only(validate_folder(folder), "reference_registrations")
    assert (finding.examples[0].file, finding.examples[0].row) == ("activity/part-1.parquet", 3)


@pytest.mark.parametrize("header", ["student_id,student_id,programme_id"])
def test_repeated_header_column_is_refused(tmp_path: Path, header: str) -> None:
    folder = make_folder(tmp_path)
    (folder / "students.csv").write_text(header + "\nS1,S1,P1\n", encoding="utf-8")
    assert only(validate_folder(folder), "duplicate_column").table == "students"


def test_a_characteristic_that_identifies_students_is_refused_without_showing_its_values(
    synth_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    shutil.copytree(synth_dir, folder)
    path = folder / "protected_characteristics.parquet"
    frame = pd.read_parquet(path)
    numbers = [f"{10_000_000_000 + 7_919 * i}" for i in range(len(frame))]  # an 11-digit identity number
    frame = frame.assign(
        national_id=numbers, birth_decade=[f"19{80 + 10 * (i % 3)}s" for i in range(len(frame))]
    )
    frame.to_parquet(path, index=False)
    report = validate_folder(folder)
    finding = only(report, "groups_students")
    assert (finding.table, finding.column) == ("protected_characteristics", "national_id")
    assert finding.count == len(frame)
    assert [f.rule for f in report.findings] == ["groups_students"]  # birth_decade groups them: kept
    assert not any(n in report.to_text() for n in numbers)  # the refusal never prints an identity number
    # A date of birth shared by many students of a large cohort still identifies beside other facts.
    dates = [f"{1 + i % 28:02d}.0{1 + i % 9}.200{i % 4}" for i in range(len(frame))]
    frame.drop(columns="national_id").assign(born=dates).to_parquet(path, index=False)
    dated = only(validate_folder(folder), "groups_students")
    assert (dated.column, dated.count) == ("born", len(frame))
    assert {e.value for e in dated.examples} == {"(a date)"}


def test_a_programme_that_identifies_students_is_refused(synth_dir: Path, tmp_path: Path) -> None:
    """An Egyptian university's 14-digit national id (date of birth, governorate and sex in its digits),
    mapped to programme_id, was published unhashed beside each pseudonym: the characteristics' own
    check never read the students table."""
    folder = tmp_path / "data"
    shutil.copytree(synth_dir, folder)
    path = folder / "students.parquet"
    frame = pd.read_parquet(path)
    numbers = [f"{29_901_011_234_567 + 7_919 * i}" for i in range(len(frame))]
    frame.assign(programme_id=numbers).to_parquet(path, index=False)
    report = validate_folder(folder)
    finding = only(report, "groups_students")
    assert (finding.table, finding.column) == ("students", "programme_id")
    assert "a programme or a school, not an identity number" in finding.message
    assert not any(n in report.to_text() for n in numbers)


FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + i) for i in range(10)))


def test_a_date_of_birth_is_refused_in_the_forms_records_systems_write_it(
    synth_dir: Path, tmp_path: Path
) -> None:
    """A Japanese university's 平成18年6月9日 and 2006年4月10日 passed as groups; so would 9 June 2006."""
    folder = tmp_path / "data"
    shutil.copytree(synth_dir, folder)
    path = folder / "protected_characteristics.parquet"
    frame = pd.read_parquet(path)
    forms = (
        "平成{e}年{m}月{d}日",
        "{y}年{m}月{d}日",
        "{y}년 {m}월 {d}일",
        "{d} June {y}",
        "June {d}, {y}",
        "{d}-Jun-{y}",
        "{y}06{d:02d}",
        "H{e}.{m}.{d}",
        "FW{y}年{m}月{d}日",  # in full-width digits, as Japanese forms often write them
        "{d} de março de {y}",
        "{d}. März {y}",
    )
    written = [
        forms[i % len(forms)].format(e=18 + i % 3, y=2004 + i % 3, m=1 + i % 12, d=1 + i % 28)
        for i in range(len(frame))
    ]
    born = [w[2:].translate(FULL_WIDTH) if w.startswith("FW") else w for w in written]
    bands = ["22以上" if i % 2 else "18-21" for i in range(len(frame))]
    frame.assign(born=born, age_band=bands).to_parquet(path, index=False)
    dated = only(validate_folder(folder), "groups_students")
    assert (dated.column, dated.count) == ("born", len(frame))  # the age bands group them: kept


def test_a_characteristic_value_saying_nothing_is_recorded_is_warned_of(
    synth_dir: Path, tmp_path: Path
) -> None:
    """An institute's "Not stated" Indigenous status was audited as a group whose comparison stood in for
    the characteristic at the gate: validation says so, and how to make it "not recorded"."""
    folder = tmp_path / "data"
    shutil.copytree(synth_dir, folder)
    path = folder / "protected_characteristics.parquet"
    frame = pd.read_parquet(path)
    status = ["Neither", " Not Stated", "Aboriginal", "Prefer not to say", "X"] * (len(frame) // 5 + 1)
    frame.assign(indigenous=status[: len(frame)]).to_parquet(path, index=False)
    report = validate_folder(folder)
    assert not report.findings  # a warning, not a refusal
    [finding] = [w for w in report.warnings if w.rule == "says_not_recorded"]
    assert (finding.severity, finding.column) == ("warning", "indigenous")
    assert {v for v, _ in finding.values} == {"Not Stated", "Prefer not to say"}
    assert 'values = { "Not stated" = "" }' in finding.message
    assert [w.column for w in report.warnings if w.rule == "says_not_recorded"] == ["indigenous"]
    # in the language the records system writes: a Japanese university's 回答しない and 不明
    frame.assign(
        indigenous=status[: len(frame)],
        gender=(
            ["男", "女", "回答しない", "不明", "No especificado", "未填写", "BELİRTİLMEMİŞ", "Erkek"]
            * len(frame)
        )[: len(frame)],
        ethnicity=(["White", "Race and ethnicity unknown", "Two or more races"] * len(frame))[: len(frame)],
        region=(["Toscana", "N.D.", "Sconosciuto", "לא ידוע", "Lazio", "brak danych", "Không rõ"] * 999)[
            : len(frame)
        ],
    ).to_parquet(path, index=False)
    said = {
        w.column: {v for v, _ in w.values}
        for w in validate_folder(folder).warnings
        if w.rule == "says_not_recorded"
    }
    assert said == {
        "indigenous": {"Not Stated", "Prefer not to say"},
        "gender": {"回答しない", "不明", "No especificado", "未填写", "BELİRTİLMEMİŞ"},  # a Turkish OBS's too
        "ethnicity": {"Race and ethnicity unknown"},  # IPEDS, a US community college's
        # an Italian, an Israeli, a Polish and a Vietnamese university's
        "region": {"N.D.", "Sconosciuto", "לא ידוע", "brak danych", "Không rõ"},
    }


def test_a_characteristic_naming_criminal_offence_data_is_refused(synth_dir: Path, tmp_path: Path) -> None:
    """A prison programme's offence group and sentence length, and a law school's fitness-to-practise
    disclosures, were audited as characteristics: their groups ("Caution 2019 (spent), possession")
    went to the committee, their names to the model card and the public transparency statement."""
    folder = tmp_path / "data"
    shutil.copytree(synth_dir, folder)
    path = folder / "protected_characteristics.parquet"
    frame = pd.read_parquet(path)
    groups = (["Violence", "Acquisitive", "Drugs"] * len(frame))[: len(frame)]
    # a religious conviction is a belief, an academic probation an academic standing: kept
    frame.assign(
        offence_group=groups, care_experienced="no", religious_conviction="none", academic_probation="no"
    ).to_parquet(path, index=False)
    report = validate_folder(folder)
    finding = only(report, "criminal_offence_data")
    assert (finding.column, finding.count) == ("offence_group", len(frame))
    assert "GDPR article 10" in finding.message and "Violence" not in report.to_text()
    assert [f.rule for f in report.findings] == ["criminal_offence_data"]  # care_experienced is kept


def test_one_group_written_two_ways_is_warned_of_with_the_map_that_joins_them(
    synth_dir: Path, tmp_path: Path
) -> None:
    """A Vietnamese university's "Thanh Hóa" and "Thanh Hoá" (the tone mark placed the old way and the
    new) were audited as two provinces, the smaller one withheld."""
    folder = tmp_path / "data"
    shutil.copytree(synth_dir, folder)
    path = folder / "protected_characteristics.parquet"
    frame = pd.read_parquet(path)
    provinces = (["Thanh Hóa", "Thanh Hóa", "Thanh Hoá", "Hà Nội", "THANH HÓA"] * len(frame))[: len(frame)]
    frame.assign(province=provinces).to_parquet(path, index=False)
    report = validate_folder(folder)
    assert not report.findings
    [finding] = [w for w in report.warnings if w.rule == "spelled_two_ways"]
    assert finding.column == "province"
    assert [v for v, _ in finding.values] == ["Thanh Hóa", "THANH HÓA", "Thanh Hoá"]
    assert '"THANH HÓA" = "Thanh Hóa", "Thanh Hoá" = "Thanh Hóa"' in finding.message


def test_a_characteristic_recording_one_group_only_is_warned_of(synth_dir: Path, tmp_path: Path) -> None:
    """A polytechnic's accessibility register, Y/N, had N mapped to empty: disability recorded one group,
    and the gate blamed groups too small or intervals too wide for the comparison it could never make."""
    folder = tmp_path / "data"
    shutil.copytree(synth_dir, folder)
    path = folder / "protected_characteristics.parquet"
    frame = pd.read_parquet(path)
    registered = (["Y", None, None, None, None, " Y"] * len(frame))[: len(frame)]
    frame.assign(disability=registered).to_parquet(path, index=False)
    report = validate_folder(folder)
    assert not report.findings  # a warning, not a refusal
    [finding] = [w for w in report.warnings if w.rule == "one_group"]
    assert finding.column == "disability" and {v for v, _ in finding.values} == {"Y"}
    assert 'values = { "N" = "Not registered" }' in finding.message
    frame.assign(disability=(["Y", "N", None] * len(frame))[: len(frame)]).to_parquet(path, index=False)
    assert not [w for w in validate_folder(folder).warnings if w.rule == "one_group"]


def test_a_presentation_whose_work_has_no_due_day_is_warned_of(tmp_path: Path) -> None:
    """A Swedish records system holds examination dates, not due days: with every due day empty no work
    was ever read as missed, and staff read that nothing had been due beside 202 submissions."""
    assert not [w for w in validate_folder(make_folder(tmp_path / "ok")).warnings if w.rule == "no_due_days"]
    undated = with_cell("assessments", 1, "due_day", "")
    undated[2][undated[0].index("due_day")] = ""  # the exam too
    report = validate_folder(make_folder(tmp_path / "undated", assessments=undated))
    assert not report.findings  # a warning, not a refusal
    [finding] = [w for w in report.warnings if w.rule == "no_due_days"]
    assert (finding.table, finding.column) == ("assessments", "due_day")
    assert {v for v, _ in finding.values} == {"M1 2024J"}  # M2's undated quiz has no work handed in
    assert "no work is ever read as due, missed or late" in finding.message


def test_an_extension_of_a_student_not_on_the_assessments_presentation_is_refused(tmp_path: Path) -> None:
    extended = [["student_id", "assessment_id", "due_day"], ["S1", "A1", "25"], ["S2", "A3", "40"]]
    report = validate_folder(make_folder(tmp_path, extensions=extended))
    refused = [(f.table, f.rule) for f in report.findings]
    assert refused == [("extensions", "reference_registrations")], report.to_text()  # S2 is not on M2 2025B
    assert validate_folder(make_folder(tmp_path / "ok", extensions=extended[:2])).ok


def test_a_presentation_whose_sections_each_set_their_own_work_is_warned_of(
    synth_dir: Path, tmp_path: Path
) -> None:
    """A Chinese university's teaching classes each set their own homework under one course and term:
    students read "1 of the 30 assessments due so far was submitted" of work never set for them, and
    validation said nothing."""
    assert not [w for w in validate_folder(synth_dir).warnings if w.rule == "work_set_for_some"]
    folder = tmp_path / "data"
    shutil.copytree(synth_dir, folder)
    assessments = pd.read_parquet(folder / "assessments.parquet")
    results = pd.read_parquet(folder / "assessment_results.parquet")
    first = assessments.iloc[0]
    own = assessments[
        (assessments.module_id == first.module_id)
        & (assessments.presentation_id == first.presentation_id)
        & (assessments.type != "exam")
    ]
    # Three sections, each setting its own copy of every piece; a student hands in their section's.
    copies = pd.concat([own.assign(assessment_id=own.assessment_id + f"-s{k}") for k in range(3)])
    section = results.student_id.map(lambda s: f"-s{sum(map(ord, s)) % 3}")
    mine = results.assessment_id.isin(own.assessment_id)
    results.loc[mine, "assessment_id"] = results.assessment_id[mine] + section[mine]
    pd.concat([assessments[~assessments.assessment_id.isin(own.assessment_id)], copies]).to_parquet(
        folder / "assessments.parquet", index=False
    )
    results.to_parquet(folder / "assessment_results.parquet", index=False)
    report = validate_folder(folder)
    assert not report.findings  # a warning, not a refusal
    [finding] = [w for w in report.warnings if w.rule == "work_set_for_some"]
    assert {v for v, _ in finding.values} == {f"{first.module_id} {first.presentation_id}"}
    assert "Sections that set their own work" in finding.message
