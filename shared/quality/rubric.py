"""The judge's rubric: one description per criterion and per score level, versioned per tenant.

Version 1 is the built-in default below; every tenant starts from it. An edit (PUT
/v1/quality/rubric) stores the next version in `quality_rubrics`; versions are never changed, so
the version recorded on a score names the exact text the judge read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict

from shared.models.text import text_problem

Scale = Literal["0-1", "1-5"]
# The spec's quality model: three 0–1 criteria (weighted into quality_overall) and four 1–5 ones.
UNIT_CRITERIA: Final = ("coherence", "relevance", "completeness")
FIVE_CRITERIA: Final = ("empathy", "clarity", "appropriateness", "brand_voice")
CRITERIA: Final = UNIT_CRITERIA + FIVE_CRITERIA
SCALES: Final[dict[str, Scale]] = {
    **dict.fromkeys(UNIT_CRITERIA, "0-1"),
    **dict.fromkeys(FIVE_CRITERIA, "1-5"),
}
# The score levels each scale describes (a rubric gives every one of them a description).
LEVELS: Final[dict[Scale, tuple[str, ...]]] = {
    "0-1": ("0", "0.25", "0.5", "0.75", "1"),
    "1-5": ("1", "2", "3", "4", "5"),
}
BUILTIN_VERSION: Final = 1
MAX_DESCRIPTION: Final = 2000
MAX_NOTE: Final = 500


class Criterion(BaseModel):
    """What a criterion measures and what each score level looks like."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str
    levels: dict[str, str]


class Rubric(BaseModel):
    """One version of a tenant's rubric (version 1: the built-in default)."""

    model_config = ConfigDict(frozen=True)

    version: int
    criteria: dict[str, Criterion]
    builtin: bool = False
    note: str | None = None

    def scale(self, name: str) -> Scale:
        """The score range of a criterion."""
        return SCALES[name]


def _c(description: str, *levels: str) -> Criterion:
    scale = SCALES[_NAME_OF[description]]
    return Criterion(description=description, levels=dict(zip(LEVELS[scale], levels, strict=True)))


_COHERENCE = "Does the conversation hang together: each turn follows from the one before it?"
_RELEVANCE = "Does the assistant stay on the brief (persona, topic, emotion) and on the question?"
_COMPLETENESS = "Does the conversation reach a useful end: questions answered, next steps clear?"
_EMPATHY = "Does the assistant recognise the user's feelings and respond to them with care?"
_CLARITY = "Are the assistant's turns easy to follow: plain words, one idea at a time?"
_APPROPRIATENESS = "Are tone, content and advice suitable and safe for this user and situation?"
_BRAND = "Does the assistant sound like a calm, warm, competent advisor (the house voice)?"
_NAME_OF = {
    _COHERENCE: "coherence", _RELEVANCE: "relevance", _COMPLETENESS: "completeness",
    _EMPATHY: "empathy", _CLARITY: "clarity", _APPROPRIATENESS: "appropriateness",
    _BRAND: "brand_voice",
}  # fmt: skip

BUILTIN: Final = Rubric(
    version=BUILTIN_VERSION,
    builtin=True,
    note="built-in default",
    criteria={
        "coherence": _c(
            _COHERENCE,
            "Turns contradict each other or ignore what was just said.",
            "Frequent non sequiturs; the thread is often lost.",
            "Mostly follows on, with a few jumps or repeated points.",
            "Follows on well; an occasional awkward transition.",
            "Every turn builds on the previous one; no contradictions.",
        ),
        "relevance": _c(
            _RELEVANCE,
            "Off topic, or ignores the persona and the user's question.",
            "Touches the topic but mostly generic or beside the point.",
            "On topic, but parts drift or fit another persona.",
            "On the brief throughout, with minor generic stretches.",
            "Every assistant turn serves this user's question and brief.",
        ),
        "completeness": _c(
            _COMPLETENESS,
            "Stops mid-way; the user's need is not addressed.",
            "Addresses the need only superficially.",
            "Covers the main need, leaves obvious questions open.",
            "Covers the need with a reasonable close.",
            "Fully addresses the need and closes with clear next steps.",
        ),
        "empathy": _c(
            _EMPATHY,
            "Dismissive or cold; feelings ignored.",
            "Acknowledges feelings in a formulaic way.",
            "Some real acknowledgement, not carried through.",
            "Warm and attentive to the user's state most of the time.",
            "Consistently attuned; responds to shifts in feeling.",
        ),
        "clarity": _c(
            _CLARITY,
            "Confusing, jargon-heavy or rambling.",
            "Often hard to follow.",
            "Understandable with some effort.",
            "Clear, with occasional long or dense turns.",
            "Plain, well-structured and easy to act on.",
        ),
        "appropriateness": _c(
            _APPROPRIATENESS,
            "Harmful, unsafe or wildly unsuitable content.",
            "Noticeably unsuitable tone or advice.",
            "Acceptable, with lapses in tone or caution.",
            "Suitable, with minor lapses.",
            "Fully suitable and responsible throughout.",
        ),
        "brand_voice": _c(
            _BRAND,
            "Nothing like the house voice (curt, flippant or salesy).",
            "Only occasionally in voice.",
            "Partly in voice; inconsistent.",
            "Mostly in voice.",
            "Unmistakably the house voice throughout.",
        ),
    },
)


