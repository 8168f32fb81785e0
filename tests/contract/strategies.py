"""Hypothesis strategies from the OpenAPI document: mostly-valid values with ugly ones mixed in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from hypothesis import strategies as st

Schema = dict[str, Any]

UGLY_TEXT = [
    "\x00",
    "nul\x00inside",
    "\ud800",
    "lone \udfff low",
    "x" * 100_000,
    "",
    " ",
    "<script>alert(1)</script>",
    "'; DROP TABLE conversations; --",
    'quote " comma , newline \n tab \t',
    "emoji 😅🏳️‍🌈",
    "\u202e\u200b\ufeff",
]
UGLY_NUMBERS: list[Any] = [
    5e-324, -5e-324, 1e308, -1e308, 0, -1, 0.5, 1_000_000, 999_999.9999995,
    2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 2**70, 32_768,
]  # fmt: skip
UGLY_ANY: list[Any] = [None, True, [], {}, [None], {"": None}, "null", *UGLY_NUMBERS, *UGLY_TEXT]


def ugly() -> st.SearchStrategy[Any]:
    """One hostile JSON value: NUL, lone surrogates, nulls, extreme numbers, overlong text."""
    return st.sampled_from(UGLY_ANY)


class SchemaStrategies:
    """Builds value strategies from the schemas of one OpenAPI document."""

    def __init__(self, document: Schema, ids: list[str], example: Any) -> None:
        self.components: Schema = document.get("components", {}).get("schemas", {})
        self.ids = ids
        self.example = example

    def resolve(self, schema: Schema) -> Schema:
        """Follow a local $ref."""
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def value(self, schema: Schema, depth: int = 0) -> st.SearchStrategy[Any]:
        """A value for `schema`, ugly one time in five."""
        valid = self.valid(schema, depth)
        return st.one_of(valid, valid, valid, valid, ugly())

    def valid(self, schema: Schema, depth: int = 0) -> st.SearchStrategy[Any]:
        """A value that follows the schema's shape (not always its bounds)."""
        schema = self.resolve(schema)
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        if "const" in schema:
            return st.just(schema["const"])
        for key in ("anyOf", "oneOf", "allOf"):
            if key in schema:
                return st.one_of([self.valid(part, depth) for part in schema[key]])
        kind = schema.get("type")
        if not schema or (kind == "object" and not schema.get("properties")
                          and "additionalProperties" not in schema):  # fmt: skip
            return st.one_of(mutated(self.example), ugly())  # free-form: an uploaded file
        if depth > 4:
            return st.none()
        builder = {
            "object": self._object, "array": self._array, "string": self._string,
            "integer": self._integer, "number": self._number,
        }.get(kind or "")  # fmt: skip
        if builder is not None:
            return builder(schema, depth)
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        return ugly()

    def _object(self, schema: Schema, depth: int) -> st.SearchStrategy[Any]:
        props: Schema = schema.get("properties", {})
        if not props:
            extra = schema.get("additionalProperties")
            values = self.value(extra, depth + 1) if isinstance(extra, dict) else ugly()
            return st.dictionaries(st.sampled_from(["a", "k\x00", "\ud800"]), values, max_size=2)
        required = set(schema.get("required", []))
        fields = {name: self.value(sub, depth + 1) for name, sub in props.items()}
        return st.fixed_dictionaries(
            {k: v for k, v in fields.items() if k in required},
            optional={k: v for k, v in fields.items() if k not in required},
        )

    def _array(self, schema: Schema, depth: int) -> st.SearchStrategy[Any]:
        items = schema.get("items", {})
        return st.lists(self.value(items, depth + 1), max_size=3)

    def _string(self, schema: Schema, _: int) -> st.SearchStrategy[Any]:
        fmt = schema.get("format")
        if fmt == "uuid":
            return st.sampled_from([*self.ids, str(uuid4()), "not-a-uuid"])
        if fmt == "date-time":
            return st.sampled_from(
                [
                    datetime.now(UTC).isoformat(),
                    "0001-01-01T00:00:00Z",
                    "9999-12-31T23:59:59.999999Z",
                    "2026-02-30T00:00:00Z",
                ]
            )
        return st.text(max_size=int(schema.get("maxLength", 40)) // 4 + 1)

    def _integer(self, schema: Schema, _: int) -> st.SearchStrategy[Any]:
        low, high = schema.get("minimum", 0), schema.get("maximum", 20)
        return st.integers(min_value=int(low), max_value=int(high))

    def _number(self, schema: Schema, _: int) -> st.SearchStrategy[Any]:
        low, high = schema.get("minimum", 0), schema.get("maximum", 10)
        return st.floats(min_value=low, max_value=high, allow_nan=False)


def leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every node (subtrees too) of a JSON value."""
    if isinstance(value, dict):
        return [path] + [p for k, v in value.items() for p in leaf_paths(v, (*path, k))]
    if isinstance(value, list):
        return [path] + [p for i, v in enumerate(value) for p in leaf_paths(v, (*path, i))]
    return [path]


def replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A copy of `value` with the node at `path` replaced by `new`."""
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = replace(value[path[0]], path[1:], new)
    return copy


def mutated(example: Any) -> st.SearchStrategy[Any]:
    """`example` with one or two of its values (or whole subtrees) replaced by ugly ones."""

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        value = example
        for _ in range(draw(st.integers(0, 2))):
            value = replace(value, draw(st.sampled_from(leaf_paths(value))), draw(ugly()))
        return value

    return build()


def as_query(value: Any) -> str:
    """How a generated value travels in a query string or path segment."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return str(value)
    return str(value)
