"""Arrow arrays built from buffers: bytes and offsets in, no Python object per value.

`pa.array` on a Python list imports pandas when it is installed (pyarrow asks whether the list
is a pandas object): a second and ~40 MB of resident memory in the exporter for nothing. These
builders hand pyarrow ready buffers instead, which is also what keeps a row group's cost at a
few joins over its column pieces.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from itertools import accumulate
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc

_MAX_OFFSET = 2**31 - 1


def offsets(lengths: Iterable[int]) -> pa.Buffer:
    """Int32 offsets (starting at 0) of values of these lengths."""
    values = array("i", accumulate(lengths, initial=0))
    if values[-1] > _MAX_OFFSET:
        raise ValueError("a row group's text passes 2 GiB")
    return pa.py_buffer(values)


def offsets_array(lengths: Sequence[int]) -> pa.Int32Array:
    """The offsets of values of these lengths as an array (a list array's offsets)."""
    array_ = pa.Array.from_buffers(pa.int32(), len(lengths) + 1, [None, offsets(lengths)])
    return cast(pa.Int32Array, array_)


def utf8_array(data: bytes, lengths: Sequence[int]) -> pa.Array[Any]:
    """A string array of `len(lengths)` values, the UTF-8 `data` cut at `lengths` (no nulls)."""
    return pa.Array.from_buffers(
        pa.string(), len(lengths), [None, offsets(lengths), pa.py_buffer(data)]
    )


def string_array(values: Sequence[str | None]) -> pa.Array[Any]:
    """A string array of the values, None as null."""
    encoded = [b"" if value is None else value.encode() for value in values]
    nulls = values.count(None)
    validity = _validity(values) if nulls else None
    return pa.Array.from_buffers(
        pa.string(),
        len(values),
        [validity, offsets(map(len, encoded)), pa.py_buffer(b"".join(encoded))],
        null_count=nulls,
    )


def _validity(values: Sequence[object]) -> pa.Buffer:
    """Arrow's validity bitmap (bit i set: value i is not null, least significant bit first)."""
    bits = bytearray((len(values) + 7) // 8)
    for index, value in enumerate(values):
        if value is not None:
            bits[index >> 3] |= 1 << (index & 7)
    return pa.py_buffer(bytes(bits))


def coded_array(codes: bytes, names: pa.Array[Any]) -> pa.Array[Any]:
    """`names[code]` for each byte of `codes` (a small dictionary expanded to plain values)."""
    indices = pa.Array.from_buffers(pa.int8(), len(codes), [None, pa.py_buffer(codes)])
    return pc.take(names, indices)
