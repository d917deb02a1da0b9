"""Which presentations are under way when the data was taken: scored, and never learnt from half-known.

An institution's export is taken in the middle of a term: some presentations are running (their
outcomes mostly unknown, their early leavers known), next term's may already hold registrations, and
modules need not start on one day. The synthetic folder is cut at week 8 of its last intake, with
next term's presentations registered, and no recommended split in its manifest.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.champion import register, settings_in
from waymark.models.calendar import data_date, last_activity_day, running_on, unfinished
from waymark.models.data import load_learning_data, read_manifest
from waymark.models.data.contract import OUTCOMES_PENDING_SHARE
from waymark.models.registry import LoadedModel, configure, load_bundle
from waymark.models.targets import Target
from waymark.service.scoring import ScoringError, job
from waymark.service.scoring.cohort import (
    DATA_DAY,
    CohortError,
    PastWeek,
    current_presentations,
    departed,
    past_week,
    scored_weeks,
)
from waymark.training.fitting import FitConfig
from waymark.training.pipeline import TrainingOutcome, train_folder

RUNNING, NEXT, WEEK = "2026B", "2026J", 8
KEYS = ["module_id", "presentation_id"]


def _mid_term(source: Path, dest: Path) -> Path:
    """``source`` as exported on the last day of week ``WEEK`` of its ``RUNNING`` presentations."""
    shutil.copytree(source, dest)
    manifest = read_manifest(dest)
    del manifest["test_from"]
    (dest / "waymark-data.json").write_text(json.dumps(manifest), encoding="utf-8")
    pres = pd.read_parquet(dest / "presentations.parquet")
    start = pd.to_datetime(pres["start_date"])
    exported = start[pres["presentation_id"] == RUNNING].max() + pd.Timedelta(days=7 * WEEK - 1)
    # Nothing dated after the export: activity by its date in its own presentation's calendar.
    activity = pq.read_table(dest / "activity").to_pandas()
    starts = activity.merge(pres.assign(start=start)[[*KEYS, "start"]], on=KEYS)["start"]
    kept = activity[(starts + pd.to_timedelta(activity["day"], unit="D") <= exported).to_numpy()]
    shutil.rmtree(dest / "activity")
    (dest / "activity").mkdir()
    kept.to_parquet(dest / "activity" / "part-00000.parquet", index=False)
    # The running presentations' outcomes: only those who had left by then are known.
    regs = pd.read_parquet(dest / "registrations.parquet")
    running = regs["presentation_id"] == RUNNING
    left = (regs["final_result"] == "withdrawn") & (regs["unregistration_day"] <= 7 * WEEK - 1)
    regs.loc[running & ~left, "final_result"] = None
    regs.loc[running & ~left, "unregistration_day"] = np.nan
    # Next term's presentations, registered already, starting a month after the export.
    upcoming = pres[pres["presentation_id"] == RUNNING].assign(
        presentation_id=NEXT, start_date=(exported + pd.Timedelta(days=30)).date().isoformat()
    )
    pd.concat([pres, upcoming], ignore_index=True).to_parquet(dest / "presentations.parquet", index=False)
    early = regs[running].assign(presentation_id=NEXT, final_result=None, unregistration_day=np.nan)
    pd.concat([regs, early], ignore_index=True).to_parquet(dest / "registrations.parquet", index=False)
    return dest


@pytest.fixture(scope="module")
def mid_term(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _mid_term(synth_dir, tmp_path_factory.mktemp("mid-term") / "data")


def _started(pres: pd.DataFrame, key: str) -> date:
    return pd.to_datetime(pres.loc[pres["presentation_id"] == key, "start_date"]).max().date()


def test_the_data_date_is_where_the_activity_ends_and_says_what_ran_then() -> None:
    pres = pd.DataFrame(
        {
            "module_id": ["A", "B", "C", "D"],
            "presentation_id": ["p", "p", "q", "r"],
            "start_date": pd.to_datetime(["2031-01-01", "2031-01-06", "2030-09-01", "2031-04-20"]),
            "length_days": [100, 100, 90, 100],
        }
    )
    last = pd.DataFrame(
        {"module_id": ["A", "B", "C"], "presentation_id": ["p", "p", "q"], "last_day": [60, 50, 89]}
    )
    day = data_date(pres, last)
    assert day == date(2031, 3, 2)  # A's start plus 60 days, the latest any activity reaches
    assert running_on(pres, day).tolist() == [True, True, False, False]  # C had ended, D not begun
    assert data_date(pres, last.iloc[0:0]) is None


def test_the_latest_week_is_the_last_one_whose_days_the_data_reaches() -> None:
    """Week W reads days up to 7W - 1: data through day 13 (a Sunday, for a Monday start) completes week 2."""
    pres = pd.DataFrame(
        {
            "module_id": ["A", "B", "C", "D"],
            "presentation_id": ["p", "p", "p", "p"],
            "start_date": pd.to_datetime(["2031-01-06", "2031-01-06", "2031-01-07", "2030-12-01"]),
            "length_days": [100, 100, 100, 40],
        }
    )
    last = pd.DataFrame(
        {"module_id": ["A", "B", "C", "D"], "presentation_id": ["p"] * 4, "last_day": [13, 12, 12, 49]}
    )
    weeks = scored_weeks(pres, None, last_day=lambda: last)
    # The data date is 2031-01-19: A's day 13 and D's day 49. B was quiet on its day 13, but the extract
    # reaches it: week 2 as for A. C started a day later: its day 12, week 1. D's activity runs past its
    # 40 days (revision, say): its last whole week is 5 (days 0 to 34).
    assert dict(zip(weeks["module_id"], weeks["week"], strict=True)) == {"A": 2, "B": 2, "C": 1, "D": 5}


def test_a_presentation_in_its_first_days_is_not_scored_until_its_first_week_is_whole() -> None:
    """A US university's second 8-week session, five days in on the data date, was scored as week 1 (which
    reads seven days) and published "as of" a day the data never reached."""
    pres = pd.DataFrame(
        {
            "module_id": ["FULL", "B8"],
            "presentation_id": ["202410", "202410B"],
            "start_date": pd.to_datetime(["2024-08-19", "2024-10-14"]),
            "length_days": [112, 56],
        }
    )
    last = pd.DataFrame(
        {"module_id": ["FULL", "B8"], "presentation_id": ["202410", "202410B"], "last_day": [60, 5]}
    )
    weeks = scored_weeks(pres, None, last_day=lambda: last, as_of=date(2024, 10, 19))
    assert dict(zip(weeks["module_id"], weeks["week"], strict=True)) == {"FULL": 8}
    whole = scored_weeks(pres, None, last_day=lambda: last, as_of=date(2024, 10, 20))  # day 6: week 1 whole
    assert dict(zip(whole["module_id"], whole["week"], strict=True)) == {"FULL": 9, "B8": 1}
    with pytest.raises(CohortError, match="first days"):
        scored_weeks(pres.iloc[1:], None, last_day=lambda: last.iloc[1:], as_of=date(2024, 10, 19))
    # One not begun on the data date is not scored either (it had been week 1, reading nothing).
    later = scored_weeks(pres, None, last_day=lambda: last, as_of=date(2024, 10, 10))
    assert dict(zip(later["module_id"], later["week"], strict=True)) == {"FULL": 7}


def test_every_presentation_under_way_is_scored_and_none_not_begun_or_ended() -> None:
    pres = pd.DataFrame(
        {
            "module_id": ["A", "B", "C", "D", "E"],
            "presentation_id": ["p", "p", "q", "r", "p"],
            "start_date": pd.to_datetime(
                ["2031-01-01", "2031-01-06", "2030-09-01", "2031-04-20", "2031-02-01"]
            ),
            "length_days": [100, 100, 90, 100, 100],
        }
    )
    last = pd.DataFrame(
        {"module_id": ["A", "B", "C"], "presentation_id": ["p", "p", "q"], "last_day": [60, 50, 89]}
    )
    chosen = current_presentations(pres, {}, last_days=lambda: last)
    assert chosen["module_id"].tolist() == ["A", "B", "E"]
    # Each is scored where the data date puts it in its own calendar: A's day 60, B's day 55 (its last
    # activity was day 50, but the extract reaches day 55), and E, with no activity yet, day 29.
    weeks = scored_weeks(chosen, None, last_day=lambda: last)
    assert dict(zip(weeks["module_id"], weeks["week"], strict=True)) == {"A": 8, "B": 8, "E": 4}
    # A recommended split still decides (a backtest).
    assert current_presentations(pres, {"test_from": "2031-01-06"}, last_days=lambda: last)[
        "module_id"
    ].tolist() == [
        "B",
        "D",
        "E",
    ]
    # Nothing dates the data: those running when the last one started (E still is; A and B had ended).
    assert current_presentations(pres, {}, last_days=lambda: last.iloc[0:0])["module_id"].tolist() == [
        "D",
        "E",
    ]


def test_presentations_not_ended_with_outcomes_unknown_are_found(mid_term: Path) -> None:
    data = load_learning_data(mid_term)
    found = unfinished(data.tables())
    expected = data.presentations.loc[data.presentations["presentation_id"].isin([RUNNING, NEXT]), KEYS]
    assert sorted(map(tuple, found[KEYS].to_numpy())) == sorted(map(tuple, expected.to_numpy()))
    # A presentation that had ended keeps its known outcomes though a few were never recorded.
    regs = data.registrations.copy()
    on_2025b = regs["presentation_id"] == "2025B"
    assert OUTCOMES_PENDING_SHARE * on_2025b.sum() >= 3
    regs.loc[regs.index[on_2025b][:3], "final_result"] = pd.NA
    assert len(unfinished({**data.tables(), "registrations": regs})) == len(found)
    # Nor does a tenth pending (deferrals and resits): at 5% another institution lost whole modules.
    pending = regs.copy()
    pending.loc[pending.index[on_2025b][: on_2025b.sum() // 10], "final_result"] = pd.NA
    assert len(unfinished({**data.tables(), "registrations": pending})) == len(found)
    # Ended with its outcomes not entered yet (an exam board to come): only its early leavers are known,
    # so it gives no labels either, with or without a date for the data.
    regs.loc[on_2025b & (regs["final_result"] != "withdrawn"), "final_result"] = pd.NA
    for activity in (data.activity, data.activity.iloc[0:0]):
        tables = {**data.tables(), "registrations": regs, "activity": activity}
        left_out = set(map(tuple, unfinished(tables)[KEYS].to_numpy()))
        assert {k for k in left_out if k[1] == "2025B"} == set(
            map(
                tuple,
                data.presentations.loc[data.presentations["presentation_id"] == "2025B", KEYS].to_numpy(),
            )
        )


def test_a_running_presentation_whose_extract_holds_only_its_withdrawals_gives_no_labels(
    mid_term: Path,
) -> None:
    data = load_learning_data(mid_term)
    regs = data.registrations
    still_studying = (regs["presentation_id"] == RUNNING) & regs["final_result"].isna()
    assert (
        still_studying.any()
        and (regs.loc[regs["presentation_id"] == RUNNING, "final_result"] == "withdrawn").any()
    )
    # An extract that leaves out those still studying: every outcome it holds is known, and a withdrawal.
    tables = {**data.tables(), "registrations": regs[~still_studying]}
    left_out = set(map(tuple, unfinished(tables)[KEYS].to_numpy()))
    running = data.presentations.loc[data.presentations["presentation_id"] == RUNNING, KEYS]
    assert set(map(tuple, running.to_numpy())) <= left_out
    # An ended presentation whose students all withdrew keeps its (true) outcomes.
    ended = regs["presentation_id"] == "2025B"
    all_left = regs.assign(final_result=regs["final_result"].where(~ended, "withdrawn"))
    found = set(map(tuple, unfinished({**data.tables(), "registrations": all_left})[KEYS].to_numpy()))
    assert not {k for k in found if k[1] == "2025B"}


def _trained(folder: Path) -> tuple[TrainingOutcome, list[str]]:
    """A logistic candidate trained on ``folder``, and what training said as it went."""
    said: list[str] = []
    config = FitConfig(families=("logistic",), seed=1)
    return train_folder(folder, target=Target.NOT_COMPLETING, config=config, progress=said.append), said


def test_training_tests_on_the_latest_ended_intake_and_learns_nothing_half_known(mid_term: Path) -> None:
    outcome, said = _trained(mid_term)
    pres = pd.read_parquet(mid_term / "presentations.parquet")
    assert outcome.split.test_from == _started(pres, "2025J")
    assert {p for _, p in outcome.split.test} == {"2025J"}
    for rows in (outcome.train_rows, outcome.test_scored):
        assert not rows["presentation_id"].isin([RUNNING, NEXT]).any()
    assert outcome.test_scored["label"].nunique() == 2
    assert any("not ended" in line and f"({RUNNING})" in line for line in said)
    # The outcome keeps what was left out, for the command's summary and its JSON.
    assert outcome.running and {p for _, p in outcome.running} <= {RUNNING, NEXT}
    assert RUNNING in {p for _, p in outcome.running}


def test_presentations_nobody_is_registered_on_are_neither_tested_on_nor_set_the_test_date(
    mid_term: Path, tmp_path: Path
) -> None:
    """A medical school's placement blocks not yet started, with no registration, were listed as its
    test set and set the default test date."""
    folder = shutil.copytree(mid_term, tmp_path / "data")
    pres = pd.read_parquet(folder / "presentations.parquet")
    later = pres.iloc[[0]].assign(
        presentation_id="2099A",
        start_date=str((pd.to_datetime(pres["start_date"]).max() + timedelta(days=400)).date()),
    )
    schema = pq.read_schema(folder / "presentations.parquet")
    added = pa.Table.from_pandas(
        pd.concat([pres, later], ignore_index=True), schema=schema, preserve_index=False
    )
    pq.write_table(added, folder / "presentations.parquet")
    outcome, said = _trained(folder)
    assert outcome.split.test_from == _started(pres, "2025J")  # as without it
    assert {p for _, p in outcome.split.test} == {"2025J"}
    assert any("1 presentation with no registration" in line and "2099A" in line for line in said)


def test_a_folder_of_past_presentations_scores_its_last_intake_staggered_starts_included() -> None:
    pres = pd.DataFrame(
        {
            "module_id": ["A", "B", "C", "A", "B", "C"],
            "presentation_id": ["old", "old", "old", "new", "new", "new"],
            "start_date": pd.to_datetime(
                ["2030-09-02", "2030-09-04", "2030-09-09", "2031-02-03", "2031-02-05", "2031-02-12"]
            ),
            "length_days": [70, 105, 364, 70, 105, 364],
        }
    )
    # Every presentation has run to its end, every outcome known: the data date is C/new's last day,
    # when only it ran, but nothing is under way there, so the last intake is what is scored.
    last = pres[KEYS].assign(last_day=pres["length_days"] - 1)
    known = pres[KEYS].iloc[0:0]
    chosen = current_presentations(pres, {}, last_days=lambda: last, open_keys=lambda: known)
    # As exported while C/new still ran (its outcomes not known yet): C/new alone is under way.
    live = current_presentations(pres, {}, last_days=lambda: last, open_keys=lambda: pres[KEYS].iloc[5:])
    assert list(zip(live["module_id"], live["presentation_id"], strict=True)) == [("C", "new")]
    assert list(zip(chosen["module_id"], chosen["presentation_id"], strict=True)) == [
        ("C", "old"),  # a year long, still under way when the last intake began
        ("A", "new"),
        ("B", "new"),
        ("C", "new"),
    ]


@pytest.fixture(scope="module")
def model(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    """A logistic candidate of the whole synthetic folder, loaded as scoring loads the champion."""
    settings = settings_in(tmp_path_factory.mktemp("mid-term-store"))
    version = register(synth_dir, settings, "waymark-mid-term", "logistic", seed=3)
    configure(settings)
    return load_bundle(f"models:/waymark-mid-term/{version}")


def test_a_mid_term_folder_scores_the_running_presentations_not_next_terms(
    mid_term: Path, model: LoadedModel
) -> None:
    batch = job._on_duckdb(mid_term, model=model, week=None, erased=frozenset(), say=lambda _m: None)
    scored = set(batch.indicators["presentation_id"])
    # Both 2025J (a year long) and RUNNING are under way on the export's date; 2026J has not begun.
    # This folder keeps 2025J's outcomes, all recorded: a pass or fail leaves nothing to estimate, so
    # only withdrawals dated after the export are scored there (cohort.departed), and the run counts
    # the rest.
    assert scored == {"2025J", RUNNING}
    regs = pd.read_parquet(mid_term / "registrations.parquet")
    year = batch.indicators[batch.indicators["presentation_id"] == "2025J"][["student_id", *KEYS]]
    outcomes = year.astype(str).merge(regs.astype({"student_id": str}), on=["student_id", *KEYS])[
        "final_result"
    ]
    assert len(outcomes) and set(outcomes) == {"withdrawn"}
    assert batch.withdrawn >= int(
        ((regs["presentation_id"] == "2025J") & (regs["final_result"] != "withdrawn")).sum()
    )
    pres = pd.read_parquet(mid_term / "presentations.parquet")
    as_of = batch.as_of.set_index("presentation_id")["as_of"]
    exported = _started(pres, RUNNING) + timedelta(days=7 * WEEK - 1)
    # Each at the latest week whose days the data reaches: the export is on the last day of week 8 of
    # RUNNING (and of a week of 2025J), so that week is scored, not the one before.
    assert {date.fromisoformat(d) for d in as_of} == {exported}


def test_a_chosen_week_past_the_data_date_is_refused_not_read_as_days_without_activity(
    mid_term: Path, model: LoadedModel
) -> None:
    # The export is on the last day of week 8 of RUNNING: week 9 would read a week nobody recorded.
    with pytest.raises(
        ScoringError, match=r"week 9 reads activity up to day 62 of .* \(2026B\).*reaches only"
    ):
        job._on_duckdb(mid_term, model=model, week=WEEK + 1, erased=frozenset(), say=lambda _m: None)
    batch = job._on_duckdb(mid_term, model=model, week=None, erased=frozenset(), say=lambda _m: None)
    weeks = batch.indicators.groupby("presentation_id")["week"].unique().map(set).to_dict()
    assert weeks[RUNNING] == {WEEK} and min(weeks["2025J"]) > WEEK


def test_a_week_that_is_the_latest_of_some_presentations_and_earlier_of_others_is_refused(
    mid_term: Path, model: LoadedModel
) -> None:
    """Week 8 is where 2026B stands, but 2025J runs on: its week 8 is months old, its students then
    not its students now. One run would publish both as the current picture: refused, naming both."""
    with pytest.raises(
        ScoringError,
        match=r"week 8 is where .*\(2026B\).* stand, but an earlier week of .*\(2025J\), at week \d+",
    ):
        job._on_duckdb(mid_term, model=model, week=WEEK, erased=frozenset(), say=lambda _m: None)
    # A week earlier than every presentation's latest is one point in the past for all: scored.
    batch = job._on_duckdb(mid_term, model=model, week=WEEK - 1, erased=frozenset(), say=lambda _m: None)
    assert set(batch.indicators["presentation_id"]) == {"2025J", RUNNING}
    assert set(batch.indicators["week"]) == {WEEK - 1}


def test_a_quiet_last_week_on_one_presentation_is_not_taken_for_a_late_extract(
    mid_term: Path, model: LoadedModel, tmp_path: Path
) -> None:
    # Nobody on RUNNING active in the last six days before the export; 2025J's activity reaches it.
    quiet = tmp_path / "data"
    shutil.copytree(mid_term, quiet)
    activity = pq.read_table(quiet / "activity").to_pandas()
    kept = activity[~((activity["presentation_id"] == RUNNING) & (activity["day"] >= 7 * WEEK - 6))]
    assert len(kept) < len(activity)
    shutil.rmtree(quiet / "activity")
    (quiet / "activity").mkdir()
    kept.to_parquet(quiet / "activity" / "part-00000.parquet", index=False)
    batch = job._on_duckdb(quiet, model=model, week=None, erased=frozenset(), say=lambda _m: None)
    assert set(batch.indicators["presentation_id"]) == {"2025J", RUNNING}
    assert set(batch.indicators.loc[batch.indicators["presentation_id"] == RUNNING, "week"]) == {WEEK}


def test_a_few_presentations_are_dated_by_the_whole_folder_not_by_their_own_activity(mid_term: Path) -> None:
    """The audit reads its test presentations only: their own activity may end before the folder's does,
    and an ended one with a deferral would look unfinished. Given the folder's date, it does not."""
    data = load_learning_data(mid_term)
    regs = data.registrations.copy()
    ended = regs.index[regs["presentation_id"] == "2025B"]
    regs.loc[ended[:1], "final_result"] = pd.NA  # one deferral on an ended presentation
    tables = {**data.tables(), "registrations": regs}
    day = data_date(data.presentations, last_activity_day(data.activity))
    assert day is not None
    only = {
        name: frame[frame["presentation_id"] == "2025B"] if "presentation_id" in frame else frame
        for name, frame in tables.items()
        if frame is not None
    }
    # Nobody on 2025B was active in its last ten days (revision away from the platform, say): dated by its
    # own activity it has not ended yet; dated by the folder (others ran on), it has.
    length = only["activity"].merge(data.presentations[[*KEYS, "length_days"]], on=KEYS)["length_days"]
    only["activity"] = only["activity"][only["activity"]["day"].to_numpy() < length.to_numpy() - 10]
    own = data_date(only["presentations"], last_activity_day(only["activity"]))
    keys = only["presentations"][KEYS]
    ends = pd.to_datetime(keys.merge(data.presentations, on=KEYS)["start_date"]) + pd.to_timedelta(
        keys.merge(data.presentations, on=KEYS)["length_days"], unit="D"
    )
    assert own is not None and (ends > pd.Timestamp(own)).any() and not (ends > pd.Timestamp(day)).any()
    assert len(unfinished(only))
    assert unfinished(only, as_of=day).empty


