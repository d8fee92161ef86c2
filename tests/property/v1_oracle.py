"""An independent reference of the contract v1 decision, for the properties.

Written from SPEC §4-§6 alone and deliberately naive: every measure is
recomputed from scratch from the full event history at each event (no
incremental sums, no heaps, no caches), one issuer at a time, v1 only (no
groups, expiry, sellers or ticks). The engine decides what was applied; this
oracle keeps its own books and produces the v1 fields of each order.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

from hedger.config import HedgerConfig
from hedger.events import (
    ExecutionReport,
    LoanAmended,
    LoanBooked,
    LoanCancelled,
    LoanRepaid,
    ProtectionBooked,
)

ZERO = Decimal(0)


def cents(value: Decimal) -> str:
    rounded = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    return str(abs(rounded) if rounded.is_zero() else rounded)


def yf(a: date, b: date) -> Decimal:
    return Decimal((b - a).days) / Decimal(365)


def standard_maturity(d: date, n: int) -> date:
    if (d.month, d.day) < (3, 20):
        return date(d.year - 1 + n, 12, 20)
    if (d.month, d.day) < (9, 20):
        return date(d.year + n, 6, 20)
    return date(d.year + n, 12, 20)


class V1Oracle:
    """Books of every issuer, and the v1 orders each applied event gives."""

    def __init__(self, config: HedgerConfig) -> None:
        self.config = config
        self.loans: dict[str, dict[str, Any]] = {}
        self.buckets: dict[str, dict[tuple[date, str, str, str], Decimal]] = {}
        self.orders: dict[str, dict[str, dict[str, Any]]] = {}  # open orders per issuer

    def apply(self, event: Any) -> list[dict[str, Any]]:
        """Apply an event the engine applied; return the v1 fields of its orders."""
        issuer = event.issuer_id
        buckets = self.buckets.setdefault(issuer, {})
        orders = self.orders.setdefault(issuer, {})
        if isinstance(event, LoanBooked):
            self.loans[event.loan_id] = {
                "issuer": issuer,
                "ccy": event.currency,
                "out": event.notional,
                "mat": event.maturity_date,
                "open": True,
            }
        elif isinstance(event, LoanAmended):
            loan = self.loans[event.loan_id]
            if event.notional is not None:
                loan["out"] = event.notional
            if event.maturity_date is not None:
                loan["mat"] = event.maturity_date
        elif isinstance(event, LoanRepaid):
            loan = self.loans[event.loan_id]
            loan["out"] -= event.amount
            loan["open"] = loan["out"] > 0
        elif isinstance(event, LoanCancelled):
            self.loans[event.loan_id]["open"] = False
        elif isinstance(event, ProtectionBooked):
            key = (event.maturity_date, event.currency, event.doc_clause, "external")
            sign = 1 if event.side.value == "BUY_PROTECTION" else -1
            buckets[key] = buckets.get(key, ZERO) + sign * event.notional
        else:
            assert isinstance(event, ExecutionReport)
            order = orders[event.order_id]
            if event.filled_notional is not None and event.status.value in (
                "filled",
                "partially_filled",
            ):
                order["remaining"] -= event.filled_notional
                key = (order["mat"], order["ccy"], order["doc"], "bot")
                sign = 1 if order["side"] == "BUY_PROTECTION" else -1
                buckets[key] = buckets.get(key, ZERO) + sign * event.filled_notional
            if event.status.value != "partially_filled" or order["remaining"] == 0:
                del orders[event.order_id]
        if self.config.is_halted(issuer):
            return []
        emitted = self._decide(issuer, event.as_of, event.event_id, event.occurred_at)
        for order in emitted:
            orders[order["order_id"]] = {
                "side": order["side"],
                "mat": date.fromisoformat(order["maturity_date"]),
                "ccy": order["currency"],
                "doc": order["doc_clause"],
                "remaining": Decimal(order["notional"]),
            }
        return emitted

    def _u(self, d: date, t_exp: Decimal, ccy_exp: str, m: date, ccy: str, doc: str) -> Decimal:
        t = yf(d, m)
        if t <= 0:
            return ZERO
        if t >= t_exp:
            mm = Decimal(1)
        elif t < Decimal("0.25"):
            return ZERO
        else:
            mm = (t - Decimal("0.25")) / (t_exp - Decimal("0.25"))
        fxf = Decimal(1) if ccy == ccy_exp else Decimal("0.92")
        rf = Decimal("0.6") if doc == "XR14" else Decimal(1)
        return self.config.fx[ccy] * mm * fxf * rf

    def _decide(self, issuer: str, d: date, event_id: str, at: str) -> list[dict[str, Any]]:
        config, risk, hedge = self.config, self.config.risk, self.config.hedge
        loans = [x for x in self.loans.values() if x["issuer"] == issuer and x["open"]]
        by_ccy: dict[str, Decimal] = {}
        for loan in loans:
            by_ccy[loan["ccy"]] = (
                by_ccy.get(loan["ccy"], ZERO) + loan["out"] * config.fx[loan["ccy"]]
            )
        e = sum(by_ccy.values(), ZERO)
        ccy_exp = risk.base_currency
        if by_ccy:
            ccy_exp = sorted(by_ccy.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        t_exp = ZERO
        if loans:
            t_exp = max(min(risk.max_maturity_years, max(yf(d, x["mat"]) for x in loans)), ZERO)
        buckets, orders = self.buckets[issuer], self.orders[issuer]
        c = ZERO
        for (m, ccy, doc, _), net in buckets.items():
            if net > 0:
                c += net * self._u(d, t_exp, ccy_exp, m, ccy, doc)
        for o in orders.values():
            sign = 1 if o["side"] == "BUY_PROTECTION" else -1
            c += sign * o["remaining"] * self._u(d, t_exp, ccy_exp, o["mat"], o["ccy"], o["doc"])
        r = e - min(max(c, ZERO), e)
        own = config.issuers.get(issuer)
        own_limit = risk.default_issuer_limit if own is None or own.limit is None else own.limit
        limit = min(own_limit, risk.regulatory_limit)
        base = {
            "issuer_id": issuer,
            "coupon_bps": hedge.coupon_bps,
            "seniority": hedge.seniority,
            "trigger_event_id": event_id,
            "as_of": at,
            "exposure": cents(e),
            "coverage": cents(c),
            "residual_before": cents(r),
            "limit": cents(limit),
        }
        legs: list[tuple[str, Decimal, str, date, int | None, str, str, Decimal]] = []
        if r > limit * risk.trigger_ratio:
            tenors = sorted(hedge.tenors_years)
            tenor = next(
                (n for n in tenors if yf(d, standard_maturity(d, n)) >= t_exp - Decimal("0.25")),
                tenors[-1],
            )
            m = standard_maturity(d, tenor)
            u = self._u(d, t_exp, ccy_exp, m, ccy_exp, hedge.doc_clause)
            need = r - limit * risk.target_ratio
            lots = (need / u / hedge.lot_size).to_integral_value(rounding=ROUND_CEILING)
            n_total = min(
                max(lots * hedge.lot_size, hedge.min_order_notional), hedge.max_decision_notional
            )
            while n_total > 0:
                leg = min(n_total, hedge.max_order_notional)
                n_total -= leg
                leg = max(leg, hedge.min_order_notional)
                legs.append(
                    ("BUY_PROTECTION", leg, ccy_exp, m, tenor, hedge.doc_clause, "limit_breach", u)
                )
        elif c > 0 and (c > e or r < limit * risk.unwind_ratio):
            reason = "over_hedged" if c > e else "below_unwind_band"
            excess = c - max(e - limit * risk.target_ratio, ZERO)
            for key in sorted(k for k in buckets if k[3] == "bot" and buckets[k] > 0):
                m, ccy, doc, _ = key
                u = self._u(d, t_exp, ccy_exp, m, ccy, doc)
                if u == 0:
                    continue
                selling = sum(
                    (
                        o["remaining"]
                        for o in orders.values()
                        if o["side"] == "SELL_PROTECTION"
                        and (o["mat"], o["ccy"], o["doc"]) == (m, ccy, doc)
                    ),
                    ZERO,
                )
                available = buckets[key] - selling
                lots = min(
                    (available / hedge.lot_size).to_integral_value(rounding=ROUND_FLOOR),
                    (excess / u / hedge.lot_size).to_integral_value(rounding=ROUND_FLOOR),
                )
                n = lots * hedge.lot_size
                if n < hedge.min_order_notional:
                    continue
                legs.append(("SELL_PROTECTION", n, ccy, m, None, doc, reason, u))
                excess -= n * u
        change = sum(
            (leg[1] * leg[7] * (1 if leg[0] == "BUY_PROTECTION" else -1) for leg in legs), ZERO
        )
        after = cents(e - min(max(c + change, ZERO), e))
        return [
            base
            | {
                "order_id": f"{event_id}#{k}",
                "side": side,
                "notional": str(int(n)),
                "currency": ccy,
                "maturity_date": m.isoformat(),
                "tenor_years": tenor,
                "doc_clause": doc,
                "reason": reason,
                "residual_after": after,
            }
            for k, (side, n, ccy, m, tenor, doc, reason, _) in enumerate(legs, start=1)
        ]
