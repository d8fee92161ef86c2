"""The replay's dead-letter lines: compact JSON that gives back every payload exactly.

orjson writes them; what it refuses (an integer beyond 64 bits, a string
holding a lone surrogate) goes through the standard encoder. Either way a
reader gets the payload it would have parsed from the log.
"""

from __future__ import annotations

import io
import json

import pytest

from hedger.engine import HedgingEngine
from streams.offline.replay import replay
from tests.factories import make_config

BASE = (
    '"schema_version": 1, "event_id": "e1", "event_type": "loan.booked", '
    '"occurred_at": "2026-04-01T09:00:00.000Z", "loan_id": "L1", "issuer_id": "ISS1", '
    '"sequence": 1, "currency": "USD", "maturity_date": "2030-01-01"'
)


@pytest.mark.parametrize(
    ("value", "field"),
    [
        # a notional must be a decimal string: each of these is a schema violation
        ("1234567890123456789012345", "notional"),  # beyond 64 bits
        ('"\\ud800"', "notional"),  # a lone surrogate, escaped in the log
        ('"\u00e9t\u00e9"', "notional"),  # non-ASCII text
        ("12.5", "notional"),
    ],
)
def test_a_dead_letter_line_holds_the_payload_exactly(value: str, field: str) -> None:
    text = "{" + BASE + f', "{field}": {value}' + "}"
    line = json.dumps({"topic": "loan-bookings", "key": "L1", "value": json.loads(text)})
    dead = io.StringIO()
    stats = replay(HedgingEngine(make_config()), io.StringIO(line + "\n"), io.StringIO(), dead)
    assert stats.dead_letters == {"schema_violation": 1}
    (written,) = dead.getvalue().splitlines()
    record = json.loads(written)
    assert record["line"] == 1
    assert record["reason"] == "schema_violation"
    assert record["payload"] == json.loads(text)
    assert record["payload"][field] == json.loads(value)
    assert written.startswith('{"line":1,"topic":"loan-bookings",')  # compact
