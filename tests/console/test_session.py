"""Console sign-in, sessions, CSRF, security headers, tenant isolation and escaping (HTTP level)."""

from __future__ import annotations

import asyncpg
import httpx

from shared.console_auth import mint_login_link
from shared.db.pool import acquire
from shared.settings import Settings
from tests.console.support import csrf_of, sign_in
from tests.support.factories import Account, create_account
from tests.support.seed_files import seed_file


async def test_pages_redirect_to_sign_in_without_a_session(client: httpx.AsyncClient) -> None:
    for path in ("/console", "/console/conversations?status=approved", "/console/review"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/console/login?next=")
    htmx = await client.get("/console/conversations", headers={"HX-Request": "true"})
    assert htmx.headers["hx-redirect"].startswith("/console/login")


async def test_sign_in_sets_a_safe_cookie_and_sign_out_ends_the_session(
    client: httpx.AsyncClient, account: Account
) -> None:
    page = await client.get("/console/login")
    response = await client.post(
        "/console/login",
        data={"api_key": account.key, "csrf_token": csrf_of(page.text), "next": "//evil.example"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console"
    cookie = next(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and "cf_session" in v
    )
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/console" in cookie
    assert "Secure" not in cookie
    assert account.key not in cookie
    token = client.cookies.get("cf_session")
    assert token
    dashboard = await client.get("/console")
    assert dashboard.status_code == 200
    out = await client.post("/console/logout", data={"csrf_token": csrf_of(dashboard.text)})
    assert out.status_code == 303
    # The old cookie is worthless once the session ended server-side.
    client.cookies.set("cf_session", token, path="/console")
    assert (await client.get("/console")).status_code == 303


async def test_secure_cookie_behind_https(client: httpx.AsyncClient, account: Account) -> None:
    page = await client.get("/console/login")
    response = await client.post(
        "/console/login",
        data={"api_key": account.key, "csrf_token": csrf_of(page.text)},
        headers={"X-Forwarded-Proto": "https"},
    )
    cookie = next(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and "cf_session" in v
    )
    assert "Secure" in cookie


async def test_bad_key_and_missing_csrf_are_refused(
    client: httpx.AsyncClient, account: Account
) -> None:
    page = await client.get("/console/login")
    token = csrf_of(page.text)
    bad = await client.post(
        "/console/login", data={"api_key": "cf_nope_" + "x" * 30, "csrf_token": token}
    )
    assert bad.status_code == 401
    assert "not valid" in bad.text
    no_csrf = await client.post("/console/login", data={"api_key": account.key})
    assert no_csrf.status_code == 403
    assert "This form was refused" in no_csrf.text
    assert client.cookies.get("cf_session") is None


async def test_state_changing_posts_need_the_session_token(
    client: httpx.AsyncClient, account: Account
) -> None:
    csrf = await sign_in(client, account.key)
    created = await client.post(
        "/v1/conversations", json=seed_file("csrf-target"), headers=account.headers
    )
    id = created.json()["id"]
    for data in ({"status": "approved"}, {"status": "approved", "csrf_token": "forged"}):
        refused = await client.post(f"/console/conversations/{id}/status", data=data)
        assert refused.status_code == 403
        assert "This form was refused" in refused.text
    still = await client.get(f"/v1/conversations/{id}", headers=account.headers)
    assert still.json()["status"] == "pending_review"
    done = await client.post(
        f"/console/conversations/{id}/status", data={"status": "approved", "csrf_token": csrf}
    )
    assert done.status_code == 303
    after = await client.get(f"/v1/conversations/{id}", headers=account.headers)
    assert after.json()["status"] == "approved"


async def test_login_link_is_one_time(
    client: httpx.AsyncClient, db: asyncpg.Pool, settings: Settings, account: Account
) -> None:
    async with acquire(db) as conn:
        url = await mint_login_link(conn, settings, account.user.email)
    path = url.removeprefix(settings.public_base_url)
    confirm = await client.get(path)
    assert confirm.status_code == 200
    assert account.user.email in confirm.text
    token = path.split("token=")[1]
    again = await client.get(path)  # a GET does not use the link up
    used = await client.post(
        "/console/login/link", data={"token": token, "csrf_token": csrf_of(again.text)}
    )
    assert used.status_code == 303
    assert (await client.get("/console")).status_code == 200
    client.cookies.clear()
    page = await client.get(path)
    assert page.status_code == 410
    pre_csrf = client.cookies.get("cf_csrf") or ""
    replay = await client.post("/console/login/link", data={"token": token, "csrf_token": pre_csrf})
    assert replay.status_code == 410
    assert client.cookies.get("cf_session") is None


async def test_security_headers_and_escaping_of_hostile_content(
    client: httpx.AsyncClient, account: Account
) -> None:
    hostile = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"></div>'
    body = seed_file("<script>alert(1)</script> title", user_text=hostile, persona='"><b>p</b>')
    created = await client.post("/v1/conversations", json=body, headers=account.headers)
    assert created.status_code == 201, created.text
    await sign_in(client, account.key)
    for path in (
        f"/console/conversations/{created.json()['id']}",
        "/console/conversations?q=title",
    ):
        page = await client.get(path)
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert "<script>window.__pwned" not in page.text
        assert "<img src=x" not in page.text
        assert "&lt;script&gt;" in page.text
        assert " style=" not in page.text
        assert "<script>" not in page.text.replace('<script src="/console/static', "")


async def test_other_tenants_ids_are_404_pages(
    client: httpx.AsyncClient, db: asyncpg.Pool, account: Account
) -> None:
    async with acquire(db) as conn:
        other = await create_account(conn)
    theirs = await client.post("/v1/conversations", json=seed_file("theirs"), headers=other.headers)
    id = theirs.json()["id"]
    csrf = await sign_in(client, account.key)
    for path in (f"/console/conversations/{id}", f"/console/conversations/{id}/download"):
        page = await client.get(path)
        assert page.status_code == 404
        assert "text/html" in page.headers["content-type"]
        assert "theirs" not in page.text
    post = await client.post(
        f"/console/conversations/{id}/status", data={"status": "approved", "csrf_token": csrf}
    )
    assert post.status_code == 404
    mine = await client.get(f"/v1/conversations/{id}", headers=other.headers)
    assert mine.json()["status"] == "pending_review"
    assert (await client.get("/console/no-such-page")).status_code == 404
