"""A learning platform's own names for discussion, quizzes and navigation are not read as content unseen."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.contract_folder import VALID, make_folder
from waymark.models.data import validate_folder
from waymark.models.data.platform import PLATFORM_TYPES, channel_of, looks_like
from waymark.models.features.catalogue import VLE_TYPES

HEADER = VALID["activity"][0]


def _platform(*types: tuple[str, int], source: str = "vle") -> list[list[str]]:
    """An activity table of S1 on M1: one row per (activity_type, rows) of ``source``, besides a loan."""
    rows = [["S1", "M1", "2024J", str(day), source, t, "1"] for t, n in types for day in range(n)]
    return [HEADER, *rows, ["S2", "M1", "2024J", "5", "library", "loan", "1"]]


def _warnings(tmp_path: Path, activity: list[list[str]], **tables: list[list[str]]) -> dict[str, list]:
    report = validate_folder(make_folder(tmp_path, activity=activity, **tables))
    assert report.ok, report.to_text()
    out: dict[str, list] = {}
    for w in report.warnings:
        if w.rule in {"unread_platform_type", "no_platform_channels"}:
            out.setdefault(w.rule, []).append(w)
    return out


@pytest.mark.parametrize(
    ("name", "channel"),
    [
        ("discussion_topic", "vle_communication"),
        ("DiscussionEntry", "vle_communication"),
        ("contestant_page", None),  # "test" begins a word, not any part of one
        ("chat-room", "vle_communication"),
        ("quiz_attempt", "vle_quiz"),
        ("survey", "vle_quiz"),
        ("course_home", "vle_navigation"),
        ("dashboard", "vle_navigation"),
        ("resource", None),
        ("oucontent", None),
        ("url", None),
        ("quiz_forum", None),  # looks like two channels: no guess
    ],
)
def test_a_type_looks_like_a_channel_only_by_a_plain_word(name: str, channel: str | None) -> None:
    assert looks_like(name) == channel


def test_the_features_read_the_platform_types_this_module_checks() -> None:
    assert VLE_TYPES is PLATFORM_TYPES
    assert channel_of("forumng") == "vle_communication" and channel_of("discussion_topic") == "vle_content"


def test_a_look_alike_type_is_named_with_its_rows_first_row_and_the_mapping_that_reads_it(
    tmp_path: Path,
) -> None:
    found = _warnings(
        tmp_path, _platform(("resource", 3), ("discussion_topic", 4), ("quiz_attempt", 2), ("forum", 1))
    )
    assert set(found) == {"unread_platform_type"}  # forum is read as discussion: the folder has channels
    by_type = {w.examples[0].value: w for w in found["unread_platform_type"]}
    assert list(by_type) == ["discussion_topic", "quiz_attempt"]  # most rows first
    topic = by_type["discussion_topic"]
    assert (topic.table, topic.column, topic.count, topic.severity) == (
        "activity",
        "activity_type",
        4,
        "warning",
    )
    assert (topic.examples[0].file, topic.examples[0].row) == ("activity.csv", 4)  # after three resource rows
    text = topic.describe()
    assert "looks like discussion" in text and "read as study content" in text
    assert 'activity_type values = { discussion_topic = "forum" }' in text
    assert 'quiz_attempt = "quiz"' in by_type["quiz_attempt"].describe()


def test_a_platform_with_no_type_of_any_channel_is_named_with_its_commonest_types(tmp_path: Path) -> None:
    found = _warnings(tmp_path, _platform(("ressource", 5), ("seite", 3), ("lien", 1)))
    assert set(found) == {"no_platform_channels"}
    (warning,) = found["no_platform_channels"]
    assert warning.count == 9 and warning.distinct_values == 3
    assert warning.values == (("ressource", 5), ("seite", 3), ("lien", 1))
    text = warning.describe()
    assert (
        "none of the learning platform's 3 activity types is read as discussion, quizzes or navigation"
        in text
    )
    assert "discussion: forumng, forum" in text


def test_a_source_that_counts_as_the_platform_is_checked_and_others_are_not(tmp_path: Path) -> None:
    sources = [["source", "label", "notice_given_on", "counts_as"], ["canvas", "Canvas", "2020-01-01", "vle"]]
    found = _warnings(tmp_path, _platform(("discussion_topic", 2), source="canvas"), sources=sources)
    assert [w.examples[0].value for w in found["unread_platform_type"]] == ["discussion_topic"]
    other = [["source", "label", "notice_given_on"], ["lecture_rooms", "Lecture rooms", "2020-01-01"]]
    assert (
        _warnings(
            tmp_path / "other", _platform(("discussion_topic", 2), source="lecture_rooms"), sources=other
        )
        == {}
    )


def test_the_contract_folder_gives_no_platform_warning(tmp_path: Path) -> None:
    assert _warnings(tmp_path, VALID["activity"]) == {}
