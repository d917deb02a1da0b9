"""A folder that passed validation is not checked again until a byte of it, or a rule, changes."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.contract_folder import make_folder, with_row
from tests.polytechnic import (
    click_rows,
    records_rows,
    write_clicks,
    write_extract,
    write_mapping,
    write_records,
)
from waymark.cli.data import synthesise
from waymark.models.calendar import data_date
from waymark.models.data import (
    ContractViolation,
    ValidationReport,
    folder_fingerprint,
    load_with_source_labels,
    memo,
)
from waymark.service.scoring.job import _last_days
from waymark.training.ingest.mapping.importer import import_mapped
from waymark.training.ingest.mapping.schema import load_mapping
from waymark.training.ingest.oulad import import_oulad
from waymark.training.ingest.synthetic import SynthConfig

OULAD_SUBSET = Path(__file__).parent / "fixtures" / "oulad_subset"


def _open(folder: Path) -> ValidationReport | None:
    con, report = memo.open_valid(folder, fingerprint=folder_fingerprint(folder))
    con.close()
    return report


def _never_validate(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("the folder was validated again")


def test_an_unchanged_folder_is_read_without_its_checks_and_a_changed_byte_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_folder(tmp_path / "data")
    first = _open(folder)
    assert first is not None and first.ok
    assert memo.memo_path(folder) == tmp_path / ".data.waymark-validated.json"
    assert memo.memo_path(folder).is_file() and not (folder / memo.memo_path(folder).name).exists()
    with monkeypatch.context() as patched:
        patched.setattr(memo, "validate_folder", _never_validate)
        con, report = memo.open_valid(folder, fingerprint=folder_fingerprint(folder))
        assert report is None
        reused, labels = load_with_source_labels(con, choose=None)
    checked, checked_labels = load_with_source_labels(folder)
    for name, frame in checked.tables().items():
        assert reused.tables()[name].equals(frame), name
    assert labels == checked_labels
    # One byte: a count of 3 becomes x, which is not a whole number.
    activity = folder / "activity.csv"
    raw = activity.read_bytes()
    assert raw.count(b",resource,3\r\n") == 1
    activity.write_bytes(raw.replace(b",resource,3\r\n", b",resource,x\r\n"))
    with pytest.raises(ContractViolation) as caught:
        _open(folder)
    assert [(f.table, f.column, f.rule) for f in caught.value.report.findings] == [
        ("activity", "count", "type_int")
    ]
    # Put back, the folder is the one that passed: its memo holds again.
    activity.write_bytes(raw)
    with monkeypatch.context() as patched:
        patched.setattr(memo, "validate_folder", _never_validate)
        assert _open(folder) is None


def test_a_change_of_rules_means_validating_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_folder(
        tmp_path / "data", activity=with_row("activity", ["S1", "M1", "2024J", "7", "vle", "kiosk", "1"])
    )
    assert _open(folder) is not None
    assert _open(folder) is None
    terms = tmp_path / "terms.toml"
    terms.write_text('terms = ["kiosk"]\n', encoding="utf-8")
    monkeypatch.setenv("WAYMARK_SENSITIVE_TERMS_FILE", str(terms))
    with pytest.raises(ContractViolation, match="kiosk"):
        _open(folder)


def test_without_a_place_for_the_memo_the_folder_is_validated_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_folder(tmp_path / "data")
    (tmp_path / "not-a-folder").write_text("", encoding="utf-8")
    monkeypatch.setattr(memo, "memo_path", lambda _folder: tmp_path / "not-a-folder" / "memo.json")
    assert _open(folder) is not None
    assert _open(folder) is not None


def test_a_damaged_or_foreign_memo_is_not_trusted(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "data")
    assert _open(folder) is not None
    path = memo.memo_path(folder)
    for text in ("{not json", "[]", '{"fingerprint": "0", "rules": "0"}'):
        path.write_text(text, encoding="utf-8")
        assert _open(folder) is not None  # validated, and the memo written afresh
    assert _open(folder) is None


def test_what_an_import_or_generator_checked_before_publishing_is_not_checked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = write_extract(tmp_path / "export")
    import_mapped(
        load_mapping(write_mapping(tmp_path / "mapping")), [src], out=tmp_path / "mapped", secret=b"s" * 40
    )
    import_oulad(OULAD_SUBSET, tmp_path / "oulad")
    synthesise(tmp_path / "synth", SynthConfig(students=40, seed=1), validate=True)
    synthesise(tmp_path / "unchecked", SynthConfig(students=40, seed=1), validate=False)
    with monkeypatch.context() as patched:
        patched.setattr(memo, "validate_folder", _never_validate)
        for checked in ("mapped", "oulad", "synth"):
            assert _open(tmp_path / checked) is None, checked
        with pytest.raises(AssertionError, match="validated again"):
            _open(tmp_path / "unchecked")  # written without its checks: its first reader runs them
    # The memo holds the published bytes: one changed byte and the folder is checked again.
    with (tmp_path / "oulad" / "students.parquet").open("ab") as parquet:
        parquet.write(b"\0")
    with pytest.raises(ContractViolation):
        _open(tmp_path / "oulad")


def test_an_import_refused_by_its_checks_leaves_no_memo(tmp_path: Path) -> None:
    src = tmp_path / "export"
    rows = records_rows()
    for row in rows:
        if row[0] == rows[1][0]:
            row[6] = "-6"  # negative credits: a number to the mapping, refused by the contract
    write_records(src, rows)
    write_clicks(src, click_rows(range(2)))
    with pytest.raises(ContractViolation, match=r"students\.credits"):
        import_mapped(
            load_mapping(write_mapping(tmp_path / "mapping")),
            [src],
            out=tmp_path / "mapped",
            secret=b"s" * 40,
        )
    assert not memo.memo_path(tmp_path / "mapped").exists() and not (tmp_path / "mapped").exists()


def test_a_fact_of_the_bytes_is_kept_with_their_memo_and_only_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_folder(tmp_path / "data")
    fingerprint = folder_fingerprint(folder)
    key, fact = memo.fact_key("last_days", "SELECT 1"), [["M1", "2024J", 7]]
    assert not memo.remember_fact(folder, fingerprint=fingerprint, key=key, value=fact)  # nothing passed yet
    assert _open(folder) is not None
    assert memo.recall(folder, fingerprint=fingerprint, key=key) is None
    assert memo.remember_fact(folder, fingerprint=fingerprint, key=key, value=fact)
    assert memo.recall(folder, fingerprint=fingerprint, key=key) == fact
    # Computed another way, it is another fact.
    assert memo.recall(folder, fingerprint=fingerprint, key=memo.fact_key("last_days", "SELECT 2")) is None
    # Validating the same bytes again keeps what is known of them.
    assert memo.remember(folder, fingerprint=fingerprint)
    assert memo.recall(folder, fingerprint=fingerprint, key=key) == fact
    # Under other rules, nothing is recalled.
    terms = tmp_path / "terms.toml"
    terms.write_text('terms = ["kiosk"]\n', encoding="utf-8")
    with monkeypatch.context() as patched:
        patched.setenv("WAYMARK_SENSITIVE_TERMS_FILE", str(terms))
        assert memo.recall(folder, fingerprint=fingerprint, key=key) is None
    # One changed byte (a count of 3 becomes 4): the old bytes' fact is not theirs, nor kept as if it were.
    activity = folder / "activity.csv"
    activity.write_bytes(activity.read_bytes().replace(b",resource,3\r\n", b",resource,4\r\n"))
    changed = folder_fingerprint(folder)
    assert changed != fingerprint
    assert memo.recall(folder, fingerprint=changed, key=key) is None
    assert not memo.remember_fact(folder, fingerprint=fingerprint, key=key, value=[["M1", "2024J", 8]])
    assert _open(folder) is not None  # validated again: the new bytes' memo knows nothing of them yet
    assert memo.recall(folder, fingerprint=changed, key=key) is None


def test_the_scoring_job_reads_an_unchanged_folders_last_days_from_its_memo(tmp_path: Path) -> None:
    folder = tmp_path / "synth"
    synthesise(folder, SynthConfig(students=60, seed=2), validate=True)
    fingerprint = folder_fingerprint(folder)
    con, report = memo.open_valid(folder, fingerprint=fingerprint)
    assert report is None  # checked when it was generated
    try:
        computed = _last_days(con, folder=folder, fingerprint=fingerprint)
        presentations = con.sql("SELECT module_id, presentation_id, start_date FROM t_presentations").df()
    finally:
        con.close()
    assert len(computed) > 1 and computed["last_day"].notna().all()
    # The connection is closed: the second read must be answered by the memo, without a query.
    kept = _last_days(con, folder=folder, fingerprint=fingerprint)
    order = ["module_id", "presentation_id"]
    pd.testing.assert_frame_equal(
        kept.sort_values(order, ignore_index=True),
        computed.sort_values(order, ignore_index=True),
        check_dtype=False,
    )
    assert data_date(presentations, kept) == data_date(presentations, computed) is not None
    # A damaged fact (a day that is not a whole number) is not trusted: the job goes to the data.
    path = memo.memo_path(folder)
    stored = json.loads(path.read_text(encoding="utf-8"))
    (key,) = stored["facts"]
    stored["facts"][key][0][2] = "262"
    path.write_text(json.dumps(stored), encoding="utf-8")
    with pytest.raises(duckdb.Error):
        _last_days(con, folder=folder, fingerprint=fingerprint)
    # A changed byte anywhere in the folder: the fact is not of the new bytes, so the job queries them.
    with (folder / "students.parquet").open("ab") as parquet:
        parquet.write(b"\0")
    with pytest.raises(duckdb.Error):
        _last_days(con, folder=folder, fingerprint=folder_fingerprint(folder))
