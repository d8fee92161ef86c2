"""Prometheus metrics of the bot, fed as an observer of the stages.

Owns: every metric name and label, the bound on issuer labels, and the
`Metrics` observer that the worker's stages and the offline replay call.
Runtime figures only the worker has (consumer lag, recovery, commit age)
are read at scrape time by `WorkerCollector`. Imports prometheus_client,
the standard library, `hedger` and `streams.observer`.

Label cardinality: `issuer` takes the configured issuers plus at most
`MAX_UNLISTED_ISSUERS` others, first seen first served; later unlisted issuers
share the label value `_other` and have no per-issuer gauges. `group` takes
the configured groups only; `seller` the configured sellers plus at most as
many others as issuers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hedger import CONTRACT_VERSION
from hedger.config import HedgerConfig
from hedger.control import ControlCommand
from hedger.engine import GroupView
from hedger.events import Side
from hedger.issuer import RiskView
from hedger.orders import CancelRequest, HedgeOrder, WithholdRecord
from hedger.outcomes import Status
from hedger.quotes import Quote
from hedger.risk_report import IssuerRisk
from hedger.sellers import SellerStatus
from streams.observer import DeadLettered, NullObserver, Origin

# `*_created` series double the exposition for nothing a dashboard uses.
disable_created_metrics()

MAX_UNLISTED_ISSUERS = 200
OTHER = "_other"
# Event in -> order out spans three Kafka hops: milliseconds to seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OUTCOMES = {
    Status.APPLIED: "applied",
    Status.DUPLICATE: "duplicate",
    Status.DEAD_LETTER: "dead_lettered",
}


def build_version() -> str:
    """The installed cds-hedger version ("unknown" when run from an uninstalled tree)."""
    try:
        return package_version("cds-hedger")
    except PackageNotFoundError:
        return "unknown"


class Metrics(NullObserver):
    """The bot's metrics in one registry, updated through the `Observer` calls.

    Prometheus samples are floats: money becomes one here, for display only,
    never on the way back into a decision.
    """

    def __init__(
        self,
        config: HedgerConfig,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] | None = time.time,
    ) -> None:
        self.config = config
        self.registry = registry if registry is not None else CollectorRegistry()
        self.clock = clock
        self.known = set(config.issuers)
        self.unlisted: set[str] = set()
        r = self.registry
        self.events = Counter(
            "hedger_events",
            "Input events by topic and final outcome",
            ["topic", "outcome"],
            registry=r,
        )
        self.dead_letters = Counter(
            "hedger_dead_letters",
            "Dead letters by reason and stage",
            ["reason", "stage"],
            registry=r,
        )
        self.orders = Counter(
            "hedger_orders", "Orders emitted by side and reason", ["side", "reason"], registry=r
        )
        self.notional = Counter(
            "hedger_order_notional_base",
            "Order notional in the base currency",
            ["side", "reason"],
            registry=r,
        )
        self.exposure = Gauge(
            "hedger_issuer_exposure_base", "Exposure E in the base currency", ["issuer"], registry=r
        )
        self.coverage = Gauge(
            "hedger_issuer_coverage_base",
            "Recognised coverage in the base currency: held protection, and open orders",
            ["issuer", "source"],
            registry=r,
        )
        self.residual = Gauge(
            "hedger_issuer_residual_base", "Residual R in the base currency", ["issuer"], registry=r
        )
        self.limit = Gauge(
            "hedger_issuer_limit_base", "Limit L in the base currency", ["issuer"], registry=r
        )
        self.utilisation = Gauge(
            "hedger_issuer_utilisation_ratio", "Residual over limit (R / L)", ["issuer"], registry=r
        )
        self.breach = Gauge(
            "hedger_issuer_in_breach", "1 while R > L x trigger_ratio", ["issuer"], registry=r
        )
        self.halted = Gauge(
            "hedger_issuer_halted",
            "1 while hedging is halted for the issuer",
            ["issuer"],
            registry=r,
        )
        self.open_orders = Gauge(
            "hedger_issuer_open_orders", "Orders emitted and not yet closed", ["issuer"], registry=r
        )
        self.issuers_in_breach = Gauge(
            "hedger_issuers_in_breach", "Issuers with R > L x trigger_ratio", registry=r
        )
        self.open_orders_total = Gauge(
            "hedger_open_orders", "Open orders over all issuers", registry=r
        )
        self.unlabelled = Counter(
            "hedger_unlisted_issuers_over_cap",
            "Events of unlisted issuers beyond the label cap",
            registry=r,
        )
        self.latency = Histogram(
            "hedger_processing_latency_seconds",
            "From the input event's Kafka timestamp to its orders being sent",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.event_lag = Gauge(
            "hedger_event_time_lag_seconds",
            "Wall clock minus occurred_at of the last applied event",
            registry=r,
        )
        self.halt_info = Gauge(
            "hedger_halt_active",
            "1 per active operator halt, with who and why (issuer * = all)",
            ["issuer", "operator", "reason"],
            registry=r,
        )
        self.last_event = Gauge(
            "hedger_last_event_timestamp_seconds",
            "Wall-clock time (Unix seconds) the worker last took an input event",
            registry=r,
        )
        # -- contract v2: groups, sellers, expiry, the desk clock --------
        self.group_residual = Gauge(
            "hedger_group_residual_base",
            "R_G: the sum of the group members' residuals, in the base currency",
            ["group"],
            registry=r,
        )
        self.group_limit = Gauge(
            "hedger_group_limit_base", "L_G in the base currency", ["group"], registry=r
        )
        self.group_utilisation = Gauge(
            "hedger_group_utilisation_ratio", "R_G / L_G", ["group"], registry=r
        )
        self.group_breach = Gauge(
            "hedger_group_in_breach", "1 while R_G > L_G x trigger_ratio", ["group"], registry=r
        )
        self.seller_exposure = Gauge(
            "hedger_seller_exposure_base",
            "X_s: protection bought from the seller, in the base currency",
            ["seller"],
            registry=r,
        )
        self.seller_limit = Gauge(
            "hedger_seller_limit_base",
            "L_s in the base currency (no series: the seller has no limit)",
            ["seller"],
            registry=r,
        )
        self.seller_utilisation = Gauge(
            "hedger_seller_utilisation_ratio", "X_s / L_s", ["seller"], registry=r
        )
        self.seller_blocked = Gauge(
            "hedger_seller_blocked",
            "1 while the seller is at or over its limit (excluded from buys)",
            ["seller"],
            registry=r,
        )
        self.cancels = Counter(
            "hedger_cancel_requests", "Cancel requests sent for expired orders", registry=r
        )
        self.expired_open = Gauge(
            "hedger_expired_orders_open",
            "Orders that expired (no longer counted) and no report has closed yet",
            registry=r,
        )
        self.last_tick = Gauge(
            "hedger_clock_last_tick_timestamp_seconds",
            "occurred_at (Unix seconds) of the last desk-clock tick applied",
            registry=r,
        )
        # -- contract v2.1: the price of protection (only with [pricing]) --
        self.quote_spread = Gauge(
            "hedger_quote_spread_bps",
            "Par spread of the quote held, in basis points",
            ["issuer", "tenor"],
            registry=r,
        )
        self.quote_as_of = Gauge(
            "hedger_quote_as_of_timestamp_seconds",
            "as_of_date (Unix seconds, 00:00 UTC) of the quote held: its age is time() minus this",
            ["issuer", "tenor"],
            registry=r,
        )
        self.upfront_paid = Counter(
            "hedger_upfront_paid_base",
            "Upfront the bot pays on the orders it emits, in the base currency",
            ["issuer"],
            registry=r,
        )
        self.upfront_received = Counter(
            "hedger_upfront_received_base",
            "Upfront the bot receives on the orders it emits, in the base currency",
            ["issuer"],
            registry=r,
        )
        self.withheld = Counter(
            "hedger_withheld_legs",
            "Buy legs the spread guard withheld, by reason (no_quote, spread_above_max)",
            ["issuer", "reason"],
            registry=r,
        )
        self.jtd = Gauge(
            "hedger_issuer_jtd_base",
            "Jump-to-default: (1 - recovery) x (exposure - protection), in the base currency",
            ["issuer"],
            registry=r,
        )
        self.cs01 = Gauge(
            "hedger_issuer_credit_spread_risk_base",
            "CS01: gain of the protection held when the spread widens 1bp (no series: no quote)",
            ["issuer"],
            registry=r,
        )
        self._cs01_shown: set[str] = set()
        self.known_sellers = set(config.sellers)
        self.unlisted_sellers: set[str] = set()
        for group_id in sorted(config.groups):
            self.group_limit.labels(group_id).set(float(config.group_limit(group_id)))
        # Configured sellers show from the start (nothing bought from them yet):
        # a seller stage only hears of the sellers whose parts move.
        for seller in sorted(config.sellers):
            limit = config.seller_limit(seller)
            self.on_seller(SellerStatus(seller, Decimal(0), limit, False), False)
        self.build_info = Gauge(
            "hedger_build_info",
            "Always 1: the package version and message contract version running",
            ["version", "contract_version"],
            registry=r,
        )
        self.build_info.labels(build_version(), CONTRACT_VERSION).set(1)
        if clock is not None:  # the live worker: its process's CPU, memory, fds, Python
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            self.last_event.set(clock())  # "no event since" counts from the start
        self._halt_labels: dict[tuple[str, int | None], tuple[str, str, str]] = {}
        self._breaching: set[str] = set()
        self._open: dict[str, int] = {}
        self._open_total = 0
        self._series: dict[str, tuple[Any, ...]] = {}
        self._outcomes: dict[tuple[str, Status], Any] = {}
        for issuer in sorted(self.known):
            self.halted.labels(issuer).set(1 if config.is_halted(issuer) else 0)

    def label(self, issuer: str) -> str | None:
        """The issuer's label value, or None once the cap on unlisted issuers is reached."""
        if issuer in self.known or issuer in self.unlisted:
            return issuer
        if len(self.unlisted) < MAX_UNLISTED_ISSUERS:
            self.unlisted.add(issuer)
            return issuer
        self.unlabelled.inc()
        return None

    # -- Observer ------------------------------------------------------

    def on_event(self, stage: str, topic: str, status: Status, reason: str | None) -> None:
        child = self._outcomes.get((topic, status))
        if child is None:
            child = self._outcomes[(topic, status)] = self.events.labels(topic, OUTCOMES[status])
        child.inc()
        if self.clock is not None:
            self.last_event.set(self.clock())

    def on_dead_letter(self, dead: DeadLettered) -> None:
        self.dead_letters.labels(dead.reason, dead.stage).inc()

    def on_orders(self, orders: list[HedgeOrder], view: RiskView, source: Origin) -> None:
        fx = self.config.fx
        for order in orders:
            labels = (order.side.value, order.reason.value)
            self.orders.labels(*labels).inc()
            self.notional.labels(*labels).inc(float(order.notional * fx[order.currency]))
        if source.timestamp_ms is not None and self.clock is not None:
            self.latency.observe(max(self.clock() - source.timestamp_ms / 1000, 0.0))

    def on_view(self, view: RiskView, halted: bool, open_orders: int, occurred_at: str) -> None:
        if self.clock is not None:  # offline replays have no wall clock to lag behind
            stamp = datetime.fromisoformat(occurred_at.replace("Z", "+00:00"))
            self.event_lag.set(self.clock() - stamp.timestamp())
        series = self._series.get(view.issuer_id)
        if series is None:
            issuer = self.label(view.issuer_id)
            if issuer is None:
                return
            # labels() costs a lock and a lookup: resolve each issuer's series once
            series = self._series[view.issuer_id] = (
                self.exposure.labels(issuer),
                self.coverage.labels(issuer, "held"),
                self.coverage.labels(issuer, "open_orders"),
                self.residual.labels(issuer),
                self.limit.labels(issuer),
                self.utilisation.labels(issuer),
                self.breach.labels(issuer),
                self.halted.labels(issuer),
                self.open_orders.labels(issuer),
            )
        exposure, held, pending, residual, limit, utilisation, breach, halt, opened = series
        exposure.set(float(view.exposure))
        held.set(float(view.held_coverage))
        pending.set(float(view.pending_coverage))
        residual.set(float(view.residual))
        limit.set(float(view.limit))
        utilisation.set(float(view.residual / view.limit))
        in_breach = view.residual > view.limit * self.config.risk.trigger_ratio
        breach.set(1 if in_breach else 0)
        halt.set(1 if halted else 0)
        opened.set(open_orders)
        issuer_id = view.issuer_id
        if in_breach:
            self._breaching.add(issuer_id)
        else:
            self._breaching.discard(issuer_id)
        self.issuers_in_breach.set(len(self._breaching))
        # a running total: summing every issuer on every event would grow with the book
        self._open_total += open_orders - self._open.get(issuer_id, 0)
        self._open[issuer_id] = open_orders
        self.open_orders_total.set(self._open_total)

    def on_group(self, view: GroupView) -> None:
        group = view.group_id
        self.group_residual.labels(group).set(float(view.residual))
        self.group_limit.labels(group).set(float(view.limit))
        self.group_utilisation.labels(group).set(float(view.utilisation))
        self.group_breach.labels(group).set(1 if view.in_breach else 0)

    def on_seller(self, status: SellerStatus, changed: bool) -> None:
        seller = status.seller
        if seller not in self.known_sellers and seller not in self.unlisted_sellers:
            if len(self.unlisted_sellers) >= MAX_UNLISTED_ISSUERS:
                return  # bounded label cardinality, as for issuers
            self.unlisted_sellers.add(seller)
        self.seller_exposure.labels(seller).set(float(status.exposure))
        self.seller_blocked.labels(seller).set(1 if status.blocked else 0)
        if status.limit is not None:
            self.seller_limit.labels(seller).set(float(status.limit))
            self.seller_utilisation.labels(seller).set(float(status.exposure / status.limit))

    def on_cancels(self, cancels: list[CancelRequest], expired_open: int) -> None:
        self.cancels.inc(len(cancels))
        self.expired_open.set(expired_open)

    def on_tick(self, occurred_at: str) -> None:
        stamp = datetime.fromisoformat(occurred_at.replace("Z", "+00:00"))
        self.last_tick.set(stamp.timestamp())

    def on_control(self, command: ControlCommand, partition: int | None) -> None:
        key = (command.target, partition)
        previous = self._halt_labels.pop(key, None)
        if previous is not None and previous not in self._halt_labels.values():
            self.halt_info.remove(*previous)
        if command.command == "halt":
            labels = (command.target, command.operator, command.reason[:200])
            self._halt_labels[key] = labels
            self.halt_info.labels(*labels).set(1)
        issuer = None if command.issuer_id is None else self.label(command.issuer_id)
        if issuer is not None:
            halted = command.command == "halt" or self.config.is_halted(issuer)
            self.halted.labels(issuer).set(1 if halted else 0)

    # -- contract v2.1 ------------------------------------------------------

    def on_quote(self, quote: Quote) -> None:
        issuer = self.label(quote.issuer_id)
        if issuer is None:
            return
        tenor = str(quote.tenor_years)
        self.quote_spread.labels(issuer, tenor).set(float(quote.spread_bps))
        midnight = datetime(
            quote.as_of_date.year, quote.as_of_date.month, quote.as_of_date.day, tzinfo=UTC
        )
        self.quote_as_of.labels(issuer, tenor).set(midnight.timestamp())

    def on_priced(self, records: list[HedgeOrder | WithholdRecord]) -> None:
        fx = self.config.fx
        for record in records:
            issuer = self.label(record.issuer_id)
            if issuer is None:
                continue
            if isinstance(record, WithholdRecord):
                self.withheld.labels(issuer, record.reason.value).inc()
                continue
            price = record.price
            if price is None or price.upfront_amount is None:
                continue
            # The upfront is the protection buyer's: a seller receives what a buyer pays.
            amount = Decimal(price.upfront_amount) * fx[record.currency]
            if record.side is Side.SELL:
                amount = -amount
            if amount > 0:
                self.upfront_paid.labels(issuer).inc(float(amount))
            elif amount < 0:
                self.upfront_received.labels(issuer).inc(float(-amount))

    def on_issuer_risk(self, risk: IssuerRisk) -> None:
        issuer = self.label(risk.issuer)
        if issuer is None:
            return
        self.jtd.labels(issuer).set(float(risk.jtd))
        if risk.cs01 is not None:
            self.cs01.labels(issuer).set(float(risk.cs01))
            self._cs01_shown.add(issuer)
        elif issuer in self._cs01_shown:
            self.cs01.remove(issuer)  # no usable quote: no figure, rather than a stale one
            self._cs01_shown.discard(issuer)


