"""Mapping-driven import (#14, item 1): a polytechnic's records extract and click log into the contract."""

from __future__ import annotations

import json
import re
import tomllib
import unicodedata
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.polytechnic import (
    COURSES,
    MAPPING,
    RECORDS_HEADER,
    STARTS,
    STUDENTS,
    click_rows,
    records_rows,
    write_clicks,
    write_extract,
    write_mapping,
    write_records,
    write_secret,
)
from waymark.cli import app
from waymark.models.data import ContractViolation, load_learning_data, read_manifest, validate_folder
from waymark.models.features.build import build_features
from waymark.training.ingest.mapping.convert import trimmed
from waymark.training.ingest.mapping.coverage import Coverage, TableCoverage, shape, shape_sql
from waymark.training.ingest.mapping.importer import MappingDataError, import_mapped
from waymark.training.ingest.mapping.schema import MappingError, load_mapping, parse_mapping

runner = CliRunner()
SECRET = b"s" * 40


def _cell(name: str) -> str:
    """A source column's cell as the importer reads it (``convert.cell_reader``), in a one-table query."""
    return trimmed(f'"{name}"')


def _import(tmp_path: Path, *, src: Path | None = None, secret: bytes = SECRET, out: str = "out") -> Path:
    src = src or write_extract(tmp_path / "export")
    mapping = load_mapping(write_mapping(tmp_path / "mapping"))
    import_mapped(mapping, [src], out=tmp_path / out, secret=secret)
    return tmp_path / out


def test_an_extract_imports_to_a_valid_folder_that_loads(tmp_path: Path) -> None:
    out = _import(tmp_path)
    assert validate_folder(out).ok
    data = load_learning_data(out)
    assert len(data.students) == len(STUDENTS)
    assert set(data.registrations["final_result"].dropna()) == {"pass", "withdrawn"}
    assert data.registrations["final_result"].isna().sum() == 3 + 12  # Enrolled: still in progress
    assert set(data.presentations["start_date"].astype(str)) == {"2023-09-18", "2024-02-19"}
    assert (data.registrations["registration_day"] < 0).all()
    assert data.students["credits"].isin([30, 36]).all()  # "30.0" read as the whole number it is
    assert int(data.activity["count"].sum()) == len(click_rows(range(4)))
    assert data.activity["day"].between(0, 140).all()
    labels = (out / "sources.csv").read_text(encoding="utf-8").splitlines()
    assert labels == ["source,label,notice_given_on,counts_as", "vle,the learning platform (Moodle),,"]
    manifest = read_manifest(out)
    assert manifest["source"] == "mapping:polytechnic"
    assert manifest["increments"][0]["rows"]["registrations"]["added"] == 24
    # What the mapping said is recorded, not only its name: the same name with other rules differs.
    said = manifest["increments"][0]["mapping_sha256"]
    assert len(said) == 64
    relabelled = MAPPING.replace('Dropout = "withdrawn"', 'Dropout = "fail"')
    assert relabelled != MAPPING
    import_mapped(
        load_mapping(write_mapping(tmp_path / "other", relabelled)),
        [tmp_path / "export"],
        out=tmp_path / "again",
        secret=SECRET,
    )
    assert read_manifest(tmp_path / "again")["increments"][0]["mapping_sha256"] != said
    # And the export's own words for each outcome, for the model card and the committee
    assert manifest["outcome_words"] == {"pass": ["Graduate"], "withdrawn": ["Dropout"]}
    assert read_manifest(tmp_path / "again")["outcome_words"] == {"pass": ["Graduate"], "fail": ["Dropout"]}


def test_days_count_from_each_presentations_start_in_the_mappings_time_zone(tmp_path: Path) -> None:
    src = tmp_path / "export"
    write_records(src)
    # 23:30 UTC on the start day is already the next day in Lisbon in summer time (UTC+1).
    write_clicks(src, [[STUDENTS[0], "INF101", "2023S1", "2023-09-18T23:30:00Z", "forum", "x"]])
    data = load_learning_data(_import(tmp_path, src=src))
    assert data.activity["day"].tolist() == [1]


def test_features_build_on_the_imported_folder(tmp_path: Path) -> None:
    data = load_learning_data(_import(tmp_path))
    features = build_features(data, weeks=[2])
    assert len(features) == 24


def test_raw_ids_appear_in_no_output_file_and_pseudonyms_are_stable(tmp_path: Path) -> None:
    first = _import(tmp_path / "a")
    second = _import(tmp_path / "b")
    other = _import(tmp_path / "c", secret=b"t" * 40)
    for folder in (first, second, other):
        for path in folder.rglob("*"):
            if path.is_file():
                text = path.read_bytes()
                assert not any(s.encode() in text for s in STUDENTS), path
    ids = {f: set(load_learning_data(f).students["student_id"]) for f in (first, second, other)}
    assert ids[first] == ids[second]
    assert not ids[first] & ids[other]
    assert all(i.startswith("p") and len(i) == 21 for i in ids[first])


def test_an_unmapped_outcome_is_named_with_its_count_and_nothing_is_written(tmp_path: Path) -> None:
    rows = records_rows()
    for row in rows[:3]:
        row[5] = "Transferred"
    src = tmp_path / "export"
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    mapping = load_mapping(write_mapping(tmp_path))
    with pytest.raises(MappingDataError) as caught:
        import_mapped(mapping, [src], out=tmp_path / "out", secret=SECRET)
    message = str(caught.value)
    expected = "'Transferred' is not mapped (3 rows; first records.csv row 1)"
    assert f"tables.registrations.columns.final_result: {expected}" in message
    assert not (tmp_path / "out").exists()


def test_a_value_patterns_do_not_read_is_named_by_its_shape_where_it_may_be_an_identity_number(
    tmp_path: Path,
) -> None:
    """A Finnish college read the legal sex from the henkilötunnus with patterns; a malformed one was
    printed whole in the refusal, a student's birth date and number in the console and its logs. A
    value with few digits (a word a pattern missed) is still named as written."""
    rows = records_rows()
    rows[0][5] = "020103A002"  # a henkilötunnus missing its check character
    rows[1][5] = "Transferred"
    src = tmp_path / "export"
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    old = 'values = { Graduate = "pass", Dropout = "withdrawn", Enrolled = "" } }'
    assert old in MAPPING
    patterned = MAPPING.replace(
        old, 'values = { Graduate = "pass", Enrolled = "" }, patterns = { "Drop*" = "withdrawn" } }'
    )
    with pytest.raises(MappingDataError) as caught:
        import_mapped(
            load_mapping(write_mapping(tmp_path, patterned)), [src], out=tmp_path / "out", secret=SECRET
        )
    message = " ".join(str(caught.value).split())
    assert "020103" not in message and "'999999A999' is not mapped (shown by its shape" in message
    assert (
        "a digit written 9 and a letter A: a value read by patterns or extract may be an identity number) "
        "(1 row;" in message
    )
    assert "'Transferred' is not mapped (1 row; first records.csv row 2)" in message
    # Without patterns the value is the export's own word, named as written.
    with pytest.raises(MappingDataError) as plain:
        import_mapped(load_mapping(write_mapping(tmp_path / "p")), [src], out=tmp_path / "out", secret=SECRET)
    assert "'020103A002' is not mapped" in str(plain.value)


def test_values_beyond_those_listed_are_counted_not_dropped(tmp_path: Path) -> None:
    """24 different unmapped outcomes: the 20 most frequent are listed, and the other 4 are said, not lost."""
    rows = records_rows()
    for i, row in enumerate(rows):
        row[5] = f"Outcome {i:02d}"
    rows.append([*rows[-1][:5], "Outcome 23", *rows[-1][6:]])  # one of the last values twice
    rows[-1][0] = "2000999"
    src = tmp_path / "export"
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    with pytest.raises(MappingDataError) as caught:
        import_mapped(load_mapping(write_mapping(tmp_path)), [src], out=tmp_path / "out", secret=SECRET)
    message = str(caught.value)
    assert message.count("tables.registrations.columns.final_result: 'Outcome") == 20
    assert "; and 4 more values of this rule in 4 rows, not listed" in message  # Outcome 23 is listed first
    assert "24 problems" in message


def _refused_with_a_cell(tmp_path: Path, *, column: int, value: str) -> str:
    """The import's refusal, whitespace folded, of the records with row 7's ``column`` written ``value``."""
    rows = records_rows()
    rows[6][column] = value
    src = tmp_path / "export"
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    with pytest.raises(MappingDataError) as caught:
        _import(tmp_path, src=src)
    return " ".join(str(caught.value).split())


def test_an_unparsable_date_names_its_row(tmp_path: Path) -> None:
    said = _refused_with_a_cell(tmp_path, column=4, value="2023-09-01")
    column = "tables.registrations.columns.registration_day"
    assert f"{column}: '2023-09-01' is not a date in the format %d/%m/%Y" in said
    assert "(1 row; first records.csv row 7)" in said


def test_a_two_digit_year_under_percent_y_is_refused_not_read_as_the_year_25(tmp_path: Path) -> None:
    """A German university's review: an export re-saved by a spreadsheet as 01.04.25 was read under %Y
    as 1 April of the year 25, imported as valid, and the errors blamed the rows dated against it."""
    start = records_rows()[6][3]
    short = start[:-4] + start[-2:]  # the semester's start, 15/09/23
    said = _refused_with_a_cell(tmp_path, column=3, value=short)
    assert f"'{short}' is not a date in the format %d/%m/%Y" in said, said
    assert "one written with two, such as 25, takes %y (a column written both ways takes both formats" in said
    assert "first records.csv row 7" in said


def test_a_date_written_two_ways_in_one_column_takes_both_formats_tried_in_order(tmp_path: Path) -> None:
    """A Bangladeshi registry wrote 12/01/2024 and 12-Jan-24 in one column; the hint for %y broke the
    other 85% of rows, and only a replace per month read both."""
    rows = records_rows()
    written = rows[6][4]  # an enrolment date, dd/mm/yyyy
    day = date(int(written[6:]), int(written[3:5]), int(written[:2]))
    rows[6][4] = day.strftime("%d-%b-%y")
    src = tmp_path / "export"
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    rule = 'registration_day = { column = "enrolment_date", date = "%d/%m/%Y" }'
    assert rule in MAPPING
    both = MAPPING.replace(
        rule, 'registration_day = { column = "enrolment_date", date = ["%d/%m/%Y", "%d-%b-%y"] }'
    )
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", both)), src, tmp_path)
    plain = _import_with(
        load_mapping(write_mapping(tmp_path / "p")), write_extract(tmp_path / "e"), tmp_path / "x"
    )
    read = load_learning_data(out).registrations["registration_day"].tolist()
    assert read == load_learning_data(plain).registrations["registration_day"].tolist()  # the same days
    refused = MAPPING.replace(
        rule, 'registration_day = { column = "enrolment_date", date = ["iso", "%d/%m/%Y"] }'
    )
    with pytest.raises(MappingError, match="'iso' only alone"):
        load_mapping(write_mapping(tmp_path / "r", refused))


def test_a_report_with_a_preamble_is_read_from_its_header_with_skip_rows(tmp_path: Path) -> None:
    """Found on an online college's data: Zoom's attendee report opens with its meeting's details and
    a blank line, and had to be trimmed by hand before import. Rows are still numbered from the
    header, as the export's other files are."""
    rows = records_rows()
    rows[6][4] = "2023-09-01"
    src = tmp_path / "export"
    path = write_records(src, rows)
    wide = len(RECORDS_HEADER) + 2  # a preamble wider than the data, as Zoom's is: no sniffer skips it
    preamble = ";".join(f"Field {i}" for i in range(wide)) + "\n" + ";".join(["x"] * wide) + "\n\n"
    path.write_text(preamble + path.read_text(encoding="utf-8"), encoding="utf-8")
    write_clicks(src, click_rows(range(2)))
    skipping = MAPPING.replace('separator = ";"\n', 'separator = ";"\nskip_rows = 3\n', 1)
    with pytest.raises(MappingDataError) as caught:
        _import_with(load_mapping(write_mapping(tmp_path / "m", skipping)), src, tmp_path / "bad")
    assert "(1 row; first records.csv row 7)" in str(caught.value)
    with pytest.raises((MappingError, MappingDataError)) as plain:  # without it, the preamble is the header
        _import_with(load_mapping(write_mapping(tmp_path / "m", MAPPING)), src, tmp_path / "plain")
    assert "give the input skip_rows" in str(plain.value)
    rows[6][4] = records_rows()[6][4]
    path = write_records(src, rows)
    path.write_text(preamble + path.read_text(encoding="utf-8"), encoding="utf-8")
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", skipping)), src, tmp_path / "ok")
    expected = _import(tmp_path / "trimmed")
    for table in ("students", "registrations"):
        got = getattr(load_learning_data(out), table)
        assert got.equals(getattr(load_learning_data(expected), table)), table
    with pytest.raises(MappingError, match="skip_rows"):
        load_mapping(write_mapping(tmp_path / "m", skipping.replace("skip_rows = 3", "skip_rows = -1")))


def test_a_windows_1252_export_is_read_with_its_encoding_and_a_wrong_one_is_named_by_line(
    tmp_path: Path,
) -> None:
    """Found on a German university's data: HISinOne writes Windows-1252, which DuckDB's reader cannot
    decode; latin-1 passed umlauts and refused the first en dash with "File is not latin-1 encoded",
    and the default said only that the file was not UTF-8, beside a hint about skip_rows."""
    rows = records_rows()
    for row in rows:
        row[1] = row[1] + "-Ü"  # a module code with an umlaut
        row[7] = "Straße \u2013 Grundlagen"  # an ignored column holding an en dash (0x96 in Windows-1252)
    src = tmp_path / "export"
    path = write_records(src, rows)
    path.write_bytes(path.read_text(encoding="utf-8").encode("cp1252"))
    write_clicks(src, [[r[0], r[1] + "-Ü", *r[2:]] for r in click_rows(range(2))])
    (src / "clicks.csv").write_bytes((src / "clicks.csv").read_text(encoding="utf-8").encode("cp1252"))
    with pytest.raises(MappingError) as default:
        _import_with(load_mapping(write_mapping(tmp_path / "m", MAPPING)), src, tmp_path / "utf8")
    assert "cannot be read as utf-8" in str(default.value)
    assert "line 2: byte 0x" in str(default.value) and 'encoding = "cp1252"' in str(default.value)
    assert "skip_rows" not in str(default.value)
    latin = MAPPING.replace('separator = ";"\n', 'separator = ";"\nencoding = "latin-1"\n', 1)
    latin = latin.replace('files = ["clicks*.csv"]\n', 'files = ["clicks*.csv"]\nencoding = "latin-1"\n')
    with pytest.raises(MappingError) as wrong:
        _import_with(load_mapping(write_mapping(tmp_path / "m", latin)), src, tmp_path / "latin")
    assert "records.csv: cannot be read as latin-1: line 2: byte 0x96" in str(wrong.value)
    assert "Windows-1252" in str(wrong.value)
    out = _import_with(
        load_mapping(write_mapping(tmp_path / "m", latin.replace("latin-1", "cp1252"))), src, tmp_path / "ok"
    )
    data = load_learning_data(out)
    assert {m for m in data.registrations["module_id"]} == {c + "-Ü" for c in {r[1] for r in records_rows()}}
    assert int(data.activity["count"].sum()) == len(click_rows(range(2)))
    with pytest.raises(MappingError, match="unknown encoding 'cp9999'"):
        load_mapping(write_mapping(tmp_path / "m", latin.replace("latin-1", "cp9999")))
    with pytest.raises(MappingError, match="unknown encoding 'rot13'"):  # a codec, but not of text
        load_mapping(write_mapping(tmp_path / "m", latin.replace("latin-1", "rot13")))
    # Excel's "Unicode text" is UTF-16 with a byte-order mark: named as such, and read when given.
    for name in ("records.csv", "clicks.csv"):
        (src / name).write_bytes((src / name).read_bytes().decode("cp1252").encode("utf-16"))
    with pytest.raises(MappingError, match='byte-order mark: give the input encoding = "utf-16"'):
        _import_with(load_mapping(write_mapping(tmp_path / "m", MAPPING)), src, tmp_path / "u16")
    wide = latin.replace("latin-1", "utf-16")
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", wide)), src, tmp_path / "u16ok")
    assert set(load_learning_data(out).registrations["module_id"]) == {c + "-Ü" for c in COURSES}


def test_a_japanese_export_is_named_cp932_whatever_encoding_was_tried_first(tmp_path: Path) -> None:
    """A Japanese university's Shift_JIS records were said to be Windows-1252 ("byte 0x89 ... it would
    be '‰'"), then, given shift_jis, to fail on a kanji of a family name that only cp932 has."""
    rows = records_rows()
    for row in rows:
        row[7] = "髙橋、回答しない"  # ignored: a name only cp932 writes, the comma 0x81 41 (not cp1252), kana
    src = tmp_path / "export"
    path = write_records(src, rows)
    path.write_bytes(path.read_text(encoding="utf-8").encode("cp932"))
    write_clicks(src, click_rows(range(2)))
    said = {}
    for encoding in ("utf-8", "cp1252", "shift_jis"):
        given = MAPPING.replace('separator = ";"\n', f'separator = ";"\nencoding = "{encoding}"\n', 1)
        with pytest.raises(MappingError) as refused:
            _import_with(load_mapping(write_mapping(tmp_path / "m", given)), src, tmp_path / encoding)
        said[encoding] = str(refused.value)
    assert all('give the input encoding = "cp932"' in message for message in said.values()), said
    assert "Windows-1252" not in said["utf-8"] + said["cp1252"]
    given = MAPPING.replace('separator = ";"\n', 'separator = ";"\nencoding = "cp932"\n', 1)
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", given)), src, tmp_path / "ok")
    assert int(load_learning_data(out).activity["count"].sum()) == len(click_rows(range(2)))


