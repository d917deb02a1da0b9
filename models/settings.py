"""Settings from the environment, read once (``get_settings`` is cached; tests clear it or pass their own)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Waymark's configuration (PRODUCT §7); every field is documented in docs/configuration.md."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str = Field("sqlite:///waymark.db", validation_alias="WAYMARK_DATABASE_URL")
    mlflow_tracking_uri: str = Field("sqlite:///mlflow.db", validation_alias="MLFLOW_TRACKING_URI")
    mlflow_artifacts: str = Field(
        "mlartifacts",
        validation_alias="WAYMARK_MLFLOW_ARTIFACTS",
        description="Artifact folder for new experiments when tracking locally (ignored for a server).",
    )
    env: str = Field("production", validation_alias="WAYMARK_ENV")
    oidc_issuer: str = Field("", validation_alias="WAYMARK_OIDC_ISSUER")
    oidc_audience: str = Field("", validation_alias="WAYMARK_OIDC_AUDIENCE")
    oidc_jwks_url: str = Field("", validation_alias="WAYMARK_OIDC_JWKS_URL")
    dev_key_dir: Path = Field(
        Path(".waymark-dev-keys"),
        validation_alias="WAYMARK_DEV_KEY_DIR",
        description="Development only: where the local signing key pair is kept.",
    )
    target: str = Field("not_completing", validation_alias="WAYMARK_TARGET")
    model_name: str = Field("waymark-not-completing", validation_alias="WAYMARK_MODEL_NAME")
    max_page_size: int = Field(100, validation_alias="WAYMARK_MAX_PAGE_SIZE")
    max_body_bytes: int = Field(16_384, validation_alias="WAYMARK_MAX_BODY_BYTES")
    rate_limit_per_minute: int = Field(600, validation_alias="WAYMARK_RATE_LIMIT_PER_MINUTE")
    cors_origins: str = Field("", validation_alias="WAYMARK_CORS_ORIGINS")
    retention_days: int = Field(
        730, validation_alias="WAYMARK_RETENTION_DAYS", description="Indicators and notes older than this go."
    )

    @property
    def development(self) -> bool:
        """Development mode: local signing keys and ``waymark token`` are allowed."""
        return self.env == "development"

    @property
    def dev_issuer(self) -> str:
        """Issuer and audience of development tokens."""
        return "waymark-development"

    def oidc_problems(self) -> list[str]:
        """What is missing for production authentication (empty when complete)."""
        names = {
            "WAYMARK_OIDC_ISSUER": self.oidc_issuer,
            "WAYMARK_OIDC_AUDIENCE": self.oidc_audience,
            "WAYMARK_OIDC_JWKS_URL": self.oidc_jwks_url,
        }
        return [f"{name} is not set" for name, value in names.items() if not value]


@lru_cache
def get_settings() -> Settings:
    """The settings, read from the environment once."""
    return Settings()  # type: ignore[call-arg]  # values come from the environment
