"""Near-duplicate marks follow turn edits: the edited text is checked again and re-indexed, and
copies of an edited original keep their mark only while they still nearly copy it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.quality.dedup_support import detail, import_one, pairs, paraphrase, seed_document
from tests.support.factories import Account

FRESH = "Completely different words about gardening, tomatoes, compost and a shed roof. " * 6


def _short(seed: int) -> list[tuple[str, str]]:
    """Two user and two assistant turns: replacing one turn moves half of a side's shingles."""
    return pairs(seed, count=2)


async def _edit(
    client: httpx.AsyncClient, account: Account, id: str, role: str, nth: int, content: str
) -> Any:
    """Replace the text of the conversation's `nth` (0-based) turn of `role`."""
    shown = await detail(client, account, id)
    number = [t["turn_number"] for t in shown["turns"] if t["role"] == role][nth]
    edited = await client.patch(
        f"/v1/conversations/{id}/turns/{number}", json={"content": content},
        headers=account.headers,
    )  # fmt: skip
    assert edited.status_code == 200, edited.text
    return edited.json()


async def test_an_edited_copy_is_unmarked_and_its_new_text_is_indexed(
    client: httpx.AsyncClient, account: Account
) -> None:
    original = await import_one(client, account, seed_document("orig", _short(1)))
    copy = await import_one(client, account, seed_document("copy", paraphrase(_short(1), 3)))
    assert copy["duplicate_of"] == original["id"]

    edited = await _edit(client, account, copy["id"], "user", 0, FRESH)
    assert (edited["duplicate_of"], edited["duplicate_similarity"]) == (None, None)
    # The index holds the new text (not the old): a copy of it points at the edited one.
    texts = [(FRESH, _short(1)[0][1]), _short(1)[1]]
    later = await import_one(client, account, seed_document("later", paraphrase(texts, 4)))
    assert later["duplicate_of"] == copy["id"]


async def test_an_edit_that_makes_a_copy_marks_it_against_earlier_conversations_only(
    client: httpx.AsyncClient, account: Account
) -> None:
    original = await import_one(client, account, seed_document("orig", _short(1)))
    other = await import_one(client, account, seed_document("other", _short(2)))
    assert other["duplicate_of"] is None
    for nth, (user, assistant) in enumerate(_short(1)):
        await _edit(client, account, other["id"], "user", nth, user)
        shown = await _edit(client, account, other["id"], "assistant", nth, assistant)
    assert shown["duplicate_of"] == original["id"]
    assert shown["duplicate_similarity"] == 1.0
    # The original, created first, does not become a copy of the later one by being edited.
    renamed = await _edit(client, account, original["id"], "user", 0, _short(1)[0][0] + " ")
    assert renamed["duplicate_of"] is None


async def test_copies_of_an_edited_original_keep_their_mark_only_while_still_similar(
    client: httpx.AsyncClient, account: Account
) -> None:
    original = await import_one(client, account, seed_document("orig", pairs(1)))
    copy = await import_one(client, account, seed_document("copy", paraphrase(pairs(1), 3)))
    before = copy["duplicate_similarity"]

    first_user = pairs(1)[0][0]
    await _edit(client, account, original["id"], "user", 0, first_user.replace(".", "!", 1))
    still = await detail(client, account, copy["id"])
    assert still["duplicate_of"] == original["id"]
    assert 0.8 <= still["duplicate_similarity"] <= 1.0

    for nth in range(3):  # half of the original's user side rewritten
        await _edit(client, account, original["id"], "user", nth, f"{FRESH} {nth}")
    gone = await detail(client, account, copy["id"])
    assert (gone["duplicate_of"], gone["duplicate_similarity"]) == (None, None)
    assert before is not None
    listed = await client.get(
        "/v1/conversations", params={"near_duplicates": "true"}, headers=account.headers
    )
    assert listed.json()["total"] == 0
