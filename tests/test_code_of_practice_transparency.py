"""CoP §6 and §2(iv): the transparency statement is generated from this deployment, not written by hand."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.champion import Champion
from tests.service_setup import Served, serve_cohort
from waymark.fairness.policy import load_policy
from waymark.models import registry
from waymark.models.features.catalogue import FAMILIES, FEATURES
from waymark.models.roles import ROLES
from waymark.models.settings import Settings
from waymark.service import decisions, retention, transparency
from waymark.service.app import create_app
from waymark.service.db.engine import transaction
from waymark.service.db.schema import Indicator
from waymark.service.runtime import Runtime
from waymark.service.scoring.champion import load_champion
from waymark.service.transparency import Facts, ModelFacts, RunFacts, load_wording, statement

WORDING = load_wording()
MODEL = ModelFacts(
    name="waymark-not-completing",
    version="3",
    features=("act_last7", "asm_submitted", "reg_day"),
    metrics={"test_auc_mean": 0.812, "test_recall_at_10pct_mean": 0.41},
    gate="pass",
    checks=("pass", "pass", "not assessable"),
    characteristics=("sex", "disability"),
    override_reasons=(),
)
RUN = RunFacts(
    run_id=7,
    model_version="3",
    finished_at=None,
    as_of="2031-03-01",
    students=120,
    served=True,
    sources=("the learning platform", "the library"),
)
FACTS = Facts(
    model=MODEL, run=RUN, retention_days=730, access_log_retention_days=2190, last_retention_run=None
)


def test_a_setting_changes_the_statement() -> None:
    before = statement(FACTS, WORDING)
    after = statement(dataclasses.replace(FACTS, retention_days=90, access_log_retention_days=400), WORDING)
    assert "older than 730 days" in before["retention"] and "kept for 2190 days" in before["retention"]
    assert "older than 90 days" in after["retention"] and "kept for 400 days" in after["retention"]
    assert "not yet run" in before["retention"] and "scheduled" not in before["retention"]
    ran = statement(dataclasses.replace(FACTS, last_retention_run="2031-04-02T10:00:00+00:00"), WORDING)
    assert "last run on 2031-04-02" in ran["retention"] and "waymark retention run" in ran["retention"]


def test_another_champion_changes_the_model_its_features_accuracy_and_data_sources() -> None:
    first = statement(FACTS, WORDING)
    assert first["model"] == {"name": "waymark-not-completing", "version": "3"}
    assert first["features"] == ["Recent activity", "Assessment submissions", "Registration timing"]
    assert any("0.81" in a for a in first["accuracy"]) and any("41%" in a for a in first["accuracy"])
    assert any("from the learning platform and the library (" in d for d in first["data_sources"])
    assert (
        "passed (2 pass, 1 not assessable)" in first["fairness"]
        and "by sex and disability" in first["fairness"]
    )
    other = dataclasses.replace(
        MODEL,
        version="4",
        features=("asm_score_mean", "prior_attempts"),  # no activity at all
        metrics={"test_auc_mean": 0.7},
        gate="fail",
        override_reasons=("the breach is in a group this pilot does not reach",),
    )
    second = statement(dataclasses.replace(FACTS, model=other), WORDING)
    assert second["model"]["version"] == "4"
    assert second["features"] == ["Assessment results", "Study history"]
    assert not any("Activity" in d for d in second["data_sources"])
    assert any("0.70" in a for a in second["accuracy"])
    assert "did not pass" in second["fairness"] and "this pilot does not reach" in second["fairness"]
    quorum = dataclasses.replace(other, override_reasons=("a pilot of 40", "reviewed again in March"))
    both = statement(dataclasses.replace(FACTS, model=quorum), WORDING)["fairness"]
    assert both.endswith(
        "these stated reasons, one per approving reviewer: (1) a pilot of 40 (2) reviewed again in March"
    )
    none = statement(dataclasses.replace(FACTS, model=None), WORDING)
    assert none["model"] is None and none["features"] == [] and "No model is in service" in none["fairness"]


def test_accuracy_is_stated_week_by_week_not_as_a_mean_led_by_the_last_weeks() -> None:
    weekly = dataclasses.replace(
        MODEL,
        metrics={"test_auc_mean": 0.9, "test_auc_w8": 0.99, "test_auc_w4": 0.845, "test_ece_w4": 0.021},
    )
    said = statement(dataclasses.replace(FACTS, model=weekly), WORDING)["accuracy"]
    assert said[0].endswith(": 0.84 at week 4, 0.99 at week 8.") and not any("0.90" in a for a in said)
    assert said[1] == "Calibration (how far an estimate is off, on average): 2.1% at week 4."
    assert len(said) == 2  # no recall recorded: not stated
    # A week after most test presentations had ended, or of too few students, is not stated, and said so.
    counted = {
        "test_n_w4": 900,
        "test_positives_w4": 200,
        "test_ended_share_w4": 0.0,
        "test_ended_share_w8": 0.9,
    }
    late = dataclasses.replace(
        weekly, metrics={**dict(weekly.metrics or {}), **counted, "test_n_w2": 30, "test_auc_w2": 0.6}
    )
    told = statement(dataclasses.replace(FACTS, model=late), WORDING)["accuracy"]
    assert told[0].endswith(": 0.84 at week 4.") and told[-1].startswith("Not stated for weeks 2, 8: too few")


@pytest.mark.parametrize("gate", ["inconclusive", "pass"])
def test_a_gate_that_confirmed_no_check_is_not_said_to_have_passed(gate: str) -> None:
    unsure = dataclasses.replace(
        MODEL, gate=gate, checks=("inconclusive", "not assessable"), override_reasons=("a pilot of 40",)
    )
    said = statement(dataclasses.replace(FACTS, model=unsure), WORDING)["fairness"]
    assert "passed" not in said and "could not confirm any of its checks for every group" in said
    assert "1 inconclusive, 1 not assessable" in said


def test_the_processing_locations_come_from_the_settings() -> None:
    here = Settings(WAYMARK_DATABASE_URL="sqlite:///w.db", MLFLOW_TRACKING_URI="sqlite:///m.db")  # type: ignore[call-arg]
    there = here.model_copy(
        update={"database_url": "postgresql+psycopg://waymark:secret@db.eu-west.example.ac.uk/waymark"}
    )
    local = statement(dataclasses.replace(FACTS, locations=transparency.locations(here)), WORDING)
    remote = statement(dataclasses.replace(FACTS, locations=transparency.locations(there)), WORDING)
    assert local["processing_locations"][0] == "The service database: on the machine that runs the service."
    assert (
        remote["processing_locations"][0] == "The service database: on the server db.eu-west.example.ac.uk."
    )
    assert "secret" not in json.dumps(remote)
    # The folder of the characteristics the audit reads is said too, and that retention does not reach it.
    (folder,) = [p for p in local["processing_locations"] if p.startswith("The data folder")]
    assert "characteristics only the fairness audit reads" in folder and "outside the retention run" in folder


def test_every_family_title_and_every_role_can_be_stated() -> None:
    every = dataclasses.replace(MODEL, features=tuple(f.name for f in FEATURES))
    said = statement(dataclasses.replace(FACTS, model=every), WORDING)
    assert said["features"] == [f.title for f in FAMILIES.values()]
    assert said["who_sees_what"] == {r.value: s.sees for r, s in ROLES.items()}


def test_the_wording_file_must_hold_every_part(tmp_path: Path) -> None:
    partial = tmp_path / "partial.toml"
    partial.write_text('purposes = ["x"]\n', encoding="utf-8")
    with pytest.raises(transparency.WordingError, match="lacks not_purposes"):
        load_wording(partial)
    # Read by the public as it is: a labelling word is refused, naming where it is.
    packaged = (Path(transparency.__file__).parent / "transparency.toml").read_text(encoding="utf-8")
    labelled = tmp_path / "labelled.toml"
    labelled.write_text(packaged + '\nextra = "unused"\n', encoding="utf-8")
    assert load_wording(labelled)  # the packaged words hold none
    labelled = tmp_path / "labelled-2.toml"  # another file: wording is read once per file
    labelled.write_text(
        packaged.replace("purposes = [", 'purposes = [\n  "Find students at risk of dropout early",', 1),
        encoding="utf-8",
    )
    with pytest.raises(
        transparency.WordingError, match=r"never shows of a student \(purposes: at risk, dropout\)"
    ):
        load_wording(labelled)


# The served deployment: the statement reads the registry, the governance record and the batch.


@pytest.fixture(scope="module")
def deployment(champion: Champion, synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Served:
    """A database of its own (the tests below change its champion)."""
    return serve_cohort(champion, synth_dir, "sqlite", tmp_path_factory.mktemp("transparency"))


@contextmanager
def _client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"rate_limit_per_minute": 1_000_000}))) as client:
        yield client


@pytest.fixture
def own_wording(tmp_path: Path) -> Path:
    path = tmp_path / "our-statement.toml"
    text = transparency.PACKAGED.read_text(encoding="utf-8").replace(
        "Help student success teams", "Help the Leeds Student Success team"
    )
    path.write_text(text, encoding="utf-8")
    return path


def test_the_served_statement_states_this_deployments_facts(
    deployment: Served, champion: Champion, own_wording: Path
) -> None:
    settings = deployment.settings.model_copy(update={"transparency_file": own_wording, "retention_days": 45})
    with _client(settings) as client:
        body = client.get("/v1/transparency").json()
        page = client.get("/transparency").text
    assert body["model"] == {"name": champion.name, "version": champion.version}
    run_id = registry.version(champion.name, champion.version, store=settings.mlflow_tracking_uri).run_id
    metrics = registry.run(run_id, store=settings.mlflow_tracking_uri).metrics
    weeks = sorted(int(k.rsplit("_w", 1)[1]) for k in metrics if k.startswith("test_auc_w"))
    ranking = next(a for a in body["accuracy"] if a.startswith("Ranking (AUC"))
    assert weeks and all(f"{metrics[f'test_auc_w{w}']:.2f} at week {w}" in ranking for w in weeks)
    bundle = load_champion(deployment.engine, champion.name, store=settings.mlflow_tracking_uri).bundle
    used = transparency.families(bundle.used_features())
    assert body["features"] == [FAMILIES[f].title for f in used]
    with transaction(deployment.engine) as session:
        recorded = {s for c in session.scalars(select(Indicator.coverage)) for s in c["sources_recorded"]}
    activity = next(d for d in body["data_sources"] if d.startswith("Activity counts"))
    assert recorded and all(label in activity for label in recorded)
    assert body["purposes"][0].startswith("Help the Leeds Student Success team")
    assert "older than 45 days" in body["retention"]
    assert "Scoring run" in body["last_scoring_run"] and "not shown" not in body["last_scoring_run"]
    assert "Help the Leeds Student Success team" in page and "older than 45 days" in page


def test_an_unreadable_registry_is_stated_and_read_again_at_the_next_check(
    deployment: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The statement never asks the registry on a request: metrics come with the champion's check."""
    real_run = registry.run

    def unreachable(*_: object, **__: object) -> None:
        raise ConnectionError("the registry is unreachable")

    monkeypatch.setattr(registry, "run", unreachable)
    with _client(deployment.settings) as client:
        assert client.get("/v1/transparency").json()["accuracy"] == [
            "The model registry could not be read just now; its measured accuracy is not shown."
        ]
        monkeypatch.setattr(registry, "run", real_run)
        assert "could not be read" in client.get("/v1/transparency").json()["accuracy"][0]  # until a check
        runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        runtime.watch.refresh()
        accuracy = client.get("/v1/transparency").json()["accuracy"]
    assert accuracy and not any("could not be read" in a for a in accuracy)


