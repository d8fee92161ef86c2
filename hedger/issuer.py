"""One issuer's book: exposure aggregates, protection buckets and open orders (SPEC §3, §4).

Owns: `IssuerBook`, which applies loan changes, execution reports and
protection bookings (with each bucket's parts per counterparty, §13), marks
expired orders (§11), and `RiskView`, the issuer's E, T, C, R and L at an
as-of date. Aggregates are kept incrementally (per-currency sums and a
maturity index), so no operation scans the issuer's loans. Imports the
standard library and the core's own modules.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from hedger.calendar import year_fraction
from hedger.config import HedgerConfig
from hedger.events import (
    FILL_STATUSES,
    UNSPECIFIED_SELLER,
    ExecutionReport,
    ProtectionBooked,
    ReportStatus,
    Side,
)
from hedger.loans import LoanChange
from hedger.maturities import MaturityIndex
from hedger.numbers import ZERO
from hedger.orders import HedgeOrder
from hedger.outcomes import Duplicate, Reason, Rejected
from hedger.recognition import Recognition


class Source(StrEnum):
    """Where held protection came from; only the bot's own fills are ever unwound."""

    BOT = "bot"
    EXTERNAL = "external"


class BucketKey(NamedTuple):
    """Terms that net protection together; tuple order is the unwind visiting order."""

    maturity: date
    currency: str
    doc_clause: str
    source: Source


@dataclass(slots=True)
class OpenOrder:
    """An emitted order that no report has closed yet (expired ones included, §11)."""

    order_id: str
    side: Side
    maturity: date
    currency: str
    doc_clause: str
    remaining: Decimal
    applied_events: set[str] = field(default_factory=set)
    as_of: date | None = None  # the as-of date of the decision that emitted it
    seq: int = 0  # emission order across the whole desk: cancels go out in it
    expired: bool = False  # no longer counts in C; still open for reports

    @property
    def bucket(self) -> BucketKey:
        """The `bot` bucket its fills go to."""
        return BucketKey(self.maturity, self.currency, self.doc_clause, Source.BOT)


class PartChange(NamedTuple):
    """One counterparty's part of one bucket moved from `before` to `after` (SPEC §13)."""

    seller: str
    maturity: date
    currency: str
    before: Decimal
    after: Decimal


class RiskView(NamedTuple):
    """An issuer's risk measures at one as-of date (SPEC §4)."""

    issuer_id: str
    as_of: date
    exposure: Decimal
    exposure_currency: str
    maturity_years: Decimal
    held_coverage: Decimal
    pending_coverage: Decimal
    coverage: Decimal  # C: held protection plus open orders counted as if filled
    residual: Decimal  # R = E - min(max(C, 0), E)
    limit: Decimal
    recognition: Recognition
    config: HedgerConfig  # the configuration it was measured under

    @property
    def utilisation(self) -> Decimal:
        """R / L."""
        return self.residual / self.limit


def residual(exposure: Decimal, coverage: Decimal) -> Decimal:
    """`E - min(max(C, 0), E)`: the exposure that protection does not cover."""
    return exposure - min(max(coverage, ZERO), exposure)


class _Cover(NamedTuple):
    """What a view's coverage depends on besides the book, and what it found."""

    latest: date | None  # T's loan maturity
    as_of: date
    currency: str  # the exposure currency
    config: HedgerConfig
    recognition: Recognition
    held: Decimal
    pending: Decimal


