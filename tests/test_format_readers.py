"""The readers for Moodle's downloads and xAPI statements, each on its own (docs/ready-mappings.md)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from waymark.training.ingest.mapping.formats.export_errors import ExportFormatError
from waymark.training.ingest.mapping.readers import READERS
from waymark.training.ingest.mapping.schema import InputSpec

BYOD = Path(__file__).parent / "fixtures" / "byod"
LOGS_HEADER = (
    "Time,User full name,Affected user,Event context,Component,Event name,Description,Origin,IP address\n"
)


def _read(fmt: str, path: Path, **options: str | int | float | bool) -> list[dict[str, str | None]]:
    con = duckdb.connect()
    relation = READERS[fmt](con, path, spec=InputSpec(files=[path.name], format=fmt, options=options))
    assert set(relation.types) == {duckdb.sqltype("VARCHAR")}
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def _write(path: Path, text: str, *, bom: bool = False) -> Path:
    path.write_text(text, encoding="utf-8-sig" if bom else "utf-8")
    return path


def test_the_logs_report_names_its_course_in_the_file_name_and_reads_both_time_formats(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path / "logs_NU1001-2024_20250120-0900.csv",
        LOGS_HEADER + '"30/11/26, 13:05",A B,-,Course: X,System,Course viewed,d,web,1.2.3.4\n'
        '"01/12/26, 23:59:07",A B,-,Forum: W1,Forum,Post created,d,web,1.2.3.4\n',
        bom=True,  # Moodle's csv download starts with a byte-order mark
    )
    rows = _read("moodle_logs_report", path)
    assert [r["course_shortname"] for r in rows] == ["NU1001-2024"] * 2
    assert [r["time_local"] for r in rows] == ["2026-11-30T13:05:00", "2026-12-01T23:59:07"]
    assert [r["date_local"] for r in rows] == ["2026-11-30", "2026-12-01"]
    assert rows[0]["User full name"] == "A B"


def test_a_logs_report_under_another_name_is_refused_saying_why(tmp_path: Path) -> None:
    path = _write(tmp_path / "my_logs.csv", LOGS_HEADER)
    with pytest.raises(ExportFormatError, match=r"my_logs.csv: .*logs_<course short name>_<YYYYMMDD-HHMM>"):
        _read("moodle_logs_report", path)


def test_a_time_in_another_language_format_is_refused_unless_the_format_is_given(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "logs_C1_20250120-0900.csv",
        LOGS_HEADER + '"11/30/26, 13:05",A B,-,c,System,e,d,web,1.2.3.4\n',
    )
    with pytest.raises(ExportFormatError, match=r"1 value\(s\) of 'Time'.*'11/30/26, 13:05'.*time_format"):
        _read("moodle_logs_report", path)
    rows = _read("moodle_logs_report", path, time_format="%m/%d/%y, %H:%M")
    assert rows[0]["time_local"] == "2026-11-30T13:05:00"


def test_a_file_without_the_report_columns_is_refused_naming_them(tmp_path: Path) -> None:
    path = _write(tmp_path / "logs_C1_20250120-0900.csv", "Time,User\n1,2\n")
    with pytest.raises(ExportFormatError, match=r"no column 'User full name'"):
        _read("moodle_logs_report", path)


def test_participants_get_a_full_name_and_a_shared_name_is_left_out(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "participants_NU1001-2024.csv",
        "First name,Last name,ID number,Roles\nAna,Reyes,1,Student\nSam,Cole,2,Student\nSam,Cole,3,Student\n",
    )
    rows = sorted(_read("moodle_participants", path), key=lambda r: str(r["ID number"]))
    assert [(r["full_name"], r["ID number"], r["course_shortname"]) for r in rows] == [
        ("Ana Reyes", "1", "NU1001-2024"),
        (None, "2", "NU1001-2024"),  # read, and counted, but matching no report row
        (None, "3", "NU1001-2024"),
    ]


def test_a_site_showing_the_family_name_first_gets_its_full_names_in_that_order(tmp_path: Path) -> None:
    """A Vietnamese university's site wrote "Nguyễn Văn An" in its Logs report: no row had joined."""
    path = _write(
        tmp_path / "participants_INT1313.csv",
        "First name,Last name,ID number,Roles\nVăn An,Nguyễn,B21DCCN123,Student\n",
    )
    rows = _read("moodle_participants", path, full_name="last first")
    assert [r["full_name"] for r in rows] == ["Nguyễn Văn An"]
    with pytest.raises(ExportFormatError, match=r'options.full_name is "first last" or "last first"'):
        _read("moodle_participants", path, full_name="surname first")