def test_an_extract_taken_during_a_shared_break_is_scored_at_the_date_stated_for_it(
    mid_term: Path, model: LoadedModel, tmp_path: Path
) -> None:
    """Nobody active in the nine days before the export (a reading week everyone shares): the folder
    is dated by its last activity and scored a week behind. Stated with --as-of, the extract's own
    date counts; a date earlier than the activity is a mistyped date, refused."""
    data = load_learning_data(mid_term)
    taken = data_date(data.presentations, last_activity_day(data.activity))
    assert taken is not None
    quiet = tmp_path / "data"
    shutil.copytree(mid_term, quiet)
    activity = pq.read_table(quiet / "activity").to_pandas()
    starts = data.presentations.set_index(KEYS)["start_date"]
    on = pd.to_datetime(activity.join(starts, on=KEYS)["start_date"]) + pd.to_timedelta(activity["day"], "D")
    kept = activity[(on < pd.Timestamp(taken - timedelta(days=8))).to_numpy()]
    assert 0 < len(kept) < len(activity)
    shutil.rmtree(quiet / "activity")
    (quiet / "activity").mkdir()
    kept.to_parquet(quiet / "activity" / "part-00000.parquet", index=False)

    def weeks(**kw: object) -> set[int]:
        batch = job._on_duckdb(quiet, model=model, week=None, erased=frozenset(), say=lambda _m: None, **kw)  # type: ignore[arg-type]
        return set(batch.indicators.loc[batch.indicators["presentation_id"] == RUNNING, "week"])

    assert max(weeks()) < WEEK  # dated by the last activity, before the break
    assert weeks(as_of=taken) == {WEEK}
    with pytest.raises(
        ScoringError, match=r"--as-of .* is earlier than the latest day the folder's activity"
    ):
        weeks(as_of=taken - timedelta(days=20))
    with pytest.raises(ScoringError, match=r"days after the latest day the folder's activity reaches"):
        weeks(as_of=taken + timedelta(days=40))  # a mistyped year or month: a month of "no activity"


