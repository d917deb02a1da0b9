"""CoP §4, advance notice: a new activity source is not used until students have been told of it.

A source other than the built-in ones counts only once the sources table gives notice_given_on, and
then only its activity dated on or after that day; the rule holds wherever a folder becomes learning data.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.contract_folder import VALID, make_folder
from tests.test_explanations_fit import WEEK, _bundle, _rows
from waymark.models.data import load_learning_data, source_labels, validate_folder
from waymark.models.data.notice import BUILT_IN_SOURCES, SourceUse
from waymark.models.data.quality import quality_report
from waymark.models.data.validation import connect
from waymark.models.features import FEATURE_NAMES, build_features
from waymark.models.registry import LoadedModel
from waymark.service import transparency
from waymark.service.db.schema import Indicator, ScoringRun
from waymark.service.scoring import job

# M1 starts on 2024-10-07 (day 0). Kiosk activity on days 3 and 20, i.e. 2024-10-10 and 2024-10-27.
KIOSK = [
    ["S1", "M1", "2024J", "3", "kiosk", "visit", "4"],
    ["S2", "M1", "2024J", "20", "kiosk", "visit", "6"],
]
HEADER = ["source", "label", "notice_given_on"]


def _folder(root: Path, *, kiosk: bool = True, sources: list[list[str]] | None = None) -> Path:
    activity = [*VALID["activity"], *(KIOSK if kiosk else [])]
    return make_folder(root, activity=activity, sources=sources)


def _features(folder: Path) -> pd.DataFrame:
    return build_features(load_learning_data(folder), weeks=[1, 4, 10])


def test_an_undeclared_source_builds_the_same_features_as_a_folder_without_its_rows(tmp_path: Path) -> None:
    with_kiosk = _features(_folder(tmp_path / "with"))
    without = _features(_folder(tmp_path / "without", kiosk=False))
    pd.testing.assert_frame_equal(with_kiosk, without)
    assert "kiosk" not in set(load_learning_data(_folder(tmp_path / "with")).activity["source"])


def test_a_label_without_a_notice_date_does_not_declare_a_source(tmp_path: Path) -> None:
    labelled = _folder(tmp_path / "labelled", sources=[HEADER, ["kiosk", "the library kiosk", ""]])
    without = _folder(tmp_path / "without", kiosk=False)
    pd.testing.assert_frame_equal(_features(labelled), _features(without))
    assert "kiosk" not in source_labels(labelled)  # never named, not even as 'not recorded'


def test_declaring_a_source_with_notice_makes_its_activity_count(tmp_path: Path) -> None:
    declared = _folder(tmp_path / "declared", sources=[HEADER, ["kiosk", "the library kiosk", "2024-09-01"]])
    without = _features(_folder(tmp_path / "without", kiosk=False))
    features = _features(declared)
    s1 = (features["student_id"] == "S1") & (features["week"] == 4)
    assert features.loc[s1, "act_total"].item() > without.loc[s1, "act_total"].item()
    assert not features[list(FEATURE_NAMES)].equals(without[list(FEATURE_NAMES)])
    assert source_labels(declared)["kiosk"] == "the library kiosk"


def test_only_activity_dated_on_or_after_the_notice_is_used(tmp_path: Path) -> None:
    # Notice on 2024-10-20 (day 13): the day-3 row was recorded before students were told.
    folder = _folder(tmp_path, sources=[HEADER, ["kiosk", "", "2024-10-20"], ["library", "", "2024-10-13"]])
    activity = load_learning_data(folder).activity
    assert activity.loc[activity["source"] == "kiosk", "day"].tolist() == [20]
    # A built-in source given a notice date is held to it (library's one row is on day 5, 2024-10-12).
    assert "library" not in set(activity["source"])
    assert set(activity["source"]) == {"vle", "attendance", "kiosk"}


def test_validation_warns_of_an_unused_source_and_says_how_to_declare_it(tmp_path: Path) -> None:
    report = validate_folder(_folder(tmp_path))
    assert report.ok  # a warning: nothing is lost, the rows are only left out of features
    (warning,) = [w for w in report.warnings if w.rule == "source_not_used"]
    assert (warning.table, warning.column, warning.count) == ("activity", "source", 2)
    assert "'kiosk'" in warning.message and "not declared" in warning.message
    assert "notice_given_on" in warning.message and "CoP §4" in warning.message


def test_validation_warns_of_rows_dated_before_the_notice(tmp_path: Path) -> None:
    report = validate_folder(_folder(tmp_path, sources=[HEADER, ["kiosk", "", "2024-10-20"]]))
    (warning,) = [w for w in report.warnings if w.rule == "source_not_used"]
    assert warning.count == 1
    assert "before its notice_given_on (2024-10-20)" in warning.message


def test_a_folder_of_built_in_sources_without_a_sources_table_uses_them_all(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, sources=None)
    assert not [w for w in validate_folder(folder).warnings if w.rule == "source_not_used"]
    assert len(load_learning_data(folder).activity) == len(VALID["activity"]) - 1
    assert set(BUILT_IN_SOURCES) >= {r[4] for r in VALID["activity"][1:]}


@pytest.mark.parametrize(
    ("use", "status"),
    [
        (SourceUse("kiosk", 2, 0, declared=False, notice_given_on=None), "not used: not declared"),
        (SourceUse("vle", 2, 2, declared=True, notice_given_on=None), "used"),
        (SourceUse("kiosk", 2, 1, declared=True, notice_given_on=date(2024, 10, 20)), "used from 2024-10-20"),
    ],
)
def test_each_source_states_whether_it_is_used(use: SourceUse, status: str) -> None:
    assert use.status == status


def test_the_transparency_statement_lists_declared_sources_never_undeclared_ones(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # exams is declared with notice; kiosk (module D's only source) is not.
    rows = _rows()
    folder = make_folder(
        tmp_path,
        **{**dict.fromkeys(VALID), **rows, "sources": [HEADER, ["exams", "exam sittings", "2024-09-01"]]},
    )
    features = build_features(load_learning_data(folder), [WEEK])
    model = LoadedModel(bundle=_bundle(features), name="m", version="1", sha256="x")
    monkeypatch.setattr(job, "load_champion", lambda _engine, _name: model)
    job.score(folder, engine, model_name="m", week=WEEK)
    with Session(engine) as session:
        scored = session.scalars(select(ScoringRun)).one()
        run_id = scored.id
        sources = transparency._sources(session, str(engine.url), run=scored)
        coverage = [c for c in session.scalars(select(Indicator.coverage))]
    assert set(sources) == {"the learning platform", "exam sittings"}
    assert not any("kiosk" in str(c) for c in coverage)
    run = transparency.RunFacts(run_id, "1", None, "x", 80, served=True, sources=sources)
    said = transparency._activity(run)
    assert "exam sittings" in said and "kiosk" not in said


def test_the_quality_report_states_each_sources_use(tmp_path: Path) -> None:
    con = connect()
    validate_folder(_folder(tmp_path, sources=[HEADER, ["exams", "", "2024-09-01"]]), con=con)
    report = quality_report(con)
    use = {u["source"]: u["status"] for u in report.source_use}
    assert use == {"vle": "used", "library": "used", "attendance": "used", "kiosk": "not used: not declared"}
    assert "kiosk: 2 rows; not used: not declared" in report.to_text()
