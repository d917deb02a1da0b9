"""The read path: one Core query per read, served as stored, equal to the documented models; the access
log stays one verifying chain under concurrent audited reads from several worker processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.exc import StatementError

from tests.champion import Champion
from tests.service_setup import Served, api_client, auth, serve_cohort
from waymark.fairness.gate import FAIL
from waymark.models.registry import configure
from waymark.service import directory, reads
from waymark.service.access import readable
from waymark.service.app import create_app
from waymark.service.audit import load_key, verify_log
from waymark.service.db.engine import pool_size_for, transaction
from waymark.service.db.schema import AuditRecord, Indicator, ModelDecision, Publication, ScoringRun
from waymark.service.indicators import ORDER, READING_NOTE, estimate, history, priority, provenance, view
from waymark.service.schemas import Caseload, CaseloadEntry, DirectoryView, StudentIndicators
from waymark.service.scoring import publish, score
from waymark.service.security import Principal


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[TestClient]:
    with api_client(served) as client:
        yield client


@pytest.fixture(scope="module")
def two_runs(
    champion: Champion, synth_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """Week 8, then week 9, published: each indicator has a history of two and a change."""
    served = serve_cohort(champion, synth_dir, "sqlite", tmp_path_factory.mktemp("two-runs"))
    configure(served.settings)
    score(synth_dir, served.engine, model_name=champion.name, week=9)
    yield served
    served.engine.dispose()


def _staff(served: Served, relationship: str, *, count: int) -> list[str]:
    found = served.access[served.access.relationship == relationship].staff_id.drop_duplicates()
    return sorted(found)[:count]


def _published(served: Served) -> ScoringRun:
    with transaction(served.engine) as session:
        run = session.scalar(select(ScoringRun).join(Publication, Publication.run_id == ScoringRun.id))
        assert run is not None
        return run


def _reference_student(served: Served, principal: Principal, student: str) -> dict[str, object]:
    """The answer as the ORM reading (kept for students' own views) builds and validates it."""
    run = _published(served)
    with transaction(served.engine) as session:
        rows = list(
            session.scalars(
                readable(principal, run.id).where(Indicator.student_id == student).order_by(*ORDER)
            )
        )
        views = [
            view(
                r,
                run,
                rank=priority(session, principal, run=run, row=r),
                past=history(session, r, target=run.target),
            )
            for r in rows
        ]
        entry = directory.entries(session, [student]).get(student)
        found = StudentIndicators(
            student_id=student,
            directory=None if entry is None else DirectoryView.model_validate(entry, from_attributes=True),
            indicators=views,
        )
    return found.model_dump(mode="json")


def _order(row: Indicator) -> float:
    """What a list is ordered by (``list_order``): the smoothed order value, else the estimate."""
    return row.probability if row.priority is None else row.priority


def _reference_caseload(
    served: Served, principal: Principal, *, offset: int, limit: int
) -> dict[str, object]:
    run = _published(served)
    with transaction(served.engine) as session:
        query = readable(principal, run.id)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = list(session.scalars(query.order_by(*ORDER).offset(offset).limit(limit)))
        order = [_order(r) for r in session.scalars(query.order_by(*ORDER))]
        names = directory.entries(session, [r.student_id for r in rows])
        items = [
            CaseloadEntry(
                student_id=r.student_id,
                name=None
                if names.get(r.student_id) is None
                else names[r.student_id].preferred_name or names[r.student_id].display_name,
                module_id=r.module_id,
                presentation_id=r.presentation_id,
                support_priority=order.index(_order(r)) + 1,  # ties share the first one's place
                estimate=estimate(r),
                top_factor=r.factors[0]["sentence"] if r.factors else None,
                week=r.week,
                data_as_of=r.as_of,
            )
            for i, r in enumerate(rows)
        ]
        page = Caseload(
            available=True,
            total=total,
            offset=offset,
            limit=limit,
            items=items,
            provenance=provenance(rows[0], run) if rows else None,
            reading_note=READING_NOTE,
        )
    return page.model_dump(mode="json")


def _check_students(served: Served, client: TestClient, relationship: str) -> int:
    checked = 0
    for staff in _staff(served, relationship, count=3):
        principal = Principal(staff, relationship, None)
        headers = auth(served, relationship, staff)
        items = client.get("/v1/caseload", params={"limit": 100}, headers=headers).json()["items"]
        for student in sorted({i["student_id"] for i in items})[:4]:
            response = client.get(f"/v1/students/{student}/indicator", headers=headers)
            assert response.status_code == 200 and response.headers["content-type"] == "application/json"
            served_json = response.json()
            # it validates against the documented model and holds nothing the model does not
            assert StudentIndicators.model_validate(served_json).model_dump(mode="json") == served_json
            assert served_json == _reference_student(served, principal, student)
            checked += 1
    return checked


def test_a_students_indicators_are_served_exactly_as_the_documented_model_reads_them(
    served: Served, client: TestClient
) -> None:
    checked = sum(
        _check_students(served, client, r) for r in ("personal_tutor", "module_leader", "support_staff")
    )
    assert checked >= 12


def test_history_and_change_are_served_as_the_model_reads_them_after_a_second_run(two_runs: Served) -> None:
    with api_client(two_runs) as client:
        assert _check_students(two_runs, client, "programme_leader") >= 4
        staff = _staff(two_runs, "personal_tutor", count=1)[0]
        student = client.get("/v1/caseload", headers=auth(two_runs, "personal_tutor", staff)).json()["items"][
            0
        ]
        body = client.get(
            f"/v1/students/{student['student_id']}/indicator", headers=auth(two_runs, "personal_tutor", staff)
        ).json()
    assert all(len(i["history"]) == 2 for i in body["indicators"])
    assert all(i["estimate"]["change_since_last_run"] is not None for i in body["indicators"])


def test_caseload_pages_are_served_exactly_as_the_documented_model_reads_them(
    served: Served, client: TestClient
) -> None:
    for relationship in ("personal_tutor", "module_leader", "programme_leader", "support_staff"):
        for staff in _staff(served, relationship, count=2):
            headers = auth(served, relationship, staff)
            principal = Principal(staff, relationship, None)
            for offset, limit in ((0, 7), (5, 30)):
                page = client.get("/v1/caseload", params={"offset": offset, "limit": limit}, headers=headers)
                assert page.status_code == 200
                found = page.json()
                assert Caseload.model_validate(found).model_dump(mode="json") == found
                assert found == _reference_caseload(served, principal, offset=offset, limit=limit)
    past_the_end = client.get("/v1/caseload", params={"offset": 1_000_000}, headers=headers).json()
    assert past_the_end["available"] is True and past_the_end["items"] == [] and past_the_end["total"] > 0


def test_the_openapi_schema_still_documents_the_served_models(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    indicator = paths["/v1/students/{student_id}/indicator"]["get"]["responses"]["200"]
    caseload = paths["/v1/caseload"]["get"]["responses"]["200"]
    assert indicator["content"]["application/json"]["schema"]["$ref"].endswith("/StudentIndicators")
    assert caseload["content"]["application/json"]["schema"]["$ref"].endswith("/Caseload")


def test_a_kept_statement_reads_as_its_own_caller_only_and_never_without_a_student(
    served: Served, client: TestClient
) -> None:
    """Statements are kept built per caller; one tutor's reads never answer with another's scope."""
    first, second = _staff(served, "personal_tutor", count=2)
    mine = {
        staff: {
            i["student_id"]
            for i in client.get(
                "/v1/caseload", params={"limit": 100}, headers=auth(served, "personal_tutor", staff)
            ).json()["items"]
        }
        for staff in (first, second)
    }
    only_first = sorted(mine[first] - mine[second])[:3]
    assert only_first, "the two tutors' caseloads should differ"
    for (
        student
    ) in only_first:  # alternate callers on the same students, each statement kept after its first use
        for staff, allowed in ((first, True), (second, False), (first, True), (second, False)):
            response = client.get(
                f"/v1/students/{student}/indicator", headers=auth(served, "personal_tutor", staff)
            )
            assert response.status_code == (200 if allowed else 404)
    run = _published(served)
    statement = reads.student_statement(
        Principal(first, "personal_tutor", None),
        reads.Served(run.target, run.model_name, run.model_version),
    )
    assert statement is reads.student_statement(
        Principal(first, "personal_tutor", 123.0), reads.Served(run.target, run.model_name, run.model_version)
    )
    with transaction(served.engine) as session, pytest.raises(StatementError, match="student_id"):
        session.execute(statement)  # no student given: an error, never a read of anyone


def test_a_pool_is_shared_out_among_workers() -> None:
    assert pool_size_for(1, cores=2) == 8
    assert pool_size_for(2, cores=2) == 4
    assert pool_size_for(16, cores=2) == 4  # never fewer than four each
    assert pool_size_for(4, cores=16) == 16


# Concurrent audited reads across worker processes ------------------------------------------------------


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _records(served: Served) -> int:
    with transaction(served.engine) as session:
        return int(session.scalar(select(func.count()).select_from(AuditRecord)) or 0)


@contextmanager
def _server(served: Served, *, workers: int, log: Path, threads: int | None = None) -> Iterator[str]:
    """``waymark serve --workers N`` on the served cohort's database, on a free loopback port."""
    port = _port()
    env = {
        **os.environ,
        "WAYMARK_ENV": "development",
        "WAYMARK_DEV_KEY_DIR": str(served.settings.dev_key_dir),
        "WAYMARK_DATABASE_URL": served.settings.database_url,
        "MLFLOW_TRACKING_URI": served.settings.mlflow_tracking_uri,
        "WAYMARK_MLFLOW_ARTIFACTS": str(served.settings.mlflow_artifacts),
        "WAYMARK_RATE_LIMIT_PER_MINUTE": "100000000",
        **({} if threads is None else {"WAYMARK_REQUEST_THREADS": str(threads)}),
    }
    command = [sys.executable, "-m", "waymark", "serve", "--port", str(port), "--workers", str(workers)]
    if not served.settings.database_url.startswith("sqlite"):
        command.append("--i-know-this-is-not-production")  # development tokens on PostgreSQL
    output = log.open("w")
    server = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"waymark serve did not come up: {log.read_text()}")
            time.sleep(0.3)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        output.close()


def _indicator_reads(exposition: str) -> int:
    """Successful indicator reads as /metrics counts them."""
    return round(
        sum(
            sample.value
            for family in text_string_to_metric_families(exposition)
            for sample in family.samples
            if sample.name == "waymark_http_requests_total"
            and sample.labels.get("route") == "/v1/students/{student_id}/indicator"
            and sample.labels.get("status") == "200"
        )
    )


@pytest.mark.slow
def test_concurrent_audited_reads_across_worker_processes_write_one_verifying_chain(
    served: Served, tmp_path: Path
) -> None:
    """Every successful read has exactly one record, and the chain verifies, with two processes writing."""
    tutors = _staff(served, "personal_tutor", count=6)
    pairs = [
        (tutor, student)
        for tutor in tutors
        for student in served.access[
            (served.access.staff_id == tutor) & (served.access.relationship == "personal_tutor")
        ].scope_id
        if student in set(served.indicators.student_id)
    ]
    assert len(pairs) >= 6
    headers = {t: auth(served, "personal_tutor", t) for t in tutors}
    before = _records(served)
    with _server(served, workers=2, log=tmp_path / "serve.log") as base:

        def read(i: int) -> int:
            tutor, student = pairs[i % len(pairs)]
            with httpx.Client(base_url=base, headers=headers[tutor], timeout=60) as http:
                return sum(
                    http.get(f"/v1/students/{student}/indicator").status_code == 200 for _ in range(25)
                )

        with ThreadPoolExecutor(max_workers=16) as pool:
            succeeded = sum(pool.map(read, range(16)))
        # /metrics counts every worker's requests, whichever worker the scrape reaches
        scraped = [_indicator_reads(httpx.get(f"{base}/metrics", timeout=30).text) for _ in range(4)]
    assert succeeded == 16 * 25  # none refused, none lost to a locked database
    assert scraped == [succeeded] * 4
    assert _records(served) - before == succeeded
    checked = verify_log(served.engine, load_key(served.settings))
    assert checked.problems == []
    assert checked.records == _records(served)


def test_reads_whose_answer_is_validated_after_them_do_not_hold_up_the_reads_queued_behind(
    served: Served, tmp_path: Path
) -> None:
    """One request thread, concurrent audited reads whose answers FastAPI validates after the endpoint.

    Were their transaction (on SQLite, the writer lock; on PostgreSQL, the access log's head) still
    open while the answer waits for the request thread, and that thread taken by a read waiting for
    the lock, both would stall: on SQLite for the writer's 30 s, then a 503; on PostgreSQL for good.
    """
    tutor = str(served.access.loc[served.access.relationship == "personal_tutor", "staff_id"].iloc[0])
    mine = served.access[(served.access.staff_id == tutor) & (served.access.relationship == "personal_tutor")]
    students = [s for s in mine.scope_id if s in set(served.indicators.student_id)]
    assert students
    headers = auth(served, "personal_tutor", tutor)
    before = _records(served)
    with _server(served, workers=1, log=tmp_path / "serve.log", threads=1) as base:

        def read(i: int) -> int:
            with httpx.Client(base_url=base, headers=headers, timeout=100) as http:
                student = students[i % len(students)]
                return sum(http.get(f"/v1/students/{student}/contacts").status_code == 200 for _ in range(3))

        with ThreadPoolExecutor(max_workers=8) as pool:
            succeeded = sum(pool.map(read, range(8)))
    assert succeeded == 8 * 3, (tmp_path / "serve.log").read_text()[-2000:]
    assert _records(served) - before == succeeded


@pytest.mark.parametrize("threads", [1, 3])
def test_each_process_works_on_as_many_requests_at_once_as_configured(served: Served, threads: int) -> None:
    import anyio.to_thread

    settings = served.settings.model_copy(update={"request_threads": threads})
    with TestClient(create_app(settings)) as client:
        tokens = client.portal.call(lambda: anyio.to_thread.current_default_thread_limiter().total_tokens)
    assert tokens == threads


def test_an_empty_read_rechecking_the_champion_is_answered_not_stalled(served: Served) -> None:
    """An empty read asks whether a batch is served; a champion check due then runs beside the request."""
    settings = served.settings.model_copy(
        update={"rate_limit_per_minute": 1_000_000, "champion_recheck_seconds": 0.0}
    )
    tutor = str(served.access.loc[served.access.relationship == "personal_tutor", "staff_id"].iloc[0])
    with TestClient(create_app(settings)) as client:
        for _ in range(3):  # each read re-checks the champion while the request holds its transaction
            headers = auth(served, "personal_tutor", tutor)
            found = client.get("/v1/students/NOBODY-9/indicator", headers=headers)
            assert found.status_code == 404, found.text  # not 503 after waiting on its own writer lock
            page = client.get("/v1/caseload?offset=100000", headers=headers)
            assert page.status_code == 200, page.text


@pytest.mark.parametrize("since", ["rejected", "audited again, failing the gate"])
def test_a_withdrawn_versions_estimates_leave_every_history_and_are_no_runs_starting_point(
    champion: Champion, synth_dir: Path, tmp_path_factory: pytest.TempPathFactory, since: str
) -> None:
    """A version approved when its run was served and, since, rejected, or audited again with a gate
    that fails and no review of it: its points go from staff's and the documented (ORM) reading of
    history, and a later run does not measure its change from them. A review setting the failed gate
    aside brings them back."""
    served = serve_cohort(champion, synth_dir, "sqlite", tmp_path_factory.mktemp("rejected-history"))
    engine = served.engine
    try:
        with transaction(engine) as session:
            now = session.scalar(select(ScoringRun).join(Publication, Publication.run_id == ScoringRun.id))
            assert now is not None
            earlier = ScoringRun(
                **{c: getattr(now, c) for c in ("target", "model_name", "bundle_sha256", "data_fingerprint")},
                model_version="0",  # an earlier version's run of the same registrations
                data_as_of=now.data_as_of,
                status="complete",
                students=now.students,
                started_at=now.started_at,
            )
            session.add(earlier)
            session.flush()
            for row in session.scalars(select(Indicator).where(Indicator.run_id == now.id)):
                copied = {c.name: getattr(row, c.name) for c in Indicator.__table__.columns}
                session.add(Indicator(**{**copied, "run_id": earlier.id, "probability": 0.5}))
            for kind in ("audit", "approved"):
                session.add(
                    ModelDecision(
                        model_name=now.model_name,
                        model_version="0",
                        kind=kind,
                        bundle_sha256="0" * 64,
                        actor="committee",
                        recorded_by="committee",
                        at=now.started_at,
                    )
                )
            earlier_id, now_id, target = earlier.id, now.id, now.target
        staff = _staff(served, "personal_tutor", count=1)[0]
        headers = auth(served, "personal_tutor", staff)

        def histories() -> tuple[set[int], set[int]]:
            with api_client(served) as client:
                student = client.get("/v1/caseload", headers=headers).json()["items"][0]["student_id"]
                body = client.get(f"/v1/students/{student}/indicator", headers=headers).json()
            assert "indicators" in body, body
            served_runs = {p["run_id"] for i in body["indicators"] for p in i["history"]}
            with transaction(engine) as session:
                row = session.scalars(
                    select(Indicator).where(Indicator.run_id == now_id, Indicator.student_id == student)
                ).first()
                assert row is not None
                documented = {p.run_id for p in history(session, row, target=target)}
            return served_runs, documented

        assert histories() == ({earlier_id, now_id}, {earlier_id, now_id})
        with transaction(engine) as session:
            session.get(Publication, target).run_id = earlier_id  # as if version 0's run were still served
        assert publish.previous_estimates(engine, target)
        with transaction(engine) as session:
            session.get(Publication, target).run_id = now_id
            session.add(_decision(champion.name, "rejected" if since == "rejected" else "audit", gate=FAIL))
        assert histories() == ({now_id}, {now_id})
        with transaction(engine) as session:
            session.get(Publication, target).run_id = earlier_id
        assert publish.previous_estimates(engine, target) == {}
        if since != "rejected":
            # A review recorded after the failed audit but given on the earlier one (it was read before
            # the audit came in) is no review of it: the points stay withdrawn.
            with transaction(engine) as session:
                session.get(Publication, target).run_id = now_id
                audits = session.scalars(
                    select(ModelDecision.id)
                    .where(ModelDecision.model_version == "0", ModelDecision.kind == "audit")
                    .order_by(ModelDecision.id)
                ).all()
                session.add(_decision(champion.name, "approved", gate=None, audit_id=audits[0]))
            assert histories() == ({now_id}, {now_id})
            # The committee reviews the new audit and sets the failed gate aside: the points come back.
            with transaction(engine) as session:
                session.add(_decision(champion.name, "approved", gate=None, audit_id=audits[-1]))
            assert histories() == ({earlier_id, now_id}, {earlier_id, now_id})
    finally:
        engine.dispose()


def _decision(name: str, kind: str, *, gate: str | None, audit_id: int | None = None) -> ModelDecision:
    """A governance record of version "0" of ``name``, made now (a review's note says why), a review
    given on ``audit_id``."""
    return ModelDecision(
        audit_id=audit_id,
        model_name=name,
        model_version="0",
        kind=kind,
        bundle_sha256="0" * 64,
        gate=gate if kind == "audit" else None,
        actor="committee",
        recorded_by="committee",
        note="found unfair" if kind == "rejected" else "",
        override_reason="the gap is within modules" if kind == "approved" else None,
        at=datetime.now(UTC),
    )
