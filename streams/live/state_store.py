"""A stage's table: a dict in memory, backed by a compacted changelog topic.

Owns: the key/value data of one stateful stage for the partitions this
worker owns, which partition each key belongs to, restoring a partition
from its changelog partition (read `read_committed`: only what committed
transactions wrote), dropping a partition that moved away, and turning a
batch's writes into changelog records (a deletion is a tombstone, so
compaction removes the key). Nothing is written per event beyond the keys
the stage changes. Imports the standard library, aiokafka (public API) and
`streams.live.stages` (`Output`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, TopicPartition

_POLL_MS = 200
# One table write: (partition, key, value or None for a deletion).
Write: TypeAlias = tuple[int, bytes, bytes | None]


class ChangelogStore:
    """The table of one stage; `data` is what the stage's `BufferedTable` wraps."""

    def __init__(self, changelog: str) -> None:
        self.changelog = changelog
        self.data: dict[bytes, bytes] = {}
        self.partition_of: dict[bytes, int] = {}
        # Changelog offsets left to read by the restore in progress (0: none);
        # markers and compacted-away offsets count until passed.
        self.remaining = 0

    def records(self, writes: Iterable[Write]) -> list[Write]:
        """The changelog records (partition, key, value or None for a tombstone)
        of a batch's drained writes, which are already applied to `data`."""
        out = []
        for partition, key, value in writes:
            if value is None:
                self.partition_of.pop(key, None)
            else:
                self.partition_of[key] = partition
            out.append((partition, key, value))
        return out

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget the keys of partitions this worker no longer owns (or reloads)."""
        gone = set(partitions)
        for key in [k for k, p in self.partition_of.items() if p in gone]:
            del self.partition_of[key]
            self.data.pop(key, None)

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
        )
        read = 0
        await consumer.start()
        try:
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            pending = {tp for tp in tps if ends[tp] > 0}
            self.remaining = sum(ends.values())
            while pending:
                batches = await consumer.getmany(*pending, timeout_ms=_POLL_MS)
                for tp, records in batches.items():
                    for record in records:
                        read += 1
                        key = record.key
                        if key is None:
                            continue
                        if record.value is None:
                            self.data.pop(key, None)
                            self.partition_of.pop(key, None)
                        else:
                            self.data[key] = record.value
                            self.partition_of[key] = tp.partition
                for tp in list(pending):
                    # past the last stable offset: control markers are not records
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
                self.remaining = sum([ends[tp] - await consumer.position(tp) for tp in pending])
                await asyncio.sleep(0)
        finally:
            self.remaining = 0
            await consumer.stop()
        return read
