"""The data-quality report: right figures, plain words, nothing that labels a student."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.contract_folder import VALID, make_folder
from tests.vocabulary import forbidden_words
from waymark.models.data import load_learning_data, validate_folder
from waymark.models.data.quality import NOT_ENTERED, QUIET_ACTIVE_SHARE, QualityReport, quality_report
from waymark.models.data.validation import connect
from waymark.models.explain.typical import NEARLY_ALL


def _report(folder: Path) -> QualityReport:
    con = connect()
    assert validate_folder(folder, con=con).ok
    return quality_report(con)


def test_registrations_without_activity_are_counted(synth_dir: Path) -> None:
    data = load_learning_data(synth_dir)
    keys = ["student_id", "module_id", "presentation_id"]
    seen = data.activity[keys].drop_duplicates()
    merged = data.registrations.merge(seen, on=keys, how="left", indicator=True)
    expected = int((merged["_merge"] == "left_only").sum())
    assert _report(synth_dir).no_activity["registrations"] == expected > 0


def test_weekly_coverage_is_reported_for_every_source(synth_dir: Path) -> None:
    coverage = pd.DataFrame(_report(synth_dir).source_coverage_by_week)
    assert set(coverage["source"]) == {"vle", "lecture_capture", "library", "quiz", "attendance"}
    assert coverage["share"].between(0, 1).all()
    week1 = coverage[(coverage["source"] == "vle") & (coverage["week"] == 1)].iloc[0]
    assert week1["active"] <= week1["population"]


def test_late_and_missing_registration_days_are_counted(tmp_path: Path) -> None:
    report = _report(make_folder(tmp_path))
    assert report.registration_timing["late"] == 1  # S3 registered on day 2
    missing = {(m["table"], m["column"]): m["missing"] for m in report.missing_values}
    assert missing[("assessments", "due_day")] == 1
    assert missing[("assessment_results", "score")] == 1


def test_gaps_are_explained_for_modules_missing_a_source(synth_dir: Path) -> None:
    notes = " ".join(_report(synth_dir).notes)
    assert "HIS105 records no data from lecture recordings or online quizzes" in notes


def test_the_report_uses_no_labelling_words(synth_dir: Path) -> None:
    report = _report(synth_dir)
    assert forbidden_words(report.to_text()) == []
    assert forbidden_words(report.to_json()) == []
    assert json.loads(report.to_json())["overview"]["students"] == 1500


def test_optional_source_columns_left_empty_are_not_reported_as_gaps(tmp_path: Path) -> None:
    """A label for a built-in source, with no notice date and no kind: what the contract expects."""
    sources = [["source", "label", "notice_given_on", "counts_as"], ["vle", "the course website", "", ""]]
    report = _report(make_folder(tmp_path, sources=sources))
    missing = {(m["table"], m["column"]): m for m in report.missing_values}
    assert missing["sources", "notice_given_on"]["percent"] == 100.0
    assert missing["sources", "notice_given_on"]["meaning"]
    assert not [n for n in report.notes if n.startswith("sources.")], report.notes


def test_weeks_nobody_on_a_presentation_was_active_in_are_listed_for_the_data_steward(
    tmp_path: Path, synth_dir: Path
) -> None:
    # M1 2024J has activity on days -3, 1, 5 and 99 (weeks 1 and 15): weeks 2 to 14 are empty.
    report = _report(make_folder(tmp_path))
    assert report.quiet_weeks == [
        {
            "module_id": "M1",
            "presentation_id": "2024J",
            "first_week": 2,
            "last_week": 14,
            "first_day": 7,
            "last_day": 97,
            "to_data_end": False,
            "to_its_end": False,
            "from_start": False,
            "most_active": 0,
        }
    ]
    assert "  M1 2024J: weeks 2 to 14 (days 7 to 97)" in report.to_text().splitlines()
    assert [
        n for n in report.notes if "import them again" in n and n.startswith("1 presentation has whole weeks")
    ]
    # The synthetic cohorts have activity every week of every presentation.
    assert _report(synth_dir).quiet_weeks == []


def test_activity_features_never_read_does_not_hide_a_quiet_week(tmp_path: Path) -> None:
    # Week 8 of M1 2024J holds only a source without a notice date, which no feature reads: weeks 2 to
    # 14 are as quiet as before, as the features see them.
    unread = [["S1", "M1", "2024J", "50", "careers_portal", "visit", "2"]]
    report = _report(make_folder(tmp_path, activity=[*VALID["activity"], *unread]))
    assert [(q["first_week"], q["last_week"]) for q in report.quiet_weeks] == [(2, 14)]


M3 = [f"T{i:02d}" for i in range(40)]  # the 40 students of a third presentation, M3 2025B


def _m3_stretches(folder: Path, active_in: dict[int, list[str]], *, leaving: int = 0) -> list[dict[str, Any]]:
    """The quiet stretches of M3 (70 days from 2024-10-07) with ``active_in[week]`` active that week.

    The last ``leaving`` of its students withdraw on day 10 (before week 3).
    """
    left = set(M3[len(M3) - leaving :])
    registrations = [
        [s, "M3", "2025B", "-10", *(("10", "withdrawn") if s in left else ("", "pass"))] for s in M3
    ]
    activity = [
        [s, "M3", "2025B", str(7 * (week - 1) + 2), "vle", "resource", "1"]
        for week, who in active_in.items()
        for s in who
    ]
    report = _report(
        make_folder(
            folder,
            presentations=[*VALID["presentations"], ["M3", "2025B", "2024-10-07", "70"]],
            students=[*VALID["students"], *([s, "P1", "1", "full_time", "0", "120"] for s in M3)],
            registrations=[*VALID["registrations"], *registrations],
            activity=[*VALID["activity"], *activity],
        )
    )
    shown = [line for line in report.to_text().splitlines() if line.startswith("  M3 2025B:")]
    stretches = [q for q in report.quiet_weeks if q["module_id"] == "M3"]
    assert len(shown) == len(stretches)
    return [{**q, "line": line} for q, line in zip(stretches, shown, strict=True)]


def test_a_strike_a_few_students_logged_in_through_is_one_quiet_stretch(tmp_path: Path) -> None:
    """A Nigerian university's eight-month strike, through which a few students logged in each week,
    came out in fragments per course ("weeks 8 to 12", "week 15", ...: 272 lines) while a week with
    anyone active counted as active. Of M3's 40 students none is active in week 3, one in week 4 and
    two in week 5 (5%): one stretch, weeks 3 to 5, as explanations read a break. Three in week 6 (7.5%)
    end it."""
    assert pytest.approx(1 - NEARLY_ALL) == QUIET_ACTIVE_SHARE
    counts = {1: 40, 2: 40, 3: 0, 4: 1, 5: 2, 6: 3, 7: 40, 8: 40, 9: 40, 10: 40}
    strike = {week: M3[:n] for week, n in counts.items()}
    (stretch,) = _m3_stretches(tmp_path / "a", strike)
    assert (stretch["first_week"], stretch["last_week"], stretch["most_active"]) == (3, 5, 2)
    assert not (stretch["from_start"] or stretch["to_data_end"] or stretch["to_its_end"])
    assert stretch["line"] == "  M3 2025B: weeks 3 to 5 (days 14 to 34); at most 2 students active in a week"
    # The share is of the students registered that week: with 21 of the 40 gone by day 10, the one
    # active in week 4 is 5.3% of the 19 still registered.
    (stretch,) = _m3_stretches(tmp_path / "b", strike, leaving=21)
    assert (stretch["first_week"], stretch["last_week"], stretch["most_active"]) == (3, 3, 0)
    # and withdrawn students still logging in are not among the active (they had hidden the strike)
    away = {**strike, **{week: M3[25:] for week in (3, 4, 5, 6)}}
    (stretch,) = _m3_stretches(tmp_path / "c", away, leaving=21)
    assert (stretch["first_week"], stretch["last_week"], stretch["most_active"]) == (3, 6, 0)


def test_a_slow_start_and_a_source_few_students_use_are_quiet_weeks_not_a_wrong_start_date(
    tmp_path: Path,
) -> None:
    """A reviewer's cases: one or two of 40 students active in each of the first three weeks is not
    a presentation with no activity "from its start", whose advice is to move its start date, and its
    first week is among its quiet ones; a presentation where no week reaches the share (a turnstile
    few students pass) is listed whole, not left out because it has no busier week."""
    slow = {1: M3[:1], 2: M3[:2], 3: M3[:1], **{week: M3 for week in range(4, 11)}}
    (stretch,) = _m3_stretches(tmp_path / "a", slow)
    assert (stretch["first_week"], stretch["last_week"], stretch["from_start"]) == (1, 3, False)
    sparse = dict(enumerate(([M3[0]], [], M3[:2], [M3[3]], [], [], [M3[4]], M3[5:7], [M3[1]], []), start=1))
    (stretch,) = _m3_stretches(tmp_path / "b", sparse)
    assert (stretch["first_week"], stretch["last_week"], stretch["most_active"]) == (1, 10, 2)
    # M3 had ended by the data date (M1's day 99): nearly everyone read as inactive to its end
    assert (stretch["from_start"], stretch["to_data_end"], stretch["to_its_end"]) == (False, False, True)


def _m2_stopping_on_day_20(tmp_path: Path, length_days: int) -> QualityReport:
    presentations = [
        ["module_id", "presentation_id", "start_date", "length_days"],
        ["M1", "2024J", "2024-10-07", "100"],
        ["M2", "2025B", "2024-10-07", str(length_days)],
    ]
    activity = [
        *VALID["activity"],
        *(["S3", "M2", "2025B", str(day), "vle", "resource", "1"] for day in (0, 8, 20)),
    ]
    return _report(make_folder(tmp_path, presentations=presentations, activity=activity))


def test_a_presentation_that_had_ended_with_quiet_last_weeks_is_not_said_to_run_to_the_data_date(
    tmp_path: Path,
) -> None:
    """M2 ended on day 89, before the data date (day 99): its quiet last weeks are its own end's,
    an exam period or an extract that stopped early, not a break still running. Found on a college's
    data, where presentations long ended were listed "up to the data date" and told to check the
    extract before scoring them."""
    report = _m2_stopping_on_day_20(tmp_path, 90)
    trailing = [q for q in report.quiet_weeks if q["module_id"] == "M2"]
    assert [(q["first_week"], q["last_week"], q["to_data_end"], q["to_its_end"]) for q in trailing] == [
        (4, 12, False, True)
    ]
    assert "  M2 2025B: weeks 4 to 12 (days 21 to 83), up to its end" in report.to_text().splitlines()
    assert not [n for n in report.notes if "up to the data date" in n]
    assert [n for n in report.notes if n.startswith("1 presentation that had ended by the data date")]


def test_a_presentation_nobody_was_active_on_for_its_first_weeks_is_listed(tmp_path: Path) -> None:
    """A strike moved two sections' classes six weeks later than the official calendar their records
    gave as start_date: every week was counted from the wrong day, and nothing said which sections."""
    presentations = [
        ["module_id", "presentation_id", "start_date", "length_days"],
        ["M1", "2024J", "2024-10-07", "100"],
        ["M2", "2025B", "2024-10-07", "200"],
    ]
    activity = [
        *VALID["activity"],
        *(["S3", "M2", "2025B", str(day), "vle", "resource", "1"] for day in range(42, 100, 3)),
    ]
    report = _report(make_folder(tmp_path, presentations=presentations, activity=activity))
    late = [q for q in report.quiet_weeks if q["from_start"]]
    assert [(q["module_id"], q["first_week"], q["last_week"]) for q in late] == [("M2", 1, 6)]
    assert "  M2 2025B: weeks 1 to 6 (days 0 to 41), from its start" in report.to_text().splitlines()
    assert any("official calendar" in note for note in report.notes)
    # two quiet weeks at the start (a slow first week, a reading week) are not listed
    early = [r for r in activity if not (r[1] == "M2" and int(r[3]) < 56)] + [
        ["S3", "M2", "2025B", "14", "vle", "resource", "1"]
    ]
    report = _report(make_folder(tmp_path / "b", presentations=presentations, activity=early))
    assert not [q for q in report.quiet_weeks if q["from_start"]]


def test_a_presentation_whose_activity_stopped_weeks_before_the_data_date_is_listed(tmp_path: Path) -> None:
    """M2 runs beside M1 but its activity stops on day 20; M1's goes on to day 99 (2025-01-14), the
    data date, and M2 runs on to day 199. Scored then, everyone on M2 would show no recent activity:
    an extract that ends early reads exactly so, and the data steward is told which presentation and
    from when."""
    presentations = [
        ["module_id", "presentation_id", "start_date", "length_days"],
        ["M1", "2024J", "2024-10-07", "100"],
        ["M2", "2025B", "2024-10-07", "200"],
    ]
    activity = [
        *VALID["activity"],
        *(["S3", "M2", "2025B", str(day), "vle", "resource", "1"] for day in (0, 8, 20)),
    ]
    report = _report(make_folder(tmp_path, presentations=presentations, activity=activity))
    trailing = [q for q in report.quiet_weeks if q["to_data_end"]]
    # Week 3 (days 14 to 20) is M2's last active week; week 14 (days 91 to 97) the last whole week
    # before the data date (day 99).
    assert trailing == [
        {
            "module_id": "M2",
            "presentation_id": "2025B",
            "first_week": 4,
            "last_week": 14,
            "first_day": 21,
            "last_day": 97,
            "to_data_end": True,
            "to_its_end": False,
            "from_start": False,
            "most_active": 0,
        }
    ]
    assert "  M2 2025B: weeks 4 to 14 (days 21 to 97), up to the data date" in report.to_text().splitlines()
    said = [n for n in report.notes if n.startswith("1 presentation has had activity from 5% or fewer")]
    assert said and "extract" in said[0]
    # M1's own gap is still listed as before, and said in its own note.
    assert [q["first_week"] for q in report.quiet_weeks if q["module_id"] == "M1"] == [2]
    assert [n for n in report.notes if n.startswith("1 presentation has whole weeks")]
    assert forbidden_words(report.to_text()) == []


def test_an_outcome_missing_on_a_presentation_that_had_ended_is_told_apart_from_one_not_known_yet(
    tmp_path: Path,
) -> None:
    # S3 on M2 2025B has no outcome. The activity reaches 2025-01-14 (M1 2024J, day 99).
    running = _report(make_folder(tmp_path / "running"))
    assert running.overview["final_results"]["not yet known (presentation running)"] == 1
    assert not [n for n in running.notes if "left out of training" in n]
    presentations = [
        ["module_id", "presentation_id", "start_date", "length_days"],
        ["M1", "2024J", "2024-10-07", "100"],
        ["M2", "2025B", "2024-09-01", "90"],  # ended on 2024-11-30
    ]
    ended = _report(make_folder(tmp_path / "ended", presentations=presentations))
    # One of M2's few registrations is more than a quarter of them: its outcomes are taken as not entered yet.
    assert ended.overview["final_results"][NOT_ENTERED] == 1
    assert "not yet known (presentation running)" not in ended.overview["final_results"]
    said = [n for n in ended.notes if n.startswith("1 registration on presentations that had ended")]
    assert len(said) == 1 and "not entered yet" in said[0] and "no training" in said[0]
    assert f"{NOT_ENTERED} 1" in ended.to_text()
    # Among many outcomes, one missing is a deferral: not recorded, and said as such.
    registrations = [
        *VALID["registrations"],
        *[[f"X{i}", "M2", "2025B", "-5", "", "pass"] for i in range(30)],
    ]
    students = [*VALID["students"], *[[f"X{i}", *VALID["students"][1][1:]] for i in range(30)]]
    many = _report(
        make_folder(
            tmp_path / "many", presentations=presentations, registrations=registrations, students=students
        )
    )
    assert many.overview["final_results"]["not recorded (presentation ended)"] == 1
    assert NOT_ENTERED not in many.overview["final_results"]
    assert [n for n in many.notes if "never guessed (deferrals, say)" in n]


def test_without_any_activity_a_missing_outcome_is_not_said_to_be_not_known_yet(tmp_path: Path) -> None:
    # No activity row: nothing dates the data, so S3's presentation cannot be said to be running.
    report = _report(make_folder(tmp_path, activity=VALID["activity"][:1]))
    assert report.overview["activity_rows"] == 0
    missing = {k: v for k, v in report.overview["final_results"].items() if k.startswith("not ")}
    assert missing == {"not known (no activity dates the data)": 1}
    assert [n for n in report.notes if n.startswith("1 registration has no outcome") and "date" in n]
    assert forbidden_words(report.to_text()) == []


def test_activity_dated_over_a_week_before_registration_is_counted_and_explained(tmp_path: Path) -> None:
    # S3 registered on M1 on day 2: activity on day -5 is within a week of it, day -6 is not.
    early = [
        ["S3", "M1", "2024J", "-5", "vle", "resource", "1"],
        ["S3", "M1", "2024J", "-6", "vle", "resource", "1"],
    ]
    report = _report(make_folder(tmp_path / "early", activity=[*VALID["activity"], *early]))
    assert report.consistency["activity_over_a_week_before_registration"] == 1
    said = "1 activity row is dated more than a week before the student registered"
    assert any(said in n for n in report.notes)
    plain = _report(make_folder(tmp_path / "plain"))
    assert plain.consistency["activity_over_a_week_before_registration"] == 0
    assert not any("before the student registered" in n for n in plain.notes)


def test_activity_after_leaving_and_a_leaving_day_after_the_data_date_are_counted_and_explained(
    tmp_path: Path,
) -> None:
    """Found on an online college's data: Zoom rows joined by e-mail reached intakes the person had
    left, and leaving days past the extract's date; the report said nothing of either."""
    # S2 left M1 on day 30: activity on day 37 is within a week of it, day 38 is not.
    after = [
        ["S2", "M1", "2024J", "37", "vle", "resource", "1"],
        ["S2", "M1", "2024J", "38", "vle", "resource", "1"],
    ]
    report = _report(make_folder(tmp_path / "late", activity=[*VALID["activity"], *after]))
    assert report.consistency["activity_over_a_week_after_unregistration"] == 1
    assert any(
        "1 activity row is dated more than a week after the student unregistered" in n for n in report.notes
    )
    assert report.consistency["unregistration_after_data_date"] == 0
    # S1 leaving M1 on day 100, after the data date (M1's day 99, 2025-01-14).
    registrations = [list(r) for r in VALID["registrations"]]
    registrations[1][4], registrations[1][5] = "100", "withdrawn"
    ahead = _report(make_folder(tmp_path / "ahead", registrations=registrations))
    assert ahead.consistency["unregistration_after_data_date"] == 1
    assert any(
        n.startswith("1 registration has an unregistration day after the data date") for n in ahead.notes
    )
    registrations[1][4] = "99"
    assert (
        _report(make_folder(tmp_path / "on", registrations=registrations)).consistency[
            "unregistration_after_data_date"
        ]
        == 0
    )
    plain = _report(make_folder(tmp_path / "plain"))
    assert plain.consistency["activity_over_a_week_after_unregistration"] == 0
    assert not any("after the student unregistered" in n or "after the data date" in n for n in plain.notes)
    assert forbidden_words(report.to_text() + ahead.to_text()) == []


