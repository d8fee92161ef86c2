"""The hedge decision after an applied event (SPEC §5, §6, §7).

Owns: buy sizing (tenor choice, lot rounding, floors and caps, leg
splitting), unwind selection over the bot's own buckets, and the figures each
order reports. Pure: it reads an `IssuerBook` and a `RiskView` and returns
orders; the caller records them as open. Imports the standard library and the
core's own modules.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import NamedTuple

from hedger.calendar import standard_maturity, year_fraction
from hedger.config import HedgerConfig, HedgeSettings
from hedger.events import Side
from hedger.issuer import BucketKey, IssuerBook, RiskView, residual
from hedger.numbers import ZERO
from hedger.orders import HedgeOrder, OrderReason
from hedger.recognition import QUARTER


class Trigger(NamedTuple):
    """The applied event a decision follows: its id and `occurred_at` text."""

    event_id: str
    occurred_at: str


def choose_tenor(hedge: HedgeSettings, as_of: date, maturity_years: Decimal) -> tuple[int, date]:
    """The shortest tenor whose standard maturity has `yf >= T - 0.25`, else the longest."""
    tenors = sorted(hedge.tenors_years)
    for tenor in tenors:
        maturity = standard_maturity(as_of, tenor)
        if year_fraction(as_of, maturity) >= maturity_years - QUARTER:
            return tenor, maturity
    return tenors[-1], standard_maturity(as_of, tenors[-1])


def split_legs(notional: Decimal, hedge: HedgeSettings) -> list[Decimal]:
    """Legs of `max_order_notional`; a last leg below `min_order_notional` is raised to it."""
    full, rest = divmod(notional, hedge.max_order_notional)
    legs = [hedge.max_order_notional] * int(full)
    if rest > ZERO:
        legs.append(max(rest, hedge.min_order_notional))
    return legs


def buy_notional(need: Decimal, unit_value: Decimal, hedge: HedgeSettings) -> Decimal:
    """`N = min(max(ceil(need / u / lot) x lot, min_order), max_decision)`."""
    lots = (need / unit_value / hedge.lot_size).to_integral_value(rounding=ROUND_CEILING)
    notional = lots * hedge.lot_size
    return min(max(notional, hedge.min_order_notional), hedge.max_decision_notional)


def decide(
    book: IssuerBook, view: RiskView, config: HedgerConfig, trigger: Trigger
) -> list[HedgeOrder]:
    """Orders for one issuer after one applied event; empty when none is due.

    The caller checks the halt flag: a halted issuer gets no decision at all.
    """
    limit = view.limit
    risk = config.risk
    exposure, coverage, resid = view.exposure, view.coverage, view.residual
    if resid > limit * risk.trigger_ratio:
        return _buy(view, config, trigger, resid - limit * risk.target_ratio)
    if coverage > ZERO and (coverage > exposure or resid < limit * risk.unwind_ratio):
        reason = OrderReason.OVER_HEDGED if coverage > exposure else OrderReason.BELOW_UNWIND_BAND
        excess = coverage - max(exposure - limit * risk.target_ratio, ZERO)
        return _unwind(book, view, config, trigger, reason, excess)
    return []


def _buy(view: RiskView, config: HedgerConfig, trigger: Trigger, need: Decimal) -> list[HedgeOrder]:
    hedge = config.hedge
    tenor, maturity = choose_tenor(hedge, view.as_of, view.maturity_years)
    currency = view.exposure_currency
    unit_value = view.recognition.unit_value(maturity, currency, hedge.doc_clause)
    if unit_value == ZERO:  # pragma: no cover - a standard maturity is always > 3 months away
        return []
    legs = split_legs(buy_notional(need, unit_value, hedge), hedge)
    after = residual(view.exposure, view.coverage + sum(legs, ZERO) * unit_value)
    return [
        _order(
            view,
            config,
            trigger,
            leg_no,
            Side.BUY,
            notional,
            currency,
            maturity,
            tenor,
            hedge.doc_clause,
            OrderReason.LIMIT_BREACH,
            after,
        )
        for leg_no, notional in enumerate(legs, start=1)
    ]


def _unwind(
    book: IssuerBook,
    view: RiskView,
    config: HedgerConfig,
    trigger: Trigger,
    reason: OrderReason,
    excess: Decimal,
) -> list[HedgeOrder]:
    hedge = config.hedge
    lot = hedge.lot_size
    sells: list[tuple[Decimal, Decimal, BucketKey]] = []
    for key, net in book.bot_buckets():
        unit_value = view.recognition.unit_value(key.maturity, key.currency, key.doc_clause)
        if unit_value == ZERO:
            continue
        available = net - book.open_sells_on(key)
        lots = min(
            (available / lot).to_integral_value(rounding=ROUND_FLOOR),
            (excess / unit_value / lot).to_integral_value(rounding=ROUND_FLOOR),
        )
        notional = lots * lot
        if notional < hedge.min_order_notional:
            continue
        sells.append((notional, unit_value, key))
        excess -= notional * unit_value
    removed = sum((notional * unit_value for notional, unit_value, _ in sells), ZERO)
    after = residual(view.exposure, view.coverage - removed)
    orders = []
    for leg_no, (notional, _, key) in enumerate(sells, start=1):
        orders.append(
            _order(
                view,
                config,
                trigger,
                leg_no,
                Side.SELL,
                notional,
                key.currency,
                key.maturity,
                None,
                key.doc_clause,
                reason,
                after,
            )
        )
    return orders


def _order(
    view: RiskView,
    config: HedgerConfig,
    trigger: Trigger,
    leg_no: int,
    side: Side,
    notional: Decimal,
    currency: str,
    maturity: date,
    tenor: int | None,
    doc_clause: str,
    reason: OrderReason,
    residual_after: Decimal,
) -> HedgeOrder:
    return HedgeOrder(
        order_id=f"{trigger.event_id}#{leg_no}",
        issuer_id=view.issuer_id,
        side=side,
        notional=notional,
        currency=currency,
        maturity_date=maturity,
        tenor_years=tenor,
        coupon_bps=config.hedge.coupon_bps,
        doc_clause=doc_clause,
        seniority=config.hedge.seniority,
        reason=reason,
        trigger_event_id=trigger.event_id,
        as_of=trigger.occurred_at,
        exposure=view.exposure,
        coverage=view.coverage,
        residual_before=view.residual,
        residual_after=residual_after,
        limit=view.limit,
    )
