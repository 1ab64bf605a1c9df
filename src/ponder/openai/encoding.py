"""JSON out: UTF-8 bytes, compact, safe for any text the model wrote."""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any) -> bytes:
    """JSON as UTF-8; text that UTF-8 cannot carry (lone surrogates) goes out \\u-escaped."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, separators=(",", ":")).encode("ascii")
