"""What /ready and `hedger_ready` say, and the log lines of a broker outage.

Owns: the broker watch of the worker's health checks (the rest of /ready is
in `streams.live.app`: tables restored, loop alive, no partition with lag
and no commit for `stall_timeout` seconds) and `LibraryLogGate`, the logging filter that
keeps the libraries' lines bounded: while the broker is unreachable their
warnings and errors are counted instead of written (one WARNING when the
connection is lost, a summary every `summary_every` seconds, one INFO when
it is back), and otherwise one line per message template per
`summary_every` seconds. Imports the standard library and
`streams.observe.logs`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from streams.observe.logs import get_logger

LIBRARIES = ("aiokafka", "kafka", "faust", "mode")


class LibraryLogGate(logging.Filter):
    """Bounds the lines Faust, mode and aiokafka write (a handler filter)."""

    def __init__(self, summary_every: float = 10.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.summary_every, self.clock = summary_every, clock
        self.outage = False
        self.suppressed = 0
        self._last: dict[tuple[str, Any], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(LIBRARIES):
            return True
        if self.outage:
            self.suppressed += 1
            return False
        key = (record.name, record.msg)
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.summary_every:
            self.suppressed += 1
            return False
        if len(self._last) > 1_000:  # templates are few; never grow without bound
            self._last.clear()
        self._last[key] = now
        return True


class BrokerWatch:
    """Tracks whether the broker answers, and logs the outage in bounded lines."""

    def __init__(self, gate: LibraryLogGate, summary_every: float = 10.0) -> None:
        self.gate, self.summary_every = gate, summary_every
        self.reachable = True
        self.since = time.monotonic()
        self._last_summary = 0.0
        self.log = get_logger("hedger.worker")

    def update(self, reachable: bool, error: str | None = None) -> None:
        now = time.monotonic()
        if reachable and not self.reachable:
            self.log.info(
                "kafka.connection_restored",
                down_seconds=round(now - self.since, 1),
                library_lines_suppressed=self.gate.suppressed,
            )
            self.gate.outage, self.gate.suppressed = False, 0
            self.reachable, self.since = True, now
        elif not reachable and self.reachable:
            self.log.warning("kafka.connection_lost", error=error)
            self.gate.outage = True
            self.reachable, self.since, self._last_summary = False, now, now
        elif not reachable and now - self._last_summary >= self.summary_every:
            self._last_summary = now
            self.log.warning(
                "kafka.still_unreachable",
                down_seconds=round(now - self.since, 1),
                library_lines_suppressed=self.gate.suppressed,
                error=error,
            )
