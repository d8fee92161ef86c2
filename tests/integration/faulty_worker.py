"""`python -m tests.integration.faulty_worker worker ...`: the real worker with a fault.

The health tests need an agent that stalls, a recovery that does not end,
and an agent that fails or ends, on the real broker, without test hooks in
the worker itself. This launcher wraps a few methods of
`streams.live.app.Worker` and then runs the ordinary `hedger` command line.
Each fault is switched on by an environment variable naming a marker file,
and acts only while (or once) that file exists:

* `FAULTY_STALL_AGENT` + `FAULTY_STALL_FILE`: that agent's batches wait,
  before their outputs are sent, while the file exists (an asyncio sleep,
  so the rest of the worker, /ready included, goes on answering).
* `FAULTY_RECOVERY_FILE`: the end of table recovery (`_on_recovered`)
  waits while the file exists.
* `FAULTY_FAIL_FILE`: once the file exists, the route agent's next batch
  raises outside any one event.
* `FAULTY_END_FILE`: once the file exists, the route agent ends (returns)
  after its next batch.

When a wait starts, `<file>.held` is written with the `time.monotonic()` of
that moment (the clock is system-wide), so the test can time what follows.
Without these variables the worker runs unchanged.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from streams.cli.main import main
from streams.live.app import Worker

_agent: ContextVar[str] = ContextVar("faulty_agent", default="")


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
    """Wrap the worker's methods for the faults the environment asks for."""
    stall_agent = os.environ.get("FAULTY_STALL_AGENT")
    stall_file = _marker("FAULTY_STALL_FILE")
    recovery_file = _marker("FAULTY_RECOVERY_FILE")
    fail_file = _marker("FAULTY_FAIL_FILE")
    end_file = _marker("FAULTY_END_FILE")

    if stall_agent and stall_file:
        deliver = Worker._deliver

        async def held_deliver(self: Worker, agent: str, outputs: Any) -> None:
            if agent == stall_agent:
                await _hold(stall_file)
            await deliver(self, agent, outputs)

        Worker._deliver = held_deliver  # type: ignore[method-assign]

    if recovery_file:
        on_recovered = Worker._on_recovered

        async def held_on_recovered(self: Worker) -> None:
            await _hold(recovery_file)
            await on_recovered(self)

        Worker._on_recovered = held_on_recovered  # type: ignore[method-assign]

    if fail_file:
        route_batch = Worker._route_batch

        def failing_route_batch(self: Worker, events: Any) -> Any:
            if fail_file.exists():
                raise RuntimeError("faulty_worker: failure outside any event")
            return route_batch(self, events)

        Worker._route_batch = failing_route_batch  # type: ignore[method-assign]

    if end_file:
        run, batches = Worker._run, Worker._batches

        async def named_run(self: Worker, agent: str, stream: Any, handle: Any) -> None:
            _agent.set(agent)  # the actor's own task: `_batches` below sees it
            await run(self, agent, stream, handle)

        def ending_batches(self: Worker, stream: Any) -> AsyncIterator[Any]:
            inner = batches(self, stream)
            if _agent.get() != "route":
                return inner

            async def until_marker() -> AsyncIterator[Any]:
                async for events in inner:
                    yield events
                    if end_file.exists():
                        return  # the agent's loop ends, and with it the agent

            return until_marker()

        Worker._run = named_run  # type: ignore[method-assign]
        Worker._batches = ending_batches  # type: ignore[method-assign]


if __name__ == "__main__":
    install()
    sys.exit(main())