def test_a_presentation_not_started_by_the_data_date_is_left_out_of_the_activity_figures(
    tmp_path: Path,
) -> None:
    """M2 starts on 2025-02-03, after the data date (2025-01-14): its student can have no activity
    yet, so it is not a registration without activity, nor a week or module without a source."""
    report = _report(make_folder(tmp_path / "data"))
    assert [(p["module_id"], p["registrations"]) for p in report.no_activity["by_presentation"]] == [
        ("M1", 0)
    ]
    assert report.no_activity["registrations"] == 0
    assert [m["module_id"] for m in report.sources_by_module] == ["M1"]
    assert {c["population"] for c in report.source_coverage_by_week} <= {1, 2, 3}  # M1's three at most
    # Once M2 has begun by the data date (starting on 2025-01-10 instead), it counts.
    presentations = [
        VALID["presentations"][0],
        VALID["presentations"][1],
        ["M2", "2025B", "2025-01-10", "90"],
    ]
    begun = _report(make_folder(tmp_path / "begun", presentations=presentations))
    assert ("M2", 1) in [(p["module_id"], p["registrations"]) for p in begun.no_activity["by_presentation"]]
    # A module recording no source at all is listed, and said; with no assessment either, what that
    # means for its estimates (an Italian university's seven such modules were left out of the list).
    assert [(m["module_id"], m["sources"]) for m in begun.sources_by_module][1] == ("M2", {})
    assert "  M2: no source recorded" in begun.to_text()
    [said] = [
        n
        for n in begun.notes
        if "record no activity from any source" in n or "records no activity from any" in n
    ]
    assert (
        said.startswith("1 module records no activity from any source (M2)") and "same estimate" not in said
    )
    unassessed = [r for r in VALID["assessments"] if r[1] != "M2"]
    blank = _report(make_folder(tmp_path / "blank", presentations=presentations, assessments=unassessed))
    [said] = [n for n in blank.notes if "records no activity from any" in n]
    assert "1 of them has no assessment either (M2): every student there gets the same estimate" in said


