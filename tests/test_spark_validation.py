"""One contract, two engines: Spark reports the same findings as DuckDB, and loads the same tables."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.contract_folder import VALID, make_folder, with_cell, with_row, write_csv
from tests.test_spark_features import assert_same_features
from waymark.cli import app
from waymark.models.data import FEATURE_TABLES, ContractViolation, ValidationReport, load_learning_data
from waymark.models.data import validate_folder as validate_on_duckdb
from waymark.models.features import KEYS, build_features

pytestmark = pytest.mark.spark


def _validate_on_spark(folder: str | Path, spark: Any) -> ValidationReport:
    from waymark.models.spark.validation import validate_folder

    return validate_folder(folder, spark)


def summary(report: ValidationReport) -> list[tuple[Any, ...]]:
    """Table, rule, column, count, severity and the examples' file, row, value and key of every finding."""
    return [
        (
            f.table,
            f.rule,
            f.column,
            f.count,
            f.severity,
            [(e.file, e.row, None if e.value is None else str(e.value), e.key) for e in f.examples],
        )
        for f in (*report.findings, *report.warnings)
    ]


def assert_same_report(duck: ValidationReport, spark: ValidationReport) -> None:
    assert summary(spark) == summary(duck)
    assert spark.row_counts == duck.row_counts
    assert spark.to_text() == duck.to_text()


def _copy(rows: list[list[str]]) -> list[list[str]]:
    return [list(r) for r in rows]  # with_row shares VALID's rows: changing a cell would change VALID


def _activity_rows() -> list[list[str]]:
    rows = with_cell("activity", 4, "day", "101")  # M1 2024J is 100 days long
    rows[2][rows[0].index("count")] = "2.5"  # a fraction
    rows[1][rows[0].index("activity_type")] = "Reading: week 1"  # free text
    rows.append(["S1", "M2", "2025B", "3", "vle", "resource", "1"])  # S1 is not on M2 2025B
    rows.append(["S2", "M1", "2024J", "7", "wifi", "login", "4"])  # a source nobody was told of
    rows.append(["S1", "M1", "2024J", "9", "vle", "discussion_topic", "1"])  # another platform's word
    return rows


def broken_everywhere(folder: Path) -> Path:
    """The hand-made folder breaking a rule in most tables, with the guidance a first export gets."""
    students = _copy(with_row("students", ["S2", "P9", "1", "full_time", "0", "120"]))  # duplicate key
    students[3][students[0].index("programme_id")] = "12.0"  # a decimal identifier
    students[1][students[0].index("year_of_study")] = "first"
    registrations = _copy(with_row("registrations", ["S1", "M1", "2030J", "0", "", ""]))  # no presentation
    registrations[2][registrations[0].index("registration_day")] = "23/09/2024"  # a date, not a day
    registrations[1][registrations[0].index("final_result")] = "dropped"
    assessments = with_cell("assessments", 1, "weight", "1.5d")  # Java would read 1.5; DuckDB refuses
    assessments[2][assessments[0].index("due_day")] = "95.0"  # a whole number with a decimal point
    results = with_row("assessment_results", ["S1", "A9", "10", "1_000"])  # unknown assessment; 1000 > 100
    make_folder(
        folder,
        students=students,
        registrations=registrations,
        assessments=assessments,
        assessment_results=results,
        activity=_activity_rows(),
        access=[
            [*VALID["access"][0], "valid_from", "valid_until", "presentation_id"],
            *([*row, "", "", ""] for row in VALID["access"][1:]),
            ["tutor-2", "personal_tutor", "school", "sci", "", "", ""],
            # a supervisor's two blocks that overlap by a month
            ["tutor-9", "placement_supervisor", "student", "S1", "2024-09-01", "2024-12-31", ""],
            ["tutor-9", "placement_supervisor", "student", "S1", "2024-12-01", "", ""],
            # a presentation given to a tutee, not a module
            ["tutor-3", "personal_tutor", "student", "S2", "", "", "2025B"],
            # a module listed whole and on one of its presentations
            ["lead-7", "module_leader", "module", "M1", "", "", ""],
            ["lead-7", "module_leader", "module", "M1", "", "", "2025B"],
            # an id an office export of right-to-left text gave an invisible override
            ["tutor-\u202e4", "personal_tutor", "school", "sci", "", "", ""],
        ],
        # a label naming a special category (a polytechnic's "Accommodated Testing Centre")
        sources=[
            ["source", "label"],
            ["vle", "the learning platform"],
            ["library", "the Accessibility Centre"],
        ],
    )
    (folder / "notes.txt").write_text("not a table\n", encoding="utf-8")
    return folder


