"""The worker's commit rule (`Worker._next_commit`), which replaces Faust's `_new_offset`.

A commit may only cover offsets whose every message was acked, counted from
the last commit, or from the start of the log for a partition with no commit:
Faust's own rule commits over unseen "gaps" and, with no commit yet, over any
unacked head of the partition (the loss of issue 9 in the 3-worker test).
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from streams.live.app import Worker

TP = ("in", 4)


def worker(committed: int | None = None, log_start: int | None = None) -> Any:
    consumer = SimpleNamespace(
        _acked=defaultdict(list),
        _acked_index=defaultdict(set),
        _committed_offset=defaultdict(lambda: None),
    )
    if committed is not None:
        consumer._committed_offset[TP] = committed
    starts = {} if log_start is None else {TP: log_start}
    return SimpleNamespace(app=SimpleNamespace(consumer=consumer), log_starts=starts)


def ack(w: Any, *offsets: int) -> None:
    for offset in offsets:
        w.app.consumer._acked[TP].append(offset)
        w.app.consumer._acked_index[TP].add(offset)


def next_commit(w: Any) -> int | None:
    return Worker._next_commit(w, TP)


def test_no_commit_yet_the_run_must_start_at_the_log_start() -> None:
    w = worker(log_start=0)
    ack(w, *range(65, 71))
    assert next_commit(w) is None  # offsets 0..64 were never acked
    ack(w, *range(0, 65))
    assert next_commit(w) == 71
    assert not w.app.consumer._acked[TP] and not w.app.consumer._acked_index[TP]


def test_no_commit_and_no_known_start_commits_nothing() -> None:
    w = worker()
    ack(w, 0, 1, 2)
    assert next_commit(w) is None


def test_the_run_starts_exactly_at_the_committed_offset() -> None:
    w = worker(committed=31)
    ack(w, 32, 33)
    assert next_commit(w) is None  # 31 itself is not acked (Faust would commit 34)
    ack(w, 31, 35)
    assert next_commit(w) == 34
    assert w.app.consumer._acked[TP] == [35]
    assert w.app.consumer._acked_index[TP] == {35}


def test_acks_below_the_committed_offset_are_dropped() -> None:
    w = worker(committed=10)
    ack(w, 7, 8, 10, 11)
    assert next_commit(w) == 12
    assert w.app.consumer._acked[TP] == [] and w.app.consumer._acked_index[TP] == set()
