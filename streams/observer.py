"""What the live stages and the offline replay report, and who listens.

Owns: the `Observer` protocol (the narrow interface metrics and logs
implement), `NullObserver` (every call a no-op, to override), `FanOut`
(several observers behind one), `Tally` (a minimal counting observer),
`DeadLettered` (what observers learn of a dead letter) and `Origin` (where an
input event was read). The live worker (`streams.live`) and the offline
replay (`streams.offline`) both call it; `streams.observe` implements it; so
none of them imports another; `report_applied` is the one way both report
an applied event. Imports the standard library and `hedger`.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple, Protocol

from hedger.control import ControlCommand
from hedger.engine import GroupView, HedgingEngine, Outcome
from hedger.events import CdsQuote
from hedger.issuer import RiskView
from hedger.orders import CancelRequest, HedgeOrder, WithholdRecord
from hedger.outcomes import Status
from hedger.quotes import Quote
from hedger.risk_report import IssuerRisk
from hedger.sellers import SellerStatus


class Origin(NamedTuple):
    """Where an input event was read: topic, partition, offset, Kafka timestamp.

    (Named so as not to be confused with `hedger.issuer.Source`, the source of
    a coverage bucket.) The offline replay uses partition 0 and the line number.
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None  # for the event-in -> order-out latency


class DeadLettered(NamedTuple):
    """What observers learn of a dead letter."""

    stage: str
    source: Origin
    reason: str
    detail: str
    event_id: str | None
    issuer_id: str | None


class Observer(Protocol):
    """What stages report; metrics and logs implement it (no-op by default)."""

    def on_event(self, stage: str, topic: str, status: Status, reason: str | None) -> None: ...
    def on_dead_letter(self, dead: DeadLettered) -> None: ...
    def on_orders(self, orders: list[HedgeOrder], view: RiskView, source: Origin) -> None: ...
    def on_view(self, view: RiskView, halted: bool, open_orders: int, occurred_at: str) -> None: ...
    def on_control(self, command: ControlCommand, partition: int | None) -> None: ...
    def on_group(self, view: GroupView) -> None: ...
    def on_seller(self, status: SellerStatus, changed: bool) -> None: ...
    def on_cancels(self, cancels: list[CancelRequest], expired_open: int) -> None: ...
    def on_tick(self, occurred_at: str) -> None: ...
    def on_quote(self, quote: Quote) -> None: ...
    def on_priced(self, records: list[HedgeOrder | WithholdRecord]) -> None: ...
    def on_issuer_risk(self, risk: IssuerRisk) -> None: ...


