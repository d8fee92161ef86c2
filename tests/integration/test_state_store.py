"""A table's store (`streams.live.state_store`) against its changelog on the real broker.

The changelog records here are written by a transactional producer, as the
worker writes them; the expected tables are written out by hand from those
records (the last committed value of each key, no key whose last record is
a tombstone, nothing of an aborted transaction).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from rocksdict import Options, Rdict

from streams.kafka_io import ensure_topics
from streams.live.state_store import LOCAL_FORMAT, ChangelogStore, LocalStore
from tests.kafka_broker import LocalKafka

pytestmark = pytest.mark.kafka

Record = tuple[int, bytes, bytes | None]  # partition, key, value (None: tombstone)


async def _commit(
    bootstrap: str, topic: str, records: list[Record], *, abort: bool = False
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=f"{topic}-writer", enable_idempotence=True
    )
    await producer.start()
    try:
        await producer.begin_transaction()
        for partition, key, value in records:
            await producer.send(topic, value, key, partition)
        if abort:
            await producer.abort_transaction()
        else:
            await producer.commit_transaction()
    finally:
        await producer.stop()


FIRST: list[Record] = [
    (0, b"loan-1", b"v1"),
    (0, b"loan-2", b"v1"),
    (1, b"loan-3", b"v1"),
    (0, b"loan-1", b"v2"),
    (1, b"loan-4", b"v1"),
    (1, b"loan-3", None),  # closed: a tombstone
]
# after FIRST: partition 0 {loan-1: v2, loan-2: v1}, partition 1 {loan-4: v1}
ABORTED: list[Record] = [(0, b"loan-2", b"aborted"), (1, b"loan-9", b"aborted")]
TAIL: list[Record] = [(0, b"loan-2", None), (1, b"loan-5", b"v1"), (0, b"loan-6", b"v1")]
# after TAIL: partition 0 {loan-1: v2, loan-6: v1}, partition 1 {loan-4: v1, loan-5: v1}
AFTER_FIRST = {b"loan-1": b"v2", b"loan-2": b"v1", b"loan-4": b"v1"}
AFTER_TAIL = {b"loan-1": b"v2", b"loan-6": b"v1", b"loan-4": b"v1", b"loan-5": b"v1"}


def _setup(kafka: LocalKafka, unique: str) -> tuple[str, dict[str, object]]:
    topic = f"{unique}-changelog"
    options: dict[str, object] = {"bootstrap_servers": kafka.bootstrap}

    async def create() -> None:
        from streams.settings import KafkaSettings

        settings = KafkaSettings(bootstrap=kafka.bootstrap)
        await ensure_topics(settings, [topic], 2, configs={topic: {"cleanup.policy": "compact"}})
        await _commit(kafka.bootstrap, topic, FIRST)
        await _commit(kafka.bootstrap, topic, ABORTED, abort=True)

    asyncio.run(create())
    return topic, options


def test_memory_restore_holds_the_committed_values_and_no_tombstoned_or_aborted_key(
    kafka: LocalKafka, unique: str
) -> None:
    topic, options = _setup(kafka, unique)
    store = ChangelogStore(topic)
    read = asyncio.run(store.restore(options, [0, 1]))
    assert read == len(FIRST)  # aborted records and markers are not read as records
    assert store.data == AFTER_FIRST
    assert store.partition_of == {b"loan-1": 0, b"loan-2": 0, b"loan-4": 1}
    assert store.remaining == 0
    store.drop([1])
    assert store.data == {b"loan-1": b"v2", b"loan-2": b"v1"}


def test_a_restart_on_the_same_disk_reads_only_the_changelog_tail(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    topic, options = _setup(kafka, unique)

    async def scenario() -> tuple[int, int, dict[bytes, bytes]]:
        first = ChangelogStore(topic, LocalStore(tmp_path, topic))
        read_first = await first.restore(options, [0, 1])
        await first.close()
        await _commit(kafka.bootstrap, topic, TAIL)
        again = ChangelogStore(topic, LocalStore(tmp_path, topic))
        read_again = await again.restore(options, [0, 1])
        await again.close()
        return read_first, read_again, again.data

    read_first, read_again, data = asyncio.run(scenario())
    assert read_first == len(FIRST)
    assert read_again == len(TAIL)  # the snapshot held the rest
    assert data == AFTER_TAIL  # the tail's tombstone removed loan-2 from the snapshot


def test_a_flush_snapshots_the_written_keys_so_a_restart_reads_nothing(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    """The worker's own writes: applied to `data`, committed, then flushed."""
    topic, options = _setup(kafka, unique)

    async def scenario() -> tuple[int, int, dict[bytes, bytes]]:
        store = ChangelogStore(topic, LocalStore(tmp_path, topic))
        await store.restore(options, [0, 1])
        for _, key, value in TAIL:  # as BufferedTable.drain applies them
            if value is None:
                store.data.pop(key, None)
            else:
                store.data[key] = value
        records = store.records(TAIL)
        await _commit(kafka.bootstrap, topic, records)
        written = await store.flush(options)
        await store.close()
        again = ChangelogStore(topic, LocalStore(tmp_path, topic))
        read = await again.restore(options, [0, 1])
        await again.close()
        return written, read, again.data

    written, read, data = asyncio.run(scenario())
    assert written == 3
    assert read == 0
    assert data == AFTER_TAIL


@pytest.mark.parametrize("damage", ["garbage", "beyond_the_log", "other_format"])
def test_a_damaged_checkpoint_rebuilds_the_partition_from_the_changelog(
    kafka: LocalKafka, unique: str, tmp_path: Path, damage: str
) -> None:
    topic, options = _setup(kafka, unique)

    async def restore() -> tuple[int, dict[bytes, bytes]]:
        store = ChangelogStore(topic, LocalStore(tmp_path, topic))
        read = await store.restore(options, [0, 1])
        await store.close()
        return read, store.data

    asyncio.run(restore())
    db = Rdict(str(tmp_path / topic / "0"), Options(raw_mode=True))
    db[b"data:stale"] = b"not in the changelog"  # would survive a load of the snapshot
    mark = b'{"format": %d, "changelog": "%s", "offset": %d}'
    db[b"checkpoint"] = {
        "garbage": b"\xff{not json",
        "beyond_the_log": mark % (LOCAL_FORMAT, topic.encode(), 1000),
        "other_format": mark % (LOCAL_FORMAT - 1, topic.encode(), 0),
    }[damage]
    db.close()
    read, data = asyncio.run(restore())
    assert read == 3  # partition 0 read whole (3 committed records); partition 1 from its mark
    assert data == AFTER_FIRST


def test_a_slow_restore_warns_once_with_the_offsets_left(kafka: LocalKafka, unique: str) -> None:
    """Each partition: 3 records, a commit marker, an aborted record and its
    abort marker: 6 offsets left when the restore starts."""
    topic, options = _setup(kafka, unique)
    warnings: list[tuple[str, dict[int, int]]] = []
    shown: list[int] = []  # what hedger_recovery_remaining shows when the warning is logged

    def on_slow(name: str, left: dict[int, int]) -> None:
        warnings.append((name, left))
        shown.append(store.remaining)

    store = ChangelogStore(topic, warn_after=0.0, on_slow=on_slow)
    assert store.remaining == 0
    asyncio.run(store.restore(options, [0, 1]))
    assert warnings == [(topic, {0: 6, 1: 6})]
    assert shown == [12]  # the offsets left over both partitions, then none
    assert store.data == AFTER_FIRST
    assert store.remaining == 0
