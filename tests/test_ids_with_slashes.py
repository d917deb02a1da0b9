"""Student numbers with slashes (a Nigerian university's CSC/2019/045, an Indian college's 21/BCA/045)
kept as they are: every per-student route reads them, sent raw or encoded as the staff pages send them."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest

from tests.champion import Champion
from tests.service_setup import Served, api_client, auth, own_cohort


def _with_slashes(synth_dir: Path, folder: Path) -> None:
    """A copy of ``synth_dir`` (its folders of parts too) whose every student id reads CSC/2019/<id>."""
    folder.mkdir()
    for path in synth_dir.iterdir():
        if path.is_dir():
            _with_slashes(path, folder / path.name)
        elif path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            if "student_id" in frame.columns:
                frame["student_id"] = "CSC/2019/" + frame["student_id"].astype(str)
            frame.to_parquet(folder / path.name, index=False)
        elif path.suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            if "student_id" in frame.columns:
                frame["student_id"] = "CSC/2019/" + frame["student_id"]
            if {"scope_type", "scope_id"} <= set(frame.columns):
                students = frame["scope_type"] == "student"
                frame.loc[students, "scope_id"] = "CSC/2019/" + frame.loc[students, "scope_id"]
            frame.to_csv(folder / path.name, index=False)
        else:
            (folder / path.name).write_bytes(path.read_bytes())


@pytest.fixture(scope="module")
def slashed(champion: Champion, synth_dir: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("slashes")
    _with_slashes(synth_dir, root / "data")
    with own_cohort(champion, root / "data", "sqlite", root) as served:
        yield served


def test_a_tutor_opens_and_records_outreach_for_a_student_whose_number_has_slashes(slashed: Served) -> None:
    tutors = slashed.access[slashed.access.relationship == "personal_tutor"]
    grant = tutors[tutors.scope_id.isin(slashed.indicators.student_id)].iloc[0]
    student = str(grant.scope_id)
    assert student.startswith("CSC/2019/")
    headers = auth(slashed, "personal_tutor", str(grant.staff_id))
    with api_client(slashed) as client:
        for sent in (student, quote(student, safe="")):  # raw, and as encodeURIComponent writes it
            read = client.get(f"/v1/students/{sent}/indicator", headers=headers)
            assert read.status_code == 200, read.text
            assert read.json()["student_id"] == student and read.json()["indicators"]
            assert client.get(f"/v1/students/{sent}/contacts", headers=headers).status_code == 200
            assert client.get(f"/v1/students/{sent}/consent", headers=headers).status_code == 200
        # Writes too: feedback on the student's indicator, recorded under the whole number.
        row = slashed.indicators[slashed.indicators.student_id == student].iloc[0]
        body = {"module_id": row.module_id, "presentation_id": row.presentation_id, "value": "useful"}
        written = client.post(f"/v1/students/{quote(student, safe='')}/feedback", json=body, headers=headers)
        assert written.status_code == 201, written.text
        # Another student's number with the same prefix is refused as any student out of scope is.
        mine = set(slashed.access.scope_id[slashed.access.staff_id == grant.staff_id])
        other = next(s for s in slashed.indicators.student_id if s not in mine)
        refused = client.get(f"/v1/students/{quote(other, safe='')}/indicator", headers=headers)
        assert refused.status_code == 404
