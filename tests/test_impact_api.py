"""GET /v1/impact/latest: the committee reads the latest impact evaluation (issue #17)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.impact_sample import keep_report, sample_report
from tests.vocabulary import forbidden_words
from waymark.models.settings import Settings
from waymark.service.app import create_app
from waymark.service.db.engine import make_engine, upgrade
from waymark.service.security import mint


@pytest.fixture
def settings(mlflow_store: Settings, tmp_path: Path) -> Settings:
    url = f"sqlite:///{tmp_path}/service.db"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return mlflow_store.model_copy(
        update={
            "database_url": url,
            "env": "development",
            "dev_key_dir": tmp_path / "keys",
            "rate_limit_per_minute": 1_000_000,
        }
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as running:
        yield running


def _as(settings: Settings, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(settings, role, sub=f'{role}-1')}"}


def test_before_any_evaluation_the_report_is_not_available_then_the_latest_is_returned(
    settings: Settings, client: TestClient, tmp_path: Path
) -> None:
    before = client.get("/v1/impact/latest", headers=_as(settings, "ethics_reviewer"))
    assert before.status_code == 200
    assert before.json() == {"available": False, "report": None}

    older = sample_report()
    older["overall"]["effect"] = [0.5, 0.4, 0.6]
    keep_report(older, tmp_path / "first")
    keep_report(sample_report(), tmp_path / "second")

    for role in ("ethics_reviewer", "data_scientist"):
        found = client.get("/v1/impact/latest", headers=_as(settings, role))
        assert found.status_code == 200, found.text
        body = found.json()
        assert body["available"] is True
        report = body["report"]
        assert report["overall"]["effect"] == [0.06, -0.01, 0.13]  # the newer of the two
        assert report["overall"]["naive"] == [-0.18, -0.24, -0.12]
        assert report["overall"]["balance"]["estimate_logit"] == [0.92, 0.03]
        assert report["cannot_show"] == sample_report()["cannot_show"]
        cut = report["at_the_cut"]  # the view at the capacity cut passes through as kept
        assert cut["followed"] is True and cut["effect"] == [0.09, 0.01, 0.17] and cut["lists"] == 12
        # Groups shown carry a name; groups too small to show are absent, only counted per characteristic.
        assert [(g["attribute"], g["group"]) for g in report["groups"]] == [("disability", "N")]
        assert {(w["attribute"], w["withheld_groups"]) for w in report["withheld"]} == {
            ("disability", 1),
            ("age_band", 2),
        }
        assert not forbidden_words(json.dumps(body))


@pytest.mark.parametrize("role", ["personal_tutor", "dpo", "student"])
def test_other_roles_are_refused(settings: Settings, client: TestClient, role: str) -> None:
    assert client.get("/v1/impact/latest", headers=_as(settings, role)).status_code == 403


def test_the_endpoint_is_documented_with_its_response_model(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    answer = spec["paths"]["/v1/impact/latest"]["get"]["responses"]["200"]["content"]["application/json"]
    assert answer["schema"]["$ref"].endswith("/LatestImpact")
    assert {"effect", "naive", "balance"} <= set(spec["components"]["schemas"]["ImpactFigures"]["properties"])
