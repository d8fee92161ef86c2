"""Reading and writing a test worker's topics: orders, dead letters, raw messages, logs.

May import aiokafka, streams.kafka_io and the worker harness.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from streams.kafka_io import dump_topic, publish_log
from tests.integration.worker_harness import WorkerProcess, read_jsonl


def orders(worker: WorkerProcess, tmp: Path) -> list[dict[str, Any]]:
    out = tmp / f"orders-{time.monotonic_ns()}.jsonl"
    asyncio.run(dump_topic(worker.topics["orders"], worker.bootstrap, out))
    return [line["value"] for line in read_jsonl(out)]


def dead_letters(worker: WorkerProcess, tmp: Path) -> list[dict[str, Any]]:
    out = tmp / f"dead-{time.monotonic_ns()}.jsonl"
    asyncio.run(dump_topic(worker.topics["dead_letters"], worker.bootstrap, out))
    return [line["value"] for line in read_jsonl(out)]


async def send_raw(
    bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes | None]]
) -> None:
    """Publish (key, value) pairs as they are: None is no key / a tombstone."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=4_000_000)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def log_topics(worker: WorkerProcess) -> dict[str, str]:
    return {
        "loan-bookings": worker.topics["loan_bookings"],
        "cds-executions": worker.topics["cds_executions"],
    }


def publish(worker: WorkerProcess, log: Path) -> None:
    asyncio.run(publish_log(log, worker.bootstrap, topic_map=log_topics(worker)))


def dump(
    worker: WorkerProcess, field: str, out: Path, journal: bool = False
) -> list[dict[str, Any]]:
    asyncio.run(dump_topic(worker.topics[field], worker.bootstrap, out, journal=journal))
    return read_jsonl(out)
