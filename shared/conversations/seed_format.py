"""Parse and validate seed "emotional dataset" files into a ready-to-store ConversationDraft."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from pydantic import BaseModel, ConfigDict

from shared.conversations.document import finish_draft, make_turn
from shared.conversations.text_stats import blank
from shared.errors import ValidationFailed
from shared.models.conversation import (
    ConversationDraft,
    ConversationSource,
    ConversationStatus,
    Role,
    Tier,
    TurnDraft,
    round_score,
)
from shared.models.text import bad_strings

JsonObject = dict[str, Any]

TIERS: Final[dict[str, Tier]] = {
    "seed_dataset": Tier.TEMPLATE,
    "template": Tier.TEMPLATE,
    "scenario": Tier.SCENARIO,
    "edge_case": Tier.EDGE_CASE,
}
# training_metadata.quality_criteria key -> quality_metrics key
CRITERIA: Final[tuple[tuple[str, str], ...]] = (
    ("empathy_score", "empathy"),
    ("clarity_score", "clarity"),
    ("appropriateness_score", "appropriateness"),
    ("brand_voice_alignment", "brand_voice"),
)
MAX_TURN_NUMBER: Final = 2_147_483_647
_SLUG_JUNK = re.compile(r"[^a-z0-9._-]+")
_MISSING: Final = object()


class Problem(BaseModel):
    """One thing wrong with an uploaded file, located by JSON path."""

    model_config = ConfigDict(frozen=True)

    path: str
    code: str
    message: str


class SeedFormatError(ValidationFailed):
    """The file is not a valid seed dataset; `problems` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        details = [problem.model_dump() for problem in problems]
        super().__init__(f"conversation file has {len(problems)} problem(s)", details=details)


@dataclass(frozen=True, slots=True)
class _Header:
    name: str
    tier: Tier
    vertical: str | None
    topic: str | None
    notes: str | None
    consultant_persona: str | None
    conversation_source: str | None
    tags: list[str]
    total_turns: int | None
    consultant_tone: str | None


@dataclass(frozen=True, slots=True)
class _Emotion:
    primary: str | None = None
    confidence: float | None = None
    intensity: float | None = None
    secondary: str | None = None
    secondary_confidence: float | None = None
    underlying_need: str | None = None


@dataclass(frozen=True, slots=True)
class _Pair:
    index: int
    pair_id: str | None
    conversation_id: str | None
    turn_number: int
    system_prompt: str | None
    user_input: str
    target_response: str
    client_persona: str | None
    template_name: str | None
    emotion: _Emotion
    strategy: str | None
    tone: str | None
    quality: dict[str, float]


