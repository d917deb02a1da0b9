"""``waymark data erase``: erased students leave the data folder too, not only Waymark's database.

A red team found an erased student's protected characteristics, marks and activity still in the data
folder an import had written, while the docs said Waymark holds no statutory record of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from waymark.cli import app
from waymark.models.data import folder_fingerprint, validate_folder
from waymark.models.data.publish import MANIFEST
from waymark.models.settings import get_settings
from waymark.service.db.engine import make_engine, transaction, upgrade
from waymark.service.db.schema import TrainingExclusion
from waymark.training.ingest.synthetic import SynthConfig, generate


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _everything(folder: Path) -> dict[str, pd.DataFrame]:
    files = {str(p.relative_to(folder)): pq.read_table(p).to_pandas() for p in folder.rglob("*.parquet")}
    files.update({str(p.relative_to(folder)): pd.read_csv(p, dtype=str) for p in folder.rglob("*.csv")})
    return files


def _naming(frame: pd.DataFrame, students: set[str]) -> int:
    named = (
        frame["student_id"].isin(students) if "student_id" in frame.columns else pd.Series(False, frame.index)
    )
    if "scope_id" in frame.columns:
        named |= (frame["scope_type"] == "student") & frame["scope_id"].isin(students)
    return int(named.sum())


def _erased(url: str, students: list[str], *, key: str | None) -> None:
    engine = make_engine(url)
    upgrade(engine)
    with transaction(engine) as session:
        for s in students:
            session.add(TrainingExclusion(student_id=s, at=datetime.now(UTC), pseudonym_key=key))
    engine.dispose()


def test_an_erased_student_leaves_every_table_and_file_of_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    generate(folder, SynthConfig(students=300, seed=5))
    before = _everything(folder)
    access = before["access.csv"]
    tutored = access.loc[access["scope_type"] == "student", "scope_id"]
    gone = [str(tutored.iloc[0]), str(before["students.parquet"]["student_id"].iloc[-1])]
    assert all(_naming(before[name], set(gone)) for name in ("students.parquet", "directory.csv"))
    url = f"sqlite:///{tmp_path}/w.db"
    _erased(url, [*gone, "someone-not-in-this-folder"], key="")
    result = CliRunner().invoke(app, ["data", "erase", str(folder)], env={"WAYMARK_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert "Removed 2 erased students" in result.output
    after = _everything(folder)
    assert set(after) == set(before)
    for name, frame in after.items():
        assert _naming(frame, set(gone)) == 0, name  # protected characteristics, marks, activity, files
        assert len(frame) == len(before[name]) - _naming(before[name], set(gone)), name  # nobody else
    assert validate_folder(folder).ok
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    assert [e["students"] for e in manifest["erasures_applied"]] == [2]
    assert not set(gone) & set(json.dumps(manifest).split('"'))  # counted, never named
    again = CliRunner().invoke(app, ["data", "erase", str(folder)], env={"WAYMARK_DATABASE_URL": url})
    assert again.exit_code == 0 and "nothing was changed" in again.output


def test_a_folder_whose_ids_were_made_with_another_key_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    generate(folder, SynthConfig(students=100, seed=5))
    fingerprint = folder_fingerprint(folder)
    url = f"sqlite:///{tmp_path}/w.db"
    _erased(url, ["S00000001"], key="0123456789abcdef")  # erased under pseudonyms, this folder has none
    result = CliRunner().invoke(app, ["data", "erase", str(folder)], env={"WAYMARK_DATABASE_URL": url})
    assert result.exit_code == 2, result.output
    assert "Import the data with the secret" in " ".join(result.output.split())
    assert folder_fingerprint(folder) == fingerprint


def test_a_pseudonymised_folder_loses_the_student_from_its_number_files_and_relationship_table(
    tmp_path: Path,
) -> None:
    """A review: in a pseudonymised folder, a directory file holds student numbers as written, which the
    erasure's pseudonym never matched, and a relationship table kept as Parquet was not read at all."""
    from waymark.training.ingest.mapping.importer import import_mapped
    from waymark.training.ingest.mapping.pseudonyms import id_pseudonymiser, key_id
    from waymark.training.ingest.mapping.schema import load_mapping
    from waymark.training.ingest.mappings import ready_mappings

    secret = b"a test secret of more than thirty-two bytes"
    records = Path(__file__).parent / "fixtures" / "byod" / "records"
    folder = tmp_path / "data"
    import_mapped(load_mapping(ready_mappings()["student-records"]), [records], out=folder, secret=secret)
    numbers = pd.read_csv(records / "students.csv", dtype=str)["Student Number"].tolist()[:3]
    pseudonym = id_pseudonymiser(secret)
    gone = pseudonym(numbers[0])
    pd.DataFrame({"student_id": numbers, "display_name": ["A", "B", "C"]}).to_csv(
        folder / "directory.csv", index=False
    )
    access = pd.DataFrame(
        {
            "staff_id": ["t1", "t1"],
            "relationship": ["personal_tutor", "personal_tutor"],
            "scope_type": ["student", "student"],
            "scope_id": [gone, pseudonym(numbers[1])],
        }
    )
    access.to_parquet(folder / "access.parquet", index=False)
    assert validate_folder(folder).ok
    url = f"sqlite:///{tmp_path}/w.db"
    _erased(url, [gone], key=key_id(secret))
    (tmp_path / "secret").write_bytes(secret)
    env = {"WAYMARK_DATABASE_URL": url}
    refused = CliRunner().invoke(app, ["data", "erase", str(folder)], env=env)
    assert refused.exit_code == 2 and "--secret-file" in refused.output
    done = CliRunner().invoke(
        app, ["data", "erase", str(folder), "--secret-file", str(tmp_path / "secret")], env=env
    )
    assert done.exit_code == 0, done.output
    assert pd.read_csv(folder / "directory.csv", dtype=str)["student_id"].tolist() == numbers[1:]
    assert pq.read_table(folder / "access.parquet").to_pandas()["scope_id"].tolist() == [
        pseudonym(numbers[1])
    ]
    assert gone not in set(pq.read_table(folder / "students.parquet").to_pandas()["student_id"])


