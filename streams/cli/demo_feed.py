"""The demo's input: the sample's bookings with one desk-clock tick per business day.

Owns: reading the sample log (`samples/desk-day.jsonl`) and placing the
desk clock's end-of-day ticks (SPEC §2) after each simulated business day's
bookings. Imports the standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "desk-day.jsonl"


def _event_day(value: object) -> date | None:
    """The UTC date of an event's `occurred_at`; None for a payload that has none."""
    if not isinstance(value, dict) or not isinstance(value.get("occurred_at"), str):
        return None
    try:
        return date.fromisoformat(value["occurred_at"][:10])
    except ValueError:
        return None


def business_days(start: date, end: date) -> Iterator[date]:
    """The weekdays from `start` up to, not including, `end`."""
    day = start
    while day < end:
        if day.weekday() < 5:
            yield day
        day += timedelta(days=1)


def clock_tick(day: date) -> dict[str, Any]:
    """The replay-log record of the desk clock's end-of-day tick for `day` (SPEC §2)."""
    tick = {
        "schema_version": 1,
        "event_id": f"tick-{day.isoformat()}",
        "event_type": "clock.tick",
        "occurred_at": f"{day.isoformat()}T23:59:59.999Z",
    }
    return {"topic": "desk-clock", "value": tick}


def demo_log(records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The sample's bookings, with one desk-clock tick per simulated business day.

    Records are replay-log records (SPEC §9). The `loan-bookings` records
    keep their order; the sample's recorded fills are left out (the paper
    venue answers the bot's own orders). The tick of a weekday comes after
    every booking of that day and before the first booking of a later day;
    a weekday without bookings, between the first and the last booking's
    date, gets its tick too. A payload without a readable date keeps its
    place and moves no day.
    """
    pending: date | None = None  # the first day not ticked yet
    for record in records:
        if record.get("topic") != "loan-bookings":
            continue
        day = _event_day(record.get("value"))
        if day is not None:
            if pending is None:
                pending = day
            for tick_day in business_days(pending, day):
                yield clock_tick(tick_day)
            pending = max(pending, day)
        yield record
    if pending is not None:
        for tick_day in business_days(pending, pending + timedelta(days=1)):
            yield clock_tick(tick_day)


def read_demo_log(sample: Path = SAMPLE) -> list[dict[str, Any]]:
    """`demo_log` of the sample file."""
    return list(demo_log(json.loads(line) for line in sample.read_text().splitlines() if line))
