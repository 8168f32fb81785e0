"""Valid example requests per operation, and every one-field corruption of them."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from tests.contract.strategies import leaf_paths, replace
from tests.support.seed_files import seed_file

# Every value is sent in place of every field: NUL, lone surrogates, null, extreme numbers.
SWEEP: list[Any] = [
    None, "", "\x00", "a\x00b", "\ud800", "x" * 100_000, True, [], {},
    5e-324, 1e308, -1, 1_000_000, 999_999.9999995, 2**31, 2**63, 2**70,
]  # fmt: skip
QUERY_SWEEP: list[Any] = ["\x00", "\ud800", "", "x" * 8000, -1, 5e-324, 1e308, 2**31, 2**70]
UNIQUE = "<unique>"
_counter = itertools.count()


def examples(ids: dict[str, str]) -> dict[tuple[str, str], Any]:
    """A valid body for each operation that takes one (names made unique per request)."""
    template, conversation = ids["template_id"], ids["id"]
    variable = {"name": "x", "required": False, "default": "d", "allowed_values": ["d", "e"],
                "description": "v"}  # fmt: skip
    template_body = {
        "name": UNIQUE, "user_prompt_template": "Hi {{x}}", "system_prompt": "s",
        "variables": [variable], "quality_threshold": 6, "default_temperature": 0.5,
        "default_max_tokens": 100, "complexity_baseline": 3, "rating": 4.5,
        "applicable_personas": ["p"], "category": "c", "is_active": True,
    }  # fmt: skip
    scenario = {
        "name": UNIQUE, "parent_template_id": template, "complexity": 3, "estimated_turns": 10,
        "parameter_values": {"x": 1}, "objectives": ["o"], "tags": ["t"], "context": "c",
    }  # fmt: skip
    edge_case = {"name": UNIQUE, "priority": 3, "risk_level": "high",
                 "parent_template_id": template, "test_input": "i", "tested": True}  # fmt: skip
    item = {"template_id": template, "parameters": {"x": "d"}, "temperature": 0.5,
            "max_tokens": 100, "persona": "p"}  # fmt: skip
    job = {"items": [item], "concurrency": 2, "cost_cap_usd": 10, "priority": 5}
    export = {
        "config": {"scope": "filtered", "format": "csv", "compress": False},
        "filters": {"persona": "p", "quality_min": 1, "quality_max": 9, "q": "x",
                    "created_from": "2020-01-01T00:00:00Z"},
    }  # fmt: skip
    return {
        ("post", "/v1/ops/ping"): {"service": "generator"},
        ("post", "/v1/conversations"): seed_file(UNIQUE, pairs=1),
        ("post", "/v1/conversations/batch"): {"items": [seed_file(UNIQUE, pairs=1)]},
        ("post", "/v1/conversations/bulk-action"): {
            "action": "approve", "ids": [conversation], "reason": "ok"},
        ("patch", "/v1/conversations/{id}"): {
            "title": "t", "tags": ["a"], "category": ["c"], "is_flagged": True,
            "flag_reason": "r", "persona": "p", "description": "d"},
        ("post", "/v1/conversations/{id}/status"): {"status": "approved", "notes": "n"},
        ("post", "/v1/templates"): template_body,
        ("patch", "/v1/templates/{template_id}"): template_body,
        ("post", "/v1/templates/{template_id}/resolve"): {"parameters": {"x": "d"},
                                                          "persona": "p"},
        ("post", "/v1/scenarios"): scenario,
        ("patch", "/v1/scenarios/{scenario_id}"): scenario,
        ("post", "/v1/edge-cases"): edge_case,
        ("patch", "/v1/edge-cases/{edge_case_id}"): edge_case,
        ("post", "/v1/generation-jobs"): job,
        ("post", "/v1/generation-jobs/estimate"): job,
        ("post", "/v1/conversations/{conversation_id}/regenerate"): {
            "temperature": 0.5, "max_tokens": 100, "cost_cap_usd": 10, "from_turn": 3,
            "instructions": "less formal", "parameters": {"persona": "p"}},
        ("patch", "/v1/conversations/{id}/turns/{turn_number}"): {
            "content": "A calmer answer.", "expected_version": 1},
        ("post", "/v1/exports"): export,
        ("post", "/v1/exports/preview"): export,
    }  # fmt: skip


def unique(value: Any) -> Any:
    """The body with each UNIQUE placeholder made a fresh name."""
    if value == UNIQUE:
        return f"contract-{next(_counter)}"
    if isinstance(value, dict):
        return {key: unique(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unique(item) for item in value]
    return value


def body_corruptions(example: Any) -> Iterator[tuple[str, Any]]:
    """(where, body) for every field of the example replaced by every SWEEP value."""
    for path in leaf_paths(example):
        for bad in SWEEP:
            yield f"{'/'.join(map(str, path)) or '$'}={bad!r:.40}", replace(example, path, bad)
