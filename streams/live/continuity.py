"""Which input offsets the stages may see next, and which offset is safe to commit.

Owns: per assigned input partition, the next offset owed to the stages
(`expect`) and the end of the run of offsets whose outputs are durable
(`done`, what the worker commits). Pure bookkeeping: imports nothing from
Faust or Kafka, so it is tested with plain tuples.

Why it exists (workers killed and restarted while others run): Faust's fetch loop drops
a message it fetched while the flow was suspended for a rebalance, and a
batch fetched before a seek goes on being delivered after it; either way
its read offset moves past messages no stage has seen, and when the
re-fetched ones arrive they are dropped as already read. A stage would then
apply a later journal entry before an earlier one (orders differed from the
journal replay), or a commit would wait forever for an offset that never
comes. Here every batch is checked against the offsets owed: an event past a
hole is held back and the partition is sought back to the hole; an event
already handed to the stages in this assignment (or below the committed
offset, or of a partition not assigned here now) is not handed over.
Commits never pass `done`, whatever Faust acked.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import NamedTuple


class Admitted(NamedTuple):
    """A batch checked against the offsets owed to the stages."""

    keep: list[int]  # indexes of the events to hand to the stages, in batch order
    seeks: dict[Hashable, int]  # partitions with a hole: where to seek back to
    stale: int  # events not handed over (seen, below the commit, or not ours now)


class Continuity:
    """Offsets owed and offsets done, per input partition of this worker."""

    def __init__(self) -> None:
        self.expect: dict[Hashable, int] = {}
        self.done: dict[Hashable, int] = {}
        self.last_kept: dict[Hashable, float] = {}

    def reset(self, starts: Mapping[Hashable, int], now: float) -> None:
        """Start partitions (re)assigned to this worker at their committed offset."""
        for tp, offset in starts.items():
            self.expect[tp] = offset
            self.done[tp] = offset
            self.last_kept[tp] = now

    def forget(self, tps: Iterable[Hashable]) -> None:
        for tp in tps:
            self.expect.pop(tp, None)
            self.done.pop(tp, None)
            self.last_kept.pop(tp, None)

    def admit(self, batch: Sequence[tuple[Hashable, int]], now: float) -> Admitted:
        """Which events of a batch (partition, offset) the stages take, in order.

        A partition not tracked (no longer assigned to this worker, or before
        the seek of a new assignment) is not handed over: its owner starts
        from the committed offset, which never passes an unprocessed offset,
        and a stage here writing keys of a partition another worker owns
        would put stale writes in its changelog.
        """
        keep: list[int] = []
        seeks: dict[Hashable, int] = {}
        stale = 0
        for index, (tp, offset) in enumerate(batch):
            owed = self.expect.get(tp)
            if owed is None:
                stale += 1
            elif offset == owed:
                keep.append(index)
                self.expect[tp] = offset + 1
                self.last_kept[tp] = now
            elif offset < owed:
                stale += 1
            else:  # a hole before this event: fetch again from the hole
                seeks[tp] = owed
        return Admitted(keep, seeks, stale)

    def delivered(self, batch: Sequence[tuple[Hashable, int]]) -> None:
        """The outputs of these admitted events are durable: extend the runs done."""
        for tp, offset in batch:
            if self.done.get(tp) == offset:
                self.done[tp] = offset + 1

    def commit_point(self, tp: Hashable, committed: int | None) -> int | None:
        """The offset to commit for `tp`, or None when nothing new is done."""
        done = self.done.get(tp)
        if done is None or (committed is not None and done <= committed):
            return None
        return done

    def sought(self, tp: Hashable, now: float) -> None:
        self.last_kept[tp] = now

    def starved(
        self, ends: Mapping[Hashable, int], now: float, after: float
    ) -> dict[Hashable, int]:
        """Partitions with messages owed but none kept for `after` seconds: seek them.

        A hole at the very end of a partition is never followed by a later
        event that would reveal it; the end offset does.
        """
        return {
            tp: owed
            for tp, owed in self.expect.items()
            if ends.get(tp, owed) > owed and now - self.last_kept.get(tp, now) > after
        }
