"""``waymark score --engine spark``: the service cannot tell which engine produced a batch."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from tests.champion import Champion, approve_and_promote
from tests.later_activity import LATE_SOURCE, copied_with_activity
from tests.service_setup import Served, api_client, auth
from waymark.models.calendar import data_date, days_into, last_activity_day
from waymark.models.data import load_learning_data, read_manifest
from waymark.models.registry import configure
from waymark.service.db.engine import make_engine, transaction, upgrade
from waymark.service.db.schema import TrainingExclusion
from waymark.service.grants import import_grants
from waymark.service.scoring import score

pytestmark = pytest.mark.spark

ERASED = "erased on request before the run"
FLOATS = ["probability", "lower", "upper", "previous_probability", "priority"]
LEFT_OUT: dict[tuple[Path, bool], int] = {}  # (folder, on Spark): registrations left out as withdrawn
HELD: dict[tuple[Path, bool], int] = {}  # (folder, on Spark): erased students the folder still registers
PAST: dict[tuple[Path, bool], object] = {}  # (folder, on Spark): what the run said of days past its weeks


def _served(
    champion: Champion, folder: Path, root: Path, *, erased: str, spark: Any = None, week: int | None = None
) -> Served:
    """``folder`` scored at ``week`` (each presentation's latest when None) into a fresh SQLite database.

    On Spark the folder is given as its ``file://`` URI, as a cluster is given ``s3a://``: Spark
    validates and reads it, and its fingerprint, manifest and sources' names come through Hadoop.
    """
    root.mkdir(parents=True)
    url = f"sqlite:///{root}/service.db"
    settings = champion.settings.model_copy(
        update={"database_url": url, "env": "development", "dev_key_dir": root.parent / "keys"}
    )
    engine = make_engine(url)
    upgrade(engine)
    assert champion.audited is not None
    approve_and_promote(engine, champion.audited)
    with transaction(engine) as session:
        session.add(TrainingExclusion(student_id=erased, at=datetime.now(UTC)))
    configure(settings)
    where = folder.as_uri() if spark is not None else folder
    summary = score(where, engine, model_name=champion.name, spark=spark, week=week)
    LEFT_OUT[folder, spark is not None] = summary.withdrawn
    HELD[folder, spark is not None] = summary.erased_in_folder
    PAST[folder, spark is not None] = summary.past_week
    import_grants(engine, folder / "access.csv")
    indicators = _table(engine, "indicators")
    return Served(settings, engine, folder, indicators, pd.read_csv(folder / "access.csv", dtype=str))


def _table(engine: Engine, name: str) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(f"SELECT * FROM {name} ORDER BY rowid", conn)


KEYS = ["student_id", "module_id", "presentation_id"]


def _with_leavers(source: Path, dest: Path) -> pd.DataFrame:
    """``source`` copied with registrations of its scored presentations changed, the keys of those no
    engine should score returned: three recorded as withdrawn without a day, and one recorded as leaving
    between its presentation's latest week's cut-off and the data date (``cohort.departed``). One more
    now registers after its presentation's first assessment was due (scored on both engines, which must
    agree that the work was never set for it)."""
    shutil.copytree(source, dest)
    pres = pd.read_parquet(dest / "presentations.parquet")
    scored = pres[pd.to_datetime(pres["start_date"]) >= pd.Timestamp(str(read_manifest(dest)["test_from"]))]
    registrations = pd.read_parquet(dest / "registrations.parquet")
    open_ = registrations.merge(scored[KEYS[1:]])
    staying = open_[(open_["final_result"] != "withdrawn") & open_["unregistration_day"].isna()]
    undated = staying.head(3)[KEYS]
    hit = registrations.merge(undated, how="left", indicator=True)["_merge"].eq("both").to_numpy()
    registrations.loc[hit, "final_result"] = "withdrawn"
    registrations.loc[hit, "unregistration_day"] = np.nan
    # The data date's day in each scored presentation, and the cut-off of the latest week it reaches.
    data = load_learning_data(source)
    day = data_date(data.presentations, last_activity_day(data.activity))
    assert day is not None
    at = scored.assign(data_day=days_into(scored, day).to_numpy())
    reached = np.minimum(at["data_day"], at["length_days"] - 1)
    at = at.assign(cutoff=7 * np.maximum(1, (reached + 1) // 7))
    gap = at[at["data_day"] >= at["cutoff"]].iloc[0]
    in_gap = staying.iloc[3:].merge(pd.DataFrame([gap[KEYS[1:]]]))
    departed = in_gap.head(1)[KEYS]
    hit = registrations.merge(departed, how="left", indicator=True)["_merge"].eq("both").to_numpy()
    registrations.loc[hit, "unregistration_day"] = int(gap["cutoff"])
    # A late registrant on the same presentation: after its first dated assessment was due.
    assessments = pd.read_parquet(dest / "assessments.parquet").merge(pd.DataFrame([gap[KEYS[1:]]]))
    first_due = int(pd.to_numeric(assessments["due_day"]).min())
    assert first_due + 1 < int(gap["cutoff"])
    late = in_gap.iloc[1:2][KEYS]
    hit = registrations.merge(late, how="left", indicator=True)["_merge"].eq("both").to_numpy()
    registrations.loc[hit, "registration_day"] = first_due + 1
    registrations.to_parquet(dest / "registrations.parquet", index=False)
    return pd.concat([undated, departed], ignore_index=True)


@pytest.fixture(scope="module")
def both(
    champion: Champion, synth_dir: Path, spark: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Served, Served]]:
    """The same folder scored on DuckDB and on Spark, one student erased in both databases.

    The folder is the synthetic cohort with four registrations recorded as having left (``_with_leavers``).
    """
    root = tmp_path_factory.mktemp("engines")
    erased = str(load_learning_data(synth_dir).registrations["student_id"].iloc[0])
    folder = root / "data"
    _with_leavers(synth_dir, folder)
    duck = _served(champion, folder, root / "duckdb", erased=erased)
    other = _served(champion, folder, root / "spark", erased=erased, spark=spark)
    yield duck, other
    duck.engine.dispose()
    other.engine.dispose()


def test_a_batch_scored_on_spark_equals_the_duckdb_batch_row_for_row(both: tuple[Served, Served]) -> None:
    duck, other = (_table(s.engine, "indicators") for s in both)
    assert len(duck) > 500
    assert len(set(duck["week"])) == 2  # presentations at different latest weeks: two week groups
    exact = [c for c in duck.columns if c not in FLOATS]
    # Same rows in the same stored order, every key, date, sentence and contribution identical ...
    pd.testing.assert_frame_equal(other[exact], duck[exact])
    # ... and the estimates, intervals and list order to 1e-9.
    for name in FLOATS:
        np.testing.assert_allclose(
            other[name].to_numpy(np.float64), duck[name].to_numpy(np.float64), rtol=0, atol=1e-9, err_msg=name
        )
    assert list(other.sort_values("priority", kind="stable")["student_id"]) == list(
        duck.sort_values("priority", kind="stable")["student_id"]
    )


def test_the_erased_student_is_scored_by_neither_engine(synth_dir: Path, both: tuple[Served, Served]) -> None:
    erased = str(load_learning_data(synth_dir).registrations["student_id"].iloc[0])
    for served in both:
        assert erased not in set(_table(served.engine, "indicators")["student_id"])
    folder = both[0].folder
    assert HELD[folder, False] == HELD[folder, True]  # each run says the folder still holds them alike
    assert PAST[folder, False] == PAST[folder, True]  # and the same of days past the weeks scored


def test_a_registration_recorded_as_having_left_is_scored_by_neither_engine(
    synth_dir: Path, both: tuple[Served, Served], tmp_path: Path
) -> None:
    gone = _with_leavers(synth_dir, tmp_path / "again")  # the same four registrations
    assert len(gone) == 4
    for served in both:
        scored = _table(served.engine, "indicators")[KEYS]
        assert len(scored) > 500 and scored.merge(gone).empty
    # ... and each run says so: four left out (Spark counts them without building features twice).
    assert [LEFT_OUT[s.folder, on_spark] for s, on_spark in zip(both, (False, True), strict=True)] == [4, 4]


def test_the_runs_keep_the_same_summaries_for_monitoring(both: tuple[Served, Served]) -> None:
    _same_summaries(*(_table(s.engine, "run_summaries") for s in both))


def _same_summaries(duck: pd.DataFrame, other: pd.DataFrame) -> None:
    """The two runs' ``run_summaries`` rows are the same (estimates' means to 1e-12: summed in any order)."""
    keys = ["module_id", "presentation_id", "week", "kind"]
    assert len(duck) == len(other) > 0
    pd.testing.assert_frame_equal(other[keys], duck[keys])
    for kind, a, b in zip(duck["kind"], duck["summary"], other["summary"], strict=True):
        left, right = json.loads(a), json.loads(b)
        if kind == "estimates":
            assert right.pop("mean") == pytest.approx(left.pop("mean"), abs=1e-12)
        assert right == left, kind


def test_a_chosen_week_reads_the_activity_before_its_cut_off_on_both_engines(
    champion: Champion, synth_dir: Path, spark: Any, tmp_path: Path
) -> None:
    """Scoring week 4 of presentations whose data runs on (with a source first seen after the
    cut-off) keeps the same summaries on Spark as on DuckDB, neither naming the later source."""
    week = 4
    later = copied_with_activity(synth_dir, tmp_path / "later", from_day=7 * week, later=True)
    duck, other = (
        _table(
            _served(champion, later, tmp_path / name, erased="nobody", spark=session, week=week).engine,
            "run_summaries",
        )
        for name, session in (("duckdb", None), ("spark", spark))
    )
    assert set(duck["week"]) == {week}
    assert LATE_SOURCE not in "".join(duck["summary"]) + "".join(other["summary"])
    _same_summaries(duck, other)


def test_the_api_answers_identically_for_a_student_whichever_engine_scored(
    both: tuple[Served, Served],
) -> None:
    duck = both[0]
    tutors = duck.access[duck.access["relationship"] == "personal_tutor"]
    grant = tutors[tutors["scope_id"].isin(duck.indicators["student_id"])].iloc[0]
    answers = []
    for served in both:
        headers = auth(served, "personal_tutor", grant.staff_id)
        with api_client(served) as client:
            response = client.get(f"/v1/students/{grant.scope_id}/indicator", headers=headers)
            caseload = client.get("/v1/caseload", params={"limit": 100}, headers=headers)
        assert response.status_code == 200, response.text
        answers.append((response.json(), caseload.json()))
    assert answers[0][0]["indicators"]
    assert answers[1] == answers[0]


def test_each_run_records_the_identity_of_the_data_it_read(spark: Any, both: tuple[Served, Served]) -> None:
    from waymark.models.data import folder_fingerprint
    from waymark.models.spark import location

    folder = both[0].folder
    duck, other = (set(_table(s.engine, "scoring_runs")["data_fingerprint"]) for s in both)
    assert duck == {folder_fingerprint(folder)}  # the bytes of the local folder
    assert other == {location.fingerprint(folder.as_uri(), spark)}  # the URI's store metadata
