"""The fast reader of each event type agrees with its field table (hedger.events).

`read_event` reads a well-formed payload with straight-line code generated
from the field table and falls back to the table's readers for anything
else, which name the first bad field. The fast reader must never accept a
payload the table rejects, and must build the same event when it accepts.
Every field of every event type is tried with values at and across the edges
of its grammar.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from hedger.events import TOPICS, LoanBooked, read_event
from hedger.events import _read_fields as read_fields
from hedger.outcomes import Reason, Rejected
from tests.factories import amended, booked, cancelled, protection, quote, repaid, report

TICK = {
    "schema_version": 1,
    "event_id": "t",
    "event_type": "clock.tick",
    "occurred_at": "2026-01-01T00:00:00Z",
}
GOOD: list[tuple[str, dict[str, Any]]] = [
    ("loan-bookings", booked("L1", "250000000.50", maturity="2030-01-01")),
    ("loan-bookings", amended("L1", 2, notional="5")),
    ("loan-bookings", amended("L1", 2, maturity_date="2031-01-01")),
    ("loan-bookings", repaid("L1", 2, "5")),
    ("loan-bookings", cancelled("L1", 3)),
    ("cds-executions", report("x#1", "filled", "5", counterparty="S1")),
    ("cds-executions", report("x#1", "rejected")),
    ("cds-executions", protection("5", counterparty="S2")),
    ("desk-clock", TICK),
    ("cds-quotes", quote("100", recovery="0.4")),
]
VALUES: list[Any] = [
    None,
    0,
    1,
    2,
    30,
    31,
    -1,
    True,
    1.0,
    10**20,
    "",
    "x",
    "x" * 128,
    "x" * 129,
    "x" * 300,
    "x" * 301,
    "é" * 128,
    "0",
    "5",
    "0.5",
    "0123",
    "5.",
    "1.234",
    "999999999999999.99",
    "1000000000000000",
    "١٢٣",
    "2030-01-01",
    "2030-02-30",
    "2026-01-01",
    "1999-12-31",
    "2200-01-01",
    "2026-01-02T09:00:00Z",
    "2026-01-02T23:59:59.123456789Z",
    "2026-01-02T24:00:00Z",
    "2026-01-02T09:60:00Z",
    "2026-02-30T09:00:00Z",
    "2026-01-02T09:00:00",
    "USD",
    "usd",
    "USDX",
    "MR14",
    "XR",
    "BUY_PROTECTION",
    "SELL_PROTECTION",
    "filled",
    "partially_filled",
    "cancelled",
    "expired",
    "10000",
    "10000.0001",
    "0.95",
    "0.96",
    [1, None],
    {"nested": None},
]


def cases() -> list[tuple[str, dict[str, Any]]]:
    payloads = []
    for topic, good in GOOD:
        payloads.append((topic, good))
        for field in good:
            if field == "event_type":
                continue
            payloads.append((topic, {k: v for k, v in good.items() if k != field}))
            payloads += [(topic, {**good, field: value}) for value in VALUES]
    return payloads


def by_table(topic: str, payload: dict[str, Any]) -> tuple[Any, ...] | None:
    """The event's values as the field table reads them, or None when it rejects them."""
    kind = TOPICS[topic].kinds[payload["event_type"]]
    if kind.prepare is not None:
        payload = kind.prepare(payload)
    try:
        return tuple(read_fields(kind.fields, payload, ""))
    except Rejected:
        return None


def test_the_fast_reader_accepts_only_what_the_table_accepts_and_reads_it_alike() -> None:
    accepted = rejected = 0
    for topic, payload in cases():
        kind = TOPICS[topic].kinds[payload["event_type"]]
        prepared = payload if kind.prepare is None else kind.prepare(payload)
        fast = kind.fast(prepared)
        table = by_table(topic, payload)
        if fast is None:
            rejected += 1
            continue
        accepted += 1
        assert table is not None, (topic, payload)
        assert tuple(fast)[:-1] == table, (topic, payload)
    assert accepted > 100 and rejected > 1000  # both paths are exercised


@pytest.mark.parametrize("notional", ["0.5", "0123", "0000000000000000001.25"])
def test_amounts_outside_the_fast_grammar_are_still_read(notional: str) -> None:
    event = read_event("loan-bookings", booked("L1", notional, maturity="2030-01-01"))
    assert isinstance(event, LoanBooked)
    assert event.notional == Decimal(notional)


def test_a_bad_field_is_named_with_its_event_type() -> None:
    payload = booked("L1", "1.234", maturity="2030-01-01")
    with pytest.raises(Rejected) as caught:
        read_event("loan-bookings", payload)
    assert caught.value.reason is Reason.SCHEMA_VIOLATION
    assert caught.value.detail == (
        "loan.booked.notional: not a money string in (0, 10^15) with at most 2 decimals: '1.234'"
    )
    with pytest.raises(Rejected) as caught:
        read_event("desk-clock", {**TICK, "event_type": "clock.tock"})
    assert caught.value.detail == "event_type: Input should be 'clock.tick'"