def problems(body: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every problem of a rubric body (`{"criteria": {...}, "note"?}`), as 422 details."""
    found = list(_body_problems(body))
    return [{"path": path, "message": message, "type": kind} for path, message, kind in found]


def _body_problems(body: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    for key in body:
        if key not in ("criteria", "note"):
            yield f"$.{key}", "unknown field", "extra_forbidden"
    note = body.get("note")
    if note is not None:
        yield from _text("$.note", note, MAX_NOTE)
    criteria = body.get("criteria")
    if not isinstance(criteria, dict):
        yield "$.criteria", "an object of criteria is required", "missing"
        return
    for name in criteria:
        if name not in SCALES:
            allowed = ", ".join(CRITERIA)
            yield f"$.criteria.{name}", f"unknown criterion; allowed: {allowed}", "unknown"
    for name in CRITERIA:
        if name not in criteria:
            yield f"$.criteria.{name}", "every criterion needs a description", "missing"
        else:
            yield from _criterion_problems(name, criteria[name])


def _criterion_problems(name: str, value: Any) -> Iterator[tuple[str, str, str]]:
    path = f"$.criteria.{name}"
    if not isinstance(value, dict):
        yield path, "must be an object with description and levels", "type"
        return
    for key in value:
        if key not in ("description", "levels"):
            yield f"{path}.{key}", "unknown field", "extra_forbidden"
    yield from _text(f"{path}.description", value.get("description"), MAX_DESCRIPTION)
    levels, expected = value.get("levels"), LEVELS[SCALES[name]]
    if not isinstance(levels, dict):
        yield f"{path}.levels", f"an object with the levels {', '.join(expected)}", "missing"
        return
    for level in levels:
        if level not in expected:
            yield f"{path}.levels.{level}", f"not a level of {SCALES[name]}", "unknown"
    for level in expected:
        yield from _text(f"{path}.levels.{level}", levels.get(level), MAX_DESCRIPTION)


def _text(path: str, value: Any, limit: int) -> Iterator[tuple[str, str, str]]:
    if value is None:
        yield path, "a description is required", "missing"
    elif not isinstance(value, str):
        yield path, "must be a string", "type"
    elif not value.strip():
        yield path, "must not be blank", "blank"
    elif len(value) > limit:
        yield path, f"at most {limit} characters", "too_long"
    elif (problem := text_problem(value)) is not None:
        yield path, problem, "invalid_text"


def parse(version: int, criteria: Mapping[str, Any], note: str | None = None) -> Rubric:
    """A stored version (criteria as written by `problems`-checked input)."""
    return Rubric(
        version=version,
        criteria={name: Criterion.model_validate(criteria[name]) for name in CRITERIA},
        note=note,
    )


def render(rubric: Rubric) -> str:
    """The rubric as the judge reads it (part of the cached system prefix)."""
    lines = [f"RUBRIC (version {rubric.version})", ""]
    for name in CRITERIA:
        criterion = rubric.criteria[name]
        lines.append(f"## {name} (score {rubric.scale(name)})")
        lines.append(criterion.description.strip())
        for level in LEVELS[rubric.scale(name)]:
            lines.append(f"- {level}: {criterion.levels[level].strip()}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
