"""Features: right values on hand-made cases, no leakage, no protected characteristics."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.contract_folder import VALID, make_folder, with_row
from waymark.models.data import LearningData, ProtectedDataError, load_learning_data
from waymark.models.data.contract import PROTECTED_COLUMN_NAMES
from waymark.models.features import FEATURE_NAMES, FEATURES, KEYS, build_features, population
from waymark.models.features.query import DUCKDB_ARROW
from waymark.models.targets import next_assessment_nonsubmission
from waymark.training.ingest.oulad import import_oulad


@pytest.fixture
def small(tmp_path: Path) -> LearningData:
    return load_learning_data(make_folder(tmp_path))


def row(features: pd.DataFrame, student: str, week: int, module: str = "M1") -> pd.Series:
    found = features[
        (features["student_id"] == student) & (features["week"] == week) & (features["module_id"] == module)
    ]
    assert len(found) == 1
    return found.iloc[0]


def test_population_follows_registration_and_unregistration(small: LearningData) -> None:
    pop = population(small.registrations, small.presentations)
    weeks = lambda s: sorted(pop.loc[(pop["student_id"] == s) & (pop["module_id"] == "M1"), "week"])  # noqa: E731
    assert weeks("S1") == list(range(1, 15))  # 100 days: weeks 1..14 (cut-off 98)
    assert weeks("S2") == [1, 2, 3, 4]  # unregistered on day 30: still there at cut-off 28
    assert weeks("S3") == list(range(1, 15))  # registered on day 2, before the first cut-off (7)


def test_a_registration_on_the_cut_off_day_joins_the_next_week(tmp_path: Path) -> None:
    regs = with_row("registrations", ["S1", "M2", "2025B", "7", "", ""])
    data = load_learning_data(make_folder(tmp_path, registrations=regs))
    pop = population(data.registrations, data.presentations)
    assert sorted(pop.loc[(pop["student_id"] == "S1") & (pop["module_id"] == "M2"), "week"])[0] == 2


def test_activity_features_count_only_days_before_the_cut_off(small: LearningData) -> None:
    features = build_features(small, weeks=[1])
    s1 = row(features, "S1", 1)
    assert s1["act_total"] == pytest.approx(math.log(1 + 3 + 2))  # days -3 and 1
    assert s1["act_last7"] == pytest.approx(math.log(1 + 2))  # day 1 only
    assert s1["act_pre_start"] == pytest.approx(math.log(1 + 3))
    assert s1["act_active_days"] == 2
    assert s1["act_days_since_last"] == 7 - 1
    assert s1["ch_vle_communication_total"] == pytest.approx(math.log(1 + 2))  # the forum post
    s3 = row(features, "S3", 1)  # S3's only activity is on day 100
    assert s3["act_total"] == 0 and s3["act_any"] == 0


def test_assessment_features_on_a_hand_made_case(small: LearningData) -> None:
    features = build_features(small, weeks=[3, 6])
    s1, s3 = row(features, "S1", 3), row(features, "S3", 3)  # cut-off 21: A1 (due 20) is due
    assert (s1["asm_due"], s1["asm_submitted"], s1["asm_missed"]) == (1, 1, 0)
    assert s1["asm_mean_lateness"] == -2  # submitted day 18
    assert s3["asm_missed"] == 1  # submitted on day 22, after the cut-off: not known yet
    assert s1["asm_has_score"] == 0  # marked work counts 14 days after submission
    later = row(features, "S1", 6)  # cut-off 42 > 18 + 14
    assert later["asm_has_score"] == 1 and later["asm_score_mean"] == pytest.approx(70.5)
    assert later["asm_days_to_next"] == 120  # only the exam is left


def test_a_mid_term_exam_and_self_paced_work_count_as_marked_work(tmp_path: Path) -> None:
    """Found on an open-entry college's data: its tests are all typed "exam", and much of its work has
    no due day. Both were dropped, and a student with three marks was told no marked work was recorded.
    A final exam is still not read (at a module's end it stands for the outcome itself).
    """
    assessments = [
        *VALID["assessments"],
        ["E1", "M1", "2024J", "exam", "25", "30"],  # a mid-term, due before week 6's cut-off (42)
        ["Q9", "M1", "2024J", "quiz", "", "0"],  # self-paced: no due day
    ]
    results = [*VALID["assessment_results"], ["S3", "E1", "24", "64"], ["S3", "Q9", "30", "90"]]
    data = load_learning_data(make_folder(tmp_path, assessments=assessments, assessment_results=results))
    s3 = row(build_features(data, weeks=[6]), "S3", 6)
    assert (s3["asm_due"], s3["asm_submitted"]) == (2, 2)  # A1 and the mid-term; Q9 is never due
    assert s3["asm_has_score"] == 1
    # A1's 40 (weight 50), the exam's 64 (weight 30), the quiz's 90 (weight 0 counts as 1), at once
    assert s3["asm_score_mean"] == pytest.approx((40 * 50 + 64 * 30 + 90 * 1) / 81)
    assert s3["asm_days_since_submission"] == 42 - 30  # the self-paced quiz was the last
    assert (s3["asm_remaining"], s3["asm_days_to_next"]) == (0, 120)  # the final exam (day 95) is not read
    s1 = row(build_features(data, weeks=[6]), "S1", 6)
    assert (s1["asm_due"], s1["asm_missed"], s1["asm_weight_missed"]) == (2, 1, 30)  # S1 missed the mid-term
    # The final (A2, the last-due exam, day 95) is never read, even once due: in a module's last
    # weeks sitting it or not is the outcome itself. Nor is an exam with no due day.
    undated = [*assessments, ["E9", "M1", "2024J", "exam", "", "10"]]
    sat = [*results, ["S3", "E9", "30", "10"]]
    data = load_learning_data(make_folder(tmp_path / "late", assessments=undated, assessment_results=sat))
    s3 = row(build_features(data, weeks=[6, 14]), "S3", 14)  # cut-off 98, after A2's day 95
    assert (s3["asm_due"], s3["asm_missed"]) == (2, 0)  # A1 and the mid-term; not A2, not E9
    assert s3["asm_score_mean"] == pytest.approx((40 * 50 + 64 * 30 + 90 * 1) / 81)  # E9's 10 not read
    # A resit sitting due long after the presentation's last day (a Spanish university's July exam) is
    # not taken for the final: A2 still is, and is not read.
    resit = [*assessments, ["R1", "M1", "2024J", "exam", "200", "0"]]
    data = load_learning_data(make_folder(tmp_path / "resit", assessments=resit, assessment_results=results))
    s3 = row(build_features(data, weeks=[14]), "S3", 14)
    assert (s3["asm_due"], s3["asm_missed"]) == (2, 0)  # A1 and the mid-term; not A2, not R1
    # A final a few days after a length that ends with teaching is still the final: A2, an exam of the
    # last quarter before it, is then read as marked work (it had been taken for the final).
    after = [*assessments, ["F1", "M1", "2024J", "exam", "105", "40"]]
    data = load_learning_data(make_folder(tmp_path / "after", assessments=after, assessment_results=results))
    s3 = row(build_features(data, weeks=[14]), "S3", 14)
    assert (s3["asm_due"], s3["asm_missed"]) == (3, 1)  # A1, the mid-term and A2 (not sat by S3)


def test_a_mid_term_exam_is_read_when_the_final_was_left_out_of_the_assessments(tmp_path: Path) -> None:
    """Found on a university's data: with its finals left out of the assessments (they are the outcome
    itself, as the docs advise), each module's semester test, typed "exam" and due mid-semester, was
    taken for the final and never read. A final is the last-due exam of a presentation's last quarter."""
    assessments = [
        *(a for a in VALID["assessments"] if a[0] != "A2"),  # the final (day 95 of 100) left out
        ["E1", "M1", "2024J", "exam", "25", "30"],  # the semester test, a quarter of the way in
    ]
    results = [*(r for r in VALID["assessment_results"] if r[1] != "A2"), ["S3", "E1", "24", "64"]]
    data = load_learning_data(make_folder(tmp_path, assessments=assessments, assessment_results=results))
    s1, s3 = (row(build_features(data, weeks=[6]), s, 6) for s in ("S1", "S3"))
    assert (s3["asm_due"], s3["asm_submitted"]) == (2, 2)  # A1 and the semester test
    assert (s1["asm_due"], s1["asm_missed"], s1["asm_weight_missed"]) == (2, 1, 30)


