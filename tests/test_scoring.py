"""Scoring and explanations: exact, plain-language, non-labelling, published atomically with history."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sqlalchemy import Engine, func, insert, select, text

from tests.champion import Champion, approve_and_promote, govern, register, settings_in
from tests.later_activity import LATE_SOURCE, copied_with_activity, without_presentation
from tests.service_setup import backends, fresh_database
from tests.vocabulary import forbidden_words
from waymark.fairness.governance import DECISION_TAG
from waymark.fairness.policy import load_policy
from waymark.models.calendar import data_date, days_into, last_activity_day
from waymark.models.data import (
    ContractViolation,
    ProtectedDataError,
    folder_fingerprint,
    load_learning_data,
    read_manifest,
)
from waymark.models.data.contract import PROTECTED_COLUMN_NAMES
from waymark.models.data.publish import MANIFEST
from waymark.models.explain import brief, describe, explain_cohort
from waymark.models.explain.batch_sentences import describe_all, from_phrase
from waymark.models.explain.change import MATERIAL
from waymark.models.explain.families import FACTOR_FAMILIES
from waymark.models.features import FEATURE_NAMES, build_features
from waymark.models.features.catalogue import FAMILIES
from waymark.models.registry import SHA_TAG, configure, load_bundle
from waymark.service import decisions
from waymark.service.db.engine import make_engine, transaction, upgrade
from waymark.service.db.schema import Indicator, Publication, ScoringRun
from waymark.service.scoring import (
    ChampionUnavailableError,
    IncompleteBatchError,
    ScoringError,
    ScoringInProgressError,
    job,
    load_champion,
    lock,
    publish,
    score,
)
from waymark.service.scoring.cohort import build_cohort, current_presentations


def _row(**values: float) -> dict[str, float]:
    row = dict.fromkeys(FEATURE_NAMES, 0.0)
    row.update(values)
    return row


def test_submission_sentence_states_the_counts_it_was_built_from() -> None:
    row = _row(asm_due=4, asm_submitted=3, asm_late=1)
    assert describe("assessment_submissions", row) == (
        "3 of the 4 assessments due so far were submitted, 1 after the due day."
    )
    assert describe("assessment_submissions", _row(asm_due=1, asm_submitted=0)) == (
        "The 1 assessment due so far was not submitted."
    )
    assert describe("assessment_submissions", _row(asm_due=2, asm_submitted=2, asm_next_submitted=1)) == (
        "2 of the 2 assessments due so far were submitted; the next one is already submitted."
    )


def test_submission_sentence_reads_well_when_the_one_submission_was_after_its_due_day() -> None:
    said = {
        (due, done, late, ahead): describe(
            "assessment_submissions",
            _row(asm_due=due, asm_submitted=done, asm_late=late, asm_next_submitted=ahead),
        )
        for due, done, late, ahead in ((1, 1, 1, 0), (1, 1, 1, 1), (3, 1, 1, 0), (1, 1, 0, 0), (2, 2, 1, 0))
    }
    assert said[1, 1, 1, 0] == "The 1 assessment due so far was submitted after its due day."
    assert said[1, 1, 1, 1] == (
        "The 1 assessment due so far was submitted after its due day; the next one is already submitted."
    )
    assert said[3, 1, 1, 0] == "1 of the 3 assessments due so far was submitted, after its due day."
    assert said[1, 1, 0, 0] == "The 1 assessment due so far was submitted."
    assert said[2, 2, 1, 0] == "2 of the 2 assessments due so far were submitted, 1 after the due day."
    rows = pd.DataFrame(
        [_row(asm_due=d, asm_submitted=s, asm_late=n, asm_next_submitted=a) for d, s, n, a in said]
    )
    cols = {c: rows[c].to_numpy(dtype=np.float64) for c in rows.columns}
    assert describe_all("assessment_submissions", cols, src=[""] * len(rows))[1] == list(said.values())


def test_cohort_sentence_words_the_extremes_without_a_percentage() -> None:
    """'More activity ... than about 0% of students' read as its opposite, and 'about 100%' as no one
    else at all. A student tied with others for the least activity ranks 0 too (everyone with no
    activity does): it is said as among the lowest on the module, never as less than everyone's."""
    shares = (0.0, 0.004, 0.005, 0.01, 0.5, 0.99, 0.996, 1.0)
    platform = ("the learning platform",)
    said = {p: describe("cohort_engagement", _row(act_total_pct=p), sources=platform) for p in shares}
    fewest = "Activity from the learning platform so far among the lowest on this module at this point."
    most = "Activity from the learning platform so far among the highest on this module at this point."
    assert said[0.0] == said[0.004] == said[0.005] == fewest
    assert said[0.996] == said[1.0] == most
    assert said[0.5] == (
        "More activity from the learning platform so far than about 50% of students on this module at this"
        " point."
    )
    assert "than about 1% of students" in said[0.01]
    assert "than about 99% of students" in said[0.99]
    assert not [s for s in said.values() if "about 0%" in s or "about 100%" in s]
    assert (
        brief("cohort_engagement", _row(act_total_pct=0.0))
        == "activity so far among the lowest on the module"
    )
    assert (
        brief("cohort_engagement", _row(act_total_pct=1.0))
        == "activity so far among the highest on the module"
    )
    cols = {"act_total_pct": np.array(shares)}
    src = [from_phrase(platform)] * len(shares)
    assert describe_all("cohort_engagement", cols, src=src)[1] == list(said.values())
    assert forbidden_words(" ".join(said.values())) == []


