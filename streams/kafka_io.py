"""Moving replay logs (SPEC §9) to and from Kafka topics: `publish` and `dump`.

Owns: the byte encoding of a log record's key and value on Kafka, publishing
a log file to its topics, and dumping a topic back into a replay log
(including the worker's journal topics, whose entries carry the input topic).
Also creating missing topics (`ensure_topics`), reading partition counts
(`partition_counts`) and measuring a consumer group's committed lag
(`committed_lag`). Every client is built from
`streams.settings.KafkaSettings` (address, SASL/TLS). No business rule lives
here. Imports the standard library, aiokafka, `hedger.decoding`/
`hedger.outcomes`, `streams.replay_log` and `streams.settings`; never the
offline replay itself.

Value encoding (`encode_value`/`decode_value`): an event object goes on the
wire as compact JSON; a string is a raw payload and goes as its own UTF-8
bytes, so a malformed payload recorded in a log is published byte for byte.
Reading back, a payload that is a strict-JSON object becomes the object, any
other payload the string of its bytes. publish → dump → publish therefore
puts the same bytes on the wire (objects are compact JSON both times).
"""

from __future__ import annotations

import asyncio
import codecs
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from hedger.decoding import parse_json
from hedger.outcomes import Rejected
from streams.outputs import atomic_bytes
from streams.replay_log import LogRecord, read_log
from streams.settings import KafkaSettings, connection

# Futures of sent messages awaited in chunks, so memory stays bounded on big logs.
_AWAIT_EVERY = 10_000
# How long a dump waits for a partition that should have more records (seconds).
DEFAULT_IDLE_TIMEOUT = 30.0
_POLL_MS = 500

_RAW_BYTES = "cds-hedger.raw-bytes"


def _raw_bytes_errors(exc: UnicodeError) -> tuple[bytes, int]:
    """Encode error handler: surrogateescape where it applies, else surrogatepass.

    `\\udc80`-`\\udcff` are bytes that were not UTF-8 when decoded with
    surrogateescape and go back to those bytes; any other lone surrogate
    (only possible from a hand-written `\\ud800`-style escape in a log) is
    written as its 3-byte surrogate form instead of crashing.
    """
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    out = bytearray()
    for char in exc.object[exc.start : exc.end]:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(code - 0xDC00)
        else:
            out += char.encode("utf-8", "surrogatepass")
    return bytes(out), exc.end


codecs.register_error(_RAW_BYTES, _raw_bytes_errors)


class KafkaToolError(RuntimeError):
    """A publish or dump that cannot proceed; the message says why."""


class PartitionCountMismatch(KafkaToolError):
    """Topics that exist with another partition count than the one required."""

    def __init__(self, counts: Mapping[str, int], required: int) -> None:
        found = ", ".join(f"{name} has {n}" for name, n in sorted(counts.items()))
        super().__init__(
            f"topics exist with another partition count than {required} "
            f"(HEDGER_PARTITIONS): {found}; delete them or set the partitions to match"
        )
        self.counts, self.required = dict(counts), required


class TopicNotFound(KafkaToolError):
    """The topic to dump does not exist on the cluster."""

    def __init__(self, topic: str, bootstrap: str) -> None:
        super().__init__(f"topic {topic!r} does not exist on {bootstrap}")
        self.topic = topic


def text_to_bytes(text: str) -> bytes:
    """UTF-8 bytes of a raw payload string; never fails (see `_raw_bytes_errors`)."""
    return text.encode("utf-8", _RAW_BYTES)


def bytes_to_text(payload: bytes) -> str:
    """Inverse of `text_to_bytes`: invalid UTF-8 bytes become `\\udcXX` escapes."""
    return payload.decode("utf-8", "surrogateescape")


def encode_value(value: object) -> bytes:
    """A log `value` as the message payload.

    A string is the raw payload: its UTF-8 bytes as is. Anything else (object,
    array, number, bool, null) is compact JSON; NaN/Infinity are refused
    (ValueError) since they are not JSON.
    """
    if isinstance(value, str):
        return text_to_bytes(value)
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate inside a string: keep it as \u escape
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("ascii")


