"""The streaming validators: counts match the render, any chunking works, corruption is caught."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from shared.exports.formats import (
    ExportConversation,
    ExportOptions,
    ExportSummary,
    OutputInvalid,
    ValidationReport,
    Validator,
    get_validator,
)

Exporter = Callable[[ExportOptions, list[ExportConversation]], tuple[bytes, ExportSummary]]
MakeOptions = Callable[..., ExportOptions]
MakeConversation = Callable[..., ExportConversation]
FORMATS = ["jsonl", "json", "csv", "markdown"]
FLAG_SETS: list[dict[str, bool]] = [
    {},
    {"include_metadata": False},
    {
        "include_timestamps": True,
        "include_parent_references": True,
        "include_approval_history": True,
        "include_full_content": False,
    },
]


def validate(options: ExportOptions, chunks: list[bytes]) -> ValidationReport:
    """Feed the chunks to a fresh validator and finish it."""
    validator = get_validator(options)
    for chunk in chunks:
        validator.feed(chunk)
    return validator.finish()


def counts(report: ValidationReport) -> tuple[int, int]:
    """The figures the worker compares with its summary."""
    return report.conversations, report.turns


@pytest.fixture
def small(
    make_conversation: MakeConversation,
) -> list[ExportConversation]:
    """Two short conversations with multi-byte text, quotes and newlines, for exhaustive cuts."""
    return [
        make_conversation(
            "a", [("user", 'é "q",\r\nx'), ("assistant", "ok 😅")], system_prompt="sys"
        ),
        make_conversation("b", [("user", "=1"), ("assistant", "\n\n")], quality_score=7.5),
    ]


@pytest.mark.parametrize("flags", FLAG_SETS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_counts_match_summary(
    export: Exporter,
    make_options: MakeOptions,
    conversations: list[ExportConversation],
    fmt: str,
    flags: dict[str, bool],
) -> None:
    options = make_options(fmt, **flags)
    data, summary = export(options, conversations)
    report = validate(options, [data])
    assert counts(report) == (summary.conversation_count, summary.total_turns) == (3, 26)
    assert report.byte_count == len(data)


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_export_validates(export: Exporter, make_options: MakeOptions, fmt: str) -> None:
    options = make_options(fmt)
    assert counts(validate(options, [export(options, [])[0]])) == (0, 0)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_two_chunk_split(
    export: Exporter, make_options: MakeOptions, small: list[ExportConversation], fmt: str
) -> None:
    options = make_options(fmt)
    data, summary = export(options, small)
    expected = (summary.conversation_count, summary.total_turns)
    for cut in range(len(data) + 1):
        assert counts(validate(options, [data[:cut], data[cut:]])) == expected, cut
    assert counts(validate(options, [data[i : i + 1] for i in range(len(data))])) == expected


@pytest.mark.parametrize("fmt", FORMATS)
def test_random_splits(
    export: Exporter,
    make_options: MakeOptions,
    conversations: list[ExportConversation],
    fmt: str,
) -> None:
    options = make_options(fmt)
    data, summary = export(options, conversations)
    rng = random.Random(fmt)
    for _ in range(30):
        cuts = sorted(rng.sample(range(1, len(data)), rng.randint(1, 40)))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        report = validate(options, chunks)
        assert counts(report) == (summary.conversation_count, summary.total_turns)


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncation_is_caught(
    export: Exporter, make_options: MakeOptions, small: list[ExportConversation], fmt: str
) -> None:
    options = make_options(fmt)
    data, summary = export(options, small)
    expected = (summary.conversation_count, summary.total_turns)
    for cut in range(len(data)):
        try:
            report = validate(options, [data[:cut]])
        except OutputInvalid:
            continue
        # JSONL and CSV have no closing marker: a cut at a line end shows in the counts.
        assert fmt in ("jsonl", "csv"), cut
        assert counts(report) != expected, cut


CORRUPTIONS: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("jsonl", lambda d: d.replace(b'"content"', b'\n"content"', 1)),
    ("jsonl", lambda d: d.replace(b'"assistant"', b'"robot"', 1)),
    ("jsonl", lambda d: d.replace(b"\n", b"\n\n", 1)),
    ("jsonl", lambda d: d.replace(b'{"messages"', b'{"extra":1,"messages"', 1)),
    ("jsonl", lambda d: d.replace(b"\xc3\xa9", b"\xc3", 1)),
    ("json", lambda d: d.replace(b"    },\n", b"    }\n", 1)),
    ("json", lambda d: d.replace(b'"conversation_count": 2', b'"conversation_count": 3')),
    ("json", lambda d: d.replace(b'"total_turns": 5', b'"total_turns": 6')),
    ("json", lambda d: d.replace(b'"role": "user"', b'"role": "client"', 1)),
    ("json", lambda d: d.replace(b'  "version"', b'  "versio"', 1)),
    ("csv", lambda d: d[3:]),
    ("csv", lambda d: d.replace(b'x",', b"x,", 1)),
    ("csv", lambda d: d.replace(b"\r\n", b"\n", 2)),
    ("csv", lambda d: d.replace(b",assistant,", b",assistant,extra,", 1)),
    ("csv", lambda d: d.replace(b"turn_number", b"turn", 1)),
    ("csv", lambda d: d.replace(b",assistant,", b",user,")),
    ("markdown", lambda d: d.replace(b"\n> x\n", b"\nx\n", 1)),
    ("markdown", lambda d: d.replace(b"**Assistant:**\n\n", b"**Assistant:**\n", 1)),
    ("markdown", lambda d: d.replace(b"\n---\n", b"\n", 1)),
    ("markdown", lambda d: d.replace(b"conversations=2", b"conversations=1")),
    ("markdown", lambda d: d.replace(b"# Conversation: B", b"# Chat: B")),
    ("markdown", lambda d: d + b"trailing\n"),
]


@pytest.mark.parametrize(("fmt", "corrupt"), CORRUPTIONS)
def test_corruption_is_caught(
    export: Exporter,
    make_options: MakeOptions,
    small: list[ExportConversation],
    fmt: str,
    corrupt: Callable[[bytes], bytes],
) -> None:
    options = make_options(fmt)
    data, _ = export(options, small)
    broken = corrupt(data)
    assert broken != data
    with pytest.raises(OutputInvalid):
        validate(options, [broken])


def test_csv_header_must_match_options(
    export: Exporter, make_options: MakeOptions, small: list[ExportConversation]
) -> None:
    data, _ = export(make_options("csv"), small)
    with pytest.raises(OutputInvalid, match="header"):
        validate(make_options("csv", include_timestamps=True), [data])


def test_jsonl_line_without_assistant_is_invalid(make_options: MakeOptions) -> None:
    line = b'{"messages":[{"role":"user","content":"hi"}]}\n'
    with pytest.raises(OutputInvalid, match="assistant"):
        validate(make_options("jsonl"), [line])


def test_csv_rows_of_one_conversation_need_both_roles(
    export: Exporter, make_options: MakeOptions, small: list[ExportConversation]
) -> None:
    data, _ = export(make_options("csv"), small)
    lines = data.split(b"\r\n")
    without_b_assistant = b"\r\n".join(line for line in lines if not line.startswith(b"b,"))
    assert counts(validate(make_options("csv"), [without_b_assistant])) == (1, 3)
    only_b_user = b"\r\n".join([*lines[:-2], b""])
    with pytest.raises(OutputInvalid, match="assistant"):
        validate(make_options("csv"), [only_b_user])


@pytest.mark.parametrize("fmt", FORMATS)
def test_adjacent_conversations_sharing_a_slug_count_twice(
    export: Exporter, make_options: MakeOptions, small: list[ExportConversation], fmt: str
) -> None:
    options = make_options(fmt)
    data, summary = export(options, [small[1], small[1]])
    assert (
        counts(validate(options, [data]))
        == (2, 4)
        == (
            summary.conversation_count,
            summary.total_turns,
        )
    )


def _outcome(options: ExportOptions, feed: Callable[[Validator], None]) -> object:
    """What a fresh validator concludes: its counts, or the failure's reason."""
    validator = get_validator(options)
    try:
        feed(validator)
        report = validator.finish()
    except OutputInvalid as exc:
        return exc.reason
    return counts(report), report.byte_count


GOOD_LINE = b'{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}\n'


@pytest.mark.parametrize(
    "parts",
    [
        [GOOD_LINE, GOOD_LINE],
        [GOOD_LINE + GOOD_LINE],  # two lines in one piece
        [GOOD_LINE[:10], GOOD_LINE[10:], GOOD_LINE],  # a line across pieces
        [GOOD_LINE, b"\n", GOOD_LINE],  # a blank line
        [GOOD_LINE, b'{"messages": "no"}\n'],
        [GOOD_LINE, GOOD_LINE[:-1]],  # truncated: no final LF
        [b'{"messages":[{"role":"user","content":"a"}]}\n'],  # no assistant
    ],
)
@pytest.mark.parametrize("fmt", FORMATS)
def test_feeding_parts_concludes_what_feeding_their_concatenation_does(
    make_options: MakeOptions, fmt: str, parts: list[bytes]
) -> None:
    """JSONL checks whole-line pieces in place; the result must not depend on that."""
    options = make_options(fmt, include_metadata=False)
    joined = b"".join(parts)
    assert _outcome(options, lambda v: v.feed_parts(parts)) == _outcome(
        options, lambda v: v.feed(joined)
    )