def test_unregistered_students_with_another_outcome_are_noted(tmp_path: Path) -> None:
    """Found on a college's data: 71% of registrations had an unregistration day (a last day of
    attendance, mapped by mistake) and a pass or fail, and nothing said so, though every one of those
    students leaves the weekly populations from that day."""
    registrations = [list(r) for r in VALID["registrations"]]
    registrations[1][4] = "40"  # S1 unregistered on day 40, and passed
    report = _report(make_folder(tmp_path, registrations=registrations))
    assert report.consistency["unregistered_but_result_not_withdrawn"] == 1
    said = [n for n in report.notes if n.startswith("1 registration has an unregistration day")]
    assert said and "(25% of all registrations)" in said[0] and "registrations.unregistration_day" in said[0]
    assert not [n for n in _report(make_folder(tmp_path / "valid")).notes if "unregistration day and" in n]


def test_marks_that_look_like_points_are_noted(tmp_path: Path) -> None:
    """Found on a college's data: quiz points out of 20 passed as percentages, all of them very low."""
    new = [f"S{i}" for i in range(4, 9)]
    students = [*VALID["students"], *([s, "P1", "1", "full_time", "0", "120"] for s in new)]
    registrations = [*VALID["registrations"], *([s, "M1", "2024J", "-3", "", "pass"] for s in new)]
    results = [*VALID["assessment_results"], *([s, "A1", "18", str(10 + i)] for i, s in enumerate(new))]
    report = _report(make_folder(tmp_path, students=students, registrations=registrations,
                                 assessment_results=results))  # fmt: skip
    assert report.consistency["assessments_scored_at_most_20"] == 0  # S1's 70.5 and S3's 40 are there
    results = [r for r in results if r[0] not in ("S1", "S3")]
    report = _report(make_folder(tmp_path / "points", students=students, registrations=registrations,
                                 assessment_results=results))  # fmt: skip
    assert report.consistency["assessments_scored_at_most_20"] == 1
    assert [n for n in report.notes if n.startswith("1 assessment has five or more marks, none above 20")]