@dataclass(slots=True)
class _Checker:
    """Reads typed values out of parsed JSON, recording a Problem for each bad one."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, path: str, code: str, message: str) -> None:
        """Record one problem."""
        self.problems.append(Problem(path=path, code=code, message=message))

    def get(self, obj: JsonObject, key: str, path: str, want: str, required: bool) -> Any:
        """The value under `key` if it has JSON type `want`, else None (recording why)."""
        value = obj.get(key)
        if type(value) in _EXACT_TYPES[want]:  # fast path: what orjson produces
            return value
        return self._slow_get(obj, key, path, want, required)

    def _slow_get(self, obj: JsonObject, key: str, path: str, want: str, required: bool) -> Any:
        """Absent, null, a subclass of the wanted type, or a wrong type."""
        value = obj.get(key, _MISSING)
        if value is _MISSING or (value is None and not required):
            if required:
                self.add(f"{path}.{key}", "missing", f"{key} is required")
            return None
        if not _has_type(value, want):
            self.add(f"{path}.{key}", "type", f"{key} must be {want}, got {_json_type(value)}")
            return None
        return value

    def obj(
        self, obj: JsonObject, key: str, path: str, required: bool = False
    ) -> JsonObject | None:
        """An optional or required JSON object."""
        value: JsonObject | None = self.get(obj, key, path, "object", required)
        return value

    def text(
        self, obj: JsonObject, key: str, path: str, required: bool = False, filled: bool = False
    ) -> str | None:
        """A string; `filled` also rejects text that is blank in effect (`text_stats.blank`)."""
        value: str | None = self.get(obj, key, path, "string", required)
        if value is None:
            return None
        if filled and blank(value):
            self.add(
                f"{path}.{key}", "empty",
                f"{key} must not be empty (only spaces or invisible characters)",
            )  # fmt: skip
            return None
        return value

    def number(self, obj: JsonObject, key: str, path: str, low: float, high: float) -> float | None:
        """An optional number within [low, high]."""
        value = self.get(obj, key, path, "number", False)
        if value is not None and not low <= value <= high:
            self.add(
                f"{path}.{key}", "value", f"{key} must be between {low} and {high}, got {value}"
            )
            return None
        return None if value is None else float(value)

    def integer(self, obj: JsonObject, key: str, path: str, required: bool = False) -> int | None:
        """A positive integer that fits a PostgreSQL integer column."""
        value: int | None = self.get(obj, key, path, "integer", required)
        if value is not None and not 0 < value <= MAX_TURN_NUMBER:
            limits = f"between 1 and {MAX_TURN_NUMBER}"
            self.add(f"{path}.{key}", "value", f"{key} must be {limits}, got {value}")
            return None
        return value

    def strings(self, obj: JsonObject, key: str, path: str) -> list[str]:
        """An optional array of strings (empty when absent)."""
        value: list[Any] | None = self.get(obj, key, path, "array", False)
        for index, item in enumerate(value or ()):
            if not isinstance(item, str):
                self.add(
                    f"{path}.{key}[{index}]", "type", f"must be string, got {_json_type(item)}"
                )
        return [item for item in value or () if isinstance(item, str)]


def parse_seed_bytes(raw: bytes) -> ConversationDraft:
    """Parse an uploaded seed file; raises SeedFormatError listing every problem."""
    return parse_seed_document(_load(raw))


def parse_seed_document(doc: object) -> ConversationDraft:
    """Validate an already-decoded seed document and extract the draft."""
    if not isinstance(doc, dict):
        problem = Problem(path="$", code="type", message=f"must be object, got {_json_type(doc)}")
        raise SeedFormatError([problem])
    check = _Checker()
    # The whole document is stored (object, jsonb), so no string anywhere may hold NUL or a
    # lone surrogate, not only the fields read below.
    for path, message in bad_strings(doc):
        check.add(path, "value", message)
    header = _read_header(check, doc)
    pairs = _read_pairs(check, doc)
    _check_pairs(check, header, pairs)
    if check.problems or header is None or not pairs:
        raise SeedFormatError(check.problems)
    return _build_draft(header, pairs, doc)


def _load(raw: bytes) -> object:
    """Decode JSON bytes (a UTF-8 byte order mark is tolerated) without copying them."""
    start = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    if len(raw) == start or raw.isspace():
        raise SeedFormatError([Problem(path="$", code="empty", message="the file is empty")])
    try:
        return orjson.loads(memoryview(raw)[start:] if start else raw)
    except orjson.JSONDecodeError as exc:
        raise SeedFormatError([_decode_problem(raw, start, exc)]) from exc


def _decode_problem(raw: bytes, start: int, exc: orjson.JSONDecodeError) -> Problem:
    """Say where the bytes stop being UTF-8, or where the JSON breaks (line, column, byte)."""
    try:
        text = raw[start:].decode("utf-8")
    except UnicodeDecodeError as bad:
        offset = start + bad.start
        line = raw.count(b"\n", 0, offset) + 1
        message = f"not UTF-8: byte 0x{raw[offset]:02x} at byte {offset} (line {line})"
        return Problem(path="$", code="encoding", message=message)
    byte = start + len(text[: exc.pos].encode("utf-8"))
    message = f"invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} (byte {byte})"
    return Problem(path="$", code="json_syntax", message=message)


def _read_header(check: _Checker, doc: JsonObject) -> _Header | None:
    """dataset_metadata plus the consultant's tone; placeholders stand in for bad values."""
    profile = check.obj(doc, "consultant_profile", "$")
    tone = _consultant_tone(check, profile) if profile is not None else None
    meta = check.obj(doc, "dataset_metadata", "$", required=True)
    if meta is None:
        return None
    path = "$.dataset_metadata"
    name = _read_name(check, meta, path)
    tier = _read_tier(check, meta, path)
    check.integer(meta, "total_conversations", path)
    return _Header(
        name=name or "",
        tier=tier or Tier.TEMPLATE,
        vertical=check.text(meta, "vertical", path),
        topic=check.text(meta, "topic", path),
        notes=check.text(meta, "notes", path),
        consultant_persona=check.text(meta, "consultant_persona", path),
        conversation_source=check.text(meta, "conversation_source", path),
        tags=check.strings(meta, "tags", path),
        total_turns=check.integer(meta, "total_turns", path),
        consultant_tone=tone,
    )