def test_a_participants_file_must_name_its_course(tmp_path: Path) -> None:
    path = _write(tmp_path / "courseid_101_participants.csv", "First name,Last name\nAna,Reyes\n")
    with pytest.raises(ExportFormatError, match=r"participants_<course short name>.csv"):
        _read("moodle_participants", path)


def test_the_grading_worksheet_gives_its_assignment_submission_time_and_percentage(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "Grades-NU1001-Essay - draft-1101.csv",
        "Identifier,Full name,ID number,Status,Grade,Maximum grade,Last modified (submission)\n"
        'Participant 9,A B,1,Submitted for grading - Graded,15.50,20.00,"Monday, 9 March 2026, 2:05 PM"\n'
        "Participant 8,C D,2,No submission,,20.00,-\n"
        'Participant 7,E F,3,Submitted for grading,Pass,20.00,"Tuesday, 10 March 2026, 11:59 AM"\n',
    )
    rows = _read("moodle_grading_worksheet", path)
    assert [r["cmid"] for r in rows] == ["1101"] * 3
    assert [r["submitted_local"] for r in rows] == ["2026-03-09T14:05:00", None, "2026-03-10T11:59:00"]
    assert [r["submitted_date"] for r in rows] == ["2026-03-09", None, "2026-03-10"]
    assert [r["has_submission"] for r in rows] == ["yes", "no", "yes"]
    assert [r["grade_percent"] for r in rows] == ["77.5", None, None]  # a scale grade has no percentage


def _statement(sid: str, **extra: object) -> dict[str, object]:
    return {
        "id": sid,
        "actor": {"account": {"homePage": "https://vle.example", "name": "s1"}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {
            "id": "https://vle.example/quiz/1",
            "definition": {"type": "http://adlnet.gov/expapi/activities/assessment"},
        },
        "timestamp": "2026-03-09T14:05:00+00:00",
        **extra,
    }


def _jsonl(path: Path, statements: list[dict[str, object]]) -> Path:
    return _write(path, "".join(json.dumps(s) + "\n" for s in statements))


def test_xapi_statements_are_flattened_with_actor_verb_object_and_course(tmp_path: Path) -> None:
    course = {
        "id": "https://vle.example/course/7",
        "definition": {"type": "http://adlnet.gov/expapi/activities/course"},
    }
    site = {"id": "https://vle.example", "definition": {"type": "http://id.tincanapi.com/activitytype/lms"}}
    path = _jsonl(
        tmp_path / "statements.jsonl",
        [
            _statement(
                "a",
                context={"contextActivities": {"grouping": [site, course]}},
                result={"score": {"scaled": 0.8}},
            ),
            _statement(
                "b",
                actor={"mbox": "mailto:s2@uni.example"},
                context={"contextActivities": {"parent": {"id": "https://vle.example/course/8"}}},
            ),
            _statement(
                "c", actor={"mbox_sha1sum": "ab12"}, context={"contextActivities": {"grouping": [site]}}
            ),
        ],
    )
    rows = {r["statement_id"]: r for r in _read("xapi", path)}
    assert rows["a"]["actor"] == "s1" and rows["a"]["actor_home_page"] == "https://vle.example"
    assert (rows["a"]["verb"], rows["a"]["object_type"]) == ("completed", "assessment")
    assert rows["a"]["course_id"] == "https://vle.example/course/7"  # the course, not the site
    assert rows["a"]["result_score_scaled"] == "0.8"
    assert (rows["b"]["actor"], rows["b"]["course_id"]) == ("s2@uni.example", "https://vle.example/course/8")
    assert (rows["c"]["actor"], rows["c"]["course_id"]) == ("ab12", "https://vle.example")
    assert rows["a"]["timestamp"] == "2026-03-09T14:05:00+00:00"


def test_voided_statements_and_their_voiding_statements_are_left_out(tmp_path: Path) -> None:
    voiding = _statement(
        "v",
        verb={"id": "http://adlnet.gov/expapi/verbs/voided"},
        object={"objectType": "StatementRef", "id": "a"},
    )
    path = _jsonl(tmp_path / "statements.jsonl", [_statement("a"), _statement("b"), voiding])
    assert [r["statement_id"] for r in _read("xapi", path)] == ["b"]


def test_a_line_that_is_not_a_statement_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "statements.jsonl", json.dumps(_statement("a")) + "\n" + '{"hello": 1}\n')
    with pytest.raises(ExportFormatError, match=r"statements.jsonl: 1 line\(s\) are not xAPI statements"):
        _read("xapi", path)