def test_a_chinese_export_with_a_name_gbk_lacks_is_named_gb18030(tmp_path: Path) -> None:
    """A Chinese university's records, declared gbk, held a family name written in GB18030's four bytes
    (the \u36c3 of \u738b\u36c3): it was said to be Windows-1252."""
    rows = records_rows()
    for row in rows:
        row[7] = "\u738b\u36c3"  # ignored column: a name gbk cannot write
    src = tmp_path / "export"
    path = write_records(src, rows)
    path.write_bytes(path.read_text(encoding="utf-8").encode("gb18030"))
    write_clicks(src, click_rows(range(2)))
    given = MAPPING.replace('separator = ";"\n', 'separator = ";"\nencoding = "gbk"\n', 1)
    with pytest.raises(MappingError, match='give the input encoding = "gb18030"'):
        _import_with(load_mapping(write_mapping(tmp_path / "m", given)), src, tmp_path / "gbk")
    given = MAPPING.replace('separator = ";"\n', 'separator = ";"\nencoding = "gb18030"\n', 1)
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", given)), src, tmp_path / "ok")
    assert int(load_learning_data(out).activity["count"].sum()) == len(click_rows(range(2)))


def test_a_death_a_default_would_leave_not_known_yet_is_refused_naming_its_row(tmp_path: Path) -> None:
    """A value map's default (or a pattern) can empty an outcome the mapping does not list: the rows
    are checked too, not only the mapping's text (a reviewer's finding)."""
    rows = records_rows()
    rows[2][5] = "Deceased"
    src = tmp_path / "export"
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    defaulted = MAPPING.replace('Enrolled = "" } }', 'Enrolled = "" }, default = "" }')
    assert defaulted != MAPPING
    with pytest.raises(MappingDataError) as caught:
        _import_with(load_mapping(write_mapping(tmp_path / "m", defaulted)), src, tmp_path / "d")
    said = str(caught.value)
    assert "tables.registrations.columns.final_result: 'Deceased' is mapped to empty (not known yet)" in said
    assert "(1 row; first records.csv row 3)" in said


def test_a_student_number_with_an_invisible_direction_mark_is_refused_before_it_becomes_a_pseudonym(
    tmp_path: Path,
) -> None:
    """A student number an office export wrote with a right-to-left mark (U+200F) became a pseudonym no
    sign-in makes, and the contract's check of ids saw only the pseudonym (a reviewer's finding)."""
    rows = records_rows()
    rows[2][0] = rows[2][0] + "\u200f"
    src = tmp_path / "export"
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    with pytest.raises(MappingDataError) as caught:
        _import_with(load_mapping(write_mapping(tmp_path / "m", MAPPING)), src, tmp_path / "d")
    said = str(caught.value)
    assert "holds a control character or an invisible direction character" in said and "records.csv" in said
    assert rows[2][0] not in said  # a pseudonymised id is named by its shape, never as written


def test_ids_one_system_writes_with_a_prefix_read_as_the_others_with_strip_prefix(tmp_path: Path) -> None:
    """An art school's Moodle wrote "HS" + the student number, its records the number alone: the log's
    rows named no registration. With strip_prefix they join, and the folder is the same as without."""
    plain = _import(tmp_path / "plain")
    src = tmp_path / "export"
    write_records(src)
    rows = click_rows(range(4))
    write_clicks(src, [[f"HS{r[0]}" if i % 2 else r[0], *r[1:]] for i, r in enumerate(rows)])
    prefixed = MAPPING.replace(
        'student_id = "user"', 'student_id = { column = "user", strip_prefix = ["HS"] }'
    )
    assert prefixed != MAPPING
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", prefixed)), src, tmp_path / "stripped")
    assert load_learning_data(out).activity.equals(load_learning_data(plain).activity)
    with pytest.raises(ContractViolation, match="reference"):  # without it: ids nobody registered
        _import_with(load_mapping(write_mapping(tmp_path / "m2", MAPPING)), src, tmp_path / "kept")
    wrong = MAPPING.replace('timestamp = "iso" }', 'timestamp = "iso", strip_prefix = ["HS"] }')
    assert "tables.activity.columns.day: strip_prefix applies to ids only" in _mistakes(tomllib.loads(wrong))


def test_a_prefix_another_system_drops_is_put_back_and_case_comes_first(tmp_path: Path) -> None:
    """A Scottish university's records write s2012345, its VLE's tools S2012345 or 2012345: no rule could
    add the "s" (sign-in gives s2012345), and case, documented as first, ran after strip_prefix."""
    src, written = tmp_path / "export", tmp_path / "as-records"
    records = records_rows()
    write_records(written, [[f"s{r[0]}", *r[1:]] for r in records])
    write_clicks(written, [[f"s{r[0]}", *r[1:]] for r in click_rows(range(4))])
    as_records = _import_with(load_mapping(write_mapping(tmp_path / "m0", MAPPING)), written, tmp_path / "o0")
    write_records(src)
    write_clicks(src, [[f"S{r[0]}" if i % 2 else r[0], *r[1:]] for i, r in enumerate(click_rows(range(4)))])
    brought = MAPPING.replace(
        'student_id = "student_number"', 'student_id = { column = "student_number", prefix = "s" }'
    ).replace('student_id = "user"', 'student_id = { column = "user", case = "lower", prefix = "s" }')
    assert brought.count('prefix = "s"') == 4
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", brought)), src, tmp_path / "o")
    for table in ("students", "registrations", "activity"):
        assert getattr(load_learning_data(out), table).equals(getattr(load_learning_data(as_records), table))
    # case first: an upper-case prefix is stripped as the lower-case one it was made
    stripped = MAPPING.replace(
        'student_id = "user"', 'student_id = { column = "user", case = "lower", strip_prefix = ["s"] }'
    )
    out = _import_with(load_mapping(write_mapping(tmp_path / "m2", stripped)), src, tmp_path / "o2")
    assert load_learning_data(out).activity.equals(load_learning_data(_import(tmp_path / "plain")).activity)
    wrong = MAPPING.replace('timestamp = "iso" }', 'timestamp = "iso", prefix = "s" }')
    assert "tables.activity.columns.day: prefix applies to ids only" in _mistakes(tomllib.loads(wrong))


def test_rows_a_when_chain_passes_over_and_leaves_empty_are_named(tmp_path: Path) -> None:
    """A Scottish university read leavers' outcomes from the status (when) and others' from the grade
    (otherwise): a status written WITHDRAWN, in no when list, fell to the grade, empty, and its
    withdrawals became "not known yet" with exit 0. The report names such rows by the when column."""
    rows = records_rows()
    dropouts = [i for i, r in enumerate(rows) if r[5] == "Dropout"]
    rows[dropouts[0]][5] = "DROPOUT"
    src = tmp_path / "export"
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    plain = 'final_result = { column = "status", values = { Graduate = "pass", Dropout = "withdrawn", '
    chain = (
        'final_result = { column = "status", values = { Dropout = "withdrawn" }, when = { status = '
        '["Dropout"] }, otherwise = { column = "status", values = { Graduate = "pass", Enrolled = "" }, '
        'when = { status = ["Graduate", "Enrolled"] } } }'
    )
    chained = MAPPING.replace(plain + 'Enrolled = "" } }', chain)
    assert chained != MAPPING
    mapping = str(write_mapping(tmp_path / "m", chained))
    args = ["data", "import", "--mapping", mapping, str(src), "--out", str(tmp_path / "o"), "--dry-run"]
    result = CliRunner().invoke(app, args)
    said = " ".join(result.output.split())
    assert "final_result: left empty on rows no when of its rule names, by status: DROPOUT (1 row)" in said, (
        said
    )
    assert "Enrolled (" not in said  # named by a when, and left empty on purpose
    # Columns written with their input's name (needed once a join brings the same columns) are the same.
    qualified = chained.replace('column = "status"', 'column = "records.status"').replace(
        "when = { status =", 'when = { "records.status" ='
    )
    assert qualified.count("records.status") == 4
    mapping = str(write_mapping(tmp_path / "q", qualified))
    args = ["data", "import", "--mapping", mapping, str(src), "--out", str(tmp_path / "q-out"), "--dry-run"]
    said = " ".join(CliRunner().invoke(app, args).output.split())
    assert "final_result: left empty on rows no when of its rule names, by status: DROPOUT (1 row)" in said, (
        said
    )


def test_a_row_whose_presentation_is_unknown_is_named(tmp_path: Path) -> None:
    src = tmp_path / "export"
    write_records(src)
    write_clicks(
        src, [*click_rows(range(1)), [STUDENTS[0], "INF101", "2022S9", "2022-10-01T10:00:00Z", "quiz", "x"]]
    )
    with pytest.raises(MappingDataError) as caught:
        _import(tmp_path, src=src)
    assert "tables.activity: 'INF101 2022S9' names no presentation in the presentations table (1 row" in str(
        caught.value
    )


def _split_semester(folder: Path, rows: list[list[str]]) -> None:
    """The records extract with its semester in two columns, year and term, as many systems keep it."""
    folder.mkdir(parents=True, exist_ok=True)
    header = [*RECORDS_HEADER[:2], "year", "term", *RECORDS_HEADER[3:]]
    split = [[*r[:2], r[2][:4], r[2][4:], *r[3:]] for r in rows]
    lines = [";".join(header)] + [";".join(r) for r in split]
    (folder / "records.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


JOINED = MAPPING.replace(
    'presentation_id = "semester"\nstart_date',
    'presentation_id = { columns = ["year", "term"], joined_with = "" }\nstart_date',
).replace(
    'presentation_id = "semester"\nregistration_day',
    'presentation_id = { columns = ["year", "term"], joined_with = "" }\nregistration_day',
)


def test_an_id_is_built_from_several_columns_and_joins_the_activity_log(tmp_path: Path) -> None:
    assert JOINED.count('columns = ["year", "term"]') == 2
    src = tmp_path / "export"
    _split_semester(src, records_rows())
    write_clicks(src, click_rows(range(2)))
    import_mapped(
        load_mapping(write_mapping(tmp_path / "m", JOINED)), [src], out=tmp_path / "out", secret=SECRET
    )
    data = load_learning_data(tmp_path / "out")
    assert set(data.presentations["presentation_id"]) == {"2023S1", "2024S2"}
    assert set(data.registrations["presentation_id"]) == {"2023S1", "2024S2"}
    assert int(data.activity["count"].sum()) == len(click_rows(range(2)))


def test_an_id_missing_one_of_its_parts_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    rows = records_rows()
    rows[4][2] = "2023"  # the term is missing: the split row's term is empty
    src = tmp_path / "export"
    _split_semester(src, rows)
    write_clicks(src, click_rows(range(2)))
    mapping = load_mapping(write_mapping(tmp_path / "m", JOINED))
    with pytest.raises(MappingDataError) as caught:
        import_mapped(mapping, [src], out=tmp_path / "out", secret=SECRET)
    assert (
        "tables.registrations.columns.presentation_id: '2023' has an empty part (needs all of year, term) "
        "(1 row; first records.csv row 5)"
    ) in str(caught.value)
    assert not (tmp_path / "out").exists()


def _mistakes(data: dict[str, object]) -> str:
    with pytest.raises(MappingError) as caught:
        parse_mapping(data)
    return str(caught.value)


def _base() -> dict[str, object]:
    import tomllib

    return tomllib.loads(MAPPING)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda m: m["inputs"]["records"].update(sep=";"),
            "inputs.records.sep: not a field of the mapping schema",
        ),
        (
            lambda m: m["inputs"]["records"].update(format="xml"),
            "inputs.records.format: unknown format 'xml'",
        ),
        (lambda m: m.pop("version"), "version: required"),
        (  # an art school's trial: a student keyed as deceased was scored and listed for contact
            lambda m: m["tables"]["registrations"]["columns"]["final_result"]["values"].update(Deceased=""),
            "tables.registrations.columns.final_result: 'Deceased' is mapped to empty (not known yet)",
        ),
        (  # a Gulf university's records write a death in Arabic, a Québec one's in French
            lambda m: m["tables"]["registrations"]["columns"]["final_result"]["values"].update(
                {"\u0645\u062a\u0648\u0641\u0649": "", "D\u00e9c\u00e9d\u00e9": "withdrawn"}
            ),
            "final_result: '\u0645\u062a\u0648\u0641\u0649' is mapped to empty (not known yet)",
        ),
        (
            lambda m: m["tables"]["activity"]["columns"]["day"].update(value="1"),
            "tables.activity.columns.day: give exactly one of column, columns or value",
        ),
        (
            lambda m: m["tables"]["registrations"]["columns"].pop("unregistration_day"),
            "tables.registrations.columns: missing unregistration_day",
        ),
        (
            lambda m: m["tables"]["students"]["columns"].update(shoe_size="x"),
            "tables.students.columns.shoe_size",
        ),
        (
            lambda m: m["tables"]["students"].update({"from": "nowhere"}),
            "tables.students.from: no input called",
        ),
        (lambda m: m["tables"].update(grades=m["tables"]["students"]), "tables.grades: not a contract table"),
        (
            lambda m: m["tables"]["students"]["columns"].update(credits={"column": "c", "date": "%d/%m/%Y"}),
            "tables.students.columns.credits: date and timestamp convert only DATE columns, day columns "
            "(day, *_day) and length_days",
        ),
        (
            lambda m: m["tables"]["students"]["columns"].update(student_id={"columns": ["student_number"]}),
            "tables.students.columns.student_id: columns joins two or more source columns",
        ),
        (lambda m: m.update(timezone="Mars/Olympus"), "timezone: unknown time zone 'Mars/Olympus'"),
        (
            lambda m: m["pseudonymise"].update(columns=["name"]),
            "pseudonymise.columns: name: not an id column",
        ),
        (
            lambda m: m["tables"]["students"].update(aggregate="sum"),
            "tables.students.aggregate: only the activity",
        ),
    ],
)
def test_each_mapping_mistake_is_named_with_its_toml_path(change: object, expected: str) -> None:
    data = _base()
    change(data)  # type: ignore[operator]
    assert expected in _mistakes(data)


def test_a_column_the_export_lacks_is_named(tmp_path: Path) -> None:
    text = MAPPING.replace('credits = "credits_enrolled"', 'credits = "credit_points"')
    mapping = load_mapping(write_mapping(tmp_path, text))
    with pytest.raises(
        MappingError, match=r"tables\.students\.columns\.credits: no source column 'credit_points'"
    ):
        import_mapped(mapping, [write_extract(tmp_path / "export")], out=tmp_path / "out", secret=SECRET)


