"""Quotes held per (issuer, tenor), and which one prices what (SPEC §14.1, §14.2).

Owns: `QuoteBook` — the one quote held per (issuer, tenor) (the greatest
`as_of_date`, later in log order on a tie), the event ids received on
`cds-quotes` for the duplicate rule, and whether a held quote is usable at an
as-of date — and `Quote`, a held quote with its recovery resolved. Imports
the standard library and the core's own modules.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import NamedTuple

from hedger.calendar import standard_maturity
from hedger.events import CdsQuote
from hedger.outcomes import Duplicate

MAX_QUOTE_TENOR = 30


class Quote(NamedTuple):
    """A held quote: its strings as received (the recovery as received or configured)."""

    issuer_id: str
    tenor_years: int
    as_of_date: date
    spread_bps: str
    recovery: str
    event_id: str


class OlderQuote(Exception):
    """A quote older than the one held: ignored and counted, no dead letter (SPEC §14.1)."""


class QuoteBook:
    """The held quotes and the ids of every quote received without a dead letter."""

    __slots__ = ("default_recovery", "held", "received", "ttl_days")

    def __init__(self, ttl_days: int, default_recovery: str) -> None:
        self.ttl_days = ttl_days
        self.default_recovery = default_recovery
        self.held: dict[tuple[str, int], Quote] = {}
        self.received: set[str] = set()

    def apply(self, event: CdsQuote) -> Quote:
        """Hold a quote; raise `Duplicate` for a received id, `OlderQuote` for an older date."""
        if event.event_id in self.received:
            raise Duplicate
        self.received.add(event.event_id)
        key = (event.issuer_id, event.tenor_years)
        current = self.held.get(key)
        if current is not None and event.as_of_date < current.as_of_date:
            raise OlderQuote
        quote = Quote(
            event.issuer_id,
            event.tenor_years,
            event.as_of_date,
            event.spread_bps,
            event.recovery if event.recovery is not None else self.default_recovery,
            event.event_id,
        )
        self.held[key] = quote
        return quote

    def usable(self, issuer_id: str, tenor_years: int, as_of: date) -> Quote | None:
        """The held quote if `D - quote_ttl_days <= as_of_date <= D`, else None."""
        quote = self.held.get((issuer_id, tenor_years))
        if quote is None:
            return None
        if as_of - timedelta(days=self.ttl_days) <= quote.as_of_date <= as_of:
            return quote
        return None

    def __len__(self) -> int:
        return len(self.held)


def quote_tenor_for(as_of: date, maturity: date) -> int:
    """`n`: the smallest whole years from 1 to 30 whose standard maturity at D is on or after m.

    A sell's maturity is a bucket of the bot's own buys, so one is always
    found; past 30 years the longest is used.
    """
    for tenor in range(1, MAX_QUOTE_TENOR + 1):
        if standard_maturity(as_of, tenor) >= maturity:
            return tenor
    return MAX_QUOTE_TENOR
