"""A group of three workers on six partitions, with random SIGKILLs and restarts.

After every round each input message is journaled or dead-lettered, the
orders on the output topic (read `read_committed`) equal the replay of the
dumped journal, and no order, journal entry or dead letter comes twice: a
killed worker's open transactions are aborted and a survivor takes its
partitions over from their committed offsets and state. Each round uses its
own topics and group. Prints the figures of every round (inputs, journal,
dead letters, duplicates, missing, orders, restart-to-ready times).
HEDGER_GROUP_ROUNDS sets the number of rounds (10 by default).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from pathlib import Path

import pytest

from streams.kafka_io import committed_lag, ensure_topics, lag_by_partition
from tests.factories import EXAMPLES
from tests.integration.worker_harness import WorkerProcess
from tests.kafka_broker import LocalKafka
from tests.support.accounting import accounting
from tests.support.journal import journal_replay, live_orders
from tests.support.topics import dead_letters, log_topics, publish

ROUNDS = int(os.environ.get("HEDGER_GROUP_ROUNDS", "10"))  # fewer when debugging
PARTITIONS = 6
STREAM = EXAMPLES / "stream-2000.jsonl"


def wait_group_idle(workers: list[WorkerProcess], timeout: float = 180.0) -> None:
    """Wait until the group has committed every stage's input up to its end."""
    first = workers[0]
    topics = first.input_topics
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            assert worker.process is not None and worker.process.poll() is None, (
                f"a worker exited: {worker.log_text()[-3000:]}"
            )
        if asyncio.run(committed_lag(first.bootstrap, first.app_id, topics)) == 0:
            time.sleep(1.0)
            if asyncio.run(committed_lag(first.bootstrap, first.app_id, topics)) == 0:
                return
        time.sleep(0.5)
    lags = asyncio.run(lag_by_partition(first.bootstrap, first.app_id, topics))
    raise TimeoutError(f"group still has lag after {timeout}s: {lags}")


def one_round(kafka: LocalKafka, prefix: str, tmp: Path, rng: random.Random) -> dict[str, float]:
    tmp.mkdir()
    workers = [
        WorkerProcess(kafka.bootstrap, prefix, tmp / f"w{i}", partitions=PARTITIONS)
        for i in range(3)
    ]
    for worker in workers:
        worker.workdir.mkdir()
    asyncio.run(ensure_topics(kafka.bootstrap, list(log_topics(workers[0]).values()), PARTITIONS))
    try:
        for worker in workers:
            worker.start(wait=False)
        for worker in workers:
            worker.wait_ready(timeout=120)
        publish(workers[0], STREAM)
        restarts: list[float] = []
        kills = rng.randint(2, 3)
        for _ in range(kills):
            time.sleep(rng.uniform(0.2, 2.5))
            victim = rng.choice(workers)
            victim.kill()
            time.sleep(rng.uniform(0.0, 1.5))  # the survivors take over meanwhile
            began = time.monotonic()
            victim.start(timeout=120)
            restarts.append(time.monotonic() - began)
        wait_group_idle(workers)
        failover_began = time.monotonic()
        # Everyone ready again: the last rebalance and recovery are done.
        for worker in workers:
            worker.wait_ready(timeout=120)
        settled = time.monotonic() - failover_began
        live, duplicates = live_orders(workers[0], tmp)
        expected = journal_replay(workers[0], tmp)
        figures = accounting(workers[0], tmp)
        issuer_dead = [d for d in dead_letters(workers[0], tmp) if d.get("stage") == "issuers"]
        missing_orders = sorted(set(expected) - set(live))
        extra_orders = sorted(set(live) - set(expected))
        result = {
            **figures,
            "kills": kills,
            "orders": len(live),
            "order_duplicates": duplicates,
            "issuer_dead_letters": len(issuer_dead),
            "missing_orders": len(missing_orders),
            "extra_orders": len(extra_orders),
            "restart_mean_s": round(statistics.mean(restarts), 1),
            "restart_max_s": round(max(restarts), 1),
            "settle_s": round(settled, 1),
        }
        print(f"{prefix}: {result}")
        assert figures["inputs"] == sum(1 for _ in STREAM.open())
        assert figures["missing"] == 0, result
        assert not missing_orders and not extra_orders, result
        assert live == expected  # same content too
        assert duplicates == 0, result
        assert figures["journal_duplicates"] == figures["dead_letter_duplicates"] == 0, result
        return result
    finally:
        for worker in workers:
            if worker.process is not None:
                worker.kill()


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_three_workers_random_sigkills_ten_rounds_lose_nothing(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    rng = random.Random(3_2000)
    results = [
        one_round(kafka, f"{unique}-r{n}", tmp_path / f"round{n}", rng) for n in range(ROUNDS)
    ]
    total = {
        key: sum(r[key] for r in results)
        for key in (
            "inputs",
            "orders",
            "dead_letters",
            "missing",
            "order_duplicates",
            "journal_duplicates",
            "dead_letter_duplicates",
            "kills",
        )
    }
    restarts = [r["restart_max_s"] for r in results]
    print(f"3 workers x {ROUNDS} rounds: {total}, worst restart to ready {max(restarts)}s")
    assert total["missing"] == 0
    assert total["order_duplicates"] == total["dead_letter_duplicates"] == 0
