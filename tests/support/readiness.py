"""A background watch on a worker's /ready endpoint.

May import the worker harness.
"""

from __future__ import annotations

import threading
import time

from tests.integration.worker_harness import WorkerProcess


class ReadyWatch:
    """Polls /ready in the background and counts the answers that were not 200."""

    def __init__(self, worker: WorkerProcess) -> None:
        self.worker, self.polls, self.not_ready = worker, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.polls += 1
            if self.worker.http_status("/ready") != 200:
                self.not_ready += 1
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
