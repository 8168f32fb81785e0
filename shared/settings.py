"""Settings for every service, read once from the environment (DESIGN.md §8)."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SIGNING_SECRET = "convoforge-dev-signing-secret-change-me"


class Settings(BaseSettings):
    """Environment variables shared by the API and the workers; names are a public contract."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    environment: Literal["development", "production", "test"] = "development"
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    database_url: str = "postgresql://convoforge:convoforge@127.0.0.1:5432/convoforge"
    database_admin_url: str | None = "postgresql://postgres@127.0.0.1:5432/postgres"
    database_pool_min: int = 0
    database_pool_max: int = 10

    redis_url: str = "redis://127.0.0.1:6379/0"
    queue_prefix: str = "convoforge"

    storage_backend: Literal["local", "s3"] = "local"
    storage_local_dir: Path = Path("./var/storage")
    storage_signing_secret: SecretStr = SecretStr(DEV_SIGNING_SECRET)
    s3_endpoint_url: str | None = None
    s3_bucket: str = "convoforge"
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_create_bucket: bool = False
    download_url_ttl_seconds: int = Field(default=3600, gt=0)

    public_base_url: str = "http://127.0.0.1:8000"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = Field(default=1, ge=1)
    api_body_limit_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    api_rate_limit_per_minute: int = Field(default=600, ge=0)

    generator_metrics_port: int = 9101
    exporter_metrics_port: int = 9102
    janitor_metrics_port: int = 9103
    metrics_host: str = "0.0.0.0"

    llm_provider: Literal["anthropic", "offline"] | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str = "https://api.anthropic.com"
    anthropic_version: str = "2023-06-01"
    llm_model: str = "claude-sonnet-4-5-20250929"
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    llm_requests_per_minute: int = Field(default=50, gt=0)
    llm_input_tokens_per_minute: int | None = None
    llm_output_tokens_per_minute: int | None = None
    llm_max_attempts: int = Field(default=3, ge=1)
    llm_backoff_base_seconds: float = Field(default=1.0, ge=0)
    llm_input_price_per_1k: Decimal = Decimal("0.015")
    llm_output_price_per_1k: Decimal = Decimal("0.075")
    llm_default_max_tokens: int = Field(default=4096, gt=0)
    llm_debug_logging: bool = False
    generation_quality_threshold: float = Field(default=6.0, ge=0, le=10)
    generator_max_jobs: int = Field(default=10, ge=1)

    export_retention_hours: float = Field(default=24, gt=0)
    export_part_size_bytes: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024)
    export_batch_size: int = Field(default=500, gt=0)

    janitor_orphan_grace_seconds: int = Field(default=3600, ge=0)
    janitor_audit_log_retention_days: int = Field(default=30, gt=0)
    janitor_rejected_retention_days: int = Field(default=30, gt=0)
    janitor_retention_mode: Literal["delete", "archive"] = "delete"
    janitor_stuck_after_seconds: int = Field(default=600, gt=0)

    @model_validator(mode="after")
    def _resolve_llm_provider(self) -> Settings:
        if self.llm_provider is None:
            self.llm_provider = "anthropic" if self.anthropic_api_key else "offline"
        return self

    @property
    def offline_llm(self) -> bool:
        """Whether the clearly labelled offline provider is in use."""
        return self.llm_provider == "offline"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