def test_a_presentation_whose_last_day_the_data_reaches_has_ended() -> None:
    """A US university's Blackboard shells close on the term's last day, so the data's last date was that
    day: fall 2025, every grade in but I and NR (7%), was "not ended" and could not be the test set."""
    presentations = pd.DataFrame(
        {"module_id": ["BIOL"], "presentation_id": ["F25"], "start_date": ["2025-08-25"]}
    ).assign(length_days=112)
    registrations = pd.DataFrame(
        {
            "student_id": [f"s{i}" for i in range(20)],
            "module_id": "BIOL",
            "presentation_id": "F25",
            "final_result": ["pass"] * 18 + [None, None],  # an incomplete and a grade not reported
        }
    )

    def left_out(last_day: int) -> bool:
        activity = pd.DataFrame(
            {"student_id": ["s0"], "module_id": ["BIOL"], "presentation_id": ["F25"], "day": [last_day]}
        )
        tables = {"presentations": presentations, "registrations": registrations, "activity": activity}
        return not unfinished(tables).empty

    assert left_out(110)  # the day before its last: still running
    assert not left_out(111)  # its last day (day 111 of 112)
    assert not left_out(125)


def test_an_outcome_recorded_while_the_presentation_runs_leaves_nothing_to_estimate() -> None:
    """A Saudi university's students barred for absence (محروم, mapped to fail, no day) on day 40 were
    scored on day 56, and one read 12% beside the course they had been barred from. A backtest, which
    scores a past week of ended presentations, keeps them (as a run then would have)."""
    regs = pd.DataFrame(
        {
            "student_id": ["s1", "s2", "s3", "s4"],
            "module_id": ["M"] * 4,
            "presentation_id": ["p"] * 4,
            "final_result": [None, "fail", "pass", "withdrawn"],
            "unregistration_day": [np.nan, np.nan, np.nan, 70.0],
        }
    )
    now = pd.DataFrame({"module_id": ["M"], "presentation_id": ["p"], DATA_DAY: [56.0], "length_days": [100]})
    assert set(departed(regs, now)["student_id"]) == {"s2", "s3"}  # s4 leaves on day 70, after the data date
    past = now.assign(**{DATA_DAY: np.nan})
    assert departed(regs, past).empty
    assert set(departed(regs, now, backtest=True)["student_id"]) == set()  # its latest week, as it stood
    ended = now.assign(**{DATA_DAY: 130.0})  # a folder of past presentations: scored as they stood
    assert set(departed(regs, ended)["student_id"]) == {"s4"}