def _marked_cohort(tmp_path: Path, *, completed_mark: str, other_mark: str) -> QualityReport:
    """Twenty registrations that passed and twenty that failed or withdrew, each with one mark of A1."""
    passed, left = [f"P{i}" for i in range(20)], [f"F{i}" for i in range(20)]
    students = [*VALID["students"], *([s, "P1", "1", "full_time", "0", "120"] for s in passed + left)]
    registrations = [
        *VALID["registrations"],
        *([s, "M1", "2024J", "-3", "", "pass"] for s in passed),
        *([s, "M1", "2024J", "-3", "", "fail" if i % 2 else "withdrawn"] for i, s in enumerate(left)),
    ]
    results = [
        *VALID["assessment_results"],
        *([s, "A1", "18", completed_mark] for s in passed),
        *([s, "A1", "18", other_mark] for s in left),
    ]
    folder = make_folder(tmp_path, students=students, registrations=registrations, assessment_results=results)
    return _report(folder)


def test_marks_that_run_against_outcomes_are_noted(tmp_path: Path) -> None:
    """Found on a German university's data: grades of 1,0 (the best) to 5,0 (a fail) imported as numbers
    made the best work the worst mark, and multiplying them by 20, as the points note suggested, kept
    them reversed with nothing said."""
    reversed_ = _marked_cohort(tmp_path / "reversed", completed_mark="34", other_mark="92")
    said = [n for n in reversed_.notes if n.startswith("Marks run against outcomes")]
    assert said and "a value table" in said[0], said
    assert "35.7, those that did not 89.5 (21 and 21 registrations with marks)" in said[0], said[0]
    usual = _marked_cohort(tmp_path / "usual", completed_mark="72", other_mark="31")
    assert not [n for n in usual.notes if n.startswith("Marks run against outcomes")]


