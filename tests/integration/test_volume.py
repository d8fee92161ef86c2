"""Volume tests on the real broker: crashes, a broker bounce and fuzzed input at volume.

`hedger worker` processes with Kafka transactions: read `read_committed`,
its orders and dead letters are what the offline engine gives for the same
input, once each, whatever the crashes. Each test prints its figures
(inputs, orders, dead letters, missing, duplicates, restart and failover
times): the figures to quote for the worker's behaviour under faults.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

from hedger.engine import HedgingEngine
from hedger.outcomes import Status
from streams.kafka_io import ensure_topics
from streams.settings import load_config
from tests.factories import EXAMPLES, REPO
from tests.integration.commit_crash_worker import CRASH_EXIT
from tests.integration.worker_harness import WorkerProcess, wait_until_idle
from tests.kafka_broker import LocalKafka
from tests.support.accounting import accounting
from tests.support.journal import journal_replay, live_orders, replay
from tests.support.readiness import ReadyWatch
from tests.support.topics import dead_letters, dump, log_topics, publish, send_raw

CONFIG = REPO / "config" / "hedger.toml"
STREAM = EXAMPLES / "stream-2000.jsonl"
LOG_TOPICS = ("loan-bookings", "cds-executions")


def raw_input_log(tmp: Path) -> tuple[Path, list[list[str]]]:
    """stream-2000's bookings, then its executions (each in file order), as one log.

    On one partition per topic the worker then takes the records in the log's
    order: the bookings are all processed before the executions are published.
    """
    lines = [x for x in STREAM.read_text().splitlines() if x.strip()]
    phases = [[x for x in lines if json.loads(x)["topic"] == topic] for topic in LOG_TOPICS]
    log = tmp / "raw-input.jsonl"
    log.write_text("\n".join(phases[0] + phases[1]) + "\n")
    return log, phases


def publish_lines(worker: WorkerProcess, lines: list[str], path: Path) -> None:
    path.write_text("\n".join(lines) + "\n")
    publish(worker, path)


def chunks(lines: list[str], n: int) -> list[list[str]]:
    size = -(-len(lines) // n)
    return [lines[k * size : (k + 1) * size] for k in range(n)]


def against_raw_replay(worker: WorkerProcess, log: Path, tmp: Path) -> dict[str, Any]:
    """The worker's orders and dead letters (read_committed) against the replay of `log`.

    One partition per topic: the orders topic holds the orders in the
    replay's order, and an input's offset is its rank among the log's lines
    of its topic.
    """
    expected_orders, expected_dead = replay(log, tmp)
    orders = [line["value"] for line in dump(worker, "orders", tmp / "raw.orders.jsonl")]
    dead = [line["value"] for line in dump(worker, "dead_letters", tmp / "raw.dead.jsonl")]
    names = log_topics(worker)
    where: list[tuple[str, int]] = []  # (topic, offset) of each line of the log
    counts = dict.fromkeys(names, 0)
    for text in log.read_text().splitlines():
        topic = json.loads(text)["topic"]
        where.append((names[topic], counts[topic]))
        counts[topic] += 1
    want_dead = [(*where[d["line"] - 1], d["reason"]) for d in expected_dead]
    live_dead = [(d["source"]["topic"], d["source"]["offset"], d["reason"]) for d in dead]
    keys = [(o["action"], o["order_id"]) for o in orders]
    return {
        "inputs": len(where),
        "orders": len(orders),
        "dead_letters": len(dead),
        "missing": len(set(map(json.dumps, expected_orders)) - set(map(json.dumps, orders)))
        + len(set(want_dead) - set(live_dead)),
        "order_duplicates": len(keys) - len(set(keys)),
        "dead_letter_duplicates": len(live_dead) - len(set(live_dead)),
        "equal": orders == expected_orders and sorted(live_dead) == sorted(want_dead),
        "expected_orders": len(expected_orders),
        "expected_dead_letters": len(expected_dead),
    }


@pytest.mark.kafka
@pytest.mark.slow
def test_twenty_sigkills_on_one_partition_equal_the_offline_replay(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    """One partition everywhere; the input published in 20 chunks, with a SIGKILL after
    each: every other one while the worker starts and restores its state, the others
    while it processes the chunk just published. Read read_committed, the orders and
    dead letters equal the offline replay of the published log record for record, and
    no order and no dead letter comes twice."""
    worker = WorkerProcess(kafka.bootstrap, unique, tmp_path, partitions=1)
    asyncio.run(ensure_topics(kafka.bootstrap, list(log_topics(worker).values()), 1))
    log, phases = raw_input_log(tmp_path)
    rng = random.Random(20)
    kills, restarts = 0, []
    for phase, n in zip(phases, (15, 5), strict=True):
        for chunk in chunks(phase, n):
            path = tmp_path / f"chunk-{kills}.jsonl"
            if kills % 2:  # killed before /ready: in start-up or restore
                publish_lines(worker, chunk, path)
                worker.start(wait=False)
                time.sleep(rng.uniform(0.5, 4.0))
            else:  # killed while it processes the chunk
                began = time.monotonic()
                worker.start(timeout=120)
                restarts.append(time.monotonic() - began)
                publish_lines(worker, chunk, path)
                time.sleep(rng.uniform(0.0, 0.4))
            worker.kill()
            kills += 1
        # every booking processed before the first execution is published
        worker.start(timeout=120)
        wait_until_idle(worker, timeout=300)
        worker.stop()
    worker.start(timeout=120)
    wait_until_idle(worker, timeout=300)
    figures = against_raw_replay(worker, log, tmp_path)
    print(
        f"one partition, {kills} SIGKILLs: {figures}, restart to ready mean "
        f"{sum(restarts) / len(restarts):.1f}s max {max(restarts):.1f}s"
    )
    assert kills == 20
    assert figures["inputs"] == sum(1 for _ in STREAM.open())
    assert figures["expected_orders"] > 100 and figures["expected_dead_letters"] > 50
    assert figures["order_duplicates"] == 0 and figures["dead_letter_duplicates"] == 0
    assert figures["missing"] == 0
    assert figures["equal"]
    worker.stop()


@pytest.mark.kafka
@pytest.mark.slow
def test_kills_inside_transaction_commits_lose_nothing_and_repeat_nothing(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    """One partition everywhere; the input published in 6 chunks. With each of the
    first 5 the worker ends itself inside a transaction's commit (its records and
    offsets sent, the commit not: `tests.integration.commit_crash_worker`). The
    orders and dead letters equal the offline replay of the published log, once each."""
    worker = WorkerProcess(
        kafka.bootstrap,
        unique,
        tmp_path,
        partitions=1,
        module="tests.integration.commit_crash_worker",
    )
    asyncio.run(ensure_topics(kafka.bootstrap, list(log_topics(worker).values()), 1))
    lines = [x for x in STREAM.read_text().splitlines() if x.strip()]
    bookings = [x for x in lines if json.loads(x)["topic"] == "loan-bookings"]
    log = tmp_path / "bookings.jsonl"
    log.write_text("\n".join(bookings) + "\n")
    exits = []
    for run, chunk in enumerate(chunks(bookings, 6)):
        publish_lines(worker, chunk, tmp_path / f"chunk-{run}.jsonl")
        if run == 5:
            break
        worker.env["TXN_CRASH_IN_COMMIT"] = "1"  # its first commit: the new chunk's
        worker.start(wait=False)
        assert worker.process is not None
        exits.append(worker.process.wait(120))
        worker.process = None
    worker.env.pop("TXN_CRASH_IN_COMMIT")
    worker.start(timeout=120)
    wait_until_idle(worker, timeout=300)
    figures = against_raw_replay(worker, log, tmp_path)
    crashes = worker.log_text().count("crash in the commit of")
    print(f"one partition, {crashes} kills inside a commit: {figures}")
    assert exits == [CRASH_EXIT] * 5 and crashes == 5
    assert figures["inputs"] == len(bookings)
    assert figures["order_duplicates"] == 0 and figures["dead_letter_duplicates"] == 0
    assert figures["missing"] == 0
    assert figures["equal"]
    worker.stop()


@pytest.mark.kafka
@pytest.mark.slow
def test_twenty_sigkills_on_four_partitions_equal_the_journal_replay(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    """Four partitions; 20 SIGKILLs, every other one before /ready. The orders equal the
    offline replay of the journal; every input is journaled or dead-lettered, and no
    order, journal entry or dead letter comes twice."""
    worker = WorkerProcess(kafka.bootstrap, unique, tmp_path, partitions=4)
    asyncio.run(ensure_topics(kafka.bootstrap, list(log_topics(worker).values()), 4))
    rng = random.Random(9)
    worker.start()
    publish(worker, STREAM)
    restarts = []
    for kill in range(20):
        if kill % 2:  # every other kill comes before /ready
            time.sleep(rng.uniform(0.5, 4.0))
        else:
            time.sleep(rng.uniform(0.0, 1.5))
        worker.kill()
        began = time.monotonic()
        worker.start(wait=kill % 2 == 0)
        if kill % 2 == 0:
            restarts.append(time.monotonic() - began)
    worker.wait_ready()
    wait_until_idle(worker, timeout=300)
    live, duplicates = live_orders(worker, tmp_path)
    expected = journal_replay(worker, tmp_path)
    figures = accounting(worker, tmp_path)
    print(
        f"four partitions, 20 SIGKILLs: {figures}, orders {len(live)}, duplicate order ids "
        f"{duplicates}, restart to ready mean {sum(restarts) / len(restarts):.1f}s "
        f"max {max(restarts):.1f}s"
    )
    assert live == expected  # no order missing, none with other content
    assert duplicates == 0
    assert figures["missing"] == 0
    assert figures["journal_duplicates"] == figures["dead_letter_duplicates"] == 0
    assert figures["inputs"] == sum(1 for _ in STREAM.open())
    worker.stop()


@pytest.mark.kafka
@pytest.mark.slow
def test_broker_bounce_mid_stream_the_worker_carries_on(unique: str, tmp_path: Path) -> None:
    broker = LocalKafka(dir=tmp_path / "broker").start()
    try:
        worker = WorkerProcess(broker.bootstrap, unique, tmp_path, partitions=4)
        asyncio.run(ensure_topics(broker.bootstrap, list(log_topics(worker).values()), 4))
        worker.start()
        lines = STREAM.read_text().splitlines()
        first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
        first.write_text("\n".join(lines[:1200]) + "\n")
        second.write_text("\n".join(lines[1200:]) + "\n")
        publish(worker, first)
        time.sleep(0.5)
        log_before = len(worker.log_text().splitlines())
        broker.stop()
        stopped = time.monotonic()
        not_ready_after = None
        while time.monotonic() - stopped < 20:
            if not_ready_after is None and worker.http_status("/ready") == 503:
                not_ready_after = time.monotonic() - stopped
                assert "hedger_ready 0.0" in worker.scrape()
            time.sleep(0.5)
        # Lines about the outage: the events taken before the stop may still
        # be logging their orders and dead letters meanwhile.
        per_event = ('"order.emitted"', '"event.dead_lettered"')
        outage_lines = sum(
            1
            for line in worker.log_text().splitlines()[log_before:]
            if not any(word in line for word in per_event)
        )
        broker.start()
        started = time.monotonic()
        worker.wait_ready(timeout=180)
        back = time.monotonic() - started
        publish(worker, second)
        wait_until_idle(worker, timeout=300)
        live, duplicates = live_orders(worker, tmp_path)
        expected = journal_replay(worker, tmp_path)
        figures = accounting(worker, tmp_path)
        text = worker.log_text()
        print(
            f"broker bounce: {figures}, orders {len(live)}, duplicate ids {duplicates}, "
            f"not ready {not_ready_after}s after the stop, ready {back:.1f}s after the start, "
            f"{outage_lines} log lines during the 20 s outage"
        )
        assert not_ready_after is not None and not_ready_after < 15
        assert outage_lines < 100, text[-5000:]
        assert "kafka.connection_lost" in text and "kafka.connection_restored" in text
        assert worker.process is not None and worker.process.poll() is None
        assert live == expected
        assert duplicates == 0
        assert figures["missing"] == 0
        assert figures["journal_duplicates"] == figures["dead_letter_duplicates"] == 0
        worker.stop()
    finally:
        broker.stop()


def bad_payloads(rng: random.Random, n: int) -> list[bytes | None]:
    """Generated bad payloads: broken JSON, wrong shapes and fields, bad bytes."""
    good = json.loads(STREAM.read_text().splitlines()[0])["value"]
    required = [name for name in good if name != "desk"]  # desk is optional
    makers = [
        lambda: bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40))),
        lambda: b"\xff" + json.dumps(good).encode(),
        lambda: json.dumps(good).encode()[: rng.randint(0, 100)],
        lambda: json.dumps([good]).encode(),
        lambda: json.dumps(
            {**good, "notional": rng.choice(["-5", "x", "1e999", 3, None])}
        ).encode(),
        lambda: json.dumps({**good, "currency": rng.choice(["XXX", "", "usd", 1])}).encode(),
        lambda: json.dumps({**good, "event_type": rng.choice(["loan.eaten", "", None])}).encode(),
        lambda: json.dumps(
            {**good, "maturity_date": rng.choice(["2030-02-30", "soon", ""])}
        ).encode(),
        lambda: json.dumps(without(good, rng.choice(required))).encode(),
        lambda: b"[" * rng.randint(1_000, 50_000),
        lambda: b'{"n": ' + b"7" * rng.randint(4_400, 9_000) + b"}",
        lambda: b"",
        lambda: None,
        lambda: b"NaN",
        lambda: b'{"a": 1, "a": 2}',
    ]
    return [rng.choice(makers)() for _ in range(n)]


def without(value: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k != name}


def test_fuzz_100k_bad_payloads_through_the_offline_engine() -> None:
    config = load_config(CONFIG)
    engine = HedgingEngine(config)
    rng = random.Random(100_000)
    reasons: dict[str, int] = {}
    for payload in bad_payloads(rng, 100_000):
        outcome = engine.process("loan-bookings", payload if payload is not None else b"")
        assert outcome.status is Status.DEAD_LETTER and outcome.reason is not None
        reasons[outcome.reason.value] = reasons.get(outcome.reason.value, 0) + 1
    assert not engine.books and not engine.loans and engine.last_applied is None
    print(f"offline fuzz: 100000 payloads, dead letters by reason {reasons}")
    assert sum(reasons.values()) == 100_000


@pytest.mark.kafka
@pytest.mark.slow
def test_fuzz_10k_bad_payloads_through_the_live_worker(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    worker = WorkerProcess(kafka.bootstrap, unique, tmp_path, partitions=2)
    asyncio.run(ensure_topics(kafka.bootstrap, list(log_topics(worker).values()), 2))
    worker.start()
    watch = ReadyWatch(worker)
    rng = random.Random(10_000)
    payloads = bad_payloads(rng, 9_990) + [b"y" * 1_000_000] * 10  # 1 MB values
    # null keys, except on tombstones (a message needs a key or a value)
    keys = [
        None if rng.random() < 0.3 and p is not None else f"k{n}".encode()
        for n, p in enumerate(payloads)
    ]
    asyncio.run(
        send_raw(
            worker.bootstrap, worker.topics["loan_bookings"], list(zip(keys, payloads, strict=True))
        )
    )
    wait_until_idle(worker, timeout=300)
    watch.stop()
    dead = dead_letters(worker, tmp_path)
    sources = {(d["source"]["partition"], d["source"]["offset"]) for d in dead}
    reasons: dict[str, int] = {}
    for d in dead:
        reasons[d["reason"]] = reasons.get(d["reason"], 0) + 1
    print(
        f"live fuzz: {len(payloads)} payloads, {len(dead)} dead letters {reasons}, "
        f"/ready polled {watch.polls} times, not ready {watch.not_ready}"
    )
    assert len(dead) == len(payloads) == len(sources)
    assert watch.not_ready == 0
    assert worker.process is not None and worker.process.poll() is None
    worker.stop()