def as_parquet(csv_folder: Path, out: Path) -> Path:
    """The folder as Parquet with inferred types; activity as two parts, its day as DOUBLE."""
    out.mkdir()
    for path in sorted(csv_folder.glob("*.csv")):
        ids = {c: pa.string() for c in pacsv.read_csv(path).column_names if c.endswith("_id")}
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=ids))
        if path.stem != "activity":
            pq.write_table(table, out / f"{path.stem}.parquet")
            continue
        days = table["day"].cast(pa.float64())
        table = table.set_column(table.column_names.index("day"), "day", days)
        (out / "activity").mkdir()
        pq.write_table(table.slice(0, 2), out / "activity" / "part-0.parquet")
        pq.write_table(table.slice(2), out / "activity" / "part-1.parquet")
    return out


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return broken_everywhere(tmp_path_factory.mktemp("broken") / "data")


def test_spark_finds_what_duckdb_finds_in_csv(broken: Path, spark: Any) -> None:
    duck = validate_on_duckdb(broken)
    rules = {(f.table, f.rule) for f in (*duck.findings, *duck.warnings)}
    assert {
        ("students", "unique_key"),
        ("students", "type_int"),
        ("students", "decimal_identifier"),
        ("registrations", "date_not_day"),
        ("registrations", "reference_presentations"),
        ("registrations", "allowed_values"),
        ("assessments", "type_float"),
        ("assessments", "integral_decimal"),
        ("assessment_results", "reference_assessments"),
        ("assessment_results", "maximum"),
        ("activity", "day_within_presentation"),
        ("activity", "reference_registrations"),
        ("activity", "identifier"),
        ("activity", "source_not_used"),
        ("activity", "unread_platform_type"),
        ("access", "scope_matches_relationship"),
        ("access", "periods_overlap"),
        ("access", "presentation_outside_module"),
        ("access", "module_whole_and_presentation"),
        ("access", "unseen_in_identifier"),
        ("(folder)", "unrecognised_file"),
        ("sources", "sensitive_category"),
    } <= rules, duck.to_text()
    assert_same_report(duck, _validate_on_spark(broken, spark))


def test_spark_finds_what_duckdb_finds_in_parquet(broken: Path, tmp_path: Path, spark: Any) -> None:
    folder = as_parquet(broken, tmp_path / "pq")
    duck = validate_on_duckdb(folder)
    assert ("activity", "integral_decimal") in {(f.table, f.rule) for f in duck.warnings}  # day is DOUBLE
    assert ("activity/part-1.parquet", 3) in {
        (e.file, e.row) for f in duck.findings if f.rule == "reference_registrations" for e in f.examples
    }
    assert_same_report(duck, _validate_on_spark(folder, spark))


def test_header_and_file_problems_are_found_alike(tmp_path: Path, spark: Any) -> None:
    def extra(name: str, column: str) -> list[list[str]]:
        return [[*row, column if i == 0 else "x"] for i, row in enumerate(VALID[name])]

    folder = make_folder(
        tmp_path / "data",
        activity=[r[:-1] for r in VALID["activity"]],  # no count column
        students=extra("students", "nickname"),  # an unexpected column
        assessments=extra("assessments", "gender"),  # a protected one
    )
    (folder / "access.csv").write_bytes(b"")
    (folder / "protected_characteristics.csv").write_bytes(b"student_id,gender\nS1,f\xe9\n")
    duck = validate_on_duckdb(folder)
    rules = {f.rule for f in duck.findings}
    assert {"missing_column", "unexpected_column", "protected_column", "empty_file", "not_utf8"} <= rules
    assert_same_report(duck, _validate_on_spark(folder, spark))


