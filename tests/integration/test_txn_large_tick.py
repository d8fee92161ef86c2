"""A desk-clock tick that orders for more units of one journal partition than one
message holds, on the real broker, through the transactional worker.

1,300 issuers, one journal partition: every unit breaches on its booking, and
the tick (after `order_ttl_days`) expires each unit's order and orders again,
so its one journal entry emits 2,600 records. Every topic the worker writes
takes messages of at most 64 KiB (a topic-level `max.message.bytes`), far
below what the tick's records weigh together: each must be its own record.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from hedger.config import HedgerConfig, config_from_mapping
from streams.kafka_io import ensure_topics
from streams.offline.replay import replay_files
from tests.factories import booked, config_data
from tests.kafka_broker import LocalKafka
from tests.support.txn_worker import Harness, publish, read_committed, wait_idle

pytestmark = pytest.mark.kafka
UNITS = 1_300
MAX_MESSAGE = 65_536


def wide_config() -> HedgerConfig:
    issuers = {f"I{n:04d}": {"limit": "100000000"} for n in range(UNITS)}
    return config_from_mapping(config_data(issuers=issuers, hedge={"order_ttl_days": 1}))


def tick(event_id: str, day: str) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": event_id,
        "event_type": "clock.tick",
        "occurred_at": f"{day}T18:00:00Z",
    }


def replay(config: HedgerConfig, lines: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        log, orders, dead = Path(tmp) / "in.jsonl", Path(tmp) / "o.jsonl", Path(tmp) / "d.jsonl"
        log.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
        replay_files(config, log, orders, dead)
        read = [[json.loads(x) for x in f.read_text().splitlines() if x] for f in (orders, dead)]
        return read[0], read[1]


def test_a_tick_ordering_for_1300_units_of_one_partition_sends_each_order_alone(
    kafka: LocalKafka, unique: str
) -> None:
    harness = Harness(kafka.bootstrap, unique, 1)
    harness.config = config = wide_config()
    topics = harness.topics
    bookings = [booked(f"L-{n}", "150000000", issuer=f"I{n:04d}") for n in range(UNITS)]
    lines: list[dict[str, Any]] = [
        {"topic": "loan-bookings", "key": b["loan_id"], "value": b} for b in bookings
    ]
    lines.append({"topic": "desk-clock", "value": tick("tick-1", "2026-01-05")})
    expected, expected_dead = replay(config, lines)
    from_tick = [o for o in expected if o["trigger_event_id"] == "tick-1"]
    assert len(from_tick) == 2 * UNITS  # a cancel request and a new order per unit
    assert sum(len(json.dumps(o)) for o in from_tick) > 10 * MAX_MESSAGE

    async def scenario() -> dict[str, float]:
        small = {"max.message.bytes": str(MAX_MESSAGE)}
        worker = harness.worker()
        written = (*harness.topology.internal_topics, topics.orders, topics.dead_letters)
        configs = {name: small for name in written}
        compact = {**small, "cleanup.policy": "compact"}
        configs.update({name: compact for name in harness.topology.changelogs})
        await ensure_topics(harness.kafka, list(configs), 1, configs=configs)
        await harness.create()
        await publish(
            harness.bootstrap, topics.loan_bookings, [(b["loan_id"], b) for b in bookings]
        )
        started = booked_at = ticked_at = time.monotonic()
        async for running in harness.run(worker):
            # every booking journaled first: the tick then follows them in the
            # journal, as it follows them in the replay's file
            await wait_idle(running, harness.bootstrap, timeout=120)
            booked_at = time.monotonic()
            await publish(harness.bootstrap, topics.desk_clock, [(None, lines[-1]["value"])])
            # twice: the tick's journal copy is committed with the desk-clock
            # offset, and may land after the first pass read the journal's end
            await wait_idle(running, harness.bootstrap, timeout=120)
            await wait_idle(running, harness.bootstrap, timeout=120)
            ticked_at = time.monotonic()
            assert running.loop.stats.aborted == 0
            assert running.loop.stats.fenced == 0
        return {"bookings": booked_at - started, "tick": ticked_at - booked_at}

    figures = asyncio.run(scenario())
    orders = [o[2] for o in asyncio.run(read_committed(harness.bootstrap, topics.orders, 1))]
    # a cancel request names the order it cancels: (order id, action) is unique
    ids = [(o["order_id"], o["action"]) for o in orders]
    assert len(ids) == len(set(ids))
    assert orders == expected
    dead = asyncio.run(read_committed(harness.bootstrap, topics.dead_letters, 1))
    assert dead == [] and expected_dead == []
    print(
        f"\n{UNITS} units: {len(orders)} records on the orders topic; bookings "
        f"{figures['bookings']:.1f} s, tick {figures['tick']:.1f} s"
    )