def test_days_past_a_scored_week_are_found_per_presentation_and_never_past_its_last_whole_week() -> None:
    """Two calendars (Monday and Thursday starts) and one in its last part-week, on a Wednesday's data."""
    pres = pd.DataFrame(
        {
            "module_id": ["MON", "THU", "END"],
            "presentation_id": ["p", "p", "p"],
            "start_date": pd.to_datetime(["2031-01-06", "2031-01-09", "2030-06-02"]),
            "length_days": [100, 100, 234],  # END: 33 whole weeks (days 0 to 230), then days 231 to 233
        }
    )
    last = pd.DataFrame(
        {"module_id": ["MON", "THU", "END"], "presentation_id": ["p"] * 3, "last_day": [0] * 3}
    )
    wednesday = date(2031, 1, 22)  # MON's day 16 (week 2 ends on day 13), THU's day 13 (its week 2's last)
    weeks = scored_weeks(pres.iloc[:2], None, last_day=lambda: last, as_of=wednesday)
    assert dict(zip(weeks["module_id"], weeks["week"], strict=True)) == {"MON": 2, "THU": 2}
    assert past_week(weeks) == PastWeek(
        reaches=wednesday, days=3, ends=date(2031, 1, 26), presentations=("MON (p)",)
    )
    # END's data reach its day 233: past its last whole week, but no later week will ever be scored
    ended = scored_weeks(pres.iloc[2:], None, last_day=lambda: last, as_of=date(2031, 1, 21))
    assert ended["week"].tolist() == [33] and past_week(ended) is None
    # nothing dates the data: nothing said
    assert past_week(scored_weeks(pres.iloc[:2], None, last_day=lambda: last.iloc[:0])) is None