def test_work_nobody_has_submitted_yet_is_not_read_as_missed_by_everyone(tmp_path: Path) -> None:
    """A Scottish university's records write a result once the work is marked, three weeks on: at week
    11 its second coursework had no row for anyone, and 185 of 625 indicators said "1 of the 2
    assessments due so far was submitted". Work nobody in the presentation submitted before the cut-off
    is not read as due; once one student's submission is known, it is due for all."""
    assessments = [*VALID["assessments"], ["C2", "M1", "2024J", "coursework", "30", "40"]]
    data = load_learning_data(make_folder(tmp_path, assessments=assessments))
    s1 = row(build_features(data, weeks=[6]), "S1", 6)  # cut-off 42: A1 (day 20) and C2 (day 30) due
    assert (s1["asm_due"], s1["asm_submitted"], s1["asm_missed"], s1["asm_weight_missed"]) == (1, 1, 0, 0)
    results = [*VALID["assessment_results"], ["S3", "C2", "29", "55"]]
    one = make_folder(tmp_path / "one", assessments=assessments, assessment_results=results)
    features = build_features(load_learning_data(one), weeks=[4, 6])
    s1 = row(features, "S1", 6)
    assert (s1["asm_due"], s1["asm_submitted"], s1["asm_missed"], s1["asm_weight_missed"]) == (2, 1, 1, 40)
    # at week 4 (cut-off 28) C2 is not yet due and S3's submission on day 29 not yet known
    assert row(features, "S1", 4)["asm_due"] == 1


