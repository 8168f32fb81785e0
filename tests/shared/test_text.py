"""Text, JSON values and NOT NULL fields as the input models check them."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import BaseModel, ValidationError

from shared.conversations.seed_format import SeedFormatError, parse_seed_document
from shared.models.bounds import Int4, Omittable
from shared.models.text import JsonValue, Text, bad_strings, text_problem
from tests.support.seed_files import seed_file


class Model(BaseModel):
    """A model using each type."""

    text: Text | None = None
    labels: list[Text] = []
    data: JsonValue = None
    count: Int4 | None = None
    flag: Omittable[bool] = None
    tags: Omittable[Annotated[list[Text], "tags"]] = None


def _errors(body: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as info:
        Model.model_validate(body)
    return [(err["loc"], err["type"]) for err in info.value.errors()]


@pytest.mark.parametrize("value", ["\x00", "a\x00b", "\ud800", "x\udfffy", "\U0001f600\x00"])
def test_nul_and_lone_surrogates_are_refused_naming_the_field(value: str) -> None:
    assert _errors({"text": value}) == [(("text",), "invalid_text")]
    assert _errors({"labels": ["ok", value]}) == [(("labels", 1), "invalid_text")]


@pytest.mark.parametrize("value", ["", "plain", "emoji 😅", "<script>", "\u202e\ufeff", "\t\n"])
def test_storable_text_passes(value: str) -> None:
    assert Model.model_validate({"text": value}).text == value
    assert text_problem(value) is None


def test_json_values_are_checked_keys_and_all() -> None:
    doc = {"a": ["ok", {"b": "x\x00"}], "k\ud800": 1, "n": 5}
    assert [path for path, _ in bad_strings(doc)] == ["$.a[1].b", "$"]
    assert _errors({"data": doc}) == [(("data",), "invalid_text")]
    assert Model.model_validate({"data": {"a": [1, "ok", None]}}).data == {"a": [1, "ok", None]}


def test_int4_bounds() -> None:
    assert Model.model_validate({"count": 2**31 - 1}).count == 2**31 - 1
    assert _errors({"count": 2**31}) == [(("count",), "less_than_equal")]
    assert _errors({"count": -(2**31) - 1}) == [(("count",), "greater_than_equal")]


def test_omittable_field_may_be_left_out_but_not_null() -> None:
    assert Model.model_validate({}).model_dump(exclude_unset=True) == {}
    assert _errors({"flag": None, "tags": None}) == [
        (("flag",), "null_not_allowed"),
        (("tags",), "null_not_allowed"),
    ]
    assert Model.model_validate({"flag": False, "tags": []}).flag is False
    schema = Model.model_json_schema()["properties"]
    assert schema["flag"]["type"] == "boolean"
    assert "anyOf" not in schema["flag"]


def test_seed_file_strings_are_checked_everywhere() -> None:
    doc = seed_file("ugly_strings")
    doc["dataset_metadata"]["tags"] = ["ok", "bad\x00"]
    doc["training_pairs"][0]["current_user_input"] = "lone \ud800"
    doc["training_pairs"][1]["extra"] = {"note": "\x00"}
    with pytest.raises(SeedFormatError) as info:
        parse_seed_document(doc)
    paths = {problem.path for problem in info.value.problems}
    assert {
        "$.dataset_metadata.tags[1]",
        "$.training_pairs[0].current_user_input",
        "$.training_pairs[1].extra.note",
    } <= paths