def test_an_extract_taken_before_its_week_ends_is_scored_a_week_behind_and_says_how_far_it_reaches(
    mid_term: Path, model: LoadedModel, tmp_path: Path
) -> None:
    """Exported three days before week 8 ends (a Thursday of a Monday-to-Sunday week): scored at week 7,
    and the run says so with the date to give --as-of; stated, week 8 is scored and nothing is said."""
    from waymark.cli.score import _days_past

    pres = pd.read_parquet(mid_term / "presentations.parquet")
    week_ends = _started(pres, RUNNING) + timedelta(days=7 * WEEK - 1)
    early = tmp_path / "data"
    shutil.copytree(mid_term, early)
    activity = pq.read_table(early / "activity").to_pandas()
    starts = activity.merge(pres.assign(start=pd.to_datetime(pres["start_date"]))[[*KEYS, "start"]], on=KEYS)
    on = starts["start"] + pd.to_timedelta(activity["day"], unit="D")
    shutil.rmtree(early / "activity")
    (early / "activity").mkdir()
    activity[(on <= pd.Timestamp(week_ends - timedelta(days=3))).to_numpy()].to_parquet(
        early / "activity" / "part-00000.parquet", index=False
    )

    def scored(folder: Path, **kw: object) -> job.ScoredBatch:
        return job._on_duckdb(folder, model=model, week=None, erased=frozenset(), say=lambda _m: None, **kw)  # type: ignore[arg-type]

    behind = scored(early)
    assert set(behind.as_of.loc[behind.as_of["presentation_id"] == RUNNING, "week"]) == {WEEK - 1}
    past = behind.past_week
    assert past is not None and past.reaches == week_ends - timedelta(days=3)
    assert past.days == 4 and past.ends == week_ends
    assert {p.split(" (")[1].rstrip(")") for p in past.presentations} == {RUNNING, "2025J"}
    said = _days_past(
        job.ScoringSummary(
            run_id=1, model="m", version="1", students=1, weeks=(WEEK - 1,), as_of="", past_week=past
        )
    )
    assert f"The data reach {past.reaches.isoformat()}, up to 4 days past the end of the week scored" in said
    assert said.endswith(f"score it with --as-of {week_ends.isoformat()}.")
    stated = scored(early, as_of=week_ends)  # the extract holds the whole week
    running = stated.as_of[stated.as_of["presentation_id"] == RUNNING]
    assert set(running["week"]) == {WEEK} and stated.past_week is None
    assert scored(mid_term).past_week is None  # exported on the week's last day