def decode_value(payload: bytes | None) -> object:
    """A message payload as a log `value`: the object if it is a strict-JSON object.

    Anything else (malformed JSON, an array, a number, invalid UTF-8) is the
    raw payload as a string, which `encode_value` turns back into the same
    bytes (invalid UTF-8 as lone surrogates, which a replay rejects as
    `invalid_json` like the worker). A null payload (tombstone) is the empty
    string: the worker dead-letters a tombstone as `invalid_json`, and so
    does a replay of the empty payload.
    """
    if payload is None:
        return ""
    try:
        parsed = parse_json(payload)
    except Rejected:
        return bytes_to_text(payload)
    if isinstance(parsed, dict):
        return parsed
    return bytes_to_text(payload)


def encode_key(key: object) -> bytes | None:
    """A log `key` as the message key: str as UTF-8, None as no key, else compact JSON."""
    if key is None:
        return None
    if isinstance(key, str):
        return text_to_bytes(key)
    return json.dumps(key, separators=(",", ":"), allow_nan=False).encode("ascii")


def decode_key(key: bytes | None) -> str | None:
    """A message key as a log `key` (a string, or None when the message has none)."""
    return None if key is None else bytes_to_text(key)


@dataclass
class PublishStats:
    """What a publish did: messages per destination topic, skipped lines per log topic."""

    published: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    created_topics: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.published.values())


def _scan_log(path: Path) -> list[str]:
    """Validate the whole log (raises CorruptLog) and return its topics in first-seen order.

    Done before anything is sent, so a corrupt log publishes nothing.
    """
    seen: dict[str, None] = {}
    with path.open(encoding="utf-8") as stream:
        for record in read_log(stream):
            seen.setdefault(record.topic, None)
    return list(seen)


async def _existing_topics(admin: AIOKafkaAdminClient) -> set[str]:
    # A metadata request for all topics: unlike one naming the topic, it never
    # makes a broker with auto.create.topics.enable create the topic.
    return set(await admin.list_topics())


async def ensure_topics(
    kafka: KafkaSettings | str,
    topics: Iterable[str],
    partitions: int,
    replication_factor: int = 1,
    configs: Mapping[str, Mapping[str, str]] | None = None,
    exact: Iterable[str] = (),
) -> list[str]:
    """Create the topics that do not exist yet; return those created (existing are left as is).

    `kafka` is the connection (a bare HOST:PORT takes security from the environment);
    `configs` gives topic configurations by name (e.g. compaction of changelogs,
    `{"retention.ms": "-1"}`). Topics named in `exact` that already exist must
    have `partitions` partitions, else `PartitionCountMismatch` names them.
    """
    admin = AIOKafkaAdminClient(client_id="hedger-tools", **connection(kafka).client_options())
    try:
        await admin.start()
        existing = await _existing_topics(admin)
        check = sorted(set(exact) & existing)
        if check:
            counts = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(check)}
            wrong = {name: n for name, n in counts.items() if n != partitions}
            if wrong:
                raise PartitionCountMismatch(wrong, partitions)
        missing = sorted(set(topics) - existing)
        if not missing:
            return []
        new = [
            NewTopic(
                name, partitions, replication_factor, topic_configs=dict(configs.get(name, {}))
            )
            if configs
            else NewTopic(name, partitions, replication_factor)
            for name in missing
        ]
        try:
            response = await admin.create_topics(new)
        except TopicAlreadyExistsError:
            return []
        created = []
        for name, code, *rest in getattr(response, "topic_errors", ()):
            if code == 0:
                created.append(name)
            elif code != TopicAlreadyExistsError.errno:
                reason = f": {rest[0]}" if rest and rest[0] else ""
                raise KafkaToolError(f"cannot create topic {name!r}: error code {code}{reason}")
        return created
    finally:
        await admin.close()


async def partition_counts(kafka: KafkaSettings | str, topics: Iterable[str]) -> dict[str, int]:
    """The partition count of each existing topic among `topics`."""
    admin = AIOKafkaAdminClient(client_id="hedger-tools", **connection(kafka).client_options())
    try:
        await admin.start()
        existing = sorted(set(topics) & await _existing_topics(admin))
        if not existing:
            return {}
        described = await admin.describe_topics(existing)
        return {t["topic"]: len(t["partitions"]) for t in described if not t.get("error_code")}
    finally:
        await admin.close()