class IssuerBook:
    """Mutable per-issuer state; every change goes through one of the `apply_*` methods."""

    __slots__ = (
        "_cover",
        "_currencies",
        "_exposure",
        "_limit",
        "_view",
        "buckets",
        "closed_orders",
        "currency_totals",
        "issuer_id",
        "maturities",
        "open_orders",
        "parts",
        "protection_events",
    )

    def __init__(self, issuer_id: str) -> None:
        self.issuer_id = issuer_id
        # Outstanding per currency in that currency: exact, since amounts have
        # 2 decimals; E converts at most a handful of sums per event.
        self.currency_totals: dict[str, Decimal] = {}
        self.maturities = MaturityIndex()
        self.buckets: dict[BucketKey, Decimal] = {}
        # Each bucket's net split per counterparty; the parts sum to the net.
        self.parts: dict[BucketKey, dict[str, Decimal]] = {}
        self.open_orders: dict[str, OpenOrder] = {}
        self.closed_orders: set[str] = set()
        self.protection_events: set[str] = set()
        # The last view: a unit's decision needs every member's measures, and
        # members without news since the last event at the same D are unchanged.
        self._view: RiskView | None = None
        # The coverage side of the last view: a loan event moves E (and maybe
        # T), not the buckets or orders, so at the same D, T and exposure
        # currency the recognition and C of the last view still hold.
        self._cover: _Cover | None = None
        # The currencies of `currency_totals`, sorted: E sums them in this
        # order; a currency borrowed in for the first time or repaid in full resets it.
        self._currencies: tuple[str, ...] | None = None
        # E and the exposure currency under the FX table they were measured
        # with: a tick measures at a new D without any loan having moved.
        self._exposure: tuple[dict[str, Decimal], Decimal, str] | None = None
        # L under the configuration it was looked up in: fixed per configuration.
        self._limit: tuple[HedgerConfig, Decimal] | None = None

    def invalidate(self) -> None:
        """Forget every cached measure; every change of protection or orders calls it, and
        so must any change of the totals or maturities made outside `apply_loan_change`."""
        self._view = self._cover = self._exposure = self._currencies = None

    # -- state changes -------------------------------------------------

    def apply_loan_change(self, change: LoanChange) -> None:
        """Move one loan's contribution from `before` to `after`."""
        self._view = self._exposure = None
        totals, maturities = self.currency_totals, self.maturities
        before, after = change.before, change.after
        if before is not None:
            total = totals.get(before.currency, ZERO) - before.outstanding
            if total == ZERO:
                totals.pop(before.currency, None)
                self._currencies = None
            else:
                totals[before.currency] = total
            maturities.remove(before.maturity)
        if after is not None:
            held = totals.get(after.currency)
            if held is None:
                held = ZERO
                self._currencies = None
            total = held + after.outstanding
            if total == ZERO:
                totals.pop(after.currency, None)
                self._currencies = None
            else:
                totals[after.currency] = total
            maturities.add(after.maturity)

    def has_state(self) -> bool:
        """Whether a desk-clock tick must visit it: an open loan, a bucket or an open order."""
        return bool(self.currency_totals or self.buckets or self.open_orders)

    def apply_report(self, report: ExecutionReport) -> list[PartChange]:
        """Apply an execution report, or raise `Rejected`/`Duplicate` leaving state as it was.

        Returns the part that a fill moved (none for a rejection or a cancel).
        """
        self.invalidate()
        order = self.open_orders.get(report.order_id)
        if order is None:
            if report.order_id in self.closed_orders:
                raise Duplicate
            raise Rejected(
                Reason.UNKNOWN_ORDER,
                f"order {report.order_id} was never emitted for {report.issuer_id}",
            )
        if report.event_id in order.applied_events:
            raise Duplicate
        status = report.status
        changes: list[PartChange] = []
        if status in FILL_STATUSES:
            filled = report.filled_notional
            assert filled is not None  # guaranteed by the wire model
            if filled > order.remaining:
                raise Rejected(
                    Reason.OVERFILL, f"fill of {filled} exceeds the {order.remaining} remaining"
                )
            order.remaining -= filled
            seller = report.counterparty or UNSPECIFIED_SELLER
            amount = filled if order.side is Side.BUY else -filled
            changes.append(self._add_protection(order.bucket, amount, seller))
        order.applied_events.add(report.event_id)
        if status is not ReportStatus.PARTIALLY_FILLED or order.remaining == ZERO:
            del self.open_orders[order.order_id]
            self.closed_orders.add(order.order_id)
        return changes

    def apply_protection(self, booked: ProtectionBooked) -> list[PartChange]:
        """Apply protection traded outside the bot, or raise `Duplicate`."""
        self.invalidate()
        if booked.event_id in self.protection_events:
            raise Duplicate
        self.protection_events.add(booked.event_id)
        key = BucketKey(booked.maturity_date, booked.currency, booked.doc_clause, Source.EXTERNAL)
        amount = booked.notional if booked.side is Side.BUY else -booked.notional
        return [self._add_protection(key, amount, booked.counterparty or UNSPECIFIED_SELLER)]

    def _add_protection(self, key: BucketKey, amount: Decimal, seller: str) -> PartChange:
        net = self.buckets.get(key, ZERO) + amount
        if net == ZERO:
            self.buckets.pop(key, None)  # a zero bucket counts for nothing
        else:
            self.buckets[key] = net
        parts = self.parts.get(key)
        if parts is None:
            parts = self.parts[key] = {}
        before = parts.get(seller, ZERO)
        after = before + amount
        if after == ZERO:
            del parts[seller]
            if not parts:
                del self.parts[key]
        else:
            parts[seller] = after
        return PartChange(seller, key.maturity, key.currency, before, after)

    def largest_part(self, key: BucketKey) -> str | None:
        """The counterparty with the largest positive part of a bucket (ties: smallest id)."""
        best: tuple[Decimal, str] | None = None
        for seller, amount in self.parts.get(key, {}).items():
            if amount > ZERO and (
                best is None or amount > best[0] or (amount == best[0] and seller < best[1])
            ):
                best = (amount, seller)
        return None if best is None else best[1]

    def expires_any(self, as_of: date, ttl_days: int) -> bool:
        """Whether `expire(as_of, ttl_days)` would mark any open order expired."""
        for order in self.open_orders.values():
            if (
                not order.expired
                and order.as_of is not None
                and (as_of - order.as_of).days >= ttl_days
            ):
                return True
        return False

    def expire(self, as_of: date, ttl_days: int) -> list[OpenOrder]:
        """Mark open orders emitted `ttl_days` or more before `as_of` as expired (§11)."""
        expired = []
        for order in self.open_orders.values():
            if (
                not order.expired
                and order.as_of is not None
                and (as_of - order.as_of).days >= ttl_days
            ):
                order.expired = True
                expired.append(order)
        if expired:
            self.invalidate()
        return expired

    def open_order(self, order: HedgeOrder, as_of: date, seq: int) -> None:
        """Record an emitted order as open with its full notional remaining."""
        self.invalidate()
        self.open_orders[order.order_id] = OpenOrder(
            order.order_id,
            order.side,
            order.maturity_date,
            order.currency,
            order.doc_clause,
            order.notional,
            as_of=as_of,
            seq=seq,
        )

    # -- measures ------------------------------------------------------

    def exposure(self, fx: dict[str, Decimal]) -> tuple[Decimal, str | None]:
        """E in base currency and the exposure currency (None with no loans)."""
        totals = self.currency_totals
        if len(totals) == 1:  # most issuers borrow in one currency
            ((currency, total),) = totals.items()
            return total * fx[currency], currency
        currencies = self._currencies
        if currencies is None:
            currencies = self._currencies = tuple(sorted(totals))
        exposure = ZERO
        best: tuple[Decimal, str] | None = None
        for currency in currencies:
            value = totals[currency] * fx[currency]
            exposure += value
            # Strictly greater: on a tie the alphabetically first currency stays.
            if best is None or value > best[0]:
                best = (value, currency)
        return exposure, None if best is None else best[1]

    def view(self, config: HedgerConfig, as_of: date) -> RiskView:
        """E, T, C and L of this issuer at as-of date D."""
        cached = self._view
        if cached is not None and cached.as_of == as_of and cached.config is config:
            return cached
        self._view = view = self._measure(config, as_of)
        return view

    def _measure(self, config: HedgerConfig, as_of: date) -> RiskView:
        fx = config.fx
        measured = self._exposure
        if measured is not None and measured[0] is fx:
            exposure, currency = measured[1], measured[2]
        else:
            exposure, found = self.exposure(fx)
            currency = found or config.risk.base_currency
            self._exposure = (fx, exposure, currency)
        latest = self.maturities.latest()
        cover = self._cover
        if (
            cover is not None
            and cover.latest == latest
            and cover.as_of == as_of
            and cover.currency == currency
            and cover.config is config
        ):
            recognition, held, pending = cover.recognition, cover.held, cover.pending
        else:
            recognition, held, pending = self._coverage(config, as_of, latest, currency)
            self._cover = _Cover(latest, as_of, currency, config, recognition, held, pending)
        known = self._limit
        if known is not None and known[0] is config:
            limit = known[1]
        else:
            limit = config.limit_for(self.issuer_id)
            self._limit = (config, limit)
        coverage = held + pending
        return RiskView(
            self.issuer_id,
            as_of,
            exposure,
            recognition.exposure_currency,
            recognition.maturity_years,
            held,
            pending,
            coverage,
            residual(exposure, coverage),
            limit,
            recognition,
            config,
        )

    def _coverage(
        self, config: HedgerConfig, as_of: date, latest: date | None, currency: str
    ) -> tuple[Recognition, Decimal, Decimal]:
        """T's recognition, and the held and pending coverage it values."""
        if latest is None:
            maturity_years = ZERO
        else:
            maturity_years = min(
                config.risk.max_maturity_years, max(year_fraction(as_of, latest), ZERO)
            )
        recognition = Recognition(as_of, maturity_years, currency, config.fx)
        held = pending = ZERO
        for key, net in self.buckets.items():
            if net > ZERO:
                held += net * recognition.unit_value(key.maturity, key.currency, key.doc_clause)
        for order in self.open_orders.values():
            if order.expired:
                continue  # an expired order no longer counts in C (§11)
            value = order.remaining * recognition.unit_value(
                order.maturity, order.currency, order.doc_clause
            )
            pending = pending + value if order.side is Side.BUY else pending - value
        return recognition, held, pending

    def bot_buckets(self) -> Iterator[tuple[BucketKey, Decimal]]:
        """`bot` buckets with net > 0 in ascending (maturity, currency, doc clause)."""
        # Only these are sorted: a book may hold many external buckets.
        held = [(key, net) for key, net in self.buckets.items() if key.source is Source.BOT]
        held.sort()
        for key, net in held:
            if net > ZERO:
                yield key, net

    def open_sells_on(self, key: BucketKey) -> Decimal:
        """Remaining notional of open sell orders on a bucket's terms (expired ones too)."""
        total = ZERO
        for order in self.open_orders.values():
            if order.side is Side.SELL and order.bucket == key:
                total += order.remaining
        return total
