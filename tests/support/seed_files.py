"""Seed-format conversation files built in code (the kit's fixtures cover the real shapes)."""

from __future__ import annotations

from typing import Any

from tests.support.servers import KIT

FIXTURES = KIT / "fixtures" / "conversations"


def fixture_bytes(name: str) -> bytes:
    """A kit fixture file's raw bytes."""
    return (FIXTURES / name).read_bytes()


def seed_file(
    name: str,
    *,
    pairs: int = 3,
    tier: str = "seed_dataset",
    persona: str = "Marcus Chen, 58",
    emotion: str = "fear",
    topic: str | None = None,
    quality: float = 4.5,
    user_text: str = "I just looked at my account and I'm scared. What should I do?",
    assistant_text: str = "That sounds frightening. Let's slow down and look at it together.",
) -> dict[str, Any]:
    """A valid seed file with `pairs` training pairs."""
    meta: dict[str, Any] = {
        "dataset_name": name,
        "version": "3.4",
        "vertical": "financial_planning",
        "quality_tier": tier,
        "total_turns": pairs,
    }
    if topic is not None:
        meta["topic"] = topic
    return {
        "dataset_metadata": meta,
        "consultant_profile": {"name": "Elena Morales"},
        "training_pairs": [
            _pair(name, i, persona, emotion, quality, user_text, assistant_text)
            for i in range(1, pairs + 1)
        ],
    }


def _pair(
    name: str, number: int, persona: str, emotion: str, quality: float, user: str, assistant: str
) -> dict[str, Any]:
    return {
        "id": f"{name}_turn{number}",
        "conversation_id": name,
        "turn_number": number,
        "conversation_metadata": {"client_persona": persona},
        "system_prompt": "You are Elena Morales, a fee-only CFP.",
        "current_user_input": user,
        "emotional_context": {
            "detected_emotions": {"primary": emotion, "primary_confidence": 0.9, "intensity": 0.7}
        },
        "response_strategy": {"primary_strategy": "validate", "tone_selection": "warm"},
        "target_response": assistant,
        "training_metadata": {"quality_score": quality},
    }
