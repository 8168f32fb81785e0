"""Download links follow the API's own address unless PUBLIC_BASE_URL is set."""

from __future__ import annotations

import pytest

from services.api.__main__ import banner
from shared.settings import Settings


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("127.0.0.1", 8300, "http://127.0.0.1:8300"),
        ("0.0.0.0", 9000, "http://127.0.0.1:9000"),
        ("::", 9001, "http://127.0.0.1:9001"),
        ("::1", 9002, "http://[::1]:9002"),
        ("api.internal", 80, "http://api.internal:80"),
    ],
)
def test_default_is_derived_from_api_host_and_port(host: str, port: int, expected: str) -> None:
    assert Settings(api_host=host, api_port=port).public_base_url == expected


def test_explicit_value_wins_without_trailing_slash() -> None:
    settings = Settings(api_port=8300, public_base_url="https://convoforge.example.com/")
    assert settings.public_base_url == "https://convoforge.example.com"


def test_environment_api_port_moves_links(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_PORT", "8311")
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    settings = Settings()
    assert settings.public_base_url == "http://127.0.0.1:8311"
    assert "download links use http://127.0.0.1:8311 (PUBLIC_BASE_URL)" in banner(settings)
