"""Each export format, read back by an independent reader, with content round-tripping exactly."""

from __future__ import annotations

import csv
import dataclasses
import html
import io
import json
import re
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from shared.exports.formats import (
    ExportConversation,
    ExportOptions,
    ExportSummary,
    ExportTurn,
    RenderError,
    get_transformer,
)
from shared.exports.formats.csv_format import safe_cell
from shared.exports.formats.fields import DUPLICATE_FIELDS, JUDGE_FIELDS

Exporter = Callable[[ExportOptions, list[ExportConversation]], tuple[bytes, ExportSummary]]
MakeOptions = Callable[..., ExportOptions]
MakeConversation = Callable[..., ExportConversation]
FORMATS = ["jsonl", "json", "csv", "markdown"]
CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "'")
MD_TURN = re.compile(r"^\*\*(System|User|Assistant):\*\*\n\n((?:>(?: [^\n]*)?\n)+)", re.MULTILINE)


def expected_turns(conv: ExportConversation) -> list[tuple[int, str, str]]:
    """The documented turn list: by turn_number, system_prompt as turn 0 if no system turn."""
    turns: list[tuple[int, str, str]] = [(t.turn_number, t.role, t.content) for t in conv.turns]
    turns.sort(key=lambda t: t[0])
    if conv.system_prompt and all(role != "system" for _, role, _ in turns):
        turns.insert(0, (0, "system", conv.system_prompt))
    return turns


def csv_text(value: str | None) -> str:
    """What the CSV rule documents for a text cell."""
    text = value or ""
    return "'" + text if text.startswith(CSV_TRIGGERS) else text


def parse_csv(data: bytes) -> list[list[str]]:
    """Read the CSV back with the csv module, as a spreadsheet import would."""
    text = data.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:], newline="")))


def parse_markdown(data: bytes) -> list[dict[str, Any]]:
    """Split sections, read the heading, bullets and quoted turns back."""
    text = data.decode("utf-8")
    body, _, trailer = text.rpartition("\n<!-- convoforge-export ")
    assert trailer.endswith(" -->\n")
    sections = []
    for section in body.split("\n---\n\n"):
        heading, _, rest = section.partition("\n\n")
        bullets, _, turns_text = rest.partition("\n\n")
        turns = [(role.lower(), _unquote(block)) for role, block in MD_TURN.findall(turns_text)]
        # Every line of the turns part belongs to a label, a blank or a quote.
        assert len(MD_TURN.sub("", turns_text).strip("\n")) == 0
        sections.append({"heading": heading, "bullets": bullets.split("\n"), "turns": turns})
    return sections


def _unquote(block: str) -> str:
    """Strip the blockquote markers of one turn."""
    return "\n".join(line[2:] for line in block[:-1].split("\n"))


def markdown_content(content: str) -> str:
    """Content as the Markdown format documents it: HTML escaped, LF line endings."""
    text = content.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- JSONL -----------------------------------------------------------------------------------


def test_jsonl_round_trips_messages(
    export: Exporter, make_options: MakeOptions, conversations: list[ExportConversation]
) -> None:
    data, _ = export(make_options("jsonl"), conversations)
    assert data.endswith(b"\n")
    lines = data.decode().split("\n")[:-1]
    assert len(lines) == len(conversations)
    for line, conv in zip(lines, conversations, strict=True):
        doc = json.loads(line)
        assert set(doc) == {"messages", "metadata"}
        assert doc["messages"] == [
            {"role": role, "content": content} for _, role, content in expected_turns(conv)
        ]


def test_jsonl_without_metadata_has_messages_only(
    export: Exporter, make_options: MakeOptions, conversations: list[ExportConversation]
) -> None:
    data, _ = export(make_options("jsonl", include_metadata=False), conversations)
    assert all(set(json.loads(line)) == {"messages"} for line in data.splitlines())


