"""Near-duplicate test helpers: realistic conversations, paraphrases of them, imports."""

from __future__ import annotations

import random
from typing import Any

import httpx
import redis.asyncio as redis_asyncio

from tests.support.factories import Account
from tests.support.seed_files import seed_file

# fmt: off
_VOCABULARY = (
    "market", "savings", "worried", "pension", "account", "month", "plan", "family", "budget",
    "house", "mortgage", "rate", "job", "salary", "retire", "children", "college", "fund",
    "stocks", "bonds", "cash", "emergency", "debt", "card", "loan", "insurance", "tax", "goal",
    "spend", "income", "expense", "risk", "calm", "steady", "decision", "future", "partner",
    "weekend", "night", "sleep", "news", "drop", "recover", "patience", "timeline", "advice",
    "option", "choice", "review", "balance", "honest", "simple", "careful", "really", "today",
    "tomorrow", "week", "year", "number", "percent", "value", "price", "sell", "buy", "hold",
)
# fmt: on


def sentences(rng: random.Random, words: int) -> str:
    """`words` words of plausible-looking prose with punctuation and capitals."""
    out = []
    for i in range(words):
        word = rng.choice(_VOCABULARY)
        out.append(word.capitalize() if i % 12 == 0 else word)
        if i % 12 == 11:
            out[-1] += "."
    text = " ".join(out)
    return text if text.endswith(".") else text + "."


def pairs(seed: int, count: int = 6, words: int = 60) -> list[tuple[str, str]]:
    """(user, assistant) texts of a conversation; a different seed is a different one."""
    rng = random.Random(seed)
    return [(sentences(rng, words), sentences(rng, words)) for _ in range(count)]


def paraphrase(texts: list[tuple[str, str]], seed: int, changes: int = 2) -> list[tuple[str, str]]:
    """The same conversation with `changes` words replaced in every other turn."""
    rng = random.Random(seed)
    out = []
    for number, (user, assistant) in enumerate(texts):
        if number % 2 == 0:
            user, assistant = _swap(user, rng, changes), _swap(assistant, rng, changes)
        out.append((user, assistant))
    return out


def _swap(text: str, rng: random.Random, changes: int) -> str:
    words = text.split(" ")
    for _ in range(changes):
        words[rng.randrange(len(words))] = rng.choice(("truly", "quite", "perhaps", "indeed"))
    return " ".join(words)


def seed_document(
    name: str, texts: list[tuple[str, str]], *, system_prompt: str | None = None
) -> dict[str, Any]:
    """A valid seed file whose training pairs carry `texts`."""
    document = seed_file(name, pairs=len(texts))
    for pair, (user, assistant) in zip(document["training_pairs"], texts, strict=True):
        pair["current_user_input"] = user
        pair["target_response"] = assistant
        if system_prompt is not None:
            pair["system_prompt"] = system_prompt
    return document


async def import_one(api: httpx.AsyncClient, account: Account, document: dict[str, Any]) -> Any:
    """POST one file and return the created conversation (asserting a 201)."""
    response = await api.post("/v1/conversations", json=document, headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def detail(api: httpx.AsyncClient, account: Account, id: str) -> Any:
    """GET one conversation."""
    response = await api.get(f"/v1/conversations/{id}", headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def tenant_keys(client: redis_asyncio.Redis, account: Account) -> list[bytes]:
    """Every Redis key of the tenant's near-duplicate index (bands, marker, lock)."""
    pattern = f"*:dedup:*:{account.user.id}:*"
    return [key async for key in client.scan_iter(match=pattern, count=1000)]


async def drop_index(client: redis_asyncio.Redis, account: Account) -> None:
    """What a Redis restart without persistence does to the tenant's index."""
    keys = await tenant_keys(client, account)
    if keys:
        await client.delete(*keys)
