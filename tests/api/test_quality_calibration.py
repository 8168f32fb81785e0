"""GET /v1/quality/calibration on a seeded set of reviewer decisions, numbers worked out by hand.

The ten judged, reviewed template conversations (R = rejected, A = approved):
    0.05 R  0.15 R  0.25 R  0.25 A  0.35 R  0.45 A  0.55 A  0.65 R  0.75 A  0.95 A
Around them: a pending one (no decision), a rejected one without a judge score, a deleted one,
a scenario-tier pair, and another tenant's rejected 0.9 (none of which may count by default).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from services.api.openapi_examples import REQUEST_EXAMPLES
from shared.db.pool import acquire, tenant_transaction
from tests.support.factories import Account, create_account, set_scores
from tests.support.seed_files import seed_file

DECISIONS = [
    (0.05, "rejected"), (0.15, "rejected"), (0.25, "rejected"), (0.25, "approved"),
    (0.35, "rejected"), (0.45, "approved"), (0.55, "approved"), (0.65, "rejected"),
    (0.75, "approved"), (0.95, "approved"),
]  # fmt: skip


async def _seed(
    client: httpx.AsyncClient, db: Any, account: Account, rows: list[dict[str, Any]]
) -> None:
    files = [seed_file(f"c-{i}", tier=row.get("tier", "template")) for i, row in enumerate(rows)]
    response = await client.post(
        "/v1/conversations/batch", json={"items": files}, headers=account.headers
    )
    assert response.json()["failed"] == 0, response.text
    ids = [result["id"] for result in response.json()["results"]]
    async with tenant_transaction(db, account.user.id) as conn:
        for id, row in zip(ids, rows, strict=True):
            columns = {k: v for k, v in row.items() if k not in ("tier", "deleted")}
            if "quality_overall" in columns:
                columns.setdefault("quality_source", "judge")
                columns.setdefault("judge_rubric_version", 1)
            await set_scores(conn, id, **columns)
            if row.get("deleted"):
                await conn.execute("UPDATE conversations SET deleted_at = now() WHERE id = $1", id)


@pytest.fixture
async def decisions(client: httpx.AsyncClient, db: Any, account: Account) -> None:
    rows: list[dict[str, Any]] = [{"quality_overall": q, "status": s} for q, s in DECISIONS]
    rows += [
        {"quality_overall": 0.1, "status": "pending_review"},
        {"status": "rejected"},  # a decision without a judge score
        {"quality_overall": 0.05, "status": "approved", "deleted": True},
        {"quality_overall": 0.12, "status": "approved", "tier": "scenario",
         "judge_rubric_version": 2},
        {"quality_overall": 0.82, "status": "rejected", "tier": "scenario",
         "judge_rubric_version": 2},
    ]  # fmt: skip
    await _seed(client, db, account, rows)
    async with acquire(db) as conn:
        other = await create_account(conn)
    await _seed(client, db, other, [{"quality_overall": 0.9, "status": "rejected"}])


async def _calibration(client: httpx.AsyncClient, account: Account, query: str = "") -> Any:
    response = await client.get(f"/v1/quality/calibration?{query}", headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_template_tier_numbers(
    client: httpx.AsyncClient, account: Account, decisions: None
) -> None:
    body = await _calibration(client, account, "tier=template")
    assert (body["reviewed"], body["approved"], body["rejected"]) == (10, 5, 5)
    assert body["reviewed_unjudged"] == 1
    rates = [(b["low"], b["count"], b["approved"], b["rejected"], b["approval_rate"])
             for b in body["buckets"]]  # fmt: skip
    assert rates == [
        (0.0, 1, 0, 1, 0.0), (0.1, 1, 0, 1, 0.0), (0.2, 2, 1, 1, 0.5), (0.3, 1, 0, 1, 0.0),
        (0.4, 1, 1, 0, 1.0), (0.5, 1, 1, 0, 1.0), (0.6, 1, 0, 1, 0.0), (0.7, 1, 1, 0, 1.0),
        (0.8, 0, 0, 0, None), (0.9, 1, 1, 0, 1.0),
    ]  # fmt: skip
    # Default threshold 0.3 flags 0.05R 0.15R 0.25R 0.25A: TP 3, FP 1; 0.35R and 0.65R slip
    # through (FN 2); four approvals pass (TN 4).
    assert body["agreement"] == {
        "threshold": 0.3, "true_positive": 3, "false_positive": 1, "false_negative": 2,
        "true_negative": 4, "precision": 0.75, "recall": 0.6, "f1": 0.6667, "accuracy": 0.7,
    }  # fmt: skip
    # Best F1: flag below 0.36 (catches 0.35R too): TP 4, FP 1, FN 1, TN 4 -> 0.8 all round.
    # Below 0.66 catches every rejection but also 0.45A and 0.55A: F1 10/13 = 0.769, lower.
    assert body["suggested"] == {
        "threshold": 0.36, "true_positive": 4, "false_positive": 1, "false_negative": 1,
        "true_negative": 4, "precision": 0.8, "recall": 0.8, "f1": 0.8, "accuracy": 0.8,
    }  # fmt: skip


async def test_threshold_parameter_and_every_tier(
    client: httpx.AsyncClient, account: Account, decisions: None
) -> None:
    body = await _calibration(client, account, "threshold=0.5")
    # All twelve judged decisions (scenario 0.12A and 0.82R included): flagged below 0.5 are
    # 0.05R 0.12A 0.15R 0.25R 0.25A 0.35R 0.45A -> TP 4, FP 3; FN 0.65R 0.82R; TN 0.55A 0.75A 0.95A.
    agreement = body["agreement"]
    assert body["reviewed"] == 12
    assert [agreement[k] for k in ("true_positive", "false_positive", "false_negative",
                                   "true_negative")] == [4, 3, 2, 3]  # fmt: skip
    assert agreement["precision"] == round(4 / 7, 4)
    assert agreement["recall"] == round(4 / 6, 4)
    assert agreement["accuracy"] == round(7 / 12, 4)
    # A score exactly at the threshold is not flagged (the flag rule is "below").
    at = await _calibration(client, account, "threshold=0.25&tier=template")
    assert at["agreement"]["true_positive"] == 2
    assert at["agreement"]["false_positive"] == 0


async def test_scenario_tier_and_rubric_filters(
    client: httpx.AsyncClient, account: Account, decisions: None
) -> None:
    scenario = await _calibration(client, account, "tier=scenario")
    assert (scenario["reviewed"], scenario["approved"], scenario["rejected"]) == (2, 1, 1)
    # 0.12A flagged (FP), 0.82R passed (FN): no threshold gets TP > 0 except flagging 0.82 too.
    assert scenario["agreement"]["precision"] == 0.0
    assert scenario["suggested"]["threshold"] == 0.83
    assert scenario["suggested"]["recall"] == 1.0
    by_rubric = await _calibration(client, account, "rubric_version=2")
    assert by_rubric["reviewed"] == 2
    both = await _calibration(client, account, "tier=scenario&tier=template")
    assert both["reviewed"] == 12


async def test_template_filter(
    client: httpx.AsyncClient, db: Any, account: Account, decisions: None
) -> None:
    created = await client.post(
        "/v1/templates", json=REQUEST_EXAMPLES["create_template"], headers=account.headers
    )
    assert created.status_code == 201, created.text
    template = created.json()["id"]
    async with tenant_transaction(db, account.user.id) as conn:
        # The two lowest-scored template decisions came from this template.
        await conn.execute(
            "UPDATE conversations SET template_id = $1 WHERE quality_overall < 0.2 "
            "AND tier = 'template' AND deleted_at IS NULL",
            uuid.UUID(template),
        )
    body = await _calibration(client, account, f"template_id={template}")
    assert (body["reviewed"], body["rejected"]) == (2, 2)
    assert body["agreement"]["true_positive"] == 2
    assert body["agreement"]["recall"] == 1.0


async def test_template_filter_and_nothing_to_compare(
    client: httpx.AsyncClient, account: Account, decisions: None
) -> None:
    body = await _calibration(client, account, "template_id=00000000-0000-4000-8000-000000000001")
    assert body["reviewed"] == 0
    assert body["suggested"] is None
    assert body["agreement"]["precision"] is None
    assert all(b["count"] == 0 and b["approval_rate"] is None for b in body["buckets"])


async def test_bad_parameters_are_422_listing_each(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await client.get(
        "/v1/quality/calibration?threshold=1.5&tier=gold&template_id=nope&rubric_version=x",
        headers=account.headers,
    )
    assert response.status_code == 422
    paths = sorted(d["path"] for d in response.json()["error"]["details"])
    assert paths == [
        "query.rubric_version", "query.template_id[0]", "query.threshold", "query.tier[0]",
    ]  # fmt: skip
    unknown = await client.get("/v1/quality/calibration?bucket=3", headers=account.headers)
    assert unknown.status_code == 422
    anonymous = await client.get("/v1/quality/calibration")
    assert anonymous.status_code == 401
