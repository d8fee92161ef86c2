"""Offsets owed to the stages, and the commit rule (`Worker._next_commit`).

Faust's fetch loop can skip messages around a rebalance or a seek, and its
own commit rule commits over unseen offsets (seen with several workers killed
and restarted). The worker hands the stages each partition's offsets in order from
the committed offset, holds back events past a hole while the partition is
fetched again, and commits only the run whose outputs are durable.
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from streams.live.app import Worker
from streams.live.continuity import Continuity

A = ("journal", 4)
B = ("journal", 5)


def started(**starts: int) -> Continuity:
    c = Continuity()
    c.reset({{"a": A, "b": B}[name]: offset for name, offset in starts.items()}, now=0.0)
    return c


def test_events_past_a_hole_are_held_back_and_the_partition_sought_to_the_hole() -> None:
    c = started(a=0)
    admitted = c.admit([(A, 65), (A, 66)], now=1.0)
    assert admitted.keep == [] and admitted.seeks == {A: 0}
    assert c.commit_point(A, None) == 0  # nothing past the start is done
    admitted = c.admit([(A, 0), (A, 1)], now=2.0)
    assert admitted.keep == [0, 1] and admitted.seeks == {}
    c.delivered([(A, 0), (A, 1)])
    assert c.commit_point(A, None) == 2


def test_a_hole_in_one_partition_does_not_hold_back_another() -> None:
    c = started(a=0, b=0)
    admitted = c.admit([(A, 0), (B, 0), (A, 2), (B, 1), (A, 3)], now=1.0)
    assert admitted.keep == [0, 1, 3]
    assert admitted.seeks == {A: 1}
    assert c.expect == {A: 1, B: 2}


def test_offsets_already_handed_over_or_below_the_commit_are_not_handed_again() -> None:
    c = started(a=31)
    admitted = c.admit([(A, 30), (A, 31), (A, 32), (A, 31)], now=1.0)
    assert admitted.keep == [1, 2] and admitted.stale == 2 and admitted.seeks == {}


def test_only_durable_outputs_move_the_commit() -> None:
    c = started(a=31)
    c.admit([(A, 31), (A, 32)], now=1.0)
    assert c.commit_point(A, 31) is None  # handed to the stages, outputs not yet durable
    c.delivered([(A, 31), (A, 32)])
    assert c.commit_point(A, 31) == 33
    assert c.commit_point(A, 33) is None  # already committed


def test_a_partition_not_assigned_here_now_is_not_handed_over_nor_committed() -> None:
    c = started(a=0)
    admitted = c.admit([(B, 7), (A, 0), (B, 9)], now=1.0)
    assert admitted.keep == [1] and admitted.seeks == {} and admitted.stale == 2
    c.delivered([(A, 0)])
    assert c.commit_point(B, None) is None and c.commit_point(A, None) == 1


def test_a_reassigned_partition_starts_again_at_its_committed_offset() -> None:
    c = started(a=0)
    c.admit([(A, 0), (A, 1), (A, 2)], now=1.0)
    c.delivered([(A, 0), (A, 1), (A, 2)])
    c.reset({A: 1}, now=2.0)  # the commit was 1 when the partition came back
    assert c.commit_point(A, 1) is None
    admitted = c.admit([(A, 2), (A, 1)], now=3.0)
    assert admitted.keep == [1] and admitted.seeks == {A: 1}
    c.forget([A])
    assert A not in c.expect and c.commit_point(A, None) is None


def test_a_hole_at_the_end_is_fetched_again_after_the_wait() -> None:
    c = started(a=5)
    ends = {A: 6}
    assert c.starved(ends, now=9.0, after=10.0) == {}
    assert c.starved(ends, now=11.0, after=10.0) == {A: 5}
    assert c.starved({A: 5}, now=11.0, after=10.0) == {}  # nothing owed
    c.sought(A, now=11.0)
    assert c.starved(ends, now=20.0, after=10.0) == {}


def worker(continuity: Continuity, committed: int | None) -> Any:
    consumer = SimpleNamespace(
        _acked=defaultdict(list),
        _acked_index=defaultdict(set),
        _committed_offset=defaultdict(lambda: None),
    )
    consumer._committed_offset[A] = committed
    return SimpleNamespace(app=SimpleNamespace(consumer=consumer), continuity=continuity)


def test_faust_acks_do_not_move_the_commit() -> None:
    c = started(a=10)
    w = worker(c, committed=10)
    w.app.consumer._acked[A].extend([10, 11, 12])  # taken from the stream, not processed
    w.app.consumer._acked_index[A].update([10, 11, 12])
    assert Worker._next_commit(w, A) is None
    assert not w.app.consumer._acked[A] and not w.app.consumer._acked_index[A]
    c.admit([(A, 10), (A, 11)], now=1.0)
    c.delivered([(A, 10), (A, 11)])
    assert Worker._next_commit(w, A) == 12
