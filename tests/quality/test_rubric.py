"""The rubric API: built-in version 1, edits as new versions, every problem of a bad body."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import orjson

from shared.quality.rubric import BUILTIN, CRITERIA
from shared.runtime import WorkerResources
from tests.fakes.anthropic import FakeAnthropic
from tests.generator.harness import fake_requests, running_worker
from tests.quality.helpers import imported, judged, score
from tests.support.factories import Account

RUBRIC = "/v1/quality/rubric"


def _body() -> dict[str, Any]:
    """The built-in rubric as a PUT body."""
    return {
        "criteria": {
            name: {"description": c.description, "levels": dict(c.levels)}
            for name, c in BUILTIN.criteria.items()
        }
    }


async def test_every_tenant_starts_from_the_builtin_version(
    api: httpx.AsyncClient, account: Account
) -> None:
    response = await api.get(RUBRIC, headers=account.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["version"], body["builtin"]) == (1, True)
    assert list(body["criteria"]) == list(CRITERIA)
    assert body["criteria"]["coherence"]["scale"] == "0-1"
    assert list(body["criteria"]["coherence"]["levels"]) == ["0", "0.25", "0.5", "0.75", "1"]
    assert body["criteria"]["empathy"]["scale"] == "1-5"
    assert list(body["criteria"]["empathy"]["levels"]) == ["1", "2", "3", "4", "5"]
    versions = await api.get(f"{RUBRIC}/versions", headers=account.headers)
    assert versions.json()["current"] == 1
    assert [v["version"] for v in versions.json()["items"]] == [1]


async def test_an_edit_is_a_new_version_and_old_ones_stay_readable(
    api: httpx.AsyncClient, account: Account, other: Account
) -> None:
    edited = _body()
    edited["criteria"]["brand_voice"]["description"] = 'Sounds like "Acme", <b>never</b> pushy 🙂'
    edited["note"] = "brand voice for Acme, line one\nline two"
    first = await api.put(RUBRIC, json=edited, headers=account.headers)
    assert first.status_code == 200, first.text
    assert (first.json()["version"], first.json()["builtin"]) == (2, False)
    edited["criteria"]["clarity"]["levels"]["3"] = "Understandable, with effort, commas, and all"
    second = await api.put(RUBRIC, json=edited, headers=account.headers)
    assert second.json()["version"] == 3

    current = (await api.get(RUBRIC, headers=account.headers)).json()
    assert current["version"] == 3
    assert current["criteria"]["brand_voice"]["description"].startswith('Sounds like "Acme"')
    history = (await api.get(f"{RUBRIC}/versions", headers=account.headers)).json()
    assert [v["version"] for v in history["items"]] == [3, 2, 1]
    assert history["items"][1]["note"] == "brand voice for Acme, line one\nline two"
    old = (await api.get(f"{RUBRIC}/versions/2", headers=account.headers)).json()
    assert old["criteria"]["clarity"]["levels"]["3"] == BUILTIN.criteria["clarity"].levels["3"]
    builtin = (await api.get(f"{RUBRIC}/versions/1", headers=account.headers)).json()
    assert builtin["builtin"] is True
    missing = await api.get(f"{RUBRIC}/versions/4", headers=account.headers)
    assert missing.status_code == 404
    # Another tenant's rubric is its own.
    theirs = await api.get(RUBRIC, headers=other.headers)
    assert theirs.json()["version"] == 1
    assert (await api.get(f"{RUBRIC}/versions/2", headers=other.headers)).status_code == 404


async def test_a_bad_rubric_lists_every_problem_and_stores_nothing(
    api: httpx.AsyncClient, account: Account
) -> None:
    bad = _body()
    del bad["criteria"]["relevance"]
    bad["criteria"]["tone"] = {"description": "x", "levels": {}}
    del bad["criteria"]["coherence"]["levels"]["0.5"]
    bad["criteria"]["coherence"]["levels"]["0.6"] = "between"
    bad["criteria"]["empathy"]["description"] = "   "
    bad["criteria"]["clarity"]["description"] = "x" * 2001
    bad["criteria"]["clarity"]["levels"]["2"] = "nul \u0000 inside"
    response = await api.put(RUBRIC, json=bad, headers=account.headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    paths = {d["path"] for d in error["details"]}
    assert paths == {
        "$.criteria.relevance",
        "$.criteria.tone",
        "$.criteria.coherence.levels.0.5",
        "$.criteria.coherence.levels.0.6",
        "$.criteria.empathy.description",
        "$.criteria.clarity.description",
        "$.criteria.clarity.levels.2",
    }
    history = (await api.get(f"{RUBRIC}/versions", headers=account.headers)).json()
    assert [v["version"] for v in history["items"]] == [1]


async def test_malformed_rubric_bodies_are_422_not_500(
    api: httpx.AsyncClient, account: Account
) -> None:
    wrong_types = copy.deepcopy(_body())
    wrong_types["criteria"]["coherence"]["description"] = 5
    wrong_types["criteria"]["empathy"]["levels"] = ["1", "2"]
    bodies: list[bytes] = [
        b'{"criteria": {"coherence": {"description": "trunc',
        b"[]",
        b'{"criteria": "everything"}',
        orjson.dumps({**_body(), "extra": True}),
        orjson.dumps(wrong_types),
        orjson.dumps({"criteria": {}}),
    ]
    for raw in bodies:
        response = await api.put(
            RUBRIC, content=raw, headers={**account.headers, "content-type": "application/json"}
        )
        assert response.status_code == 422, (raw[:60], response.text)
        assert response.json()["error"]["details"], raw[:60]
    typed = await api.put(RUBRIC, json=wrong_types, headers=account.headers)
    typed_paths = {d["path"] for d in typed.json()["error"]["details"]}
    assert len(typed_paths) >= 2  # both type errors, not just the first
    empty = await api.put(RUBRIC, json={"criteria": {}}, headers=account.headers)
    assert len(empty.json()["error"]["details"]) == len(CRITERIA)


async def test_scores_record_the_rubric_version_the_judge_read(
    api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    edited = _body()
    edited["criteria"]["coherence"]["description"] = "EDITED: every turn follows on."
    assert (await api.put(RUBRIC, json=edited, headers=account.headers)).status_code == 200
    cid = await imported(api, account, user_text="[judge all=0.6]")
    async with running_worker(resources):
        await score(api, account, cid)
    assert (await judged(resources.pool, account, cid))["judge_rubric_version"] == 2
    [sent] = [r.body for r in fake_requests(claude)]
    system = sent["system"][0]["text"]
    assert "RUBRIC (version 2)" in system
    assert "EDITED: every turn follows on." in system
