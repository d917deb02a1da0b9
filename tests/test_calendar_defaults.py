"""Defaults that fit any calendar (#14, item 4), on small synthetic folders recalendared.

Two intakes a year in March and September of years nobody assumed, no recommended split in the
manifest; a training period whose presentations all start on one date; a test cohort with no
withdrawals; a family forced with --family; and --format json of every command that prints a table.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from rich.console import Console
from typer.testing import CliRunner

from tests.champion import settings_in
from tests.contract_folder import VALID, make_folder, with_row
from waymark.cli import app
from waymark.cli import train as train_cli
from waymark.fairness.policy import DEFAULT_POLICY
from waymark.models.data import load_learning_data, read_manifest
from waymark.models.settings import Settings, get_settings
from waymark.models.targets import Target
from waymark.training.choice import GROUPED_CV, cv_groups
from waymark.training.fitting import FitConfig
from waymark.training.ingest.synthetic import SynthConfig, generate
from waymark.training.pipeline import TrainingOutcome, _unlabelled, train_folder
from waymark.training.split import SplitError, default_test_from, few_of_a_year, temporal_split
from waymark.training.tracking import Registered

# Intakes in September and March, years far from any academic year the code could assume.
SEPTEMBER_AND_MARCH = {
    "2024J": "2031-09-15",
    "2025B": "2032-03-08",
    "2025J": "2032-09-13",
    "2026B": "2033-03-14",
}
# Both of a year's presentations start on one date: the training period has a single start date.
ONE_DATE_A_YEAR = {"2024J": "2031-09-15", "2025B": "2031-09-15", "2025J": "2032-09-13", "2026B": "2032-09-13"}
FAST = ["--gbm-estimators", "20", "--seed", "3"]


def _no_nan(text: str) -> Any:
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in --format json"))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("calendar") / "synth"
    generate(out, SynthConfig(students=400, seed=11))
    return out


def _recalendared(
    cohort: Path, out: Path, starts: dict[str, str], *, no_withdrawals_in: tuple[str, ...] = ()
) -> Path:
    """A copy of ``cohort`` with new start dates, no recommended split, and withdrawals turned to fails."""
    shutil.copytree(cohort, out)
    presentations = pd.read_parquet(out / "presentations.parquet")
    presentations["start_date"] = presentations["presentation_id"].map(starts)
    presentations.to_parquet(out / "presentations.parquet", index=False)
    registrations = pd.read_parquet(out / "registrations.parquet")
    gone = registrations["presentation_id"].isin(no_withdrawals_in) & (
        registrations["final_result"] == "withdrawn"
    )
    registrations.loc[gone, "final_result"] = "fail"
    registrations.loc[gone, "unregistration_day"] = np.nan
    registrations.to_parquet(out / "registrations.parquet", index=False)
    manifest = read_manifest(out)
    del manifest["test_from"]
    (out / "waymark-data.json").write_text(json.dumps(manifest), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def two_intakes(cohort: Path) -> Path:
    return _recalendared(cohort, cohort.parent / "two_intakes", SEPTEMBER_AND_MARCH)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """MLflow and the service database in a folder of this module's own, named by the environment."""
    settings = settings_in(tmp_path_factory.mktemp("stores"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
        env.setenv("WAYMARK_MLFLOW_ARTIFACTS", settings.mlflow_artifacts)
        env.setenv("WAYMARK_DATABASE_URL", settings.database_url)
        get_settings.cache_clear()
        yield settings
    get_settings.cache_clear()


def _train(stores: Settings, folder: Path, *args: str) -> Any:
    del stores  # the environment names them
    result = CliRunner().invoke(app, ["train", "--data", str(folder), *FAST, *args])
    assert result.exit_code == 0, result.output
    return result


def test_without_a_recommendation_the_latest_start_date_is_the_test(two_intakes: Path) -> None:
    presentations = pd.read_parquet(two_intakes / "presentations.parquet")
    test_from, basis = default_test_from(presentations, read_manifest(two_intakes))
    assert (
        test_from == date(2033, 3, 14)
        and basis == "the latest start date of a presentation whose outcomes are known"
    )
    split = temporal_split(presentations, test_from, basis=basis)
    assert {p for _, p in split.test} == {"2026B"} and {p for _, p in split.validation} == {"2025J"}
    line = split.describe()
    for module, presentation, start in presentations[
        ["module_id", "presentation_id", "start_date"]
    ].to_numpy():
        assert f"{module} ({presentation})" in line and start in line


def test_a_small_latest_intake_alone_is_not_the_default_test_set() -> None:
    """A summer module of 27 starting last was another institution's whole test set: the default goes
    back to the latest start from which the presentations hold a quarter of a typical intake."""
    presentations = pd.DataFrame(
        {
            "module_id": ["BIO", "BIO", "BIO", "MATH", "FIELD"],
            "presentation_id": ["23/S1", "24/S1", "25/S2", "25/S2", "25/SU"],
            "start_date": ["2023-09-25", "2024-09-23", "2025-01-27", "2025-01-27", "2025-06-02"],
        }
    )
    sizes = {("BIO", "23/S1"): 900, ("BIO", "24/S1"): 900, ("BIO", "25/S2"): 300, ("MATH", "25/S2"): 150}
    test_from, basis = default_test_from(presentations, {}, sizes={**sizes, ("FIELD", "25/SU"): 27})
    assert test_from == date(2025, 1, 27)
    assert "a quarter of a main intake's registrations (477, against 900, the intake of a typical" in basis
    assert "alone hold 27" in basis
    split = temporal_split(presentations, test_from, basis=basis)
    assert set(split.test) == {("BIO", "25/S2"), ("MATH", "25/S2"), ("FIELD", "25/SU")}
    # A latest intake holding a fifth alone is the test set, as before; and never every date.
    assert default_test_from(presentations, {}, sizes={**sizes, ("FIELD", "25/SU"): 900})[0] == date(
        2025, 6, 2
    )
    # Both later starts tiny: the test goes back as far as a full intake, never to the first date.
    tiny = {k: (1000 if k[1] in {"23/S1", "24/S1"} else 1) for k in [*sizes, ("FIELD", "25/SU")]}
    assert default_test_from(presentations, {}, sizes=tiny)[0] == date(2024, 9, 23)


def test_late_start_sections_of_a_few_students_each_are_not_the_default_test_set() -> None:
    """An open-entry college: three main intakes of 400, then six late-start sections of 10. The
    median over start dates was 10, so the last section alone was the test set (and every gate check
    not assessable); weighted by registrations the main intake counts, and the test set starts there."""
    main = {"2023-09-01": 400, "2024-01-15": 400, "2024-09-01": 400}
    late = ["2024-09-15", "2024-10-01", "2024-10-15", "2024-11-01", "2024-11-15", "2024-12-01"]
    starts = {**main, **dict.fromkeys(late, 10)}
    presentations = pd.DataFrame(
        {"module_id": "ENG", "presentation_id": list(starts), "start_date": list(starts)}
    )
    sizes = {("ENG", d): n for d, n in starts.items()}
    test_from, basis = default_test_from(presentations, {}, sizes=sizes)
    assert test_from == date(2024, 9, 1), basis
    assert "(460, against 400" in basis


def test_one_month_of_rolling_starts_as_the_test_set_is_said_with_what_to_pass() -> None:
    """An online university starting each module every month: a main intake is one month, and the
    default test set was the latest month alone (330 of a year's 1,660 registrations; every fairness
    comparison withheld). The default stays; training says how few of a year it holds."""
    months = [date(2025 + (m - 1) // 12, (m - 1) % 12 + 1, 1) for m in range(1, 22)]  # Jan 2025 - Sep 2026
    sizes = {("DAT", str(d)): (330 if d.month in {1, 9} else 100) for d in months}
    presentations = pd.DataFrame(
        {
            "module_id": "DAT",
            "presentation_id": [str(d) for d in months],
            "start_date": [str(d) for d in months],
        }
    )
    test_from = default_test_from(presentations, {}, sizes=sizes)[0]
    assert test_from == date(2026, 9, 1)
    note = few_of_a_year(temporal_split(presentations, test_from, sizes=sizes), sizes)
    assert (
        note is not None
        and "hold 330 registrations, 20% of the 1,660 starting in the year to 2026-09-01" in note
    )
    assert "an earlier --test-from holds several intakes" in note
    wider = temporal_split(presentations, date(2026, 4, 1), sizes=sizes)  # six months: 830
    assert few_of_a_year(wider, sizes) is None
    # One intake a year: the latest is the year's, and nothing is said.
    yearly = {("DAT", f"{y}-10-01"): 900 for y in (2023, 2024, 2025)}
    frame = pd.DataFrame({"module_id": "DAT", "presentation_id": [k[1] for k in yearly]})
    frame["start_date"] = frame["presentation_id"]
    assert few_of_a_year(temporal_split(frame, date(2025, 10, 1), sizes=yearly), yearly) is None


def test_a_short_summer_session_starting_last_in_training_is_not_the_whole_validation_set() -> None:
    """The validation presentations (which choose the model family) go back as the test set does:
    a six-week summer session of 20 had been a college's whole validation set."""
    starts = {"2023-09-01": 400, "2024-01-15": 400, "2024-06-01": 20, "2024-09-01": 400}
    presentations = pd.DataFrame(
        {"module_id": "ENG", "presentation_id": list(starts), "start_date": list(starts)}
    )
    sizes = {("ENG", d): n for d, n in starts.items()}
    split = temporal_split(presentations, date(2024, 9, 1), sizes=sizes)
    assert split.validation == (("ENG", "2024-01-15"), ("ENG", "2024-06-01"))
    assert temporal_split(presentations, date(2024, 9, 1)).validation == (("ENG", "2024-06-01"),)  # no sizes


def test_one_start_date_in_all_the_data_is_refused_with_what_to_do(two_intakes: Path) -> None:
    presentations = pd.read_parquet(two_intakes / "presentations.parquet").assign(start_date="2030-03-04")
    with pytest.raises(SplitError, match="at least two dates") as refused:
        default_test_from(presentations, {})
    assert "starts on 2030-03-04" in str(refused.value) and "Add the presentations" in str(refused.value)


def test_an_explicit_test_from_still_decides_the_split(forced: TrainingOutcome) -> None:
    assert forced.split.test_from == date(2032, 9, 13) and forced.split.basis == "set by --test-from"
    assert {p for _, p in forced.split.test} == {"2025J", "2026B"}


def test_folds_are_grouped_by_student_when_there_are_fewer_presentations_than_folds() -> None:
    rows = pd.DataFrame(
        {"student_id": ["S1", "S2", "S3", "S4"], "module_id": "M1", "presentation_id": ["A", "A", "B", "B"]}
    )
    assert cv_groups(rows, folds=3)[1] == "student"
    assert cv_groups(rows, folds=2)[1] == "module presentation"


@pytest.mark.slow  # a whole `waymark train`: fit, MLflow run, plots, registration
def test_train_works_on_a_march_and_september_calendar(stores: Settings, two_intakes: Path) -> None:
    text = _train(stores, two_intakes).stdout
    assert "(test from 2033-03-14, the latest start date of a presentation whose outcomes are known)" in text
    assert "test [2033-03-14: BIO101 (2026B), CMP103 (2026B), ECO107 (2026B), PSY108 (2026B)]" in text
    assert "2032-03-08: BIO101 (2025B), CMP103 (2025B), ECO107 (2025B), PSY108 (2025B)" in text
    assert "chosen by temporal validation from logistic, gbm" in text
    assert "nan" not in text.lower()


@pytest.mark.slow  # a whole `waymark train`: fit, MLflow run, plots, registration
def test_one_training_start_date_chooses_by_grouped_cross_validation_and_says_so(
    stores: Settings, cohort: Path, tmp_path: Path
) -> None:
    # Also a test cohort without withdrawals: lead time has nothing to measure.
    folder = _recalendared(
        cohort, cohort.parent / "no_withdrawals", ONE_DATE_A_YEAR, no_withdrawals_in=("2025J", "2026B")
    )
    text = _train(stores, folder).stdout
    assert (
        "test from 2032-09-13, the latest start date of a presentation whose outcomes are known" in text
        and "of which validation" not in text
    )
    assert "chosen by grouped cross-validation from logistic, gbm" in text
    assert (
        "every training presentation starts on 2031-09-15" in text
        and "grouped by module presentation" in text
    )
    assert (
        "No registration in the test cohort that ended without completing has an unregistration day" in text
    )
    assert "nan" not in text.lower()
    uri, run_id = text.split("Registered ")[1].split(" (alias")[0], text.split(", run ")[1].split(",")[0]
    run = MlflowClient().get_run(run_id).data
    assert run.params["family_choice"] == GROUPED_CV and run.params["cv_grouped_by"] == "module presentation"
    assert run.tags["family_choice"].startswith("chosen by grouped cross-validation")
    audit = _audit(uri, folder, out=tmp_path)
    assert audit["family_choice"] == run.tags["family_choice"]
    assert audit["gate"] in {"pass", "fail", "inconclusive"} and audit["checks"]
    assert audit["training_mitigation"] is None  # trained without one
    within = audit["calibration_within_modules"]  # single characteristics only, never pairs
    assert within and all(" x " not in w["characteristic"] and "overall" in w for w in within)
    card = (tmp_path / "model_card.md").read_text(encoding="utf-8")
    assert "chosen by grouped cross-validation" in card and "nan" not in card.lower()


def _audit(uri: str, data: Path, *, out: Path) -> Any:
    policy = out / "policy.toml"
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    policy.write_text(
        text.replace("bootstrap_resamples = 1000", "bootstrap_resamples = 50"), encoding="utf-8"
    )
    args = ["fairness", "audit", "--model", uri, "--data", str(data), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--policy", str(policy), "--format", "json"])
    assert result.exit_code == 0, result.output
    return _no_nan(result.stdout)


@pytest.mark.slow  # a whole `waymark train`: fit, MLflow run, plots, registration
def test_a_forced_family_is_said_to_be_set_not_chosen(stores: Settings, two_intakes: Path) -> None:
    summary = _no_nan(_train(stores, two_intakes, "--family", "logistic", "--format", "json").stdout)
    assert summary["family"] == "logistic" and summary["family_choice"]["method"] == "set by --family"
    assert summary["family_choice"]["description"] == "set by --family, the only family asked for"
    assert (
        summary["split"]["test_from_basis"]
        == "the latest start date of a presentation whose outcomes are known"
    )
    assert ["BIO101", "2025B", "2032-03-08"] in summary["split"]["start_dates"]
    assert summary["lead_time"]["withdrawals"] > 0
    run = MlflowClient().get_run(summary["registered"]["run_id"]).data
    assert run.params["family_choice"] == "set by --family" and "chosen" not in run.tags["family_choice"]


@pytest.fixture(scope="module")
def forced(two_intakes: Path) -> TrainingOutcome:
    config = FitConfig(seed=3, families=("logistic",), cv_folds=2)
    return train_folder(two_intakes, target=Target.NOT_COMPLETING, config=config, test_from=date(2032, 9, 13))


def test_a_week_that_cannot_be_measured_is_said_so_and_null_in_json(forced: TrainingOutcome) -> None:
    weekly = forced.test_weekly.copy()
    weekly.loc[8, ["auc", "pr_auc", "recall_at_10pct"]] = math.nan
    outcome = dataclasses.replace(
        forced, test_weekly=weekly, lead={"withdrawals": 0.0, "median_lead_days": math.nan}
    )
    console = Console(record=True, width=240)
    console.print(train_cli._evaluation_table(outcome))
    console.print(train_cli._lead_line(outcome.lead))
    shown = console.export_text()
    assert "nan" not in shown.lower() and "—: not measurable" in shown
    assert (
        "No registration in the test cohort that ended without completing has an unregistration day" in shown
    )
    registered = Registered("n", "1", "r", "0" * 64)
    summary = _no_nan(json.dumps(train_cli._summary(outcome, registered)))
    week8 = next(w for w in summary["evaluation"] if w["week"] == 8)
    assert week8["auc"] is None and week8["brier"] is not None
    # Where every figure was measured the table carries no legend for a mark it does not show.
    measured = Console(record=True, width=240)
    measured.print(train_cli._evaluation_table(forced))
    assert forced.test_weekly[["auc", "pr_auc", "recall_at_10pct"]].notna().all().all()
    assert "not measurable" not in measured.export_text()


def test_many_ended_registrations_without_an_outcome_are_warned_of(tmp_path: Path) -> None:
    """A Spanish university mapped "No presentado" (did not sit) to empty: 52% of its non-completions
    left training and testing without a word, and the measured AUC rose. An Italian university's
    semesters that had ended long before, held out whole for their empty outcomes, were neither counted
    nor said to have ended."""
    held = pd.DataFrame({"module_id": ["M2"], "presentation_id": ["2025B"]})
    # M1's three have outcomes; M2's one not, and M2 has ended by the data's last date (its day 95)
    after = with_row("activity", ["S3", "M2", "2025B", "95", "vle", "resource", "1"])
    data = load_learning_data(make_folder(tmp_path / "one", activity=after))
    said = _unlabelled(data, held, last_days=None)
    assert said is not None and said.startswith(
        "1 of the 4 registrations on presentations that had ended by the data's last date (25%) have no "
        "outcome and no leaving day (1 of them on 1 presentation held out whole, with more than 25% of "
        "their outcomes empty)"
    ), said
    assert "map them to fail" in said and "results can still come" in said
    # With a leaving day (a US university's drops before the census date, left without an outcome as its
    # docs say), it is left out as mapped: not counted, and never told to be a fail.
    regs = [r if r[:3] != ["S3", "M2", "2025B"] else [*r[:4], "20", ""] for r in VALID["registrations"]]
    dropped = load_learning_data(make_folder(tmp_path / "dropped", registrations=regs, activity=after))
    assert _unlabelled(dropped, held, last_days=None) is None
    # Without that day M2 is still running when the data end: its empty outcome is not known yet.
    running = load_learning_data(make_folder(tmp_path / "running"))
    assert _unlabelled(running, held, last_days=None) is None
    labelled = [r if r[-1] else [*r[:-1], "pass"] for r in VALID["registrations"]]
    labelled_data = load_learning_data(make_folder(tmp_path / "two", registrations=labelled, activity=after))
    assert _unlabelled(labelled_data, held.iloc[:0], last_days=None) is None


def test_the_evaluation_table_shows_every_week_of_short_presentations(forced: TrainingOutcome) -> None:
    """A Swedish university's 5-week courses showed weeks 2 and 4 only, and the warning under the
    table named week 5; a long presentation's weeks are still shown at the usual few."""

    def weeks_shown(outcome: TrainingOutcome) -> list[int]:
        console = Console(record=True, width=240)
        console.print(train_cli._evaluation_table(outcome))
        return [
            int(line.split("│")[1])
            for line in console.export_text().splitlines()
            if line.count("│") > 5 and line.split("│")[1].strip().isdigit()
        ]

    short = forced.test_weekly[forced.test_weekly.index <= 5]
    assert weeks_shown(dataclasses.replace(forced, test_weekly=short)) == [1, 2, 3, 4, 5]
    assert forced.test_weekly.index.max() > train_cli.EVERY_WEEK_UP_TO
    assert weeks_shown(forced) == [w for w in train_cli.EVALUATION_WEEKS if w in forced.test_weekly.index]


def test_a_test_set_of_the_training_students_again_is_said_to_be_so() -> None:
    """A French university's one ended year split into its semesters: every test student had been
    trained on, and the model card spoke of a later cohort."""
    from waymark.training.split import TemporalSplit, same_students

    split = TemporalSplit(
        test_from=date(2025, 1, 20),
        train=(("UE1", "S1"), ("UE2", "S1")),
        validation=(),
        test=(("UE3", "S2"),),
    )
    students = [f"s{i}" for i in range(40)]
    registrations = pd.DataFrame(
        {
            "student_id": students * 2 + students,
            "module_id": ["UE1"] * 40 + ["UE2"] * 40 + ["UE3"] * 40,
            "presentation_id": ["S1"] * 80 + ["S2"] * 40,
        }
    )
    said = same_students(split, registrations)
    assert said is not None and said.startswith("40 of the test presentations' 40 students (100%)"), said
    assert "not of a later cohort" in said
    # A later intake that shares a third of its students with training (second and third years) is not
    newer = registrations.assign(student_id=students * 2 + [f"n{i}" if i % 3 else f"s{i}" for i in range(40)])
    assert same_students(split, newer) is None


def test_a_split_of_many_presentations_is_summed_up_on_the_console() -> None:
    """A Finnish college's rolling intake, one presentation per student's module, printed its split as
    one line of 30,000 characters; a side of more than forty is now a count and its starts."""
    starts = pd.date_range("2024-01-01", periods=100, freq="7D")
    presentations = pd.DataFrame(
        {
            "module_id": "OSA1",
            "presentation_id": [f"H{i:03d}" for i in range(100)],
            "start_date": starts.strftime("%Y-%m-%d"),
            "length_days": 120,
        }
    )
    split = temporal_split(presentations, date(2025, 6, 2), basis="chosen")
    short = split.summary()
    assert "train [74 presentations starting 2024-01-01 to 2025-05-26]" in short
    assert len(short) < len(split.describe()) / 2
    assert "OSA1 (H000)" in split.describe() and "OSA1 (H000)" not in short
    few = temporal_split(presentations.head(6), date(2024, 2, 5), basis="chosen")
    assert few.summary() == few.describe()
