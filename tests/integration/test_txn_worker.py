"""The transactional worker (`streams.live.txn_worker`) on the real broker, in process.

Outputs are read `read_committed`, as the docs require of every consumer of
the worker's topics: what an aborted transaction wrote is never seen, and
what a committed one wrote is seen once. Crashes of the worker process are
tested through `hedger worker` (tests/integration/test_volume.py).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from benchmarks.live_bench import LATENCY_CONFIG, breaching_booking
from streams.kafka_io import committed_lag, encode_key, encode_value, ensure_topics
from streams.live.txn_loop import Send
from streams.live.txn_worker import TxnWorker
from streams.offline.replay import replay_files
from streams.settings import load_config
from tests.factories import EXAMPLES, amended, booked, repaid
from tests.kafka_broker import LocalKafka
from tests.support.txn_worker import (
    CONFIG_PATH,
    Harness,
    end_offsets,
    publish,
    read_committed,
    wait_idle,
)

pytestmark = pytest.mark.kafka


@pytest.fixture
def harness(kafka: LocalKafka, unique: str) -> Harness:
    return Harness(kafka.bootstrap, unique, 2)


def _fail_once(worker: TxnWorker, when: Callable[[TopicPartition, list[Any]], bool]) -> list[int]:
    """Make the step fail once, after it ran (state changed, nothing committed)."""
    step, failures = worker.step, []

    def failing(tp: TopicPartition, records: list[Any]) -> list[Send]:
        sends = step(tp, records)
        if not failures and when(tp, records):
            failures.append(records[-1].offset)
            raise RuntimeError("injected failure after the step")
        return sends

    worker.loop.step = failing
    return failures


def test_a_dead_lettered_loan_event_processed_again_is_the_same_dead_letter(
    harness: Harness,
) -> None:
    """A repayment before its booking is unknown_loan; when the batch holding both is
    processed again (the first run was never committed), it is that dead letter once
    more, and the booking reaches the journal once."""
    topics = harness.topics

    async def scenario() -> None:
        await harness.create()
        events = [repaid("L-1", 2, "1000000"), booked("L-1", "5000000")]
        await publish(harness.bootstrap, topics.loan_bookings, [("L-1", e) for e in events])
        worker = harness.worker()
        bookings = topics.loan_bookings  # co-partitioned: checked without the loans hop
        failures = _fail_once(worker, lambda tp, rs: tp.topic == bookings and len(rs) == 2)
        async for running in harness.run(worker):
            await wait_idle(running, harness.bootstrap)
        assert failures == [1]  # both loan entries in one batch, processed twice
        dead = await read_committed(harness.bootstrap, topics.dead_letters)
        assert [d[2]["reason"] for d in dead] == ["unknown_loan"]
        journal = await read_committed(harness.bootstrap, topics.journal)
        assert [json.loads(j[2]["value"])["event_type"] for j in journal] == ["loan.booked"]

    asyncio.run(scenario())


def test_an_aborted_transaction_leaves_no_output_and_is_processed_again(
    kafka: LocalKafka, unique: str
) -> None:
    """A send that fails inside the transaction aborts it: its orders and dead letters
    are never seen read_committed, and the partition's records are processed again:
    the orders are the offline replay's (one partition everywhere: file order)."""
    harness = Harness(kafka.bootstrap, unique, 1)
    topics = harness.topics
    lines = [json.loads(x) for x in (EXAMPLES / "walkthrough.jsonl").read_text().splitlines() if x]
    bookings = [line for line in lines if line["topic"] == "loan-bookings"]

    async def scenario() -> None:
        await harness.create()
        pairs = [(line.get("key"), line["value"]) for line in bookings]
        await publish(harness.bootstrap, topics.loan_bookings, pairs)
        worker = harness.worker()
        step, broken = worker.step, []

        def bad_send(tp: TopicPartition, records: list[Any]) -> list[Send]:
            sends = step(tp, records)
            if tp.topic == topics.journal and not broken:
                broken.append(records[-1].offset)
                sends.append(Send(topics.orders, b"x", b"{}", 99))  # no such partition
            return sends

        worker.loop.step = bad_send
        async for running in harness.run(worker):
            await wait_idle(running, harness.bootstrap)
            assert running.loop.stats.aborted == 1
        orders = [o[2] for o in await read_committed(harness.bootstrap, topics.orders, 1)]
        ids = [o["order_id"] for o in orders]
        assert len(ids) == len(set(ids))
        expected = replay_orders(bookings)
        assert sorted(ids) == sorted(o["order_id"] for o in expected)
        assert {o["order_id"]: o for o in orders} == {o["order_id"]: o for o in expected}

    asyncio.run(scenario())