def test_the_dpos_subject_access_copy_holds_the_folders_rows_and_the_databases_but_no_characteristic(
    tmp_path: Path,
) -> None:
    """A red team found the student's export left out the data folder: their marks, activity and
    records, which a subject access request reaches."""
    from waymark.service.db.schema import AuditRecord
    from waymark.service.grants import import_grants

    folder = tmp_path / "data"
    generate(folder, SynthConfig(students=300, seed=5))
    access = pd.read_csv(folder / "access.csv", dtype=str)
    student = str(access.loc[access["scope_type"] == "student", "scope_id"].iloc[0])
    url = f"sqlite:///{tmp_path}/w.db"
    engine = make_engine(url)
    upgrade(engine)
    import_grants(engine, folder / "access.csv")
    out = tmp_path / "copy.json"
    env = {
        "WAYMARK_DATABASE_URL": url,
        "WAYMARK_ENV": "development",
        "WAYMARK_DEV_KEY_DIR": str(tmp_path / "k"),
    }
    args = ["data", "subject-access", str(folder), "--student", student, "--out", str(out)]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    copy = json.loads(out.read_text(encoding="utf-8"))
    held = copy["data_folder"]
    everything = _everything(folder)
    for name, frame in everything.items():
        if name.startswith("protected_characteristics"):
            continue
        assert len(held.get(name, [])) == _naming(frame, {student}), name  # every row, nobody else's
    assert {"students.parquet", "registrations.parquet", "directory.csv"} <= set(held)
    assert any(name.startswith("activity") for name in held)  # its partitions
    assert copy["database"]["relationships"] and all(
        g["scope_id"] == student for g in copy["database"]["relationships"]
    )
    # The audit-only characteristics are named, never copied out.
    protected = everything["protected_characteristics.parquet"]
    assert "protected_characteristics.parquet" not in held
    said = copy["audit_only"]["held"]["protected_characteristics.parquet"]
    assert said["rows"] == 1 and set(said["columns"]) == set(protected.columns) - {"student_id"}
    with transaction(engine) as session:
        logged = session.scalars(select(AuditRecord).where(AuditRecord.student_id == student)).all()
    assert [r.action for r in logged] == ["subject_access_copy"]
    # A table may be a folder of parts: the characteristics as parts are named, never copied, too.
    parts = folder / "protected_characteristics"
    parts.mkdir()
    (folder / "protected_characteristics.parquet").rename(parts / "part-0.parquet")
    assert CliRunner().invoke(app, args, env=env).exit_code == 0
    copy = json.loads(out.read_text(encoding="utf-8"))
    assert not any(name.startswith("protected") for name in copy["data_folder"])
    assert list(copy["audit_only"]["held"]) == ["protected_characteristics/part-0.parquet"]
    engine.dispose()


def test_a_subject_access_copy_of_a_pseudonymised_folder_needs_the_folders_own_secret(tmp_path: Path) -> None:
    """A review: with another secret the number named nobody, and an empty copy was written as done."""
    from waymark.training.ingest.mapping.importer import import_mapped
    from waymark.training.ingest.mapping.schema import load_mapping
    from waymark.training.ingest.mappings import ready_mappings

    secret = b"a test secret of more than thirty-two bytes"
    records = Path(__file__).parent / "fixtures" / "byod" / "records"
    folder = tmp_path / "data"
    import_mapped(load_mapping(ready_mappings()["student-records"]), [records], out=folder, secret=secret)
    number = pd.read_csv(records / "students.csv", dtype=str)["Student Number"].iloc[0]
    (tmp_path / "right").write_bytes(secret)
    (tmp_path / "wrong").write_bytes(b"another secret of more than thirty-two bytes")
    env = {"WAYMARK_DATABASE_URL": f"sqlite:///{tmp_path}/w.db", "WAYMARK_ENV": "development",
           "WAYMARK_DEV_KEY_DIR": str(tmp_path / "k")}  # fmt: skip
    out = tmp_path / "copy.json"
    args = ["data", "subject-access", str(folder), "--student", number, "--out", str(out), "--secret-file"]
    wrong = CliRunner().invoke(app, [*args, str(tmp_path / "wrong")], env=env)
    assert wrong.exit_code != 0 and "not the one" in " ".join(wrong.output.split()) and not out.exists()
    right = CliRunner().invoke(app, [*args, str(tmp_path / "right")], env=env)
    assert right.exit_code == 0, right.output
    assert json.loads(out.read_text(encoding="utf-8"))["data_folder"]["students.parquet"]
    # The number as a student signs in with it, read as sign-in reads it (a reviewer: a DPO typing a
    # sign-in number the imports wrote otherwise found nothing, and the copy said nothing was held).
    from waymark.models.settings import get_settings

    typed = f"{number[:2]}-{number[2:]}"
    args[args.index(number)] = typed
    out.unlink()
    get_settings.cache_clear()
    try:
        signed = CliRunner().invoke(
            app, [*args, str(tmp_path / "right")], env={**env, "WAYMARK_STUDENT_ID_REMOVE": "-"}
        )
    finally:
        get_settings.cache_clear()
    assert signed.exit_code == 0, signed.output
    assert json.loads(out.read_text(encoding="utf-8"))["data_folder"]["students.parquet"]