BASE_METADATA = {
    "conversation_id", "title", "tier", "persona", "emotion", "topic", *DUPLICATE_FIELDS,
}  # fmt: skip
SCORES = {"quality_score", *JUDGE_FIELDS}
QUALITY = SCORES | {"quality_metrics", "judge_rationale"}


@pytest.mark.parametrize(
    ("flags", "keys"),
    [
        ({}, BASE_METADATA | QUALITY),
        ({"include_quality_scores": False}, BASE_METADATA),
        ({"include_full_content": False}, BASE_METADATA | SCORES),
        ({"include_timestamps": True}, BASE_METADATA | QUALITY | {"created_at", "updated_at"}),
        (
            {"include_parent_references": True},
            BASE_METADATA
            | QUALITY
            | {"parent_id", "parent_type", "template_id", "scenario_id", "edge_case_id"},
        ),
        (
            {"include_approval_history": True},
            BASE_METADATA | QUALITY | {"reviewed_at", "reviewed_by", "approval_history"},
        ),
    ],
)
def test_jsonl_metadata_follows_flags(
    export: Exporter,
    make_options: MakeOptions,
    seed_conversations: list[ExportConversation],
    flags: dict[str, bool],
    keys: set[str],
) -> None:
    data, _ = export(make_options("jsonl", **flags), seed_conversations)
    first = json.loads(data.splitlines()[0])
    assert set(first["metadata"]) == keys
    assert first["metadata"]["conversation_id"] == seed_conversations[0].conversation_id


def test_jsonl_approval_history_notes_follow_full_content(
    export: Exporter, make_options: MakeOptions, seed_conversations: list[ExportConversation]
) -> None:
    full, _ = export(make_options("jsonl", include_approval_history=True), seed_conversations)
    brief, _ = export(
        make_options("jsonl", include_approval_history=True, include_full_content=False),
        seed_conversations,
    )
    entry = json.loads(full.splitlines()[0])["metadata"]["approval_history"][0]
    assert entry["notes"] == 'Looks right,\n"ship it"'
    assert entry["created_at"] == "2025-11-04T08:15:30.123456+00:00"
    brief_doc = json.loads(brief.splitlines()[0])
    assert "notes" not in brief_doc["metadata"]["approval_history"][0]
    # Training content is never shortened, whatever include_full_content says.
    assert brief_doc["messages"] == json.loads(full.splitlines()[0])["messages"]


# --- JSON ------------------------------------------------------------------------------------


def test_json_document_round_trips_and_is_pretty(
    export: Exporter, make_options: MakeOptions, conversations: list[ExportConversation]
) -> None:
    data, summary = export(make_options("json"), conversations)
    doc = json.loads(data)
    assert list(doc) == ["version", "export_date", "conversations", "conversation_count", "summary"]
    assert doc["export_date"] == "2025-11-20T09:30:00+00:00"
    assert doc["conversation_count"] == len(conversations) == summary.conversation_count
    for element, conv in zip(doc["conversations"], conversations, strict=True):
        assert element["conversation_id"] == conv.conversation_id
        assert element["title"] == conv.title
        turns = [(t["turn_number"], t["role"], t["content"]) for t in element["turns"]]
        assert turns == expected_turns(conv)
    assert data == orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def test_json_summary_counts(
    export: Exporter, make_options: MakeOptions, conversations: list[ExportConversation]
) -> None:
    data, _ = export(make_options("json"), conversations)
    summary = json.loads(data)["summary"]
    assert summary["total_turns"] == sum(len(expected_turns(c)) for c in conversations)
    assert summary["average_quality_score"] == 9.45
    assert summary["tier_distribution"] == {"template": 1, "edge_case": 2}


