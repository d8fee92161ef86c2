"""Contract v2 live: groups, the desk clock, expiry and sellers on the real broker.

With one partition end to end, and each run of one topic published only
once the events before it are processed (Kafka orders nothing across two
topics), the live orders and cancels equal the contract's records for the
raw log (SPEC example desk-v2, under desk-v2.toml).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from itertools import groupby
from pathlib import Path

import pytest

from streams.kafka_io import dump_topic, ensure_topics, publish_log
from streams.offline.replay import replay_files
from streams.settings import load_config
from tests.factories import COMPARE_ORDERS, EXAMPLES, REPO
from tests.integration.worker_harness import WorkerProcess, read_jsonl, wait_until_idle
from tests.kafka_broker import LocalKafka

pytestmark = pytest.mark.kafka
INPUTS = {
    "loan-bookings": "loan_bookings",
    "cds-executions": "cds_executions",
    "desk-clock": "desk_clock",
}


def test_one_partition_end_to_end_gives_the_contract_records(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    worker = WorkerProcess(
        kafka.bootstrap, unique, tmp_path, partitions=1, config=REPO / "config" / "desk-v2.toml"
    )
    topic_map = {name: worker.topics[field] for name, field in INPUTS.items()}
    asyncio.run(ensure_topics(kafka.bootstrap, list(topic_map.values()), 1))
    worker.start()
    try:
        lines = (EXAMPLES / "desk-v2.jsonl").read_text().splitlines()
        for n, (_, run) in enumerate(groupby(lines, key=lambda line: json.loads(line)["topic"])):
            part = tmp_path / f"part-{n}.jsonl"
            part.write_text("\n".join(run) + "\n")
            asyncio.run(publish_log(part, kafka.bootstrap, topic_map=topic_map))
            wait_until_idle(worker, settle=0.5)
        live = tmp_path / "live.orders.jsonl"
        asyncio.run(dump_topic(worker.topics["orders"], kafka.bootstrap, tmp_path / "o.jsonl"))
        live.write_text(
            "".join(json.dumps(line["value"]) + "\n" for line in read_jsonl(tmp_path / "o.jsonl"))
        )
        compare = subprocess.run(
            [
                sys.executable,
                str(COMPARE_ORDERS),
                str(EXAMPLES / "desk-v2.orders.jsonl"),
                str(live),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert compare.returncode == 0, compare.stdout
        records = read_jsonl(live)
        assert any(r["action"] == "cancel" for r in records)
        assert any(r.get("reason") == "group_limit_breach" for r in records)
        assert any(":" in r["order_id"] for r in records)  # orders of a tick
        dead = tmp_path / "dead.jsonl"
        asyncio.run(dump_topic(worker.topics["dead_letters"], kafka.bootstrap, dead))
        expected = sorted(d["reason"] for d in read_jsonl(EXAMPLES / "desk-v2.dead.jsonl"))
        assert sorted(d["value"]["reason"] for d in read_jsonl(dead)) == expected
    finally:
        assert worker.stop() == 0


def test_four_partitions_journal_replay_equals_live_and_blocks_reach_every_partition(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    config = REPO / "config" / "desk-v2.toml"
    worker = WorkerProcess(kafka.bootstrap, unique, tmp_path, partitions=4, config=config)
    topic_map = {name: worker.topics[field] for name, field in INPUTS.items()}
    asyncio.run(ensure_topics(kafka.bootstrap, list(topic_map.values()), 4))
    worker.start()
    try:
        # Line by line, each once the one before is processed: inputs of one
        # topic spread over 4 partitions keep no order of their own.
        for n, line in enumerate((EXAMPLES / "desk-v2.jsonl").read_text().splitlines()):
            part = tmp_path / f"line-{n}.jsonl"
            part.write_text(line + "\n")
            asyncio.run(publish_log(part, kafka.bootstrap, topic_map=topic_map))
            wait_until_idle(worker, settle=0.3)
        asyncio.run(dump_topic(worker.topics["orders"], kafka.bootstrap, tmp_path / "o.jsonl"))
        live: dict[tuple[str, str], dict[str, object]] = {}
        for line in read_jsonl(tmp_path / "o.jsonl"):
            record = line["value"]
            key = (record["action"], record["order_id"])
            assert live.setdefault(key, record) == record  # a duplicate is identical
        journal = tmp_path / "journal.jsonl"
        asyncio.run(dump_topic(worker.topics["journal"], kafka.bootstrap, journal, journal=True))
        replayed_path = tmp_path / "replay.orders.jsonl"
        replay_files(
            load_config(config), journal, replayed_path, tmp_path / "r.dead.jsonl", control=True
        )
        replayed = {(r["action"], r["order_id"]): r for r in read_jsonl(replayed_path)}
        assert live == replayed
        # a blocked seller's status reached every unit partition, and later buys exclude it
        statuses = [line for line in read_jsonl(journal) if line["topic"] == "hedger-seller-status"]
        blocked = {
            json.loads(s["value"])["seller"] for s in statuses if json.loads(s["value"])["blocked"]
        }
        assert blocked == {"BOREAL-LIFE", "CEDAR-CREDIT"}  # the SPEC's seller report
        for seller in blocked:
            partitions = {
                s["partition"] for s in statuses if json.loads(s["value"])["seller"] == seller
            }
            assert partitions == {0, 1, 2, 3}
        excluded = {s for r in live.values() for s in r.get("excluded_counterparties", [])}
        assert blocked <= excluded
        # in file order, status changes included, the records are the contract's
        spec = {
            (r["action"], r["order_id"]): r for r in read_jsonl(EXAMPLES / "desk-v2.orders.jsonl")
        }
        assert live == spec
    finally:
        assert worker.stop() == 0
