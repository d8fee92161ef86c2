"""Fixtures for tests on the real local Kafka broker (scripts/kafka-local).

One broker per test session, on free ports and a temporary directory. Tests
must use unique topic names (see `unique`) so they never see each other's
messages. In CI (CI=true) a broker that cannot start fails the run: the
real-Kafka tests are never skipped there.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.kafka_io import ensure_topics
from tests.integration.worker_harness import WorkerProcess
from tests.kafka_broker import LocalKafka

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def kafka() -> Iterator[LocalKafka]:
    if shutil.which("java") is None and os.environ.get("CI") != "true":
        pytest.skip("Java is not installed: the local Kafka broker cannot start")
    broker = LocalKafka().start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def secure_kafka() -> Iterator[LocalKafka]:
    """A broker of its own with a SASL_SSL (SCRAM-SHA-512) listener beside PLAINTEXT."""
    if shutil.which("java") is None and os.environ.get("CI") != "true":
        pytest.skip("Java is not installed: the local Kafka broker cannot start")
    broker = LocalKafka(sasl_ssl=True).start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def unique() -> str:
    """A prefix that makes topic and group names unique to one test."""
    return f"t{next(_counter)}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def worker(kafka: LocalKafka, unique: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    """One worker on one partition; its bookings topic exists before it starts."""
    process = WorkerProcess(kafka.bootstrap, unique, tmp_path, partitions=1)
    asyncio.run(ensure_topics(kafka.bootstrap, [process.topics["loan_bookings"]], 1))
    yield process
    if process.process is not None:
        process.kill()
