"""Safe defaults: exports that cannot run formulas, escaped pages, development mode kept to this machine."""

from __future__ import annotations

import csv
import io
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.service_setup import Served
from waymark import cli
from waymark.models.settings import Settings, get_settings
from waymark.service.app import create_app
from waymark.service.pages import templates
from waymark.service.security import ConfigurationError, mint

FORMULAS = ['=HYPERLINK("http://evil.example")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[TestClient]:
    with TestClient(create_app(served.settings.model_copy(update={"rate_limit_per_minute": 10**6}))) as c:
        yield c


def test_exported_csv_cells_cannot_run_as_spreadsheet_formulas(served: Served, client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {mint(served.settings, 'student', sub='csv-formula-student')}"}
    for i, text in enumerate(FORMULAS):  # five corrections may be open at once; the sixth asks for erasure
        kind = "rectification" if i < 5 else "erasure"
        assert client.post(f"/v1/me/{kind}", json={"detail": text}, headers=auth).status_code == 201
    exported = client.get("/v1/me/export", params={"format": "csv"}, headers=auth).text
    rows = list(csv.DictReader(io.StringIO(exported, newline="")))
    details = [r["value"] for r in rows if r["record_type"] == "requests" and r["field"] == "detail"]
    assert sorted(details) == sorted("'" + text for text in FORMULAS)
    assert not [r for r in rows if r["value"][:1] in ("=", "+", "-", "@", "\t", "\r")]


def test_page_templates_escape_what_they_show() -> None:
    hostile = "<script>alert(1)</script>"
    statement: dict[str, Any] = {
        key: [hostile] for key in ("purposes", "not_purposes", "data_sources", "how_to_read")
    }
    statement |= {"protected_characteristics": hostile, "retention": hostile, "contact": hostile}
    statement["who_sees_what"] = {"student": hostile}
    page = templates.get_template("transparency.html.j2").render(title=hostile, page="t", s=statement)
    assert hostile not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_health_states_the_mode(served: Served, client: TestClient, tmp_path: Path) -> None:
    assert client.get("/health").json()["mode"] == "development"
    key = tmp_path / "audit.key"  # the key the served log was written with: another is refused
    key.write_bytes((Path(served.settings.dev_key_dir) / "audit.key").read_bytes())
    production = served.settings.model_copy(
        update={
            "env": "production",
            "audit_key_file": key,
            "oidc_issuer": "https://idp.example",
            "oidc_audience": "waymark",
            "oidc_jwks_url": "https://idp.example/jwks",
        }
    )
    with TestClient(create_app(production)) as live:
        assert live.get("/health").json()["mode"] == "production"
        # Swagger UI and ReDoc load CDN scripts outside the script policy: not in production. The API's
        # description stays; metrics are not served without a scraper's token (a red team's findings).
        assert [live.get(p).status_code for p in ("/docs", "/redoc", "/metrics")] == [404, 404, 404]
        assert live.get("/openapi.json").status_code == 200
    token = tmp_path / "metrics.token"
    token.write_text(secrets.token_hex(32))
    with TestClient(create_app(production.model_copy(update={"metrics_token_file": token}))) as live:
        bearer = {"Authorization": f"Bearer {token.read_text()}"}
        assert "waymark_http_requests_total" in live.get("/metrics", headers=bearer).text
        assert live.get("/metrics", headers={"Authorization": "Bearer " + "0" * 64}).status_code == 404
        assert live.get("/metrics").status_code == 404
    token.write_text("short")
    with pytest.raises(ConfigurationError, match="WAYMARK_METRICS_TOKEN_FILE"):
        create_app(production.model_copy(update={"metrics_token_file": token}))


# Development mode stays on this machine --------------------------------------------------------------------


@pytest.fixture
def development(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Development settings on a throwaway SQLite database; uvicorn replaced by a recorder of its calls."""
    monkeypatch.setenv("WAYMARK_ENV", "development")
    monkeypatch.setenv("WAYMARK_DEV_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("WAYMARK_DATABASE_URL", f"sqlite:///{tmp_path}/waymark.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    started: list[dict[str, Any]] = []
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: started.append(kwargs))
    get_settings.cache_clear()
    yield started
    get_settings.cache_clear()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(*args: str) -> Any:
    port = [] if "--port" in args else ["--port", str(_free_port())]
    return CliRunner().invoke(cli.app, ["serve", *args, *port])


def test_a_port_already_in_use_is_refused_by_name_before_anything_starts(
    development: list[dict[str, Any]],
) -> None:
    """Else the command said it was listening and another server, perhaps another Waymark, answered."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve("--port", str(port))
    assert result.exit_code != 0 and f"127.0.0.1:{port}" in result.output and "--port" in result.output
    assert development == []


def test_development_mode_serves_on_loopback_with_sqlite(development: list[dict[str, Any]]) -> None:
    for host in ("127.0.0.1", "localhost", "::1"):
        assert _serve("--host", host).exit_code == 0
    assert [call["host"] for call in development] == ["127.0.0.1", "localhost", "::1"]


def test_development_mode_refuses_an_address_other_machines_reach(development: list[dict[str, Any]]) -> None:
    for host in ("0.0.0.0", "192.168.1.20", "waymark.example.ac.uk"):  # noqa: S104  # the refused case
        result = _serve("--host", host)
        assert result.exit_code != 0 and "development mode" in result.output and host in result.output
    assert development == []


def test_development_mode_refuses_a_database_that_is_not_local_sqlite(
    development: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYMARK_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:1/waymark")
    get_settings.cache_clear()
    result = _serve()
    assert result.exit_code != 0 and "not a local SQLite file" in result.output
    assert development == []


def test_the_explicit_flag_serves_in_development_anywhere(development: list[dict[str, Any]]) -> None:
    result = _serve("--host", "0.0.0.0", "--i-know-this-is-not-production")  # noqa: S104
    assert result.exit_code == 0 and development[0]["host"] == "0.0.0.0"  # noqa: S104


def test_production_mode_has_no_development_exposure() -> None:
    settings = Settings(WAYMARK_ENV="production", WAYMARK_DATABASE_URL="postgresql://db/waymark")  # type: ignore[call-arg]
    assert settings.development_exposure("0.0.0.0") == []  # noqa: S104


def test_production_on_postgresql_serves_one_worker_per_core_and_otherwise_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from waymark.cli.serve import default_workers

    monkeypatch.setenv("WAYMARK_THREADS", "3")  # the cores the process may use, as models.threads reads them
    urls = {
        "postgresql+psycopg://db/waymark": 3,
        "postgresql://db/waymark": 3,
        "sqlite:////srv/waymark.db": 1,
    }
    for url, workers in urls.items():
        production = Settings(WAYMARK_ENV="production", WAYMARK_DATABASE_URL=url)  # type: ignore[call-arg]
        assert default_workers(production) == workers, url
    development = Settings(WAYMARK_ENV="development", WAYMARK_DATABASE_URL="postgresql://db/w")  # type: ignore[call-arg]
    assert default_workers(development) == 1


def test_production_refuses_to_start_on_the_default_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operations review left WAYMARK_DATABASE_URL out of a production environment: the service
    started on a new SQLite file in its working directory, with an empty access log, and /health said
    ok. Outside development both stores must be named."""
    for name in ("WAYMARK_DATABASE_URL", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    key = tmp_path / "audit.key"
    key.write_text(secrets.token_hex(32))
    identity = {
        "WAYMARK_ENV": "production",
        "WAYMARK_AUDIT_KEY_FILE": str(key),
        "WAYMARK_OIDC_ISSUER": "https://idp.example",
        "WAYMARK_OIDC_AUDIENCE": "waymark",
        "WAYMARK_OIDC_JWKS_URL": "https://idp.example/jwks",
    }
    monkeypatch.chdir(tmp_path)
    with (
        pytest.raises(
            ConfigurationError, match="WAYMARK_DATABASE_URL is not set; MLFLOW_TRACKING_URI is not"
        ),
        TestClient(create_app(Settings(**identity))),
    ):
        pass
    assert not (tmp_path / "waymark.db").exists()
    named = Settings(**identity, WAYMARK_DATABASE_URL=f"sqlite:///{tmp_path}/named.db")
    with (
        pytest.raises(
            ConfigurationError, match="needs its database and model registry named: MLFLOW_TRACKING"
        ),
        TestClient(create_app(named)),
    ):
        pass
    assert Settings(env="development").unset_stores() == []
    # `waymark serve` refuses before anything opens the default database (it had made waymark.db).
    get_settings.cache_clear()
    for name, value in identity.items():
        monkeypatch.setenv(name, value)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = CliRunner().invoke(cli.app, ["serve", "--port", str(port)])
    get_settings.cache_clear()
    assert result.exit_code != 0 and "WAYMARK_DATABASE_URL is not set" in result.output
    assert not (tmp_path / "waymark.db").exists()


def test_serving_pseudonyms_without_the_secret_is_said_at_start_up(engine: Any, tmp_path: Path) -> None:
    """A law school served its pseudonymised batches without the imports' secret: every student signing
    in with their number read "There is no indicator for you at the moment", and nothing said why."""
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from waymark.service.db.engine import transaction
    from waymark.service.db.schema import ScoringRun
    from waymark.service.runtime import warn_without_secret

    settings = Settings(WAYMARK_ENV="development")  # type: ignore[call-arg]
    assert warn_without_secret(settings, engine) is None  # nothing published yet
    with transaction(engine) as session:
        session.execute(
            insert(ScoringRun).values(
                target="not_completing", model_name="m", model_version="1", bundle_sha256="a" * 64,
                data_fingerprint="b" * 64, data_as_of="2026-11-30", status="complete", students=0,
                started_at=datetime.now(UTC), pseudonym_key="0123456789abcdef",
            )
        )  # fmt: skip
    said = warn_without_secret(settings, engine)
    assert said is not None and "WAYMARK_PSEUDONYM_SECRET_FILE is not set" in said
    secret = tmp_path / "secret.key"
    secret.write_text("s" * 64, encoding="utf-8")
    secret.chmod(0o600)
    with_secret = Settings(WAYMARK_ENV="development", WAYMARK_PSEUDONYM_SECRET_FILE=str(secret))  # type: ignore[call-arg]
    assert warn_without_secret(with_secret, engine) is None


def test_the_students_page_says_what_stays_while_they_are_left_out_in_the_institutions_words() -> None:
    """The page had promised a safeguarding contact whatever the outreach file's [restriction] kept."""
    kept = ["A safeguarding concern: the University must act", "A <b>visa</b> duty"]
    page = templates.get_template("me.html.j2").render(title="t", page="me", kept=kept)
    said = (
        "One thing stays: an open contact under exemptions the University keeps open while you are left out "
        "(A safeguarding concern: the University must act; A &lt;b&gt;visa&lt;/b&gt; duty)"
    )
    assert page.count(said) == 2  # beside the correction's box and the objection
    none = templates.get_template("me.html.j2").render(title="t", page="me", kept=[])
    assert none.count("No record of contact stays with staff in Waymark meanwhile.") == 2
    assert "One thing stays" not in none
    worklist = templates.get_template("worklist.html.j2").render(title="t", page="worklist", kept=kept)
    assert "an exemption that outlasts this (A safeguarding concern: the University must act; A " in worklist