def test_recent_activity_sentence_reads_counts_back_from_their_logs() -> None:
    row = _row(
        act_last14=np.log1p(12), act_active_days_last14=3, act_any=1, weeks_elapsed=6, act_recent_vs_own=0.34
    )
    assert describe("recent_activity", row, sources=("the learning platform", "the library")) == (
        "12 actions from the learning platform and the library on 3 days of the last 14, about 34% of "
        "this student's own earlier weekly rate."
    )
    quiet = _row(act_any=1, act_days_since_last=19, weeks_elapsed=6)
    assert describe("recent_activity", quiet, sources=("the learning platform",)) == (
        "No activity from the learning platform in the last 14 days; "
        "the last recorded activity was 19 days ago."
    )


def test_fixed_facts_are_described_neutrally() -> None:
    assert describe("study_history", _row(prior_attempts=1, credits=60)) == (
        "The student has 1 earlier registration on this module; 60 credits are being studied."
    )
    assert (
        describe("registration_timing", _row(reg_day=-12)) == "Registered 12 days before the module started."
    )


@pytest.fixture(scope="module")
def explained(champion: Champion, synth_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, object]:
    configure(champion.settings)
    engine = make_engine(champion.settings.database_url)
    try:
        model = load_champion(engine, champion.name)
    finally:
        engine.dispose()
    features = build_features(load_learning_data(synth_dir), [4, 8])
    result = explain_cohort(model.bundle, features)
    return features, result.indicators, (model.bundle, result.contributions)


def test_the_estimate_is_the_calibrated_sum_of_the_contributions(explained) -> None:  # type: ignore[no-untyped-def]
    features, indicators, (bundle, contrib) = explained
    a, b = bundle.calibration
    margin = contrib.values.sum(axis=1) + contrib.base
    np.testing.assert_allclose(margin, bundle.margin(bundle.matrix(features)), atol=1e-6)
    np.testing.assert_allclose(1 / (1 + np.exp(-(a * margin + b))), indicators["probability"], atol=1e-9)


def test_each_factor_carries_the_sign_and_size_of_its_family_contribution(explained) -> None:  # type: ignore[no-untyped-def]
    _, indicators, _ = explained
    for factors, strengths in zip(indicators["factors"], indicators["strengths"], strict=True):
        assert all(f["contribution"] > 0 for f in factors)
        assert all(s["contribution"] < 0 for s in strengths)
        assert [f["contribution"] for f in factors] == sorted(
            (f["contribution"] for f in factors), reverse=True
        )
        assert {f["family"] for f in factors + strengths} <= set(FACTOR_FAMILIES)


def _weeks_said(sentence: str) -> tuple[int, int, str] | None:
    """(weeks active, weeks, "so far" or "since registering") as a regularity sentence says them."""
    since = r"(so far|since registering)"
    if found := re.search(rf"in (\d+) of the (\d+) weeks {since}", sentence):
        return int(found[1]), int(found[2]), found[3]
    if found := re.search(rf"^(No activity|Activity)\b.* in the 1 week {since}", sentence):
        return int(found[1] == "Activity"), 1, found[2]
    return None


def test_factor_sentences_match_the_features_of_their_student(explained) -> None:  # type: ignore[no-untyped-def]
    features, indicators, _ = explained
    checked = 0
    for row, items in zip(
        features.to_dict("records"), indicators["factors"] + indicators["strengths"], strict=False
    ):
        for item in items:
            found = re.match(r"(\d+) of the (\d+) assessments due so far", item["sentence"])
            if item["family"] == "assessment_submissions" and found:
                assert (int(found[1]), int(found[2])) == (round(row["asm_submitted"]), round(row["asm_due"]))
                checked += 1
            if item["family"] == "regularity":
                sentence = item["sentence"]
                said = _weeks_said(sentence)
                # Counted from the week the student registered in, for a registration after the start.
                first = max(math.floor(row["reg_day"] / 7), 0)
                assert said and said[1] == max(row["week"] - first, 1), sentence
                assert (said[2] == "since registering") == (first > 0)
                assert said[0] == round(row["act_weeks_active_share"] * said[1])
                checked += 1
    assert checked > 50