async def publish_log(
    path: str | Path,
    kafka: KafkaSettings | str,
    *,
    topics: set[str] | None = None,
    create_partitions: int | None = None,
    topic_map: Mapping[str, str] | None = None,
    replication_factor: int = 1,
) -> PublishStats:
    """Produce every record of a replay log to its topic, in file order.

    `topics` selects log topics (names as in the log, before `topic_map`);
    other lines are counted as skipped. `topic_map` renames log topics to the
    topics actually written. With `create_partitions`, missing destination
    topics are created first with that many partitions; otherwise the
    broker's auto-create applies (or the send times out). The whole log is
    validated first: a corrupt log (CorruptLog) or non-UTF-8 file publishes
    nothing. One idempotent producer (acks=all), so the records of one
    partition land in file order.
    """
    path = Path(path)
    kafka = connection(kafka)
    rename = dict(topic_map or {})
    log_topics = _scan_log(path)
    selected = [t for t in log_topics if topics is None or t in topics]
    stats = PublishStats()
    if create_partitions is not None and selected:
        destinations = {rename.get(t, t) for t in selected}
        stats.created_topics = await ensure_topics(
            kafka, destinations, create_partitions, replication_factor
        )

    producer = AIOKafkaProducer(
        **kafka.client_options(),
        client_id="hedger-publish",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
    )
    try:
        await producer.start()  # stop() in `finally` also cleans up a failed start
        pending: list[asyncio.Future[Any]] = []
        with path.open(encoding="utf-8") as stream:
            for record in read_log(stream):
                if topics is not None and record.topic not in topics:
                    stats.skipped[record.topic] += 1
                    continue
                destination = rename.get(record.topic, record.topic)
                pending.append(await _send(producer, destination, record))
                stats.published[destination] += 1
                if len(pending) >= _AWAIT_EVERY:
                    await asyncio.gather(*pending)
                    pending.clear()
        await producer.flush()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return stats


async def _send(producer: AIOKafkaProducer, topic: str, record: LogRecord) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = await producer.send(
        topic, encode_value(record.value), key=encode_key(record.key)
    )
    return future


def _json_line(line: dict[str, Any]) -> bytes:
    """One log line: readable UTF-8, or all-ASCII escapes if a string holds a lone surrogate."""
    text = json.dumps(line, ensure_ascii=False)
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        return json.dumps(line).encode("ascii") + b"\n"


def _journal_line(
    topic: str, partition: int, offset: int, key: str | None, value: object
) -> dict[str, Any]:
    if not (isinstance(value, dict) and isinstance(value.get("topic"), str) and "value" in value):
        raise KafkaToolError(
            f"{topic} partition {partition} offset {offset}: not a journal entry "
            "(a JSON object with a string 'topic' and a 'value'); dump it with journal=False"
        )
    line: dict[str, Any] = {
        "topic": value["topic"],
        "key": key,
        "value": value["value"],
        "partition": partition,
        "offset": offset,
    }
    for name, extra in value.items():
        line.setdefault(name, extra)
    return line


