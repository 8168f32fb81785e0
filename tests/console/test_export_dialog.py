"""The export dialog at HTTP level: every format and target previews, problems are listed,
presets save and load, the last-used config comes back, partial exports show their warnings."""

from __future__ import annotations

import html
import json
import re
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from shared.db.pool import acquire, tenant_transaction
from tests.console.support import sign_in
from tests.support.factories import Account, create_account
from tests.support.seed_files import seed_file

SYSTEM = "You are Elena Morales, a fee-only CFP."


async def _approved(client: httpx.AsyncClient, account: Account, count: int) -> list[str]:
    files = [seed_file(f"dialog-{i}", user_text=f'He said "hi", <b>bold</b> 💸 #{i}')
             for i in range(count)]  # fmt: skip
    batch = await client.post("/v1/conversations/batch", json={"items": files},
                              headers=account.headers)  # fmt: skip
    ids = [str(item["id"]) for item in batch.json()["results"]]
    await client.post("/v1/conversations/bulk-action", json={"action": "approve", "ids": ids},
                      headers=account.headers)  # fmt: skip
    return ids


def _form(csrf: str, **fields: Any) -> dict[str, Any]:
    """The dialog's form as a browser sends it (checkboxes "on" when ticked)."""
    base = {"csrf_token": csrf, "scope": "all_approved", "format": "jsonl", "target": "openai",
            "include_quality_scores": "on", "include_full_content": "on", "license": "",
            "split_validation": "0.1", "split_seed": "42", "split_stratify": ""}  # fmt: skip
    return {**base, **fields}


def _preview_text(page: str) -> str:
    match = re.search(r'<pre class="prompt" id="preview-content">(.*?)</pre>', page, re.S)
    assert match, page[:3000]
    return html.unescape(match.group(1))


CASES = [
    ({"format": "jsonl", "target": "openai"}, lambda lines: "messages" in lines[0]),
    ({"format": "jsonl", "target": "bedrock-claude", "include_quality_scores": ""},
     lambda lines: set(lines[0]) == {"system", "messages"} and lines[0]["system"] == SYSTEM),
    ({"format": "jsonl", "target": "sharegpt"},
     lambda lines: lines[0]["conversations"][0]["from"] in {"system", "human"}),
    ({"format": "jsonl", "target": "trl", "fold_system": "on", "include_quality_scores": ""},
     lambda lines: lines[0]["messages"][0]["role"] == "user"
     and lines[0]["messages"][0]["content"].startswith(SYSTEM)),
    ({"format": "jsonl", "target": "hf-chat", "include_quality_scores": ""},
     lambda lines: lines[0]["messages"][0]["role"] == "system"),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "check"), CASES, ids=[c[0]["target"] for c in CASES])
async def test_preview_of_each_jsonl_target(
    client: httpx.AsyncClient, account: Account, fields: dict[str, Any], check: Any
) -> None:
    await _approved(client, account, 4)
    csrf = await sign_in(client, account.key)
    page = await client.post("/console/exports/preview", data=_form(csrf, **fields))
    assert page.status_code == 200
    assert 'id="preview-total">4<' in page.text, page.text[:2000]
    shown = _preview_text(page.text)
    lines = [json.loads(line) for line in shown.splitlines()]
    assert len(lines) == 3
    assert check(lines), lines[0]
    assert 'He said \\"hi\\", <b>bold</b> 💸' in shown  # byte-exact in the file, text on the page


@pytest.mark.parametrize(
    ("fmt", "marker"),
    [
        ("parquet", "# messages: list<"),
        ("txt", "USER"),
        ("csv", "turn_number"),
        ("markdown", "#"),
        ("json", '"conversations"'),
    ],
)
async def test_preview_of_each_format_with_a_split(
    client: httpx.AsyncClient, account: Account, fmt: str, marker: str
) -> None:
    await _approved(client, account, 3)
    csrf = await sign_in(client, account.key)
    fields = {"format": fmt, "split": "on", "split_validation": "0.34", "split_stratify": "tier",
              "dataset_card": "on", "license": "cc-by-4.0"}  # fmt: skip
    page = await client.post("/console/exports/preview", data=_form(csrf, **fields))
    assert page.status_code == 200
    assert 'id="preview-split"' in page.text, page.text[:3000]
    assert f"train.{fmt}" in page.text
    assert "README.md" in page.text
    shown = _preview_text(page.text)
    assert marker.lower() in shown.lower(), shown[:2000]
    assert "&lt;b&gt;bold&lt;/b&gt;" in page.text or "<b>" not in page.text


async def test_problems_are_all_listed(client: httpx.AsyncClient, account: Account) -> None:
    await _approved(client, account, 1)
    csrf = await sign_in(client, account.key)
    bad = _form(csrf, format="csv", target="bedrock-claude", dataset_card="on", license="MIT")
    page = await client.post("/console/exports/preview", data=bad)
    assert "target &#39;bedrock-claude&#39; needs format &#39;jsonl&#39;" in page.text, page.text
    assert "dataset_card needs a split" in page.text
    refused = await client.post("/console/exports", data=bad)
    assert refused.status_code == 422
    assert 'id="dialog-problems"' in refused.text
    assert "dataset_card needs a split" in refused.text
    assert 'value="bedrock-claude" selected' in refused.text  # the form keeps what was chosen
    split = _form(csrf, split="on", split_validation="1.5", split_seed="-3")
    numbers = await client.post("/console/exports/preview", data=split)
    assert "split.validation" in numbers.text
    assert "split.seed" in numbers.text


