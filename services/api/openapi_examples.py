"""Request-body examples shown in /docs and tried by the contract test, by operation id.

Each example must validate against its route's body model (tests/api/test_openapi.py checks),
so a schema change that breaks an example fails the suite instead of misleading a reader.
"""

from __future__ import annotations

from typing import Any

from shared.quality.rubric import BUILTIN

_SOME_ID = "00000000-0000-4000-8000-000000000001"

SEED_FILE: dict[str, Any] = {
    "dataset_metadata": {
        "dataset_name": "fp-example-001",
        "version": "3.4",
        "vertical": "financial_planning",
        "quality_tier": "seed_dataset",
        "total_turns": 1,
    },
    "consultant_profile": {"name": "Elena Morales"},
    "training_pairs": [
        {
            "id": "fp-example-001_turn1",
            "conversation_id": "fp-example-001",
            "turn_number": 1,
            "conversation_metadata": {"client_persona": "Marcus Chen, 58"},
            "system_prompt": "You are Elena Morales, a fee-only CFP.",
            "current_user_input": "My account dropped 12% this month. Should I sell?",
            "emotional_context": {
                "detected_emotions": {
                    "primary": "fear",
                    "primary_confidence": 0.9,
                    "intensity": 0.7,
                }
            },
            "response_strategy": {"primary_strategy": "validate", "tone_selection": "warm"},
            "target_response": "That drop is frightening. Before deciding, let's look at "
            "when you need this money.",
            "training_metadata": {"quality_score": 4.5},
        }
    ],
}

_TEMPLATE = {
    "name": "Anxious investor check-in",
    "description": "A planner calms a client during a market drop.",
    "category": "financial_planning",
    "system_prompt": "You are a calm, precise financial planner.",
    "user_prompt_template": "Write a conversation with {{persona}} who feels {{emotion}} "
    "about {{topic}}.",
    "variables": [
        {"name": "persona", "required": True},
        {"name": "emotion", "default": "anxious"},
        {"name": "topic", "default": "a market drop"},
    ],
}

_GENERATION_JOB = {
    "items": [
        {
            "template_id": _SOME_ID,
            "parameters": {"persona": "a retired teacher"},
            "temperature": 0.7,
        }
    ],
    "concurrency": 5,
    "cost_cap_usd": 5,
}

_EXPORT = {
    "config": {"scope": "all_approved", "format": "jsonl", "include_metadata": True},
}


def _rubric() -> dict[str, Any]:
    criteria = {
        name: {"description": c.description, "levels": dict(c.levels)}
        for name, c in BUILTIN.criteria.items()
    }
    return {"criteria": criteria, "note": "the built-in rubric, as a starting point"}


_RUBRIC = _rubric()


REQUEST_EXAMPLES: dict[str, Any] = {
    "ping": {"service": "generator"},
    "import_conversation": SEED_FILE,
    "import_batch": {"items": [SEED_FILE]},
    "patch_conversation": {"title": "Market-drop reassurance", "tags": ["reviewed", "calm"]},
    "change_status": {"status": "approved", "notes": "Warm and accurate."},
    "bulk_action": {"action": "approve", "ids": [_SOME_ID]},
    "create_template": _TEMPLATE,
    "patch_template": {"description": "Now with a shorter opening.", "is_active": True},
    "resolve_template": {"parameters": {"persona": "a retired teacher"}},
    "create_scenario": {
        "name": "Pension worries",
        "parent_template_id": _SOME_ID,
        "context": "The client retires next year and markets fell 12%.",
        "persona": "a retired teacher",
        "topic": "pension drawdown",
        "objectives": ["acknowledge the fear", "explain sequence risk"],
    },
    "patch_scenario": {"complexity": 6},
    "create_edge_case": {
        "name": "Client mentions self-harm",
        "parent_template_id": _SOME_ID,
        "category": "crisis",
        "trigger_condition": "The client says they cannot go on.",
        "expected_behavior": "Stop planning talk and point to crisis resources.",
        "risk_level": "high",
    },
    "patch_edge_case": {"tested": True},
    "create_job": _GENERATION_JOB,
    "estimate_job": {"plan": {"template": 40, "scenario": 35, "edge_case": 15}},
    "regenerate": {
        "from_turn": 5,
        "instructions": "Less formal; the client pushes back twice before agreeing.",
        "parameters": {"emotion": "frustrated"},
        "temperature": 0.9,
    },
    "edit_turn": {
        "content": "That drop is unsettling. Before deciding anything, let's look at your plan.",
        "expected_version": 1,
    },
    "score_conversation": {"cost_cap_usd": 0.05},
    "put_rubric": _RUBRIC,
    "request_export": _EXPORT,
    "preview_export": _EXPORT,
}
