"""Dates of the contract: year fractions and standard CDS maturities (SPEC §1, §6).

Owns: `year_fraction` (days / 365) and the semi-annual roll of standard
maturities. Imports only the standard library.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

_DAYS_IN_YEAR = Decimal(365)
# Year fractions are recomputed for every bucket on every event; the set of
# day counts seen in practice is small, so memoising the division pays.
_YF_CACHE: dict[int, Decimal] = {}


def year_fraction(start: date, end: date) -> Decimal:
    """`yf(a, b) = (b - a in days) / 365`, negative when `end` is before `start`."""
    days = (end - start).days
    cached = _YF_CACHE.get(days)
    if cached is None:
        cached = Decimal(days) / _DAYS_IN_YEAR
        if len(_YF_CACHE) < 100_000:
            _YF_CACHE[days] = cached
    return cached


def standard_maturity(trade_date: date, tenor_years: int) -> date:
    """Standard CDS maturity for a trade date and tenor (semi-annual roll).

    Before 20 Mar of year y: 20 Dec of y - 1 + n; from 20 Mar to 19 Sep:
    20 Jun of y + n; from 20 Sep: 20 Dec of y + n.
    """
    year = trade_date.year
    month_day = (trade_date.month, trade_date.day)
    if month_day < (3, 20):
        return date(year - 1 + tenor_years, 12, 20)
    if month_day < (9, 20):
        return date(year + tenor_years, 6, 20)
    return date(year + tenor_years, 12, 20)
