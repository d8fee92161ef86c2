"""A stage's table: a dict in memory, backed by a compacted changelog topic
and, optionally, by a local RocksDB copy per changelog partition.

Owns: the key/value data of one stateful stage for the partitions this
worker owns, which partition each key belongs to, restoring a partition
from its changelog partition (read `read_committed`: only what committed
transactions wrote), dropping a partition that moved away, turning a
batch's writes into changelog records (a deletion is a tombstone, so
compaction removes the key), the count of records left to restore
(`remaining`) and the one warning of a slow restore. Nothing is written per
event beyond the keys the stage changes.

The local copy (`LocalStore`, the `rocksdb://` store) holds, per changelog
partition, a snapshot of the table and the changelog offset it is complete
up to, written together in one atomic RocksDB batch. A restart on the same
disk loads the snapshot and reads only the changelog's tail from that
offset. Why that is exact: the changelog is a sequence of whole values and
tombstones, so replaying its records from offset `c` onto any state that
holds, for every key, a value the key had in the committed log at or after
`c` gives the committed state. A snapshot is written only while no
transaction is open (`flush`, called under the loop's lock) or right after
a restore, from data that is all committed, with `c` the changelog's last
stable offset read at that moment. A snapshot that is missing, unreadable,
of another format, or whose offset lies outside the changelog's offsets is
wiped and the partition is rebuilt from the changelog's beginning.

Imports the standard library, aiokafka (public API) and rocksdict (only
when the local store is used).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, TopicPartition

_POLL_MS = 200
# Restore reads: large fetches, since a restore reads whole partitions.
_FETCH_BYTES = 16 * 1024 * 1024
# One table write: (partition, key, value or None for a deletion).
Write: TypeAlias = tuple[int, bytes, bytes | None]
# Called once when a restore outlasts its bound: (changelog, {partition: offsets left}).
SlowRestore: TypeAlias = Callable[[str, dict[int, int]], None]

# The local copy's layout: data keys are prefixed, so no table key (any
# bytes) can collide with the checkpoint key.
_DATA = b"data:"
_CHECKPOINT = b"checkpoint"
# Bump when the snapshot layout or the tables' rows (`streams.live.table_rows`)
# change: older snapshots are rebuilt from the changelog.
LOCAL_FORMAT = 2


class LocalStore:
    """RocksDB databases under `root`, one per changelog partition."""

    def __init__(self, root: Path, changelog: str) -> None:
        self.root = root / changelog
        self.changelog = changelog
        self._open: dict[int, Any] = {}

    def path(self, partition: int) -> Path:
        return self.root / str(partition)

    def _db(self, partition: int) -> Any:
        db = self._open.get(partition)
        if db is None:
            from rocksdict import Options, Rdict

            self.root.mkdir(parents=True, exist_ok=True)
            db = self._open[partition] = Rdict(str(self.path(partition)), Options(raw_mode=True))
        return db

    def checkpoint(self, partition: int) -> int | None:
        """The changelog offset the snapshot is complete up to; None: rebuild."""
        try:
            raw = self._db(partition).get(_CHECKPOINT)
            if raw is None:
                return None
            mark = json.loads(raw)
            if mark.get("format") != LOCAL_FORMAT or mark.get("changelog") != self.changelog:
                return None
            offset = mark["offset"]
            return offset if isinstance(offset, int) and offset >= 0 else None
        except Exception:  # an unreadable database or mark: rebuilt from the changelog
            return None

    def rows(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self._db(partition).items(from_key=_DATA):
            if not key.startswith(_DATA):
                break
            yield key[len(_DATA) :], value

    def write(
        self, partition: int, writes: Iterable[tuple[bytes, bytes | None]], offset: int
    ) -> None:
        """Apply writes and move the checkpoint to `offset`, atomically."""
        from rocksdict import WriteBatch

        batch = WriteBatch(raw_mode=True)
        for key, value in writes:
            if value is None:
                batch.delete(_DATA + key)
            else:
                batch.put(_DATA + key, value)
        mark = {"format": LOCAL_FORMAT, "changelog": self.changelog, "offset": offset}
        batch.put(_CHECKPOINT, json.dumps(mark).encode())
        self._db(partition).write(batch)

    def held(self) -> list[int]:
        """The partitions whose database is open (restored here and not released)."""
        return list(self._open)

    def wipe(self, partition: int) -> None:
        """Delete the partition's snapshot (it is rebuilt from the changelog)."""
        self.close([partition])
        shutil.rmtree(self.path(partition), ignore_errors=True)

    def close(self, partitions: Iterable[int] | None = None) -> None:
        for partition in list(self._open if partitions is None else partitions):
            db = self._open.pop(partition, None)
            if db is not None:
                db.close()


