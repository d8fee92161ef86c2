"""The live worker on real Kafka: orders, dead letters, journal parity, restarts, crashes.

Expected orders always come from `hedger replay` (the offline kernel): of the
same bookings-only log when the topology keeps file order (one partition
everywhere), else of the worker's own journal dumped with `hedger dump`.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from pathlib import Path

import pytest

from streams.kafka_io import encode_value, ensure_topics
from tests.factories import EXAMPLES, REPO
from tests.integration.worker_harness import WorkerProcess, wait_until_idle
from tests.kafka_broker import LocalKafka
from tests.support.journal import journal_replay, live_orders, replay
from tests.support.topics import dump, log_topics, publish

pytestmark = pytest.mark.kafka
CONFIG_PATH = REPO / "config" / "hedger.toml"


@pytest.fixture
def worker_factory(kafka: LocalKafka, unique: str, tmp_path: Path):
    started: list[WorkerProcess] = []

    def make(partitions: int = 4, env: dict[str, str] | None = None) -> WorkerProcess:
        worker = WorkerProcess(
            kafka.bootstrap, unique, tmp_path, partitions=partitions, extra_env=env
        )
        started.append(worker)
        return worker

    yield make
    for worker in started:
        if worker.process is not None:
            worker.kill()


def test_bookings_give_the_replay_orders_and_dead_letters(worker_factory, tmp_path: Path) -> None:
    worker = worker_factory(partitions=1)
    asyncio.run(ensure_topics(worker.bootstrap, [worker.topics["loan_bookings"]], 1))
    bookings = tmp_path / "bookings.jsonl"
    lines = (EXAMPLES / "walkthrough.jsonl").read_text().splitlines()
    bookings.write_text("\n".join(x for x in lines if '"topic": "loan-bookings"' in x) + "\n")
    expected_orders, expected_dead = replay(bookings, tmp_path)
    assert expected_orders and expected_dead

    worker.start()
    publish(worker, bookings)
    wait_until_idle(worker)
    live = [line["value"] for line in dump(worker, "orders", tmp_path / "orders.jsonl")]
    assert live == expected_orders

    dead = [line["value"] for line in dump(worker, "dead_letters", tmp_path / "dead.jsonl")]
    assert sorted(d["reason"] for d in dead) == sorted(d["reason"] for d in expected_dead)
    published = [json.loads(line) for line in bookings.read_text().splitlines()]
    for record in dead:
        original = published[record["source"]["offset"]]["value"]
        assert record["payload"].encode() == encode_value(original)  # the bytes published
    assert worker.stop() == 0  # SIGTERM: a clean stop


def test_journal_replay_equals_live_orders_on_four_partitions(
    worker_factory, tmp_path: Path
) -> None:
    worker = worker_factory(partitions=4)
    names = list(log_topics(worker).values())
    asyncio.run(ensure_topics(worker.bootstrap, names, 4))
    worker.start()
    publish(worker, EXAMPLES / "stream-2000.jsonl")
    wait_until_idle(worker)
    live, duplicates = live_orders(worker, tmp_path)
    assert duplicates == 0
    expected = journal_replay(worker, tmp_path)
    assert len(expected) > 100
    assert live == expected
    worker.stop()


def test_restart_midway_loses_nothing_and_matches_the_journal(
    worker_factory, tmp_path: Path
) -> None:
    # The rocksdb:// store: a clean stop snapshots the tables, so the restart
    # on the same data directory reads no changelog record.
    worker = worker_factory(partitions=4, env={"HEDGER_STORE": "rocksdb://"})
    asyncio.run(ensure_topics(worker.bootstrap, list(log_topics(worker).values()), 4))
    lines = (EXAMPLES / "stream-2000.jsonl").read_text().splitlines()
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("\n".join(lines[:1000]) + "\n")
    second.write_text("\n".join(lines[1000:]) + "\n")

    worker.start()
    publish(worker, first)
    wait_until_idle(worker)
    before, _ = live_orders(worker, tmp_path)
    assert worker.stop() == 0
    snapshots = [line for line in worker.log_lines() if line.get("event") == "tables.snapshot"]
    assert len(snapshots) == 1 and snapshots[0]["keys"] > 0
    worker.start()  # recovers its tables from its snapshot
    restored = r"restored (\w+) partitions .*?: (\d+) changelog records"
    restores = re.findall(restored, _last_log(worker))
    assert {stage for stage, _ in restores} == {"loans", "issuers", "sellers"}
    assert all(read == "0" for _, read in restores), restores
    publish(worker, second)
    wait_until_idle(worker)
    after, duplicates = live_orders(worker, tmp_path)
    assert before.items() <= after.items()  # nothing lost, nothing changed
    assert duplicates == 0  # a graceful stop commits everything it did
    assert after == journal_replay(worker, tmp_path)
    worker.stop()


def _last_log(worker: WorkerProcess) -> str:
    """The log of the worker's latest start."""
    return (worker.workdir / f"worker-{worker.starts}.log").read_text(errors="replace")


def test_sigkill_at_random_points_loses_no_order(worker_factory, tmp_path: Path) -> None:
    worker = worker_factory(partitions=4)
    asyncio.run(ensure_topics(worker.bootstrap, list(log_topics(worker).values()), 4))
    rng = random.Random(2026)
    worker.start()
    publish(worker, EXAMPLES / "stream-2000.jsonl")
    kills = 0
    for _ in range(3):
        time.sleep(rng.uniform(0.3, 2.5))
        worker.kill()
        kills += 1
        worker.start()
    wait_until_idle(worker, timeout=180)
    live, duplicates = live_orders(worker, tmp_path)
    expected = journal_replay(worker, tmp_path)
    assert kills == 3
    assert live == expected  # every expected order, none with other content
    print(f"crash test: {len(live)} orders, {duplicates} duplicate ids (identical content)")
    worker.stop()
