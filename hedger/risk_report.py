"""The risk report per issuer: jump-to-default and CS01 (SPEC §9, §14.9).

Owns: `IssuerRisk`, one line of the report, and `issuer_risk`, which measures
an issuer at `D_L` — exposure, protection at face value, the hedge tenor,
the recovery, `jtd = (1 - R) x (E - P)` in decimal arithmetic, and, with a
usable quote, `cs01`: the gain of the protection held when the issuer's
spread widens by 1bp, from the upfronts of each bucket's contract at the
two fitted hazard rates. Without `[pricing]` the report still stands, with
the configured-default recovery and no quote. Imports the standard library
and the core's own modules.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from hedger.config import HedgerConfig
from hedger.decision import choose_tenor
from hedger.issuer import IssuerBook
from hedger.numbers import ONE, ZERO, cents_text, to_cents

if TYPE_CHECKING:  # QuantLib is imported only when [pricing] is configured
    from hedger.order_pricing import OrderPricer

DEFAULT_RECOVERY = "0.40"  # SPEC §9: the recovery of a report without [pricing]
ONE_BP = Decimal(1)


class IssuerRisk(NamedTuple):
    """One line of the risk report (SPEC §9)."""

    issuer: str
    group_id: str | None
    as_of_date: date
    exposure: Decimal
    protection: Decimal
    recovery: str
    jtd: Decimal
    hedge_tenor_years: int
    quoted_spread_bps: str | None
    quote_as_of: date | None
    cs01: Decimal | None

    def to_wire(self) -> dict[str, Any]:
        """The JSON line of SPEC §9: figures with 2 decimals, never `"-0.00"`."""
        return {
            "issuer": self.issuer,
            "group_id": self.group_id,
            "as_of_date": self.as_of_date.isoformat(),
            "exposure": to_cents(self.exposure),
            "protection": to_cents(self.protection),
            "recovery": self.recovery,
            "jtd": to_cents(self.jtd),
            "hedge_tenor_years": self.hedge_tenor_years,
            "quoted_spread_bps": self.quoted_spread_bps,
            "quote_as_of": None if self.quote_as_of is None else self.quote_as_of.isoformat(),
            "cs01": None if self.cs01 is None else cents_text(self.cs01),
        }


def issuer_risk(
    config: HedgerConfig, book: IssuerBook, as_of: date, pricer: OrderPricer | None
) -> IssuerRisk:
    """SPEC §14.9: one issuer's jump-to-default and CS01 at `D_L`."""
    fx = config.fx
    view = book.view(config, as_of)
    exposure = view.exposure
    live = [(key, net) for key, net in book.buckets.items() if key.maturity > as_of]
    protection = sum((net * fx[key.currency] for key, net in live), ZERO)
    tenor, _ = choose_tenor(config.hedge, as_of, view.maturity_years)
    quote = None if pricer is None else pricer.quotes.usable(book.issuer_id, tenor, as_of)
    if quote is not None:
        recovery = quote.recovery
    else:
        recovery = DEFAULT_RECOVERY if config.pricing is None else config.pricing.recovery
    jtd = (ONE - Decimal(recovery)) * (exposure - protection)
    cs01 = None
    base = wider = None
    if pricer is not None and quote is not None:
        base = pricer.hazard(quote, as_of)
        wider = pricer.hazard(quote, as_of, Decimal(quote.spread_bps) + ONE_BP)
    if pricer is not None and quote is not None and base is not None and wider is not None:
        coupon = config.coupon_of(book.issuer_id)
        cs01 = ZERO
        for key, net in live:
            at_base = pricer.upfront(quote, as_of, key.maturity, coupon, base)
            at_wider = pricer.upfront(quote, as_of, key.maturity, coupon, wider)
            if at_base is None or at_wider is None:
                continue  # within its last coupon period: counts 0
            cs01 += net * fx[key.currency] * Decimal(at_wider - at_base)
    return IssuerRisk(
        book.issuer_id,
        config.group_of(book.issuer_id),
        as_of,
        exposure,
        protection,
        recovery,
        jtd,
        tenor,
        None if quote is None else quote.spread_bps,
        None if quote is None else quote.as_of_date,
        cs01,
    )
