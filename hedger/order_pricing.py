"""The price fields of every order and the guard on buys (SPEC §14.2, §14.7, §14.8).

Owns: `OrderPricer`, which finds the quote that prices an order (a buy: its
tenor; a sell: the smallest tenor whose standard maturity reaches the
bucket's), writes the §14.7 fields, and decides whether a buy leg is withheld
(`no_quote`, `spread_above_max`). It reads the held quotes and the
configuration; the model itself is `hedger.pricing`. The price is computed
per order, never per event. Imports the standard library and the core's own
modules.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hedger.calendar import standard_maturity
from hedger.config import HedgerConfig, PricingSettings
from hedger.events import Side
from hedger.orders import HedgeOrder, PriceFields, WithholdReason
from hedger.pricing import (
    bps_to_double,
    cents_text,
    clean_upfront,
    fit_hazard,
    upfront_amount,
    upfront_fraction_text,
)
from hedger.quotes import Quote, QuoteBook, quote_tenor_for


class OrderPricer:
    """Prices orders from the held quotes under one configuration's `[pricing]`."""

    __slots__ = ("config", "pricing", "quotes", "rate")

    def __init__(self, config: HedgerConfig, pricing: PricingSettings, quotes: QuoteBook) -> None:
        self.config, self.pricing, self.quotes = config, pricing, quotes
        self.rate = float(pricing.discount_rate)  # the nearest double (SPEC §1)

    def withheld(self, issuer_id: str, tenor_years: int, as_of: date) -> WithholdReason | None:
        """SPEC §14.8: why a buy leg of this issuer and tenor is withheld, or None to emit it."""
        maximum = self.config.max_spread_of(issuer_id)
        if maximum is None:
            return None
        quote = self.quotes.usable(issuer_id, tenor_years, as_of)
        if quote is None:
            return WithholdReason.NO_QUOTE
        if Decimal(quote.spread_bps) > Decimal(maximum):
            return WithholdReason.SPREAD_ABOVE_MAX
        return None

    def hazard(self, quote: Quote, as_of: date, spread_bps: Decimal | None = None) -> float | None:
        """`lambda` fitted to the quote's standard contract at `D` (at another spread if given).

        None when that contract has no price (§14.3 and QuantLib's calendar).
        """
        spread = Decimal(quote.spread_bps) if spread_bps is None else spread_bps
        return fit_hazard(
            as_of,
            standard_maturity(as_of, quote.tenor_years),
            bps_to_double(spread),
            float(quote.recovery),
            self.rate,
            bps_to_double(self.config.coupon_of(quote.issuer_id)),
        )

    def upfront(
        self, quote: Quote, as_of: date, maturity: date, coupon_bps: int, hazard: float
    ) -> float | None:
        """`U` of the coupon contract to `maturity` at a fitted hazard; None if not priceable."""
        return clean_upfront(
            as_of, maturity, bps_to_double(coupon_bps), hazard, float(quote.recovery), self.rate
        )

    def price(self, order: HedgeOrder, as_of: date) -> PriceFields:
        """The §14.7 fields of one order (or withheld leg) decided at `D`."""
        if order.side is Side.BUY and order.tenor_years is not None:
            tenor = order.tenor_years
        else:
            tenor = quote_tenor_for(as_of, order.maturity_date)
        quote = self.quotes.usable(order.issuer_id, tenor, as_of)
        if quote is None:
            return PriceFields(tenor)
        hazard = self.hazard(quote, as_of)
        value = None
        if hazard is not None:
            value = self.upfront(quote, as_of, order.maturity_date, order.coupon_bps, hazard)
        fraction = amount = None
        if value is not None:
            fraction = upfront_fraction_text(value)
            amount = cents_text(upfront_amount(order.notional, value))
        return PriceFields(
            tenor, quote.spread_bps, quote.recovery, quote.as_of_date, fraction, amount
        )