@pytest.mark.parametrize(
    ("flags", "metadata", "average", "annotations"),
    [
        ({}, True, True, True),
        ({"include_metadata": False}, False, False, False),
        ({"include_quality_scores": False}, True, False, True),
        ({"include_full_content": False}, True, True, False),
    ],
)
def test_json_flags(
    export: Exporter,
    make_options: MakeOptions,
    seed_conversations: list[ExportConversation],
    flags: dict[str, bool],
    metadata: bool,
    average: bool,
    annotations: bool,
) -> None:
    doc = json.loads(export(make_options("json", **flags), seed_conversations)[0])
    element = doc["conversations"][0]
    assert ("metadata" in element) is metadata
    assert ("summary" in doc) is metadata
    assert ("average_quality_score" in doc.get("summary", {})) is average
    assert ("detected_emotion" in element["turns"][1]) is annotations
    if annotations:
        assert element["turns"][1]["detected_emotion"] == "fear"


def test_json_empty_export_is_valid(export: Exporter, make_options: MakeOptions) -> None:
    doc = json.loads(export(make_options("json"), [])[0])
    assert doc["conversations"] == []
    assert doc["conversation_count"] == 0
    assert doc["summary"]["average_quality_score"] is None


# --- CSV -------------------------------------------------------------------------------------


def test_csv_round_trips_every_cell(
    export: Exporter, make_options: MakeOptions, conversations: list[ExportConversation]
) -> None:
    data, _ = export(make_options("csv"), conversations)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = parse_csv(data)
    assert rows[0] == [
        "conversation_id",
        "title",
        "status",
        "tier",
        "turn_number",
        "role",
        "content",
        "quality_score",
        *JUDGE_FIELDS,
        "persona",
        "emotion",
        "topic",
        *DUPLICATE_FIELDS,
    ]
    expected = [
        [
            csv_text(conv.conversation_id),
            csv_text(conv.title),
            conv.status,
            conv.tier,
            str(number),
            role,
            csv_text(content),
            "" if conv.quality_score is None else str(conv.quality_score),
            *("" if getattr(conv, f) is None else str(getattr(conv, f)) for f in JUDGE_FIELDS),
            csv_text(conv.persona),
            csv_text(conv.emotion),
            csv_text(conv.topic),
            "" if conv.duplicate_of is None else str(conv.duplicate_of),
            "" if conv.duplicate_similarity is None else str(conv.duplicate_similarity),
        ]
        for conv in conversations
        for number, role, content in expected_turns(conv)
    ]
    assert rows[1:] == expected
    judged = dict(zip(rows[0], rows[1], strict=True))
    assert judged["coherence_score"] == "0.9"
    assert judged["quality_overall"] == "0.84"
    assert judged["brand_voice_score"] == "3.5"
    assert (judged["quality_source"], judged["judge_rubric_version"]) == ("judge", "3")
    assert judged["duplicate_of"] == ""
    imported = dict(zip(rows[0], rows[-len(expected_turns(conversations[2])) - 1], strict=True))
    assert imported["coherence_score"] == ""  # not judged: an empty cell, not 0
    assert (imported["empathy_score"], imported["quality_source"]) == ("4.25", "imported")
    assert imported["duplicate_of"] == str(conversations[0].id)
    assert imported["duplicate_similarity"] == "0.83"


def test_csv_hostile_content_survives(
    export: Exporter, make_options: MakeOptions, hostile_conversation: ExportConversation
) -> None:
    rows = parse_csv(export(make_options("csv"), [hostile_conversation])[0])
    contents = [row[6] for row in rows[1:]]
    assert contents[1] == "line1\r\nline2\nline3\rline4\n\n\nends with a newline\n"
    assert contents[2] == "'\tstarts with a tab"
    assert contents[3] == "'=SUM(A1:A2)"
    assert contents[9] == hostile_conversation.turns[9].content
    assert len(contents[9]) == 10_000
    assert contents[8] == ""
    assert rows[1][0] == "'-hostile-slug"
    assert rows[1][rows[0].index("persona")] == "'=cmd|' /C calc'!A0"


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'=already", "''=already"),
        ("'", "''"),
        ("''", "'''"),
        (" =spaced", " =spaced"),
        ("a=b", "a=b"),
        ("\nx", "\nx"),
        ("", ""),
        (None, ""),
        (7, "7"),
    ],
)
def test_csv_formula_injection_rule(value: object, cell: str) -> None:
    assert safe_cell(value) == cell