def test_the_audit_report_is_read_once_per_audit_and_the_last_retention_run_through_an_index(
    deployment: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A red team measured the public statement at 15 times a health check's cost: every request read
    and hashed the champion's whole audit report and scanned the whole access log."""
    reads: list[int] = []
    real = decisions.audit_report

    def counted(session: object, audit: decisions.ModelDecision) -> object:
        reads.append(audit.id)
        return real(session, audit)  # type: ignore[arg-type]

    monkeypatch.setattr(decisions, "audit_report", counted)
    monkeypatch.setattr(transparency, "_SUMMARIES", {})
    with _client(deployment.settings) as client:
        first = client.get("/v1/transparency").json()
        assert first["model"] is not None and "comparing groups by gender" in first["fairness"]  # read
        assert len(transparency._SUMMARIES) == 1
        done = len(reads)  # with the champion's own checks at start-up
        again = [client.get("/v1/transparency").json() for _ in range(2)]
    assert again == [first, first] and len(reads) == done
    with deployment.engine.connect() as conn:  # the statement last_run_at runs, as it is sent
        sent = str(retention.LAST_RUN.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sent}").fetchall()
    assert "ix_audit_retention_runs" in str(plan), plan


def test_when_the_champion_is_no_longer_approved_the_statement_says_so(deployment: Served) -> None:
    name = deployment.settings.model_name
    with _client(deployment.settings) as client:
        before = client.get("/v1/transparency").json()
        with transaction(deployment.engine) as session:
            served = decisions.champion(session, name)
            assert served is not None and before["model"]["version"] == served.version
            latest = decisions.latest_audit(session, name, version=served.version)
            assert latest is not None
            report = decisions.audit_report(session, latest)
            assert report is not None
            decisions.record_audit(  # a new audit voids the approval: nothing is served any more
                session,
                name,
                version=served.version,
                bundle_sha256=served.bundle_sha256,
                gate="fail",
                report=report,
                policy=load_policy(),
                actor="tests",
            )
        runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        runtime.watch.refresh()
        after = client.get("/v1/transparency").json()
    assert after["model"] is None and after["features"] == [] and after["accuracy"] == []
    assert after["data_sources"] == ["No model is in service, so no data is being used to make indicators."]
    assert "not shown" in after["last_scoring_run"]
