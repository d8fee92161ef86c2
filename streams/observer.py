"""What the live stages and the offline replay report, and who listens.

Owns: the `Observer` protocol (the narrow interface metrics and logs
implement), `NullObserver` (every call a no-op, to override), `FanOut`
(several observers behind one), `Tally` (a minimal counting observer),
`DeadLettered` (what observers learn of a dead letter) and `Origin` (where an
input event was read). The live worker (`streams.live`) and the offline
replay (`streams.offline`) both call it; `streams.observe` implements it; so
none of them imports another. Imports the standard library and `hedger`.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple, Protocol

from hedger.control import ControlCommand
from hedger.issuer import RiskView
from hedger.orders import HedgeOrder
from hedger.outcomes import Status


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