class ChangelogStore:
    """The table of one stage; `data` is what the stage's `BufferedTable` wraps."""

    def __init__(
        self,
        changelog: str,
        local: LocalStore | None = None,
        *,
        warn_after: float | None = None,
        on_slow: SlowRestore | None = None,
    ) -> None:
        self.changelog = changelog
        self.local = local
        self.data: dict[bytes, bytes] = {}
        self.partition_of: dict[bytes, int] = {}
        # Changelog offsets left to read by the restore under way (0: none);
        # markers and compacted-away offsets count until passed.
        self.remaining = 0
        self.restored_records = 0  # changelog records the last restore read
        self.warn_after, self.on_slow = warn_after, on_slow
        # Keys written since the local copy's last snapshot, per partition.
        self.dirty: dict[int, set[bytes]] = {}
        self._meta: AIOKafkaConsumer | None = None

    async def close(self) -> None:
        """Close the local copy and the offsets reader."""
        if self._meta is not None:
            await self._meta.stop()
            self._meta = None
        if self.local is not None:
            self.local.close()

    def records(self, writes: Iterable[Write]) -> list[Write]:
        """The changelog records (partition, key, value or None for a tombstone)
        of a batch's drained writes, which are already applied to `data`."""
        out = []
        track = self.local is not None
        for partition, key, value in writes:
            if value is None:
                self.partition_of.pop(key, None)
            else:
                self.partition_of[key] = partition
            if track:
                self.dirty.setdefault(partition, set()).add(key)
            out.append((partition, key, value))
        return out

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget the keys of partitions this worker no longer owns (or reloads)."""
        gone = set(partitions)
        if not gone:
            return
        if set(self.partition_of.values()) <= gone:
            self.data.clear()  # every partition held goes: a clear is much faster
            self.partition_of.clear()
        else:
            for key in [k for k, p in self.partition_of.items() if p in gone]:
                del self.partition_of[key]
                self.data.pop(key, None)
        for partition in gone:
            self.dirty.pop(partition, None)

    async def flush(
        self, client_options: dict[str, Any], partitions: Iterable[int] | None = None
    ) -> int:
        """Snapshot the keys written since the last one into the local copy.

        Call only while no transaction is open (the loop's lock held, the
        loop not crashed): `data` is then exactly the committed state. Every
        held partition's checkpoint moves to the changelog's last stable
        offset, those without new keys too: a commit's records become stable
        only once the broker has written its markers, so a snapshot taken
        right after a commit may have a checkpoint before them (still exact:
        they are read again), and the next flush moves it past them.
        Returns the number of keys written.
        """
        local = self.local
        if local is None:
            return 0
        held = set(self.dirty) | set(local.held())
        wanted = sorted(held if partitions is None else set(partitions) & held)
        if not wanted:
            return 0
        tps = [TopicPartition(self.changelog, p) for p in wanted]
        if self._meta is None:  # kept: a flush runs while the loop waits
            self._meta = AIOKafkaConsumer(
                **client_options, enable_auto_commit=False, isolation_level="read_committed"
            )
            await self._meta.start()
        # the last stable offsets: what read_committed readers see up to
        ends = await self._meta.end_offsets(tps)
        written = 0
        for tp in tps:
            keys = self.dirty.pop(tp.partition, set())
            local.write(tp.partition, ((k, self.data.get(k)) for k in keys), ends[tp])
            written += len(keys)
        return written

    def release(self, partitions: Iterable[int]) -> None:
        """Partitions moved away: forget their keys and close their local copy."""
        wanted = set(partitions)
        self.drop(wanted)
        if self.local is not None:
            self.local.close(wanted)

    async def restore(self, client_options: dict[str, Any], partitions: Iterable[int]) -> int:
        """Replace these partitions' keys by what their changelog committed; return records read."""
        wanted = sorted(set(partitions))
        self.drop(wanted)
        if not wanted:
            return 0
        tps = [TopicPartition(self.changelog, p) for p in wanted]
        consumer = AIOKafkaConsumer(
            **client_options,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=_FETCH_BYTES,
            fetch_max_bytes=4 * _FETCH_BYTES,
        )
        read = 0
        data, partition_of, local = self.data, self.partition_of, self.local
        await consumer.start()
        try:
            consumer.assign(tps)
            begins = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
            starts = {tp: self._load_local(tp, begins[tp], ends[tp]) for tp in tps}
            for tp, start in starts.items():
                consumer.seek(tp, start)
            left = {tp: ends[tp] - starts[tp] for tp in tps}
            pending = {tp for tp in tps if left[tp] > 0}
            self.remaining = sum(left.values())
            began, warned = time.monotonic(), False
            tails: dict[int, dict[bytes, bytes | None]] = {tp.partition: {} for tp in tps}
            while pending:
                if not warned and self.on_slow is not None and self.warn_after is not None:
                    if time.monotonic() - began > self.warn_after:
                        warned = True
                        self.on_slow(self.changelog, {tp.partition: left[tp] for tp in pending})
                batches = await consumer.getmany(*pending, timeout_ms=_POLL_MS)
                for tp, records in batches.items():
                    partition = tp.partition
                    tail = tails[partition]
                    for record in records:
                        key = record.key
                        if key is None:
                            continue
                        value = record.value
                        if value is None:
                            data.pop(key, None)
                            partition_of.pop(key, None)
                        else:
                            data[key] = value
                            partition_of[key] = partition
                        tail[key] = value
                    read += len(records)
                for tp in list(pending):
                    # past the last stable offset: control markers are not records
                    position = await consumer.position(tp)
                    left[tp] = max(ends[tp] - position, 0)
                    if position >= ends[tp]:
                        pending.discard(tp)
                self.remaining = sum(left.values())
                await asyncio.sleep(0)
            if local is not None:  # the tail joins the snapshot: a next restart reads past it
                for tp in tps:
                    local.write(tp.partition, tails[tp.partition].items(), ends[tp])
        finally:
            self.remaining = 0
            await consumer.stop()
        self.restored_records = read
        return read

    def _load_local(self, tp: TopicPartition, begin: int, end: int) -> int:
        """Load the partition's snapshot; the changelog offset to read from."""
        local = self.local
        if local is None:
            return begin
        partition = tp.partition
        checkpoint = local.checkpoint(partition)
        if checkpoint is None or not begin <= checkpoint <= end:
            local.wipe(partition)  # unknown, or not of this changelog: rebuilt
            return begin
        data, partition_of = self.data, self.partition_of
        try:
            for key, value in local.rows(partition):
                data[key] = value
                partition_of[key] = partition
        except Exception:  # a snapshot that does not read: rebuilt from the changelog
            self.drop([partition])
            local.wipe(partition)
            return begin
        return checkpoint