def test_a_hadoop_uri_is_listed_and_checked_through_spark(broken: Path, tmp_path: Path, spark: Any) -> None:
    folder = as_parquet(broken, tmp_path / "data")
    (folder / "access.parquet").unlink()
    write_csv(folder / "access.csv", VALID["access"])
    with (folder / "access.csv").open("a", encoding="utf-8") as fh:
        fh.write("tutor-3,personal_tutor\r\ntutor-4,personal_tutor,student,S1,extra\r\n")
    (folder / "sources.parquet").write_text("source,label\n", encoding="utf-8")  # not Parquet
    duck, spark_report = validate_on_duckdb(folder), _validate_on_spark(folder.as_uri(), spark)
    assert spark_report.folder == folder.as_uri()

    def without_malformed_reasons(report: ValidationReport) -> list[tuple[Any, ...]]:
        # DuckDB names each row's fault; Spark's parser says only that the row has the wrong fields.
        return [(*s[:5], [e[:2] for e in s[5]]) if s[1] == "malformed_row" else s for s in summary(report)]

    assert without_malformed_reasons(spark_report) == without_malformed_reasons(duck)
    rows = [e.row for f in spark_report.findings if f.rule == "malformed_row" for e in f.examples]
    assert rows == [3, 4]


def test_the_translated_sql_reads_text_as_duckdb_does(spark: Any) -> None:
    from waymark.models.spark.engine import collect
    from waymark.models.spark.sql import to_spark

    texts = ["1.5", " 2 ", "1.5d", "1e5F", "1_000", "1__000", "inf", "-inf", "NaN", "150.0", "1e400", "", "x"]
    sql = (
        "SELECT t, TRY_CAST(trim(t) AS DOUBLE) AS d, isfinite(TRY_CAST(trim(t) AS DOUBLE)) AS finite, "
        r"regexp_full_match(trim(t), '[+-]?[0-9]{1,18}\.0+') AS whole, "
        "trunc(TRY_CAST(trim(t) AS DOUBLE)) AS truncated, "
        "CAST(json_object('t', t, 'none', NULL) AS VARCHAR) AS j "
        "FROM texts ORDER BY t"
    )
    frame = pd.DataFrame({"t": [*texts, "150.0\n"]})
    con = duckdb.connect()
    con.register("texts", frame)
    duck = con.execute(sql).df()
    spark.createDataFrame(frame).createOrReplaceTempView("texts")
    other = collect(spark.sql(to_spark(sql)))

    def plain(frame: pd.DataFrame) -> list[list[Any]]:
        values = frame.drop(columns="j").astype(object)
        return values.where(values.notna(), None).values.tolist()

    assert plain(other) == plain(duck)
    assert [json.loads(j) for j in other["j"]] == [json.loads(j) for j in duck["j"]]