async def dump_topic(
    topic: str,
    kafka: KafkaSettings | str,
    out_path: str | Path,
    *,
    journal: bool | None = None,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
) -> int:
    """Write a topic, from its beginning to its end at the start of the dump, as a replay log.

    Returns the number of lines written. Order: partition by partition
    (0, 1, 2, ...), offsets ascending within a partition. The events of one
    key stay in order, because a key lives in one partition; the order
    between partitions is not something Kafka keeps, so a multi-partition
    dump does not reproduce the original interleaving across keys.

    Each line is `{"topic", "key", "value", "partition", "offset"}` with the
    key as a string (or null) and the value as `decode_value` gives it.
    Journal mode (`journal=True`, or None and the topic name ends with
    "journal"): each message is an entry `{"topic": input topic, "value":
    event, ...}`; the line takes topic and value from the entry (so the dump
    replays as the original input), the message's key, partition and offset,
    and the entry's other fields (e.g. "source") under their names — replay
    ignores them. Reads with read_committed, so aborted transactions are not
    dumped. Raises TopicNotFound (without creating the topic) if the topic
    does not exist, KafkaToolError if a partition stops delivering for
    `idle_timeout` seconds before its end.
    """
    if journal is None:
        journal = topic.endswith("journal")
    kafka = connection(kafka)
    admin = AIOKafkaAdminClient(client_id="hedger-dump", **kafka.client_options())
    try:
        await admin.start()
        if topic not in await _existing_topics(admin):
            raise TopicNotFound(topic, kafka.bootstrap)
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if description["error_code"] != 0:
        raise KafkaToolError(
            f"cannot describe topic {topic!r}: error code {description['error_code']}"
        )
    partitions = [TopicPartition(topic, p["partition"]) for p in description["partitions"]]
    partitions.sort(key=lambda tp: tp.partition)

    consumer = AIOKafkaConsumer(
        **kafka.client_options(),
        client_id="hedger-dump",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    written = 0
    try:
        await consumer.start()
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        with atomic_bytes(out_path) as out:  # whole or not at all; never a device
            for tp in partitions:
                if starts[tp] >= ends[tp]:
                    continue
                written += await _dump_partition(
                    consumer, tp, ends[tp], out, journal=journal, idle_timeout=idle_timeout
                )
    finally:
        await consumer.stop()
    return written


async def _dump_partition(
    consumer: AIOKafkaConsumer,
    tp: TopicPartition,
    end: int,
    out: BinaryIO,
    *,
    journal: bool,
    idle_timeout: float,
) -> int:
    loop = asyncio.get_running_loop()
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    written = 0
    last_progress = loop.time()
    while True:
        position = await consumer.position(tp)
        if position >= end:
            return written
        batch = await consumer.getmany(tp, timeout_ms=_POLL_MS)
        messages = batch.get(tp, [])
        if messages or await consumer.position(tp) > position:
            last_progress = loop.time()
        elif loop.time() - last_progress > idle_timeout:
            raise KafkaToolError(
                f"{tp.topic} partition {tp.partition}: no records for {idle_timeout:g}s "
                f"at offset {position}, before the end offset {end}"
            )
        for message in messages:
            if message.offset >= end:  # produced after the dump started
                return written
            key = decode_key(message.key)
            value = decode_value(message.value)
            if journal:
                line = _journal_line(tp.topic, tp.partition, message.offset, key, value)
            else:
                line = {
                    "topic": tp.topic,
                    "key": key,
                    "value": value,
                    "partition": tp.partition,
                    "offset": message.offset,
                }
            out.write(_json_line(line))
            written += 1


async def committed_lag(kafka: KafkaSettings | str, group: str, topics: list[str]) -> int:
    """Messages the group has not committed yet, over all partitions of `topics`."""
    return sum((await lag_by_partition(kafka, group, topics)).values())


async def lag_by_partition(
    kafka: KafkaSettings | str, group: str, topics: list[str]
) -> dict[str, int]:
    """Uncommitted messages per "topic[partition]" (only those with any)."""
    options = connection(kafka).client_options()
    admin = AIOKafkaAdminClient(**options)
    # read_committed: end offsets are last stable offsets (an open transaction's records wait)
    consumer = AIOKafkaConsumer(**options, isolation_level="read_committed")
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in (consumer.partitions_for_topic(topic) or await _partitions(admin, topic))
        ]
        ends = await consumer.end_offsets(partitions)
        lags = {}
        for tp, end in ends.items():
            meta = committed.get(tp)
            behind = end - (meta.offset if meta is not None and meta.offset >= 0 else 0)
            if behind:
                lags[f"{tp.topic}[{tp.partition}]"] = behind
        return lags
    finally:
        await consumer.stop()
        await admin.close()


async def _partitions(admin: AIOKafkaAdminClient, topic: str) -> set[int]:
    """The partitions of a topic the consumer has no metadata for yet (none if missing)."""
    (description,) = await admin.describe_topics([topic])
    return {int(p["partition"]) for p in description["partitions"]}
