"""Input types bounded like the PostgreSQL columns they land in (ranges, NOT NULL)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Final, TypeVar

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

T = TypeVar("T")

INT2_MAX: Final = 32_767
INT4_MAX: Final = 2_147_483_647
INT8_MAX: Final = 9_223_372_036_854_775_807

Int2 = Annotated[int, Field(ge=-INT2_MAX - 1, le=INT2_MAX)]
Int4 = Annotated[int, Field(ge=-INT4_MAX - 1, le=INT4_MAX)]
# orjson (the jsonb codec) writes integers up to 64 bits.
Int8 = Annotated[int, Field(ge=-INT8_MAX - 1, le=INT8_MAX)]


def _not_null(value: object) -> object:
    if value is None:
        raise PydanticCustomError("null_not_allowed", "may be left out, but must not be null")
    return value


# A PATCH field whose column is NOT NULL: leaving it out keeps the value (the default None is
# never validated), an explicit null is a 422 naming the field. Type checkers see `T | None`;
# pydantic validates T alone, so its errors and JSON schema have no null branch.
if TYPE_CHECKING:
    Omittable = Annotated[T | None, ...]
else:
    Omittable = Annotated[T, BeforeValidator(_not_null)]