def test_a_source_missing_for_students_who_left_is_said(synth_dir: Path, tmp_path: Path) -> None:
    """A Korean university's Canvas export, joined to an enrolment list without the enrolments its
    records feed deleted on withdrawal, lost every withdrawn student's activity: the model learned that
    leaving students were active to the end (week-4 AUC 0.953, against 0.900 with it kept)."""
    import shutil

    assert not [n for n in _report(synth_dir).notes if "rare among" in n]  # students who left worked too
    folder = tmp_path / "data"
    shutil.copytree(synth_dir, folder)
    registrations = pd.read_parquet(folder / "registrations.parquet")
    keys = ["student_id", "module_id", "presentation_id"]
    left = registrations.loc[registrations["unregistration_day"] > 14, keys]
    activity = pd.read_parquet(folder / "activity")
    gone = activity.merge(left, on=keys, how="left", indicator=True)["_merge"].eq("both").to_numpy()
    assert gone.sum() > 0
    shutil.rmtree(folder / "activity")
    activity[~gone].to_parquet(folder / "activity.parquet", index=False)
    said = [n for n in _report(folder).notes if "rare among registrations that left" in n]
    assert said and all("0% of" in n for n in said), said
    assert "keeps withdrawn students' history" in said[0]


def test_registrations_still_open_with_activity_after_their_presentation_ended_are_said(
    tmp_path: Path,
) -> None:
    """An online college's students on an extension worked on after their intake's last day: they had
    no indicator in their last weeks, and the quality report said only "not recorded (presentation
    ended)"."""
    registrations = [
        *VALID["registrations"][:3],
        ["S3", "M1", "2024J", "2", "", ""],
        VALID["registrations"][4],
    ]
    activity = [*VALID["activity"], ["S3", "M1", "2024J", "112", "vle", "resource", "4"]]  # M1 ends at 100
    report = _report(make_folder(tmp_path, registrations=registrations, activity=activity))
    said = [n for n in report.notes if "extension" in n]
    assert len(said) == 1 and said[0].startswith("1 registration of presentations that had ended"), said
    closed = [*VALID["registrations"]]  # S3's M1 registration has its outcome: nothing to say
    report = _report(make_folder(tmp_path / "b", registrations=closed, activity=activity))
    assert not [n for n in report.notes if "extension" in n]