def _consultant_tone(check: _Checker, profile: JsonObject) -> str | None:
    """consultant_profile.communication_style.tone, if any."""
    path = "$.consultant_profile"
    style = check.obj(profile, "communication_style", path)
    return None if style is None else check.text(style, "tone", f"{path}.communication_style")


def _read_name(check: _Checker, meta: JsonObject, path: str) -> str | None:
    """dataset_name, which must yield a non-empty slug."""
    name = check.text(meta, "dataset_name", path, required=True, filled=True)
    if name is not None and not slugify(name):
        check.add(f"{path}.dataset_name", "value", "dataset_name needs letters or digits")
        return None
    return name


def _read_tier(check: _Checker, meta: JsonObject, path: str) -> Tier | None:
    """quality_tier mapped onto our tiers."""
    value = check.text(meta, "quality_tier", path, required=True)
    if value is None:
        return None
    tier = TIERS.get(value)
    if tier is None:
        allowed = ", ".join(TIERS)
        check.add(f"{path}.quality_tier", "value", f"unknown tier {value!r}; one of: {allowed}")
    return tier


def _read_pairs(check: _Checker, doc: JsonObject) -> list[_Pair]:
    """Every well-typed training pair (problems recorded for the rest)."""
    items: list[Any] | None = check.get(doc, "training_pairs", "$", "array", True)
    if items is not None and not items:
        check.add("$.training_pairs", "empty", "training_pairs must hold at least one pair")
    pairs: list[_Pair] = []
    for index, item in enumerate(items or ()):
        path = f"$.training_pairs[{index}]"
        if isinstance(item, dict):
            pairs.append(_read_pair(check, item, path, index))
        else:
            check.add(path, "type", f"must be object, got {_json_type(item)}")
    return pairs


def _read_pair(check: _Checker, item: JsonObject, path: str, index: int) -> _Pair:
    """One training pair; placeholders stand in for bad values (the file is rejected anyway)."""
    meta = check.obj(item, "conversation_metadata", path)
    meta_path = f"{path}.conversation_metadata"
    strategy = check.obj(item, "response_strategy", path)
    strategy_path = f"{path}.response_strategy"
    check.get(item, "conversation_history", path, "array", False)
    return _Pair(
        index=index,
        pair_id=check.text(item, "id", path),
        conversation_id=check.text(item, "conversation_id", path),
        turn_number=check.integer(item, "turn_number", path, required=True) or 0,
        system_prompt=check.text(item, "system_prompt", path),
        user_input=check.text(item, "current_user_input", path, required=True, filled=True) or "",
        target_response=check.text(item, "target_response", path, required=True, filled=True) or "",
        client_persona=None if meta is None else check.text(meta, "client_persona", meta_path),
        template_name=None if meta is None else check.text(meta, "parent_template_name", meta_path),
        emotion=_read_emotion(check, item, path),
        strategy=None
        if strategy is None
        else check.text(strategy, "primary_strategy", strategy_path),
        tone=None if strategy is None else check.text(strategy, "tone_selection", strategy_path),
        quality=_read_quality(check, item, path),
    )


def _read_emotion(check: _Checker, item: JsonObject, path: str) -> _Emotion:
    """emotional_context.detected_emotions and the underlying need."""
    context = check.obj(item, "emotional_context", path)
    if context is None:
        return _Emotion()
    path = f"{path}.emotional_context"
    need = check.text(context, "underlying_need", path)
    detected = check.obj(context, "detected_emotions", path)
    if detected is None:
        return _Emotion(underlying_need=need)
    path = f"{path}.detected_emotions"
    return _Emotion(
        primary=check.text(detected, "primary", path),
        confidence=check.number(detected, "primary_confidence", path, 0, 1),
        intensity=check.number(detected, "intensity", path, 0, 1),
        secondary=check.text(detected, "secondary", path),
        secondary_confidence=check.number(detected, "secondary_confidence", path, 0, 1),
        underlying_need=need,
    )