def test_dry_run_writes_nothing_and_reports_coverage(tmp_path: Path) -> None:
    rows = records_rows()
    rows[0][5] = "Transferred"
    src = tmp_path / "export"
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    (src / "notes.txt").write_text("not an export", encoding="utf-8")
    mapping_path = write_mapping(tmp_path, MAPPING.replace('ignore = ["admission_grade"]\n', ""))
    result = runner.invoke(
        app,
        [
            "data",
            "import",
            "--mapping",
            str(mapping_path),
            str(src),
            "--out",
            str(tmp_path / "out"),
            "--dry-run",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 1, result.output  # as the import would: a script can test with it
    coverage = json.loads(result.stdout)["coverage"]
    assert not (tmp_path / "out").exists()
    assert coverage["ok"] is False
    issue = coverage["tables"]["registrations"]["issues"][0]
    assert (issue["value"], issue["count"]) == ("Transferred", 1)
    assert coverage["tables"]["presentations"]["rows_out"] == 4
    assert coverage["unused_columns"]["records"] == ["admission_grade"]
    assert coverage["unused_files"][0].endswith("notes.txt")


def test_the_command_refuses_a_bad_mapping_and_broken_data_with_nothing_written(tmp_path: Path) -> None:
    src = write_extract(tmp_path / "export")
    bad = write_mapping(tmp_path / "bad", MAPPING.replace("version = 1", "version = 2"))
    secret = write_secret(tmp_path)
    args = [str(src), "--out", str(tmp_path / "out"), "--secret-file", str(secret)]
    result = runner.invoke(app, ["data", "import", "--mapping", str(bad), *args])
    assert result.exit_code == 2
    assert "version" in result.output
    rows = records_rows()
    rows[2][5] = "Transferred"
    write_records(src, rows)
    good = write_mapping(tmp_path / "good")
    result = runner.invoke(app, ["data", "import", "--mapping", str(good), *args])
    assert result.exit_code == 1
    assert "'Transferred' is not mapped" in result.output
    assert "the exports do not fit the mapping" in result.output
    assert not (tmp_path / "out").exists()
    # A dry run exits as the import would (an institution's script read 0 as fit to import).
    dry = runner.invoke(app, ["data", "import", "--mapping", str(good), *args, "--dry-run"])
    assert dry.exit_code == 1 and "'Transferred' is not mapped" in dry.output
    assert "a dry run writes nothing" in dry.output and not (tmp_path / "out").exists()
    write_records(src)
    result = runner.invoke(app, ["data", "import", "--mapping", str(good), *args])
    assert result.exit_code == 0, result.output
    assert validate_folder(tmp_path / "out").ok


def test_a_short_secret_is_refused(tmp_path: Path) -> None:
    src = write_extract(tmp_path / "export")
    short = write_secret(tmp_path, "too short")
    result = runner.invoke(
        app,
        [
            "data",
            "import",
            "--mapping",
            str(write_mapping(tmp_path)),
            str(src),
            "--out",
            str(tmp_path / "out"),
            "--secret-file",
            str(short),
        ],
    )
    assert result.exit_code == 2
    assert "shorter than 32 bytes" in result.output


def test_generated_sql_quotes_odd_names_and_values(tmp_path: Path) -> None:
    src = tmp_path / "export"
    write_records(src)
    path = write_clicks(src, click_rows(range(1)))
    path.write_text(path.read_text(encoding="utf-8").replace("tool", 'to"ol'), encoding="utf-8")
    text = MAPPING.replace(
        'column = "tool", values = { forum = "forum", quiz = "quiz" }',
        'column = \'to"ol\', values = { "it\'s" = "x\'); DROP TABLE t; --", forum = "forum" }',
    )
    mapping = load_mapping(write_mapping(tmp_path, text))
    data = load_learning_data(_import_with(mapping, src, tmp_path))
    assert set(data.activity["activity_type"]) <= {"forum", "quiz", "page"}


def _import_with(mapping: object, src: Path, tmp_path: Path) -> Path:
    import_mapped(mapping, [src], out=tmp_path / "out", secret=SECRET)  # type: ignore[arg-type]
    return tmp_path / "out"


def test_the_output_is_in_the_contract_types(tmp_path: Path) -> None:
    out = _import(tmp_path)
    described = duckdb.connect().execute(f"DESCRIBE SELECT * FROM '{out}/registrations.parquet'").fetchall()
    types = {row[0]: row[1] for row in described}
    assert types["registration_day"] == "BIGINT"
    assert types["student_id"] == "VARCHAR"


def test_the_example_in_the_mapping_reference_is_the_tested_mapping() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "mapping.md").read_text(encoding="utf-8")
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    assert parse_mapping(_toml(example)) == parse_mapping(_toml(MAPPING))


def _toml(text: str) -> dict[str, object]:
    import tomllib

    data = tomllib.loads(text)
    data.pop("description", None)
    return data


def test_a_mapping_declares_a_new_source_with_its_notice_date_and_an_append_keeps_it(tmp_path: Path) -> None:
    declared = MAPPING.replace('source = { value = "vle" }', 'source = { value = "kiosk" }').replace(
        'vle = "the learning platform (Moodle)"',
        'kiosk = { label = "the library kiosk", notice_given_on = 2023-09-01, counts_as = "library" }',
    )
    src = write_extract(tmp_path / "export")
    import_mapped(
        load_mapping(write_mapping(tmp_path / "m1", declared)), [src], out=tmp_path / "out", secret=SECRET
    )
    rows = (tmp_path / "out" / "sources.csv").read_text(encoding="utf-8").splitlines()
    assert rows == ["source,label,notice_given_on,counts_as", "kiosk,the library kiosk,2023-09-01,library"]
    activity = load_learning_data(tmp_path / "out").activity
    assert int(activity["count"].sum()) == len(click_rows(range(4)))
    assert set(activity["source"]) == {"library"}  # read as the built-in source it counts as
    # A later import whose mapping only names the source keeps the notice and kind the folder records.
    relabelled = declared.replace(
        'kiosk = { label = "the library kiosk", notice_given_on = 2023-09-01, counts_as = "library" }',
        'kiosk = "the kiosk"',
    )
    assert relabelled != declared
    more = write_extract(tmp_path / "export2", weeks=range(4, 6))
    mapping = load_mapping(write_mapping(tmp_path / "m2", relabelled))
    dry = import_mapped(mapping, [more], out=tmp_path / "out", secret=SECRET, append=True, dry_run=True)
    assert len(dry.notes) == 1  # said before anything is renamed
    result = import_mapped(mapping, [more], out=tmp_path / "out", secret=SECRET, append=True)
    rows = (tmp_path / "out" / "sources.csv").read_text(encoding="utf-8").splitlines()
    assert rows[1] == "kiosk,the kiosk,2023-09-01,library"
    # The new name is said, since it names the earlier rows too (an art school's Moodle autumn read
    # as Canvas once a January extract was appended under the same source and another label).
    (said,) = result.notes
    assert said.startswith("Source 'kiosk' was named 'the library kiosk' and is now 'the kiosk'")
    again = import_mapped(mapping, [more], out=tmp_path / "out", secret=SECRET, append=True)
    assert again.notes == ()


def test_a_mapping_that_names_a_new_source_without_notice_imports_but_its_activity_is_not_used(
    tmp_path: Path,
) -> None:
    undeclared = MAPPING.replace('source = { value = "vle" }', 'source = { value = "kiosk" }').replace(
        'vle = "the learning platform (Moodle)"', 'kiosk = "the library kiosk"'
    )
    src = write_extract(tmp_path / "export")
    import_mapped(
        load_mapping(write_mapping(tmp_path / "m", undeclared)), [src], out=tmp_path / "out", secret=SECRET
    )
    report = validate_folder(tmp_path / "out")
    assert report.ok
    (warning,) = [w for w in report.warnings if w.rule == "source_not_used"]
    assert "'kiosk'" in warning.message and "not declared" in warning.message
    assert load_learning_data(tmp_path / "out").activity.empty


def test_a_mapping_whose_categories_name_a_sensitive_topic_is_refused_before_publishing(
    tmp_path: Path,
) -> None:
    sensitive = MAPPING.replace(
        'values = { forum = "forum", quiz = "quiz" }', 'values = { forum = "wellbeing_forum", quiz = "quiz" }'
    )
    assert sensitive != MAPPING
    src = write_extract(tmp_path / "export")
    with pytest.raises(ContractViolation, match="wellbeing_forum"):
        import_mapped(
            load_mapping(write_mapping(tmp_path / "m", sensitive)), [src], out=tmp_path / "out", secret=SECRET
        )
    assert (
        not (tmp_path / "out" / "activity.parquet").exists()
        and not (tmp_path / "out" / "activity.csv").exists()
    )


def test_a_join_that_repeats_rows_is_said_with_its_likely_cause() -> None:
    # Library loans per student joined to enrolments: each loan repeated for every module taken.
    from waymark.training.ingest.mapping.coverage import Coverage, TableCoverage

    repeated = TableCoverage(
        "activity", rows_in=69_891, rows_joined=580_722, rows_out=580_722, rows_matched=69_891
    )
    text = Coverage("library.toml", inputs={}, tables={"activity": repeated}).to_text()
    assert "the join made 580,722 rows of the 69,891 rows it kept (8.3 per row)" in text
    assert "repeats every row for each module" in text and "matched nothing" not in text
    assert "within_presentation = true" in text
    # A Polish university's one row per sitting, folded back by duplicates as the resits recipe does:
    # "rows that matched" beside "6,538 of 8,930 matched", and the library loans' advice, said nothing true.
    sittings = TableCoverage(
        "registrations", rows_in=8_930, rows_joined=10_196, rows_out=8_930, rows_matched=8_930,
        folded="rows sharing a key are kept once, the last by order_by",
    )  # fmt: skip
    said = Coverage("usos.toml", inputs={}, tables={"registrations": sittings}).to_text()
    assert (
        "the join made 10,196 rows of the 8,930 rows it kept" in said and "duplicates rule kept one" in said
    )
    assert "library" not in said and "1,266 fewer out than the join made: rows sharing a key" in said
    # An option of activity only is not offered for another table (an Israeli university's leaves joined
    # to the enrolments of every term were told to give registrations within_presentation).
    leaves = TableCoverage(
        "registrations", rows_in=9_000, rows_joined=11_274, rows_out=11_274, rows_matched=9_000
    )
    said = Coverage("records.toml", inputs={}, tables={"registrations": leaves}).to_text()
    assert "within_presentation" not in said and "export it per term and join on the term too" in said
    plain = TableCoverage("activity", rows_in=100, rows_joined=90, rows_out=90, rows_matched=90)
    said = Coverage("m.toml", inputs={}, tables={"activity": plain}).to_text()
    assert "10 matched nothing in the join and were dropped" in said and "the join made" not in said


MERGED_SHELL = """\
version = 1
name = "merged"
timezone = "America/New_York"
empty = ["assessments", "assessment_results"]
[inputs.pres]
files = ["pres.csv"]
[inputs.regs]
files = ["regs.csv"]
[inputs.log]
files = ["log.csv"]
[inputs.users]
files = ["users.csv"]
[inputs.courses]
files = ["course_map.csv"]
[tables.presentations]
from = "pres"
[tables.presentations.columns]
module_id = "module_id"
presentation_id = "presentation_id"
start_date = { column = "start_date", date = "iso" }
length_days = { column = "end", date = "iso" }
[tables.students]
from = "regs"
ignore = ["module_id", "presentation_id"]
[tables.students.columns]
student_id = "sid"
[tables.registrations]
from = "regs"
[tables.registrations.columns]
student_id = "sid"
module_id = "module_id"
presentation_id = "presentation_id"
registration_day = { value = "" }
unregistration_day = { value = "" }
final_result = { value = "" }
[tables.activity]
from = "log"
join = [
  { input = "users", on = { user_pk1 = "pk1" } },
  { input = "courses", on = { course_pk1 = "course_pk1" } },
]
aggregate = "AGGREGATE"
ignore = ["user_pk1", "course_pk1", "crn"]
[tables.activity.columns]
student_id = "student_id"
module_id = "module_id"
presentation_id = "presentation_id"
day = { column = "timestamp", timestamp = "iso" }
source = { value = "vle" }
activity_type = { value = "resource" }
"""


@pytest.mark.parametrize("aggregate", ["count", "sum"])
def test_an_event_a_merged_course_shell_copies_to_each_section_counts_once(
    tmp_path: Path, aggregate: str
) -> None:
    """A US university's Blackboard shell merged for three sections (CRNs), joined to a crosswalk with a row
    per section: each event was counted three times (BIOL 1010's 57,746 events imported as 166,728), and
    the report said the copies had been folded back. Copies on the same key count once; copies onto
    different modules (a library visit to each module taken) still count on each."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "pres.csv").write_text(
        "module_id,presentation_id,start_date,end\nBIOL1010,F25,2025-08-25,2025-12-14\n"
        "CHEM1110,F25,2025-08-25,2025-12-14\n"
    )
    (src / "regs.csv").write_text(
        "sid,module_id,presentation_id\nG1,BIOL1010,F25\nG2,BIOL1010,F25\nG1,CHEM1110,F25\n"
    )
    (src / "log.csv").write_text(
        "user_pk1,course_pk1,timestamp,count\n9001,501,2025-09-01 10:00:00,1\n"
        "9001,501,2025-09-01 11:00:00,1\n9002,501,2025-09-02 10:00:00,1\n9001,777,2025-09-03 10:00:00,1\n"
    )
    (src / "users.csv").write_text("pk1,student_id\n9001,G1\n9002,G2\n")
    (src / "course_map.csv").write_text(
        "course_pk1,crn,module_id,presentation_id\n501,10001,BIOL1010,F25\n501,10002,BIOL1010,F25\n"
        "501,10003,BIOL1010,F25\n777,1,BIOL1010,F25\n777,2,CHEM1110,F25\n"
    )
    text = MERGED_SHELL.replace("AGGREGATE", aggregate)
    if aggregate == "sum":  # the log's own count column, added up
        text = text.replace('value = "resource" }', 'value = "resource" }\ncount = "count"')
    else:
        text = text.replace('"crn"]', '"crn", "count"]')
    mapping = load_mapping(write_mapping(tmp_path / "m", text))
    result = import_mapped(mapping, [src], out=tmp_path / "out", secret=None)
    activity = load_learning_data(tmp_path / "out").activity
    counts = activity.groupby(["student_id", "module_id", "day"])["count"].sum().to_dict()
    assert counts == {("G1", "BIOL1010", 7): 2, ("G2", "BIOL1010", 8): 1, ("G1", "BIOL1010", 9): 1,
                      ("G1", "CHEM1110", 9): 1}  # fmt: skip
    said = result.coverage.to_text()
    assert "6 copies the join made of a row on the same student, presentation, day" in said, said
    assert "the join made 5 rows of the 4 rows it kept (1.2 per row besides those)" in said, said
    assert "duplicates rule kept one" not in said


def test_a_join_emptied_by_its_filter_is_blamed_not_the_join_that_matches_as_written() -> None:
    """A Finnish university's participants list, kept by role "Student" where its Moodle wrote
    "Opiskelija", kept nobody: the course map, which matched every row as written, was blamed, with
    1,463 rows said to match "with case ... ignored"."""
    from waymark.training.ingest.mapping.coverage import _nothing_joined
    from waymark.training.ingest.mapping.schema import JoinSpec, TableSpec

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE wm_in_logs AS SELECT 'FYSI1001' AS course, 'Aino Heikkinen' AS person FROM range(3)"
    )
    con.execute("CREATE TABLE wm_in_courses AS SELECT 'FYSI1001' AS course, '2024-I' AS term")
    con.execute("CREATE TABLE wm_in_people AS SELECT 'Aino Heikkinen' AS person, '0681609' AS number LIMIT 0")
    joins = [
        JoinSpec(input="courses", on={"course": "course"}),
        JoinSpec(input="people", on={"person": "person"}),
    ]
    spec = TableSpec.model_validate({"from": "logs", "join": joins, "columns": {}})
    [issue] = _nothing_joined(con, spec, table="activity", rows=3, first="logs.csv row 2", examples=())
    assert issue.where == "tables.activity.join[1]", issue
    assert "people has no rows to match (its files hold none, or its keep and drop left none" in (
        " ".join(issue.text().split())
    ), issue.text()
    # A join keeping unmatched rows to an input with none this time (no interruption this term) is fine.
    optional = JoinSpec(input="people", on={"person": "person"}, keep_unmatched=True)
    kept = TableSpec.model_validate({"from": "logs", "join": [joins[0], optional], "columns": {}})
    assert _nothing_joined(con, kept, table="activity", rows=3, first="", examples=(), only=1) == []
    # With people listed, the join that matches as written is never blamed, whatever the other does.
    con.execute("INSERT INTO wm_in_people VALUES ('AINO HEIKKINEN', '0681609')")
    [loose] = _nothing_joined(con, spec, table="activity", rows=3, first="logs.csv row 2", examples=())
    assert loose.where == "tables.activity.join[1]" and "would match with case" in loose.text()


def test_a_join_that_drops_most_rows_and_repeats_the_rest_says_both() -> None:
    """Another institution's loans: ids in upper case in one system, mixed in the other. 80% matched
    nobody and the rest were copied about three times, so fewer rows came out than went in and the
    dry run said only "5,664 dropped by the join"."""
    from waymark.training.ingest.mapping.coverage import Coverage, TableCoverage, _matched

    con = duckdb.connect()
    con.execute("CREATE TABLE wm_in_loans AS SELECT 'loans.csv' AS _file, range + 1 AS _row FROM range(10)")
    # rows 3 and 7 matched three enrolments each; the other eight matched none
    con.execute(
        "CREATE TABLE wm_a_activity AS SELECT 'loans.csv' AS _file, r AS _row "
        "FROM (VALUES (3), (3), (3), (7), (7), (7)) t(r)"
    )
    matched, first = _matched(con, "activity", source="loans")
    assert (matched, first) == (2, "loans.csv row 1")
    table = TableCoverage(
        "activity", rows_in=10, rows_joined=6, rows_out=6, rows_matched=matched, first_unmatched=first
    )
    text = Coverage("library.toml", inputs={}, tables={"activity": table}).to_text()
    assert "10 rows in, 8 matched nothing in the join and were dropped, 6 rows out" in text
    assert "80% of the rows in matched no row of a joined input (first: loans.csv row 1)" in text
    assert "the join made 6 rows of the 2 rows it kept (3.0 per row)" in text


def test_a_row_with_no_order_by_value_beside_rows_with_one_is_refused_not_silently_lost(
    tmp_path: Path,
) -> None:
    """A Spanish university kept the last sitting by its act date: July's results, graded but not yet
    dated, lost to January's fail, and 647 passes became fails without a word."""
    src = tmp_path / "export"
    rows = records_rows()
    later = next(i for i, r in enumerate(rows) if r[2] == "2024S2")  # a student's second row
    rows[later][7] = ""  # its admission_grade, the order_by below, left empty
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    ordered = MAPPING.replace(
        'order_by = { column = "semester_start", date = "%d/%m/%Y" }', 'order_by = "admission_grade"'
    )
    assert ordered != MAPPING
    with pytest.raises(MappingDataError) as refused:
        _import_with(load_mapping(write_mapping(tmp_path / "m", ordered)), src, tmp_path / "out")
    said = str(refused.value)
    # by its shape: a pseudonymised id is never printed (a Colombian university's national id numbers)
    written = shape(rows[later][0])
    assert f"tables.students: '{written}' is the student_id of rows some of which have no " in said
    assert rows[later][0] not in said
    assert "'admission_grade' to order them by: which is last cannot be told" in said
    assert "records.csv row" in said
    rows[later][7] = "150.0"  # every row ordered: imported as before
    write_records(src, rows)
    _import_with(load_mapping(write_mapping(tmp_path / "m", ordered)), src, tmp_path / "ok")


def test_an_order_by_holding_numbers_is_compared_as_numbers(tmp_path: Path) -> None:
    """A US university's grade history kept "last" by its sequence number as text: "10" sorted before
    "9", and an older grade was kept for every student with ten changes or more."""
    src = tmp_path / "export"
    rows = [r for r in records_rows() if r[0] == STUDENTS[0]]
    assert len(rows) == 2
    rows[0][6], rows[0][7] = "30.0", "10"  # credits 30 on the row whose order is 10 (the later)
    rows[1][6], rows[1][7] = "36.0", "9"
    write_records(src, rows + [r for r in records_rows() if r[0] != STUDENTS[0]])
    write_clicks(src, click_rows(range(2)))
    ordered = MAPPING.replace(
        'order_by = { column = "semester_start", date = "%d/%m/%Y" }', 'order_by = "admission_grade"'
    ).replace('[pseudonymise]\ncolumns = ["student_id"]\n', "")
    import_mapped(load_mapping(write_mapping(tmp_path / "m", ordered)), [src], out=tmp_path / "out")
    credits = load_learning_data(tmp_path / "out").students.set_index("student_id")["credits"]
    assert credits[STUDENTS[0]] == 30  # the row ordered 10, after 9


def test_rows_that_differ_but_share_their_order_by_value_are_said_to_be_chosen_by_file_order(
    tmp_path: Path,
) -> None:
    """A US university's lecture and lab rows of one registration, registered the same day: kept "last"
    by registration date, the extract's order chose the lab row without its grade for 384 of a
    course's 822 students."""
    src = tmp_path / "export"
    rows = records_rows()
    first = rows[0]
    rows.append([*first[:6], "99.0", *first[7:]])  # the same student and semester, other credits
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    dry = import_mapped(
        load_mapping(write_mapping(tmp_path / "m")), [src], out=tmp_path / "o", secret=SECRET, dry_run=True
    )
    said = dry.coverage.to_text()
    assert "2 rows share their student_id and their 'semester_start' with a row that differs" in said
    assert f"(first: '{shape(first[0])}', records.csv row 1)" in said and "the input's drop" in said
    # the rows that are not the record left out: nothing said
    dropping = MAPPING.replace('separator = ";"', 'separator = ";"\ndrop = { credits_enrolled = ["99.0"] }')
    assert dropping != MAPPING
    quiet = import_mapped(
        load_mapping(write_mapping(tmp_path / "m2", dropping)),
        [src],
        out=tmp_path / "o2",
        secret=SECRET,
        dry_run=True,
    )
    assert "share their student_id" not in quiet.coverage.to_text()


def test_rows_folded_on_the_way_out_are_said_with_the_rule_that_folded_them(tmp_path: Path) -> None:
    # Resubmissions kept once by duplicates = "last": 41,147 rows in, 39,887 out, and why.
    from waymark.training.ingest.mapping.coverage import Coverage, TableCoverage

    kept = TableCoverage(
        "assessment_results",
        rows_in=41_147,
        rows_joined=41_147,
        rows_out=39_887,
        folded='rows sharing a key are kept once, the last by order_by (duplicates = "last")',
    )
    text = Coverage("records.toml", inputs={}, tables={"assessment_results": kept}).to_text()
    assert (
        '1,260 fewer out: rows sharing a key are kept once, the last by order_by (duplicates = "last")'
        in text
    )
    # From a real import: the activity log's rule is said, and nothing where no row was folded.
    src = write_extract(tmp_path / "export")
    mapping = load_mapping(write_mapping(tmp_path, MAPPING))
    result = import_mapped(mapping, [src], out=tmp_path / "out", secret=SECRET)
    activity = result.coverage.tables["activity"]
    assert "added up into one daily count" in activity.folded
    folded = [t for t in result.coverage.tables.values() if t.rows_out < t.rows_joined]
    assert result.coverage.to_text().count("fewer out:") == len([t for t in folded if t.folded])


def test_a_key_shared_by_rows_that_differ_is_named_as_the_export_wrote_it(tmp_path: Path) -> None:
    """Two enrolment rows for one student, module and presentation with different outcomes: named by
    the raw student number (not its pseudonym) and both rows of the export, as a duplicate key."""
    rows = records_rows()
    twin = list(rows[1])
    twin[5] = next(r[5] for r in rows if r[5] != rows[1][5])
    rows.insert(4, twin)  # records.csv row 5, beside row 2
    src = tmp_path / "export"
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    with pytest.raises(MappingDataError) as caught:
        _import(tmp_path, src=src)
    message = str(caught.value)
    said = next(line for line in message.splitlines() if "duplicate key" in line)
    assert said.strip().startswith(f"tables.registrations: '{shape(rows[1][0])} ")  # pseudonymised: its shape
    assert "also records.csv row 5" in said and "first records.csv row 2" in said
    assert "(2 rows; first records.csv row 2)" in said and "keys shared by rows that differ" in message


def test_numbers_with_a_decimal_comma_are_read_and_a_mixed_one_is_refused(tmp_path: Path) -> None:
    rows = records_rows()
    for row in rows:
        row[6] = row[6].replace(".", ",")  # credits as a spreadsheet in Portugal writes them: "30,0"
    src = tmp_path / "export"
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    comma = MAPPING.replace(
        'credits = "credits_enrolled"', 'credits = { column = "credits_enrolled", decimal_comma = true }'
    )
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", comma)), src, tmp_path / "ok")
    assert sorted(set(load_learning_data(out).students["credits"].astype(int))) == [30, 36]
    # without the rule, the refusal names it (a Chilean university's grades of 5,5)
    with pytest.raises(MappingDataError, match="written with a decimal comma: give the rule decimal_comma"):
        _import_with(load_mapping(write_mapping(tmp_path / "m", MAPPING)), src, tmp_path / "plain")
    rows[3][6] = "1.030,0"
    rows[5][6] = "1.030"  # a point in a decimal-comma export separates thousands: not read as 1.03
    write_records(src, rows)
    with pytest.raises(MappingDataError) as refused:
        _import_with(load_mapping(write_mapping(tmp_path / "m", comma)), src, tmp_path / "mixed")
    assert "'1.030,0' is not a number (1 row; first records.csv row 4)" in str(refused.value)
    assert "'1.030' is not a number (1 row; first records.csv row 6)" in str(refused.value)


def test_a_separator_ending_every_line_is_named_as_the_cause_of_its_unnamed_column(tmp_path: Path) -> None:
    """A university's cp1252 exports ended every row with ';': "columns neither used nor ignored: column16"
    was said of every table without saying where it came from."""
    src = write_extract(tmp_path / "export")
    records = src / "records.csv"
    records.write_text(
        "".join(line + ";\n" for line in records.read_text(encoding="utf-8").splitlines()), encoding="utf-8"
    )
    args = ["data", "import", "--mapping", str(write_mapping(tmp_path / "m")), str(src)]
    said = runner.invoke(app, [*args, "--out", str(tmp_path / "o"), "--dry-run"]).output
    assert "columns neither used nor ignored: column9" in said
    assert "a separator at the end of every line makes one; list it under ignore" in said


def test_a_presentations_length_is_counted_from_its_last_day(tmp_path: Path) -> None:
    """Two institutions' records gave each teaching period's start and end dates, not its length:
    `length_days = { column = ..., date = ... }` counts it from start_date, both days included."""
    from datetime import timedelta

    import pandas as pd

    src = write_extract(tmp_path / "export")
    records = pd.read_csv(src / "records.csv", sep=";", dtype=str)
    start = pd.to_datetime(records["semester_start"], format="%d/%m/%Y")
    end = start + timedelta(days=139)  # a 140-day semester, as the constant the mapping gave before
    end = end.where(records["course_code"] != "INF101", start + timedelta(days=109))
    records.assign(semester_end=end.dt.strftime("%d/%m/%Y")).to_csv(src / "records.csv", sep=";", index=False)
    ended = MAPPING.replace(
        "length_days = { value = 140 }", 'length_days = { column = "semester_end", date = "%d/%m/%Y" }'
    )
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", ended)), src, tmp_path / "ok")
    lengths = load_learning_data(out).presentations.set_index("module_id")["length_days"]
    assert set(lengths.drop("INF101")) == {140} and set(lengths.loc[["INF101"]]) == {110}
    # Another number column still takes no date.
    with pytest.raises(MappingError, match="date and timestamp convert only DATE columns"):
        load_mapping(write_mapping(tmp_path / "c", MAPPING.replace(
            'credits = "credits_enrolled"', 'credits = { column = "credits_enrolled", date = "%d/%m/%Y" }'
        )))  # fmt: skip


def test_a_number_out_of_another_columns_maximum_is_written_as_a_percentage(tmp_path: Path) -> None:
    """A gradebook's points out of points possible (here credits out of the admission grade's 150, the
    one other number the fixture has): 30 of 150 is 20. A row with no usable maximum is named."""
    rows = records_rows()
    src = tmp_path / "export"
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    out_of = MAPPING.replace(
        'credits = "credits_enrolled"',
        'credits = { column = "credits_enrolled", out_of = "admission_grade" }',
    )
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", out_of)), src, tmp_path / "ok")
    credits = load_learning_data(out).students["credits"]
    assert sorted(set(credits.astype(int))) == [20, 24]  # 30 and 36 of 150
    # Credits take parts (7.5 ECTS): 30 of 140 is 21.43 and 36 of 140 is 25.71, written as they are.
    rows_140 = [[*r[:7], "140.0", *r[8:]] for r in rows]
    write_records(src, rows_140)
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", out_of)), src, tmp_path / "round")
    shares = sorted(set(load_learning_data(out).students["credits"].round(2)))
    assert shares == [21.43, 25.71]
    # With decimal commas, the maximum is read as the mark is ("18,0" out of "20,0" had no maximum).
    write_records(src, [[*r[:6], r[6].replace(".", ","), r[7].replace(".", ","), *r[8:]] for r in rows_140])
    commas = out_of.replace('out_of = "admission_grade"', 'out_of = "admission_grade", decimal_comma = true')
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", commas)), src, tmp_path / "commas")
    assert sorted(set(load_learning_data(out).students["credits"].round(2))) == [21.43, 25.71]
    rows[3][7], rows[5][7] = "0", ""
    write_records(src, rows)
    with pytest.raises(MappingDataError) as refused:
        _import_with(load_mapping(write_mapping(tmp_path / "m", out_of)), src, tmp_path / "no-maximum")
    said = str(refused.value)
    assert "has no maximum to be out of (admission_grade is empty, 0 or not a number)" in said
    assert "first records.csv row 4" in said and "first records.csv row 6" in said
    with pytest.raises(MappingError, match="out_of applies to numbers only"):
        load_mapping(write_mapping(tmp_path / "t", MAPPING.replace(
            'nationality = "nationality"',
            'nationality = { column = "nationality", out_of = "admission_grade" }',
        )))  # fmt: skip


def test_a_pass_or_fail_result_mapped_to_a_percentage_is_not_divided_by_a_maximum(tmp_path: Path) -> None:
    """An institution's hurdles are marked SY or FL, out of a weight of 0: mapped to 100 and 0, they were
    divided by the weight (and refused where it was 0). A mapped value is already a percentage."""
    rows = records_rows()
    rows[3][6], rows[3][7] = "SY", "0"  # a satisfied hurdle worth nothing
    rows[5][6] = "FL"  # a failed one, beside a maximum of 150
    credits = _credits_mapped(
        tmp_path, rows, 'values = { SY = "100", FL = "0" }, keep_unmapped = true, out_of = "admission_grade"'
    )
    # SY 100 and FL 0 as mapped (SY's maximum of 0 refused nothing); 30 and 36 still out of 150
    assert sorted(set(credits)) == [0, 20, 24, 100]


def _credits_mapped(tmp_path: Path, rows: list[list[str]], spec: str) -> list[int]:
    """The students' credits as imported from ``rows`` with ``credits = { column = ..., <spec> }``."""
    src = tmp_path / "export"
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    text = MAPPING.replace(
        'credits = "credits_enrolled"', f'credits = {{ column = "credits_enrolled", {spec} }}'
    )
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", text)), src, tmp_path / "ok")
    return [int(c) for c in load_learning_data(out).students["credits"]]


def test_multiply_scales_numbers_but_not_a_value_the_value_map_gives(tmp_path: Path) -> None:
    """Found on a German university's data: a pass/fail "bestanden" mapped to 100 beside grades
    multiplied by 20 became 2,000 and was refused as above 100. As with out_of, a mapped value is
    already in the contract's unit."""
    rows = records_rows()
    rows[3][6] = "SY"
    credits = _credits_mapped(tmp_path, rows, 'values = { SY = "100" }, keep_unmapped = true, multiply = 2')
    assert sorted(set(credits)) == [60, 72, 100]  # 30 and 36 doubled; SY as mapped


def test_a_refused_value_a_rule_converted_is_named_as_the_export_wrote_it(tmp_path: Path) -> None:
    """A Colombian university's corte typed 35 and multiplied to a percentage was refused as "value
    700.0", a number nobody had typed or could search the export for. Here credits multiplied by 30:
    36 becomes 1,080, above the contract's 1,000, and is named as written and as read; a value the
    rule leaves as it was is named once."""
    rows = records_rows()
    src = tmp_path / "export"
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    rule = 'credits = { column = "credits_enrolled", multiply = 30 }'
    text = MAPPING.replace('credits = "credits_enrolled"', rule)
    with pytest.raises(ContractViolation) as refused:
        _import_with(load_mapping(write_mapping(tmp_path / "m", text)), src, tmp_path / "times-30")
    said = str(refused.value)
    assert "value '36.0' in the export, read as '1080.0'" in said, said
    assert "value '1080.0'" not in said
    rows[1][6] = "1200"  # written so: no rule changed it
    write_records(src, rows)
    with pytest.raises(ContractViolation) as refused:
        _import_with(load_mapping(write_mapping(tmp_path / "m")), src, tmp_path / "as-written")
    said = str(refused.value)
    assert "value '1200.0'" in said and "in the export, read as" not in said, said


def test_a_column_read_only_when_another_holds_given_values(tmp_path: Path) -> None:
    """Found on a German university's data: HISinOne's one status date is the exam day for a pass or a
    fail and the leaving day for a withdrawal; mapped whole, 62% of registrations left on their exam
    day. With `when`, the date is the unregistration day of the withdrawals only."""
    src = write_extract(tmp_path / "export", weeks=range(2))
    leaving = MAPPING.replace(
        'unregistration_day = { value = "" }',
        'unregistration_day = { column = "enrolment_date", date = "%d/%m/%Y", '
        'when = { status = ["Dropout"] } }',
    )
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", leaving)), src, tmp_path / "ok")
    registrations = load_learning_data(out).registrations
    withdrawn = registrations["final_result"] == "withdrawn"
    assert withdrawn.sum() > 0 and (~withdrawn).sum() > 0
    assert registrations.loc[withdrawn, "unregistration_day"].notna().all()
    assert registrations.loc[~withdrawn, "unregistration_day"].isna().all()
    with pytest.raises(MappingError, match="no source column 'state'"):
        _import_with(
            load_mapping(write_mapping(tmp_path / "m", leaving.replace("when = { status", "when = { state"))),
            src,
            tmp_path / "bad",
        )
    with pytest.raises(MappingError, match="when: give each column the values"):
        load_mapping(write_mapping(tmp_path / "m", leaving.replace('["Dropout"]', "[]")))


def test_a_day_read_from_one_column_otherwise_from_another(tmp_path: Path) -> None:
    """Found on an online college's data: a withdrawal's day is in one column, a break in learning's in
    another; `otherwise` reads the second where the first rule gives nothing."""
    import pandas as pd

    rows = records_rows()
    paused = {i for i, row in enumerate(rows) if row[5] == "Graduate"}
    for i in paused:
        rows[i][5] = "Break"
    src = tmp_path / "export"
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    both = MAPPING.replace(
        'unregistration_day = { value = "" }',
        'unregistration_day = { column = "enrolment_date", date = "%d/%m/%Y", '
        'when = { status = ["Dropout"] }, '
        'otherwise = { column = "semester_start", date = "%d/%m/%Y", when = { status = ["Break"] } } }',
    ).replace('Dropout = "withdrawn",', 'Dropout = "withdrawn", Break = "withdrawn",')
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", both)), src, tmp_path / "ok")
    # each row's registration day (its enrolment, 10 + i days before the start) tells the rows apart
    got = load_learning_data(out).registrations.set_index(["registration_day", "presentation_id"])
    for i, row in enumerate(rows):
        day = got.loc[(-(10 + STUDENTS.index(row[0])), row[2]), "unregistration_day"]
        if row[5] == "Dropout":  # the first rule: the enrolment date
            assert day == -(10 + STUDENTS.index(row[0])), (row, day)
        elif i in paused:  # otherwise: the semester's start, day 0
            assert day == 0, (row, day)
        else:
            assert day is pd.NA, (row, day)  # no leaving day
    undated = both.replace('"semester_start", date = "%d/%m/%Y",', '"semester_start",')
    with pytest.raises(MappingError, match="both a date, or neither"):
        load_mapping(write_mapping(tmp_path / "m", undated))


def test_ids_one_system_writes_in_lower_case_match_the_records_with_case(tmp_path: Path) -> None:
    """Found on an Indian university's data: its Moodle log wrote roll numbers in lower case (21bcs0457)
    and its records in upper (21BCS0457); no rule could write them alike, and every row was refused."""
    src = tmp_path / "export"
    rows = records_rows()
    for row in rows:
        row[0] = f"21BCS{row[0]}"
    write_records(src, rows)
    clicks = click_rows(range(2))
    write_clicks(src, [[f"21bcs{r[0]}", *r[1:]] for r in clicks])
    with pytest.raises(ContractViolation, match="Ids are compared as written"):
        _import_with(load_mapping(write_mapping(tmp_path / "m", MAPPING)), src, tmp_path / "as-is")
    upper = MAPPING.replace('student_id = "user"', 'student_id = { column = "user", case = "upper" }')
    assert upper != MAPPING
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", upper)), src, tmp_path / "ok")
    assert int(load_learning_data(out).activity["count"].sum()) == len(clicks)
    with pytest.raises(MappingError, match="case applies to ids and text only"):
        load_mapping(write_mapping(tmp_path / "m", upper.replace(
            'credits = "credits_enrolled"', 'credits = { column = "credits_enrolled", case = "upper" }'
        )))  # fmt: skip


def test_a_turkish_module_code_a_platform_lowercases_is_matched_with_turkish_case(tmp_path: Path) -> None:
    """Found on a Turkish university's data: the records' FİZ101 is fiz101 in its Moodle, which
    case = "upper" wrote FIZ101, naming no presentation; the refusal now names FİZ101 and the rule."""
    src = tmp_path / "export"
    rows = records_rows()
    for row in rows:
        row[1] = row[1].replace("INF", "F\u0130Z")  # FİZ101
    write_records(src, rows)
    write_clicks(src, [[r[0], r[1].replace("INF", "fiz"), *r[2:]] for r in click_rows(range(2))])
    upper = MAPPING.replace('module_id = "course"', 'module_id = { column = "course", case = "upper" }')
    assert upper != MAPPING
    with pytest.raises(MappingDataError) as refused:
        _import_with(load_mapping(write_mapping(tmp_path / "m", upper)), src, tmp_path / "upper")
    said = str(refused.value)
    assert (
        "'FIZ101 2023S1' names no presentation in the presentations table ('F\u0130Z101 2023S1' is there"
        in said
    )
    assert 'case = "turkish-upper"' in said
    turkish = upper.replace('case = "upper"', 'case = "turkish-upper"')
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", turkish)), src, tmp_path / "ok")
    assert set(load_learning_data(out).activity["module_id"]) == {"F\u0130Z101", "MAT102"}


def test_a_timestamps_day_is_counted_in_the_rows_own_zone_where_one_is_given(tmp_path: Path) -> None:
    """An online university's students in many zones: a submission at 22:25 on the due day in Los
    Angeles is 06:25 the next day in UTC, and the one zone a mapping had read it as a day late."""
    src = tmp_path / "export"
    write_records(src)
    student, course = STUDENTS[0], COURSES[0]
    lines = [
        "user,course,term,time,tool,ip_address,tz",
        f"{student},{course},2023S1,2023-09-26T05:30:00Z,forum,10.0.0.1,America/Los_Angeles",  # 25th there
        f"{student},{course},2023S1,2023-09-26T05:30:00Z,quiz,10.0.0.1,",  # no zone: the mapping's
        f"{student},{course},2023S1,2023-09-26T05:30:00Z,page,10.0.0.1,Asia/Tokyo",  # 26th there
        f"{student},{course},2023S1,2023-09-26T05:30:00Z,wiki,10.0.0.1,99",  # Moodle's site zone
    ]
    (src / "clicks.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    zoned = MAPPING.replace(
        'day = { column = "time", timestamp = "iso" }',
        'day = { column = "time", timestamp = "iso", zone = "tz" }',
    )
    assert zoned != MAPPING
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", zoned)), src, tmp_path / "out")
    days = load_learning_data(out).activity.set_index("activity_type")["day"]
    start = 7  # 2023S1 starts on 2023-09-18: the 25th is day 7, the 26th day 8
    assert (days["forum"], days["quiz"], days["page"], days["wiki"]) == (
        start,
        start + 1,
        start + 1,
        start + 1,
    )
    (src / "clicks.csv").write_text(
        "\n".join([*lines[:2], lines[1].rsplit(",", 1)[0] + ",Mars/Olympus"]) + "\n"
    )
    with pytest.raises(MappingDataError, match="holds no zone name such as Europe/Madrid"):
        _import_with(load_mapping(write_mapping(tmp_path / "m", zoned)), src, tmp_path / "bad")
    with pytest.raises(MappingError, match="zone gives the time zone a timestamp"):
        load_mapping(
            write_mapping(tmp_path / "m", zoned.replace('timestamp = "iso", zone', 'date = "iso", zone'))
        )


def test_ids_a_spreadsheet_or_a_platform_wrote_otherwise_are_brought_to_the_records_form(
    tmp_path: Path,
) -> None:
    """Found on a Mexican university's data (matrículas whose leading zeros a spreadsheet dropped) and a
    Nigerian one's (a platform writing ENG-2019-045 for the records' ENG/2019/045): stripping the zeros
    from every export joined the files but left a student signing in as 0023000374 with no record.
    ``pad`` and ``replace`` bring the other export to the records' form instead."""
    src = tmp_path / "export"
    rows = records_rows()
    for row in rows:
        row[0] = f"00{row[0]}/A"
    write_records(src, rows)
    clicks = click_rows(range(2))
    width = len(rows[0][0])
    write_clicks(src, [[f"{r[0]}-A", *r[1:]] for r in clicks])  # zeros dropped, "-" for "/"
    with pytest.raises(ContractViolation, match="Ids are compared as written"):
        _import_with(load_mapping(write_mapping(tmp_path / "m", MAPPING)), src, tmp_path / "as-is")
    fixed = MAPPING.replace(
        'student_id = "user"', f'student_id = {{ column = "user", replace = {{ "-" = "/" }}, pad = {width} }}'
    )
    assert fixed != MAPPING
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", fixed)), src, tmp_path / "ok")
    data = load_learning_data(out)
    assert int(data.activity["count"].sum()) == len(clicks)
    assert set(data.activity["student_id"]) <= set(data.registrations["student_id"])
    with pytest.raises(MappingError, match="pad applies to ids and text only"):
        load_mapping(write_mapping(tmp_path / "m", fixed.replace(
            'credits = "credits_enrolled"', 'credits = { column = "credits_enrolled", pad = 4 }'
        )))  # fmt: skip
    with pytest.raises(MappingError, match="replace lists an empty text"):
        load_mapping(write_mapping(tmp_path / "m", fixed.replace('{ "-" = "/" }', '{ "" = "/" }')))


def test_ids_a_spreadsheet_took_the_zeros_of_are_named_so_when_ids_are_pseudonymised(tmp_path: Path) -> None:
    """A US university's demographics file, saved through a spreadsheet (1684918 for 001684918), was
    refused whole with no word of why: validation compares pseudonyms, which have no zeros to ignore."""
    src = tmp_path / "export"
    rows = records_rows()
    for row in rows:
        row[0] = f"00{row[0]}"
    write_records(src, rows)
    write_clicks(src, [[f"00{r[0]}", *r[1:]] for r in click_rows(range(2))])
    people = sorted({r[0] for r in rows})
    (src / "demographics.csv").write_text(
        "student_number,nationality\n" + "".join(f"{p.lstrip('0')},PT\n" for p in people), encoding="utf-8"
    )
    apart = MAPPING.replace(
        "[inputs.clicks]", '[inputs.demographics]\nfiles = ["demographics.csv"]\n\n[inputs.clicks]'
    ).replace(
        '[tables.protected_characteristics]\nfrom = "records"',
        '[tables.protected_characteristics]\nfrom = "demographics"',
    )
    assert apart.count("demographics") == 3
    with pytest.raises(ContractViolation) as refused:
        _import_with(load_mapping(write_mapping(tmp_path / "m", apart)), src, tmp_path / "out")
    said = str(refused.value)
    assert f"{len(people)} rows of them match a student once leading zeros are ignored" in said
    assert "give the id column pad = its width" in said


@pytest.mark.parametrize(
    ("written", "read"),
    [("23000374", "0023000374"), ("23000374.0", "0023000374"), ("2300037.0", "0002300037"),
     ("0023000374", "0023000374"), ("12345678901", "12345678901")],
)  # fmt: skip
def test_pad_reads_a_spreadsheets_number_as_the_records_id(written: str, read: str) -> None:
    """A spreadsheet writes 0023000374 as 23000374, or 23000374.0: both are padded (the ".0" first)."""
    from waymark.models.data.contract import TABLES
    from waymark.training.ingest.mapping.convert import column_sql
    from waymark.training.ingest.mapping.schema import ColumnSpec

    column = next(c for c in TABLES["students"].columns if c.name == "student_id")
    sql = column_sql(ColumnSpec(column="x", pad=10), column, cell=_cell, pseudonymise=False)
    assert duckdb.sql(f"SELECT {sql.value} FROM (SELECT '{written}' AS x)").fetchall() == [(read,)]


@pytest.mark.parametrize(
    "written",
    [
        "\tMÜL-2024",
        "Mu\u0308l-2024 ",
        "M\u00fcl-2024",
        "23000374.0",
        "Jose\u0301\u00a0",
        "\u00c5se",
        "A\u030ase",
    ],
)
def test_an_id_in_either_unicode_form_reads_as_the_composed_one_in_sql_and_at_sign_in(written: str) -> None:
    """A macOS tool's export writes "ü" as "u" and a combining diaeresis (NFD), the records system as one
    letter (NFC): the two were different ids, and a student signing in with either form matched one of
    them. The importer's SQL and the service's reading of a signed-in number compose it alike."""
    from waymark.models.data.contract import TABLES
    from waymark.models.pseudonyms import normalised_id
    from waymark.training.ingest.mapping.convert import column_sql
    from waymark.training.ingest.mapping.schema import ColumnSpec

    column = next(c for c in TABLES["students"].columns if c.name == "student_id")
    sql = column_sql(ColumnSpec(column="x"), column, cell=_cell, pseudonymise=False)
    read = duckdb.execute(f"SELECT {sql.value} FROM (SELECT CAST(? AS VARCHAR) AS x)", [written]).fetchall()
    assert read == [(normalised_id(written),)]
    assert read[0][0] == unicodedata.normalize("NFC", read[0][0]).strip()


def test_an_outcome_written_decomposed_is_read_by_the_mappings_composed_value() -> None:
    """A Québec university's "Décédé", saved decomposed, was refused as an outcome the mapping did not
    name, beside the composed "Décédé" the mapping names."""
    from waymark.models.data.contract import TABLES
    from waymark.training.ingest.mapping.convert import column_sql
    from waymark.training.ingest.mapping.schema import ColumnSpec

    column = next(c for c in TABLES["registrations"].columns if c.name == "final_result")
    spec = ColumnSpec(column="r", values={"D\u00e9c\u00e9d\u00e9": "withdrawn", "R\u00e9ussi": "pass"})
    sql = column_sql(spec, column, cell=_cell, pseudonymise=False)
    decomposed = unicodedata.normalize("NFD", "D\u00e9c\u00e9d\u00e9")
    assert decomposed != "D\u00e9c\u00e9d\u00e9"
    query = f"SELECT {sql.value}, {sql.check} FROM (SELECT CAST(? AS VARCHAR) AS r)"
    assert duckdb.execute(query, [decomposed]).fetchall() == [("withdrawn", None)]
    # A mapping typed with the value decomposed names the composed cell too; file names stay as written.
    from waymark.training.ingest.mapping.schema import _composed

    typed = {"files": [decomposed + ".csv"], "final_result": {"values": {decomposed: "withdrawn"}}}
    assert _composed(typed) == {
        "files": [decomposed + ".csv"],
        "final_result": {"values": {"D\u00e9c\u00e9d\u00e9": "withdrawn"}},
    }


def test_an_empty_key_maps_an_empty_cell_a_when_reads_not_a_row_it_passes_over() -> None:
    """An Italian university read outcomes only for ended years, no sitting (an empty cell) as "fail":
    the running year's rows, which the `when` passes over, were all "fail" too. They stay empty, for an
    `otherwise` to read."""
    from waymark.models.data.contract import TABLES
    from waymark.training.ingest.mapping.convert import column_sql
    from waymark.training.ingest.mapping.schema import ColumnSpec

    column = next(c for c in TABLES["registrations"].columns if c.name == "final_result")
    values = {"Superato": "pass", "Respinto": "fail", "": "fail"}
    spec = ColumnSpec(column="esito", values=values, when={"anno": ["2024/25", "2025/26"]})
    sql = column_sql(spec, column, cell=_cell, pseudonymise=False)
    rows = [("Superato", "2025/26"), (None, "2025/26"), (None, "2026/27"), ("Superato", "2026/27")]
    table = " UNION ALL ".join(f"SELECT {repr(e) if e else 'NULL'} AS esito, '{a}' AS anno" for e, a in rows)
    read = duckdb.sql(f"SELECT {sql.value}, {sql.check} FROM ({table})").fetchall()
    assert read == [("pass", None), ("fail", None), (None, None), (None, None)]
    chained = ColumnSpec(
        column="esito", values=values, when={"anno": ["2024/25", "2025/26"]}, otherwise=ColumnSpec(value="")
    )
    sql = column_sql(chained, column, cell=_cell, pseudonymise=False)
    assert [v for v, _ in duckdb.sql(f"SELECT {sql.value}, {sql.check} FROM ({table})").fetchall()] == [
        "pass", "fail", None, None
    ]  # fmt: skip


def test_a_mark_out_of_a_maximum_every_row_shares_is_a_percentage() -> None:
    """A Kenyan university's CATs, all out of 15: multiplying by 100/15 made 15 out of 15 a little over
    100, refused, and the maximum had to be a column the export did not have."""
    from waymark.models.data.contract import TABLES
    from waymark.training.ingest.mapping.convert import column_sql
    from waymark.training.ingest.mapping.schema import ColumnSpec

    column = next(c for c in TABLES["assessment_results"].columns if c.name == "score")
    spec = ColumnSpec.model_validate({"column": "cat", "out_of": 15})
    assert spec.out_of == 15.0
    sql = column_sql(spec, column, cell=_cell, pseudonymise=False)
    marks = " UNION ALL ".join(f"SELECT '{m}' AS cat" for m in ("15", "12", "0", "7.5"))
    assert [v for (v,) in duckdb.sql(f"SELECT {sql.value} FROM ({marks})").fetchall()] == [
        100.0,
        80.0,
        0.0,
        50.0,
    ]
    for wrong in ("0", "-15", "inf"):  # a maximum above 0 that is a number
        rule = f'credits = {{ column = "credits_enrolled", out_of = {wrong} }}'
        with pytest.raises(MappingError, match="out_of as a number is the maximum"):
            parse_mapping(tomllib.loads(MAPPING.replace('credits = "credits_enrolled"', rule)))
    named = ColumnSpec.model_validate({"column": "cat", "out_of": "max_marks"})
    assert named.out_of == "max_marks"  # a text names the column holding each row's maximum


@pytest.mark.parametrize(("week", "day"), [("1", 0), ("15", 98), ("3.0", 14)])
def test_a_week_numbered_from_one_is_its_first_day_with_multiply_and_add(week: str, day: int) -> None:
    """A Nigerian university's paper register, typed in by teaching week: multiply = 7 alone put week 1
    on day 7 (the first of week 2) and week 15 after a 105-day presentation."""
    from waymark.models.data.contract import TABLES
    from waymark.training.ingest.mapping.convert import column_sql
    from waymark.training.ingest.mapping.schema import ColumnSpec

    column = next(c for c in TABLES["activity"].columns if c.name == "day")
    spec = ColumnSpec(column="w", multiply=7, add=-7)
    sql = column_sql(spec, column, cell=_cell, pseudonymise=False)
    assert duckdb.sql(f"SELECT {sql.value} FROM (SELECT '{week}' AS w)").fetchall() == [(day,)]


def test_within_presentation_leaves_out_activity_dated_outside_its_presentation(tmp_path: Path) -> None:
    """Found on a Chinese university's library turnstile log, joined to registrations on the student
    alone: each visit was copied to every registration of every term, and a visit two months before a
    term read as that term's pre-start activity (902 of 2,480 estimates moved by more than 10 points)."""
    from datetime import datetime, timedelta

    from tests.polytechnic import STARTS

    src = tmp_path / "export"
    write_records(src)
    rows = click_rows(range(2))
    student, course = STUDENTS[0], COURSES[0]
    start = datetime.combine(STARTS["2024S2"], datetime.min.time()) + timedelta(hours=10)
    stray = [  # 60 days before the term (last term's visit, copied), 10 before (pre-reading), day 139, 140
        [student, course, "2024S2", (start + timedelta(days=d)).isoformat() + "Z", "page", "10.0.0.1"]
        for d in (-60, -10, 139, 140)
    ]
    write_clicks(src, rows + stray)
    within = MAPPING.replace('aggregate = "count"\n', 'aggregate = "count"\nwithin_presentation = true\n', 1)
    assert within != MAPPING
    days = {}
    for name, mapping in (("all", MAPPING), ("within", within)):
        out = _import_with(load_mapping(write_mapping(tmp_path / name, mapping)), src, tmp_path / name)
        activity = load_learning_data(out).activity
        days[name] = sorted(activity.loc[activity["presentation_id"] == "2024S2", "day"].tolist())
    assert {-60, -10, 139, 140} <= set(days["all"])
    assert -10 in days["within"] and 139 in days["within"]
    assert -60 not in days["within"] and 140 not in days["within"]
    assert len(days["all"]) - len(days["within"]) == 2
    # the report says why rows out are fewer (a law school's were said to be "added up" into days)
    said = import_mapped(
        load_mapping(write_mapping(tmp_path / "w", within)),
        [src],
        out=tmp_path / "dry",
        secret=SECRET,
        dry_run=True,
    ).coverage.to_text()
    assert "rows dated outside their presentation are left out (within_presentation)" in said
    with pytest.raises(MappingError, match="within_presentation: only the activity table"):
        load_mapping(write_mapping(tmp_path / "r", within.replace(
            "[tables.students]\nfrom", "[tables.students]\nwithin_presentation = true\nfrom"
        )))  # fmt: skip


def test_dates_and_numbers_in_arabic_indic_digits_are_read_as_written_in_ascii(tmp_path: Path) -> None:
    """Found on a Gulf university's records: dates and credits written in Arabic-Indic digits were
    refused ("is not a date"), and a date with a French month name gave no hint that %b is English."""
    arabic = str.maketrans("0123456789", "".join(chr(0x0660 + i) for i in range(10)))
    src = tmp_path / "export"
    rows = records_rows()
    for row in rows:
        row[4], row[6] = row[4].translate(arabic), row[6].translate(arabic)  # enrolment_date, credits
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", MAPPING)), src, tmp_path / "ok")
    written = _import_with(
        load_mapping(write_mapping(tmp_path / "m", MAPPING)),
        write_extract(tmp_path / "plain"),
        tmp_path / "plain",
    )
    for table in ("registrations", "students"):
        pd.testing.assert_frame_equal(
            getattr(load_learning_data(out), table), getattr(load_learning_data(written), table)
        )
    french = MAPPING.replace(
        'registration_day = { column = "enrolment_date", date = "%d/%m/%Y" }',
        'registration_day = { column = "enrolment_date", date = "%d %b %Y" }',
    )
    with pytest.raises(MappingDataError, match="%b and %B read English month names"):
        _import_with(load_mapping(write_mapping(tmp_path / "f", french)), src, tmp_path / "f")


def test_a_file_whose_lines_end_in_two_ways_is_named_with_the_first_line_that_differs(tmp_path: Path) -> None:
    """Found on a Gulf university's attendance export: Windows lines, then a week appended on Linux; the
    refusal was DuckDB's "Error when sniffing file" and a hint to skip lines before the header."""
    src = tmp_path / "export"
    write_records(src)
    path = write_clicks(src, click_rows(range(2)))
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_bytes(("\r\n".join(lines[:-3]) + "\r\n" + "\n".join(lines[-3:]) + "\n").encode("utf-8"))
    with pytest.raises(MappingError) as refused:
        _import_with(load_mapping(write_mapping(tmp_path / "m", MAPPING)), src, tmp_path / "out")
    said = str(refused.value)
    assert f"its lines end in two ways: Windows (CRLF) at first, Unix (LF) from line {len(lines) - 2}" in said
    assert "skip_rows" not in said


def test_a_header_saved_with_decomposed_accents_is_found_by_its_name(tmp_path: Path) -> None:
    """Found on a Québec university's export saved by a macOS tool: the header's "é" was "e" and a
    combining accent (NFD), and the refusal said "no source column 'Numéro étudiant'" beside itself."""
    name = unicodedata.normalize("NFC", "num\u00e9ro_\u00e9tudiant")
    src = tmp_path / "export"
    path = write_records(src)
    header, rest = path.read_text(encoding="utf-8").split("\n", 1)
    path.write_text(
        header.replace("student_number", unicodedata.normalize("NFD", name)) + "\n" + rest, encoding="utf-8"
    )
    write_clicks(src, click_rows(range(2)))
    accented = MAPPING.replace('student_id = "student_number"', f'student_id = "{name}"')
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", accented)), src, tmp_path / "ok")
    assert len(load_learning_data(out).registrations) == len(records_rows())


def test_files_of_one_input_saved_with_decomposed_and_composed_headers_are_read_alike(tmp_path: Path) -> None:
    """Found on a Vietnamese university's grade sheets, some saved on a Mac (NFD), some on Windows: each
    accented header was two columns, and the Mac files' outcomes were read as empty (students who had
    withdrawn would have been scored as current)."""
    name = unicodedata.normalize("NFC", "situa\u00e7\u00e3o")
    src = tmp_path / "export"
    rows = records_rows()
    for part, form, chosen in (("a", "NFD", rows[::2]), ("b", "NFC", rows[1::2])):
        path = write_records(src, chosen, name=f"records_{part}.csv")
        header, rest = path.read_text(encoding="utf-8").split("\n", 1)
        path.write_text(header.replace("status", unicodedata.normalize(form, name)) + "\n" + rest, "utf-8")
    write_clicks(src, click_rows(range(2)))
    accented = MAPPING.replace('column = "status"', f'column = "{name}"')
    assert accented != MAPPING
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", accented)), src, tmp_path / "ok")
    results = load_learning_data(out).registrations["final_result"]
    assert results.notna().sum() == sum(r[5] != "Enrolled" for r in rows)  # none of either file lost


def test_a_module_and_a_term_are_extracted_from_one_course_id(tmp_path: Path) -> None:
    """Found on a university's Blackboard export: course ids such as MATH101-2024-S1 hold the module
    and the term, which the records keep apart; mapped with a glob per module and per term (18 for six
    modules), where `extract` takes each part by a regular expression's group."""
    src = tmp_path / "export"
    write_records(src)
    rows = click_rows(range(2))
    write_clicks(src, [[r[0], f"{r[1]}-{r[2]}", "ignored", *r[3:]] for r in rows])
    combined = MAPPING.replace(
        'module_id = "course"\npresentation_id = "term"',
        'module_id = { column = "course", extract = "^(.+)-[^-]+$" }\n'
        'presentation_id = { column = "course", extract = "-([^-]+)$" }',
    ).replace('ignore = ["ip_address"]', 'ignore = ["ip_address", "term"]')
    assert combined != MAPPING
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", combined)), src, tmp_path / "ok")
    assert int(load_learning_data(out).activity["count"].sum()) == len(rows)
    odd = [[r[0], r[1], "ignored", *r[3:]] for r in rows[:1]]  # a course id without its term
    write_clicks(src, [*odd, *([r[0], f"{r[1]}-{r[2]}", "ignored", *r[3:]] for r in rows[1:])])
    with pytest.raises(MappingDataError, match=r"does not match extract -\(\[\^-\]\+\)\$"):
        _import_with(load_mapping(write_mapping(tmp_path / "m", combined)), src, tmp_path / "odd")
    with pytest.raises(MappingError, match="has no group"):
        load_mapping(write_mapping(tmp_path / "m", combined.replace('"-([^-]+)$"', '"-[^-]+$"')))
    # A row the contract refuses names the course id as written, and the module and term read from it.
    stray = [STUDENTS[0], f"{COURSES[1]}-{rows[0][2]}", "ignored", *rows[0][3:]]  # not their module
    write_clicks(src, [*([r[0], f"{r[1]}-{r[2]}", "ignored", *r[3:]] for r in rows), stray])
    with pytest.raises(ContractViolation) as refused:
        _import_with(load_mapping(write_mapping(tmp_path / "m", combined)), src, tmp_path / "stray")
    said = str(refused.value)
    assert f"module_id={COURSES[1]}-{rows[0][2]} (read as {COURSES[1]})" in said, said
    assert f"presentation_id={COURSES[1]}-{rows[0][2]} (read as {rows[0][2]})" in said, said


def test_activity_on_a_module_the_student_never_took_can_be_left_out_and_counted(tmp_path: Path) -> None:
    """Found on a German university's data: an ILIAS log keyed by login held 40 of 634,000 rows of
    students opening a course they had not booked; the contract refused the whole import, and the
    mapping could not join the log to the enrolments to leave them out (the ids came through joins)."""
    src = write_extract(tmp_path / "export", weeks=range(2))
    other = {COURSES[0]: COURSES[1], COURSES[1]: COURSES[0]}
    browsing = [[r[0], other[r[1]], *r[2:]] for r in click_rows(range(1))[:3]]  # the module they do not take
    write_clicks(src, browsing, name="clicks_browsing.csv")
    with pytest.raises(ContractViolation) as refused:
        _import_with(load_mapping(write_mapping(tmp_path / "m", MAPPING)), src, tmp_path / "strict")
    assert 'unregistered = "drop"' in str(refused.value)
    # First the cause a weekly append meets most (a Norwegian college's card swipes of new students).
    assert "append the newer records first" in str(refused.value)
    # and, where the students are on another module of the presentation, a course listed under two codes
    # (a US university's ECON 311 and STAT 311, one Canvas course: dropping lost 48% of its activity)
    assert "3 rows of them are of students registered on another module of the same presentation" in str(
        refused.value
    )
    dropping = MAPPING.replace('aggregate = "count"\n', 'aggregate = "count"\nunregistered = "drop"\n', 1)
    mapping = load_mapping(write_mapping(tmp_path / "m", dropping))
    result = import_mapped(mapping, [src], out=tmp_path / "ok", secret=SECRET)
    activity = load_learning_data(tmp_path / "ok").activity
    assert int(activity["count"].sum()) == len(click_rows(range(2))) and "OTHER" not in set(
        activity["module_id"]
    )
    said = [n for n in result.notes if "left out" in n]
    assert said and said[0].startswith("3 rows of activity") and "(3 such pairs)" in said[0], result.notes
    dry = import_mapped(mapping, [src], out=tmp_path / "dry", secret=SECRET, dry_run=True)
    assert said == [n for n in dry.notes if "left out" in n]
    assert "among them" not in said[0]  # no kind of activity left out whole
    # A kind of activity left out whole is named (a Scottish VLE wrote ids another way in its
    # submission events only: 17% of activity, and no submission left in the folder).
    wiki = [[r[0], other[r[1]], r[2], r[3], "wiki", r[5]] for r in click_rows(range(1))[:3]]
    write_clicks(src, wiki, name="clicks_browsing.csv")
    noted = import_mapped(mapping, [src], out=tmp_path / "wiki", secret=SECRET, dry_run=True).notes
    assert "; among them every row of wiki (3)" in " ".join(n for n in noted if "left out" in n), noted
    # An append's dry run without the secret cannot match this extract's ids with the folder's: it
    # says so rather than refusing (or dropping) every row a reviewer saw it refuse.
    more = tmp_path / "more"
    write_records(more)
    write_clicks(more, click_rows(range(2, 3)))
    blind = import_mapped(mapping, [more], out=tmp_path / "ok", dry_run=True, append=True)
    assert blind.refused is None and any("no secret was given" in n for n in blind.notes), blind.notes
    assert not [n for n in blind.notes if "left out" in n]
    # A join that matches nothing would leave out every row: refused, not a note.
    nowhere = tmp_path / "nowhere"
    write_records(nowhere)
    write_clicks(nowhere, [[r[0], other[r[1]], *r[2:]] for r in click_rows(range(1))])
    with pytest.raises(MappingError, match="would leave out every activity row") as swapped:
        import_mapped(mapping, [nowhere], out=tmp_path / "none", secret=SECRET)
    # It says which key matches alone: here each student's module is the other one.
    assert "all name a registered student, all a module some registration is on" in str(swapped.value)
    # A teaching group in the records' module ids that the platform's course does not carry (a Spanish
    # university's "34500-A" beside its course "34500"): the module ids are named, with examples.
    grouped = tmp_path / "grouped"
    write_records(grouped, [[r[0], f"{r[1]}-A", *r[2:]] for r in records_rows()])
    write_clicks(grouped, click_rows(range(1)))
    with pytest.raises(MappingError, match="would leave out every activity row") as refused:
        import_mapped(mapping, [grouped], out=tmp_path / "grouped-out", secret=SECRET)
    said = str(refused.value)
    assert "all name a registered student, none a module some registration is on" in said
    assert (
        "the activity's module_id values are like 'INF101', 'MAT102'; the registrations' like 'INF101-A'"
        in said
    )
    with pytest.raises(MappingError, match="only the activity table's rows can be left out"):
        load_mapping(write_mapping(tmp_path / "m", MAPPING.replace(
            "[tables.students]\n", '[tables.students]\nunregistered = "drop"\n'
        )))  # fmt: skip


def test_a_drop_counts_the_rows_of_students_registered_under_an_id_written_otherwise(tmp_path: Path) -> None:
    """A log writing one student's number with a hyphen (20-00001 for 2000001) lost that student's
    activity to the drop under a note that called it browsing; a join's report counted such near matches."""
    src = write_extract(tmp_path / "export", weeks=range(2))
    rows = click_rows(range(2))
    first = STUDENTS[0]
    write_clicks(src, [[f"{r[0][:2]}-{r[0][2:]}", *r[1:]] if r[0] == first else r for r in rows])
    dropping = MAPPING.replace('aggregate = "count"\n', 'aggregate = "count"\nunregistered = "drop"\n', 1)
    mapping = load_mapping(write_mapping(tmp_path / "m", dropping))
    result = import_mapped(mapping, [src], out=tmp_path / "out", secret=SECRET)
    theirs = sum(r[0] == first for r in rows)
    assert 0 < theirs < len(rows)
    said = " ".join(n for n in result.notes if "left out" in n)
    assert (
        f"; {theirs} rows of the export's activity among them name a student registered on that module"
        in said
    )
    assert "so ids written in another form more likely than browsing: case" in said and "pad = 10" in said
    # The rows of the students whose ids were written alike are kept, and are not counted as near matches.
    activity = load_learning_data(tmp_path / "out").activity
    assert int(activity["count"].sum()) == len(rows) - theirs
    # Activity on a module the student never took (browsing) is no near match: nothing counted.
    other = {COURSES[0]: COURSES[1], COURSES[1]: COURSES[0]}
    write_clicks(src, rows)
    write_clicks(src, [[r[0], other[r[1]], *r[2:]] for r in rows[:3]], name="clicks_browsing.csv")
    browsing = import_mapped(mapping, [src], out=tmp_path / "browsing", secret=SECRET, dry_run=True)
    noted = " ".join(n for n in browsing.notes if "left out" in n)
    assert noted.startswith("3 rows of activity") and "export's activity among them" not in noted, noted


def test_a_dry_run_runs_the_contracts_rules_and_says_what_the_import_would_refuse(tmp_path: Path) -> None:
    """Found on a German university's data: the dry run said "Every value was mapped" and exited 0, and
    the import then failed the contract (an unregistration day before the registration day, activity
    on modules nobody had booked). The dry run now checks the folder as the import would write it."""
    src = write_extract(tmp_path / "export", weeks=range(2))
    other = {COURSES[0]: COURSES[1], COURSES[1]: COURSES[0]}
    write_clicks(src, [[r[0], other[r[1]], *r[2:]] for r in click_rows(range(1))[:2]], name="clicks_more.csv")
    mapping = write_mapping(tmp_path / "m", MAPPING)
    args = ["data", "import", "--mapping", str(mapping), str(src), "--out", str(tmp_path / "o"), "--dry-run"]
    refused = runner.invoke(app, args)
    assert refused.exit_code != 0
    assert "rows read" in refused.output and "reference_registrations" in refused.output
    assert "the import would break the contract; a dry run writes nothing" in refused.output
    assert not (tmp_path / "o").exists()
    as_json = runner.invoke(app, [*args, "--format", "json"])
    body = json.loads(as_json.stdout[: as_json.stdout.rindex("}") + 1])
    assert [e["rule"] for e in body["contract_errors"]] == ["reference_registrations"]
    (src / "clicks_more.csv").unlink()
    passed = runner.invoke(app, args)
    assert passed.exit_code == 0, passed.output
    assert "every mapping rule and the contract's rules ran; nothing was written" in passed.output


def test_a_join_can_match_ids_written_in_another_case(tmp_path: Path) -> None:
    """A second platform names the course in lower case; the records in upper case. Joined to the
    records, its rows matched nothing until the join was told to ignore case."""
    src = write_extract(tmp_path / "export", weeks=range(2))
    write_clicks(src, [[r[0], r[1].lower(), *r[2:]] for r in click_rows(range(2))], name="lower.csv")
    joined = (
        MAPPING.replace('[inputs.clicks]\nfiles = ["clicks*.csv"]', '[inputs.clicks]\nfiles = ["lower.csv"]')
        .replace(
            "[sources]",
            """[[tables.activity.join]]
input = "records"
on = { user = "student_number", course = "course_code", term = "semester" }
ignore_case = IGNORE

[sources]""",
        )
        .replace(
            'module_id = "course"\npresentation_id = "term"\nday',
            'module_id = "course_code"\npresentation_id = "term"\nday',
        )
    )

    def dry(ignore: str) -> str:
        mapping = write_mapping(tmp_path / ignore, joined.replace("IGNORE", ignore))
        args = [
            "data",
            "import",
            "--mapping",
            str(mapping),
            str(src),
            "--out",
            str(tmp_path / "o"),
            "--dry-run",
        ]
        result = runner.invoke(app, args)
        return result.output

    with_case = dry("false")
    assert "matched nothing in the join" in with_case and "100% of the rows in matched no row" in with_case
    # A join that keeps no row is refused (it had written an empty table and recorded the source as used).
    rows = len(click_rows(range(2)))
    assert f"matched no row of the joined input: none of the {rows:,} rows would be written" in with_case
    assert "(user = records.student_number, course = records.course_code, term = records.semester)" in (
        " ".join(with_case.split())
    ), with_case
    assert f"where {rows:,} of them would match with case" in " ".join(with_case.split()), with_case
    assert "1 problem" in with_case, with_case
    # Which people and courses dropped out, as the export wrote them (an art school's students missing
    # from a Canvas enrolment list read as lumped in with its staff's requests).
    people = {(r[0], r[1].lower(), r[2]) for r in click_rows(range(2))}
    first = sorted(people)[0]
    first = (shape(first[0]), *first[1:])  # the user, pseudonymised by the mapping, by its shape only
    held = f"they hold {len(people):,} distinct user, course, term ({' / '.join(first)}, "
    assert held in with_case, with_case
    without_case = dry("true")
    assert "matched nothing in the join" not in without_case and "activity: " in without_case
    assert "Every value was mapped." in without_case
    # A join used as a filter keeping nothing of a quiet extract (courses the records do not hold) is no
    # mistake in how ids are written: reported, not refused.
    for other in ("zzz999", "ENG101"):  # ENG101 shares its digits with INF101, and is another course
        write_clicks(src, [[r[0], other, *r[2:]] for r in click_rows(range(2))], name="lower.csv")
        filtered = dry("false")
        assert "100% of the rows in matched no row" in filtered and "Every value was mapped." in filtered
    # A conservatoire's booking system wrote its logins hc + the student number: refused as ids written
    # otherwise, not read as a quiet source (a course code sharing only digits, above, is not).
    write_clicks(src, [[f"hc{r[0]}", *r[1:]] for r in click_rows(range(2))], name="lower.csv")
    prefixed = " ".join(dry("true").split())
    assert f"where {rows:,} of them would match with case, whitespace, separators, a prefix of letters" in (
        prefixed
    ), prefixed
    # A UK enrolment extract keyed by SITS's SPR code (the student code and "/1", the route): refused as
    # ids written otherwise, not imported as no activity with exit 0 (a Welsh university's finding).
    write_clicks(src, [[f"{r[0]}/1", *r[1:]] for r in click_rows(range(2))], name="lower.csv")
    routed = " ".join(dry("true").split())
    assert f'where {rows:,} of them would match with case, separators and a numbered suffix such as "/1"' in (
        routed
    ), routed
    # A suffix that is a different code, not a number, is no such match: a quiet filter, reported.
    write_clicks(src, [[f"{r[0]}/X", *r[1:]] for r in click_rows(range(2))], name="lower.csv")
    assert "Every value was mapped." in dry("true")


def test_a_column_two_joined_inputs_both_have_must_be_named_with_its_input(tmp_path: Path) -> None:
    """Found on a college's data: a column both inputs of a join had was read from the first,
    silently. Now it is refused, naming both; ``input.column`` reads the one meant. A column the join
    matches on by the same name holds the same value in both, and needs no name."""
    src = write_extract(tmp_path / "export", weeks=range(1))
    twice = MAPPING.replace(
        "[inputs.clicks]", '[inputs.records2]\nfiles = ["records*.csv"]\nseparator = ";"\n\n[inputs.clicks]'
    ).replace(
        'credits = "credits_enrolled"\n',
        'credits = "credits_enrolled"\n\n[[tables.students.join]]\ninput = "records2"\n'
        'on = { student_number = "student_number", semester = "semester" }\n',
    )
    with pytest.raises(MappingError) as refused:
        import_mapped(load_mapping(write_mapping(tmp_path / "a", twice)), [src], out=tmp_path / "a" / "out",
                      secret=SECRET)  # fmt: skip
    said = str(refused.value)
    assert "source column 'credits_enrolled' is in more than one input (records, records2)" in said, said
    assert "records.credits_enrolled or records2.credits_enrolled" in said
    assert "'student_number'" not in said  # the join's own key, the same in both
    named = twice.replace('credits = "credits_enrolled"', 'credits = "records2.credits_enrolled"').replace(
        'order_by = { column = "semester_start"', 'order_by = { column = "records.semester_start"'
    )
    out = _import_with(load_mapping(write_mapping(tmp_path / "b", named)), src, tmp_path / "b")
    assert sorted(set(load_learning_data(out).students["credits"].astype(int))) == [30, 36]


def test_keep_matches_an_empty_cell_with_an_empty_string_and_says_when_it_keeps_nothing(
    tmp_path: Path,
) -> None:
    rows = records_rows()
    for row in rows[:4]:
        row[7] = ""  # no admission grade
    src = tmp_path / "export"
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))

    def dry(keep: str, rule: str = "keep") -> str:
        text = MAPPING.replace(
            'separator = ";"\n', f'separator = ";"\n{rule} = {{ admission_grade = {keep} }}\n'
        )
        folder = tmp_path / rule / (keep.strip('[]"') or "e")
        args = ["data", "import", "--mapping", str(write_mapping(folder, text))]
        return runner.invoke(app, [*args, str(src), "--out", str(tmp_path / "o"), "--dry-run"]).output

    assert f"{len(rows)} rows read, 4 kept" in dry('[""]')
    nothing = dry('["99.0"]')
    assert f"{len(rows)} rows read, 0 kept" in nothing and "keep and drop left none of its rows" in nothing
    # The opposite: drop the empty cells, keep every row with a grade (a row with a NULL is not lost
    # to NOT's three-valued logic: none of the 20 graded rows is dropped).
    assert f"{len(rows)} rows read, {len(rows) - 4} kept" in dry('[""]', rule="drop")
    assert f"{len(rows)} rows read, 0 kept" in dry('["150.0", ""]', rule="drop")