def test_load_tables_gives_the_tables_and_features_of_duckdb(
    synth_dir: Path, spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from waymark.models.data import folder_fingerprint, memo
    from waymark.models.spark import validation
    from waymark.models.spark.engine import collect
    from waymark.models.spark.features import spark_features
    from waymark.models.spark.reading import load_tables

    def one_by_one(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a rule ran in a Spark job of its own: the rules' single query failed")

    # A valid folder's rules run as one query: the rule-by-rule fallback (a Spark job per rule, a scan of
    # the data each) ran on every folder with two protected characteristics, whose rules' WITH names
    # clashed once Spark's SQL lifted them to the top.
    monkeypatch.setattr(validation, "_run_one", one_by_one)
    folder = tmp_path / "data"  # a copy: no memo of an earlier check beside it
    shutil.copytree(synth_dir, folder)
    assert not memo.remembered(folder, fingerprint=folder_fingerprint(folder))
    tables = load_tables(folder, spark)
    assert set(tables) == set(FEATURE_TABLES)
    data = load_learning_data(synth_dir)
    for name, frame in data.tables().items():
        assert tables[name].columns == list(frame.columns), name
    weeks = [1, 4, 8, 16]
    other = collect(spark_features(tables, spark, weeks=weeks)).sort_values(list(KEYS), ignore_index=True)
    assert_same_features(build_features(data, weeks), other)

    # Spark's own check is not remembered (the memo's rules digest is DuckDB's); checked on DuckDB, as an
    # import checks what it publishes, the folder read again unchanged has its rules not run again.
    assert not memo.remembered(folder, fingerprint=folder_fingerprint(folder))
    load_learning_data(folder)
    assert memo.remembered(folder, fingerprint=folder_fingerprint(folder))
    ran: list[int] = []
    monkeypatch.setattr(validation, "_run_all", lambda views, rules, **kw: ran.append(len(rules)) or [])
    again = load_tables(folder, spark)
    assert ran == [] and set(again) == set(FEATURE_TABLES)
    # Changed, it is checked again.
    (folder / "notes.txt").write_text("a file added", encoding="utf-8")
    load_tables(folder, spark)
    assert len(ran) == 1 and ran[0] > 100


def test_load_tables_leaves_out_unannounced_sources_and_refuses_a_broken_folder(
    tmp_path: Path, spark: Any
) -> None:
    from waymark.models.data import source_labels
    from waymark.models.spark.engine import collect
    from waymark.models.spark.reading import load_tables, validated
    from waymark.models.spark.reading import source_labels as labels_on_spark

    folder = make_folder(
        tmp_path / "ok",
        activity=[
            *with_row("activity", ["S2", "M1", "2024J", "7", "wifi", "login", "4"]),
            ["S1", "M1", "2024J", "9", "clickers", "answer", "2"],
        ],
        assessment_results=None,
        # clickers are announced and read as quizzes (tests/test_source_kinds.py); wifi is not announced
        sources=[
            ["source", "label", "notice_given_on", "counts_as"],
            ["clickers", "clickers", "2024-09-01", "quiz"],
        ],
    )
    tables, data = load_tables(folder, spark), load_learning_data(folder)
    for name, frame in data.tables().items():
        got = collect(tables[name]).astype(frame.dtypes.to_dict())
        assert sorted(map(str, got.astype(str).values.tolist())) == sorted(
            map(str, frame.astype(str).values.tolist())
        ), name
    assert {"wifi", "clickers"}.isdisjoint(collect(tables["activity"])["source"])
    assert "quiz" in set(collect(tables["activity"])["source"])
    with validated(folder, spark) as views:
        assert labels_on_spark(views) == source_labels(folder)
    assert source_labels(folder)["quiz"] == "clickers"
    with pytest.raises(ContractViolation, match="unique_key"):
        load_tables(make_folder(tmp_path / "bad", students=with_row("students", VALID["students"][1])), spark)


def test_the_command_line_reports_alike_on_spark(
    broken: Path, spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYMARK_SPARK_SQL_SHUFFLE_PARTITIONS", "2")  # keep the shared session's setting
    runner = CliRunner()
    duck = runner.invoke(app, ["data", "validate", str(broken), "--json"])
    other = runner.invoke(app, ["data", "validate", str(broken), "--json", "--engine", "spark"])
    assert (duck.exit_code, other.exit_code) == (1, 1), other.output
    assert json.loads(other.stdout)["violations"] == json.loads(duck.stdout)["violations"]
    refused = runner.invoke(app, ["data", "validate", str(broken), "--spark-master", "local[1]"])
    assert refused.exit_code == 2 and "--engine spark" in refused.output


def test_ids_differing_only_by_leading_zeros_are_named_alike(tmp_path: Path, spark: Any) -> None:
    students = [list(r) for r in VALID["students"]]
    for r in students[1:]:
        r[0] = "000" + r[0][1:]
    registrations = [list(r) for r in VALID["registrations"]]
    for r in registrations[1:3]:
        r[0] = r[0][1:]
    folder = make_folder(tmp_path, students=students, registrations=registrations)
    duck, other = validate_on_duckdb(folder), _validate_on_spark(folder, spark)
    assert [w.rule for w in duck.warnings if w.rule.endswith("_leading_zeros")] == [
        "reference_students_leading_zeros"
    ]
    assert summary(other) == summary(duck)
