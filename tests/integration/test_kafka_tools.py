"""`publish` and `dump` (streams.kafka_io, streams.cli.tools) against the real local broker.

Expected values come from the example logs, read here with plain `json`, and
the raw bytes on the wire are read back with a plain aiokafka consumer, so
neither depends on the code under test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import murmur2

from streams.cli.tools import add_tool_commands
from streams.kafka_io import (
    KafkaToolError,
    TopicNotFound,
    dump_topic,
    publish_log,
)
from streams.replay_log import read_log
from tests.factories import EXAMPLES
from tests.kafka_broker import LocalKafka, create_topic

pytestmark = pytest.mark.kafka

WALKTHROUGH = EXAMPLES / "walkthrough.jsonl"
STREAM_2000 = EXAMPLES / "stream-2000.jsonl"


def load_lines(path: Path) -> list[dict[str, Any]]:
    """Every non-blank line of a JSON-lines file, parsed with plain json."""
    with path.open(encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]


def canonical(key: object, value: object) -> str:
    return json.dumps([key, value], sort_keys=True)


async def _raw_messages(bootstrap: str, topic: str) -> list[tuple[int, int, bytes | None, bytes]]:
    """(partition, offset, key, value) of every message, as bytes, via plain aiokafka."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in description["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out = []
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                out += [(m.partition, m.offset, m.key, m.value) for m in batch.get(tp, [])]
        return sorted(out)
    finally:
        await consumer.stop()


