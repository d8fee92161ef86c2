"""Regulatory value of one unit of protection (SPEC §4).

Owns: `Recognition`, which prices `u(maturity, currency, doc_clause)` for one
issuer at one as-of date: maturity mismatch, currency mismatch (8% haircut)
and the restructuring factor (60% for XR14). Imports only the standard
library and `hedger.calendar`/`hedger.numbers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from hedger.calendar import year_fraction
from hedger.numbers import ONE, ZERO

QUARTER = Decimal("0.25")  # protection with under 3 months left is not recognised
FX_MISMATCH_FACTOR = Decimal("0.92")  # the supervisory 8% currency haircut
NO_RESTRUCTURING_FACTOR = Decimal("0.6")  # XR14 lacks the restructuring credit event
NO_RESTRUCTURING_CLAUSE = "XR14"


def mismatch_factor(t: Decimal, exposure_years: Decimal) -> Decimal:
    """Maturity-mismatch factor of protection with t years left against T.

    0 when expired or with under 3 months left (and shorter than T), 1 when
    it outlives T, else `(t - 0.25) / (T - 0.25)`.
    """
    if t <= ZERO:
        return ZERO
    if t >= exposure_years:
        return ONE
    if t < QUARTER:
        return ZERO
    return (t - QUARTER) / (exposure_years - QUARTER)


class Recognition:
    """`u(m, c, doc)` for one issuer at as-of date D, given its T and exposure currency."""

    __slots__ = ("_cache", "as_of", "exposure_currency", "fx", "maturity_years")

    def __init__(
        self,
        as_of: date,
        maturity_years: Decimal,
        exposure_currency: str,
        fx: Mapping[str, Decimal],
    ) -> None:
        self.as_of = as_of
        self.maturity_years = maturity_years
        self.exposure_currency = exposure_currency
        self.fx = fx
        self._cache: dict[tuple[date, str, str], Decimal] = {}

    def maturity_factor(self, maturity: date) -> Decimal:
        """`mm`, or 0 when the protection is expired or has under 3 months left."""
        return mismatch_factor(year_fraction(self.as_of, maturity), self.maturity_years)

    def unit_value(self, maturity: date, currency: str, doc_clause: str) -> Decimal:
        """`u = fx[c] x mm x fxf x rf` in base currency per unit of notional."""
        key = (maturity, currency, doc_clause)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        mm = self.maturity_factor(maturity)
        if mm == ZERO:
            value = ZERO
        else:
            fxf = ONE if currency == self.exposure_currency else FX_MISMATCH_FACTOR
            rf = NO_RESTRUCTURING_FACTOR if doc_clause == NO_RESTRUCTURING_CLAUSE else ONE
            value = self.fx[currency] * mm * fxf * rf
        self._cache[key] = value
        return value