def test_no_generated_sentence_uses_a_word_never_shown(explained) -> None:  # type: ignore[no-untyped-def]
    _, indicators, _ = explained
    text = json.dumps(
        indicators[["factors", "strengths", "context", "what_could_change", "coverage"]].to_dict("records")
    )
    assert forbidden_words(text) == []
    assert not {w for w in PROTECTED_COLUMN_NAMES if re.search(rf"\b{w}\b", text, re.IGNORECASE)}


def test_protected_characteristics_cannot_be_explained(explained, synth_dir: Path) -> None:  # type: ignore[no-untyped-def]
    features, _, (bundle, _) = explained
    with pytest.raises(ProtectedDataError):
        explain_cohort(bundle, features.head(5).assign(disability="Y"))


def test_what_could_change_is_one_actionable_family_that_moves_the_estimate_materially(explained) -> None:  # type: ignore[no-untyped-def]
    _, indicators, _ = explained
    suggestions = indicators.dropna(subset=["what_could_change"])
    assert len(suggestions) > 100
    for p, change, factors in zip(
        suggestions["probability"], suggestions["what_could_change"], suggestions["factors"], strict=True
    ):
        assert FAMILIES[change["family"]].actionable
        assert change["family"] in {f["family"] for f in factors}
        assert p - change["estimate_after"] >= MATERIAL - 1e-4


def test_every_interval_contains_its_estimate(explained) -> None:  # type: ignore[no-untyped-def]
    _, indicators, _ = explained
    assert (indicators["lower"] <= indicators["probability"]).all()
    assert (indicators["probability"] <= indicators["upper"]).all()
    assert (indicators["upper"] - indicators["lower"]).median() > 0.01


def test_data_that_does_not_fit_the_model_is_refused_by_name(explained) -> None:  # type: ignore[no-untyped-def]
    features, _, (bundle, _) = explained
    with pytest.raises(ValueError, match="act_last14"):
        explain_cohort(bundle, features.drop(columns=["act_last14"]))


# Publication, history and failure: each test below uses its own registry and database.


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, synth_dir: Path) -> Champion:
    root = tmp_path_factory.mktemp("scoring")
    settings = settings_in(root)
    # The logistic candidate test_quality_gate also registers: trained once a session (champion.trained).
    version = register(synth_dir, settings, "waymark-not-completing", "logistic", seed=3)
    audited = govern(synth_dir, settings, "waymark-not-completing", version, root / "fairness-1")
    return Champion(settings, "waymark-not-completing", version, audited)


