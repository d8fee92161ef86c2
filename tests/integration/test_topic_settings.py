"""Replication factor and retention are settings, applied to the topics the worker creates.

On the session's single broker: the worker creates every topic of its
topology — inputs (cds-quotes with `[pricing]`), internal topics and
compacted changelogs with exactly `HEDGER_PARTITIONS` partitions, orders,
dead letters and control, the journal, orders and control with
`HEDGER_RETENTION_*_MS`; `--replication-factor 2` (more replicas than
brokers) stops the worker with one line naming the refusal, which shows the
setting reaches topic creation.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.kafka_io import ensure_topics
from tests.factories import REPO
from tests.integration.worker_harness import WorkerProcess
from tests.kafka_broker import LocalKafka
from tests.support.cli import hedger

pytestmark = pytest.mark.kafka


async def retention_ms(bootstrap: str, topics: list[str]) -> dict[str, str]:
    return await topic_config(bootstrap, topics, "retention.ms")


async def topic_config(bootstrap: str, topics: list[str], key: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in topics]
        found: dict[str, str] = {}
        for response in await admin.describe_configs(resources):
            for _code, _msg, _type, name, entries in response.resources:
                for entry in entries:
                    if entry[0] == key:
                        found[name] = entry[1]
        return found
    finally:
        await admin.close()


async def partitions_of(bootstrap: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = await admin.list_topics()
        return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(names)}
    finally:
        await admin.close()


def test_the_worker_creates_every_topic_of_its_topology(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    worker = WorkerProcess(
        kafka.bootstrap, unique, tmp_path, partitions=3, config=REPO / "config" / "desk-v21.toml"
    )
    asyncio.run(ensure_topics(kafka.bootstrap, [worker.topics["loan_bookings"]], 2))
    worker.start()
    assert worker.stop() == 0
    found = {
        name: count
        for name, count in asyncio.run(partitions_of(kafka.bootstrap)).items()
        if name.startswith(unique)
    }
    changelogs = [
        f"{worker.app_id}-{table}-state-changelog" for table in ("loan", "issuer", "seller")
    ]
    internal = [worker.topics[t] for t in ("loans", "journal", "seller_parts")]
    created = ["cds_executions", "desk_clock", "cds_quotes", "control", "orders", "dead_letters"]
    assert found == {
        worker.topics["loan_bookings"]: 2,  # existed: left as it is
        **{worker.topics[t]: 3 for t in created},
        **{name: 3 for name in (*internal, *changelogs)},
    }
    policies = asyncio.run(
        topic_config(kafka.bootstrap, [*changelogs, *internal], "cleanup.policy")
    )
    assert {name: policies[name] for name in changelogs} == dict.fromkeys(changelogs, "compact")
    assert {name: policies[name] for name in internal} == dict.fromkeys(internal, "delete")


def test_the_worker_creates_topics_with_the_retention_settings(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    worker = WorkerProcess(
        kafka.bootstrap,
        unique,
        tmp_path,
        partitions=1,
        extra_env={
            "HEDGER_RETENTION_ORDERS_MS": "3600000",
            "HEDGER_RETENTION_CONTROL_MS": "-1",
            "HEDGER_RETENTION_JOURNAL_MS": "-1",
            "HEDGER_REPLICATION_FACTOR": "1",
        },
    )
    asyncio.run(ensure_topics(kafka.bootstrap, [worker.topics["loan_bookings"]], 1))
    worker.start()
    try:
        names = [worker.topics[t] for t in ("orders", "control", "journal", "dead_letters")]
        found = asyncio.run(retention_ms(kafka.bootstrap, names))
    finally:
        assert worker.stop() == 0
    assert found[worker.topics["orders"]] == "3600000"
    assert found[worker.topics["control"]] == "-1"
    assert found[worker.topics["journal"]] == "-1"
    assert found[worker.topics["dead_letters"]] == "604800000"  # not a setting: broker default


def test_more_replicas_than_brokers_stops_the_worker_in_one_line(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    proc = hedger(
        "worker",
        "--config",
        str(REPO / "config" / "hedger.toml"),
        "--bootstrap",
        kafka.bootstrap,
        "--replication-factor",
        "2",
        "--log-format",
        "json",
        env={"HEDGER_TOPIC_ORDERS": f"{unique}-orders"},
        timeout=120,
        inherit_settings=False,
    )
    assert proc.returncode == 1
    lines = [x for x in proc.stderr.splitlines() if x.strip() and not x.startswith("{")]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: cannot create topics on ")
    assert "replication factor" in lines[0].lower(), lines[0]
    assert "Traceback" not in proc.stderr
