"""A simulated execution venue for paper trading: orders in, execution reports out.

Owns: how the venue answers an order — full fills, a partial fill followed by
the fill of the rest, or a reject — decided by a random generator seeded with
(seed, order id), so the same seed and orders give the same answers whatever
order they arrive in; and the asyncio loop that consumes `cds-hedge-orders`
and produces SPEC `execution.report` events on `cds-executions` (names and
connection from `streams.settings.KafkaSettings`). Imports aiokafka, the
standard library and `streams.settings`.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.settings import KafkaSettings, connection

COUNTERPARTIES = ("INSURER-A", "INSURER-B", "FUND-C", "DEALER-D")
PARTIAL_SHARE = 0.35  # of filled orders, how many fill in two steps


def _stamp(as_of: str, seconds: int) -> str:
    moment = datetime.fromisoformat(as_of.replace("Z", "+00:00")) + timedelta(seconds=seconds)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def plan_reports(order: dict[str, Any], seed: int, fill_ratio: float) -> list[dict[str, Any]]:
    """The execution reports the venue sends for one order, in order.

    Report times are the order's `as_of` plus a few seconds, so a replay of
    the journal sees the same as-of dates as the worker did.
    """
    order_id = order["order_id"]
    # a simulation, not cryptography; str seeds hash deterministically
    rng = random.Random(f"{seed}:{order_id}")  # noqa: S311
    counterparty = rng.choice(COUNTERPARTIES)
    notional = Decimal(order["notional"])

    def report(n: int, status: str, filled: Decimal | None) -> dict[str, Any]:
        value: dict[str, Any] = {
            "schema_version": 1,
            "event_id": f"venue:{order_id}:{n}",
            "event_type": "execution.report",
            "occurred_at": _stamp(order["as_of"], n),
            "order_id": order_id,
            "issuer_id": order["issuer_id"],
            "status": status,
            "counterparty": counterparty,
        }
        if filled is not None:
            value["filled_notional"] = str(filled)
        return value

    if rng.random() >= fill_ratio:
        return [report(1, "rejected", None)]
    if rng.random() < PARTIAL_SHARE and notional >= 2:
        first = (notional * Decimal(rng.randint(20, 80)) / 100).quantize(Decimal(1))
        first = max(min(first, notional - 1), Decimal(1))
        return [report(1, "partially_filled", first), report(2, "filled", notional - first)]
    return [report(1, "filled", notional)]


async def run_venue(
    kafka: KafkaSettings | str,
    *,
    orders_topic: str | None = None,
    executions_topic: str | None = None,
    seed: int = 7,
    fill_ratio: float = 0.9,
    latency_ms: int = 200,
    group_id: str = "hedger-paper-venue",
    stop: asyncio.Event | None = None,
) -> int:
    """Answer every order until `stop` is set; return how many orders were answered.

    Topics default to the settings' `orders` and `cds_executions` names.
    """
    stop = stop if stop is not None else asyncio.Event()
    kafka = connection(kafka)
    orders_topic = orders_topic or kafka.topics.orders
    executions = executions_topic or kafka.topics.cds_executions
    options = kafka.client_options()
    consumer = AIOKafkaConsumer(
        orders_topic,
        **options,
        group_id=group_id,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True)
    answered: set[str] = set()
    pending: set[asyncio.Task[None]] = set()

    async def answer(order: dict[str, Any]) -> None:
        for report in plan_reports(order, seed, fill_ratio):
            await asyncio.sleep(latency_ms / 1000)
            await producer.send_and_wait(
                executions, json.dumps(report).encode(), key=order["issuer_id"].encode()
            )

    try:
        # inside the try: a failed start still stops (closes) both clients
        await consumer.start()
        await producer.start()
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                for message in messages:
                    order = json.loads(message.value)
                    # an order re-emitted after a worker crash is answered once
                    if order["order_id"] in answered:
                        continue
                    answered.add(order["order_id"])
                    task = asyncio.create_task(answer(order))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending)
    finally:
        await consumer.stop()
        await producer.stop()
    return len(answered)
