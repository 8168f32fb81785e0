"""The console's Jinja2 environment (autoescape everywhere), its filters and HTML responses."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
# Bumped with the static files, so browsers never run a stale script against a new page.
ASSET_VERSION = "3"


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _money(value: float | Decimal | None) -> str:
    if value is None:
        return "—"
    amount = float(value)
    return f"${amount:,.4f}" if 0 < amount < 1 else f"${amount:,.2f}"


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _score_band(value: float | None) -> str:
    if value is None:
        return "none"
    return "high" if value >= 8 else "mid" if value >= 6 else "low"


def _label(value: Any) -> str:
    return str(getattr(value, "value", value) or "").replace("_", " ")


def _size(value: int | None) -> str:
    if value is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value = value / 1024  # type: ignore[assignment]
    return str(value)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%"


def _query(base: dict[str, Any], **changes: Any) -> str:
    """A query string from `base` with `changes` applied (None removes a key)."""
    merged = {**base, **changes}
    pairs: list[tuple[str, str]] = []
    for key, value in merged.items():
        if value is None or value == "" or value == []:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        pairs.extend((key, str(getattr(item, "value", item))) for item in values)
    return "?" + urlencode(pairs) if pairs else "?"


def _build() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=_when,
        money=_money,
        score=_score,
        score_band=_score_band,
        label=_label,
        size=_size,
        percent=_percent,
    )
    env.globals.update(query=_query, asset_version=ASSET_VERSION)
    return env


ENV = _build()


def render(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """Render a page (or a partial) with what every page needs."""
    session = getattr(request.state, "console_session", None)
    page = ENV.get_template(template).render(
        {"session": session, "path": request.url.path, "flash": _flash(request), **context}
    )
    response = HTMLResponse(page, status_code=status_code)
    if request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE, path="/console")
    return response


FLASH_COOKIE = "cf_flash"


def _flash(request: Request) -> str | None:
    value = request.cookies.get(FLASH_COOKIE)
    return unquote(value)[:300] if value else None


def set_flash(response: Any, message: str) -> None:
    """A one-shot notice shown (escaped) on the next page."""
    response.set_cookie(
        FLASH_COOKIE, quote(message[:300]), path="/console", httponly=True, samesite="lax"
    )
