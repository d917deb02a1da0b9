"""Synthetic cohorts: valid, deterministic, realistic enough to train and audit on."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from waymark.models.data import OutputFolderError, load_learning_data, read_manifest, validate_folder
from waymark.training.ingest import synthetic
from waymark.training.ingest.synthetic import SynthConfig, generate
from waymark.training.ingest.synthetic_people import Disparity


def _tables(folder: Path) -> dict[str, pd.DataFrame]:
    names = ("students", "registrations", "assessment_results", "protected_characteristics")
    frames = {n: pd.read_parquet(folder / f"{n}.parquet") for n in names}
    frames["activity"] = pd.read_parquet(folder / "activity")
    frames["access"] = pd.read_csv(folder / "access.csv")
    return frames


def test_the_cohort_meets_the_contract(synth_dir: Path) -> None:
    report = validate_folder(synth_dir)
    assert report.ok, report.to_text()


def test_the_same_seed_gives_the_same_cohort(tmp_path: Path) -> None:
    generate(tmp_path / "a", SynthConfig(students=300, seed=4))
    generate(tmp_path / "b", SynthConfig(students=300, seed=4))
    generate(tmp_path / "c", SynthConfig(students=300, seed=5))
    a, b, c = _tables(tmp_path / "a"), _tables(tmp_path / "b"), _tables(tmp_path / "c")
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    assert not a["registrations"].equals(c["registrations"])


def test_cohorts_larger_than_a_chunk_stay_valid_and_unique(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(synthetic, "CHUNK_STUDENTS", 250)
    generate(tmp_path / "d", SynthConfig(students=700, seed=2))
    assert validate_folder(tmp_path / "d").ok
    assert len(list((tmp_path / "d" / "activity").glob("*.parquet"))) == 3
    assert pd.read_parquet(tmp_path / "d" / "students.parquet")["student_id"].is_unique


def test_modules_presentations_and_two_academic_years(synth_dir: Path) -> None:
    data = load_learning_data(synth_dir)
    pres = data.presentations
    assert pres["module_id"].nunique() >= 6
    years = pd.to_datetime(pres["start_date"]).map(lambda d: d.year if d.month >= 9 else d.year - 1)
    assert years.nunique() >= 2
    assert set(data.assessments["type"]) == {"coursework", "quiz", "exam"}


def test_activity_comes_from_every_source_with_a_weekly_rhythm(synth_dir: Path) -> None:
    activity = load_learning_data(synth_dir).activity
    assert set(activity["source"]) == {"vle", "lecture_capture", "library", "quiz", "attendance"}
    vle = activity[(activity["source"] == "vle") & (activity["day"] >= 0)]
    by_dow = vle.groupby(vle["day"] % 7)["count"].sum()
    assert by_dow[[0, 1, 2]].mean() > 1.3 * by_dow[5]  # Saturdays are quieter than Mondays


def test_some_students_have_no_activity_at_all(synth_dir: Path) -> None:
    data = load_learning_data(synth_dir)
    active = set(data.activity["student_id"])
    silent = set(data.students["student_id"]) - active
    assert 0.01 < len(silent) / len(data.students) < 0.10


def test_withdrawals_happen_at_different_times(synth_dir: Path) -> None:
    regs = load_learning_data(synth_dir).registrations
    days = regs.loc[regs["final_result"] == "withdrawn", "unregistration_day"].astype(float)
    assert (days < 0).any() and (days > 120).any()
    assert days.std() > 40


def test_activity_tapers_before_a_withdrawal(synth_dir: Path) -> None:
    con = duckdb.connect()
    row = con.execute(f"""
        WITH w AS (SELECT student_id, module_id, presentation_id, unregistration_day AS wd
                   FROM '{synth_dir}/registrations.parquet'
                   WHERE final_result = 'withdrawn' AND unregistration_day > 90)
        SELECT sum(a.count) FILTER (WHERE a.day BETWEEN w.wd - 14 AND w.wd - 1),
               sum(a.count) FILTER (WHERE a.day BETWEEN w.wd - 84 AND w.wd - 71)
        FROM '{synth_dir}/activity/*.parquet' a JOIN w USING (student_id, module_id,
                                                               presentation_id)""").fetchone()
    assert row is not None
    last_two_weeks, earlier_two_weeks = row
    assert last_two_weeks < 0.7 * earlier_two_weeks


def test_early_engagement_goes_with_completion(synth_dir: Path) -> None:
    data = load_learning_data(synth_dir)
    early = (
        data.activity[data.activity["day"].between(0, 27)]
        .groupby(["student_id", "module_id", "presentation_id"])["count"]
        .sum()
    )
    regs = data.registrations.set_index(["student_id", "module_id", "presentation_id"])
    regs = regs[regs["unregistration_day"].isna() | (regs["unregistration_day"] > 28)]
    clicks = early.reindex(regs.index, fill_value=0)
    not_completing = regs["final_result"].isin(["withdrawn", "fail"])
    assert clicks[~not_completing].median() > 1.3 * clicks[not_completing].median()


def test_injected_disparity_changes_only_the_named_group(tmp_path: Path) -> None:
    base = SynthConfig(students=3000, seed=5)
    skewed = SynthConfig(students=3000, seed=5, disparity=Disparity("disability", "Y", 1.5))
    generate(tmp_path / "base", base)
    generate(tmp_path / "skewed", skewed)

    def outcomes(folder: Path) -> pd.DataFrame:
        regs = pd.read_parquet(folder / "registrations.parquet")
        prot = pd.read_parquet(folder / "protected_characteristics.parquet")
        return regs.merge(prot[["student_id", "disability"]], on="student_id")

    a, b = outcomes(tmp_path / "base"), outcomes(tmp_path / "skewed")
    others = a["disability"] != "Y"
    pd.testing.assert_series_equal(a.loc[others, "final_result"], b.loc[others, "final_result"])
    rate = {
        k: f.loc[~others, "final_result"].isin(["withdrawn", "fail"]).mean()
        for k, f in (("base", a), ("skewed", b))
    }
    assert rate["skewed"] - rate["base"] > 0.10
    assert read_manifest(tmp_path / "skewed")["generator"]["disparity"]["log_odds"] == 1.5


def test_access_relationships_cover_every_role(synth_dir: Path) -> None:
    access = pd.read_csv(synth_dir / "access.csv")
    assert set(access["relationship"]) == {
        "personal_tutor",
        "module_leader",
        "programme_leader",
        "support_staff",
        "placement_supervisor",
    }
    tutees = access[access["relationship"] == "personal_tutor"].groupby("staff_id").size()
    assert tutees.between(10, 60).all()
    students = set(pd.read_parquet(synth_dir / "students.parquet")["student_id"])
    assert set(access.loc[access["scope_type"] == "student", "scope_id"]) <= students
    tutored = set(access.loc[access["relationship"] == "personal_tutor", "scope_id"])
    assert tutored == students


def test_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.mkdir()
    (target / "thesis.txt").write_text("do not delete", encoding="utf-8")
    with pytest.raises(OutputFolderError):
        generate(target, SynthConfig(students=50))
    assert [p.name for p in target.iterdir()] == ["thesis.txt"]


def test_a_failed_check_leaves_the_previous_cohort_in_place(tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    generate(out, SynthConfig(students=100, seed=1))
    before = pd.read_parquet(out / "students.parquet")

    def refuse(stage: Path) -> None:
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        generate(out, SynthConfig(students=200, seed=2), check=refuse)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "students.parquet"), before)
    assert [p.name for p in tmp_path.iterdir()] == ["cohort"]