class FanOut:
    """Several observers behind one (metrics and logs)."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers

    def on_event(self, stage: str, topic: str, status: Status, reason: str | None) -> None:
        for observer in self.observers:
            observer.on_event(stage, topic, status, reason)

    def on_dead_letter(self, dead: DeadLettered) -> None:
        for observer in self.observers:
            observer.on_dead_letter(dead)

    def on_orders(self, orders: list[HedgeOrder], view: RiskView, source: Origin) -> None:
        for observer in self.observers:
            observer.on_orders(orders, view, source)

    def on_view(self, view: RiskView, halted: bool, open_orders: int, occurred_at: str) -> None:
        for observer in self.observers:
            observer.on_view(view, halted, open_orders, occurred_at)

    def on_control(self, command: ControlCommand, partition: int | None) -> None:
        for observer in self.observers:
            observer.on_control(command, partition)

    def on_group(self, view: GroupView) -> None:
        for observer in self.observers:
            observer.on_group(view)

    def on_seller(self, status: SellerStatus, changed: bool) -> None:
        for observer in self.observers:
            observer.on_seller(status, changed)

    def on_cancels(self, cancels: list[CancelRequest], expired_open: int) -> None:
        for observer in self.observers:
            observer.on_cancels(cancels, expired_open)

    def on_tick(self, occurred_at: str) -> None:
        for observer in self.observers:
            observer.on_tick(occurred_at)

    def on_quote(self, quote: Quote) -> None:
        for observer in self.observers:
            observer.on_quote(quote)

    def on_priced(self, records: list[HedgeOrder | WithholdRecord]) -> None:
        for observer in self.observers:
            observer.on_priced(records)

    def on_issuer_risk(self, risk: IssuerRisk) -> None:
        for observer in self.observers:
            observer.on_issuer_risk(risk)


class NullObserver:
    """Every `Observer` call, doing nothing: observers override what they need."""

    def on_event(self, stage: str, topic: str, status: Status, reason: str | None) -> None:
        return None

    def on_dead_letter(self, dead: DeadLettered) -> None:
        return None

    def on_orders(self, orders: list[HedgeOrder], view: RiskView, source: Origin) -> None:
        return None

    def on_view(self, view: RiskView, halted: bool, open_orders: int, occurred_at: str) -> None:
        return None

    def on_control(self, command: ControlCommand, partition: int | None) -> None:
        return None

    def on_group(self, view: GroupView) -> None:
        return None

    def on_seller(self, status: SellerStatus, changed: bool) -> None:
        return None

    def on_cancels(self, cancels: list[CancelRequest], expired_open: int) -> None:
        return None

    def on_tick(self, occurred_at: str) -> None:
        return None

    def on_quote(self, quote: Quote) -> None:
        return None

    def on_priced(self, records: list[HedgeOrder | WithholdRecord]) -> None:
        return None

    def on_issuer_risk(self, risk: IssuerRisk) -> None:
        return None


class Tally(NullObserver):
    """A minimal observer: counts outcomes (used by tests and as the default)."""

    def __init__(self) -> None:
        self.events: Counter[tuple[str, str, str]] = Counter()
        self.orders: list[HedgeOrder] = []
        self.controls: list[ControlCommand] = []

    def on_event(self, stage: str, topic: str, status: Status, reason: str | None) -> None:
        self.events[(stage, status.value, reason or "")] += 1

    def on_orders(self, orders: list[HedgeOrder], view: RiskView, source: Origin) -> None:
        self.orders.extend(orders)

    def on_control(self, command: ControlCommand, partition: int | None) -> None:
        self.controls.append(command)


def report_applied(
    observer: Observer,
    engine: HedgingEngine,
    outcome: Outcome,
    scope: int | None,
    source: Origin,
) -> None:
    """Tell an observer what one applied event did: the one path of the replay and the worker.

    Every member view the decision started from, its orders and cancels, the
    groups it decided, the sellers it re-evaluated, and a tick's time.
    """
    event = outcome.event
    assert event is not None
    occurred_at = event.occurred_at
    for view in outcome.views:
        book = engine.books[view.issuer_id]
        halted = engine.is_halted(view.issuer_id, scope)
        observer.on_view(view, halted, len(book.open_orders), occurred_at)
    for group in outcome.groups:
        observer.on_group(group)
    changed = {status.seller for status in outcome.changes.sellers}
    for status in outcome.sellers:
        observer.on_seller(status, status.seller in changed)
    orders = outcome.orders
    if orders and outcome.views:
        observer.on_orders(list(orders), outcome.views[0], source)
    cancels = outcome.cancels
    if cancels or outcome.changes.closed_order is not None:
        # a report that closes an expired order lowers the count still open
        observer.on_cancels(list(cancels), engine.expired_open)
    if outcome.changes.tick is not None:
        observer.on_tick(occurred_at)
    if engine.pricer is not None:
        _report_price(observer, engine, outcome)


def _report_price(observer: Observer, engine: HedgingEngine, outcome: Outcome) -> None:
    """v2.1: a held quote, the priced orders and withheld legs, and issuers' JTD and CS01.

    The risk is measured for every issuer the event decided (on a tick, every
    unit with state) and for a quote's issuer, at the event's as-of date. Its
    CS01 fits two hazard rates per quoted issuer and day; they are memoised,
    so a daily tick pays them once per issuer, and later events of the day
    little.
    """
    event = outcome.event
    issuers = [view.issuer_id for view in outcome.views]
    if isinstance(event, CdsQuote):
        quotes = engine.quotes
        assert quotes is not None
        held = quotes.held.get((event.issuer_id, event.tenor_years))
        if held is not None:
            observer.on_quote(held)
        issuers = [event.issuer_id]
    priced = [
        record
        for record in outcome.records
        if isinstance(record, WithholdRecord)
        or (isinstance(record, HedgeOrder) and record.price is not None)
    ]
    if priced:
        observer.on_priced(priced)
    assert event is not None
    for issuer in issuers:
        risk = engine.issuer_risk(issuer, event.as_of)
        if risk is not None:
            observer.on_issuer_risk(risk)
