"""OULAD (official CSV release or the Parquet copy) into the contract, exactly."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from waymark.models.data import ContractViolation, load_learning_data, read_manifest, validate_folder
from waymark.training.ingest.oulad import OuladSourceError, import_oulad


def _csv(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{name}.csv", na_values="?", keep_default_na=False)


@pytest.fixture(scope="module")
def imported(oulad_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("oulad") / "data"
    import_oulad(oulad_subset, out)
    return out


def test_the_import_is_valid_and_keeps_every_row(imported: Path, oulad_subset: Path) -> None:
    assert validate_folder(imported).ok
    data = load_learning_data(imported)
    assert len(data.registrations) == len(_csv(oulad_subset, "studentRegistration"))
    vle = _csv(oulad_subset, "studentVle")
    assert len(data.activity) == len(vle)
    assert int(data.activity["count"].sum()) == int(vle["sum_click"].sum())
    assert len(data.assessment_results) == len(_csv(oulad_subset, "studentAssessment"))
    assert len(data.presentations) == len(_csv(oulad_subset, "courses"))


def test_oulads_last_day_is_inside_its_presentation(imported: Path, oulad_subset: Path) -> None:
    """OULAD counts day ``module_presentation_length`` as its last (activity falls on it), the contract
    counts days 0 to length_days - 1: one more day, and no warning for activity on OULAD's last day."""
    courses = _csv(oulad_subset, "courses").set_index(["code_module", "code_presentation"])
    lengths = load_learning_data(imported).presentations.set_index(["module_id", "presentation_id"])
    assert (lengths["length_days"] == courses["module_presentation_length"] + 1).all()
    vle = _csv(oulad_subset, "studentVle").join(courses, on=["code_module", "code_presentation"])
    assert (vle["date"] == vle["module_presentation_length"]).any(), "the fixture must hold a last day"
    assert not [w for w in validate_folder(imported).warnings if w.rule == "day_within_presentation"]


def test_question_marks_become_missing_values(imported: Path, oulad_subset: Path) -> None:
    data = load_learning_data(imported)
    raw = _csv(oulad_subset, "studentRegistration")
    assert data.registrations["registration_day"].isna().sum() == raw["date_registration"].isna().sum() > 0
    assert data.assessments["due_day"].isna().sum() == _csv(oulad_subset, "assessments")["date"].isna().sum()


def test_results_and_types_are_mapped(imported: Path) -> None:
    data = load_learning_data(imported)
    assert set(data.registrations["final_result"]) <= {"pass", "distinction", "fail", "withdrawn"}
    assert set(data.assessments["type"]) == {"coursework", "quiz", "exam"}
    assert set(data.activity["source"]) == {"vle"}


def test_students_take_their_earliest_registration(imported: Path, oulad_subset: Path) -> None:
    info = _csv(oulad_subset, "studentInfo")
    info["order"] = info["code_presentation"].str[:4].astype(int) * 2 + (
        info["code_presentation"].str[-1] == "J"
    )
    repeated = info[info.duplicated("id_student", keep=False)]
    assert not repeated.empty, "the fixture must hold a student with two registrations"
    first = repeated.sort_values(["order", "code_module"]).drop_duplicates("id_student")
    students = load_learning_data(imported).students.set_index("student_id")
    for row in first.itertuples():
        assert students.loc[str(row.id_student), "credits"] == row.studied_credits


def test_imd_band_label_is_corrected_in_the_audit_only_table(imported: Path) -> None:
    bands = duckdb.sql(
        f"SELECT DISTINCT imd_band FROM '{imported}/protected_characteristics.parquet'"
    ).fetchall()
    values = {b[0] for b in bands}
    assert "10-20%" in values and "10-20" not in values
    assert None in values  # a missing band stays missing


def test_the_parquet_copy_imports_to_the_same_tables(
    oulad_subset: Path, imported: Path, tmp_path: Path
) -> None:
    src = tmp_path / "parquet_copy"
    src.mkdir()
    for path in oulad_subset.glob("*.csv"):
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(null_values=["?"]))
        if path.stem == "studentVle":
            part_root = src / "studentVle_ds"
            frame = table.to_pandas()
            for (module, pres), part in frame.groupby(["code_module", "code_presentation"]):
                target = part_root / f"code_module={module}" / f"code_presentation={pres}"
                target.mkdir(parents=True)
                part.drop(columns=["code_module", "code_presentation"]).astype(float).to_parquet(
                    target / "part-0.parquet", index=False
                )
        else:
            pq.write_table(table, src / f"{path.stem}.parquet")
    out = tmp_path / "from_parquet"
    import_oulad(src, out)
    for name in ("registrations", "students", "assessments", "assessment_results", "activity"):
        a = pd.read_parquet(imported / f"{name}.parquet")
        b = pd.read_parquet(out / f"{name}.parquet")
        key = list(a.columns)
        pd.testing.assert_frame_equal(
            a.sort_values(key).reset_index(drop=True),
            b.sort_values(key).reset_index(drop=True),
            check_dtype=False,
        )


def test_the_manifest_cites_the_dataset(imported: Path) -> None:
    manifest = read_manifest(imported)
    assert manifest["source"] == "oulad"
    assert "10.1038/sdata.2017.171" in manifest["citation"]


def test_a_missing_oulad_table_is_named_and_nothing_is_written(oulad_subset: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(oulad_subset, src)
    (src / "vle.csv").unlink()
    with pytest.raises(OuladSourceError, match="vle"):
        import_oulad(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out*"))


def test_bad_oulad_rows_leave_the_previous_import_in_place(
    oulad_subset: Path, imported: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    shutil.copytree(imported, out)
    before = sorted((p.name, p.stat().st_size) for p in out.iterdir())
    src = tmp_path / "src"
    shutil.copytree(oulad_subset, src)
    vle = (src / "studentVle.csv").read_text(encoding="utf-8").splitlines()
    fields = vle[5].split(",")
    fields[-1] = "-3"  # a negative click count
    vle[5] = ",".join(fields)
    (src / "studentVle.csv").write_text("\n".join(vle) + "\n", encoding="utf-8")
    with pytest.raises(ContractViolation) as caught:
        import_oulad(src, out)
    finding = caught.value.report.findings[0]
    assert (finding.table, finding.column, finding.rule) == ("activity", "count", "minimum")
    assert sorted((p.name, p.stat().st_size) for p in out.iterdir()) == before


@pytest.mark.oulad
@pytest.mark.slow
def test_the_full_oulad_import_is_exact(oulad_full: Path, tmp_path: Path) -> None:
    summary = import_oulad(oulad_full, tmp_path / "oulad")
    assert summary.rows["registrations"] == 32_593
    assert summary.rows["activity"] == 10_655_280
    assert summary.total_count == 39_605_099
    assert validate_folder(tmp_path / "oulad").ok


def test_an_oulad_demo_gets_one_module_leader_per_module(imported: Path, tmp_path: Path) -> None:
    from waymark.service.db.engine import make_engine, upgrade
    from waymark.service.grants import import_grants
    from waymark.training.ingest.oulad import demo_relationships

    modules = set(pd.read_parquet(imported / "presentations.parquet")["module_id"])
    access = tmp_path / "access.csv"
    assert demo_relationships(imported, access) == len(modules)
    engine = make_engine(f"sqlite:///{tmp_path}/w.db")
    upgrade(engine)
    assert import_grants(engine, access) == len(modules)
    engine.dispose()
