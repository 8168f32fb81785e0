"""structlog configured once for every service: JSON off a TTY or in production."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog

from shared.settings import Settings

REDACTED = "[redacted]"
# Fields whose value is a secret at every level.
_SECRET_KEYS = frozenset(
    {
        "api_key", "authorization", "x_api_key", "password", "secret", "token", "access_token",
        "refresh_token", "signature", "cookie", "set_cookie", "anthropic_api_key",
        "s3_secret_access_key", "secret_access_key", "storage_signing_secret",
    }
)  # fmt: skip
_SECRET_SUFFIXES = ("_api_key", "_secret", "_password", "_token", "_signature")
# Fields that carry content or links: kept at debug level (LLM_DEBUG_LOGGING), hidden above it.
_CONTENT_KEYS = frozenset(
    {
        "prompt", "system_prompt", "user_prompt", "messages", "response", "response_text",
        "completion", "content", "raw", "raw_excerpt", "url", "signed_url", "download_url",
        "presigned_url",
    }
)  # fmt: skip
_CONTENT_SUFFIXES = ("_prompt", "_url")
# Values that are secrets wherever they appear (messages, exception text, any field).
_VALUE_PATTERNS = (
    # Our API keys: keep the visible prefix, drop the secret part.
    (re.compile(r"\b(cf_[0-9a-f]{8})_[A-Za-z0-9_\-]{16,}"), r"\1_" + REDACTED),
    (re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{8,}"), "sk-ant-" + REDACTED),
    # Passwords in DSNs: scheme://user:password@host.
    (re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^\s:/@]*):[^\s/@]+@", re.IGNORECASE), r"\1:***@"),
    # Signed URLs (S3 presigned and our HMAC links): the query string is the credential.
    (
        re.compile(
            r"(\bhttps?://[^\s?#\"']+)\?[^\s\"']*(?:signature|x-amz-credential|x-amz-security-token)"
            r"=[^\s\"']*",
            re.IGNORECASE,
        ),
        r"\1?" + REDACTED,
    ),
)
_MAX_DEPTH = 4


def _normalise(key: object) -> str:
    return str(key).lower().replace("-", "_")


def _is_secret(key: str) -> bool:
    return key in _SECRET_KEYS or key.endswith(_SECRET_SUFFIXES)


def _is_content(key: str) -> bool:
    return key in _CONTENT_KEYS or key.endswith(_CONTENT_SUFFIXES)


def scrub_text(text: str) -> str:
    """Mask keys, DSN passwords and signed-URL query strings inside free text."""
    for pattern, replacement in _VALUE_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _scrub(value: Any, *, show_content: bool, depth: int = 0) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {
            key: _scrub_field(key, item, show_content=show_content, depth=depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(item, show_content=show_content, depth=depth + 1) for item in value]
    return value


def _scrub_field(key: object, value: Any, *, show_content: bool, depth: int) -> Any:
    name = _normalise(key)
    if value is None:
        return None
    if _is_secret(name) or (not show_content and _is_content(name)):
        return REDACTED
    return _scrub(value, show_content=show_content, depth=depth)


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Never let keys, prompts or signed URLs reach an info-level log line.

    Secrets (API keys, passwords, signatures) are masked at every level; prompts, responses and
    URLs only above debug, so LLM_DEBUG_LOGGING can still show what was sent.
    """
    show_content = event_dict.get("level", "info") == "debug"
    for key in list(event_dict):
        if key in ("level", "timestamp"):
            continue
        event_dict[key] = _scrub_field(key, event_dict[key], show_content=show_content, depth=0)
    return event_dict


def _renderer(settings: Settings) -> Any:
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto"
        and (settings.environment == "production" or not sys.stderr.isatty())
    )
    if use_json:
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())


def configure_logging(settings: Settings) -> None:
    """Set up structlog and route the stdlib loggers (arq, uvicorn) through the same pipeline."""
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # Exceptions are rendered to text before redaction, so their text is scrubbed too.
        structlog.processors.format_exc_info,
        _redact,
    ]
    renderer = _renderer(settings)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        # No caching: a cached logger keeps the processors of its first use, so a later
        # configure() (a test's capture_logs, a second app in one process) would not reach it.
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    logging.basicConfig(level=max(level, logging.WARNING), handlers=[handler], force=True)


def get_logger(name: str) -> Any:
    """A structlog logger carrying the module name."""
    return structlog.get_logger(name)


@contextmanager
def bound_context(**values: Any) -> Iterator[None]:
    """Bind request_id / job_id / owner_id for the duration of a block."""
    tokens = structlog.contextvars.bind_contextvars(
        **{k: str(v) for k, v in values.items() if v is not None}
    )
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
