"""bench/dedup.py's corpus (planted paraphrases), its exact all-pairs baseline and scoring."""

from __future__ import annotations

import itertools
import random
import uuid
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from shared.dedup.signature import shingles
from shared.models.conversation import (
    ConversationDraft,
    ConversationSource,
    Role,
    Tier,
    TurnDraft,
)

POSITIVE_RATES = (1, 2, 3)  # % of words replaced: near-duplicates that must be caught
_MIX = {"para1": 0.06, "para2": 0.06, "para3": 0.06, "rewrite15": 0.01, "script": 0.01}
_RATES = {"para1": 0.01, "para2": 0.02, "para3": 0.03, "rewrite15": 0.15}
_OPENERS = [
    f"{a} {b}"
    for a, b in itertools.product(
        ("I completely understand how stressful this must feel for you right now.",
         "Thank you for telling me this, it is a lot to carry on your own.",
         "That is a very common worry and you are right to raise it today.",
         "Let us take this one step at a time so nothing important is missed.",
         "I hear you, and I want to make sure we look at every option together."),
        ("Here is how I would think about it.", "First, a few facts.",
         "Let me explain what usually happens.", "There are three things to consider."),
    )
]  # fmt: skip
_SYSTEM = [f"You are Elena Morales, a fee-only CFP. Style {n}: warm, precise." for n in range(5)]


@dataclass
class Item:
    """One conversation of the stream: what it is, what it copies, its draft."""

    name: str
    kind: str  # original | para1 | para2 | para3 | rewrite15 | script
    family: str  # the original it derives from (itself for an original)
    draft: ConversationDraft
    texts: list[tuple[str, str]]
    ids: dict[int, uuid.UUID] = field(default_factory=dict)

    @property
    def positive(self) -> bool:
        return self.kind.startswith("para")


@dataclass
class Corpus:
    """The stream in landing order."""

    items: list[Item]

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for item in self.items:
            counts[item.kind] = counts.get(item.kind, 0) + 1
        return ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items()))


class _Words:
    """Zipf-distributed words over a 5,000-word made-up vocabulary."""

    def __init__(self, rng: np.random.Generator) -> None:
        syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
        pool = {"".join(rng.choice(syllables, size=rng.integers(1, 4))) for _ in range(20_000)}
        self.vocabulary = np.array(sorted(pool)[:5000])
        weights = 1.0 / np.arange(1, len(self.vocabulary) + 1) ** 1.1
        self.p = weights / weights.sum()
        self.rng = rng

    def text(self, low: int, high: int) -> str:
        size = int(self.rng.integers(low, high))
        return " ".join(self.rng.choice(self.vocabulary, size=size, p=self.p))

    def paraphrase(self, text: str, rate: float) -> str:
        words = text.split(" ")
        for index in np.nonzero(self.rng.random(len(words)) < rate)[0]:
            words[index] = str(self.rng.choice(self.vocabulary))
        return " ".join(words)


def _draft(name: str, texts: list[tuple[str, str]], system: str) -> ConversationDraft:
    turns = [TurnDraft(turn_number=1, role=Role.SYSTEM, content=system)]
    for user, assistant in texts:
        for role, content in ((Role.USER, user), (Role.ASSISTANT, assistant)):
            turns.append(TurnDraft(turn_number=len(turns) + 1, role=role, content=content))
    return ConversationDraft(
        conversation_id=name, title=name, tier=Tier.TEMPLATE, source=ConversationSource.IMPORT,
        turn_count=len(turns), system_prompt=system, turns=turns, document={"bench": name},
    )  # fmt: skip


def build_corpus(count: int, *, seed: int) -> Corpus:
    """`count` conversations: originals and planted copies of earlier originals (see _MIX)."""
    rng, picks = np.random.default_rng(seed), random.Random(seed)
    words = _Words(rng)
    copies = [kind for kind, share in _MIX.items() for _ in range(round(count * share))]
    # The first 100 are originals, so every copy has something earlier to copy.
    rest = copies + ["original"] * (count - len(copies) - 100)
    picks.shuffle(rest)
    ordered = ["original"] * 100 + rest
    originals: list[Item] = []
    items: list[Item] = []
    for number, kind in enumerate(ordered):
        name = f"c{number:05d}"
        if kind == "original":
            texts = [
                (words.text(15, 60), f"{picks.choice(_OPENERS)} {words.text(30, 90)}")
                for _ in range(int(rng.integers(4, 9)))
            ]
            item = Item(name, kind, name, _draft(name, texts, picks.choice(_SYSTEM)), texts)
            originals.append(item)
        else:
            source = picks.choice(originals)
            texts = _copy(words, picks, kind, source, originals)
            item = Item(name, kind, source.name, _draft(name, texts, picks.choice(_SYSTEM)), texts)
        items.append(item)
    return Corpus(items)


