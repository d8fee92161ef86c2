"""The worker's batching settings reach the transactional loop.

`--commit-interval` is how long a woken lane waits for more records before
its transaction, `--batch-wait` how long a poll waits, `--batch-size` the
records per poll: the loop the worker builds holds exactly those values.
Builds the worker without starting it (no broker needed).
"""

from __future__ import annotations

from streams.live.app import Worker
from streams.settings import WorkerSettings, load_config
from tests.factories import REPO


def test_commit_interval_batch_wait_and_size_reach_the_loop() -> None:
    settings = WorkerSettings(commit_interval=0.05, batch_wait=0.01, batch_size=123)
    worker = Worker(settings, load_config(REPO / "config" / "hedger.toml"))
    assert worker.loop.linger == 0.05
    assert worker.loop.poll_ms == 10
    assert worker.loop.max_records == 123


def test_by_default_a_lane_commits_as_soon_as_its_last_transaction_ends() -> None:
    worker = Worker(WorkerSettings(), load_config(REPO / "config" / "hedger.toml"))
    assert worker.loop.linger == 0
    assert worker.loop.poll_ms == 20