async def test_recommendation_follows_the_choices(
    client: httpx.AsyncClient, account: Account
) -> None:
    await _approved(client, account, 1)
    csrf = await sign_in(client, account.key)
    plain = await client.post("/console/exports/preview", data=_form(csrf))
    assert "JSONL: what fine-tuning APIs" in plain.text
    card = _form(csrf, format="parquet", split="on", dataset_card="on")
    assert (
        "Parquet: a split with a dataset card"
        in (await client.post("/console/exports/preview", data=card)).text
    )


async def test_presets_save_load_and_last_used(
    client: httpx.AsyncClient, account: Account, db: asyncpg.Pool
) -> None:
    ids = await _approved(client, account, 3)
    csrf = await sign_in(client, account.key)
    fresh = await client.get("/console/exports/new")
    assert 'id="last-used"' not in fresh.text
    bedrock = _form(csrf, target="bedrock-claude", include_quality_scores="",
                    preset_name='Bedrock "claude" <v2>')  # fmt: skip
    saved = await client.post("/console/exports/presets", data=bedrock)
    assert saved.status_code == 200, saved.text[:3000]
    assert "Saved preset “Bedrock &#34;claude&#34; &lt;v2&gt;”" in saved.text
    again = await client.post("/console/exports/presets", data=bedrock)
    assert again.status_code == 409
    assert "already exists" in again.text
    unnamed = await client.post("/console/exports/presets", data={**bedrock, "preset_name": " "})
    assert unnamed.status_code == 422
    listed = (await client.get("/v1/export-presets", headers=account.headers)).json()
    [preset] = listed["items"]
    assert preset["config"]["target"] == "bedrock-claude"
    loaded = await client.post(
        "/console/exports/dialog", data={"csrf_token": csrf, "preset_id": preset["id"]}
    )
    assert loaded.status_code == 200
    assert 'value="bedrock-claude" selected' in loaded.text
    assert 'name="include_quality_scores" checked' not in loaded.text
    assert re.search(rf'value="{preset["id"]}" selected', loaded.text)
    assert (
        await client.post("/console/exports/dialog", data={"csrf_token": csrf})
    ).status_code == 422
    async with acquire(db) as conn:
        other = await create_account(conn)
    async with tenant_transaction(db, other.user.id) as conn:
        theirs = await conn.fetchval(
            "INSERT INTO export_presets (owner_id, name, config) VALUES ($1, 'x', $2) RETURNING id",
            other.user.id, {"scope": "all", "format": "csv"},
        )  # fmt: skip
    stolen = await client.post(
        "/console/exports/dialog", data={"csrf_token": csrf, "preset_id": str(theirs)}
    )
    assert stolen.status_code == 404
    started = await client.post(
        "/console/exports",
        data=_form(csrf, format="parquet", include_quality_scores="", split="on",
                   split_validation="0.25", split_seed="7", split_stratify="tier"),
    )  # fmt: skip
    assert started.status_code == 303, started.text[:3000]
    remembered = await client.get("/console/exports/new")
    assert 'id="last-used"' in remembered.text
    assert 'name="format" value="parquet" checked' in remembered.text
    assert 'id="f-split" checked' in remembered.text
    assert 'name="split_seed" type="number" min="0" step="1" value="7"' in remembered.text
    everything = await client.post(
        "/console/exports", data=_form(csrf, scope="all", format="csv")
    )  # the last-used scope is "all" now, but a selection or a filter comes first
    assert everything.status_code == 303
    assert 'name="scope" value="all" checked' in (await client.get("/console/exports/new")).text
    chosen = await client.post(
        "/console/conversations/bulk", data={"csrf_token": csrf, "action": "export", "ids": ids[:2]}
    )
    assert 'name="scope" value="selected" checked' in chosen.text
    assert 'name="format" value="csv" checked' in chosen.text
    filtered = await client.get("/console/exports/new", params={"filter": "tier=template"})
    assert 'name="scope" value="filtered" checked' in filtered.text


async def test_partial_export_in_history_and_progress(
    client: httpx.AsyncClient, account: Account, db: asyncpg.Pool
) -> None:
    await _approved(client, account, 2)
    made = await client.post(
        "/v1/exports", json={"config": {"scope": "all_approved", "format": "jsonl"}},
        headers=account.headers,
    )  # fmt: skip
    export_id = made.json()["id"]
    failure = {"id": str(uuid.uuid4()), "conversation_id": "broken <one>", "reason": "bad turn"}
    async with tenant_transaction(db, account.user.id) as conn:
        await conn.execute(
            """UPDATE export_logs SET status = 'completed', partial = true,
                      render_failure_count = 1, render_failures = $2, conversation_count = 1,
                      warnings = $3, split_counts = '{"train": 1, "validation": 0}',
                      progress_percent = 100, completed_at = now(), started_at = now()
                WHERE id = $1""",
            uuid.UUID(export_id), [failure],
            ["1 conversation could not be rendered <and is not in the file>"],
        )  # fmt: skip
    await sign_in(client, account.key)
    history = await client.get("/console/exports")
    row = re.search(rf'<tr id="export-{export_id}">(.*?)</tr>', history.text, re.S)
    assert row, history.text[:3000]
    assert "partial" in row.group(1)
    assert "could not be rendered &lt;and is not in the file&gt;" in row.group(1)
    assert "split 1/0" in row.group(1)
    progress = await client.get(f"/console/exports/{export_id}")
    assert 'id="export-partial"' in progress.text
    assert 'id="export-failures">1<' in progress.text
    assert "broken &lt;one&gt;" in progress.text
    assert "train 1 · validation 0" in progress.text