def test_the_fixture_statements_all_name_a_learner_verb_and_course() -> None:
    rows = _read("xapi", BYOD / "xapi" / "statements.jsonl")
    lines = (BYOD / "xapi" / "statements.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rows) == len(lines) - 2  # one voided statement and the statement voiding it
    assert all(r["actor"] and r["verb"] and r["course_id"] and r["timestamp"] for r in rows)


@pytest.mark.parametrize(
    ("text", "written", "read", "hint"),
    [
        ("回答しない,男,2024/04/08", "cp932", "utf-8", 'encoding = "cp932"'),
        ("髙橋 一郎,x", "cp932", "shift_jis", 'encoding = "cp932"'),  # a kanji only cp932 has
        ("김똠이,x", "cp949", "euc-kr", 'encoding = "cp949"'),  # a syllable only cp949 has
        ("回答しない,男", "utf-8", "cp932", "the text is UTF-8"),
        ("Привет мир, студент", "cp1251", "utf-8", '"cp1251" (Cyrillic)'),
        ("Straße \u2013 Grundlagen", "cp1252", "utf-8", 'encoding = "cp1252"'),
        ("Änderung \u2013 Müller", "cp1252", "shift_jis", 'encoding = "cp1252"'),  # not cp932
        ("Öğrenci No;Ders Kodu", "cp1254", "utf-8", 'or "cp1254" if the text is Turkish'),  # shares the Ö
        # a Polish USOS export: ń stops UTF-8 and is ñ in cp1252; the ł after it is ³ there
        ("ukraińskie;białoruskie", "cp1250", "utf-8", 'or "cp1250" if the text is Polish'),
        # a French Apogée export in ISO-8859-15: é stops UTF-8; the œ after it is ½ in cp1252
        ("Frédéric;Lætitia Dubœuf;10,5 €", "iso-8859-15", "utf-8", 'or "iso-8859-15" if the text is French'),
    ],
)
def test_an_unreadable_byte_is_named_with_the_encoding_the_text_is_likely_in(
    text: str, written: str, read: str, hint: str
) -> None:
    """A review found UTF-8 read as cp932 sent to East Asian encodings, and Cyrillic called East Asian."""
    from waymark.training.ingest.mapping.readers import _guess

    data = text.encode(written)
    with pytest.raises(UnicodeDecodeError) as failed:
        data.decode(read)
    said = _guess(data[failed.value.start :], encoding=read)
    assert hint in said, said


def test_a_column_written_in_one_encoding_and_read_as_another_is_named_with_the_encoding() -> None:
    """A Turkish Windows-1254 file read as Windows-1252 had "Öðrenci No" for the mapping's "Öğrenci No"."""
    from waymark.training.ingest.mapping.convert import misread

    said = misread("Öğrenci No", ["Ders Kodu", "Öðrenci No"])
    assert said.endswith('written in cp1254 and read as cp1252: give the input encoding = "cp1254"')
    assert 'give the input encoding = "utf-8"' in misread("Numéro", ["NumÃ©ro"])
    assert misread("Name", ["name", "Nom"]) == ""
    # an Egyptian university's Windows-1256 headers read as Windows-1252 had met no hint
    arabic = "رقم الطالب"
    said = misread(arabic, ["x", arabic.encode("cp1256").decode("cp1252")])
    assert said.endswith('give the input encoding = "cp1256"'), said


def test_a_logs_report_downloaded_in_another_language_is_refused_by_the_command_without_a_traceback(
    tmp_path: Path,
) -> None:
    """A Finnish university's Logs report, downloaded with Finnish headers: the reader's refusal reached
    the user as a Python traceback."""
    import shutil

    from typer.testing import CliRunner

    from waymark.cli import app

    exports = tmp_path / "exports"
    shutil.copytree(BYOD / "moodle_logs_report", exports)
    finnish = "Aika,Käyttäjän koko nimi,Asianomainen käyttäjä,Tapahtuman konteksti,Komponentti"
    for path in exports.glob("logs_*.csv"):
        text = path.read_text(encoding="utf-8-sig")
        _write(path, text.replace("Time,User full name,Affected user,Event context,Component", finnish, 1))
    args = ["data", "import", "--mapping", "moodle-logs-report", str(exports), "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(app, [*args, "--dry-run"])
    assert result.exit_code == 2, result.output
    assert "not a Moodle Logs report download: no column 'Time'" in " ".join(result.output.split())
    assert isinstance(result.exception, SystemExit), result.exception