@pytest.mark.parametrize(
    ("flags", "extra"),
    [
        ({}, ["quality_score", *JUDGE_FIELDS, "persona", "emotion", "topic", *DUPLICATE_FIELDS]),
        ({"include_metadata": False}, []),
        ({"include_quality_scores": False}, ["persona", "emotion", "topic", *DUPLICATE_FIELDS]),
        (
            {"include_timestamps": True, "include_parent_references": True},
            [
                "quality_score",
                *JUDGE_FIELDS,
                "persona",
                "emotion",
                "topic",
                *DUPLICATE_FIELDS,
                "created_at",
                "updated_at",
                "parent_id",
            ],
        ),
    ],
)
def test_csv_columns_follow_flags(
    export: Exporter,
    make_options: MakeOptions,
    seed_conversations: list[ExportConversation],
    flags: dict[str, bool],
    extra: list[str],
) -> None:
    rows = parse_csv(export(make_options("csv", **flags), seed_conversations)[0])
    assert rows[0][7:] == extra
    assert all(len(row) == 7 + len(extra) for row in rows)
    if "created_at" in extra:
        cell = dict(zip(rows[0], rows[1], strict=True))
        assert cell["created_at"] == "2025-11-02T08:15:30.123456+00:00"
        assert cell["parent_id"] == str(seed_conversations[0].parent_id)


# --- Markdown --------------------------------------------------------------------------------


def test_markdown_round_trips_turns(
    export: Exporter, make_options: MakeOptions, conversations: list[ExportConversation]
) -> None:
    data, _ = export(make_options("markdown"), conversations)
    sections = parse_markdown(data)
    assert len(sections) == len(conversations)
    for section, conv in zip(sections, conversations, strict=True):
        title = (conv.title or conv.conversation_id).replace("\r", " ").replace("\n", " ")
        title = html.escape(title, quote=False)
        assert section["heading"] == f"# Conversation: {title}"
        assert section["bullets"][0] == f"- **Conversation ID:** {conv.conversation_id}"
        assert all(line.startswith(("- **", "  - ")) for line in section["bullets"])
        assert section["turns"] == [
            (role, markdown_content(content)) for _, role, content in expected_turns(conv)
        ]


def test_markdown_separators_and_trailer(
    export: Exporter, make_options: MakeOptions, conversations: list[ExportConversation]
) -> None:
    data, _ = export(make_options("markdown"), conversations)
    lines = data.decode().split("\n")
    assert lines.count("---") == len(conversations) - 1
    assert lines[-2] == "<!-- convoforge-export conversations=3 turns=26 -->"
    assert lines[-3] == ""
    assert lines[-4].startswith(">")
    assert "\r" not in data.decode()


def test_markdown_every_content_line_is_quoted(
    export: Exporter, make_options: MakeOptions, hostile_conversation: ExportConversation
) -> None:
    text = export(make_options("markdown"), [hostile_conversation])[0].decode()
    assert "**User:**\n\n> # Conversation: fake\n> ---\n> **User:**\n> &gt; already" in text
    assert "**Assistant:**\n\n> line1\n> line2\n> line3\n> line4\n>\n>\n> ends" in text
    assert "**User:**\n\n>\n\n**Assistant:**" in text


