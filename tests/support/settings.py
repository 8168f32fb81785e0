"""Settings for a test session, and the same settings as environment variables."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from shared.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables that make a child process read the same settings."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        env[name.upper()] = _env_value(value)
    env.pop("DATABASE_ADMIN_URL", None)
    return env


def _env_value(value: Any) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