def test_work_due_before_a_student_registered_is_not_counted_missed_unless_they_did_it(
    tmp_path: Path,
) -> None:
    """Found on a rolling-start college's data: a student who rejoined a later intake at week 5 was told
    two units due before they joined were missed. Work due before a registration was never set for
    that registration; work the student did anyway still counts."""
    students = [
        *VALID["students"],
        ["S6", "P1", "1", "full_time", "0", "120"],
        ["S7", "P1", "1", "full_time", "0", "120"],
    ]
    registrations = [
        *VALID["registrations"],
        ["S6", "M1", "2024J", "30", "", "pass"],  # joins on day 30: A1 (due 20) was never theirs
        ["S7", "M1", "2024J", "30", "", "pass"],  # joins on day 30 but submitted A1 (a continuation)
    ]
    results = [*VALID["assessment_results"], ["S7", "A1", "31", "60"]]
    data = load_learning_data(
        make_folder(tmp_path, students=students, registrations=registrations, assessment_results=results)
    )
    features = build_features(data, weeks=[6])
    s6, s7, s1 = row(features, "S6", 6), row(features, "S7", 6), row(features, "S1", 6)
    assert (s6["asm_due"], s6["asm_missed"], s6["asm_weight_missed"]) == (0, 0, 0)
    assert s6["asm_submitted_share"] == 1  # nothing was due for them
    assert (s7["asm_due"], s7["asm_submitted"]) == (1, 1)
    assert s1["asm_due"] == 1  # registered before A1 was due: counted as before


def _five_on_m1(tmp_path: Path) -> LearningData:
    """The valid folder with two more students on M1: five, the fewest a cohort is compared with."""
    students = [
        *VALID["students"],
        ["S4", "P1", "1", "full_time", "0", "120"],
        ["S5", "P1", "1", "full_time", "0", "120"],
    ]
    registrations = [
        *VALID["registrations"],
        ["S4", "M1", "2024J", "-3", "", "pass"],
        ["S5", "M1", "2024J", "-3", "", "pass"],
    ]
    activity = with_row("activity", ["S4", "M1", "2024J", "2", "vle", "resource", "3"])
    results = with_row("assessment_results", ["S4", "A1", "15", "55"])
    return load_learning_data(
        make_folder(
            tmp_path,
            students=students,
            registrations=registrations,
            activity=activity,
            assessment_results=results,
        )
    )


def test_cohort_deviation_features_compare_the_same_week_of_the_same_presentation(tmp_path: Path) -> None:
    features = build_features(_five_on_m1(tmp_path), weeks=[1, 3])
    students = ("S1", "S2", "S3", "S4", "S5")
    totals = np.log1p([5.0, 1.0, 0.0, 3.0, 0.0])  # on M1 by day 6
    z = (totals - totals.mean()) / totals.std()
    # z-scores are rounded to 6 decimals (activity._z)
    for student, expected in zip(students, z, strict=True):
        assert row(features, student, 1)["act_total_z"] == pytest.approx(expected, abs=1e-6)
    # active days 2, 1, 0, 1, 0: the share of the others below (ties count as not below)
    assert [row(features, s, 1)["act_active_days_pct"] for s in students] == [1.0, 0.5, 0.0, 0.5, 0.0]
    # by cut-off 21, A1 (due 20) was submitted by S1 and S4 (S3's day-22 submission is not known yet)
    assert [row(features, s, 3)["asm_submitted_pct"] for s in students] == [0.75, 0.0, 0.0, 0.75, 0.0]
    alone = row(features, "S3", 1, module="M2")  # the only student of M2: nobody to compare with
    assert alone["act_total_z"] == 0 and alone["act_last14_z"] == 0 and alone["act_total_pct"] == 0.5