def replay_outputs(lines: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """The offline replay's orders and dead letters of replay-log lines (file order)."""
    with tempfile.TemporaryDirectory() as tmp:
        log, orders, dead = Path(tmp) / "in.jsonl", Path(tmp) / "o.jsonl", Path(tmp) / "d.jsonl"
        log.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
        replay_files(load_config(CONFIG_PATH), log, orders, dead)
        read = [[json.loads(x) for x in f.read_text().splitlines() if x] for f in (orders, dead)]
        return read[0], read[1]


def replay_orders(lines: list[dict[str, Any]]) -> list[Any]:
    return replay_outputs(lines)[0]


def replay_dead(lines: list[dict[str, Any]]) -> list[Any]:
    return replay_outputs(lines)[1]


def test_aborted_input_records_are_never_processed_and_markers_are_no_holes(
    harness: Harness,
) -> None:
    """A transactional producer writes to loan-bookings: committed, aborted, committed.
    Only the committed bookings reach the journal, and the worker's committed offset
    reaches the end of the partition (control markers included)."""
    topics = harness.topics

    async def scenario() -> None:
        await harness.create()
        producer = AIOKafkaProducer(bootstrap_servers=harness.bootstrap, transactional_id="pub-1")
        await producer.start()
        try:
            for loan, commit in (("A", True), ("B", False), ("C", True)):
                await producer.begin_transaction()
                event = booked(loan, "1000000")
                await producer.send_and_wait(
                    topics.loan_bookings, encode_value(event), encode_key(loan), partition=0
                )
                if commit:
                    await producer.commit_transaction()
                else:
                    await producer.abort_transaction()
        finally:
            await producer.stop()
        async for running in harness.run(harness.worker()):
            await wait_idle(running, harness.bootstrap)
            end = (await end_offsets(harness.bootstrap, topics.loan_bookings))[0]
            assert end == 6  # three records, three markers
            committed = running.loop.stats.committed_offsets
            assert committed[TopicPartition(topics.loan_bookings, 0)] == 6
        journal = await read_committed(harness.bootstrap, topics.journal)
        loans = sorted(json.loads(j[2]["value"])["loan_id"] for j in journal)
        assert loans == ["A", "C"]

    asyncio.run(scenario())


def test_loan_events_take_one_hop_when_keyed_and_copartitioned_else_two(
    kafka: LocalKafka, unique: str
) -> None:
    """loan-bookings with the internal count (2): events keyed by loan_id go straight
    to the journal and only a mis-keyed one crosses hedger-loans; with 3 partitions
    every loan event crosses it. Either way the journal holds the same events and
    the dead letters are the offline replay's."""
    lines = [json.loads(x) for x in (EXAMPLES / "walkthrough.jsonl").read_text().splitlines() if x]
    bookings = [line for line in lines if line["topic"] == "loan-bookings"]
    pairs = [(line.get("key"), line["value"]) for line in bookings]

    def name(value: Any) -> str:  # a dead letter's event: its id, else its raw payload
        return value["event_id"] if isinstance(value, dict) else str(value)

    want_dead = sorted((name(pairs[d["line"] - 1][1]), d["reason"]) for d in replay_dead(bookings))
    # A loan with one event: mis-keyed, it takes another path than its loan's other
    # events would, and Kafka orders events only within a partition.
    loan_ids = [v["loan_id"] for _, v in pairs if isinstance(v, dict) and "loan_id" in v]
    mis_keyed = next(
        i
        for i, (_, value) in enumerate(pairs)
        if isinstance(value, dict) and loan_ids.count(value.get("loan_id")) == 1
    )
    key, value = pairs[mis_keyed]
    pairs[mis_keyed] = (f"{key}-elsewhere", value)
    home = DefaultPartitioner()(key.encode(), [0, 1], [0, 1])
    assert DefaultPartitioner()(f"{key}-elsewhere".encode(), [0, 1], [0, 1]) != home

    async def run(partitions: int) -> tuple[list[str], list[str], list[tuple[str, str]]]:
        harness = Harness(kafka.bootstrap, f"{unique}-{partitions}", 2, partitions)
        topics = harness.topics
        await harness.create()
        await publish(harness.bootstrap, topics.loan_bookings, pairs)
        async for running in harness.run(harness.worker()):
            assert running.copartitioned is (partitions == 2)
            await wait_idle(running, harness.bootstrap)
        journal = await read_committed(harness.bootstrap, topics.journal)
        hop = await read_committed(harness.bootstrap, topics.loans)
        dead = await read_committed(harness.bootstrap, topics.dead_letters)
        return (
            sorted(json.loads(j[2]["value"])["event_id"] for j in journal),
            sorted(json.loads(h[2]["value"])["event_id"] for h in hop),
            sorted((d[2].get("event_id") or d[2]["payload"], d[2]["reason"]) for d in dead),
        )

    journal2, hop2, dead2 = asyncio.run(run(2))
    journal3, hop3, dead3 = asyncio.run(run(3))
    assert hop2 == [value["event_id"]]  # only the mis-keyed event crossed hedger-loans
    assert set(journal3) < set(hop3)  # every valid loan event crossed it
    assert journal2 == journal3 and len(journal2) > 5
    assert dead2 == dead3 == want_dead


def test_a_compacted_input_with_holes_is_processed_to_its_end(
    kafka: LocalKafka, unique: str
) -> None:
    """loan-bookings compacted: the offsets compaction removed are no holes to wait
    for. The worker processes what is left and commits to the end of the log."""
    harness = Harness(kafka.bootstrap, unique, 1)
    topics = harness.topics
    compact = {
        "cleanup.policy": "compact",
        "segment.ms": "100",
        "min.cleanable.dirty.ratio": "0.001",
        "delete.retention.ms": "100",
    }
    # L-2's booking (offset 1) is compacted away by its amendment (offset 2)
    first = [
        ("L-1", booked("L-1", "1000000", event_id="c-1")),
        ("L-2", booked("L-2", "1000000", event_id="c-2")),
        ("L-2", amended("L-2", 2, notional="2000000", event_id="c-3")),
        ("L-3", booked("L-3", "1000000", event_id="c-4")),
    ]

    async def scenario() -> None:
        await ensure_topics(
            harness.kafka, [topics.loan_bookings], 1, configs={topics.loan_bookings: compact}
        )
        await harness.create()
        await publish(harness.bootstrap, topics.loan_bookings, first)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90
        n = 4
        while True:  # new records roll the segment; the cleaner runs every 15 s
            await asyncio.sleep(1.0)
            n += 1
            await publish(
                harness.bootstrap,
                topics.loan_bookings,
                [(f"L-{n}", booked(f"L-{n}", "1000000", event_id=f"c-{n + 1}"))],
            )
            offsets = [o for o, _ in await offsets_and_ids(harness.bootstrap, topics.loan_bookings)]
            if 1 not in offsets:
                break
            assert loop.time() < deadline, "the broker did not compact the topic"
        assert offsets[:3] == [0, 2, 3]
        async for running in harness.run(harness.worker()):
            await wait_idle(running, harness.bootstrap)
            end = (await end_offsets(harness.bootstrap, topics.loan_bookings, 1))[0]
            assert (
                running.loop.stats.committed_offsets[TopicPartition(topics.loan_bookings, 0)] == end
            )
        journal = await read_committed(harness.bootstrap, topics.journal, 1)
        ids = [json.loads(j[2]["value"])["event_id"] for j in journal]
        # c-2 was compacted away, c-3 is dead-lettered; every later booking is journaled
        assert ids == ["c-1", "c-4", *[f"c-{k + 1}" for k in range(5, n + 1)]]
        dead = await read_committed(harness.bootstrap, topics.dead_letters, 1)
        assert [(d[2]["event_id"], d[2]["reason"]) for d in dead] == [("c-3", "unknown_loan")]

    asyncio.run(scenario())


async def offsets_and_ids(bootstrap: str, topic: str) -> list[tuple[int, str]]:
    records = await read_committed(bootstrap, topic, 1)
    return [(offset, value["event_id"]) for _, offset, value in records]


async def group_idle(harness: Harness, timeout: float = 90.0) -> None:
    """Until the group has committed every input partition to its end."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    topics = list(harness.topology.input_topics)
    while await committed_lag(harness.kafka, harness.topology.app_id, topics) > 0:
        assert loop.time() < deadline, "the group did not commit its inputs to the end"
        await asyncio.sleep(0.3)


def test_a_halt_last_in_its_control_partition_holds_across_a_rebalance(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    """A halt for all issuers is the last record of its control partition; a second
    worker joins and takes half the partitions over (their state restored from the
    changelogs). Bookings that breach their limits afterwards order nothing, on
    either worker; after a resume the next breaching booking orders."""
    harness = Harness(kafka.bootstrap, unique, 2)
    limit = tmp_path / "limit.toml"
    limit.write_text(LATENCY_CONFIG)  # 500m limit: a 900m booking orders
    harness.config = load_config(limit)
    topics = harness.topics

    def command(name: str, n: int) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "event_id": f"k-{n}",
            "occurred_at": "2026-06-01T08:00:00Z",
            "command": name,
            "operator": "desk",
            "reason": "test",
        }

    async def control(value: dict[str, Any]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=harness.bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topics.control, encode_value(value), partition=0)
        finally:
            await producer.stop()

    bookings = [breaching_booking(i)[1:] for i in range(8)]
    after = [breaching_booking(i)[1:] for i in range(8, 10)]

    async def scenario() -> None:
        await harness.create()
        async for _ in harness.run(harness.worker()):
            await control(command("halt", 1))
            await group_idle(harness)
            async for second in harness.run(harness.worker()):
                deadline = asyncio.get_running_loop().time() + 60
                while not second.loop.producers:  # the group gave it partitions
                    assert asyncio.get_running_loop().time() < deadline
                    await asyncio.sleep(0.2)
                await publish(harness.bootstrap, topics.loan_bookings, bookings)
                await group_idle(harness)
                assert await read_committed(harness.bootstrap, topics.orders) == []
                journal = await read_committed(harness.bootstrap, topics.journal)
                # bookings on both journal partitions: both workers applied the halt
                units = {j[0] for j in journal if j[2]["topic"] == "loan-bookings"}
                assert units == {0, 1}
                await control(command("resume", 2))
                await group_idle(harness)
                await publish(harness.bootstrap, topics.loan_bookings, after)
                await group_idle(harness)
                orders = await read_committed(harness.bootstrap, topics.orders)
                ids = [o[2]["order_id"] for o in orders]
                assert len(ids) == len(set(ids))
                assert {o[2]["trigger_event_id"] for o in orders} == {"lat-8", "lat-9"}

    asyncio.run(scenario())
