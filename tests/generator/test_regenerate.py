"""Regenerate from a turn, with instructions and changed parameters, through the fake Claude."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
import pytest

from shared.runtime import WorkerResources
from tests.fakes.anthropic import FakeAnthropic
from tests.generator.harness import (
    conversations,
    fake_requests,
    plain_items,
    rows,
    running_worker,
    wait_batch,
)
from tests.support.factories import Account

INSTRUCTIONS = 'Less formal, please: "the client pushes back twice", <script>x</script> 🙂'


async def _generated(
    api: httpx.AsyncClient, account: Account, resources: WorkerResources, body: dict[str, Any]
) -> dict[str, Any]:
    created = await api.post("/v1/generation-jobs", json=body, headers=account.headers)
    assert created.status_code == 202, created.text
    await wait_batch(api, account.headers, created.json()["id"])
    [row] = await conversations(resources.pool, account.user.id, created.json()["id"])
    return row


async def _turns(resources: WorkerResources, owner: UUID, id: UUID) -> list[dict[str, Any]]:
    return await rows(
        resources.pool, owner,
        "SELECT turn_number, role, content, token_count, char_count, word_count, "
        "sentence_count, metadata FROM conversation_turns WHERE conversation_id = $1 "
        "ORDER BY turn_number",
        id,
    )  # fmt: skip


async def _regenerate(
    api: httpx.AsyncClient, account: Account, id: Any, body: dict[str, Any]
) -> httpx.Response:
    return await api.post(f"/v1/conversations/{id}/regenerate", json=body, headers=account.headers)


async def test_from_turn_keeps_earlier_turns_byte_identical(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    async with running_worker(resources):
        original = await _generated(gen_api, account, resources, plain_items(1))
        body = {"from_turn": 5, "instructions": INSTRUCTIONS, "parameters": {"emotion": "wary"}}
        response = await _regenerate(gen_api, account, original["id"], body)
        assert response.status_code == 202, response.text
        await wait_batch(gen_api, account.headers, response.json()["id"])
    [child] = await conversations(resources.pool, account.user.id, response.json()["id"])
    assert (child["parent_id"], child["parent_type"]) == (original["id"], "conversation")
    assert child["quality_score"] is not None
    before = await _turns(resources, account.user.id, original["id"])
    after = await _turns(resources, account.user.id, child["id"])
    assert before[0]["role"] == "system"
    assert after[:4] == before[:4]
    assert [t["content"].encode() for t in after[:4]] == [t["content"].encode() for t in before[:4]]
    assert after[4]["content"] != before[4]["content"]
    roles = [t["role"] for t in after[1:]]
    assert roles == ["user", "assistant"] * (len(roles) // 2) + ["user"] * (len(roles) % 2)

    first, second = fake_requests(claude)
    prompt = second.body["messages"][0]["content"]
    for kept in before[1:4]:
        assert kept["content"] in prompt
    assert before[4]["content"] not in prompt
    assert INSTRUCTIONS in prompt
    assert "wary" in prompt
    assert "wary" not in first.body["messages"][0]["content"]
    assert "The first new turn is spoken by the assistant." in prompt
    assert second.body["system"] == first.body["system"]


async def test_instructions_alone_regenerate_the_whole_conversation(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    async with running_worker(resources):
        original = await _generated(gen_api, account, resources, plain_items(1))
        response = await _regenerate(gen_api, account, original["id"], {"instructions": "shorter"})
        assert response.status_code == 202, response.text
        await wait_batch(gen_api, account.headers, response.json()["id"])
    [child] = await conversations(resources.pool, account.user.id, response.json()["id"])
    before = await _turns(resources, account.user.id, original["id"])
    after = await _turns(resources, account.user.id, child["id"])
    assert after[0] == before[0]  # the same system prompt, as turn 1
    assert after[1]["content"] != before[1]["content"]
    prompt = fake_requests(claude)[1].body["messages"][0]["content"]
    assert "shorter" in prompt
    assert "first new turn" not in prompt


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        ({"from_turn": 0}, {"$.from_turn"}),
        ({"from_turn": -3, "instructions": "   "}, {"$.from_turn", "$.instructions"}),
        ({"instructions": "\u200b\u200b"}, {"$.instructions"}),
        ({"instructions": "x" * 2001}, {"$.instructions"}),
        ({"instructions": "a\u0000b"}, {"$.instructions"}),
        ({"parameters": {"emotion": {"nested": 1}}}, {"$.parameters.emotion"}),
        ({"from_turn": 2, "unknown": 1}, {"$.unknown"}),
    ],
)
async def test_bad_input_is_422(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources,
    body: dict[str, Any], paths: set[str],
) -> None:  # fmt: skip
    async with running_worker(resources):
        original = await _generated(gen_api, account, resources, plain_items(1))
    refused = await _regenerate(gen_api, account, original["id"], body)
    assert refused.status_code == 422, refused.text
    found = {d["path"] for d in refused.json()["error"]["details"]}
    # A union type's errors name the member after the field: $.parameters.emotion.float, ...
    assert all(any(f == p or f.startswith(f"{p}.") for f in found) for p in paths), found


async def test_every_problem_in_one_422(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources
) -> None:
    template = await gen_api.post(
        "/v1/templates",
        json={"name": "tone-template", "user_prompt_template": "Talk in a {{tone}} tone.",
              "variables": [{"name": "tone", "default": "warm",
                             "allowed_values": ["warm", "brisk"]}]},
        headers=account.headers,
    )  # fmt: skip
    assert template.status_code == 201, template.text
    job = {"items": [{"template_id": template.json()["id"]}]}
    async with running_worker(resources):
        original = await _generated(gen_api, account, resources, job)
    count = len(await _turns(resources, account.user.id, original["id"]))
    refused = await _regenerate(
        gen_api, account, original["id"], {"from_turn": count + 1, "parameters": {"tone": "icy"}}
    )
    assert refused.status_code == 422
    details = refused.json()["error"]["details"]
    assert {d["path"] for d in details} == {"$.from_turn", "$.parameters.tone"}
    assert f"has {count} turns" in next(d for d in details if d["path"] == "$.from_turn")["message"]
    last = await _regenerate(gen_api, account, original["id"], {"from_turn": count})
    assert last.status_code == 202, last.text