def test_assessment_timing_features_on_a_hand_made_case(small: LearningData) -> None:
    features = build_features(small, weeks=[3, 6])
    s1, s2, s3 = (row(features, s, 3) for s in ("S1", "S2", "S3"))  # cut-off 21: A1 (weight 50) due
    assert (s1["asm_weight_missed"], s2["asm_weight_missed"], s3["asm_weight_missed"]) == (0, 50, 50)
    assert s1["asm_days_since_submission"] == 21 - 18
    assert s3["asm_days_since_submission"] == 21  # the day-22 submission is not known yet
    # three students on M1, fewer than a cohort is compared with (tests/test_small_cohorts.py): neutral
    assert (s1["asm_submitted_pct"], s2["asm_submitted_pct"]) == (0.5, 0.5)
    assert s1["asm_last_score"] == 0  # not marked until 14 days after submission
    later_s1, later_s3 = row(features, "S1", 6), row(features, "S3", 6)  # cut-off 42
    assert later_s1["asm_last_score"] == pytest.approx(70.5) and later_s1["asm_min_score"] == pytest.approx(
        70.5
    )
    assert later_s3["asm_last_score"] == 40 and later_s3["asm_days_since_submission"] == 42 - 22


def test_next_assessment_features_on_a_hand_made_case(tmp_path: Path) -> None:
    assessments = [
        *VALID["assessments"],
        ["A4", "M1", "2024J", "quiz", "40", "5"],
        ["A6", "M1", "2024J", "coursework", "40", "1"],  # due the same day, lighter: not the next
        ["A5", "M1", "2024J", "coursework", "60", "20"],
        ["A0", "M1", "2024J", "quiz", "60", "20"],  # as heavy, same day: coursework comes first
        ["A9", "M1", "2024J", "coursework", "60", "20"],  # a tie in all but the id: the lower id first
    ]
    results = [
        *VALID["assessment_results"],
        ["S1", "A4", "25", "80"],
        ["S3", "A4", "30", "60"],
        ["S1", "A9", "40", "55"],
        ["S1", "A0", "41", ""],
    ]
    data = load_learning_data(make_folder(tmp_path, assessments=assessments, assessment_results=results))
    features = build_features(data, weeks=[4, 5, 6])
    s1, s3 = row(features, "S1", 4), row(features, "S3", 4)  # cut-off 28: A4 is next, then A6 and A5
    assert (s1["asm_next_quiz"], s1["asm_remaining"], s1["asm_next_weight"]) == (1, 5, 5)
    assert (s1["asm_next_submitted"], s3["asm_next_submitted"]) == (1, 0)  # S3 submits on day 30
    assert s1["asm_cohort_next_submitted"] == pytest.approx(1 / 3)  # S1 of S1, S2 and S3
    assert row(features, "S3", 5)["asm_next_submitted"] == 1  # cut-off 35: day 30 is known
    assert row(features, "S1", 5)["asm_cohort_next_submitted"] == 1  # S2 left on day 30
    later = row(features, "S1", 6)  # cut-off 42: A5 is next (S1 submitted A0 and A9, due then, not A5)
    assert (later["asm_next_quiz"], later["asm_remaining"], later["asm_next_submitted"]) == (0, 3, 0)
    labels = next_assessment_nonsubmission(
        population(data.registrations, data.presentations, weeks=[6]),
        data.assessments,
        results=data.assessment_results,
    )
    assert labels.loc[labels["student_id"] == "S1", "label"].tolist() == [1]  # the label's next is A5 too
    assert row(features, "S3", 4, module="M2")["asm_remaining"] == 0  # A3 has no due day


def test_registration_and_history_features(small: LearningData) -> None:
    features = build_features(small, weeks=[1])
    assert row(features, "S3", 1)["reg_late"] == 1
    assert row(features, "S2", 1)["prior_attempts"] == 1  # one attempt before the data starts
    assert row(features, "S3", 1, module="M2")["src_vle_recorded"] == 0


def test_cohort_context_uses_only_what_is_known_at_the_cut_off(small: LearningData) -> None:
    features = build_features(small, weeks=[4, 5])
    assert row(features, "S1", 4)["cohort_withdrawn_share"] == 0  # S2 leaves on day 30 >= 28
    s1 = row(features, "S1", 5)  # cut-off 35: S2 has left, S1 and S3 remain
    assert s1["cohort_withdrawn_share"] == pytest.approx(1 / 3)