def test_an_empty_cell_in_a_required_column_is_named_by_the_dry_run_and_mapped_by_an_empty_key(
    tmp_path: Path,
) -> None:
    """A platform leaves the tool empty on some rows. The dry run said "Every value was mapped" and the
    import failed after the mapping, on the contract, naming no row; ``"" = ...`` changed nothing."""
    rows = click_rows(range(2))
    for row in rows[:3]:
        row[4] = ""
    src = tmp_path / "export"
    write_records(src)
    write_clicks(src, rows)

    def dry(values: str) -> str:
        text = MAPPING.replace(
            'values = { forum = "forum", quiz = "quiz" }, keep_unmapped = true',
            f'values = {{ {values} }}, default = "content"',
        )
        args = ["data", "import", "--mapping", str(write_mapping(tmp_path / str(len(values)), text))]
        return runner.invoke(app, [*args, str(src), "--out", str(tmp_path / "o"), "--dry-run"]).output

    refused = dry('forum = "forum", quiz = "quiz"')  # the default is for other values, not empty cells
    said = "tables.activity.columns.activity_type: an empty cell where activity_type must have a value"
    assert said in refused and "(3 rows; first clicks.csv row 1)" in refused, refused
    assert "Every value was mapped." not in refused
    mapped = dry('"" = "homepage", forum = "forum", quiz = "quiz"')
    assert "Every value was mapped." in mapped, mapped