def _copy(
    words: _Words, picks: random.Random, kind: str, source: Item, originals: list[Item]
) -> list[tuple[str, str]]:
    if kind == "script":  # the same user turns, another conversation's answers
        other = picks.choice([o for o in originals if o is not source] or [source])
        answers = [a for _, a in other.texts]
        return [(user, answers[i % len(answers)]) for i, (user, _) in enumerate(source.texts)]
    rate = _RATES[kind]
    return [(words.paraphrase(u, rate), words.paraphrase(a, rate)) for u, a in source.texts]


# ---------------------------------------------------------------------------------------------
# The exact baseline


def _matrix(sets: list[set[bytes]], columns: dict[bytes, int]) -> sparse.csr_matrix:
    indptr: list[int] = [0]
    indices: list[int] = []
    for found in sets:
        indices.extend(columns.setdefault(s, len(columns)) for s in found)
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.float32)
    shape = (len(sets), max(len(columns), 1))
    return sparse.csr_matrix((data, np.array(indices), np.array(indptr)), shape=shape)


def _side_sets(corpus: Corpus, user: bool) -> list[set[bytes]]:
    out = []
    for item in corpus.items:
        found: set[bytes] = set()
        for u, a in item.texts:
            found |= shingles(u if user else a)
        out.append(found)
    return out


def exact_decisions(corpus: Corpus, *, threshold: float, block: int = 500) -> dict[str, str | None]:
    """Every pair's exact Jaccard; each conversation's earliest earlier match (or None)."""
    sides = []
    for user in (True, False):
        sets = _side_sets(corpus, user)
        columns: dict[bytes, int] = {}
        sides.append((_matrix(sets, columns), np.array([len(s) for s in sets], dtype=np.float32)))
    names = [item.name for item in corpus.items]
    decisions: dict[str, str | None] = {}
    n = len(names)
    for start in range(0, n, block):
        stop = min(start + block, n)
        combined = _combined(sides, start, stop)
        earlier = np.arange(n)[None, :] < np.arange(start, stop)[:, None]
        hits = (combined >= threshold) & earlier
        for row in range(stop - start):
            found = np.flatnonzero(hits[row])
            decisions[names[start + row]] = names[found[0]] if found.size else None
    return decisions


def _combined(
    sides: list[tuple[sparse.csr_matrix, np.ndarray]], start: int, stop: int
) -> np.ndarray:
    """The rows' similarity to every conversation, by signature.similarity's rule."""
    values, known = [], []
    for matrix, sizes in sides:
        inter = (matrix[start:stop] @ matrix.T).toarray()
        mine, theirs = sizes[start:stop, None], sizes[None, :]
        union = mine + theirs - inter
        jaccard = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        values.append(jaccard)
        known.append((mine > 0) | (theirs > 0))  # a side empty in both is left out
    (vu, va), (ku, ka) = values, known
    both = np.minimum(vu, va)
    return np.where(ku & ka, both, np.where(ku, vu, np.where(ka, va, 0.0)))


# ---------------------------------------------------------------------------------------------
# Scoring


@dataclass(frozen=True)
class Score:
    """Precision and recall against the planted near-duplicates."""

    precision: float
    recall: float
    by_rate: dict[int, float]
    flagged_negatives: int

    def __str__(self) -> str:
        return f"precision {self.precision:.3f}, recall {self.recall:.3f}"


def score(corpus: Corpus, decisions: dict[str, str | None]) -> Score:
    """A flag is right when it is a planted paraphrase pointing into its own family."""
    family = {item.name: item.family for item in corpus.items}
    flagged = [item for item in corpus.items if decisions.get(item.name)]
    right = [i for i in flagged if i.positive and family[decisions[i.name] or ""] == i.family]
    positives = [item for item in corpus.items if item.positive]
    by_rate = {}
    for rate in POSITIVE_RATES:
        planted = [item for item in positives if item.kind == f"para{rate}"]
        caught = [item for item in right if item.kind == f"para{rate}"]
        by_rate[rate] = len(caught) / len(planted) if planted else 0.0
    return Score(
        precision=len(right) / len(flagged) if flagged else 1.0,
        recall=len(right) / len(positives) if positives else 1.0,
        by_rate=by_rate,
        flagged_negatives=sum(
            1 for item in flagged if not item.positive and item.kind != "original"
        ),
    )