def test_weeks_a_programmes_students_were_away_while_others_worked_are_noted(
    tmp_path: Path, synth_dir: Path
) -> None:
    """A nursing school's programmes go on placement at different weeks of one whole-year presentation:
    those away read as each student's own drop, and nothing in the report said a programme was away."""
    assert not [n for n in _report(synth_dir).notes if "students of a programme" in n]  # none away
    folder = tmp_path / "data"
    shutil.copytree(synth_dir, folder)
    data = load_learning_data(folder)
    programmes = data.students.set_index("student_id")["programme_id"]
    counts = data.registrations.assign(programme=data.registrations["student_id"].map(programmes))
    busiest = counts.groupby(["module_id", "presentation_id", "programme"]).size().sort_values()
    (module, presentation, programme) = busiest.index[-1]
    away = set(counts.loc[counts["programme"] == programme, "student_id"])
    activity = data.activity
    on_placement = (
        activity["student_id"].isin(away)
        & (activity["module_id"] == module)
        & (activity["presentation_id"] == presentation)
        & activity["day"].between(21, 41)  # weeks 4 to 6
    )
    shutil.rmtree(folder / "activity")  # written partitioned; a single file reads the same
    activity[~on_placement].to_parquet(folder / "activity.parquet", index=False)
    [note] = [n for n in _report(folder).notes if "students of a programme" in n]
    assert f"programme {programme} (" in note and "weeks 4 to 6" in note
    assert "Placement blocks inside one presentation" in note
    # A students table without programmes (an optional column; OULAD's have none) has no such note.
    students = [[c for i, c in enumerate(r) if i != 1] for r in VALID["students"]]
    assert students[0][:2] == ["student_id", "year_of_study"]
    plain = _report(make_folder(tmp_path / "plain", students=students))
    assert not [n for n in plain.notes if "students of a programme" in n]