def test_a_small_share_of_unmatched_rows_is_not_said_as_none() -> None:
    """5,500 of 2.3 million rows unmatched had read "0% of the rows in matched no row"."""
    table = TableCoverage("activity", 2_300_000, 2_294_500, 2_294_500, rows_matched=2_294_500)
    text = Coverage("m", {}, {"activity": table}).to_text()
    assert "5,500 matched nothing in the join" in text and "under 1% of the rows in matched no row" in text


def test_a_row_the_contract_refuses_after_mapping_is_named_in_the_export_not_the_staging_file(
    tmp_path: Path,
) -> None:
    """The contract's rules run on the staged folder: its errors had named 'students.parquet row 3'
    and a pseudonym, a file deleted with the refusal and an id the records team cannot search for."""
    rows = records_rows()
    student = rows[4][0]
    for row in rows:
        if row[0] == student:
            row[6] = "-6"  # negative credits: mapped as a number, refused by the contract
    src = tmp_path / "export"
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    with pytest.raises(ContractViolation) as refused:
        import_mapped(load_mapping(write_mapping(tmp_path / "m")), [src], out=tmp_path / "out", secret=SECRET)
    text = str(refused.value)
    assert "students.credits" in text and f"(student_id={shape(student)})" in text, text
    assert student not in text, text  # a pseudonymised id is named by its shape only
    assert "records.csv row 5" in text and "students.parquet" not in text and "staging" not in text, text
    assert not (tmp_path / "out").exists()


