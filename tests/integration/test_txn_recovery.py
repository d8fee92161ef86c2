"""A stopped transactional worker's successor restores the same state, on the real broker.

A worker on the `rocksdb://` store drains the bookings of
tests/data/examples/stream-2000.jsonl (2 partitions) and, once its periodic
snapshot ran, stops without a snapshot of its own. A new worker on the same
data directory reads only the changelog written after the snapshot
(nothing), one on an empty data directory and one on `memory://`
read the whole changelog; each holds the loans, and shows for every issuer
the measures (its gauges at start), that a replay of the committed journal
through the core's per-event step gives.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from hedger.engine import HedgingEngine
from hedger.issuer import RiskView
from streams.live.envelopes import decode_entry
from streams.live.txn_worker import MEMORY, ROCKSDB, TxnWorker
from streams.observer import Tally
from tests.factories import EXAMPLES
from tests.kafka_broker import LocalKafka
from tests.support.txn_worker import Harness, publish, wait_idle

pytestmark = pytest.mark.kafka


class Views(Tally):
    """The last measures reported per issuer: what its gauges show."""

    def __init__(self) -> None:
        super().__init__()
        self.views: dict[str, RiskView] = {}

    def on_view(self, view: RiskView, halted: bool, open_orders: int, occurred_at: str) -> None:
        self.views[view.issuer_id] = view


def _measures(view: RiskView) -> tuple[Any, ...]:
    return (view.as_of, view.exposure, view.maturity_years, view.coverage, view.residual)


async def _journal(bootstrap: str, topic: str, partitions: int) -> list[tuple[int, bytes]]:
    """The committed journal entries, partition by partition, in offset order."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        out: list[tuple[int, bytes]] = []
        for partition in range(partitions):
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            while await consumer.position(tp) < end:
                for record in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                    out.append((partition, record.value))
        return out
    finally:
        await consumer.stop()


def test_a_restarted_worker_holds_the_journal_replays_state_from_disk_or_changelog(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    harness = Harness(kafka.bootstrap, unique, 2)
    topics = harness.topics
    lines = [json.loads(x) for x in (EXAMPLES / "stream-2000.jsonl").read_text().splitlines() if x]
    bookings = [line for line in lines if line["topic"] == "loan-bookings"]
    assert len(bookings) > 1_000

    def worker(store: str, data_dir: Path | None) -> TxnWorker:
        return TxnWorker(
            harness.kafka,
            harness.config,
            harness.topology,
            Views(),
            store=store,
            data_dir=data_dir,
            checkpoint_every=0.5,
        )

    async def start(running: TxnWorker) -> None:
        await running.loop.start()
        await asyncio.wait_for(running.loop.assigned_event.wait(), 120)

    async def scenario() -> dict[str, Any]:
        await harness.create()
        pairs = [(line.get("key"), line["value"]) for line in bookings]
        await publish(harness.bootstrap, topics.loan_bookings, pairs)
        first = worker(ROCKSDB, tmp_path / "disk")
        await first.create_topics()
        await start(first)
        await wait_idle(first, harness.bootstrap, 180)
        before = dict(first.issuers.engine.loans)
        await asyncio.sleep(2.0)  # a periodic snapshot runs after the last commit
        await first.loop.stop()  # as a crash: no snapshot at the stop
        await first.close()
        seen: dict[str, Any] = {"before": before}
        for name, store, data_dir in (
            ("same_disk", ROCKSDB, tmp_path / "disk"),
            ("empty_disk", ROCKSDB, tmp_path / "new"),
            ("memory", MEMORY, None),
        ):
            again = worker(store, data_dir)
            await start(again)
            assert isinstance(again.observer, Views)
            read = {n: s.restored_records for n, s in again.stores.items()}
            seen[name] = (dict(again.issuers.engine.loans), dict(again.observer.views), read)
            await again.stop()
        seen["journal"] = await _journal(harness.bootstrap, topics.journal, 2)
        return seen

    seen = asyncio.run(scenario())
    replay = HedgingEngine(harness.config)
    for partition, payload in seen["journal"]:
        entry = decode_entry(payload)
        replay.process(entry.topic, entry.value, scope=partition)
    assert len(replay.loans) > 500
    expected = {view.issuer_id: _measures(view) for view in replay.views()}
    assert seen["before"] == replay.loans
    for name in ("same_disk", "empty_disk", "memory"):
        loans, views, read = seen[name]
        assert loans == replay.loans, name
        assert {issuer: _measures(view) for issuer, view in views.items()} == expected, name
        if name == "same_disk":
            assert read == {"loans": 0, "issuers": 0, "sellers": 0}  # the snapshot held it all
        else:  # one loan row per loan, in each of two tables, at least
            assert read["loans"] >= len(replay.loans) and read["issuers"] >= len(replay.loans)
