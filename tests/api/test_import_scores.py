"""Imported files keep the storage spec's 1-5 criteria as score columns (mean over the pairs) and
their quality score as `imported`; a bad score anywhere is a 422 naming every one, none stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.factories import Account
from tests.support.seed_files import fixture_bytes, seed_file


def _criteria(file: dict[str, Any], values: list[dict[str, Any] | None]) -> dict[str, Any]:
    for pair, criteria in zip(file["training_pairs"], values, strict=True):
        if criteria is None:
            pair["training_metadata"].pop("quality_criteria", None)
        else:
            pair["training_metadata"]["quality_criteria"] = criteria
    return file


async def test_fixture_scores_become_columns(client: httpx.AsyncClient, account: Account) -> None:
    raw = fixture_bytes("fp-anxious-investor-001.json")
    response = await client.post("/v1/conversations", content=raw, headers=account.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    # Four pairs: empathy 4.8 4.3 4.4 4.9, clarity 4.5 4.8 4.9 4.6, appropriateness
    # 4.7 4.6 4.8 4.8, brand voice 4.4 4.5 4.7 4.9; overall 4.6 4.5 4.7 4.8 (x2 on 0-10).
    assert body["empathy_score"] == 4.6
    assert body["clarity_score"] == 4.7
    assert body["appropriateness_score"] == 4.725
    assert body["brand_voice_score"] == 4.625
    assert body["quality_score"] == 9.3
    assert body["quality_source"] == "imported"
    # The judge's own 0-1 scores are not in a seed file: left empty, never guessed.
    assert body["coherence_score"] is None
    assert body["quality_overall"] is None
    listed = await client.get(
        "/v1/conversations?quality_source=imported&empathy_score_min=4.6&sort=-brand_voice_score",
        headers=account.headers,
    )
    assert [item["id"] for item in listed.json()["items"]] == [body["id"]]


async def test_mean_is_over_the_pairs_that_carry_a_criterion(
    client: httpx.AsyncClient, account: Account
) -> None:
    file = _criteria(
        seed_file("partial", pairs=3),
        [
            {"empathy_score": 2, "clarity_score": 5},
            None,
            {"empathy_score": 3.5, "brand_voice_alignment": 1},
        ],
    )
    response = await client.post("/v1/conversations", json=file, headers=account.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["empathy_score"], body["clarity_score"]) == (2.75, 5.0)
    assert (body["appropriateness_score"], body["brand_voice_score"]) == (None, 1.0)


async def test_a_file_without_scores_has_no_source(
    client: httpx.AsyncClient, account: Account
) -> None:
    file = seed_file("unscored")
    for pair in file["training_pairs"]:
        del pair["training_metadata"]
    response = await client.post("/v1/conversations", json=file, headers=account.headers)
    body = response.json()
    assert (body["quality_score"], body["quality_source"], body["empathy_score"]) == (
        None, None, None,
    )  # fmt: skip


@pytest.mark.parametrize("endpoint", ["single", "batch"])
async def test_ugly_scores_are_422_listing_every_one(
    client: httpx.AsyncClient, account: Account, endpoint: str
) -> None:
    file = _criteria(
        seed_file("ugly", pairs=3),
        [
            {"empathy_score": "4.5", "clarity_score": 7},
            {"appropriateness_score": True, "brand_voice_alignment": 0},
            {"empathy_score": -1, "clarity_score": [4]},
        ],
    )
    file["training_pairs"][2]["training_metadata"]["quality_score"] = 11
    if endpoint == "single":
        response = await client.post("/v1/conversations", json=file, headers=account.headers)
        assert response.status_code == 422, response.text
        details = response.json()["error"]["details"]
    else:
        response = await client.post(
            "/v1/conversations/batch", json={"items": [file]}, headers=account.headers
        )
        assert response.json()["failed"] == 1
        details = response.json()["results"][0]["error"]["details"]
    base = "$.training_pairs[{}].training_metadata"
    paths = sorted(d["path"] for d in details)
    assert paths == sorted([
        f"{base.format(0)}.quality_criteria.empathy_score",
        f"{base.format(0)}.quality_criteria.clarity_score",
        f"{base.format(1)}.quality_criteria.appropriateness_score",
        f"{base.format(1)}.quality_criteria.brand_voice_alignment",
        f"{base.format(2)}.quality_criteria.empathy_score",
        f"{base.format(2)}.quality_criteria.clarity_score",
        f"{base.format(2)}.quality_score",
    ])  # fmt: skip
    listed = await client.get("/v1/conversations", headers=account.headers)
    assert listed.json()["total"] == 0


async def test_nan_and_infinity_are_refused(client: httpx.AsyncClient, account: Account) -> None:
    """Python's JSON reader (the batch body) accepts NaN and Infinity; a score must not."""
    file = _criteria(seed_file("nan", pairs=2), [{"empathy_score": 4.0}, {"clarity_score": 4.0}])
    text = httpx.Request("POST", "/", json={"items": [file]}).content.decode()
    text = text.replace('"empathy_score": 4.0', '"empathy_score": NaN', 1)
    text = text.replace('"empathy_score":4.0', '"empathy_score":NaN', 1)
    text = text.replace('"clarity_score": 4.0', '"clarity_score": Infinity', 1)
    text = text.replace('"clarity_score":4.0', '"clarity_score":Infinity', 1)
    assert "NaN" in text
    assert "Infinity" in text
    response = await client.post(
        "/v1/conversations/batch",
        content=text,
        headers={**account.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert result["ok"] is False
    paths = sorted(d["path"] for d in result["error"]["details"])
    assert paths == [
        "$.training_pairs[0].training_metadata.quality_criteria.empathy_score",
        "$.training_pairs[1].training_metadata.quality_criteria.clarity_score",
    ]
