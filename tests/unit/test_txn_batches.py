"""How the transactional loop hands a step's records to its producer, without Kafka.

A transaction's sends go as one batch per (topic, partition) — a new batch
when one is full — each partition's records in the order the step gave
them, and a keyed record without a partition lands where the producer's
default partitioner (Kafka's murmur2) would send it. The expected
partitions are Kafka's own: the Java client's murmur2 of b"a", b"ab",
b"abc", b"123456789" modulo 1,000 partitions is 524, 434, 107, 566 (the
compatibility vectors of kafka-python and aiokafka); 1,000 is a multiple of
4, so modulo 4 partitions they are 0, 2, 3, 2.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.producer.message_accumulator import BatchBuilder

from streams.live.txn_loop import Send, TxnLoop, home


class FakeBatch:
    """A batch that holds `capacity` records."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[tuple[bytes | None, bytes | None]] = []
        self.closed = False

    def append(self, *, key: bytes | None, value: bytes | None, timestamp: None) -> object:
        assert not self.closed
        if len(self.records) >= self.capacity:
            return None
        self.records.append((key, value))
        return object()

    def close(self) -> None:
        self.closed = True


class FakeProducer:
    """The producer calls the loop makes: batches, partitions, send_batch."""

    def __init__(self, partitions: int = 4, capacity: int = 100) -> None:
        self.n, self.capacity = partitions, capacity
        self.sent: list[tuple[str, int, Any]] = []

    def create_batch(self) -> Any:
        return FakeBatch(self.capacity)

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.n))

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[None]:
        assert batch.closed
        self.sent.append((topic, partition, batch))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def _nothing(tps: object) -> None:
    return None


def _send(producer: Any, sends: list[Send]) -> list[tuple[str, int, list[Any]]]:
    async def run() -> list[tuple[str, int, list[Any]]]:
        loop = TxnLoop(
            {},
            "batches",
            [],
            lambda topic, partition: f"{topic}-{partition}",
            lambda tp, records: [],
            restore=_nothing,
            release=_nothing,
        )
        futures = await loop.send(producer, sends)
        assert len(futures) == len(producer.sent)
        return [(topic, p, getattr(batch, "records", None)) for topic, p, batch in producer.sent]

    return asyncio.run(run())


def test_keyed_records_land_on_the_partition_of_kafkas_murmur2() -> None:
    sends = [Send("orders", key, b"v") for key in (b"a", b"ab", b"abc", b"123456789")]
    sent = _send(FakeProducer(partitions=4), sends)
    assert sent == [
        ("orders", 0, [(b"a", b"v")]),
        ("orders", 2, [(b"ab", b"v"), (b"123456789", b"v")]),
        ("orders", 3, [(b"abc", b"v")]),
    ]
    assert [home(key, 1000) for key in (b"a", b"ab", b"abc", b"123456789")] == [524, 434, 107, 566]


def test_each_partition_keeps_the_steps_order_and_an_explicit_partition_is_kept() -> None:
    sends = [
        Send("journal", b"u1", b"1", 3),
        Send("changelog", b"k1", b"2", 1),
        Send("journal", b"u2", b"3", 3),
        Send("changelog", b"k1", None, 1),  # a tombstone after the write
        Send("journal", b"u3", b"5", 0),
    ]
    assert _send(FakeProducer(), sends) == [
        ("journal", 3, [(b"u1", b"1"), (b"u2", b"3")]),
        ("changelog", 1, [(b"k1", b"2"), (b"k1", None)]),
        ("journal", 0, [(b"u3", b"5")]),
    ]


def test_a_full_batch_starts_a_new_one_and_first_batches_go_first() -> None:
    sends = [Send("t", None, str(i).encode(), 0) for i in range(5)]
    sends.append(Send("t", None, b"x", 1))
    sent = _send(FakeProducer(capacity=2), sends)
    assert sent == [
        ("t", 0, [(None, b"0"), (None, b"1")]),
        ("t", 1, [(None, b"x")]),  # before partition 0's second batch
        ("t", 0, [(None, b"2"), (None, b"3")]),
        ("t", 0, [(None, b"4")]),
    ]


def test_aiokafkas_batch_builder_refuses_a_record_past_its_size_and_takes_any_first() -> None:
    class Producer(FakeProducer):
        def create_batch(self) -> Any:
            return BatchBuilder(1024, 0, is_transactional=True)

    producer = Producer()
    # A record batch has a 61-byte header; a 400-byte value with a 2-byte key
    # takes 400 + 2 + 8 bytes of framing (attributes, varint lengths and
    # deltas): two fit in 1,024 bytes (61 + 2 x 410 = 881), three do not.
    sends = [Send("t", b"k%d" % i, b"v" * 400, 0) for i in range(5)]
    sends.append(Send("t", b"big", b"v" * 5000, 1))  # larger than a batch: alone
    _send(producer, sends)
    counts = [(p, batch.record_count()) for _, p, batch in producer.sent]
    assert counts == [(0, 2), (1, 1), (0, 2), (0, 1)]
