"""`python -m tests.integration.faulty_worker worker ...`: the real worker with a fault.

The health tests need a transaction that hangs, a table restore that does
not end, and a loop that fails, on the real broker, without test hooks in
the worker itself. This launcher wraps public methods of the transactional
runtime (`TxnLoop.commit_offsets`, `TxnLoop.process`,
`ChangelogStore.restore`) and then runs the ordinary `hedger` command line.
Each fault is switched on by an environment variable naming a marker file,
and acts only while (or once) that file exists:

* `FAULTY_STALL_TOPIC` + `FAULTY_STALL_FILE`: a transaction of a partition
  of that topic waits, before its offset joins the transaction, while the
  file exists (an asyncio sleep, so the rest of the worker, /ready
  included, goes on answering).
* `FAULTY_RECOVERY_FILE`: the end of each table restore waits while the
  file exists.
* `FAULTY_FAIL_FILE`: once the file exists, the loop's next batch raises
  outside any one event (the loop crashes).

When a wait starts, `<file>.held` is written with the `time.monotonic()` of
that moment (the clock is system-wide), so the test can time what follows.
Without these variables the worker runs unchanged.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

from streams.cli.main import main
from streams.live.state_store import ChangelogStore
from streams.live.txn_loop import TxnLoop


def _marker(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


async def _hold(marker: Path) -> None:
    """Wait while `marker` exists; note when the wait started in `<marker>.held`."""
    if not marker.exists():
        return
    marker.with_name(marker.name + ".held").write_text(repr(time.monotonic()))
    while marker.exists():
        await asyncio.sleep(0.05)


def install() -> None:
    """Wrap the runtime's methods for the faults the environment asks for."""
    stall_topic = os.environ.get("FAULTY_STALL_TOPIC")
    stall_file = _marker("FAULTY_STALL_FILE")
    recovery_file = _marker("FAULTY_RECOVERY_FILE")
    fail_file = _marker("FAULTY_FAIL_FILE")

    if stall_topic and stall_file:
        commit_offsets = TxnLoop.commit_offsets

        async def held_commit_offsets(self: TxnLoop, producer: Any, tp: Any, offset: int) -> None:
            if tp.topic == stall_topic:
                await _hold(stall_file)
            await commit_offsets(self, producer, tp, offset)

        TxnLoop.commit_offsets = held_commit_offsets  # type: ignore[method-assign]

    if recovery_file:
        restore = ChangelogStore.restore

        async def held_restore(self: ChangelogStore, options: Any, partitions: Any) -> int:
            read = await restore(self, options, partitions)
            await _hold(recovery_file)
            return read

        ChangelogStore.restore = held_restore  # type: ignore[method-assign]

    if fail_file:
        process = TxnLoop.process

        async def failing_process(self: TxnLoop, batches: Any) -> None:
            if fail_file.exists():
                raise RuntimeError("faulty_worker: failure outside any event")
            await process(self, batches)

        TxnLoop.process = failing_process  # type: ignore[method-assign]


if __name__ == "__main__":
    install()
    sys.exit(main())