def test_an_activity_day_out_of_the_contracts_range_is_named_by_its_export_row_and_date_read(
    tmp_path: Path,
) -> None:
    """A registration has many activity rows: the one named is the export row with the refused value
    (once the contract's refusal, "value is below -1000", traced; now the mapping's, with the date read)."""
    rows = click_rows(range(2))
    at = next(i for i, r in enumerate(rows) if r[0] == rows[0][0] and i > 2)
    rows[at][3] = "2000-01-01T09:30:00Z"  # decades before the semester: a day the contract refuses
    src = tmp_path / "export"
    write_records(src)
    write_clicks(src, rows)
    # A date that far off was read wrongly more often than it happened: named by the mapping, with the
    # cell and the date it was read as (a Japanese university's era years read as 2006, not 2024).
    with pytest.raises(MappingDataError) as misread:
        import_mapped(load_mapping(write_mapping(tmp_path / "m")), [src], out=tmp_path / "out", secret=SECRET)
    said = str(misread.value)
    assert "'2000-01-01T09:30:00Z' was read as 2000-01-01, too far from its presentation's start" in said
    assert f"first clicks.csv row {at + 1}" in said and not (tmp_path / "out").exists()


def test_rows_of_one_unknown_registration_are_named_as_different_export_rows(tmp_path: Path) -> None:
    """Found on a college's data: a refused import named the same export row five times, once for each
    of five activity rows of one registration the records do not hold."""
    stranger = [["2999999", *r[1:]] for r in click_rows(range(3)) if r[0] == STUDENTS[0]]
    assert len(stranger) >= 5
    src = tmp_path / "export"
    write_records(src)
    write_clicks(src, [*click_rows(range(2)), *stranger])
    with pytest.raises(ContractViolation) as refused:
        import_mapped(load_mapping(write_mapping(tmp_path / "m")), [src], out=tmp_path / "out", secret=SECRET)
    named = re.findall(r"clicks\.csv row (\d+) \(student_id=9999999", str(refused.value))
    assert len(named) >= 2, str(refused.value)
    assert len(set(named)) == len(named), named


