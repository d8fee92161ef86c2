"""The transactional worker in process on the real broker: topics, publishing, committed reads.

May import aiokafka, streams (kafka_io, live, settings) and tests.factories.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.kafka_io import encode_key, encode_value, ensure_topics
from streams.live.topology import hedger_topology
from streams.live.txn_worker import TxnWorker
from streams.settings import KafkaSettings, TopicNames, load_config
from tests.factories import REPO

CONFIG_PATH = REPO / "config" / "hedger.toml"
INPUTS = ("loan_bookings", "cds_executions", "desk_clock", "control")


async def read_committed(
    bootstrap: str, topic: str, partitions: int = 2
) -> list[tuple[int, int, Any]]:
    """Every committed record of a topic: (partition, offset, JSON value or None)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[tuple[int, int, Any]] = []
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for r in records:
                    out.append((tp.partition, r.offset, json.loads(r.value) if r.value else None))
        return out
    finally:
        await consumer.stop()


async def end_offsets(bootstrap: str, topic: str, partitions: int = 2) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: end for tp, end in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def wait_idle(worker: TxnWorker, bootstrap: str, timeout: float = 60.0) -> None:
    """Until every input partition's committed offset is its end (markers included)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    topics = worker.topology.input_topics
    while loop.time() < deadline:
        n = worker.topology.partitions
        ends = {t: await end_offsets(bootstrap, t, n) for t in topics}
        done = worker.loop.stats.committed_offsets
        behind = [
            (t, p)
            for t, parts in ends.items()
            for p, end in parts.items()
            if done.get(TopicPartition(t, p), 0) < end
        ]
        if not behind:
            return
        await asyncio.sleep(0.3)
    raise TimeoutError(f"not idle: {behind}")


async def publish(bootstrap: str, topic: str, records: list[tuple[Any, Any]]) -> None:
    """Publish (key, value) pairs as `hedger publish` encodes them."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, encode_value(value), encode_key(key))
    finally:
        await producer.stop()


class Harness:
    def __init__(
        self, bootstrap: str, prefix: str, partitions: int, bookings: int | None = None
    ) -> None:
        self.bootstrap = bootstrap
        self.kafka = KafkaSettings(bootstrap=bootstrap)
        self.topics = TopicNames.prefixed(prefix)
        self.partitions = partitions
        self.bookings = bookings or partitions  # partitions of loan-bookings
        self.topology = hedger_topology(f"{prefix}-hedger", partitions, self.topics)
        self.config = load_config(CONFIG_PATH)

    async def create(self) -> None:
        inputs = [getattr(self.topics, f) for f in INPUTS]
        outs = [self.topics.orders, self.topics.dead_letters]
        await ensure_topics(self.kafka, [self.topics.loan_bookings], self.bookings)
        await ensure_topics(self.kafka, [*inputs, *outs], self.partitions)

    def worker(self) -> TxnWorker:
        return TxnWorker(self.kafka, self.config, self.topology)

    async def run(self, worker: TxnWorker) -> AsyncIterator[TxnWorker]:
        await worker.create_topics()
        await worker.loop.start()
        try:
            await asyncio.wait_for(worker.loop.assigned_event.wait(), 60)
            yield worker
        finally:
            await worker.loop.stop()