def test_features_have_no_missing_values_and_the_catalogued_columns(synth_dir: Path) -> None:
    features = build_features(load_learning_data(synth_dir), weeks=[2, 9])
    assert list(features.columns) == [*KEYS, *FEATURE_NAMES]
    pd.testing.assert_frame_equal(features, features.sort_values(list(KEYS), ignore_index=True))
    assert not features[list(FEATURE_NAMES)].isna().any().any()
    shares = ["act_total_pct", "act_last14_pct", "act_active_days_pct", "asm_score_pct", "asm_submitted_pct"]
    assert features[shares].stack().between(0, 1).all()


def test_no_feature_is_a_protected_characteristic() -> None:
    assert not {f.name for f in FEATURES} & PROTECTED_COLUMN_NAMES
    assert all(f.family for f in FEATURES)


def test_features_refuse_anything_but_learning_data(small: LearningData) -> None:
    with pytest.raises(TypeError):
        build_features(small.tables())  # type: ignore[arg-type]
    with pytest.raises(ProtectedDataError):
        population(small.registrations.assign(gender="female"), small.presentations)
    # the steps hand each other Arrow tables: the same guard reads their columns
    arrow = pa.Table.from_pandas(small.registrations.assign(gender="female"), preserve_index=False)
    with pytest.raises(ProtectedDataError, match="gender"):
        population(arrow, small.presentations, engine=DUCKDB_ARROW)


WEEK = 6


def _alter_after_cut_off(data: LearningData, rng: np.random.Generator) -> LearningData:
    """Change and delete everything dated on or after the cut-off of week WEEK."""
    cut = 7 * WEEK
    act = data.activity.copy()
    late = act["day"] >= cut
    act.loc[late, "count"] = act.loc[late, "count"] * 3 + 1
    act.loc[late, "activity_type"] = "resource"
    act = act.drop(act[late].sample(frac=0.5, random_state=1).index)
    res = data.assessment_results.copy()
    late = res["submitted_day"] >= cut
    res.loc[late, "score"] = rng.uniform(0, 100, int(late.sum()))
    res = res.drop(res[late].sample(frac=0.5, random_state=2).index)
    regs = data.registrations.copy()
    gone = regs["unregistration_day"].notna() & (regs["unregistration_day"] >= cut)
    regs.loc[gone, "unregistration_day"] = regs.loc[gone, "unregistration_day"] + 5
    regs["final_result"] = (
        regs["final_result"].map({"pass": "fail", "fail": "pass"}).fillna(regs["final_result"])
    )
    return LearningData(data.presentations, data.students, regs, data.assessments, res, act)


@pytest.mark.parametrize("weeks", [[WEEK], [WEEK - 1, WEEK]], ids=["one week", "running totals"])
def test_nothing_dated_on_or_after_the_cut_off_changes_a_feature(synth_dir: Path, weeks: list[int]) -> None:
    data = load_learning_data(synth_dir)
    before = build_features(data, weeks=weeks)
    after = build_features(_alter_after_cut_off(data, np.random.default_rng(0)), weeks=weeks)
    pd.testing.assert_frame_equal(before, after)


def test_a_population_at_one_week_gets_that_weeks_features_from_among_every_week(synth_dir: Path) -> None:
    """A scoring run asks for one week, whose activity is summed without the running totals that
    training's every-week population uses: the values are the same."""
    data = load_learning_data(synth_dir)
    every = build_features(data)
    for week in (1, 2, 4, 9, int(every["week"].max())):
        alone = build_features(data, weeks=[week])
        pd.testing.assert_frame_equal(alone, every[every["week"] == week].reset_index(drop=True))


def test_the_leakage_check_would_notice_a_change_before_the_cut_off(synth_dir: Path) -> None:
    data = load_learning_data(synth_dir)
    act = data.activity.copy()
    early = act["day"] == 7 * WEEK - 1
    act.loc[early, "count"] = act.loc[early, "count"] + 10
    changed = LearningData(
        data.presentations, data.students, data.registrations, data.assessments, data.assessment_results, act
    )
    assert not build_features(data, weeks=[WEEK]).equals(build_features(changed, weeks=[WEEK]))


