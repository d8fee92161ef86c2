"""Compact JSON for what the bot writes: journal entries, table values, orders, dead letters.

Owns: `to_json`, orjson with the standard library's encoder as the fallback
for what orjson refuses. Shared by the live worker and the offline replay.
Imports the standard library and orjson.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def to_json(value: Any) -> bytes:
    """Compact JSON by orjson (several times faster than `json`). What orjson
    refuses — an integer beyond 64 bits, a string holding a lone surrogate —
    is written by `json`; every reader parses JSON, so only whitespace and
    escapes differ."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, separators=(",", ":")).encode()