def test_a_written_imports_warnings_are_named_in_the_exports_too(tmp_path: Path) -> None:
    """A warning does not refuse the import; it had been said only by a later validation, naming the
    published parquet file and a pseudonym rather than the export row."""
    rows = click_rows(range(2))
    late = [rows[0][0], rows[0][1], "2023S1", "2024-03-01T10:00:00Z", "page", "10.0.0.1"]  # past day 140
    rows.append(late)
    src = tmp_path / "export"
    write_records(src)
    write_clicks(src, rows)
    mapping = write_mapping(tmp_path / "m")
    result = import_mapped(load_mapping(mapping), [src], out=tmp_path / "out", secret=SECRET)
    after_end = [w for w in result.warnings if w.rule == "day_within_presentation"]
    assert after_end, result.warnings
    named = after_end[0].describe()
    assert f"clicks.csv row {len(rows)} (student_id={shape(late[0])}" in named, named
    assert ".parquet" not in named, named
    args = ["--mapping", str(mapping), str(src), "--out", str(tmp_path / "cli")]
    shown = runner.invoke(app, ["data", "import", *args, "--secret-file", str(write_secret(tmp_path))])
    assert shown.exit_code == 0, shown.output
    assert "from the contract (the folder is valid)" in shown.output
    assert f"clicks.csv row {len(rows)}" in shown.output


def test_a_value_saying_nothing_is_recorded_is_named_by_its_export_row(tmp_path: Path) -> None:
    """A US university's "Decline to State" on rows 3 and 40 of its export was named as rows 2 and 56 of
    the mapped table, and as other rows on the next run."""
    records = records_rows()
    records[5][8] = "Not stated"  # a nationality saying nothing is recorded, on the sixth row
    src = tmp_path / "export"
    write_records(src, records)
    write_clicks(src, click_rows(range(2)))
    result = import_mapped(
        load_mapping(write_mapping(tmp_path / "m")), [src], out=tmp_path / "out", secret=SECRET
    )
    [warning] = [w for w in result.warnings if w.rule == "says_not_recorded"]
    assert [(e.file, e.row, e.key) for e in warning.examples] == [
        ("records.csv", 6, {"student_id": shape(records[5][0])})
    ], warning.examples


def test_a_table_no_mapping_builds_is_refused_with_the_mapping_key_that_writes_it(tmp_path: Path) -> None:
    """A Korean university's records-only mapping was told to write activity.csv by hand inside an
    import, where the mapping's `empty` writes it."""
    src = write_extract(tmp_path / "export", weeks=range(1))
    records_only = MAPPING[: MAPPING.index("[tables.activity]")].replace(
        '[inputs.clicks]\nfiles = ["clicks*.csv"]\n', ""
    )
    assert "[inputs.clicks]" not in records_only
    with pytest.raises(ContractViolation, match=r'give the mapping empty = \["activity"\]'):
        _import_with(load_mapping(write_mapping(tmp_path / "m", records_only)), src, tmp_path / "out")


@pytest.mark.parametrize("case", ["upper", "lower", "turkish-upper", "turkish-lower"])
def test_a_sign_ins_number_is_cased_as_the_importer_cases_the_records(case: str) -> None:
    """The service puts a signed-in number in WAYMARK_STUDENT_ID_CASE's case in Python, the importer in
    DuckDB's SQL: Python writes "İ" in lower case as "i" with a combining dot and "ß" in upper case as
    "SS", DuckDB letter by letter, and a student whose number held one found no record."""
    import duckdb

    from waymark.models.pseudonyms import in_case
    from waymark.training.ingest.mapping.convert import _cased

    written = ["21bcs0457", "İSTANBUL", "straße", "\u0131i", "Iİ", "ﬁ", "Ǆǅǆ", "0b81dc42-44C2", "Øresund"]
    con = duckdb.connect()
    for value in written:
        sql = con.execute(f"SELECT {_cased('CAST(? AS VARCHAR)', case)}", [value]).fetchall()[0][0]
        assert in_case(value, case) == sql, (value, case)


def test_a_join_keeping_unmatched_rows_brings_an_interruption_to_the_few_who_have_one(tmp_path: Path) -> None:
    """A UK evening university keeps interruptions of study in their own table: an inner join on it
    dropped every enrolment of the students who never interrupted (8,744 of 9,257)."""
    src = write_extract(tmp_path / "export")
    first = records_rows()[-1]  # a registration of the running semester, no outcome yet
    interrupted = (STARTS[first[2]] + timedelta(days=30)).strftime("%d/%m/%Y")
    (src / "interruptions.csv").write_text(
        f"student_number,course_code,semester,interrupted\n{first[0]},{first[1]},{first[2]},{interrupted}\n"
        f"0{first[0]},{first[1]},{first[2]},{interrupted}\n",  # written otherwise: matches nobody
        encoding="utf-8",
    )
    keys = 'on = { student_number = "student_number", course_code = "course_code", semester = "semester" }'
    text = (
        MAPPING.replace(
            "[inputs.clicks]", '[inputs.interruptions]\nfiles = ["interruptions.csv"]\n\n[inputs.clicks]'
        )
        .replace(
            '[tables.registrations]\nfrom = "records"\n',
            '[tables.registrations]\nfrom = "records"\n'
            f'join = [{{ input = "interruptions", {keys}, keep_unmatched = true }}]\n',
        )
        .replace(
            'unregistration_day = { value = "" }',
            'unregistration_day = { column = "interrupted", date = "%d/%m/%Y" }',
        )
    )
    mapping = load_mapping(write_mapping(tmp_path / "m", text))
    dry = import_mapped(mapping, [src], out=tmp_path / "out", secret=SECRET, dry_run=True)
    said = dry.coverage.to_text()
    assert f"1 of the {len(records_rows())} rows in matched a row of interruptions (keep_unmatched" in said
    assert "matched nothing in the join" not in said
    # a joined row reaching nobody is said (a Polish university's disability list, keyed by a number
    # whose leading zeros a spreadsheet dropped, recorded six disabled students as not disabled)
    assert "1 of the 2 rows of interruptions matched no row in, and would with leading zeros" in said
    import_mapped(mapping, [src], out=tmp_path / "out", secret=SECRET)
    registrations = load_learning_data(tmp_path / "out").registrations
    assert len(registrations) == len(records_rows())  # nobody dropped
    assert registrations["student_id"].notna().all()
    assert sorted(registrations["unregistration_day"].dropna().tolist()) == [30]


def test_an_extensions_table_maps_a_students_own_due_date_to_a_day_of_the_assessments_presentation(
    tmp_path: Path,
) -> None:
    """A UK evening university's records keep extensions per student (a new due date each): mapped to the
    contract's extensions table, the date counts from the start of the assessment's presentation."""
    src = write_extract(tmp_path / "export")
    import_mapped(
        load_mapping(write_mapping(tmp_path / "m1", MAPPING)), [src], out=tmp_path / "out", secret=SECRET
    )
    student, course, semester = records_rows()[-1][:3]
    start = STARTS[semester]
    work = tmp_path / "work"
    work.mkdir()
    due, extended = (
        (start + timedelta(days=20)).isoformat(),
        (start + timedelta(days=34)).strftime("%d/%m/%Y"),
    )
    (work / "assignments.csv").write_text(
        f"assessment_id,course,term,due\nESSAY1,{course},{semester},{due}\n", encoding="utf-8"
    )
    (work / "extensions.csv").write_text(
        f"student,assessment_id,new_due\n{student},ESSAY1,{extended}\n", encoding="utf-8"
    )
    text = """
version = 1
name = "extensions"
timezone = "Europe/Lisbon"
[pseudonymise]
columns = ["student_id"]
[inputs.assignments]
files = ["assignments.csv"]
[inputs.extensions]
files = ["extensions.csv"]
[tables.assessments]
from = "assignments"
[tables.assessments.columns]
assessment_id = "assessment_id"
module_id = "course"
presentation_id = "term"
type = { value = "coursework" }
due_day = { column = "due", date = "iso" }
weight = { value = 50 }
[tables.extensions]
from = "extensions"
[tables.extensions.columns]
student_id = "student"
assessment_id = "assessment_id"
due_day = { column = "new_due", date = "%d/%m/%Y" }
"""
    import_mapped(
        load_mapping(write_mapping(tmp_path / "m2", text)),
        [work],
        out=tmp_path / "out",
        secret=SECRET,
        append=True,
    )
    data = load_learning_data(tmp_path / "out")
    assert data.extensions is not None
    assert data.extensions[["assessment_id", "due_day"]].values.tolist() == [["ESSAY1", 34]]
    assert data.extensions["student_id"].iloc[0] != student  # pseudonymised as every other table's
    assert data.extensions["student_id"].iloc[0] in set(data.registrations["student_id"])


