"""The demo's input: the sample's bookings, one desk-clock tick per business day, quotes.

Owns: reading the sample log (`samples/desk-day.jsonl`), placing the desk
clock's end-of-day ticks (SPEC §2) after each simulated business day's
bookings and, for a configuration with `[pricing]` (v2.1), a morning quote
feed (SPEC §14) for every issuer of the sample and tenor: one name widens
past its spread guard for a few days and comes back. Imports the standard
library only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
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


# 5-year par spreads of the sample's issuers (bp); other tenors scale them.
SPREADS_5Y = {
    "MSFT": Decimal(35),
    "GOOGL": Decimal(40),
    "AMZN": Decimal(45),
    "META": Decimal(55),
    "ORCL": Decimal(120),
    "NBIS": Decimal(450),
    "CRWV": Decimal(650),
}
TENOR_SCALE = {1: Decimal("0.6"), 3: Decimal("0.8"), 5: Decimal(1), 7: Decimal("1.15")}
LONG_SCALE = Decimal("1.3")  # 10 years and more
# The widening name: from its 17th quoted day to its 20th (2026-03-18 to
# 2026-03-21 in the sample, when its exposure asks for buys) its spreads are
# this multiple of normal (CRWV: 650bp -> 1,040bp at 5 years, past the 900bp
# guard of config/desk-v21.toml), then back.
WIDEN_ISSUER = "CRWV"
WIDEN_DAYS = range(16, 20)
WIDEN_BY = Decimal("1.6")


@dataclass(frozen=True)
class QuoteFeed:
    """Which tenors are quoted, and which issuer widens (None: nobody)."""

    tenors: tuple[int, ...]
    widen: str | None = WIDEN_ISSUER


def quotes_for(day: date, index: int, feed: QuoteFeed) -> Iterator[dict[str, Any]]:
    """The replay-log records of the morning quotes of `day`, the `index`-th quoted day."""
    for issuer, spread in SPREADS_5Y.items():
        if issuer == feed.widen and index in WIDEN_DAYS:
            spread *= WIDEN_BY
        for tenor in feed.tenors:
            scaled = spread * TENOR_SCALE.get(tenor, LONG_SCALE)
            quote = {
                "schema_version": 1,
                "event_id": f"q-{day.isoformat()}-{issuer}-{tenor}",
                "event_type": "cds.quote",
                "occurred_at": f"{day.isoformat()}T07:00:00.000Z",
                "issuer_id": issuer,
                "as_of_date": day.isoformat(),
                "tenor_years": tenor,
                "spread_bps": str(scaled.quantize(Decimal("0.1"))),
            }
            yield {"topic": "cds-quotes", "key": issuer, "value": quote}


def demo_log(
    records: Iterable[dict[str, Any]], feed: QuoteFeed | None = None
) -> Iterator[dict[str, Any]]:
    """The sample's bookings, with one desk-clock tick per simulated business day.

    Records are replay-log records (SPEC §9). The `loan-bookings` records
    keep their order; the sample's recorded fills are left out (the paper
    venue answers the bot's own orders). The tick of a weekday comes after
    every booking of that day and before the first booking of a later day;
    a weekday without bookings, between the first and the last booking's
    date, gets its tick too. A payload without a readable date keeps its
    place and moves no day. With a quote `feed`, each day's quotes come
    before its first booking.
    """
    pending: date | None = None  # the first day not ticked yet
    quoted = 0  # days quoted so far
    for record in records:
        if record.get("topic") != "loan-bookings":
            continue
        day = _event_day(record.get("value"))
        if day is not None:
            if pending is None:
                pending = day
            for tick_day in business_days(pending, day):
                yield clock_tick(tick_day)
            if feed is not None and (quoted == 0 or day > pending):
                yield from quotes_for(day, quoted, feed)
                quoted += 1
            pending = max(pending, day)
        yield record
    if pending is not None:
        for tick_day in business_days(pending, pending + timedelta(days=1)):
            yield clock_tick(tick_day)


def read_demo_log(sample: Path = SAMPLE, feed: QuoteFeed | None = None) -> list[dict[str, Any]]:
    """`demo_log` of the sample file (with quotes when a `feed` is given)."""
    records = (json.loads(line) for line in sample.read_text().splitlines() if line)
    return list(demo_log(records, feed))
