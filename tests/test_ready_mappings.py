"""The ready mappings, end to end on fixtures built to each system's documented export.

See docs/ready-mappings.md.

The student-records extract builds the folder; each activity or assessment format is appended to a copy
of it. Every result must pass validation, load as learning data and give features, and a dry run on
the fixtures must map every value and use or deliberately ignore every column.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from tests.champion import approve_and_promote, govern, register, settings_in
from tests.vocabulary import forbidden_words
from waymark.models.data import load_learning_data, read_manifest, validate_folder
from waymark.models.features.build import build_features
from waymark.models.registry import configure
from waymark.service.db.engine import make_engine, upgrade
from waymark.service.scoring import score
from waymark.training.ingest.mapping.importer import ImportResult, import_mapped
from waymark.training.ingest.mapping.schema import load_mapping
from waymark.training.ingest.mappings import ready_mappings

BYOD = Path(__file__).parent / "fixtures" / "byod"
SECRET = b"a test secret of more than thirty-two bytes"
# mapping -> the fixture folder holding its exports
APPENDED = {
    "attendance": "records",
    "blackboard-activity": "blackboard",
    "canvas-submissions": "canvas",
    "canvas-web-logs": "canvas",
    "moodle-logstore": "moodle_logstore",
    "moodle-logs-report": "moodle_logs_report",
    "moodle-assignments": "moodle_assignments",
    "xapi": "xapi",
}


def _import(name: str, src: str, out: Path, *, append: bool = False, dry_run: bool = False) -> ImportResult:
    mapping = load_mapping(ready_mappings()[name])
    return import_mapped(mapping, [BYOD / src], out=out, secret=SECRET, append=append, dry_run=dry_run)


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("records") / "data"
    _import("student-records", "records", out)
    return out


@pytest.fixture(scope="module", params=sorted(APPENDED))
def appended(request: pytest.FixtureRequest, records: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(request.param) / "data"
    shutil.copytree(records, out)
    _import(request.param, APPENDED[request.param], out, append=True)
    return out


def _csv(folder: str, name: str) -> pd.DataFrame:
    return pd.read_csv(BYOD / folder / name, dtype=str, keep_default_na=False)


def test_every_ready_mapping_is_shipped_and_has_a_fixture() -> None:
    assert set(ready_mappings()) == {"student-records", *APPENDED}


def test_the_records_extract_alone_is_a_valid_folder(records: Path) -> None:
    report = validate_folder(records)
    assert report.ok, report
    data = load_learning_data(records)
    enrolments = _csv("records", "module_enrolments.csv")
    assert len(data.registrations) == len(enrolments) == 56
    assert data.activity.empty  # appended from the other systems
    assert len(data.assessment_results) == len(_csv("records", "marks.csv"))


def test_outcomes_are_mapped_and_a_deferred_outcome_stays_unknown(records: Path) -> None:
    registrations = load_learning_data(records).registrations
    outcomes = _csv("records", "module_enrolments.csv")["Module Outcome"]
    assert registrations["final_result"].isna().sum() == (outcomes == "Deferred").sum() > 0
    assert (registrations["final_result"] == "withdrawn").sum() == (outcomes == "Withdrawn").sum() > 0
    withdrawn = registrations[registrations["final_result"] == "withdrawn"]
    assert withdrawn["unregistration_day"].between(20, 70).all()


def test_dates_become_days_from_the_presentation_start(records: Path) -> None:
    data = load_learning_data(records)
    assert set(data.presentations["length_days"]) == {105}
    assert set(data.assessments["due_day"]) == {56, 104}
    assert data.registrations["registration_day"].between(-14, 3).all()


def test_student_numbers_are_pseudonymised_and_characteristics_kept_apart(records: Path) -> None:
    data = load_learning_data(records)
    numbers = set(_csv("records", "students.csv")["Student Number"])
    assert not numbers & set(data.students["student_id"])
    assert data.students["student_id"].str.fullmatch(r"p[0-9a-f]{20}").all()
    assert not {"sex", "ethnicity", "disability", "age_band"} & set(data.students.columns)
    protected = pd.read_parquet(records / "protected_characteristics.parquet")
    assert {"sex", "ethnicity", "disability", "age_band"} <= set(protected.columns)
    assert len(protected) == 56


def test_each_appended_format_gives_a_valid_folder_that_builds_features(appended: Path) -> None:
    report = validate_folder(appended)
    assert report.ok, report
    data = load_learning_data(appended)
    features = build_features(data, weeks=[4, 8])
    # everyone who never left has a row at both weeks; nobody else is invented
    stayed = set(data.registrations.loc[data.registrations["unregistration_day"].isna(), "student_id"])
    for week in (4, 8):
        assert stayed <= set(features.loc[features["week"] == week, "student_id"])
    assert set(features["student_id"]) <= set(data.registrations["student_id"])
    assert not features.isna().any().any()
    if not data.activity.empty:
        assert (features["act_total"] > 0).mean() > 0.5


@pytest.mark.parametrize("name", sorted(APPENDED))
def test_a_dry_run_maps_every_value_and_accounts_for_every_column(name: str, records: Path) -> None:
    coverage = _import(name, APPENDED[name], records, append=True, dry_run=True).coverage
    assert coverage.ok
    assert all(not table.issues for table in coverage.tables.values()), coverage.tables
    assert coverage.unused_columns == {}
    assert all(table.rows_out > 0 for table in coverage.tables.values())


def test_the_records_dry_run_covers_every_value_and_column(tmp_path: Path) -> None:
    coverage = _import("student-records", "records", tmp_path / "data", dry_run=True).coverage
    assert coverage.ok and coverage.unused_columns == {}
    assert all(not table.issues for table in coverage.tables.values())


def test_a_mark_without_a_submission_date_says_to_fill_the_day_it_was_assessed(tmp_path: Path) -> None:
    """An art school's juried performances had no submission date; the hint said to drop them, and every
    performance then read as work not submitted."""
    src = tmp_path / "records"
    shutil.copytree(BYOD / "records", src)
    marks = (src / "marks.csv").read_text(encoding="utf-8").splitlines()
    number, code, _date, mark = marks[1].split(",")
    marks[1] = ",".join([number, code, "", mark])
    (src / "marks.csv").write_text("\n".join(marks) + "\n", encoding="utf-8")
    mapping = load_mapping(ready_mappings()["student-records"])
    coverage = import_mapped(mapping, [src], out=tmp_path / "data", secret=SECRET, dry_run=True).coverage
    said = [i.text() for t in coverage.tables.values() for i in t.issues]
    assert any("submitted_day must have a value" in s and "put the day it was assessed" in s for s in said), (
        said
    )


def _activity(folder: Path) -> pd.DataFrame:
    activity = load_learning_data(folder).activity
    return activity.sort_values(list(activity.columns[:6])).reset_index(drop=True)


def test_the_logs_report_and_the_log_table_give_the_same_activity(records: Path, tmp_path: Path) -> None:
    # the two Moodle exports describe the same events: one by user id, one by full name
    folders = {}
    for name in ("moodle-logstore", "moodle-logs-report"):
        folders[name] = tmp_path / name
        shutil.copytree(records, folders[name])
        _import(name, APPENDED[name], folders[name], append=True)
    pd.testing.assert_frame_equal(
        _activity(folders["moodle-logstore"]), _activity(folders["moodle-logs-report"])
    )


def _daily(folder: Path) -> pd.DataFrame:
    activity = load_learning_data(folder).activity
    keys = ["student_id", "module_id", "presentation_id", "day"]
    return activity.groupby(keys, as_index=False)["count"].sum().sort_values(keys, ignore_index=True)


def test_canvas_and_blackboard_count_the_same_events_on_the_same_days_as_moodle(
    records: Path, tmp_path: Path
) -> None:
    # the fixtures describe one set of events as each platform logs it: Moodle by unix time, Canvas in
    # UTC with a "Z", Blackboard in the server's local time; each is a day in UK time
    daily = {}
    for name in ("moodle-logstore", "canvas-web-logs", "blackboard-activity"):
        out = tmp_path / name
        shutil.copytree(records, out)
        _import(name, APPENDED[name], out, append=True)
        daily[name] = _daily(out)
    pd.testing.assert_frame_equal(daily["moodle-logstore"], daily["canvas-web-logs"])
    pd.testing.assert_frame_equal(daily["moodle-logstore"], daily["blackboard-activity"])


def test_canvas_counts_only_students_own_requests_in_mapped_courses(records: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    shutil.copytree(records, out)
    _import("canvas-web-logs", "canvas", out, append=True)
    log = _csv("canvas", "web_logs.csv")
    enrolled = _csv("canvas", "student_enrolments.csv")
    pairs = set(zip(enrolled["user_id"], enrolled["course_id"], strict=True))
    own = log[
        (log["real_user_id"] == "")
        & log["course_id"].isin(_csv("canvas", "course_map.csv")["course_id"])
        & pd.Series(list(zip(log["user_id"], log["course_id"], strict=True)), index=log.index).isin(pairs)
    ]
    activity = load_learning_data(out).activity
    # the teacher, the teacher viewing as a student, the dashboard and an unmapped course are left out
    assert activity["count"].sum() == len(own) == len(log) - 4
    assert set(activity["activity_type"]) == {"homepage", "resource", "page", "forum", "quiz", "assignment"}
    labels = pd.read_csv(out / "sources.csv")
    assert "the learning platform (Canvas)" in set(labels["label"])


def test_canvas_points_become_percentages_on_the_uk_day_submitted(records: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    shutil.copytree(records, out)
    _import("canvas-submissions", "canvas", out, append=True)
    data = load_learning_data(out)
    quizzes = data.assessments[data.assessments["assessment_id"].str.endswith("-Q1")]
    assert set(quizzes["type"]) == {"quiz"} and set(quizzes["due_day"]) == {24}
    results = data.assessment_results[data.assessment_results["assessment_id"].str.endswith("-Q1")]
    sheet = _csv("canvas", "submissions.csv")
    assert (sheet["workflow_state"] == "unsubmitted").sum() == 1
    sheet = sheet[sheet["workflow_state"] != "unsubmitted"]
    assert len(results) == len(sheet) > 0
    # points out of points possible; a submission not marked yet is a result without a score
    expected = sorted(float(v) / 20 * 100 for v in sheet["score"] if v)
    assert sorted(results["score"].dropna().astype(float)) == pytest.approx(expected)
    assert results["score"].isna().sum() == (sheet["score"] == "").sum() == 1
    assert results["submitted_day"].between(19, 24).all()
    # a submission at 23:30 UTC in October is the next day in the UK (BST): the fixture holds one
    utc_days = pd.to_datetime(sheet["submitted_at"], utc=True).dt.tz_localize(None).dt.normalize()
    starts = {"2024-25-S1": pd.Timestamp("2024-09-30"), "2025-26-S1": pd.Timestamp("2025-09-29")}
    stamps = (
        pd.to_datetime(sheet["submitted_at"], utc=True).dt.tz_convert("Europe/London").dt.tz_localize(None)
    )
    assessment = sheet["assignment_id"].map({"93101": "2024-25-S1", "94101": "2025-26-S1"})
    assert (stamps.dt.normalize() != utc_days).sum() == 1
    days = sorted((stamps.dt.normalize() - assessment.map(starts)).dt.days)
    assert sorted(results["submitted_day"].astype(int)) == days


def test_blackboard_counts_course_events_and_reads_discussions_as_forum(
    records: Path, tmp_path: Path
) -> None:
    out = tmp_path / "data"
    shutil.copytree(records, out)
    _import("blackboard-activity", "blackboard", out, append=True)
    log = _csv("blackboard", "activity_accumulator.csv")
    activity = load_learning_data(out).activity
    assert (
        activity["count"].sum() == (~log["event_type"].isin(["SESSION_INIT", "LOGOUT"])).sum() == len(log) - 2
    )
    forum = log["event_type"].str.startswith("DISCUSSION_") | (
        log["internal_handle"] == "discussion_board_entry"
    )
    assert activity.loc[activity["activity_type"] == "forum", "count"].sum() == forum.sum() > 0
    assert set(activity["activity_type"]) == {"homepage", "resource", "forum", "assignment"}


def test_only_students_participating_events_in_mapped_courses_count(records: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    shutil.copytree(records, out)
    _import("moodle-logstore", "moodle_logstore", out, append=True)
    log = _csv("moodle_logstore", "logstore_standard_log.csv")
    students = set(_csv("moodle_logstore", "student_enrolments.csv")["userid"])
    counted = log[
        (log["edulevel"] == "2") & log["courseid"].isin(["101", "201"]) & log["userid"].isin(students)
    ]
    assert load_learning_data(out).activity["count"].sum() == len(counted) < len(log)
    assert set(load_learning_data(out).activity["activity_type"]) <= {
        "homepage",
        "resource",
        "page",
        "url",
        "forum",
        "quiz",
        "assignment",
        "book",
    }


def test_voided_xapi_statements_do_not_count(records: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    shutil.copytree(records, out)
    _import("xapi", "xapi", out, append=True)
    lines = (BYOD / "xapi" / "statements.jsonl").read_text(encoding="utf-8").splitlines()
    assert load_learning_data(out).activity["count"].sum() == len(lines) - 2


def test_assignment_results_are_submissions_with_percentages(records: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    shutil.copytree(records, out)
    _import("moodle-assignments", "moodle_assignments", out, append=True)
    data = load_learning_data(out)
    essays = data.assessment_results[data.assessment_results["assessment_id"].str.endswith("-FE")]
    sheets = pd.concat(
        [_csv("moodle_assignments", p.name) for p in (BYOD / "moodle_assignments").glob("Grades-*")]
    )
    assert len(essays) == (sheets["Status"] != "No submission").sum() > 0
    assert essays["submitted_day"].between(17, 21).all()
    assert essays["score"].between(0, 100).all()


def test_appending_the_same_extract_again_changes_nothing(records: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    shutil.copytree(records, out)
    _import("attendance", "records", out, append=True)
    before = _activity(out)
    again = _import("attendance", "records", out, append=True)
    assert again.written is not None and again.written["activity"]["added"] == 0
    pd.testing.assert_frame_equal(before, _activity(out))
    increments = read_manifest(out)["increments"]
    assert [i["mapping"] for i in increments] == ["student-records", "attendance", "attendance"]
    assert increments[1]["files"] == increments[2]["files"]  # the same extract, by its checksum


def test_each_source_is_labelled_for_staff(appended: Path) -> None:
    sources = set(load_learning_data(appended).activity["source"])
    if sources:
        labels = pd.read_csv(appended / "sources.csv")
        assert sources <= set(labels["source"])
        assert labels["label"].str.len().gt(0).all()


@pytest.mark.slow
def test_a_folder_built_from_ready_mappings_is_scored_to_published_indicators(tmp_path: Path) -> None:
    # records, attendance, the Moodle log table and assignment worksheets: trained on the 2024
    # presentation, audited, approved, and the 2025 presentation scored at week 8
    out = tmp_path / "data"
    steps = [
        ("student-records", "records"),
        ("attendance", "records"),
        ("moodle-logstore", "moodle_logstore"),
        ("moodle-assignments", "moodle_assignments"),
    ]
    for i, (name, src) in enumerate(steps):
        _import(name, src, out, append=i > 0)
    settings = settings_in(tmp_path / "store")
    version = register(out, settings, "byod", "logistic", 0)
    audited = govern(out, settings, "byod", version, tmp_path / "audit")
    url = f"sqlite:///{tmp_path}/service.db"
    engine = make_engine(url)
    upgrade(engine)
    approve_and_promote(engine, audited)
    configure(settings.model_copy(update={"database_url": url}))
    summary = score(out, engine, model_name="byod", week=8)
    with engine.connect() as conn:
        indicators = pd.read_sql(
            "SELECT student_id, presentation_id, coverage, factors FROM indicators", conn
        )
    engine.dispose()
    registrations = load_learning_data(out).registrations
    current = registrations[
        (registrations["presentation_id"] == "2025-26-S1")
        & (registrations["unregistration_day"].astype("Float64").fillna(1000) >= 56)
    ]
    assert summary.students == len(indicators) == len(current)
    assert set(indicators["student_id"]) == set(current["student_id"])
    coverage = json.loads(indicators["coverage"].iloc[0])
    assert set(coverage["sources_recorded"]) == {
        "the learning platform (Moodle)",
        "attendance at timetabled sessions",
    }
    assert not [w for text in indicators["factors"] for w in forbidden_words(text)]


def test_the_command_takes_a_ready_mappings_name_in_place_of_its_path(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from waymark.cli import app

    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    out = tmp_path / "data"
    args = ["data", "import", str(BYOD / "records"), "--mapping", "student-records", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--secret-file", str(secret), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert validate_folder(out).ok
    assert read_manifest(out)["source"] == "mapping:student-records"
    unknown = CliRunner().invoke(app, [*args[:3], "--mapping", "no-such-mapping", "--out", str(out)])
    assert unknown.exit_code != 0 and "no-such-mapping" in unknown.output


def test_an_append_counting_days_in_another_time_zone_is_refused_and_timezone_sets_it(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from waymark.cli import app

    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    out = tmp_path / "data"
    common = ["--out", str(out), "--secret-file", str(secret)]
    records = ["data", "import", str(BYOD / "records"), "--mapping", "student-records", *common]
    made = CliRunner().invoke(app, [*records, "--timezone", "Australia/Sydney"])
    assert made.exit_code == 0, made.output
    assert "read as Australia/Sydney time" in made.output
    assert read_manifest(out)["timezone"] == "Australia/Sydney"
    records_only = tmp_path / "records-only"
    shutil.copytree(out, records_only)
    moodle = [
        "data",
        "import",
        str(BYOD / "moodle_logstore"),
        "--mapping",
        "moodle-logstore",
        *common,
        "--append",
    ]
    before = read_manifest(out)
    refused = CliRunner().invoke(app, moodle)  # the ready mapping says Europe/London
    assert refused.exit_code != 0
    assert "Australia/Sydney" in refused.output and "Europe/London" in refused.output
    assert "--timezone Australia/Sydney" in refused.output
    assert read_manifest(out) == before  # nothing written
    kept = CliRunner().invoke(app, [*moodle, "--timezone", "Australia/Sydney"])
    assert kept.exit_code == 0, kept.output
    assert read_manifest(out)["timezone"] == "Australia/Sydney"
    # A mapping that names no zone is read in the folder's, and the folder keeps it.
    zoneless = tmp_path / "moodle-no-zone.toml"
    text = ready_mappings()["moodle-logstore"].read_text(encoding="utf-8")
    zoneless.write_text(
        "\n".join(x for x in text.splitlines() if not x.startswith("timezone")), encoding="utf-8"
    )
    other = tmp_path / "other"
    shutil.copytree(records_only, other)
    plain = ["data", "import", str(BYOD / "moodle_logstore"), "--mapping", str(zoneless), "--out", str(other)]
    again = CliRunner().invoke(app, [*plain, "--secret-file", str(secret), "--append"])
    assert again.exit_code == 0, again.output
    assert "read as Australia/Sydney time" in again.output
    assert read_manifest(other)["timezone"] == "Australia/Sydney"
    days = ["student_id", "module_id", "presentation_id", "day", "source", "count"]
    same = [
        load_learning_data(f).activity[days].sort_values(days).reset_index(drop=True) for f in (out, other)
    ]
    pd.testing.assert_frame_equal(same[0], same[1])
    wrong = CliRunner().invoke(app, [*moodle, "--timezone", "Sydney"])
    assert wrong.exit_code != 0 and "'Sydney' is not a time zone" in wrong.output


def test_the_directory_is_loaded_by_student_number_with_the_secret_the_imports_used(
    records: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from waymark.cli import app
    from waymark.models.settings import get_settings
    from waymark.service.db.engine import transaction
    from waymark.service.db.schema import DirectoryEntry
    from waymark.training.ingest.mapping.pseudonyms import id_pseudonymiser

    numbers = _csv("records", "students.csv")["Student Number"].astype(str).tolist()[:5]
    lines = ["student_id,display_name,preferred_name,pronouns,email"]
    # written as a spreadsheet might: padded, and one as a decimal
    lines += [f" {n} ,Student {i},,,s{i}@example.ac.uk" for i, n in enumerate(numbers[:4])]
    lines.append(f"{numbers[4]}.0,Student 4,,,s4@example.ac.uk")
    directory = tmp_path / "directory.csv"
    directory.write_text("\n".join(lines) + "\n", encoding="utf-8")
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    url = f"sqlite:///{tmp_path}/service.db"
    args = ["directory", "import", str(directory), "--data", str(records)]
    env = {"WAYMARK_DATABASE_URL": url}
    # Without the secret, raw student numbers are nobody in a folder of pseudonyms: said once, not per row
    # (an Israeli university's 1,600 rows were each "not a student Waymark knows").
    get_settings.cache_clear()  # read from ``env`` below, whatever an earlier test's settings were
    raw = CliRunner().invoke(app, args, env=env)
    assert raw.exit_code == 2 and "ids are pseudonyms: give the secret the imports used" in raw.output
    assert "is not a student Waymark knows" not in raw.output
    stranger = tmp_path / "stranger.csv"
    stranger.write_text(lines[0] + "\n99999999,Nobody,,,n@example.ac.uk\n", encoding="utf-8")
    unknown = CliRunner().invoke(
        app,
        ["directory", "import", str(stranger), "--data", str(records), "--secret-file", str(secret)],
        env=env,
    )
    # named as the file writes it, not by the pseudonym nobody could trace back to a line
    assert unknown.exit_code == 2 and "student_id '99999999' is not a student Waymark knows" in unknown.output
    loaded = CliRunner().invoke(app, [*args, "--secret-file", str(secret)], env=env)
    get_settings.cache_clear()  # not left to a later test
    assert loaded.exit_code == 0, loaded.output
    engine = make_engine(url)
    with transaction(engine) as session:
        stored = {e.student_id: e.display_name for e in session.scalars(select(DirectoryEntry))}
    engine.dispose()
    pseudonym = id_pseudonymiser(SECRET)
    assert stored == {pseudonym(n): f"Student {i}" for i, n in enumerate(numbers)}
    folder_students = set(load_learning_data(records).students["student_id"])
    assert set(stored) <= folder_students and not set(numbers) & set(stored)


def test_an_access_file_in_another_case_is_named_as_written_with_the_case_said(tmp_path: Path) -> None:
    """An institution's tutor file wrote half its student numbers in lower case: 750 students were
    "not in the data folder (for example p0057a7cfd54df4ca2718)", a pseudonym nobody could trace. An
    institute's lost its leading zeros in a spreadsheet (98765 for 0098765)."""
    from waymark.cli.access import _as_imported, _as_written, _written_otherwise
    from waymark.training.ingest.mapping.pseudonyms import id_pseudonymiser

    pseudonym = id_pseudonymiser(SECRET)
    known = frozenset(pseudonym(n) for n in ("S2300001", "S2300002", "S2300003", "0098765", "4321"))
    file = tmp_path / "access.csv"
    file.write_text(
        "staff_id,relationship,scope_type,scope_id\n"
        "t1,personal_tutor,student,S2300001\nt1,personal_tutor,student,s2300002\n"
        "t1,personal_tutor,student,s9999999\nt2,module_leader,module,NU1001\n"
        "t3,personal_tutor,student,98765\nt3,personal_tutor,student,004321\n",
        encoding="utf-8",
    )
    written = _as_written(file, pseudonym)
    unknown = sorted(p for p in written if p not in known)
    assert sorted(written[u] for u in unknown) == ["004321", "98765", "s2300002", "s9999999"]  # as written
    assert _written_otherwise(unknown, written, pseudonym=pseudonym, known=known) == 3
    assert _as_imported("s2300002", pseudonym=pseudonym, known=known) == "S2300002"
    assert _as_imported("98765", pseudonym=pseudonym, known=known) == "0098765"
    assert _as_imported("004321", pseudonym=pseudonym, known=known) == "4321"
    assert _as_imported("s9999999", pseudonym=pseudonym, known=known) is None


