"""A simulated execution venue for paper trading: orders in, execution reports out.

Owns: how the venue answers each record of `cds-hedge-orders` (SPEC §7) —
a new order gets full fills, a partial fill followed by the fill of the rest,
a reject, or (a `silence_ratio` share) no answer at all, so that the bot's
expiry (§11) happens in the loop; a cancel request gets a `cancelled` report
while the order is still open at the venue and nothing otherwise. Every fill
names its `counterparty`: a buy is filled by a seller of the venue's pool
that is not in the order's `excluded_counterparties` (§13) and rejected when
the whole pool is excluded; a sell is filled with the order's `counterparty`
hint when it has one. Each answer is decided by random generators seeded
with (seed, order id), so the same seed and orders give the same answers
whatever order they arrive in. Also owns the asyncio loop that consumes
`cds-hedge-orders` and produces SPEC `execution.report` events on
`cds-executions` (names and connection from `streams.settings.KafkaSettings`).
Imports the standard library and `streams.settings` (aiokafka inside `run_venue`).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from streams.settings import KafkaSettings, connection

# The sellers of config/desk-v2.toml, and the seller a fill without a name is
# attributed to (SPEC §2).
COUNTERPARTIES = (
    "ATLAS-RE",
    "BOREAL-LIFE",
    "CEDAR-CREDIT",
    "NVDA-CAPITAL",
    "ABILENE-INFRA",
    "DEALER-A",
    "DEALER-B",
    "UNSPECIFIED",
)
PARTIAL_SHARE = 0.35  # of filled orders, how many fill in two steps
CLOSING = frozenset({"filled", "rejected", "cancelled"})

Report = dict[str, Any]


def _stamp(as_of: str, seconds: int) -> str:
    moment = datetime.fromisoformat(as_of.replace("Z", "+00:00")) + timedelta(seconds=seconds)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _rng(seed: int, order_id: str, stream: str = "") -> random.Random:
    # a simulation, not cryptography; str seeds hash deterministically
    return random.Random(f"{seed}:{order_id}{stream}")  # noqa: S311


def _report(order: dict[str, Any], n: int | str, status: str, as_of: str, seconds: int) -> Report:
    return {
        "schema_version": 1,
        "event_id": f"venue:{order['order_id']}:{n}",
        "event_type": "execution.report",
        "occurred_at": _stamp(as_of, seconds),
        "order_id": order["order_id"],
        "issuer_id": order["issuer_id"],
        "status": status,
    }


def is_silent(order_id: str, seed: int, silence_ratio: float) -> bool:
    """Whether the venue leaves this order unanswered (its own draw: the answers do not move)."""
    return _rng(seed, order_id, ":silence").random() < silence_ratio


def plan_reports(
    order: dict[str, Any],
    seed: int,
    fill_ratio: float,
    counterparties: Sequence[str] = COUNTERPARTIES,
    silence_ratio: float = 0.0,
) -> list[Report]:
    """The execution reports the venue sends for one new order, in order ([]: silence).

    Report times are the order's `as_of` plus a few seconds, so a replay of
    the journal sees the same as-of dates as the worker did.
    """
    order_id = order["order_id"]
    if is_silent(order_id, seed, silence_ratio):
        return []
    rng = _rng(seed, order_id)
    notional = Decimal(order["notional"])
    if order.get("side") == "SELL_PROTECTION" and order.get("counterparty"):
        allowed = [str(order["counterparty"])]
    else:
        excluded = set(order.get("excluded_counterparties") or ())
        allowed = [name for name in counterparties if name not in excluded]
    counterparty = rng.choice(allowed) if allowed else None

    def fill(n: int, status: str, filled: Decimal) -> Report:
        value = _report(order, n, status, order["as_of"], n)
        value["filled_notional"] = str(filled)
        value["counterparty"] = counterparty
        return value

    if rng.random() >= fill_ratio or counterparty is None:
        return [_report(order, 1, "rejected", order["as_of"], 1)]
    if rng.random() < PARTIAL_SHARE and notional >= 2:
        first = (notional * Decimal(rng.randint(20, 80)) / 100).quantize(Decimal(1))
        first = max(min(first, notional - 1), Decimal(1))
        return [fill(1, "partially_filled", first), fill(2, "filled", notional - first)]
    return [fill(1, "filled", notional)]


class VenueBook:
    """The venue's memory: which orders it has seen and which are still open there.

    An order is open from its arrival until its closing report (`filled`,
    `rejected`) is released for sending, or until it is cancelled; an order
    the venue stays silent on stays open, so a cancel request closes it.
    """

    def __init__(
        self,
        seed: int = 7,
        fill_ratio: float = 0.9,
        counterparties: Sequence[str] = COUNTERPARTIES,
        silence_ratio: float = 0.0,
    ) -> None:
        if not counterparties:
            raise ValueError("the venue needs at least one counterparty")
        self.seed, self.fill_ratio = seed, fill_ratio
        self.counterparties = tuple(counterparties)
        self.silence_ratio = silence_ratio
        self.seen: set[str] = set()
        self.open: set[str] = set()

    def receive(self, record: dict[str, Any]) -> list[Report]:
        """The reports this record of the orders topic calls for.

        A new order's reports are a plan: send each only if `release` says so
        (a cancel may close the order in between). A cancel request's answer
        (a `cancelled` report or nothing) is final. A new order seen before
        (re-emitted after a worker crash) gets no second answer; a withhold record
        (v2.1) gets none: it is no order.
        """
        order_id = record["order_id"]
        if record.get("action") == "withhold":
            return []  # v2.1: a leg the guard kept back never reached the venue
        if record.get("action", "new") == "cancel":
            if order_id not in self.open:
                return []
            self.open.discard(order_id)
            return [_report(record, "cancelled", "cancelled", record["as_of"], 1)]
        if order_id in self.seen:
            return []
        self.seen.add(order_id)
        self.open.add(order_id)
        return plan_reports(
            record, self.seed, self.fill_ratio, self.counterparties, self.silence_ratio
        )

    def release(self, report: Report) -> bool:
        """Whether a planned report may be sent now; a closing one closes its order."""
        order_id = report["order_id"]
        if order_id not in self.open:
            return False
        if report["status"] in CLOSING:
            self.open.discard(order_id)
        return True


async def run_venue(
    kafka: KafkaSettings | str,
    *,
    orders_topic: str | None = None,
    executions_topic: str | None = None,
    seed: int = 7,
    fill_ratio: float = 0.9,
    latency_ms: int = 200,
    counterparties: Sequence[str] = COUNTERPARTIES,
    silence_ratio: float = 0.0,
    group_id: str = "hedger-paper-venue",
    stop: asyncio.Event | None = None,
) -> int:
    """Answer the orders topic until `stop` is set; return how many new orders it received.

    Orders it left silent count too.
    Topics default to the settings' `orders` and `cds_executions` names.
    """
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # loaded with the venue only

    stop = stop if stop is not None else asyncio.Event()
    kafka = connection(kafka)
    orders_topic = orders_topic or kafka.topics.orders
    executions = executions_topic or kafka.topics.cds_executions
    book = VenueBook(seed, fill_ratio, counterparties, silence_ratio)
    options = kafka.client_options()
    consumer = AIOKafkaConsumer(
        orders_topic,
        **options,
        group_id=group_id,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True)
    pending: set[asyncio.Task[None]] = set()

    async def send(report: Report) -> None:
        await producer.send_and_wait(
            executions, json.dumps(report).encode(), key=report["issuer_id"].encode()
        )

    async def answer(plan: list[Report]) -> None:
        for report in plan:
            await asyncio.sleep(latency_ms / 1000)
            # checked after the delay: a cancel may have closed the order meanwhile
            if book.release(report):
                await send(report)

    try:
        # inside the try: a failed start still stops (closes) both clients
        await consumer.start()
        await producer.start()
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                for message in messages:
                    record = json.loads(message.value)
                    reports = book.receive(record)
                    if record.get("action") == "cancel":
                        for report in reports:
                            await send(report)
                    elif reports:
                        task = asyncio.create_task(answer(reports))
                        pending.add(task)
                        task.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending)
    finally:
        await consumer.stop()
        await producer.stop()
    return len(book.seen)
