"""Settings from the environment, read once (``get_settings`` is cached; tests clear it)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Waymark's configuration (PRODUCT §7)."""

    model_config = SettingsConfigDict(extra="ignore")

    database_url: str = Field("sqlite:///waymark.db", validation_alias="WAYMARK_DATABASE_URL")
    mlflow_tracking_uri: str = Field("sqlite:///mlflow.db", validation_alias="MLFLOW_TRACKING_URI")
    mlflow_artifacts: str = Field(
        "mlartifacts",
        validation_alias="WAYMARK_MLFLOW_ARTIFACTS",
        description="Artifact folder for new experiments when tracking locally (ignored for a server).",
    )
    env: str = Field("production", validation_alias="WAYMARK_ENV")


@lru_cache
def get_settings() -> Settings:
    """The settings, read from the environment once."""
    return Settings()  # type: ignore[call-arg]  # values come from the environment