@pytest.fixture(scope="module")
def engine(store: Champion) -> Iterator[Engine]:
    engine = make_engine(store.settings.database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _served(engine: Engine) -> tuple[int, int]:
    with transaction(engine) as session:
        run_id = session.scalar(select(Publication.run_id).where(Publication.target == "not_completing"))
        count = session.scalar(select(func.count()).select_from(Indicator).where(Indicator.run_id == run_id))
        return int(run_id or 0), int(count or 0)


def test_score_publishes_every_registration_of_the_current_presentations(
    store: Champion, engine: Engine, synth_dir: Path
) -> None:
    configure(store.settings)
    summary = score(synth_dir, engine, model_name=store.name, week=6)
    assert _served(engine) == (summary.run_id, summary.students)
    assert summary.students > 500 and summary.weeks == (6,)


def test_waymark_score_says_marks_on_the_institutions_scale(
    store: Champion, engine: Engine, synth_dir: Path, tmp_path: Path
) -> None:
    """``WAYMARK_MARK_SCALE`` reaches the stored sentences through the command staff run.

    A Chilean 4,0 pass kept as 50 read "50 out of 100", which staff who say a grade times ten read as
    a fail; a French 10/20 read 50.
    """
    configure(store.settings)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": store.settings.mlflow_tracking_uri,
        "WAYMARK_DATABASE_URL": store.settings.database_url,
        "WAYMARK_MARK_SCALE": "0-20",
    }
    done = subprocess.run(
        [sys.executable, "-m", "waymark", "score", "--data", str(synth_dir), "--week", "9"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    run_id, _ = _served(engine)
    with transaction(engine) as session:
        stored = session.scalars(select(Indicator).where(Indicator.run_id == run_id)).all()
        said = [s["sentence"] for r in stored for s in (*r.factors, *r.strengths, *r.context)]
        changes = [json.dumps(r.what_could_change) for r in stored if r.what_could_change]
    marks = [s for s in said if s.startswith("Average mark on marked work so far")]
    assert marks and all(re.search(r": \d+\.\d out of 20\b", s) for s in marks), marks[:3]
    assert not any("out of 100" in s for s in [*said, *changes])
    refused = subprocess.run(
        [sys.executable, "-m", "waymark", "score", "--data", str(synth_dir), "--week", "9"],
        env={**env, "WAYMARK_MARK_SCALE": "7-1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0 and "the lowest mark must be at least 0 and below the highest" in (
        refused.stdout + refused.stderr
    )
    assert _served(engine) == (run_id, len(stored))  # the refused run changed nothing


def test_a_week_later_than_every_audited_week_is_told_apart(
    store: Champion, engine: Engine, synth_dir: Path
) -> None:
    configure(store.settings)
    within = score(synth_dir, engine, model_name=store.name, week=6)
    assert within.audited_weeks == tuple(load_policy().weeks) and within.beyond_audit == ()
    later = score(synth_dir, engine, model_name=store.name, week=max(load_policy().weeks) + 2)
    assert later.beyond_audit == (max(load_policy().weeks) + 2,)
    # Every module scored here had a presentation in the audited test set; one that had none is named.
    assert within.modules and set(within.modules) <= set(within.audited_modules)
    assert within.unaudited_modules == ()
    studio = dataclasses.replace(within, modules=(*within.modules, "STUDIO1"))
    assert studio.unaudited_modules == ("STUDIO1",)
    assert dataclasses.replace(studio, audited_modules=()).unaudited_modules == ()  # an older report: unsaid


def test_a_chosen_week_is_scored_from_what_a_run_at_that_week_would_have_had(
    store: Champion, engine: Engine, synth_dir: Path, tmp_path: Path
) -> None:
    """A presentation that has run on past the scored week (a backtest, a re-run) gives the batch
    a folder ending at that week's cut-off gives: features, coverage and summaries alike."""
    configure(store.settings)
    week, model = 4, load_champion(engine, store.name)
    got = [
        job._on_duckdb(
            without_presentation(
                copied_with_activity(synth_dir, tmp_path / str(later), from_day=7 * week, later=later),
                "2026B",
            ),
            model=model,
            week=week,
            erased=frozenset(),
            say=lambda _m: None,
        )
        for later in (True, False)
    ]
    pd.testing.assert_frame_equal(got[0].indicators, got[1].indicators)
    # a source first seen after the cut-off is not listed; means are summed in no fixed order
    means = [[row["summary"].pop("mean", None) for row in batch.summaries] for batch in got]
    assert got[0].summaries == got[1].summaries
    assert means[0] == pytest.approx(means[1], abs=1e-12)
    assert LATE_SOURCE not in json.dumps(got[0].summaries)
    pd.testing.assert_frame_equal(got[0].placement, got[1].placement)
    pd.testing.assert_frame_equal(got[0].as_of, got[1].as_of)


def test_a_student_recorded_as_leaving_since_the_cut_off_is_not_listed_now_but_is_in_a_past_week(
    store: Champion, engine: Engine, synth_dir: Path, tmp_path: Path
) -> None:
    """The latest week's cut-off lies up to six days (or a presentation's end) before the data date: a
    student whose day of leaving falls in between has gone by the time the list is read. A chosen earlier
    week is a point in the past, when they had not left, and scores them as a run then would have."""
    configure(store.settings)
    model = load_champion(engine, store.name)

    def batch(folder: Path, week: int | None) -> job.ScoredBatch:
        return job._on_duckdb(folder, model=model, week=week, erased=frozenset(), say=lambda _m: None)

    live = batch(synth_dir, None)
    data = load_learning_data(synth_dir)
    day = data_date(data.presentations, last_activity_day(data.activity))
    assert day is not None
    weeks = live.as_of.merge(data.presentations, on=["module_id", "presentation_id"])
    weeks = weeks.assign(data_day=days_into(weeks, day).to_numpy())
    gap = weeks[weeks["data_day"] >= 7 * weeks["week"]].iloc[0]
    keys = ["student_id", "module_id", "presentation_id"]
    chosen = live.indicators[
        live.indicators["module_id"].eq(gap["module_id"])
        & live.indicators["presentation_id"].eq(gap["presentation_id"])
    ][keys].head(1)
    changed = tmp_path / "data"
    shutil.copytree(synth_dir, changed)
    registrations = pd.read_parquet(changed / "registrations.parquet")
    left = registrations.merge(chosen, how="left", indicator=True)["_merge"].eq("both").to_numpy()
    assert left.sum() == 1
    registrations.loc[left, "unregistration_day"] = int(gap["data_day"])
    registrations.to_parquet(changed / "registrations.parquet", index=False)

    after = batch(changed, None)
    assert after.withdrawn == live.withdrawn + 1
    assert chosen.merge(after.indicators[keys]).empty
    assert len(after.indicators) == len(live.indicators) - 1
    earlier = batch(changed, int(weeks["week"].min()) - 1)
    assert len(chosen.merge(earlier.indicators[keys])) == 1
    # That is the backtest's (the folder's manifest recommends a test start). An institution's folder
    # scored at a chosen week is published now: who has left by the data date is not listed either.
    manifest = json.loads((changed / MANIFEST).read_text(encoding="utf-8"))
    del manifest["test_from"]
    (changed / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    # (its intake's passes and fails not recorded yet, as they are not while it runs: a recorded one
    # leaves nothing to estimate, cohort.departed)
    intake = registrations["presentation_id"].eq(chosen["presentation_id"].iloc[0])
    registrations.loc[intake & registrations["final_result"].ne("withdrawn"), "final_result"] = None
    registrations.to_parquet(changed / "registrations.parquet", index=False)
    now = batch(changed, int(weeks["week"].min()) - 1)
    same = now.as_of[["module_id", "presentation_id"]].drop_duplicates()
    assert len(chosen[["module_id", "presentation_id"]].merge(same)) == 1  # its presentation is scored
    assert chosen.merge(now.indicators[keys]).empty and now.withdrawn > earlier.withdrawn


def test_a_withdrawal_recorded_without_a_day_gets_no_indicator_and_no_other_estimate_changes(
    store: Champion, engine: Engine, synth_dir: Path, tmp_path: Path
) -> None:
    """The population keeps an undated withdrawal in every week (as training does), but by the data
    date the student has left: no indicator is made for them, and every other estimate is as it was."""
    configure(store.settings)
    model = load_champion(engine, store.name)

    def batch(folder: Path) -> job.ScoredBatch:
        return job._on_duckdb(folder, model=model, week=6, erased=frozenset(), say=lambda _m: None)

    before = batch(synth_dir)
    changed = tmp_path / "data"
    shutil.copytree(synth_dir, changed)
    registrations = pd.read_parquet(changed / "registrations.parquet")
    scored = before.indicators[["student_id", "module_id", "presentation_id"]].head(5)
    gone = registrations.merge(scored, how="left", indicator=True)["_merge"].eq("both").to_numpy()
    assert gone.sum() == 5
    registrations.loc[gone, "final_result"] = "withdrawn"
    registrations.loc[gone, "unregistration_day"] = np.nan
    registrations.to_parquet(changed / "registrations.parquet", index=False)
    after = batch(changed)
    assert after.withdrawn == 5 and before.withdrawn == 0
    kept = before.indicators.merge(scored, how="left", indicator=True)["_merge"].eq("left_only").to_numpy()
    expected = before.indicators[kept].reset_index(drop=True)
    keys = ["student_id", "module_id", "presentation_id"]
    pd.testing.assert_frame_equal(after.indicators[keys], expected[keys])
    # Everyone else's estimate and range are as they were (to the last bits of a batch's arithmetic);
    # what could change compares with students still studying, so it may name other peers.
    for column in ("probability", "lower", "upper"):
        np.testing.assert_allclose(after.indicators[column], expected[column], rtol=0, atol=1e-12)


def test_a_champion_of_the_served_target_under_another_name_is_refused_before_anything_is_recorded(
    store: Champion, engine: Engine, synth_dir: Path
) -> None:
    """Found at a German university: `waymark score --name` of a second approved model moved the
    target's published batch to it, and the service, which serves only WAYMARK_MODEL_NAME's, told staff
    no approved model's indicators were being served."""
    configure(store.settings)
    before = _served(engine)
    with transaction(engine) as session:
        runs = session.scalar(select(func.count()).select_from(ScoringRun))
    with pytest.raises(ScoringError, match="Score with --name waymark-served"):
        score(synth_dir, engine, model_name=store.name, week=6, served=("waymark-served", "not_completing"))
    assert _served(engine) == before
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(ScoringRun)) == runs
    # Another target's model publishes its own batch beside the served one, as before.
    summary = score(synth_dir, engine, model_name=store.name, week=6, served=("waymark-served", "other"))
    assert summary.students > 0


def test_a_failed_run_leaves_the_previous_batch_served(
    store: Champion, engine: Engine, synth_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(store.settings)
    before = _served(engine)
    with pytest.raises(ScoringError, match="week 99 is past the end"):
        score(synth_dir, engine, model_name=store.name, week=99)
    real = publish.write_chunks

    def write_one_chunk_then_fail(engine_, run_id, *, rows):  # type: ignore[no-untyped-def]
        real(engine_, run_id, rows=iter([next(rows)]))
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(publish, "write_chunks", write_one_chunk_then_fail)
    with pytest.raises(OSError, match="disk full"):
        score(synth_dir, engine, model_name=store.name, week=7, chunk_rows=100)
    assert _served(engine) == before
    with transaction(engine) as session:
        assert session.scalars(select(ScoringRun.status).order_by(ScoringRun.id.desc())).first() == "failed"


def test_an_unchanged_folder_is_validated_once_and_a_changed_byte_is_refused_by_name(
    store: Champion, engine: Engine, synth_dir: Path, tmp_path: Path
) -> None:
    configure(store.settings)
    folder = tmp_path / "data"
    shutil.copytree(synth_dir, folder)
    said: list[list[str]] = []
    for _ in range(2):
        said.append([])
        summary = score(folder, engine, model_name=store.name, week=6, progress=said[-1].append)
        assert _served(engine) == (summary.run_id, summary.students)
    assert "reading data" in said[0] and "reading data (validated before, unchanged since)" in said[1]
    with transaction(engine) as session:
        fingerprints = session.scalars(
            select(ScoringRun.data_fingerprint).order_by(ScoringRun.id.desc())
        ).all()
    assert fingerprints[0] == fingerprints[1] == folder_fingerprint(folder)
    before = _served(engine)
    # One byte of a table scoring does not even read: the whole folder is checked again and refused.
    access = folder / "access.csv"
    raw = access.read_bytes()
    access.write_bytes(raw.replace(b"module_leader", b"module_leadeR", 1))
    with pytest.raises(ContractViolation, match="relationship") as caught:
        score(folder, engine, model_name=store.name, week=6)
    assert [(f.table, f.rule, f.count) for f in caught.value.report.findings] == [
        ("access", "allowed_values", 1)
    ]
    assert _served(engine) == before
    with transaction(engine) as session:
        assert session.scalars(select(ScoringRun.status).order_by(ScoringRun.id.desc())).first() == "failed"


def _start_score(store: Champion, url: str, folder: Path, week: int, logs: Path) -> subprocess.Popen[bytes]:
    """A real ``waymark score`` process writing one row per transaction, so that it is slow to finish."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": store.settings.mlflow_tracking_uri,
        "WAYMARK_DATABASE_URL": url,
    }
    command = ["score", "--data", str(folder), "--week", str(week), "--chunk-rows", "1"]
    with logs.with_suffix(".out").open("wb") as out, logs.with_suffix(".err").open("wb") as err:
        return subprocess.Popen([sys.executable, "-m", "waymark", *command], env=env, stdout=out, stderr=err)


def _writing_run(engine: Engine, proc: subprocess.Popen[bytes], rows: int) -> int:
    """Wait until ``proc``'s run is recorded as writing and holds ``rows`` rows; returns its id."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        with transaction(engine) as session:
            writing = session.scalar(select(ScoringRun.id).where(ScoringRun.status == "writing"))
            stored = writing and session.scalar(
                select(func.count()).select_from(Indicator).where(Indicator.run_id == writing)
            )
        if writing and (stored or 0) >= rows:
            return int(writing)
        time.sleep(0.05)
    raise AssertionError("the run finished, failed or stalled before it had written enough rows")


def test_a_run_killed_part_way_leaves_the_previous_batch_served(
    store: Champion, engine: Engine, synth_dir: Path, tmp_path: Path
) -> None:
    configure(store.settings)
    before = _served(engine)
    proc = _start_score(store, store.settings.database_url, synth_dir, 5, tmp_path / "killed")
    try:
        killed = _writing_run(engine, proc, 20)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert _served(engine) == before
    summary = score(synth_dir, engine, model_name=store.name, week=5)
    assert _served(engine) == (summary.run_id, summary.students)
    with transaction(engine) as session:
        assert session.get(ScoringRun, killed).status == "failed"  # type: ignore[union-attr]
        orphans = select(ScoringRun.id).where(ScoringRun.status != "complete")
        assert (
            session.scalar(select(func.count()).select_from(Indicator).where(Indicator.run_id.in_(orphans)))
            == 0
        )


def test_an_earlier_week_scored_after_a_later_one_has_no_change_since_it(
    store: Champion, engine: Engine, synth_dir: Path
) -> None:
    """A Ghanaian university scored week 8, then week 2 (the last before a strike, as the docs advise):
    students read rises of 18 to 23 points, "changed", that were time running backwards."""
    configure(store.settings)
    later = score(synth_dir, engine, model_name=store.name, week=8)
    earlier = score(synth_dir, engine, model_name=store.name, week=4)
    again = score(synth_dir, engine, model_name=store.name, week=8)
    with transaction(engine) as session:

        def previous(run_id: int) -> list[float | None]:
            return list(
                session.scalars(select(Indicator.previous_probability).where(Indicator.run_id == run_id))
            )

        assert later.students and all(p is None for p in previous(earlier.run_id))
        assert any(p is not None for p in previous(again.run_id))  # week 4 is before week 8: a change


@pytest.mark.slow  # an integration run of a minute or so: in .ci/run's heavier suite
def test_history_is_kept_across_model_versions(
    store: Champion, engine: Engine, synth_dir: Path, tmp_path: Path
) -> None:
    configure(store.settings)
    first = score(synth_dir, engine, model_name=store.name, week=8)
    version = register(synth_dir, store.settings, store.name, "gbm", seed=2)
    govern(synth_dir, store.settings, store.name, version, tmp_path / "fairness-2")
    second = score(synth_dir, engine, model_name=store.name, week=8)
    assert (first.version, second.version) == (store.version, version)
    with transaction(engine) as session:
        key = (Indicator.student_id, Indicator.module_id, Indicator.presentation_id)
        first_rows = session.execute(
            select(*key, Indicator.probability).where(Indicator.run_id == first.run_id)
        )
        old = {tuple(r[:3]): r[3] for r in first_rows}
        new = session.execute(
            select(*key, Indicator.previous_probability).where(Indicator.run_id == second.run_id)
        ).all()
        versions = set(
            session.scalars(select(ScoringRun.model_version).where(ScoringRun.status == "complete"))
        )
    assert len(old) == first.students and {store.version, version} <= versions
    assert len(new) == second.students and all(r[3] == pytest.approx(old[tuple(r[:3])]) for r in new)


def test_a_rejected_champion_is_refused_and_its_mlflow_tags_change_nothing(
    store: Champion, engine: Engine
) -> None:
    configure(store.settings)
    client = MlflowClient()
    current = load_champion(engine, store.name)
    client.set_model_version_tag(store.name, current.version, DECISION_TAG, "rejected")
    client.set_model_version_tag(store.name, current.version, SHA_TAG, "0" * 64)
    try:
        assert load_champion(engine, store.name).sha256 == current.sha256  # tags are only a mirror
    finally:
        client.set_model_version_tag(store.name, current.version, DECISION_TAG, "approved")
        client.set_model_version_tag(store.name, current.version, SHA_TAG, current.sha256)
    with transaction(engine) as session:
        decisions.record_review(
            session,
            store.name,
            version=current.version,
            approve=False,
            reviewer="r-1",
            note="withdrawn",
            recorded_by="tests",
        )
    try:
        with pytest.raises(ChampionUnavailableError, match="rejected"):
            load_champion(engine, store.name)
    finally:
        with transaction(engine) as session:
            decisions.record_review(
                session,
                store.name,
                version=current.version,
                approve=True,
                reviewer="r-1",
                note="restored",
                recorded_by="tests",
            )
    assert load_bundle(f"models:/{store.name}/{current.version}").sha256 == current.sha256


# One run at a time: the scoring lock, on each backend.


@pytest.fixture(params=backends())
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path, store: Champion) -> Iterator[Engine]:
    engine = make_engine(fresh_database(request.param, tmp_path))
    upgrade(engine)
    assert store.audited is not None
    approve_and_promote(engine, store.audited)
    yield engine
    engine.dispose()


def _registrations(folder: Path, week: int) -> int:
    """How many registrations a run at ``week`` scores: every registration of the current presentations."""
    manifest = read_manifest(folder)
    data = load_learning_data(folder, choose=lambda pres: current_presentations(pres, manifest))
    return len(build_cohort(data, week, backtest=bool(manifest.get("test_from"))).features)  # as the job does


def _stop_between_writes(engine: Engine, proc: subprocess.Popen[bytes]) -> None:
    """Stop ``proc`` while it is outside any write transaction: it keeps its scoring lock and nothing else."""
    with transaction(engine) as session:
        # Take the lock that every insert needs, so the process is between two writes when it stops.
        if engine.dialect.name == "postgresql":
            session.execute(text("LOCK TABLE indicators IN EXCLUSIVE MODE"))
        else:
            session.execute(select(1))  # BEGIN IMMEDIATE has taken SQLite's write lock
        proc.send_signal(signal.SIGSTOP)
        _, status = os.waitpid(proc.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), "the run ended before it could be stopped"


@pytest.mark.slow  # an integration run of a minute or so: in .ci/run's heavier suite
def test_concurrent_scoring_publishes_one_complete_batch(
    store: Champion, fresh_engine: Engine, synth_dir: Path, tmp_path: Path
) -> None:
    url = fresh_engine.url.render_as_string(hide_password=False)
    first = _start_score(store, url, synth_dir, 6, tmp_path / "first")
    procs = [first]
    try:
        # Its run is recorded as soon as it holds the lock, seconds before its data is even read.
        run_id = _writing_run(fresh_engine, first, 0)
        # Stopped, it is certainly still running when the second starts: no race left to win.
        _stop_between_writes(fresh_engine, first)
        procs.append(second := _start_score(store, url, synth_dir, 6, tmp_path / "second"))
        assert second.wait(timeout=300) != 0
        first.send_signal(signal.SIGCONT)
        assert first.wait(timeout=300) == 0, (tmp_path / "first.err").read_text()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait(timeout=30)
    refusal = " ".join((tmp_path / "second.err").read_text().split())
    assert "another `waymark score` is running" in refusal
    assert f"run {run_id} ({store.name} version {store.version})" in refusal
    assert f"on host {socket.gethostname()}, process {first.pid}" in refusal
    expected = _registrations(synth_dir, 6)
    assert _served(fresh_engine) == (run_id, expected)
    with transaction(fresh_engine) as session:
        runs = session.execute(select(ScoringRun.id, ScoringRun.status, ScoringRun.students)).all()
    assert runs == [(run_id, "complete", expected)]


def _copy_rows(engine: Engine, run_id: int, into: int, n: int) -> None:
    with transaction(engine) as session:
        rows = session.scalars(select(Indicator).where(Indicator.run_id == run_id).limit(n)).all()
        values = [{c.key: getattr(r, c.key) for c in Indicator.__table__.columns} for r in rows]
        session.execute(insert(Indicator), [{**v, "run_id": into} for v in values])


def _status_and_rows(engine: Engine, run_id: int) -> tuple[str, int]:
    with transaction(engine) as session:
        status = session.scalar(select(ScoringRun.status).where(ScoringRun.id == run_id))
        count = session.scalar(select(func.count()).select_from(Indicator).where(Indicator.run_id == run_id))
        return str(status), int(count or 0)


def test_only_a_run_whose_process_is_gone_is_cleared(
    store: Champion, fresh_engine: Engine, synth_dir: Path
) -> None:
    configure(store.settings)
    published = score(synth_dir, fresh_engine, model_name=store.name, week=4)
    meta = {"target": "not_completing", "model_name": store.name, "model_version": store.version}
    with lock.exclusive(fresh_engine) as held:
        assert held is not None
        live = publish.start_run(fresh_engine, held, meta={**meta, "bundle_sha256": "0" * 64})
        _copy_rows(fresh_engine, published.run_id, live, 3)
        # Its process holds the lock, so its run is alive: another run is refused and clears nothing.
        with pytest.raises(ScoringInProgressError, match=rf"run {live} .* process {os.getpid()}"):
            score(synth_dir, fresh_engine, model_name=store.name, week=4)
        assert _status_and_rows(fresh_engine, live) == ("writing", 3)
    # The lock is gone with its holder, as when a process is killed: the run left writing is dead.
    after = score(synth_dir, fresh_engine, model_name=store.name, week=4)
    assert _status_and_rows(fresh_engine, live) == ("failed", 0)
    assert _served(fresh_engine) == (after.run_id, published.students)


@pytest.mark.skipif(
    not os.environ.get("WAYMARK_TEST_POSTGRES_URL"), reason="needs PostgreSQL (WAYMARK_TEST_POSTGRES_URL)"
)
def test_the_lock_is_free_as_soon_as_its_run_ends_and_a_fresh_database_frees_a_stale_one(
    tmp_path: Path,
) -> None:
    # A session holding the lock, as a `waymark score` stopped by a test run killed part-way leaves one.
    left = make_engine(fresh_database("postgresql", tmp_path))
    stale = left.connect()
    assert stale.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": lock.ADVISORY_KEY})
    stale.commit()
    engine = make_engine(fresh_database("postgresql", tmp_path))
    # pg_locks is the whole server's: only this database's locks (another worker's tests take their own)
    advisory = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    try:
        with lock.exclusive(engine) as held:
            assert held is not None
        with engine.connect() as conn:
            assert conn.scalar(advisory) == 0
    finally:
        stale.invalidate()
        left.dispose()
        engine.dispose()


def test_a_batch_missing_rows_is_not_published(
    store: Champion, fresh_engine: Engine, synth_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(store.settings)
    published = score(synth_dir, fresh_engine, model_name=store.name, week=4)
    real = publish.write_chunks

    def lose_one_row(engine_, run_id, *, rows):  # type: ignore[no-untyped-def]
        written = real(engine_, run_id, rows=rows)
        with transaction(engine_) as session:  # as an overlapping run's clear would have done
            lost = session.scalars(select(Indicator).where(Indicator.run_id == run_id).limit(1)).one()
            session.delete(lost)
        return written

    monkeypatch.setattr(publish, "write_chunks", lose_one_row)
    expected = published.students
    with pytest.raises(IncompleteBatchError, match=f"stored {expected - 1:,} of the {expected:,}"):
        score(synth_dir, fresh_engine, model_name=store.name, week=4)
    assert _served(fresh_engine) == (published.run_id, expected)
    with transaction(fresh_engine) as session:
        assert session.scalars(select(ScoringRun.status).order_by(ScoringRun.id.desc())).first() == "failed"


def test_a_batch_as_of_an_earlier_date_than_the_one_it_replaced_says_so(
    store: Champion, fresh_engine: Engine, synth_dir: Path
) -> None:
    """Week 4 scored after week 8 is published (staff see the older picture): the run says so."""
    configure(store.settings)
    later = score(synth_dir, fresh_engine, model_name=store.name, week=8)
    assert later.replaced_as_of is None and not later.earlier_than_replaced
    earlier = score(synth_dir, fresh_engine, model_name=store.name, week=4)
    assert earlier.replaced_as_of == later.as_of and earlier.as_of < later.as_of
    assert earlier.earlier_than_replaced
    again = score(synth_dir, fresh_engine, model_name=store.name, week=8)
    assert again.replaced_as_of == earlier.as_of and not again.earlier_than_replaced
