"""The records the bot emits (SPEC §7) and their JSON form.

Owns: `HedgeOrder` (a new order), `CancelRequest` (an expired order to
cancel, §11), `WithholdRecord` (a buy leg the guard did not let out, v2.1
§14.8), `PriceFields` (the v2.1 price fields of §14.7), the order reasons, and
the exact wire rendering of all of them (money with 2 decimals, notional as an
integer string). Imports the standard library, pydantic and
`hedger.numbers`/`hedger.events`.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict

from hedger.events import Side
from hedger.numbers import to_cents, whole


class OrderReason(StrEnum):
    """Why an order was emitted."""

    LIMIT_BREACH = "limit_breach"
    GROUP_LIMIT_BREACH = "group_limit_breach"
    OVER_HEDGED = "over_hedged"
    BELOW_UNWIND_BAND = "below_unwind_band"


class WithholdReason(StrEnum):
    """Why the guard withheld a buy leg (SPEC §14.8)."""

    NO_QUOTE = "no_quote"
    SPREAD_ABOVE_MAX = "spread_above_max"


class PriceFields(NamedTuple):
    """The price fields of SPEC §14.7, as written (the upfront already rounded)."""

    quote_tenor_years: int
    quoted_spread_bps: str | None = None
    recovery: str | None = None
    quote_as_of: date | None = None
    upfront_fraction: str | None = None
    upfront_amount: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The six fields of §14.7."""
        return {
            "quote_tenor_years": self.quote_tenor_years,
            "quoted_spread_bps": self.quoted_spread_bps,
            "recovery": self.recovery,
            "quote_as_of": None if self.quote_as_of is None else self.quote_as_of.isoformat(),
            "upfront_fraction": self.upfront_fraction,
            "upfront_amount": self.upfront_amount,
        }


class HedgeOrder(BaseModel):
    """One CDS order: a leg of a buy decision or one unwind of a bucket."""

    model_config = ConfigDict(frozen=True)

    order_id: str
    issuer_id: str
    side: Side
    notional: Decimal
    currency: str
    maturity_date: date
    tenor_years: int | None
    coupon_bps: int
    doc_clause: str
    seniority: str
    reason: OrderReason
    trigger_event_id: str
    as_of: str
    exposure: Decimal
    coverage: Decimal
    residual_before: Decimal
    residual_after: Decimal
    limit: Decimal
    group_id: str | None = None
    group_residual_before: Decimal | None = None
    group_residual_after: Decimal | None = None
    group_limit: Decimal | None = None
    excluded_counterparties: tuple[str, ...] = ()
    counterparty: str | None = None
    price: PriceFields | None = None  # v2.1: only with [pricing]

    def to_wire(self) -> dict[str, Any]:
        """The SPEC §7 JSON object, fields in the SPEC's order."""
        wire = {
            "action": "new",
            "order_id": self.order_id,
            "issuer_id": self.issuer_id,
            "side": self.side.value,
            "notional": whole(self.notional),
            "currency": self.currency,
            "maturity_date": self.maturity_date.isoformat(),
            "tenor_years": self.tenor_years,
            "coupon_bps": self.coupon_bps,
            "doc_clause": self.doc_clause,
            "seniority": self.seniority,
            "reason": self.reason.value,
            "trigger_event_id": self.trigger_event_id,
            "as_of": self.as_of,
            "exposure": to_cents(self.exposure),
            "coverage": to_cents(self.coverage),
            "residual_before": to_cents(self.residual_before),
            "residual_after": to_cents(self.residual_after),
            "limit": to_cents(self.limit),
            "group_id": self.group_id,
            "group_residual_before": _cents_or_none(self.group_residual_before),
            "group_residual_after": _cents_or_none(self.group_residual_after),
            "group_limit": _cents_or_none(self.group_limit),
            "excluded_counterparties": list(self.excluded_counterparties),
            "counterparty": self.counterparty,
        }
        if self.price is not None:
            wire.update(self.price.to_wire())
        return wire


class WithholdRecord(NamedTuple):
    """A buy leg the guard withheld (SPEC §7, §14.8): the order it would have been, not emitted."""

    order: HedgeOrder
    reason: WithholdReason

    @property
    def issuer_id(self) -> str:
        """The leg's issuer (the record's key)."""
        return self.order.issuer_id

    @property
    def order_id(self) -> str:
        """The order id the leg would have had (never reused)."""
        return self.order.order_id

    def to_wire(self) -> dict[str, Any]:
        """The order's fields, `action` withhold, the guard's `reason` and the `order_reason`."""
        wire = self.order.to_wire()
        wire["action"] = "withhold"
        wire["reason"] = self.reason.value
        wire["order_reason"] = self.order.reason.value
        return wire


class CancelRequest(NamedTuple):
    """A request to cancel an order that expired (SPEC §11)."""

    order_id: str
    issuer_id: str
    trigger_event_id: str
    as_of: str
    reason: str = "expired"

    def to_wire(self) -> dict[str, Any]:
        """The SPEC §7 cancel record."""
        return {
            "action": "cancel",
            "order_id": self.order_id,
            "issuer_id": self.issuer_id,
            "reason": self.reason,
            "trigger_event_id": self.trigger_event_id,
            "as_of": self.as_of,
        }


OrderRecord = HedgeOrder | CancelRequest | WithholdRecord


def _cents_or_none(value: Decimal | None) -> str | None:
    return None if value is None else to_cents(value)