def test_a_key_with_letters_outside_a_to_z_unquoted_is_named_with_the_remedy(tmp_path: Path) -> None:
    """A Swedish university's `type = { Inlämningsuppgift = "coursework" }` read only "Expected '='
    after a key in a key/value pair"."""
    text = MAPPING.replace(
        'values = { forum = "forum", quiz = "quiz" }', 'values = { forum = "forum", Inlämning = "quiz" }'
    )
    assert text != MAPPING
    with pytest.raises(MappingError) as caught:
        load_mapping(write_mapping(tmp_path, text))
    said = str(caught.value)
    assert "not valid TOML" in said and "'ä' is not a letter a key may hold unquoted" in said
    quoted = text.replace("Inlämning =", '"Inlämning" =')
    load_mapping(write_mapping(tmp_path / "ok", quoted))  # parses


def test_a_mapping_that_writes_student_numbers_as_given_says_so(tmp_path: Path) -> None:
    """A Swedish university's ids are personnummer (a birth date, a digit for legal gender): a mapping
    without [pseudonymise] wrote them into the folder, and on into the database and the access log,
    without a word."""
    plain = MAPPING.replace('[pseudonymise]\ncolumns = ["student_id"]\n', "")
    assert plain != MAPPING
    src = write_extract(tmp_path / "export")
    result = import_mapped(load_mapping(write_mapping(tmp_path / "m", plain)), [src], out=tmp_path / "out")
    (said,) = [n for n in result.notes if "does not pseudonymise student_id" in n]
    assert '[pseudonymise] columns = ["student_id"]' in said
    kept = import_mapped(
        load_mapping(write_mapping(tmp_path / "m2", MAPPING)), [src], out=tmp_path / "out2", secret=SECRET
    )
    assert not [n for n in kept.notes if "pseudonymise" in n]


def test_the_outcome_words_are_read_from_every_rule_of_the_final_result() -> None:
    from waymark.training.ingest.mapping.importer import outcome_words

    rule = (
        'final_result = { column = "status", values = { Graduate = "pass", Dropout = "withdrawn", '
        'Enrolled = "", "" = "fail" }, patterns = { "Reprob*" = "fail" }, default = "withdrawn", '
        'otherwise = { column = "other", values = { AJAC = "fail", Graduate = "pass" } } }'
    )
    old = (
        'final_result = { column = "status", values = { Graduate = "pass", Dropout = "withdrawn", '
        'Enrolled = "" } }'
    )
    assert old in MAPPING
    mapping = parse_mapping(tomllib.loads(MAPPING.replace(old, rule)))
    assert outcome_words(mapping) == {
        "pass": ["Graduate"],
        "withdrawn": ["Dropout", "(any other value)"],
        "fail": ["(an empty cell)", "Reprob*", "AJAC"],
    }
    assert outcome_words(parse_mapping(tomllib.loads(MAPPING.replace(old, 'final_result = "status"')))) == {}


def test_a_day_can_start_after_midnight_for_timestamps_and_local_times(tmp_path: Path) -> None:
    """A London evening university: a quarter of the platform's events fell between midnight and 3 am,
    so a Sunday-night session was Monday's, in the next teaching week. ``day_starts_at`` moves it back,
    in wall-clock time, in the mapping's zone or the row's own."""
    src = tmp_path / "export"
    write_records(src)
    student, course = STUDENTS[0], COURSES[0]
    lines = [
        "user,course,term,time,tool,ip_address,tz",
        f"{student},{course},2023S1,2023-09-26T01:30:00Z,forum,10.0.0.1,",  # 02:30 in Lisbon: the 25th's
        f"{student},{course},2023S1,2023-09-26T02:30:00Z,quiz,10.0.0.1,",  # 03:30 in Lisbon: the 26th
        f"{student},{course},2023S1,2023-09-25T17:00:00Z,page,10.0.0.1,Asia/Tokyo",  # 02:00 on the 26th there
        f"{student},{course},2023S1,2023-09-25T22:00:00Z,wiki,10.0.0.1,",  # 23:00 on the 25th: unchanged
    ]
    (src / "clicks.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rule = 'day = { column = "time", timestamp = "iso" }'
    assert rule in MAPPING
    late = MAPPING.replace(
        rule, 'day = { column = "time", timestamp = "iso", zone = "tz", day_starts_at = "03:00" }'
    )
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", late)), src, tmp_path / "out")
    days = load_learning_data(out).activity.set_index("activity_type")["day"]
    assert (days["forum"], days["quiz"], days["page"], days["wiki"]) == (7, 8, 7, 7)  # the 25th is day 7
    # without it, each moment's own calendar day
    plain = MAPPING.replace(rule, 'day = { column = "time", timestamp = "iso", zone = "tz" }')
    out = _import_with(load_mapping(write_mapping(tmp_path / "p", plain)), src, tmp_path / "plain")
    days = load_learning_data(out).activity.set_index("activity_type")["day"]
    assert (days["forum"], days["quiz"], days["page"], days["wiki"]) == (8, 8, 8, 7)
    # a local time read with a date format that has an hour
    local = [lines[0], f"{student},{course},2023S1,26/09/2023 02:59,forum,10.0.0.1,"]
    (src / "clicks.csv").write_text("\n".join(local) + "\n", encoding="utf-8")
    written = MAPPING.replace(
        rule, 'day = { column = "time", date = "%d/%m/%Y %H:%M", day_starts_at = "03:00" }'
    )
    out = _import_with(load_mapping(write_mapping(tmp_path / "w", written)), src, tmp_path / "written")
    assert load_learning_data(out).activity["day"].tolist() == [7]
    with pytest.raises(MappingError, match="day_starts_at moves the day of a moment"):
        load_mapping(
            write_mapping(
                tmp_path / "d",
                MAPPING.replace(rule, 'day = { column = "time", date = "iso", day_starts_at = "03:00" }'),
            )
        )
    with pytest.raises(MappingError, match="day_starts_at"):
        load_mapping(
            write_mapping(
                tmp_path / "e",
                MAPPING.replace(rule, 'day = { column = "time", timestamp = "iso", day_starts_at = "3am" }'),
            )
        )


def test_a_day_that_starts_after_midnight_does_so_by_the_local_clock_on_the_night_clocks_change(
    tmp_path: Path,
) -> None:
    """A reviewer's point: the hours come off the local time, not the moment, so 03:00 is 03:00 on the
    night summer time ends (Lisbon, 29 October 2023, 02:00 back to 01:00)."""
    src = tmp_path / "export"
    write_records(src)
    student, course = STUDENTS[0], COURSES[0]
    lines = [
        "user,course,term,time,tool,ip_address",
        f"{student},{course},2023S1,2023-10-29T00:30:00Z,forum,10.0.0.1",  # 01:30 summer time: the 28th's
        f"{student},{course},2023S1,2023-10-29T01:30:00Z,quiz,10.0.0.1",  # 01:30 winter time: the 28th's
        f"{student},{course},2023S1,2023-10-29T02:30:00Z,page,10.0.0.1",  # 02:30: the 28th's
        f"{student},{course},2023S1,2023-10-29T03:10:00Z,wiki,10.0.0.1",  # 03:10: the 29th
    ]
    (src / "clicks.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rule = 'day = { column = "time", timestamp = "iso" }'
    late = MAPPING.replace(rule, 'day = { column = "time", timestamp = "iso", day_starts_at = "03:00" }')
    out = _import_with(load_mapping(write_mapping(tmp_path / "m", late)), src, tmp_path / "out")
    days = load_learning_data(out).activity.set_index("activity_type")["day"]
    assert (days["forum"], days["quiz"], days["page"], days["wiki"]) == (40, 40, 40, 41)  # the 29th is day 41


def test_a_value_a_rule_maps_to_not_known_yet_does_not_fall_through_to_its_otherwise(tmp_path: Path) -> None:
    """A Kazakh university's FX (may resit the exam) = "" under a `when`, with an `otherwise` mapping the
    status "не зачтено" to fail: the "" fell through, and 455 resits were trained on as failures."""
    src = tmp_path / "export"
    rows = records_rows()
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    old = (
        'final_result = { column = "status", values = { Graduate = "pass", Dropout = "withdrawn", '
        'Enrolled = "" } }'
    )
    chain = (
        'final_result = { column = "status", values = { Enrolled = "" }, when = { status = ["Enrolled"] }, '
        'otherwise = { column = "status", values = { Graduate = "pass", Dropout = "withdrawn", '
        'Enrolled = "fail" } } }'
    )
    assert old in MAPPING
    mapping = load_mapping(write_mapping(tmp_path / "m", MAPPING.replace(old, chain)))
    import_mapped(mapping, [src], out=tmp_path / "o", secret=SECRET)
    outcomes = pd.read_parquet(tmp_path / "o" / "registrations.parquet").final_result
    enrolled = sum(1 for r in rows if r[5] == "Enrolled")
    assert enrolled and int(outcomes.isna().sum()) == enrolled and "fail" not in set(outcomes.dropna())


ROTATIONS = """version = 1
name = "rotations"
empty = ["assessments", "assessment_results"]
[inputs.pres]
files = ["pres.csv"]
[inputs.regs]
files = ["regs.csv"]
[inputs.log]
files = ["log.csv"]
[tables.presentations]
from = "pres"
[tables.presentations.columns]
module_id = "module_id"
presentation_id = "presentation_id"
start_date = { column = "start_date", date = "iso" }
length_days = { column = "end", date = "iso" }
[tables.students]
from = "regs"
ignore = ["module_id", "presentation_id"]
[tables.students.columns]
student_id = "sid"
[tables.registrations]
from = "regs"
[tables.registrations.columns]
student_id = "sid"
module_id = "module_id"
presentation_id = "presentation_id"
registration_day = { value = "" }
unregistration_day = { value = "" }
final_result = { value = "" }
[tables.activity]
from = "log"
join = [{ input = "regs", on = { sid = "sid" } }]
aggregate = "count"
within_presentation = true
[tables.activity.columns]
student_id = "log.sid"
module_id = "module_id"
presentation_id = "presentation_id"
day = { column = "timestamp", timestamp = "iso" }
source = { value = "eportfolio" }
activity_type = { value = "case_log" }
"""


def test_an_entry_inside_one_rotation_is_not_also_the_next_rotations_pre_reading(tmp_path: Path) -> None:
    """A medical school's e-portfolio, joined to block enrolments on the student: an entry in the last
    week of one six-week rotation fell in the next block's 14 days before its start too, and 34% of
    entries were counted in two blocks. A student with no earlier block keeps their pre-reading."""
    src = tmp_path / "export"
    src.mkdir()
    (src / "pres.csv").write_text(
        "module_id,presentation_id,start_date,end\nROT,B1,2025-01-06,2025-02-16\nROT,B2,2025-02-17,2025-03-30\n",
        encoding="utf-8",
    )
    (src / "regs.csv").write_text(
        "sid,module_id,presentation_id\nS1,ROT,B1\nS1,ROT,B2\nS2,ROT,B2\n", encoding="utf-8"
    )
    (src / "log.csv").write_text(
        "sid,timestamp\n"
        "S1,2025-02-10T10:00:00Z\n"  # B1's day 35, B2's day -7
        "S2,2025-02-10T10:00:00Z\n"  # B2's day -7, and S2 was in no block then: pre-reading
        "S1,2025-02-20T10:00:00Z\n",  # B2's day 3
        encoding="utf-8",
    )
    mapping = load_mapping(write_mapping(tmp_path / "m", ROTATIONS))
    import_mapped(mapping, [src], out=tmp_path / "out")
    activity = pd.read_parquet(tmp_path / "out" / "activity.parquet")
    counted = sorted(zip(activity["student_id"], activity["presentation_id"], activity["day"], strict=True))
    assert counted == [("S1", "B1", 35), ("S1", "B2", 3), ("S2", "B2", -7)]


def test_a_mark_with_the_arabic_decimal_separator_is_read_as_a_number() -> None:
    """A Saudi university's marks wrote 85.5 as Arabic-Indic digits around U+066B; they were refused."""
    from waymark.models.data.contract import TABLES
    from waymark.training.ingest.mapping.convert import column_sql
    from waymark.training.ingest.mapping.schema import ColumnSpec

    column = next(c for c in TABLES["assessment_results"].columns if c.name == "score")
    sql = column_sql(ColumnSpec(column="x"), column, cell=_cell, pseudonymise=False)
    written = "\u0668\u0665\u066b\u0665"
    read = duckdb.execute(f"SELECT {sql.value}, {sql.check} FROM (SELECT CAST(? AS VARCHAR) AS x)", [written])
    assert read.fetchall() == [(85.5, None)]


def test_times_written_without_an_offset_are_read_in_the_zone_the_mapping_says_they_are_in() -> None:
    """A Saudi university's Blackboard wrote UTC times without a Z; read in Asia/Riyadh, a third of
    Ramadan's night-time events moved to the day before. ``written_in`` says which zone they are in."""
    from waymark.models.data.contract import TABLES
    from waymark.training.ingest.mapping.convert import column_sql
    from waymark.training.ingest.mapping.schema import ColumnSpec

    column = next(c for c in TABLES["activity"].columns if c.name == "day")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Riyadh'")  # the mapping's zone, as the importer sets it

    def day(written: str, **rule: str) -> object:
        sql = column_sql(
            ColumnSpec(column="x", timestamp="iso", **rule),
            column,
            cell=_cell,
            pseudonymise=False,
        )
        return con.execute(f"SELECT {sql.value} FROM (SELECT CAST(? AS VARCHAR) AS x)", [written]).fetchone()[
            0
        ]

    assert str(day("2025-03-10T22:30:00")) == "2025-03-10"  # read in Riyadh: 22:30 there
    assert str(day("2025-03-10T22:30:00", written_in="UTC")) == "2025-03-11"  # 01:30 in Riyadh
    assert str(day("2025-03-10T22:30:00+03:00", written_in="UTC")) == "2025-03-10"  # an offset stands
    with pytest.raises(ValueError, match='give it with timestamp = "iso"'):
        ColumnSpec(column="x", date="%d/%m/%Y", written_in="UTC")
    with pytest.raises(ValueError, match="unknown time zone"):
        ColumnSpec(column="x", timestamp="iso", written_in="Riyadh")


def test_a_value_map_whose_default_takes_most_values_is_said_to(tmp_path: Path) -> None:
    """Moodle's log exported in Spanish fell to `default = "other"` whole, and read as activity of no kind."""
    defaulting = MAPPING.replace(
        'activity_type = { column = "tool", values = { forum = "forum", quiz = "quiz" }, '
        "keep_unmapped = true }",
        'activity_type = { column = "tool", values = { forum = "forum", quiz = "quiz" }, default = "other" }',
    )
    assert defaulting != MAPPING
    mapping = str(write_mapping(tmp_path / "mapping", defaulting))

    def dry(src: Path) -> str:
        args = ["data", "import", "--mapping", mapping, str(src), "--out", str(tmp_path / "o"), "--dry-run"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        return result.output

    # In English a page, a third of the clicks at most, takes the default: nothing to say.
    assert "took its default" not in dry(write_extract(tmp_path / "english"))
    spanish = write_extract(tmp_path / "spanish")
    words = {"forum": "foro", "quiz": "cuestionario", "page": "página"}
    write_clicks(spanish, [[*r[:4], words[r[4]], r[5]] for r in click_rows(range(4))])
    said = dry(spanish)
    assert re.search(
        r"activity_type: ([\d,]+) of the \1 rows with a value \(100%\) matched no value", said
    ), said
    assert "'foro' (" in said and "'cuestionario' (" in said


def test_dates_of_another_calendar_read_as_years_ahead_are_refused_naming_the_calendar(
    tmp_path: Path,
) -> None:
    """A Nepali university's records write Bikram Sambat dates: 18/09/2080 is a Gregorian day too, 57
    years on, and the presentations had imported clean with their weeks in another century."""
    src = tmp_path / "export"
    rows = [[*r[:3], r[3][:6] + str(int(r[3][6:]) + 57), *r[4:]] for r in records_rows()]
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    mapping = str(write_mapping(tmp_path / "mapping"))
    args = ["data", "import", "--mapping", mapping, str(src), "--out", str(tmp_path / "o"), "--dry-run"]
    said = runner.invoke(app, args).output
    assert "tables.presentations.columns.start_date" in said, said
    assert "more than 10 years from now" in said and "Bikram Sambat" in said, said
    assert "18/09/2080" in said, said


def test_a_shape_keeps_the_script_its_digits_are_written_in() -> None:
    """A Nepali office wrote student numbers in Devanagari digits, the student file in 0-9: refused as
    9-9-99 against 9-9-99, the two forms could not be told apart."""
    written = "\u096d-\u0968-\u096a\u0969-A1"  # ७-२-४३-A1
    assert shape(written) == "\u096f-\u096f-\u096f\u096f-A9"
    assert shape("7-2-43-A1") == "9-9-99-A9"
    assert duckdb.sql(f"SELECT {shape_sql(repr(written))}").fetchall() == [(shape(written),)]
