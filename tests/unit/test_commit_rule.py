"""The worker's processing order and commit rule (`Worker._in_order`, `Worker._next_commit`).

Each partition is processed once per process, in offset order, from its
committed offset (or the start of the log seen at assignment, with none);
a commit covers only that processed run. Faust's own rule commits over
unseen "gaps" and, with no commit yet, over any unacked head of the
partition (the loss of issue 9 in the 3-worker test); and after a restart
it hands over messages fetched before its seek to the committed offsets and
again after it, and drops some it fetched without seeking back (issue 11,
the closed loop with SIGKILLs: commits that followed its acks stopped for
good at the hole, and messages after a hole would have run first).
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from streams.live.app import Worker

TP = ("in", 4)
OTHER = ("in", 5)


def worker(committed: int | None = None, log_start: int | None = None) -> Any:
    consumer = SimpleNamespace(
        _acked=defaultdict(list),
        _acked_index=defaultdict(set),
        _committed_offset=defaultdict(lambda: None),
    )
    if committed is not None:
        consumer._committed_offset[TP] = committed
    starts = {} if log_start is None else {TP: log_start}
    w = SimpleNamespace(
        app=SimpleNamespace(consumer=consumer),
        log_starts=starts,
        next_offset={},
        reseek={},
    )
    w._start_of = lambda tp: Worker._start_of(w, tp)
    return w


def events(*offsets: int, tp: tuple[str, int] = TP) -> list[Any]:
    return [SimpleNamespace(message=SimpleNamespace(tp=tp, offset=o)) for o in offsets]


def run(w: Any, batch: list[Any]) -> list[int]:
    """Take a batch as `Worker._run` does (outputs delivered); the offsets processed."""
    todo, advanced = Worker._in_order(w, batch)
    w.next_offset.update(advanced)
    return [e.message.offset for e in todo]


def next_commit(w: Any) -> int | None:
    return Worker._next_commit(w, TP)


def test_no_commit_yet_the_run_must_start_at_the_log_start() -> None:
    w = worker(log_start=0)
    assert run(w, events(*range(65, 71))) == []  # offsets 0..64 never came: a hole
    assert w.reseek == {TP: 0}  # sought back to the log start
    assert next_commit(w) is None
    assert run(w, events(*range(0, 71))) == list(range(71))
    assert next_commit(w) == 71


def test_no_commit_and_no_known_start_processes_and_commits_nothing() -> None:
    w = worker()  # before Faust's seek to the committed offsets: they come again after it
    assert run(w, events(0, 1, 2)) == []
    assert next_commit(w) is None and w.reseek == {}


def test_the_run_starts_exactly_at_the_committed_offset() -> None:
    w = worker(committed=31)
    assert run(w, events(32, 33)) == []  # 31 itself did not come (Faust would commit 34)
    assert next_commit(w) is None
    assert run(w, events(31, 32, 33, 35)) == [31, 32, 33]  # 34 is missing: 35 waits
    assert w.reseek == {TP: 34}
    assert next_commit(w) == 34


def test_offsets_below_the_next_one_are_not_processed_again_in_a_process() -> None:
    w = worker(committed=10)
    assert run(w, events(7, 8, 10, 11)) == [10, 11]  # below the commit: done before
    assert run(w, events(10, 11, 12)) == [12]  # fetched again around a seek
    assert next_commit(w) == 13
    w.app.consumer._committed_offset[TP] = 13
    assert next_commit(w) is None  # nothing new since


def test_partitions_are_independent_and_faust_acks_do_not_pile_up() -> None:
    w = worker(committed=0)
    w.app.consumer._committed_offset[OTHER] = 5
    w.app.consumer._acked[TP].extend([0, 1, 2])
    w.app.consumer._acked_index[TP].update([0, 1, 2])
    batch = events(0, 1) + events(6, 7, tp=OTHER) + events(2)
    assert run(w, batch) == [0, 1, 2]  # OTHER has a hole at 5
    assert w.reseek == {OTHER: 5}
    assert next_commit(w) == 3
    assert w.app.consumer._acked[TP] == [] and w.app.consumer._acked_index[TP] == set()
    assert Worker._next_commit(w, OTHER) is None
