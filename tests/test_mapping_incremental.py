"""Incremental loads (#14, item 3): a weekly extract appended adds only what is new, and says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.polytechnic import (
    STUDENTS,
    click_rows,
    records_rows,
    write_clicks,
    write_extract,
    write_mapping,
    write_records,
)
from waymark.models.data import folder_fingerprint, load_learning_data, memo, read_manifest
from waymark.training.ingest.mapping.importer import (
    AppendRefused,
    ImportResult,
    MappingDataError,
    import_mapped,
)
from waymark.training.ingest.mapping.schema import Mapping, MappingError, load_mapping

SECRET = b"s" * 40


@pytest.fixture
def mapping(tmp_path: Path) -> Mapping:
    return load_mapping(write_mapping(tmp_path / "mapping"))


def _week_extract(folder: Path, weeks: range) -> Path:
    write_records(folder)
    write_clicks(folder, click_rows(weeks))
    return folder


@pytest.fixture
def loaded(tmp_path: Path, mapping: Mapping) -> Path:
    out = tmp_path / "data"
    import_mapped(mapping, [write_extract(tmp_path / "w0", weeks=range(2))], out=out, secret=SECRET)
    return out


def test_a_new_week_adds_only_its_rows(tmp_path: Path, mapping: Mapping, loaded: Path) -> None:
    before = load_learning_data(loaded).activity
    result = import_mapped(
        mapping, [_week_extract(tmp_path / "w2", range(2, 3))], out=loaded, secret=SECRET, append=True
    )
    after = load_learning_data(loaded).activity
    new = len(click_rows(range(2, 3)))
    assert len(after) == len(before) + new
    assert result.written is not None
    assert result.written["activity"]["added"] == new
    assert result.written["activity"]["late"] == 0  # a later week's days: none the folder had reached
    assert result.written["registrations"] == {
        "added": 0,
        "replaced": 0,
        "unchanged": 24,
        "absent": 0,
        "retired": 0,
        "total": 24,
    }


def test_re_running_the_same_extract_changes_nothing(tmp_path: Path, mapping: Mapping, loaded: Path) -> None:
    fingerprint = folder_fingerprint(loaded)
    result = import_mapped(
        mapping, [_week_extract(tmp_path / "again", range(2))], out=loaded, secret=SECRET, append=True
    )
    assert folder_fingerprint(loaded) == fingerprint
    assert result.written is not None
    assert all(n["added"] == n["replaced"] == 0 for n in result.written.values())


def test_a_late_row_within_the_presentation_is_accepted(
    tmp_path: Path, mapping: Mapping, loaded: Path
) -> None:
    # A click from day 3 arrives in week 5's extract, with a tool the first extract never saw that day.
    late = [[STUDENTS[0], "INF101", "2023S1", "2023-09-21T10:00:00Z", "wiki", "x"]]
    result = import_mapped(
        mapping, [_week_extract_rows(tmp_path / "late", late)], out=loaded, secret=SECRET, append=True
    )
    activity = load_learning_data(loaded).activity
    row = activity[(activity["activity_type"] == "wiki")]
    assert row[["day", "count"]].to_numpy().tolist() == [[3, 1]]
    # Said as late: a Kenyan university's Moodle app synced offline actions days after a run had been
    # scored, and the append said only "12,213 added".
    from waymark.cli.data_import import _changes

    assert result.written is not None and result.written["activity"]["late"] == 1
    said = _changes({**result.written["activity"], "total": 1})
    assert "1 of the added on days the folder's activity had already reached" in said


def _week_extract_rows(folder: Path, rows: list[list[str]]) -> Path:
    write_records(folder)
    write_clicks(folder, rows)
    return folder


def test_a_source_the_folder_did_not_hold_is_never_late(tmp_path: Path, loaded: Path) -> None:
    """A Vietnamese university appending its Moodle after its QR attendance, as the docs order them,
    was told 616,139 of the new rows were "recorded late": they were a new source, over days only the
    other source had reached."""
    from tests.polytechnic import MAPPING

    library = MAPPING.replace('source = { value = "vle" }', 'source = { value = "library" }').replace(
        "[sources]\n", '[sources]\nlibrary = "the library\'s sign-ins"\n'
    )
    assert library.count("library") == 3
    earlier = click_rows(range(2))[:5]  # days the folder's vle activity had reached
    result = import_mapped(
        load_mapping(write_mapping(tmp_path / "library", library)),
        [_week_extract_rows(tmp_path / "signins", earlier)],
        out=loaded,
        secret=SECRET,
        append=True,
    )
    assert result.written is not None
    assert result.written["activity"]["added"] == 5 and result.written["activity"]["late"] == 0


def test_a_corrected_count_replaces_the_old_row(tmp_path: Path, mapping: Mapping, loaded: Path) -> None:
    first_click = click_rows(range(1))[0]
    result = import_mapped(
        mapping,
        [_week_extract_rows(tmp_path / "fix", [first_click, first_click])],
        out=loaded,
        secret=SECRET,
        append=True,
    )
    assert result.written is not None
    assert result.written["activity"]["replaced"] == 1
    assert result.written["activity"]["lowered"] == 0  # a later log adds to a day
    activity = load_learning_data(loaded).activity
    assert activity["count"].max() == 2


def test_an_extract_that_lowers_an_earlier_days_count_is_said_to(
    tmp_path: Path, mapping: Mapping, loaded: Path
) -> None:
    """An institute's platform export kept each item's latest visit only: every extract rewrote earlier
    days with lower counts, and the append said only "2,551 replaced"."""
    from waymark.cli.data_import import _changes

    first_click = click_rows(range(1))[0]
    twice = _week_extract_rows(tmp_path / "twice", [first_click, first_click])
    import_mapped(mapping, [twice], out=loaded, secret=SECRET, append=True)
    once = _week_extract_rows(tmp_path / "once", [first_click])
    result = import_mapped(mapping, [once], out=loaded, secret=SECRET, append=True)
    assert result.written is not None
    assert (result.written["activity"]["replaced"], result.written["activity"]["lowered"]) == (1, 1)
    said = _changes({**result.written["activity"], "total": 1})
    assert "1 of the replaced with fewer actions on their day than the folder held" in said
    # its one day is the first the increment holds: read as an increment cut part-way through a day
    assert "starts part-way through a local day" in said and "latest visit" not in said


def test_an_increment_lowering_days_after_its_first_is_read_as_a_latest_visit_export(
    tmp_path: Path, mapping: Mapping, loaded: Path
) -> None:
    """A US college's weekly extract cut at midnight UTC replaced its first local day with that day's
    evening, and the append blamed an export keeping only each item's latest visit. That cause is kept
    for lowered days after the increment's first."""
    from waymark.cli.data_import import _changes

    rows = click_rows(range(2))
    first = rows[0]
    later = next(r for r in rows if r[:3] == first[:3] and r[3] != first[3])  # a week on
    import_mapped(
        mapping, [_week_extract_rows(tmp_path / "a", [later, later])], out=loaded, secret=SECRET, append=True
    )
    result = import_mapped(
        mapping, [_week_extract_rows(tmp_path / "b", [first, later])], out=loaded, secret=SECRET, append=True
    )
    assert result.written is not None
    assert (result.written["activity"]["lowered"], result.written["activity"]["lowered_first"]) == (1, 0)
    said = _changes({**result.written["activity"], "total": 1})
    assert "latest visit" in said and "part-way" not in said


