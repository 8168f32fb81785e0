"""A JSON response rendered by orjson (the project's one JSON library on hot paths)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class JSONBytes(Response):
    """JSON via orjson: handles UUID, datetime and Decimal-free dicts fast."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialize with orjson (non-str keys allowed for histograms keyed by numbers)."""
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