async def _topic_names(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


# --- publish → dump round trips ----------------------------------------------------------


def test_walkthrough_round_trip(kafka: LocalKafka, unique: str, tmp_path: Path) -> None:
    records = load_lines(WALKTHROUGH)
    topics = sorted({r["topic"] for r in records})
    first = {t: f"{unique}-{t}" for t in topics}
    raw_values = [r["value"] for r in records if isinstance(r["value"], str)]
    assert len(raw_values) == 1 and raw_values[0].startswith("{")  # the malformed payload

    stats = asyncio.run(
        publish_log(WALKTHROUGH, kafka.bootstrap, create_partitions=1, topic_map=first)
    )
    assert stats.published == Counter(first[r["topic"]] for r in records)
    assert sorted(stats.created_topics) == sorted(first.values())
    assert not stats.skipped

    for topic in topics:
        expected = [r for r in records if r["topic"] == topic]
        # On the wire: objects as JSON of the same object, the raw string as its bytes.
        wire = asyncio.run(_raw_messages(kafka.bootstrap, first[topic]))
        assert [(p, o) for p, o, _, _ in wire] == [(0, i) for i in range(len(expected))]
        for (_, _, key, value), record in zip(wire, expected, strict=True):
            assert key == record["key"].encode()
            if isinstance(record["value"], str):
                assert value == record["value"].encode("utf-8")
            else:
                assert json.loads(value) == record["value"]

        out = tmp_path / f"{topic}.jsonl"
        count = asyncio.run(dump_topic(first[topic], kafka.bootstrap, out))
        lines = load_lines(out)
        assert count == len(lines) == len(expected)
        assert [(x["key"], x["value"]) for x in lines] == [(r["key"], r["value"]) for r in expected]
        assert [(x["topic"], x["partition"], x["offset"]) for x in lines] == [
            (first[topic], 0, i) for i in range(len(expected))
        ]
        for line, record in zip(lines, expected, strict=True):
            if isinstance(record["value"], str):
                assert line["value"].encode("utf-8") == record["value"].encode("utf-8")

        # dump → publish again: the very same bytes go on the wire.
        again = f"{unique}-again-{topic}"
        asyncio.run(
            publish_log(out, kafka.bootstrap, create_partitions=1, topic_map={first[topic]: again})
        )
        rewired = asyncio.run(_raw_messages(kafka.bootstrap, again))
        assert [(k, v) for _, _, k, v in rewired] == [(k, v) for _, _, k, v in wire]


def test_multi_partition_keeps_every_record_and_per_key_order(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    records = load_lines(STREAM_2000)
    topics = sorted({r["topic"] for r in records})
    rename = {t: f"{unique}-{t}" for t in topics}
    stats = asyncio.run(
        publish_log(STREAM_2000, kafka.bootstrap, create_partitions=4, topic_map=rename)
    )
    assert stats.total == len(records) == 2000

    for topic in topics:
        expected = [r for r in records if r["topic"] == topic]
        out = tmp_path / f"{topic}.jsonl"
        count = asyncio.run(dump_topic(rename[topic], kafka.bootstrap, out))
        lines = load_lines(out)
        assert count == len(lines) == len(expected)

        # Every record exactly once (the log has identical lines: compare multisets).
        assert Counter(canonical(x["key"], x["value"]) for x in lines) == Counter(
            canonical(r["key"], r["value"]) for r in expected
        )
        # Partition by partition, offsets ascending and gapless from 0 within each.
        coords = [(x["partition"], x["offset"]) for x in lines]
        assert coords == sorted(coords)
        by_partition: dict[int, list[int]] = defaultdict(list)
        for p, o in coords:
            by_partition[p].append(o)
        assert all(offsets == list(range(len(offsets))) for offsets in by_partition.values())
        assert len(by_partition) > 1  # the keys really spread over the 4 partitions
        # A key lives in the partition of Kafka's default (murmur2) partitioner ...
        for x in lines:
            assert x["partition"] == (murmur2(x["key"].encode()) & 0x7FFFFFFF) % 4
        # ... so per key the dump keeps the file order.
        dumped_by_key: dict[str, list[object]] = defaultdict(list)
        file_by_key: dict[str, list[object]] = defaultdict(list)
        for x in lines:
            dumped_by_key[x["key"]].append(x["value"])
        for r in expected:
            file_by_key[r["key"]].append(r["value"])
        assert dumped_by_key == file_by_key


def test_publish_only_selected_topics(kafka: LocalKafka, unique: str) -> None:
    records = load_lines(WALKTHROUGH)
    rename = {t: f"{unique}-{t}" for t in {r["topic"] for r in records}}
    stats = asyncio.run(
        publish_log(
            WALKTHROUGH,
            kafka.bootstrap,
            topics={"cds-executions"},
            create_partitions=1,
            topic_map=rename,
        )
    )
    n_exec = sum(r["topic"] == "cds-executions" for r in records)
    assert stats.published == Counter({rename["cds-executions"]: n_exec})
    assert stats.skipped == Counter(r["topic"] for r in records if r["topic"] != "cds-executions")
    existing = asyncio.run(_topic_names(kafka.bootstrap))
    assert rename["cds-executions"] in existing
    assert rename["loan-bookings"] not in existing


# --- journal mode --------------------------------------------------------------------------

LOAN = {
    "schema_version": 1,
    "event_id": "ev-1",
    "event_type": "loan.booked",
    "occurred_at": "2026-02-02T10:00:00.000Z",
    "loan_id": "L-1",
    "sequence": 1,
    "issuer_id": "CRWV",
    "notional": "600000000",
    "currency": "USD",
    "maturity_date": "2030-06-30",
}
EXECUTION = {
    "schema_version": 1,
    "event_id": "ev-4",
    "event_type": "execution.report",
    "occurred_at": "2026-02-04T10:00:00.000Z",
    "order_id": "ev-2#1",
    "issuer_id": "CRWV",
    "status": "filled",
    "filled_notional": "100000000",
    "counterparty": "INSURER-C",
}
BROKEN = '{"schema_version": 1, "event_id": "ev-15", '


async def _produce(bootstrap: str, messages: list[tuple[str, int, bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic, partition, key, value in messages:
            await producer.send_and_wait(topic, value, key=key, partition=partition)
    finally:
        await producer.stop()


def test_journal_dump_restores_input_topic_and_event(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    journal = f"{unique}-hedger-journal"
    create_topic(kafka.bootstrap, journal, partitions=2)
    entries = [  # (partition, key, entry)
        (1, b"CRWV", {"topic": "loan-bookings", "value": LOAN, "source": ["loan-bookings", 2, 7]}),
        (
            1,
            b"CRWV",
            {"topic": "cds-executions", "value": EXECUTION, "source": ["cds-executions", 0, 3]},
        ),
        (
            0,
            b"MSFT",
            {"topic": "loan-bookings", "value": BROKEN, "source": ["loan-bookings", 1, 9]},
        ),
    ]
    asyncio.run(
        _produce(
            kafka.bootstrap,
            [(journal, p, k, json.dumps(e, separators=(",", ":")).encode()) for p, k, e in entries],
        )
    )

    out = tmp_path / "journal.jsonl"
    assert asyncio.run(dump_topic(journal, kafka.bootstrap, out)) == 3  # auto: name ends "journal"
    assert load_lines(out) == [
        {
            "topic": "loan-bookings",
            "key": "MSFT",
            "value": BROKEN,
            "partition": 0,
            "offset": 0,
            "source": ["loan-bookings", 1, 9],
        },
        {
            "topic": "loan-bookings",
            "key": "CRWV",
            "value": LOAN,
            "partition": 1,
            "offset": 0,
            "source": ["loan-bookings", 2, 7],
        },
        {
            "topic": "cds-executions",
            "key": "CRWV",
            "value": EXECUTION,
            "partition": 1,
            "offset": 1,
            "source": ["cds-executions", 0, 3],
        },
    ]
    # It is a replay log of the original input events.
    with out.open(encoding="utf-8") as stream:
        assert [(r.topic, r.value) for r in read_log(stream)] == [
            ("loan-bookings", BROKEN),
            ("loan-bookings", LOAN),
            ("cds-executions", EXECUTION),
        ]

    # --no-journal: the entries themselves, on the journal topic.
    plain = tmp_path / "plain.jsonl"
    assert asyncio.run(dump_topic(journal, kafka.bootstrap, plain, journal=False)) == 3
    assert [(x["topic"], x["value"]) for x in load_lines(plain)] == [
        (journal, entries[2][2]),
        (journal, entries[0][2]),
        (journal, entries[1][2]),
    ]


def test_journal_mode_on_a_non_journal_message_fails(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    topic = f"{unique}-bookings"
    create_topic(kafka.bootstrap, topic, partitions=1)
    asyncio.run(_produce(kafka.bootstrap, [(topic, 0, b"L-1", json.dumps(LOAN).encode())]))
    with pytest.raises(KafkaToolError, match=r"partition 0 offset 0: not a journal entry"):
        asyncio.run(dump_topic(topic, kafka.bootstrap, tmp_path / "x.jsonl", journal=True))


# --- edge cases -------------------------------------------------------------------------------


def test_empty_topic_dumps_no_lines(kafka: LocalKafka, unique: str, tmp_path: Path) -> None:
    topic = f"{unique}-empty"
    create_topic(kafka.bootstrap, topic, partitions=3)
    out = tmp_path / "empty.jsonl"
    assert asyncio.run(dump_topic(topic, kafka.bootstrap, out)) == 0
    assert out.read_bytes() == b""


def test_missing_topic_is_a_clear_error_and_is_not_created(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    topic = f"{unique}-missing"
    out = tmp_path / "missing.jsonl"
    with pytest.raises(TopicNotFound, match=f"topic '{topic}' does not exist"):
        asyncio.run(dump_topic(topic, kafka.bootstrap, out))
    assert not out.exists()
    assert topic not in asyncio.run(_topic_names(kafka.bootstrap))  # no auto-create


def test_dump_skips_aborted_transactions(kafka: LocalKafka, unique: str, tmp_path: Path) -> None:
    topic = f"{unique}-orders"
    create_topic(kafka.bootstrap, topic, partitions=1)

    async def produce() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka.bootstrap, transactional_id=f"{unique}-tx"
        )
        await producer.start()
        try:
            async with producer.transaction():
                await producer.send(topic, b'{"n":1}', key=b"a")
                await producer.send(topic, b'{"n":2}', key=b"a")
            await producer.begin_transaction()
            await producer.send(topic, b'{"n":3}', key=b"a")
            await producer.abort_transaction()
            async with producer.transaction():
                await producer.send(topic, b'{"n":4}', key=b"a")
        finally:
            await producer.stop()

    asyncio.run(produce())
    out = tmp_path / "orders.jsonl"
    assert asyncio.run(dump_topic(topic, kafka.bootstrap, out, idle_timeout=10)) == 3
    assert [x["value"] for x in load_lines(out)] == [{"n": 1}, {"n": 2}, {"n": 4}]


# --- command line -------------------------------------------------------------------------------


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="hedger")
    add_tool_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_cli_publish_and_dump(
    kafka: LocalKafka, unique: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = load_lines(WALKTHROUGH)
    n_loans = sum(r["topic"] == "loan-bookings" for r in records)
    topic = f"{unique}-loans"
    code = run_cli(
        "publish",
        str(WALKTHROUGH),
        "--bootstrap",
        kafka.bootstrap,
        "--topic",
        "loan-bookings",
        "--rename",
        f"loan-bookings={topic}",
        "--partitions",
        "2",
    )
    stdout = capsys.readouterr().out
    assert code == 0
    assert f"{topic} (created)" in stdout and f"{n_loans} messages" in stdout
    assert f"{len(records) - n_loans} lines of other topics skipped" in stdout

    out = tmp_path / "loans.jsonl"
    assert run_cli("dump", topic, "--bootstrap", kafka.bootstrap, "--out", str(out)) == 0
    assert f"{n_loans} messages of {topic}" in capsys.readouterr().out
    assert len(load_lines(out)) == n_loans


def test_cli_errors(
    kafka: LocalKafka, unique: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.jsonl"
    assert run_cli("publish", str(missing), "--bootstrap", kafka.bootstrap) == 2
    assert "no such log file" in capsys.readouterr().err

    corrupt = tmp_path / "corrupt.jsonl"
    topic = f"{unique}-corrupt"
    corrupt.write_text(
        json.dumps({"topic": topic, "key": "L-1", "value": LOAN}) + "\n\n{not json\n",
        encoding="utf-8",
    )
    assert run_cli("publish", str(corrupt), "--bootstrap", kafka.bootstrap) == 3
    assert "line 3" in capsys.readouterr().err
    assert topic not in asyncio.run(_topic_names(kafka.bootstrap))  # nothing was published

    absent = f"{unique}-absent"
    out = tmp_path / "absent.jsonl"
    assert run_cli("dump", absent, "--bootstrap", kafka.bootstrap, "--out", str(out)) == 2
    assert absent in capsys.readouterr().err