def _read_quality(check: _Checker, item: JsonObject, path: str) -> dict[str, float]:
    """The pair's 1-5 scores under our metric names (only those present)."""
    meta = check.obj(item, "training_metadata", path)
    if meta is None:
        return {}
    path = f"{path}.training_metadata"
    scores = {"overall": check.number(meta, "quality_score", path, 1, 5)}
    criteria = check.obj(meta, "quality_criteria", path)
    if criteria is not None:
        for key, name in CRITERIA:
            scores[name] = check.number(criteria, key, f"{path}.quality_criteria", 1, 5)
    return {name: score for name, score in scores.items() if score is not None}


def _check_pairs(check: _Checker, header: _Header | None, pairs: list[_Pair]) -> None:
    """Cross-field rules: unique turn numbers, one conversation per file, declared counts."""
    seen: dict[int, int] = {}
    for pair in pairs:
        path = f"$.training_pairs[{pair.index}]"
        if pair.turn_number and pair.turn_number in seen:
            first = seen[pair.turn_number]
            message = f"turn_number {pair.turn_number} is also used by $.training_pairs[{first}]"
            check.add(f"{path}.turn_number", "duplicate", message)
        seen.setdefault(pair.turn_number, pair.index)
        if header and header.name and pair.conversation_id not in (None, header.name):
            message = f"belongs to {pair.conversation_id!r}, not {header.name!r}"
            check.add(f"{path}.conversation_id", "value", message)
    if header and header.total_turns is not None and pairs and header.total_turns != len(pairs):
        message = f"says {header.total_turns} turns but training_pairs holds {len(pairs)}"
        check.add("$.dataset_metadata.total_turns", "value", message)


def _build_draft(header: _Header, pairs: list[_Pair], doc: JsonObject) -> ConversationDraft:
    """Map a validated file onto conversation columns, turns and the stored document."""
    ordered = sorted(pairs, key=lambda pair: pair.turn_number)
    first, last = ordered[0].emotion, ordered[-1].emotion
    quality_metrics, quality_score = _quality(ordered)
    draft = ConversationDraft(
        conversation_id=slugify(header.name),
        title=humanise(header.name),
        description=header.notes,
        persona=_persona(header, ordered),
        emotion=first.primary,
        topic=_topic(header, ordered),
        intent=first.underlying_need,
        tone=header.consultant_tone,
        emotional_arc=_emotional_arc(ordered),
        tier=header.tier,
        status=ConversationStatus.PENDING_REVIEW,
        source=ConversationSource.IMPORT,
        category=[header.vertical] if header.vertical else [],
        tags=_tags(header),
        quality_score=quality_score,
        quality_metrics=quality_metrics,
        # The storage spec's 1-5 criteria, mean over the pairs (also kept in quality_metrics).
        empathy_score=quality_metrics.get("empathy"),
        clarity_score=quality_metrics.get("clarity"),
        appropriateness_score=quality_metrics.get("appropriateness"),
        brand_voice_score=quality_metrics.get("brand_voice"),
        system_prompt=_system_prompts(ordered)[0],
        starting_emotion=first.primary,
        starting_intensity=first.intensity,
        ending_emotion=last.primary,
        ending_intensity=last.intensity,
        turns=_build_turns(ordered),
    )
    return finish_draft(draft, source_file=doc)


def _build_turns(pairs: list[_Pair]) -> list[TurnDraft]:
    """System turn (if any) then a user and an assistant turn per pair, numbered from 1."""
    system, differing = _system_prompts(pairs)
    turns: list[TurnDraft] = []
    if system is not None:
        metadata = {"differing_system_prompts": differing} if differing else {}
        turns.append(make_turn(1, Role.SYSTEM, system, metadata=metadata))
    for pair in pairs:
        origin = _compact({"pair_id": pair.pair_id, "source_turn_number": pair.turn_number})
        turns.append(_user_turn(len(turns) + 1, pair, origin))
        assistant = {"strategy": pair.strategy, "tone": pair.tone}
        turns.append(
            make_turn(
                len(turns) + 1, Role.ASSISTANT, pair.target_response, metadata=origin, **assistant
            )
        )
    return turns


