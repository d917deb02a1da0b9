"""A late registrant's own earlier weekly rate counts the weeks since they registered, not before.

Found by an adopting institution: a student registered on day 21 with 11 actions on days 21-34 was
told at week 7 that their 16 actions in the last 14 days were "about 2.8 times this student's own
earlier weekly rate", the 11 spread over the five weeks since the start. Over the two weeks since
registering their rate was 5.5 a week: about 1.4 times. A registration before the start, or without a
recorded day, counts every week from the start, as before.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.contract_folder import VALID, make_folder
from waymark.models.data import LearningData, load_learning_data
from waymark.models.explain.batch_sentences import describe_all
from waymark.models.explain.cohort import _sides, _Values
from waymark.models.explain.sentences import describe
from waymark.models.features import build_features

OWN = "this student's own earlier"
# 11 actions in days 21-34 (the weeks from registering to the last 14 days at week 7), then 16 on
# 8 days of days 35-48 (the last 14 days at week 7's cut-off, day 49).
EARLIER = {21: 3, 25: 2, 28: 4, 33: 2}
RECENT = dict.fromkeys((35, 36, 38, 40, 42, 44, 46, 48), 2)


def _late_and_undated(tmp_path: Path) -> LearningData:
    """The valid folder plus S4, registered on day 21, and S5, with the same activity and no day."""
    students = [
        *VALID["students"],
        ["S4", "P1", "1", "full_time", "0", "120"],
        ["S5", "P1", "1", "full_time", "0", "120"],
    ]
    registrations = [
        *VALID["registrations"],
        ["S4", "M1", "2024J", "21", "", "pass"],
        ["S5", "M1", "2024J", "", "", "pass"],
    ]
    activity = [
        *VALID["activity"],
        *(
            [student, "M1", "2024J", str(day), "vle", "resource", str(n)]
            for student in ("S4", "S5")
            for day, n in {**EARLIER, **RECENT}.items()
        ),
    ]
    folder = make_folder(tmp_path, students=students, registrations=registrations, activity=activity)
    return load_learning_data(folder)


def _row(features: pd.DataFrame, student: str, week: int) -> pd.Series:
    found = features[(features["student_id"] == student) & (features["week"] == week)]
    assert len(found) == 1
    return found.iloc[0]


@pytest.mark.parametrize("weeks", [[7], [4, 5, 6, 7]], ids=["one week", "running totals"])
def test_a_late_registrants_earlier_rate_counts_the_weeks_since_registering(
    tmp_path: Path, weeks: list[int]
) -> None:
    features = build_features(_late_and_undated(tmp_path), weeks=weeks)
    late = _row(features, "S4", 7)
    since = 11 / 2  # days 21-34: the weeks of day 21 and day 28
    assert late["act_earlier_weekly_rate"] == pytest.approx(math.log1p(since))
    assert late["act_recent_vs_own"] == pytest.approx((16 / 2 + 1) / (since + 1))
    # No registration day: every week from the start counts, as it always has (11 over weeks 0-4).
    undated = _row(features, "S5", 7)
    assert undated["act_earlier_weekly_rate"] == pytest.approx(math.log1p(11 / 5))
    assert undated["act_recent_vs_own"] == pytest.approx((16 / 2 + 1) / (11 / 5 + 1))
    # Registered before the start (day -10): the same, pre-start actions included (days -3 and 1).
    before = _row(features, "S1", 7)
    assert before["act_earlier_weekly_rate"] == pytest.approx(math.log1p(5 / 5))


def test_a_late_registrants_sentence_says_the_ratio_to_their_rate_since_registering(tmp_path: Path) -> None:
    features = build_features(_late_and_undated(tmp_path), weeks=[7])
    rows = features[features["student_id"].isin(["S4", "S5"])].reset_index(drop=True)
    expected = [
        "16 actions on 8 days of the last 14, about 1.4 times this student's own earlier weekly rate.",
        "16 actions on 8 days of the last 14, about 2.8 times this student's own earlier weekly rate.",
    ]
    assert [describe("recent_activity", r) for r in rows.to_dict("records")] == expected
    cols = {name: rows[name].to_numpy() for name in rows.columns if name not in ("student_id", "module_id")}
    assert describe_all("recent_activity", cols, src=["", ""])[1] == expected


def test_no_earlier_week_since_registering_no_comparison_with_own_earlier_weeks(tmp_path: Path) -> None:
    features = build_features(_late_and_undated(tmp_path), weeks=[4, 5, 6])
    late = features[features["student_id"] == "S4"].reset_index(drop=True)
    # Weeks 4 and 5: the last 14 days reach back to the week of registering (day 21), or before it.
    assert late["act_recent_vs_own"].tolist()[:2] == [1.0, 1.0]
    said = [describe("recent_activity", r) for r in late.to_dict("records")]
    assert said[:2] == ["5 actions on 2 days of the last 14.", "11 actions on 4 days of the last 14."]
    # Week 6: one earlier week since registering (days 21-27, 5 actions) against days 28-41.
    assert late["act_earlier_weekly_rate"].iloc[2] == pytest.approx(math.log1p(5))
    assert said[2] == (  # (14 / 2 + 1) / (5 + 1)
        "14 actions on 6 days of the last 14, about 1.3 times this student's own earlier weekly rate."
    )
    cols = {name: late[name].to_numpy() for name in late.columns if name not in ("student_id", "module_id")}
    assert describe_all("recent_activity", cols, src=[""] * len(late))[1] == said


def test_the_sides_of_recent_activity_follow_what_its_sentence_says() -> None:
    """A ratio not said is neither above nor below the student's own rate: either side may use it."""
    grid = pd.MultiIndex.from_product(
        [range(1, 9), [-10.0, 0.0, 6.0, 7.0, 21.0, 30.0], [0.5, 1.0, 2.0]],
        names=["weeks_elapsed", "reg_day", "act_recent_vs_own"],
    ).to_frame(index=False)
    rows = grid.assign(
        act_last14=np.log1p(12), act_active_days_last14=4.0, act_any=1.0, act_days_since_last=1.0
    )
    cols = {name: rows[name].to_numpy(dtype=np.float64) for name in rows.columns}
    single = [describe("recent_activity", r) for r in rows.to_dict("records")]
    assert describe_all("recent_activity", cols, src=[""] * len(rows))[1] == single
    registered_in = np.maximum(rows["reg_day"] // 7, 0)
    compared = (rows["weeks_elapsed"] - registered_in >= 3).tolist()
    assert [OWN in s for s in single] == compared
    assert not any(OWN in s for s, w in zip(single, rows["weeks_elapsed"], strict=True) if w < 3)
    may_raise, may_lower = _sides(_Values(rows), "recent_activity", group=np.arange(len(rows)))
    assert may_raise.tolist() == [" times " + OWN not in s for s in single]
    assert may_lower.tolist() == ["% of " + OWN not in s for s in single]
    # The case found: registered on day 21, at week 5 a high ratio is not said, so it may be a factor.
    found = (rows["reg_day"] == 21) & (rows["weeks_elapsed"] == 5) & (rows["act_recent_vs_own"] == 2.0)
    assert may_raise[found.to_numpy()].all()


# Regularity and quiet days count the weeks a student has had, not the weeks since the start -----------------
#
# Found by a fourth adopting institution (open entry): a student registered on the data date was
# "active in 0 of the 5 weeks so far", and one with no activity had been quiet since 36 days before
# the start, both read by the model as disengagement from weeks they were not yet enrolled for.


def _with_a_new_registrant(tmp_path: Path) -> LearningData:
    """The late and undated students, plus S6, registered on day 40 with no activity yet."""
    folder = make_folder(
        tmp_path,
        students=[*VALID["students"], *(
            [s, "P1", "1", "full_time", "0", "120"] for s in ("S4", "S5", "S6"))],
        registrations=[*VALID["registrations"], ["S4", "M1", "2024J", "21", "", "pass"],
                       ["S5", "M1", "2024J", "", "", "pass"], ["S6", "M1", "2024J", "40", "", "pass"]],
        activity=[*VALID["activity"], *(
            [s, "M1", "2024J", str(day), "vle", "resource", str(n)]
            for s in ("S4", "S5") for day, n in {**EARLIER, **RECENT}.items())],
    )  # fmt: skip
    return load_learning_data(folder)


@pytest.mark.parametrize("weeks", [[7], [4, 5, 6, 7]], ids=["one week", "running totals"])
def test_weeks_active_and_quiet_days_count_from_registering(tmp_path: Path, weeks: list[int]) -> None:
    features = build_features(_with_a_new_registrant(tmp_path), weeks=weeks)
    # S4 registered on day 21 (week 3): active in each of weeks 3 to 6, its four weeks.
    assert _row(features, "S4", 7)["act_weeks_active_share"] == pytest.approx(1.0)
    # S5, the same activity with no registration day: four of the seven weeks since the start.
    assert _row(features, "S5", 7)["act_weeks_active_share"] == pytest.approx(4 / 7)
    new = _row(features, "S6", 7)
    assert new["act_any"] == 0 and new["act_weeks_active_share"] == 0
    assert new["act_days_since_last"] == 49 - 40  # since registering, not since day -36 (85)


def test_the_regularity_sentence_says_the_weeks_since_registering(tmp_path: Path) -> None:
    features = build_features(_with_a_new_registrant(tmp_path), weeks=[7])
    rows = features[features["student_id"].isin(["S4", "S5", "S6"])].reset_index(drop=True)
    expected = [
        "Activity in 4 of the 4 weeks since registering (12 active days).",
        "Activity in 4 of the 7 weeks so far (12 active days).",
        "Activity in 0 of the 2 weeks since registering (0 active days).",  # weeks 5 and 6
    ]
    said = [describe("regularity", r) for r in rows.to_dict("records")]
    assert said == expected
    cols = {name: rows[name].to_numpy() for name in rows.columns if name not in ("student_id", "module_id")}
    assert describe_all("regularity", cols, src=[""] * 3)[1] == expected
    may_raise, may_lower = _sides(_Values(rows), "regularity", group=np.arange(len(rows)))
    assert may_raise.tolist() == [False, True, True]  # active in every one of their weeks: never a factor
    assert may_lower.tolist() == [True, True, False]
    # S6 at week 6 has had one week (the one of day 40): said as one week, not "0 of the 1 weeks".
    first = build_features(_with_a_new_registrant(tmp_path / "w6"), weeks=[6])
    s6 = first[first["student_id"] == "S6"].reset_index(drop=True)
    expected_s6 = ["No activity in the 1 week since registering (0 active days)."]
    assert [describe("regularity", r) for r in s6.to_dict("records")] == expected_s6
    cols6 = {name: s6[name].to_numpy() for name in s6.columns if name not in ("student_id", "module_id")}
    assert describe_all("regularity", cols6, src=[""])[1] == expected_s6


def test_active_days_before_the_start_are_said_as_such(tmp_path: Path) -> None:
    """A German university's review: "in 7 of the 9 weeks so far (19 active days)" counted 5 days of
    pre-reading before the module started, which the weeks do not."""
    features = build_features(_with_a_new_registrant(tmp_path), weeks=[7])
    rows = features[features["student_id"] == "S5"].reset_index(drop=True)
    rows["act_pre_start"] = np.log1p(3.0)  # three actions before the start
    expected = ["Activity in 4 of the 7 weeks so far (12 active days, some before the module started)."]
    assert [describe("regularity", r) for r in rows.to_dict("records")] == expected
    cols = {name: rows[name].to_numpy() for name in rows.columns if name not in ("student_id", "module_id")}
    assert describe_all("regularity", cols, src=[""])[1] == expected


def test_active_days_all_before_the_start_are_said_so(tmp_path: Path) -> None:
    """A polytechnic's 8-week block in its first week: "No activity ... in the 1 week so far (1 active day,
    some before the module started)" of a day wholly before the block began."""
    features = build_features(_with_a_new_registrant(tmp_path), weeks=[7])
    rows = features[features["student_id"] == "S5"].reset_index(drop=True)
    rows["act_pre_start"] = np.log1p(3.0)
    rows["act_weeks_active_share"] = 0.0  # no week of the presentation active: every active day was before it
    said = [describe("regularity", r) for r in rows.to_dict("records")]
    assert said == ["Activity in 0 of the 7 weeks so far (12 active days, before the module started)."]
    cols = {name: rows[name].to_numpy() for name in rows.columns if name not in ("student_id", "module_id")}
    assert describe_all("regularity", cols, src=[""])[1] == said