def test_each_increment_is_recorded_in_the_lineage(tmp_path: Path, mapping: Mapping, loaded: Path) -> None:
    import_mapped(
        mapping, [_week_extract(tmp_path / "w2", range(2, 3))], out=loaded, secret=SECRET, append=True
    )
    increments = read_manifest(loaded)["increments"]
    assert [i["mode"] for i in increments] == ["import", "append"]
    assert set(increments[1]["files"]) == {"records.csv", "clicks.csv"}
    assert all(len(sha) == 64 for sha in increments[1]["files"].values())
    assert increments[1]["rows"]["activity"]["added"] == len(click_rows(range(2, 3)))
    assert read_manifest(loaded)["pseudonym_key"]


def test_a_failed_append_leaves_the_folder_untouched(tmp_path: Path, mapping: Mapping, loaded: Path) -> None:
    fingerprint, manifest = folder_fingerprint(loaded), read_manifest(loaded)
    bad = [[STUDENTS[0], "INF101", "2023S1", "yesterday", "forum", "x"]]
    with pytest.raises(MappingDataError):
        import_mapped(
            mapping, [_week_extract_rows(tmp_path / "bad", bad)], out=loaded, secret=SECRET, append=True
        )
    assert folder_fingerprint(loaded) == fingerprint
    assert read_manifest(loaded) == manifest
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".data")]
    assert left == [memo.memo_path(loaded).name]  # no staging or old copy; the first import's memo
    assert memo.remembered(loaded, fingerprint=fingerprint)


