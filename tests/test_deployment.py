"""The container files, checked by parsing (no Docker engine runs on these machines)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).parents[1]


def test_the_image_is_multi_stage_non_root_with_a_healthcheck_and_no_development_keys() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()]
    instructions = [
        line.split()[0] for line in lines if line and not line.startswith("#") and line.split()[0].isupper()
    ]
    assert instructions.count("FROM") == 2
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
    assert "HEALTHCHECK" in instructions and "/health" in "\n".join(lines)
    assert not any("development" in line for line in lines if line.startswith(("ENV", "COPY")))
    copied = " ".join(line for line in lines if line.startswith("COPY"))
    assert "tests" not in copied and "dev-keys" not in copied
    assert ".waymark-dev-keys" in (ROOT / ".dockerignore").read_text(encoding="utf-8")


def test_compose_runs_the_service_with_postgresql_and_an_mlflow_server() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"db", "mlflow", "waymark"}
    app = services["waymark"]
    env = app["environment"]
    assert env["WAYMARK_ENV"] == "production"
    assert (
        env["WAYMARK_DATABASE_URL"].startswith("postgresql+psycopg://")
        and "@db:5432/" in env["WAYMARK_DATABASE_URL"]
    )
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert all(
        env[k].startswith("${")
        for k in ("WAYMARK_OIDC_ISSUER", "WAYMARK_OIDC_AUDIENCE", "WAYMARK_OIDC_JWKS_URL")
    )
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    assert app["build"] == "."
    assert "healthcheck" in services["db"] and "healthcheck" in services["mlflow"]
    key = env["WAYMARK_AUDIT_KEY_FILE"]  # the access log's key comes from a secret, never the image
    assert key == "/run/secrets/waymark_audit_key" and app["secrets"] == ["waymark_audit_key"]
    assert "waymark_audit_key" in compose["secrets"]
    assert "audit.key" in (ROOT / ".dockerignore").read_text(encoding="utf-8")
