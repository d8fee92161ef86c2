"""A desk-clock tick that orders for more units of one journal partition than one
message holds, on the real broker, through `hedger worker`.

1,300 issuers, one journal partition: every unit breaches on its booking, and
the tick (after `order_ttl_days`) expires each unit's order and orders again,
so its one journal entry emits 2,600 records. Every topic the worker writes
takes messages of at most 64 KiB (a topic-level `max.message.bytes`), far
below what the tick's records weigh together: each must be its own record.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from hedger.config import HedgerConfig, config_from_mapping
from streams.kafka_io import dump_topic, ensure_topics, publish_log
from streams.live.topology import hedger_topology
from streams.offline.replay import replay_files
from streams.settings import TopicNames
from tests.factories import booked, config_data, prom_samples
from tests.integration.worker_harness import WorkerProcess, read_jsonl, wait_until_idle
from tests.kafka_broker import LocalKafka

pytestmark = pytest.mark.kafka
UNITS = 1_300
MAX_MESSAGE = 65_536


def wide_config_data() -> dict[str, Any]:
    issuers = {f"I{n:04d}": {"limit": "100000000"} for n in range(UNITS)}
    return config_data(issuers=issuers, hedge={"order_ttl_days": 1})


def tick(event_id: str, day: str) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": event_id,
        "event_type": "clock.tick",
        "occurred_at": f"{day}T18:00:00Z",
    }


def replay(config: HedgerConfig, lines: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        log, orders, dead = Path(tmp) / "in.jsonl", Path(tmp) / "o.jsonl", Path(tmp) / "d.jsonl"
        log.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
        replay_files(config, log, orders, dead)
        read = [[json.loads(x) for x in f.read_text().splitlines() if x] for f in (orders, dead)]
        return read[0], read[1]


def toml_text(data: dict[str, Any]) -> str:
    """A configuration mapping as TOML: tables of strings, numbers and lists of them."""
    lines: list[str] = []

    def table(name: str, values: dict[str, Any]) -> None:
        lines.append(f"[{name}]")
        nested = {k: v for k, v in values.items() if isinstance(v, dict)}
        lines.extend(f"{k} = {json.dumps(v)}" for k, v in values.items() if k not in nested)
        for key, inner in nested.items():
            table(f"{name}.{json.dumps(key)}", inner)

    for name, values in data.items():
        table(name, values)
    return "\n".join(lines) + "\n"


def transactions(worker: WorkerProcess) -> dict[str, float]:
    """`hedger_transactions_total` by outcome."""
    return {
        dict(labels)["outcome"]: value
        for (name, labels), value in prom_samples(worker.scrape()).items()
        if name == "hedger_transactions_total"
    }


def test_a_tick_ordering_for_1300_units_of_one_partition_sends_each_order_alone(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    data = wide_config_data()
    config_path = tmp_path / "wide.toml"
    config_path.write_text(toml_text(data))
    config = config_from_mapping(data)
    worker = WorkerProcess(kafka.bootstrap, unique, tmp_path, partitions=1, config=config_path)
    bookings = [booked(f"L-{n}", "150000000", issuer=f"I{n:04d}") for n in range(UNITS)]
    lines: list[dict[str, Any]] = [
        {"topic": "loan-bookings", "key": b["loan_id"], "value": b} for b in bookings
    ]
    lines.append({"topic": "desk-clock", "value": tick("tick-1", "2026-01-05")})
    expected, expected_dead = replay(config, lines)
    from_tick = [o for o in expected if o["trigger_event_id"] == "tick-1"]
    assert len(from_tick) == 2 * UNITS  # a cancel request and a new order per unit
    assert sum(len(json.dumps(o)) for o in from_tick) > 10 * MAX_MESSAGE

    # Every topic the worker writes exists before it starts, with small messages.
    topology = hedger_topology(worker.app_id, 1, TopicNames(**worker.topics))
    small = {"max.message.bytes": str(MAX_MESSAGE)}
    written = (*topology.internal_topics, worker.topics["orders"], worker.topics["dead_letters"])
    configs = {name: small for name in written}
    configs.update({name: {**small, "cleanup.policy": "compact"} for name in topology.changelogs})
    inputs = [worker.topics[name] for name in ("loan_bookings", "desk_clock")]
    asyncio.run(ensure_topics(kafka.bootstrap, [*configs, *inputs], 1, configs=configs))
    bookings_log, tick_log = tmp_path / "bookings.jsonl", tmp_path / "tick.jsonl"
    bookings_log.write_text("".join(json.dumps(line) + "\n" for line in lines[:-1]))
    tick_log.write_text(json.dumps(lines[-1]) + "\n")
    topic_map = {"loan-bookings": inputs[0], "desk-clock": inputs[1]}
    worker.start()
    started = time.monotonic()
    asyncio.run(publish_log(bookings_log, kafka.bootstrap, topic_map=topic_map))
    # every booking journaled first: the tick then follows them in the journal,
    # as it follows them in the replay's file
    wait_until_idle(worker, timeout=180)
    booked_at = time.monotonic()
    asyncio.run(publish_log(tick_log, kafka.bootstrap, topic_map=topic_map))
    wait_until_idle(worker, timeout=180)
    ticked_at = time.monotonic()
    outcomes = transactions(worker)
    assert worker.stop() == 0
    orders = [line["value"] for line in read_jsonl_dump(worker, "orders", tmp_path)]
    dead = read_jsonl_dump(worker, "dead_letters", tmp_path)
    print(
        f"\n{UNITS} units: {len(orders)} records on the orders topic; bookings "
        f"{booked_at - started:.1f} s, tick {ticked_at - booked_at:.1f} s, "
        f"transactions {outcomes}"
    )
    assert outcomes.get("aborted") == outcomes.get("fenced") == 0
    assert outcomes["committed"] > 0
    # a cancel request names the order it cancels: (order id, action) is unique
    ids = [(o["order_id"], o["action"]) for o in orders]
    assert len(ids) == len(set(ids))
    assert orders == expected
    assert dead == [] and expected_dead == []


def read_jsonl_dump(worker: WorkerProcess, field: str, tmp: Path) -> list[dict[str, Any]]:
    """A topic of the worker read `read_committed` (`hedger dump`'s reader)."""
    out = tmp / f"{field}.jsonl"
    asyncio.run(dump_topic(worker.topics[field], worker.bootstrap, out))
    return read_jsonl(out)
