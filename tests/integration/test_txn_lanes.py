"""The transactional loop's lanes on the real broker: partitions commit independently.

A partition's records are processed and committed by its own lane, so a
transaction that is slow to commit holds up only its own partition; the
other partitions' records are committed meanwhile, read `read_committed`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from streams.kafka_io import encode_key, encode_value
from tests.factories import booked
from tests.kafka_broker import LocalKafka
from tests.support.txn_worker import Harness, read_committed, wait_idle

pytestmark = pytest.mark.kafka


def _key_on(partition: int, stem: str, key_of: Callable[[str], str] = str) -> str:
    """A name whose key (`key_of(name)`) the default partitioner sends to
    `partition` of 2."""
    partitions = [0, 1]
    return next(
        name
        for name in (f"{stem}-{i}" for i in range(100))
        if DefaultPartitioner()(key_of(name).encode(), partitions, partitions) == partition
    )


async def _publish(bootstrap: str, topic: str, loan: str, issuer: str, partition: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        event = booked(loan, "1000000", issuer=issuer, event_id=f"ev-{loan}")
        await producer.send_and_wait(
            topic, encode_value(event), encode_key(loan), partition=partition
        )
    finally:
        await producer.stop()


def _journal_loans(journal: list[tuple[int, int, Any]]) -> set[str]:
    return {json.loads(j[2]["value"])["loan_id"] for j in journal}


def test_a_slow_commit_of_one_partition_does_not_hold_up_another(
    kafka: LocalKafka, unique: str
) -> None:
    """The commit of loan-bookings partition 0 is held open (its offsets step waits).
    A booking published to partition 1 after that commit began reaches the journal,
    committed, while partition 0's transaction is still open; once released,
    partition 0's booking is committed too, and each booking is journaled once.
    (Their issuers' units are on different journal partitions: a transaction
    still open on a partition hides the records after it from read_committed
    readers.)"""
    harness = Harness(kafka.bootstrap, unique, 2)
    topics = harness.topics
    first, second = _key_on(0, "SLOW"), _key_on(1, "FAST")
    unit = harness.config.unit_of
    issuers = [_key_on(p, "ISS", unit) for p in (0, 1)]
    slow = TopicPartition(topics.loan_bookings, 0)
    fast = TopicPartition(topics.loan_bookings, 1)

    async def scenario() -> None:
        await harness.create()
        worker = harness.worker()
        loop = worker.loop
        commit, entered, release = loop.commit_offsets, asyncio.Event(), asyncio.Event()

        async def held(producer: Any, tp: TopicPartition, offset: int) -> None:
            if tp == slow and offset == 1:  # the transaction of the first booking
                entered.set()
                await release.wait()
            await commit(producer, tp, offset)

        loop.commit_offsets = held  # type: ignore[method-assign]
        async for running in harness.run(worker):
            await _publish(harness.bootstrap, topics.loan_bookings, first, issuers[0], 0)
            await asyncio.wait_for(entered.wait(), 30)
            await _publish(harness.bootstrap, topics.loan_bookings, second, issuers[1], 1)
            deadline = asyncio.get_running_loop().time() + 30
            while running.loop.stats.committed_offsets.get(fast, 0) < 1:
                assert asyncio.get_running_loop().time() < deadline, "partition 1 held up"
                await asyncio.sleep(0.05)
            assert not release.is_set()
            assert running.loop.stats.committed_offsets[slow] == 0  # still open
            journal = await read_committed(harness.bootstrap, topics.journal)
            assert _journal_loans(journal) == {second}
            release.set()
            await wait_idle(running, harness.bootstrap)
            assert running.loop.stats.committed_offsets[slow] == 1
            assert running.loop.stats.aborted == 0
        journal = await read_committed(harness.bootstrap, topics.journal)
        assert sorted(_journal_loans(journal)) == sorted([first, second])
        assert len(journal) == 2  # each booking once

    asyncio.run(scenario())