class WorkerCollector(Collector):
    """Figures read from the running worker at scrape time."""

    def __init__(
        self,
        lag: Callable[[], Iterable[tuple[str, int, int, int]]],
        recovery_remaining: Callable[[], int],
        last_commit: Callable[[], float | None],
        ready: Callable[[], bool],
        clock: Callable[[], float] = time.time,
        transactions: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self._lag, self._remaining, self._last_commit = lag, recovery_remaining, last_commit
        self._ready, self._clock = ready, clock
        self._transactions = transactions

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "hedger_consumer_lag",
            "Offsets from the committed offset to the end (not yet committed), per partition",
            labels=["topic", "partition"],
        )
        # Processed but not committed: the records of the transaction in
        # flight (part of the lag); a value that stays up flags transactions
        # that hang or keep aborting.
        uncommitted = GaugeMetricFamily(
            "hedger_uncommitted_messages",
            "Messages processed but not yet committed, per partition",
            labels=["topic", "partition"],
        )
        for topic, partition, behind, pending in self._lag():
            lag.add_metric([topic, str(partition)], behind)
            uncommitted.add_metric([topic, str(partition)], pending)
        yield lag
        yield uncommitted
        yield GaugeMetricFamily(
            "hedger_recovery_remaining",
            "Changelog messages left to recover before processing resumes",
            value=self._remaining(),
        )
        last = self._last_commit()
        yield GaugeMetricFamily(
            "hedger_last_commit_age_seconds",
            "Seconds since offsets were last committed (-1: none yet)",
            value=-1 if last is None else self._clock() - last,
        )
        yield GaugeMetricFamily(
            "hedger_ready", "1 once recovered and consuming", value=1 if self._ready() else 0
        )
        if self._transactions is not None:
            transactions = CounterMetricFamily(
                "hedger_transactions",
                "Kafka transactions by outcome: committed, aborted, fenced (abort refused)",
                labels=["outcome"],
            )
            for outcome, count in sorted(self._transactions().items()):
                transactions.add_metric([outcome], count)
            yield transactions