def test_an_append_with_another_secret_is_refused(tmp_path: Path, mapping: Mapping, loaded: Path) -> None:
    fingerprint = folder_fingerprint(loaded)
    with pytest.raises(AppendRefused, match="another secret"):
        import_mapped(
            mapping, [_week_extract(tmp_path / "w2", range(2, 3))], out=loaded, secret=b"t" * 40, append=True
        )
    assert folder_fingerprint(loaded) == fingerprint


def test_an_activity_only_mapping_appends_against_the_folders_presentations(
    tmp_path: Path, mapping: Mapping, loaded: Path
) -> None:
    text = (tmp_path / "mapping" / "polytechnic.toml").read_text(encoding="utf-8")
    clicks_only = text.split("[inputs.records]")[0].replace(
        'empty = ["assessments", "assessment_results"]\n', ""
    )
    clicks_only += "[inputs.clicks]" + text.split("[inputs.clicks]")[1].split("[tables.presentations]")[0]
    clicks_only += "[tables.activity]" + text.split("[tables.activity]")[1]
    activity_mapping = load_mapping(write_mapping(tmp_path / "clicks-mapping", clicks_only))
    src = tmp_path / "w3"
    write_clicks(src, click_rows(range(3, 4)))
    import_mapped(activity_mapping, [src], out=loaded, secret=SECRET, append=True)
    data = load_learning_data(loaded)
    assert data.activity["day"].max() >= 21
    assert len(data.registrations) == 24


def test_a_table_the_increment_did_not_touch_is_said_to_be_kept() -> None:
    from waymark.cli.data_import import _changes

    kept = {"added": 0, "replaced": 0, "unchanged": 0, "total": 1_623}
    assert _changes(kept) == "none in this import: kept as it was"  # not "0 added, 0 replaced, 0 unchanged"
    assert (
        _changes({"added": 3, "replaced": 1, "unchanged": 20, "total": 24})
        == "3 added, 1 replaced, 20 unchanged"
    )


# --- rows a later extract no longer holds, and a folder an import would replace -------------------------

GONE = (STUDENTS[0], "2024S2")  # a registration deleted in the records system before its term began


def _but_gone(rows: list[list[str]]) -> list[list[str]]:
    return [r for r in rows if (r[0], r[2]) != GONE]


def _folder_without_clicks_of_the_gone(tmp_path: Path, mapping: Mapping) -> Path:
    src, out = tmp_path / "first", tmp_path / "data"
    write_records(src)
    write_clicks(src, _but_gone(click_rows(range(2))))
    import_mapped(mapping, [src], out=out, secret=SECRET)
    return out


def _later(tmp_path: Path) -> Path:
    src = tmp_path / "later"  # this term's registrations only, the deleted one gone
    write_records(src, [r for r in _but_gone(records_rows()) if r[2] == "2024S2"])
    write_clicks(src, _but_gone(click_rows(range(2, 3))))
    return src


def _append_later(mapping: Mapping, tmp_path: Path, out: Path, **options: Any) -> ImportResult:
    """The later extract (``_later``) appended to ``out`` with ``mapping``, and any other options."""
    return import_mapped(mapping, [_later(tmp_path)], out=out, secret=SECRET, append=True, **options)