def test_markdown_metadata_follows_flags(
    export: Exporter, make_options: MakeOptions, seed_conversations: list[ExportConversation]
) -> None:
    bare = parse_markdown(
        export(make_options("markdown", include_metadata=False), seed_conversations)[0]
    )
    assert [b.split(":**")[0] for b in bare[0]["bullets"]] == [
        "- **Conversation ID",
        "- **Status",
        "- **Tier",
    ]
    full = parse_markdown(
        export(
            make_options(
                "markdown",
                include_timestamps=True,
                include_parent_references=True,
                include_approval_history=True,
            ),
            seed_conversations,
        )[0]
    )
    bullets = full[0]["bullets"]
    assert '- **Persona:** Marcus Chen, 58, "Anxious Pre-Retiree"' in bullets
    assert "- **Quality score:** 9.3" in bullets
    assert "- **Created:** 2025-11-02T08:15:30.123456+00:00" in bullets
    assert bullets[-2] == "- **Approval history:**"
    assert bullets[-1].endswith(
        'approved by 00000000-0000-4000-8000-000000000001 (Looks right, "ship it")'
    )


# --- Shared rules ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("missing", ["user", "assistant"])
def test_missing_role_raises_render_error(
    make_options: MakeOptions, make_conversation: MakeConversation, fmt: str, missing: str
) -> None:
    kept = "assistant" if missing == "user" else "user"
    conv = make_conversation("lonely", [("system", "s"), (kept, "only me")])
    with pytest.raises(RenderError) as info:
        get_transformer(make_options(fmt)).render(conv)
    assert info.value.conversation_id == "lonely"


@pytest.mark.parametrize("fmt", ["json", "markdown"])
def test_render_error_leaves_transformer_state_alone(
    export: Exporter,
    make_options: MakeOptions,
    make_conversation: MakeConversation,
    seed_conversations: list[ExportConversation],
    fmt: str,
) -> None:
    bad = make_conversation("no-assistant", [("user", "hello?")])
    clean, _ = export(make_options(fmt), seed_conversations)
    skipped, summary = export(make_options(fmt), [bad, *seed_conversations, bad])
    assert skipped == clean
    assert summary.conversation_count == 2


@pytest.mark.parametrize("fmt", FORMATS)
def test_system_turn_is_not_duplicated(
    export: Exporter,
    make_options: MakeOptions,
    make_conversation: MakeConversation,
    fmt: str,
) -> None:
    conv = make_conversation(
        "sys", [("system", "from turn"), ("user", "u"), ("assistant", "a")], system_prompt="column"
    )
    data, summary = export(make_options(fmt), [conv])
    assert summary.total_turns == 3
    assert b"from turn" in data
    assert b"column" not in data


def test_turns_render_in_turn_number_order(
    export: Exporter, make_options: MakeOptions, make_conversation: MakeConversation
) -> None:
    turns = [
        ExportTurn(turn_number=5, role="assistant", content="second"),
        ExportTurn(turn_number=1, role="user", content="first"),
    ]
    shuffled = dataclasses.replace(make_conversation("order", []), turns=turns)
    messages = json.loads(export(make_options("jsonl"), [shuffled])[0])["messages"]
    assert [m["content"] for m in messages] == ["first", "second"]


@pytest.mark.parametrize(
    ("fmt", "extension", "content_type"),
    [
        ("jsonl", "jsonl", "application/jsonl"),
        ("json", "json", "application/json"),
        ("csv", "csv", "text/csv; charset=utf-8"),
        ("markdown", "md", "text/markdown; charset=utf-8"),
    ],
)
def test_transformer_file_details(
    make_options: MakeOptions, fmt: str, extension: str, content_type: str
) -> None:
    transformer = get_transformer(make_options(fmt))
    assert (transformer.extension, transformer.content_type) == (extension, content_type)


def test_summary_accumulates(conversations: list[ExportConversation]) -> None:
    summary = ExportSummary()
    assert summary.average_quality_score is None
    for conv in conversations:
        summary.add(conv)
    assert summary.to_dict() == {
        "conversation_count": 3,
        "total_turns": 26,
        "average_quality_score": 9.45,
        "tier_distribution": {"template": 1, "edge_case": 2},
    }