def _user_turn(number: int, pair: _Pair, origin: JsonObject) -> TurnDraft:
    """The client's message with the pair's detected emotion."""
    emotion = pair.emotion
    extra = {
        "secondary_emotion": emotion.secondary,
        "secondary_confidence": emotion.secondary_confidence,
        "underlying_need": emotion.underlying_need,
    }
    return make_turn(
        number,
        Role.USER,
        pair.user_input,
        metadata={**origin, **_compact(extra)},
        detected_emotion=emotion.primary,
        emotion_confidence=emotion.confidence,
        emotion_intensity=emotion.intensity,
    )


def _system_prompts(pairs: list[_Pair]) -> tuple[str | None, list[int]]:
    """The first non-empty system prompt and the source turn numbers whose prompt differs."""
    prompts = [(pair.turn_number, pair.system_prompt) for pair in pairs if pair.system_prompt]
    if not prompts:
        return None, []
    first = prompts[0][1]
    return first, [number for number, prompt in prompts if prompt != first]


def _quality(pairs: list[_Pair]) -> tuple[JsonObject, float | None]:
    """quality_metrics (original 1-5 scale, averaged) and the 0-10 quality_score."""
    per_pair = [
        {
            **_compact({"pair_id": pair.pair_id}),
            "source_turn_number": pair.turn_number,
            **pair.quality,
        }
        for pair in pairs
        if pair.quality
    ]
    if not per_pair:
        return {}, None
    metrics: JsonObject = {"scale": "1-5"}
    for name in ("overall", *(name for _, name in CRITERIA)):
        values = [pair.quality[name] for pair in pairs if name in pair.quality]
        metrics[name] = round(sum(values) / len(values), 3) if values else None
    metrics["per_pair"] = per_pair
    overall = [pair.quality["overall"] for pair in pairs if "overall" in pair.quality]
    score = round_score(2 * sum(overall) / len(overall)) if overall else None
    return metrics, score


def _persona(header: _Header, pairs: list[_Pair]) -> str | None:
    """The first pair's client persona, else the consultant persona."""
    personas = (pair.client_persona for pair in pairs if pair.client_persona)
    return next(personas, header.consultant_persona)


def _topic(header: _Header, pairs: list[_Pair]) -> str | None:
    """dataset_metadata.topic, else the first parent template name, else the vertical."""
    if header.topic:
        return header.topic
    names = (pair.template_name for pair in pairs if pair.template_name)
    return next(names, humanise(header.vertical) if header.vertical else None)


def _emotional_arc(pairs: list[_Pair]) -> str | None:
    """Primary emotions in turn order, repeats collapsed: "fear -> worry -> relief"."""
    arc: list[str] = []
    for pair in pairs:
        primary = pair.emotion.primary
        if primary and (not arc or arc[-1] != primary):
            arc.append(primary)
    return " -> ".join(arc) or None


def _tags(header: _Header) -> list[str]:
    """dataset_metadata.tags plus conversation_source, without duplicates."""
    extra = [header.conversation_source] if header.conversation_source else []
    return list(dict.fromkeys([*header.tags, *extra]))


def slugify(name: str) -> str:
    """Lower-case slug of letters, digits, '.', '_' and '-' (at most 200 characters)."""
    return _SLUG_JUNK.sub("_", name.strip().lower()).strip("._-")[:200]


def humanise(name: str) -> str:
    """'fp_anxious_investor' -> 'Fp anxious investor'."""
    text = " ".join(name.replace("_", " ").replace("-", " ").split())
    return text[:1].upper() + text[1:]


def _compact(values: JsonObject) -> JsonObject:
    """Drop None values."""
    return {key: value for key, value in values.items() if value is not None}


def _has_type(value: object, want: str) -> bool:
    """Whether a decoded value has JSON type `want` (an integer is also a number)."""
    if isinstance(value, bool):
        return want == "boolean"
    if want == "number":
        return isinstance(value, int | float)
    return isinstance(value, _PY_TYPES[want])


def _json_type(value: object) -> str:
    """JSON type name of a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


_PY_TYPES: Final[dict[str, type]] = {
    "string": str,
    "integer": int,
    "object": dict,
    "array": list,
    "boolean": bool,
}
_EXACT_TYPES: Final[dict[str, frozenset[type]]] = {
    "string": frozenset({str}),
    "number": frozenset({int, float}),
    "integer": frozenset({int}),
    "object": frozenset({dict}),
    "array": frozenset({list}),
}
_TYPE_NAMES: Final[dict[type, str]] = {
    str: "string",
    float: "number",
    dict: "object",
    list: "array",
}
