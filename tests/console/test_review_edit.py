"""The review page's edit forms over HTTP: inline turn edits, versions, regenerate options."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
from markupsafe import escape

from shared.db.pool import acquire
from tests.console.support import sign_in
from tests.support.factories import Account, create_account
from tests.support.seed_files import seed_file

HOSTILE = '<script>window.__pwned=1</script> "quoted", 🙂\nsecond line'


async def _import(client: httpx.AsyncClient, account: Account, name: str) -> dict[str, Any]:
    created = await client.post("/v1/conversations", json=seed_file(name), headers=account.headers)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def test_inline_edit_with_htmx(client: httpx.AsyncClient, account: Account) -> None:
    created = await _import(client, account, "console-edit")
    id = created["id"]
    csrf = await sign_in(client, account.key)
    page = await client.get(f"/console/conversations/{id}")
    assert 'action="/console/conversations/' + id + '/turns/2"' in page.text
    assert "Version 1" in page.text
    form = {"csrf_token": csrf, "content": HOSTILE, "expected_version": "1"}
    refused = await client.post(f"/console/conversations/{id}/turns/2", data={"content": "x"})
    assert refused.status_code == 403
    edited = await client.post(
        f"/console/conversations/{id}/turns/2", data=form, headers={"HX-Request": "true"}
    )
    assert edited.status_code == 200, edited.text
    assert '<section class="transcript" id="transcript"' in edited.text
    assert str(escape(HOSTILE)) in edited.text
    assert "<script>window.__pwned" not in edited.text
    assert 'id="versions" aria-label="Versions" hx-swap-oob="true"' in edited.text
    assert "Version 2" in edited.text
    assert 'class="add">+&lt;script&gt;' in edited.text
    api = await client.get(f"/v1/conversations/{id}", headers=account.headers)
    assert (api.json()["document_version"], api.json()["turns"][1]["content"]) == (2, HOSTILE)

    old = await client.get(f"/console/conversations/{id}/versions/1")
    assert old.status_code == 200
    assert str(escape(created["turns"][1]["content"])) in old.text
    assert "earlier version, read only" in old.text
    assert (await client.get(f"/console/conversations/{id}/versions/3")).status_code == 404
    assert (await client.get(f"/console/conversations/{id}/versions/0")).status_code == 404


async def test_edit_errors_show_next_to_the_field(
    client: httpx.AsyncClient, account: Account
) -> None:
    id = (await _import(client, account, "console-edit-errors"))["id"]
    csrf = await sign_in(client, account.key)
    blank = {"csrf_token": csrf, "content": " \u200b ", "expected_version": "1"}
    plain = await client.post(f"/console/conversations/{id}/turns/2", data=blank)
    assert plain.status_code == 422
    assert 'id="edit-2-error"' in plain.text
    assert "must not be blank" in plain.text
    assert "<html" in plain.text
    htmx = await client.post(
        f"/console/conversations/{id}/turns/2", data=blank, headers={"HX-Request": "true"}
    )
    assert htmx.status_code == 422
    assert htmx.text.lstrip().startswith('<section class="transcript"')
    assert 'aria-invalid="true" aria-describedby="edit-2-error"' in htmx.text
    stale = {"csrf_token": csrf, "content": "new text", "expected_version": "7"}
    conflict = await client.post(f"/console/conversations/{id}/turns/2", data=stale)
    assert conflict.status_code == 422
    assert "is at version 1, not 7" in conflict.text
    saved = await client.post(
        f"/console/conversations/{id}/turns/2",
        data={"csrf_token": csrf, "content": "new text", "expected_version": "1"},
    )
    assert saved.status_code == 303
    assert saved.headers["location"].endswith(f"/console/conversations/{id}#turn-2")


async def test_regenerate_form_errors(client: httpx.AsyncClient, account: Account) -> None:
    created = await _import(client, account, "console-regen")
    id, count = created["id"], created["turn_count"]
    csrf = await sign_in(client, account.key)
    page = await client.get(f"/console/conversations/{id}")
    assert f'name="from_turn" type="number" min="1" max="{count}"' in page.text
    assert 'name="instructions"' in page.text
    bad = await client.post(
        f"/console/conversations/{id}/regenerate",
        data={"csrf_token": csrf, "from_turn": str(count + 5), "instructions": "less formal"},
    )
    assert bad.status_code == 422
    assert 'id="regen-from-error"' in bad.text
    assert f"has {count} turns" in bad.text
    assert ">less formal</textarea>" in bad.text
    long = await client.post(
        f"/console/conversations/{id}/regenerate",
        data={"csrf_token": csrf, "from_turn": "2", "instructions": "x" * 2001},
    )
    assert long.status_code == 422
    assert 'id="regen-instructions-error"' in long.text
    assert "Template parameters" not in page.text  # imported: no template, no parameters
    hot = await client.post(
        f"/console/conversations/{id}/regenerate",
        data={"csrf_token": csrf, "temperature": "warm", "instructions": "less formal"},
    )
    assert hot.status_code == 422
    assert 'id="regen-temperature-error"' in hot.text
    assert 'name="temperature" inputmode="decimal"' in hot.text
    assert 'value="warm"' in hot.text
    ok = await client.post(
        f"/console/conversations/{id}/regenerate",
        data={"csrf_token": csrf, "from_turn": "3", "instructions": "the client pushes back twice"},
    )
    assert ok.status_code == 303
    assert ok.headers["location"].startswith("/console/jobs/")


async def test_score_with_the_judge_opens_its_quality_check_job(
    client: httpx.AsyncClient, account: Account, db: asyncpg.Pool
) -> None:
    async with acquire(db) as conn:
        other = await create_account(conn)
    id = (await _import(client, account, "console-score"))["id"]
    csrf = await sign_in(client, account.key)
    page = await client.get(f"/console/conversations/{id}")
    assert f'action="/console/conversations/{id}/score"' in page.text
    refused = await client.post(f"/console/conversations/{id}/score")
    assert refused.status_code == 403  # no CSRF token
    opened = await client.post(f"/console/conversations/{id}/score", data={"csrf_token": csrf})
    assert opened.status_code == 303
    job_id = opened.headers["location"].removeprefix("/console/jobs/")
    job = await client.get(f"/v1/generation-jobs/{job_id}", headers=account.headers)
    assert job.status_code == 200, job.text
    assert job.json()["total_items"] == 1
    assert (await client.get(opened.headers["location"])).status_code == 200
    stranger = (await _import(client, other, "console-score-other"))["id"]
    missing = await client.post(
        f"/console/conversations/{stranger}/score", data={"csrf_token": csrf}
    )
    assert missing.status_code == 404


async def test_bulk_score_from_the_table_opens_one_job_for_the_selection(
    client: httpx.AsyncClient, account: Account
) -> None:
    ids = [(await _import(client, account, f"console-bulk-score-{i}"))["id"] for i in range(3)]
    csrf = await sign_in(client, account.key)
    form = {"csrf_token": csrf, "action": "score", "ids": ids[:2]}
    opened = await client.post("/console/conversations/bulk", data=form)
    assert opened.status_code == 303, opened.text
    job_id = opened.headers["location"].removeprefix("/console/jobs/")
    job = await client.get(f"/v1/generation-jobs/{job_id}", headers=account.headers)
    assert job.json()["total_items"] == 2
    stranger = "00000000-0000-4000-8000-0000000000aa"
    unknown = {"csrf_token": csrf, "action": "score", "ids": [stranger]}
    refused = await client.post("/console/conversations/bulk", data=unknown)
    assert (refused.status_code, refused.headers["location"]) == (303, "/console/conversations")