def test_a_registration_the_later_extract_no_longer_lists_is_counted_and_kept_unless_retired(
    tmp_path: Path, mapping: Mapping
) -> None:
    from waymark.cli.data_import import _changes

    out = _folder_without_clicks_of_the_gone(tmp_path, mapping)
    kept = _append_later(mapping, tmp_path, out)
    assert kept.written is not None and kept.written["registrations"]["absent"] == 1
    assert len(load_learning_data(out).registrations) == 24
    assert _changes(kept.written["registrations"]).endswith(
        "; 1 earlier row of presentations it lists is no longer in it: kept (--retire-missing removes them)"
    )
    retired = _append_later(mapping, tmp_path, out, retire=frozenset({"registrations"}))
    assert retired.written is not None and retired.written["registrations"]["retired"] == 1
    assert _changes(retired.written["registrations"]).endswith(": 1 retired")
    registrations = load_learning_data(out).registrations
    # Only the deleted one: the earlier semester, which this extract does not list, is kept whole.
    assert len(registrations) == 23
    assert (registrations["presentation_id"] == "2023S1").sum() == 12
    assert read_manifest(out)["increments"][-1]["rows"]["registrations"]["retired"] == 1


def test_a_table_another_mapping_built_too_is_neither_retired_nor_counted_absent(
    tmp_path: Path, mapping: Mapping
) -> None:
    """A university's weekly records append, retiring assessments, removed 21 platform tests another
    mapping had added: the records never listed them. Each append also counted them "no longer in it"."""
    out = _folder_without_clicks_of_the_gone(tmp_path, mapping)
    platform = mapping.model_copy(update={"name": "platform-enrolments"})
    _append_later(platform, tmp_path, out)
    before = folder_fingerprint(out)
    for dry_run in (True, False):
        with pytest.raises(AppendRefused, match="registrations also come from platform-enrolments"):
            _append_later(mapping, tmp_path, out, retire=frozenset({"registrations"}), dry_run=dry_run)
    assert folder_fingerprint(out) == before
    kept = _append_later(mapping, tmp_path, out)
    assert kept.written is not None and "absent" not in kept.written["registrations"]
    assert len(load_learning_data(out).registrations) == 24


def test_a_folder_made_by_no_mapping_keeps_its_first_import_as_a_builder_after_appends(
    tmp_path: Path,
) -> None:
    """The OULAD import and the synthetic cohort record no increment: after one append, their rows had
    no builder left, and a second append could retire them."""
    import json

    from waymark.training.ingest.mapping.importer import _builders

    folder = tmp_path / "data"
    folder.mkdir()
    manifest = folder / "waymark-data.json"
    manifest.write_text(json.dumps({"source": "oulad"}), encoding="utf-8")
    assert _builders(folder, "registrations") == {"its first import (by no mapping)"}
    appended = {"mapping": "records", "mode": "append", "rows": {"registrations": {"added": 3}}}
    manifest.write_text(json.dumps({"source": "mapping:records", "increments": [appended]}), encoding="utf-8")
    assert _builders(folder, "registrations") == {"records", "its first import (by no mapping)"}
    imported = {**appended, "mode": "import"}
    manifest.write_text(json.dumps({"increments": [imported, appended]}), encoding="utf-8")
    assert _builders(folder, "registrations") == {"records"}


def test_a_registration_activity_or_results_still_name_is_kept_and_said_so(
    tmp_path: Path, mapping: Mapping, loaded: Path
) -> None:
    """Retired, the registration of a student who had opened the module would have refused the append."""
    from waymark.cli.data_import import _changes

    result = _append_later(mapping, tmp_path, loaded, retire=frozenset({"registrations"}))
    assert result.written is not None
    counts = result.written["registrations"]
    assert (counts["absent"], counts["retired"], counts["held"]) == (1, 0, 1)
    data = load_learning_data(loaded)
    assert len(data.registrations) == 24
    assert _changes(counts).endswith(": 0 retired, 1 kept because activity or results name them")
    assert "(each ended the day after its last activity or submission" in _changes(counts, "registrations")
    # An Australian university's records delete an enrolment withdrawn before the census date while the
    # platform keeps its activity: it had stayed on worklists. Held, it ends after its last activity.
    regs, act = data.registrations, data.activity
    ended = regs[regs["unregistration_day"].notna() & (regs["presentation_id"] == GONE[1])]
    assert len(ended) == 1 and pd.isna(ended["final_result"].iloc[0])
    (student,) = ended["student_id"]
    mine = act[(act["student_id"] == student) & (act["presentation_id"] == GONE[1])]
    assert int(ended["unregistration_day"].iloc[0]) == int(mine["day"].max()) + 1


