"""Each JSONL target's renderer and rules; the rules and validators failing on broken rows;
Parquet and txt validators catching damaged files."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from markdown_it import MarkdownIt

from shared.exports.formats import ExportOptions, OutputInvalid, RenderError, get_validator
from shared.exports.formats.targets import TargetTransformer, rules_for
from shared.exports.stream import render_small
from shared.models.export import Role
from tests.exporter.conftest import EXPORT_DATE, conversation

TARGETS = ["bedrock-claude", "sharegpt", "trl", "hf-chat"]
GOOD = conversation(
    "good",
    [("system", "Be kind."), ("user", "Hi <b>"), ("assistant", "Hello"), ("user", "Bye"),
     ("assistant", "See you")],
)  # fmt: skip


def target(name: str, **extra: Any) -> ExportOptions:
    """JSONL options for a target (no metadata: every target accepts that)."""
    return ExportOptions.model_validate(
        {"format": "jsonl", "target": name, "include_metadata": False,
         "export_date": EXPORT_DATE, **extra}
    )  # fmt: skip


def line(name: str, conv: Any = GOOD, **extra: Any) -> dict[str, Any]:
    """The target's record for one conversation."""
    record: dict[str, Any] = orjson.loads(TargetTransformer(target(name, **extra)).render(conv))
    return record


def test_bedrock_lifts_the_system_prompt_and_keeps_only_its_keys() -> None:
    assert line("bedrock-claude") == {
        "system": "Be kind.",
        "messages": [
            {"role": "user", "content": "Hi <b>"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye"},
            {"role": "assistant", "content": "See you"},
        ],
    }


def test_sharegpt_names_speakers_from_and_value() -> None:
    speakers = [(e["from"], e["value"]) for e in line("sharegpt")["conversations"]]
    assert speakers[:3] == [("system", "Be kind."), ("human", "Hi <b>"), ("gpt", "Hello")]


@pytest.mark.parametrize("name", ["trl", "hf-chat"])
def test_trl_keeps_the_system_turn_or_folds_it(name: str) -> None:
    assert line(name)["messages"][0] == {"role": "system", "content": "Be kind."}
    folded = line(name, fold_system=True)["messages"]
    assert folded[0] == {"role": "user", "content": "Be kind.\n\nHi <b>"}
    assert [m["role"] for m in folded] == ["user", "assistant", "user", "assistant"]


BROKEN: dict[str, list[tuple[Role, str]]] = {
    "two users in a row": [("user", "a"), ("user", "b"), ("assistant", "c")],
    "ends with the user": [("user", "a"), ("assistant", "b"), ("user", "c")],
    "assistant first": [("assistant", "a"), ("user", "b"), ("assistant", "c")],
    "blank content": [("user", "\u200b "), ("assistant", "b")],
    "system in the middle": [("user", "a"), ("system", "s"), ("assistant", "b")],
}


@pytest.mark.parametrize("name", TARGETS)
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_rules_refuse_broken_conversations(name: str, case: str) -> None:
    conv = conversation(f"broken-{case}", BROKEN[case])
    with pytest.raises(RenderError) as err:
        TargetTransformer(target(name)).render(conv)
    assert err.value.reason.startswith(f"{name}: ")


BROKEN_LINES = {
    "bedrock-claude": [
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
         "metadata": {}},
        {"system": "", "messages": [{"role": "user", "content": "a"},
                                    {"role": "assistant", "content": "b"}]},
        {"messages": [{"role": "user", "content": "a", "extra": 1},
                      {"role": "assistant", "content": "b"}]},
        {"messages": [{"role": "system", "content": "a"}, {"role": "user", "content": "b"},
                      {"role": "assistant", "content": "c"}]},
    ],
    "sharegpt": [
        {"conversations": [{"from": "user", "value": "a"}, {"from": "gpt", "value": "b"}]},
        {"conversations": [{"from": "human", "value": 1}, {"from": "gpt", "value": "b"}]},
        {"conversations": [{"from": "human", "value": "a"}, {"from": "system", "value": "b"}]},
        {"conversations": [], "metadata": {}},
    ],
    "trl": [
        {"messages": [{"role": "user", "content": "a"}], "extra": True},
        {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
        {"messages": [{"role": "tool", "content": "a"}, {"role": "assistant", "content": "b"}]},
    ],
}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "record"), [(n, r) for n, records in BROKEN_LINES.items() for r in records]
)
def test_rule_checks_and_validators_fail_on_broken_lines(name: str, record: Any) -> None:
    assert rules_for(target(name)).check(record) is not None
    with pytest.raises(OutputInvalid, match=f"line 1: {name}: "):
        validate(target(name), orjson.dumps(record) + b"\n")


def validate(options: ExportOptions, data: bytes) -> None:
    """Feed a whole file to the options' validator and finish it."""
    validator = get_validator(options)
    validator.feed(data)
    validator.finish()


def test_folded_trl_files_allow_no_system_message() -> None:
    record = line("trl")  # not folded: starts with a system message
    assert rules_for(target("trl", fold_system=True)).check(record) is not None
    assert rules_for(target("trl")).check(record) is None


def test_parquet_validator_catches_truncation() -> None:
    options = ExportOptions(format="parquet", export_date=EXPORT_DATE)
    data, tally, _ = render_small(options, [GOOD])
    table = pq.read_table(io.BytesIO(data))
    assert table.num_rows == tally.summary.conversation_count == 1
    assert table.to_pylist()[0]["messages"][1] == {"role": "user", "content": "Hi <b>"}
    with pytest.raises(OutputInvalid):
        validate(options, data[:-10])


def test_parquet_validator_keeps_only_a_bounded_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.exports.formats import parquet, parquet_check

    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 2)
    options = ExportOptions(format="parquet", export_date=EXPORT_DATE)
    data, _, _ = render_small(options, [GOOD] * 40)
    footer = int.from_bytes(data[-8:-4], "little") + 8
    chunks = [data[i : i + 100] for i in range(0, len(data), 100)]
    monkeypatch.setattr(parquet_check, "MAX_FOOTER", footer)
    validator = parquet_check.ParquetValidator(options)
    held = 0
    for chunk in chunks:
        validator.feed(chunk)
        held = max(held, validator._tail_size)  # the bound under test
    assert validator.finish().conversations == 40
    assert held < footer + 8 + 100 < len(data)
    monkeypatch.setattr(parquet_check, "MAX_FOOTER", footer // 2)
    validator = parquet_check.ParquetValidator(options)
    for chunk in chunks:
        validator.feed(chunk)
    with pytest.raises(OutputInvalid, match="too large to check"):
        validator.finish()


def test_txt_validator_catches_truncation_and_bad_counts() -> None:
    options = ExportOptions(format="txt", export_date=EXPORT_DATE)
    data, _, _ = render_small(options, [GOOD])
    for broken in (data[: data.rindex(b"===")], data.replace(b"turns=5", b"turns=6")):
        with pytest.raises(OutputInvalid):
            validate(options, broken if broken.endswith(b"\n") else broken + b"\n")


def test_markdown_shows_html_as_text_in_a_real_renderer() -> None:
    hostile = conversation(
        "html", [("user", "<script>alert(1)</script>"), ("assistant", "</blockquote><b>x</b> &")]
    )
    options = ExportOptions(format="markdown", export_date=EXPORT_DATE)
    data, _, _ = render_small(options, [hostile])
    rendered = MarkdownIt("commonmark", {"html": True}).render(data.decode())
    assert "<script>" not in rendered
    assert "<b>" not in rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    assert "&lt;/blockquote&gt;&lt;b&gt;x&lt;/b&gt; &amp;" in rendered
