"""Volume tests on the real broker: crashes, a broker bounce and fuzzed input at volume.

Each test prints its figures (inputs, orders, dead letters, missing,
duplicates, restart and failover times): the figures to quote for the worker's
behaviour under faults.
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
from tests.integration.worker_harness import WorkerProcess, wait_until_idle
from tests.kafka_broker import LocalKafka
from tests.support.accounting import accounting
from tests.support.journal import journal_replay, live_orders
from tests.support.readiness import ReadyWatch
from tests.support.topics import dead_letters, log_topics, publish, send_raw

CONFIG = REPO / "config" / "hedger.toml"
STREAM = EXAMPLES / "stream-2000.jsonl"


@pytest.mark.kafka
@pytest.mark.slow
def test_twenty_sigkills_before_and_after_ready_lose_nothing(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
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
        f"20 SIGKILLs: {figures}, orders {len(live)}, duplicate order ids {duplicates} "
        f"(identical), restart to ready mean {sum(restarts) / len(restarts):.1f}s "
        f"max {max(restarts):.1f}s"
    )
    assert live == expected  # no order missing, none with other content
    assert figures["missing"] == 0
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
        assert figures["missing"] == 0
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