def test_only_an_append_retires_and_only_tables_an_extract_lists_whole(
    tmp_path: Path, mapping: Mapping, loaded: Path
) -> None:
    src = _week_extract(tmp_path / "w2", range(2, 3))
    with pytest.raises(MappingError, match="give --append"):
        import_mapped(mapping, [src], out=loaded, secret=SECRET, retire=frozenset({"registrations"}))
    with pytest.raises(MappingError, match="--retire-missing activity: only registrations and assessments"):
        import_mapped(mapping, [src], out=loaded, secret=SECRET, append=True, retire=frozenset({"activity"}))
    with pytest.raises(MappingError, match="mapping polytechnic does not build it"):
        import_mapped(
            mapping, [src], out=loaded, secret=SECRET, append=True, retire=frozenset({"assessments"})
        )
    with pytest.raises(MappingError, match="give one of them"):
        import_mapped(mapping, [src], out=loaded, secret=SECRET, append=True, replace_folder=True)


def test_an_import_that_would_replace_appended_extracts_is_refused_unless_asked(
    tmp_path: Path, mapping: Mapping, loaded: Path
) -> None:
    import_mapped(
        mapping, [_week_extract(tmp_path / "w2", range(2, 3))], out=loaded, secret=SECRET, append=True
    )
    fingerprint = folder_fingerprint(loaded)
    again = write_extract(tmp_path / "again", weeks=range(1))
    with pytest.raises(AppendRefused, match=r"1 earlier increment\(s\) from polytechnic \(append, "):
        import_mapped(mapping, [again], out=loaded, secret=SECRET)
    with pytest.raises(AppendRefused, match="--replace"):  # the dry run says so first
        import_mapped(mapping, [again], out=loaded, secret=SECRET, dry_run=True)
    assert folder_fingerprint(loaded) == fingerprint
    import_mapped(mapping, [again], out=loaded, secret=SECRET, replace_folder=True)
    assert [i["mode"] for i in read_manifest(loaded)["increments"]] == ["import"]


def test_importing_again_with_the_mapping_that_made_the_folder_refreshes_it(
    tmp_path: Path, mapping: Mapping, loaded: Path
) -> None:
    import_mapped(mapping, [write_extract(tmp_path / "again", weeks=range(1))], out=loaded, secret=SECRET)
    assert len(read_manifest(loaded)["increments"]) == 1


SCHOLARSHIP = """\
version = 1
name = "scholarship"
description = "The scholarship office's list of recipients: one characteristic, for some students"
timezone = "Europe/Lisbon"

[pseudonymise]
columns = ["student_id"]

[inputs.records]
files = ["records*.csv"]
separator = ";"
keep = { status = ["Graduate"] }

[tables.protected_characteristics]
from = "records"
duplicates = "last"
ignore = ["course_code", "semester", "semester_start", "enrolment_date", "status", "credits_enrolled",
          "admission_grade", "nationality"]
[tables.protected_characteristics.columns]
student_id = "student_number"
means_tested_support = { value = "Y" }
"""


def test_an_append_that_would_empty_columns_of_the_rows_it_replaces_is_refused(
    tmp_path: Path, loaded: Path
) -> None:
    """A university's scholarship mapping gave one characteristic for 60 recipients: the append replaced
    their rows whole, emptying gender, nationality and disability, and the audit's "not recorded"
    gender group became exactly the means-tested students."""
    scholarship = load_mapping(write_mapping(tmp_path / "s", SCHOLARSHIP))
    before = folder_fingerprint(loaded)
    for dry_run in (True, False):
        with pytest.raises(AppendRefused, match=r"but not nationality, which .* holds for \d+ of the rows"):
            import_mapped(
                scholarship,
                [_week_extract(tmp_path / "s-export", range(1))],
                out=loaded,
                secret=SECRET,
                append=True,
                dry_run=dry_run,
            )
    assert folder_fingerprint(loaded) == before
