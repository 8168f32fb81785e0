"""Settings for every service, read once from the environment (DESIGN.md §8)."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.llm.pricing import parse_override

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

    # Empty = derived from API_HOST/API_PORT (see _derive_public_base_url).
    public_base_url: str = ""
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = Field(default=1, ge=1)
    api_body_limit_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    api_rate_limit_per_minute: int = Field(default=600, ge=0)
    # Failed API-key attempts per client address (issue 11): over the limit is a 429 for the
    # rest of the window, which starts at the first failure; 0 disables.
    api_auth_failure_limit: int = Field(default=20, ge=0)
    api_auth_failure_window_seconds: int = Field(default=300, gt=0)

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
    llm_rate_window_seconds: float = Field(default=60.0, gt=0)
    llm_rate_safety_margin_seconds: float = Field(default=1.0, ge=0)
    llm_expected_output_tokens: int = Field(default=2000, gt=0)
    generation_quality_threshold: float = Field(default=6.0, ge=0, le=10)
    # Near-duplicates (issue 13): estimated Jaccard of both the user and the assistant shingles
    # at or above this marks a conversation as a copy of the earliest such earlier one.
    dedup_threshold: float = Field(default=0.8, gt=0, le=1)
    generation_max_items: int = Field(default=1000, ge=1)
    generator_max_jobs: int = Field(default=10, ge=1)
    generator_job_timeout_seconds: float = Field(default=300.0, gt=0)
    # An item's lease lasts 3 heartbeats: a killed generator's items are free again after it.
    generator_heartbeat_seconds: float = Field(default=10.0, gt=0)

    # The judge (issue 13, docs/quality.md): its own (cheaper) model, flag threshold on
    # quality_overall (0-1; a template's judge_flag_threshold overrides it), and whether a
    # generation job judges each conversation it lands unless its config says otherwise. The
    # flag threshold is also GET /v1/quality/calibration's default threshold.
    judge_model: str = "claude-haiku-4-5"
    judge_flag_threshold: float = Field(default=0.3, ge=0, le=1)
    judge_after_generation: bool = True
    judge_after_edit: bool = True
    judge_max_tokens: int = Field(default=2000, ge=256, le=64_000)
    judge_concurrency: int = Field(default=3, ge=1, le=100)
    judge_max_conversation_chars: int = Field(default=200_000, ge=1000)

    # Economy (issue 15): price table, prompt caching, Message Batches, header-driven limits.
    llm_pricing: str | None = None
    llm_prompt_caching: bool = True
    llm_batch_auto_min_items: int = Field(default=50, ge=1)
    llm_batch_max_requests: int = Field(default=10_000, ge=1, le=100_000)
    llm_batch_poll_min_seconds: float = Field(default=5.0, gt=0)
    llm_batch_poll_max_seconds: float = Field(default=60.0, gt=0)
    llm_ramp_seconds: float = Field(default=10.0, ge=0)
    llm_count_tokens_sample: int = Field(default=5, ge=0, le=100)

    export_retention_hours: float = Field(default=24, gt=0)
    export_part_size_bytes: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024)
    export_batch_size: int = Field(default=500, gt=0)
    # arq retries a job whose worker died once its in-progress key expires: timeout + 10 s.
    export_job_timeout_seconds: float = Field(default=1800, gt=0)
    export_heartbeat_seconds: float = Field(default=2.0, gt=0)
    # 0 = as fast as possible; a limit keeps a huge export from hogging a shared primary.
    export_max_conversations_per_second: float = Field(default=0, ge=0)
    exporter_max_jobs: int = Field(default=4, ge=1)

    janitor_orphan_grace_seconds: int = Field(default=3600, ge=0)
    janitor_audit_log_retention_days: int = Field(default=30, gt=0)
    janitor_rejected_retention_days: int = Field(default=30, gt=0)
    janitor_retention_mode: Literal["delete", "archive"] = "delete"
    janitor_stuck_after_seconds: int = Field(default=600, gt=0)
    # Janitor schedules: five-field cron in UTC ("minute hour day month weekday") or "off".
    janitor_expire_exports_schedule: str = "0 2 * * *"
    janitor_prune_audit_logs_schedule: str = "30 3 1 * *"
    janitor_conversation_retention_schedule: str = "0 4 * * *"
    janitor_reconcile_schedule: str = "15 * * * *"
    janitor_recover_stuck_jobs_schedule: str = "*/5 * * * *"
    janitor_export_failure_ratio_schedule: str = "*/5 * * * *"
    janitor_abort_stale_uploads_schedule: str = "45 * * * *"
    janitor_roll_up_stats_schedule: str = "*/10 * * * *"
    janitor_max_recoveries: int = Field(default=3, ge=0)
    janitor_export_failure_threshold: float = Field(default=0.10, ge=0, le=1)
    janitor_export_failure_window_seconds: int = Field(default=3600, gt=0)
    janitor_lock_ttl_seconds: int = Field(default=120, ge=5)
    janitor_task_timeout_seconds: int = Field(default=3600, gt=0)
    janitor_sample_interval_seconds: float = Field(default=60, gt=0)
    janitor_batch_size: int = Field(default=500, gt=0)
    # Unfinished uploads (S3 multipart, local partial files) older than this belong to a dead
    # writer; must exceed EXPORT_JOB_TIMEOUT_SECONDS, the longest an export's upload can run.
    janitor_stale_upload_age_seconds: int = Field(default=6 * 3600, gt=0)

    # issue-16 (API contract): how often an idle worker polls its queue. arq's 0.5 s default made
    # every job wait ~0.5 s before it started; bench/latency.py measures latency and idle cost.
    queue_poll_delay_seconds: float = Field(default=0.02, gt=0, le=5)
    # Resilience (issue 11, workers): the work reconciler every generator and exporter runs at
    # start and every RECOVERY_INTERVAL_SECONDS (one replica per period, by a Redis lock):
    # queued or running work whose arq job is missing is enqueued again, and work whose lease
    # lapsed (items: 3 heartbeats; exports: no heartbeat for RECOVERY_EXPORT_STALE_SECONDS) is
    # freed for another replica at once instead of after arq's job timeout.
    recovery_enabled: bool = True
    recovery_interval_seconds: float = Field(default=10.0, gt=0)
    recovery_export_stale_seconds: float = Field(default=20.0, gt=0)
    # Longest wait between attempts to reach Redis while it is down (workers never give up).
    worker_redis_backoff_max_seconds: float = Field(default=10.0, gt=0)
    # Web console (services/api/console): session lifetime, one-time link lifetime, SSE pacing.
    console_session_hours: int = Field(default=12, gt=0)
    console_login_link_minutes: int = Field(default=15, gt=0)
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    sse_stream_max_events: int = Field(default=1000, gt=0)

    @field_validator(
        "janitor_expire_exports_schedule",
        "janitor_prune_audit_logs_schedule",
        "janitor_conversation_retention_schedule",
        "janitor_reconcile_schedule",
        "janitor_recover_stuck_jobs_schedule",
        "janitor_export_failure_ratio_schedule",
        "janitor_abort_stale_uploads_schedule",
        "janitor_roll_up_stats_schedule",
    )
    @classmethod
    def _cron_shape(cls, value: str) -> str:
        value = " ".join(value.split())
        if value.lower() == "off" or len(value.split(" ")) == 5:
            return value
        raise ValueError("expected five cron fields (minute hour day month weekday) or 'off'")

    @field_validator("llm_pricing")
    @classmethod
    def _pricing_shape(cls, value: str | None) -> str | None:
        parse_override(value)
        return value

    @model_validator(mode="after")
    def _stale_uploads_outlive_exports(self) -> Settings:
        if self.janitor_stale_upload_age_seconds <= self.export_job_timeout_seconds:
            raise ValueError(
                "JANITOR_STALE_UPLOAD_AGE_SECONDS must exceed EXPORT_JOB_TIMEOUT_SECONDS, "
                "or the janitor could abort the upload of an export that is still running"
            )
        return self

    @model_validator(mode="after")
    def _resolve_llm_provider(self) -> Settings:
        if self.llm_provider is None:
            self.llm_provider = "anthropic" if self.anthropic_api_key else "offline"
        return self

    @model_validator(mode="after")
    def _derive_public_base_url(self) -> Settings:
        """Links follow the API's own address unless PUBLIC_BASE_URL says otherwise."""
        if not self.public_base_url:
            host = self.api_host if self.api_host not in ("", "0.0.0.0", "::") else "127.0.0.1"
            host = f"[{host}]" if ":" in host else host
            self.public_base_url = f"http://{host}:{self.api_port}"
        self.public_base_url = self.public_base_url.rstrip("/")
        return self

    @property
    def offline_llm(self) -> bool:
        """Whether the clearly labelled offline provider is in use."""
        return self.llm_provider == "offline"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