def test_a_session_checked_into_twice_is_attended_once(records: Path, tmp_path: Path) -> None:
    """An institution's QR check-ins held 3,709 double check-ins, each counted as two attendances."""
    out = tmp_path / "data"
    shutil.copytree(records, out)
    _import("attendance", "records", out, append=True)
    sheet = _csv("records", "attendance.csv")
    attended = sheet[sheet["Attended"] == "Y"]
    assert attended.duplicated().sum() == 1  # the fixture's double check-in
    activity = load_learning_data(out).activity
    assert activity["count"].sum() == len(attended.drop_duplicates(["Student ID", "Session ID"]))


def test_a_scope_naming_nothing_in_the_data_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A conservatoire's second-programme leader loaded with "Loaded 15 staff relationships." and saw
    no student: its joint students were kept under their first programme. A misspelt module code did
    the same. Both are said (and loaded all the same)."""
    from tests.contract_folder import make_folder
    from waymark.cli.access import _scopes_naming_nothing
    from waymark.models.data import load_learning_data

    folder = load_learning_data(make_folder(tmp_path / "data"))
    file = tmp_path / "access.csv"
    file.write_text(
        "staff_id,relationship,scope_type,scope_id\n"
        "t1,module_leader,module,M1\nt2,module_leader,module,m1 \nt3,programme_leader,programme,P1\n"
        "t4,programme_leader,programme,BA Musical Theatre\nt5,personal_tutor,student,S1\n",
        encoding="utf-8",
    )
    _scopes_naming_nothing(file, folder)
    said = " ".join(capsys.readouterr().out.split())
    assert "1 module scope names no module of the data folder (m1)" in said, said
    assert "1 programme scope names no programme of the data folder (BA Musical Theatre)" in said, said
    assert "student's second programme" in said and "S1" not in said
    # a section's presentation written otherwise than the data's (M1 2024J is the data's)
    file.write_text(
        "staff_id,relationship,scope_type,scope_id,presentation_id\n"
        "t1,module_leader,module,M1,2024J\nt2,module_leader,module,M1,2024-J\n",
        encoding="utf-8",
    )
    _scopes_naming_nothing(file, folder)
    said = " ".join(capsys.readouterr().out.split())
    assert "1 module relationship names a presentation no registration of the data folder is on" in said
    assert "(M1 2024-J)" in said and "M1 2024J" not in said