def test_features_of_chosen_presentations_equal_the_whole_folders_earlier_attempts_included(
    oulad_subset: Path, tmp_path: Path
) -> None:
    """Scoring loads the current presentations only; a student's attempts at a module in earlier
    presentations must still count in ``prior_attempts`` as they did when the model was trained."""
    folder = tmp_path / "oulad"
    import_oulad(oulad_subset, folder)
    later = load_learning_data(folder, choose=lambda p: p[pd.to_datetime(p["start_date"]).dt.year >= 2014])
    whole = build_features(load_learning_data(folder), [4, 8])
    chosen = build_features(later, [4, 8])
    assert len(chosen) and set(chosen["presentation_id"]) <= {"2014B", "2014J"}
    same_rows = whole.merge(chosen[list(KEYS)], on=list(KEYS))
    pd.testing.assert_frame_equal(chosen, same_rows)
    # the subset holds students who took a module before: without the whole folder's attempts they differ
    alone = build_features(replace(later, attempts=None), [4, 8])
    assert (alone["prior_attempts"] < chosen["prior_attempts"]).any()
    assert not (alone["prior_attempts"] > chosen["prior_attempts"]).any()


def test_a_students_own_due_day_replaces_the_assessments_for_them_alone(tmp_path: Path) -> None:
    """A UK evening university's students on an extension read "1 of the 2 assessments due so far was
    submitted" of work not yet due for them (228 of 256 in the week after a deadline)."""
    extended = [["student_id", "assessment_id", "due_day"], ["S3", "A1", "25"]]
    data = load_learning_data(make_folder(tmp_path, extensions=extended))
    assert data.extensions is not None and len(data.extensions) == 1
    features = build_features(data, weeks=[3, 4])
    s1, s3 = row(features, "S1", 3), row(features, "S3", 3)  # cut-off 21; A1 is due on day 20
    assert (s1["asm_due"], s1["asm_submitted"]) == (1, 1)  # the assessment's own due day
    assert (s3["asm_due"], s3["asm_missed"], s3["asm_weight_missed"]) == (0, 0, 0)  # not yet due for S3
    assert (s3["asm_remaining"], s3["asm_days_to_next"]) == (1, 25 - 21)
    later = row(features, "S3", 4)  # cut-off 28: handed in on day 22, before their own day 25
    assert (later["asm_due"], later["asm_submitted"], later["asm_late"]) == (1, 1, 0)
    # Without the table, S3 had missed A1 at week 3 (handed in on day 22, after the cut-off).
    plain = row(build_features(load_learning_data(make_folder(tmp_path / "plain")), weeks=[3]), "S3", 3)
    assert (plain["asm_due"], plain["asm_missed"]) == (1, 1)


def test_an_extension_counts_from_the_week_after_it_was_granted(tmp_path: Path) -> None:
    """Read from the start, an extension granted after a missed deadline hid, in the earlier weeks of past
    years, a miss that was there to see: the model learnt from what it could not have known (a review)."""
    extended = [["student_id", "assessment_id", "due_day", "granted_day"], ["S3", "A1", "25", "24"]]
    features = build_features(load_learning_data(make_folder(tmp_path, extensions=extended)), weeks=[3, 4])
    before, after = row(features, "S3", 3), row(features, "S3", 4)  # cut-offs 21 and 28
    assert (before["asm_due"], before["asm_missed"]) == (1, 1)  # not granted yet: the assessment's day 20
    assert (after["asm_due"], after["asm_submitted"], after["asm_late"]) == (1, 1, 0)  # own day 25


def test_the_next_assessment_target_judges_a_submission_by_the_students_own_due_day(tmp_path: Path) -> None:
    """S3 handed in on day 22, after the assessment's day 20 and before their own 25: labelled as not
    submitting, the students on extensions (mostly disabled students and carers) were learnt as such."""
    from waymark.models.targets import next_assessment_nonsubmission

    extended = [["student_id", "assessment_id", "due_day"], ["S3", "A1", "25"]]
    for folder, rows, expected in (("plain", None, 1), ("own", extended, 0)):
        data = load_learning_data(make_folder(tmp_path / folder, extensions=rows))
        pop = population(data.registrations, data.presentations)
        labelled = next_assessment_nonsubmission(
            pop[pop["week"] == 2],
            data.assessments,
            results=data.assessment_results,
            extensions=data.extensions,
        )
        s3 = labelled[(labelled["student_id"] == "S3") & (labelled["module_id"] == "M1")]
        assert s3["label"].tolist() == [expected], folder
        assert s3["outcome_day"].tolist() == [25 if rows else 20]
