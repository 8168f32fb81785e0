"""Helpers of the console tests: sign-in through the real form, CSRF tokens from pages."""

from __future__ import annotations

import re

import httpx

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    match = _TOKEN.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, key: str) -> str:
    """Sign in with an API key through the login form; returns the session's CSRF token."""
    page = await client.get("/console/login")
    assert page.status_code == 200
    response = await client.post(
        "/console/login",
        data={"api_key": key, "csrf_token": csrf_of(page.text), "next": "/console"},
    )
    assert response.status_code == 303, response.text
    dashboard = await client.get("/console")
    assert dashboard.status_code == 200, dashboard.text
    return csrf_of(dashboard.text)
