"""Health that tells the truth, on the real broker.

/ready answers 503 and `hedger_ready` is 0 while a partition has lag and
no commit (a transaction that hangs) and before the tables are restored,
and both come back by themselves; a loop that fails outside an event, or
whose producer is fenced, makes the worker exit with code 4 and one ERROR
`worker.loop_failed` line. (The broker outage is in test_volume.py.)

The faults come from `tests/integration/faulty_worker.py`, a launcher that
wraps public methods of the runtime and runs the ordinary command line;
each fault acts while a marker file exists. Each test prints its timings.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from streams.kafka_io import ensure_topics
from streams.live.app import EXIT_LOOP_FAILED
from tests.integration.worker_harness import WorkerProcess, processed_lag, wait_until_idle
from tests.kafka_broker import LocalKafka
from tests.support.bookings import booking, publish_events
from tests.support.gauges import four_breaching_issuers, gauges
from tests.support.topics import orders

pytestmark = pytest.mark.kafka
LAUNCHER = "tests.integration.faulty_worker"
STALL_TIMEOUT = 3.0
Launch = Callable[..., WorkerProcess]


@pytest.fixture
def launch(kafka: LocalKafka, unique: str, tmp_path: Path) -> Iterator[Launch]:
    """Make a one-partition worker run by the faulty launcher (killed at the end)."""
    made: list[WorkerProcess] = []

    def make(**env: str) -> WorkerProcess:
        worker = WorkerProcess(
            kafka.bootstrap,
            unique,
            tmp_path,
            partitions=1,
            extra_env={"HEDGER_STALL_TIMEOUT": str(STALL_TIMEOUT), **env},
            module=LAUNCHER,
        )
        asyncio.run(ensure_topics(kafka.bootstrap, [worker.topics["loan_bookings"]], 1))
        made.append(worker)
        return worker

    yield make
    for worker in made:
        if worker.process is not None and worker.process.poll() is None:
            worker.kill()


def hedger_ready(worker: WorkerProcess) -> float | None:
    for line in worker.scrape().splitlines():
        if line.startswith("hedger_ready "):
            return float(line.split()[1])
    return None


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `check` every 50 ms; the monotonic time it first held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout}s")


def held_since(marker: Path, timeout: float = 60.0) -> float:
    """When the launcher began to wait on `marker` (its monotonic clock is ours)."""
    held = marker.with_name(marker.name + ".held")
    wait_until(held.exists, timeout, f"no wait on {marker.name}")
    wait_until(lambda: bool(held.read_text()), 5, f"{held.name} empty")
    return float(held.read_text())


def uncommitted(worker: WorkerProcess, topic: str) -> float:
    return sum(
        float(line.rpartition(" ")[2])
        for line in worker.scrape().splitlines()
        if line.startswith("hedger_uncommitted_messages{") and f'topic="{topic}"' in line
    )


def test_a_stalled_partition_turns_ready_off_until_it_moves_again(
    launch: Launch, tmp_path: Path
) -> None:
    marker = tmp_path / "stall-journal"
    worker = launch(FAULTY_STALL_FILE=str(marker))
    worker.env["FAULTY_STALL_TOPIC"] = worker.topics["journal"]
    worker.start()
    marker.touch()
    # CRWV's limit is 750m: a 900m booking breaches it and orders
    publish_events(worker, tmp_path, [booking(1, "CRWV", "900000000")])
    held = held_since(marker)  # the journal entry's transaction is open and waits

    # Ready while the stall is younger than the timeout, then 503 and 0.
    not_ready = wait_until(
        lambda: worker.http_status("/ready") == 503, STALL_TIMEOUT + 10, "/ready never 503"
    )
    stall_to_503 = not_ready - held
    assert STALL_TIMEOUT - 0.2 <= stall_to_503 < STALL_TIMEOUT + 3, stall_to_503
    assert hedger_ready(worker) == 0.0
    # The held entry and the marker of the transaction that wrote it: offsets, not records.
    assert processed_lag(worker, [worker.topics["journal"]]) == 2
    assert uncommitted(worker, worker.topics["journal"]) == 1  # processed, not committed
    # It stays so while the agent is held; the process is alive all along.
    until = time.monotonic() + 3
    while time.monotonic() < until:
        assert worker.http_status("/ready") == 503
        assert worker.http_status("/health") == 200
        time.sleep(0.2)
    assert hedger_ready(worker) == 0.0

    released = time.monotonic()
    marker.unlink()
    ready = wait_until(lambda: worker.http_status("/ready") == 200, 10, "/ready stayed 503")
    assert hedger_ready(worker) == 1.0
    wait_until_idle(worker)
    print(
        f"stalled agent: 503 {stall_to_503:.2f}s after the stall began "
        f"(timeout {STALL_TIMEOUT}s), 200 {ready - released:.2f}s after the release"
    )
    assert ready - released < 5
    assert {o["trigger_event_id"] for o in orders(worker, tmp_path)} == {"ops-1"}
    assert worker.process is not None and worker.process.poll() is None
    assert worker.starts == 1
    assert worker.stop() == 0


def test_not_ready_before_recovery_completes(launch: Launch, tmp_path: Path) -> None:
    marker = tmp_path / "recovery"
    worker = launch(FAULTY_RECOVERY_FILE=str(marker))
    worker.start()  # no marker yet: recovery completes at once
    before = four_breaching_issuers(worker, tmp_path)
    assert sum(1 for name in before if name.startswith("hedger_issuer_exposure_base")) == 4
    assert worker.stop() == 0

    marker.touch()
    started = time.monotonic()
    worker.start(wait=False)
    assert worker.process is not None
    pid = worker.process.pid
    held = held_since(marker)  # the tables are read; the end of recovery waits
    polls = 0
    until = time.monotonic() + 5
    while time.monotonic() < until:
        assert worker.http_status("/health") == 200
        assert worker.http_status("/ready") == 503
        assert hedger_ready(worker) == 0.0
        polls += 1
        time.sleep(0.2)
    released = time.monotonic()
    marker.unlink()
    ready = wait_until(lambda: worker.http_status("/ready") == 200, 10, "/ready stayed 503")
    assert hedger_ready(worker) == 1.0
    print(
        f"recovery held: wait began {held - started:.2f}s after the start, held "
        f"{released - held:.2f}s ({polls} polls all 503), 200 {ready - released:.2f}s "
        f"after the release"
    )
    assert ready - released < 5
    assert worker.process.pid == pid and worker.process.poll() is None  # no restart
    after = gauges(worker.scrape())  # the books were rebuilt from the recovered tables
    exposures = {k: v for k, v in before.items() if k.startswith("hedger_issuer_exposure")}
    assert {k: v for k, v in after.items() if k in exposures} == exposures
    assert after["hedger_open_orders"] == before["hedger_open_orders"] > 0
    assert worker.stop() == 0


def test_a_loop_that_fails_outside_an_event_ends_the_worker_with_code_4(
    launch: Launch, tmp_path: Path
) -> None:
    marker = tmp_path / "fault"
    worker = launch(FAULTY_FAIL_FILE=str(marker))
    worker.start()
    marker.touch()
    published = time.monotonic()
    publish_events(worker, tmp_path, [booking(1, "CRWV", "900000000")])
    assert worker.process is not None
    code = worker.process.wait(timeout=30)
    exited = time.monotonic() - published
    worker.process = None
    assert code == EXIT_LOOP_FAILED == 4
    assert_one_failure_line(worker, "RuntimeError('faulty_worker: failure outside any event')")
    # Restarted (as a supervisor would) without the fault, it takes the input again.
    marker.unlink()
    worker.start()
    wait_until_idle(worker)
    print(f"failed loop: exit code {code} {exited:.2f}s after the booking was published")
    assert {o["trigger_event_id"] for o in orders(worker, tmp_path)} == {"ops-1"}
    assert worker.stop() == 0


def test_a_fenced_worker_ends_with_code_4_and_its_successor_resumes(
    launch: Launch, tmp_path: Path
) -> None:
    worker = launch()
    worker.start()
    bookings = worker.topics["loan_bookings"]
    # Another producer with the transactional id of loan-bookings partition 0
    # (a zombie's successor): its init_transactions fences the worker's producer.
    asyncio.run(fence(worker.bootstrap, f"{worker.app_id}-{bookings}-0"))
    published = time.monotonic()
    publish_events(worker, tmp_path, [booking(1, "CRWV", "900000000")])
    assert worker.process is not None
    code = worker.process.wait(timeout=60)
    exited = time.monotonic() - published
    worker.process = None
    assert code == EXIT_LOOP_FAILED == 4
    # aiokafka refuses the abort of a fenced producer's transaction: the
    # loop counts it as fenced; the error is whatever aiokafka raised.
    assert_one_failure_line(worker, "", fenced=1)
    worker.start()
    wait_until_idle(worker)
    print(f"fenced: exit code {code} {exited:.2f}s after the booking was published")
    # The aborted transaction left nothing behind: one order, once.
    assert [o["trigger_event_id"] for o in orders(worker, tmp_path)] == ["ops-1"]
    assert worker.stop() == 0


async def fence(bootstrap: str, transactional_id: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=transactional_id)
    await producer.start()  # init_transactions: bumps the epoch
    await producer.stop()


def assert_one_failure_line(worker: WorkerProcess, error: str, fenced: int = 0) -> None:
    """One ERROR line of the worker names the failure; no traceback is written."""
    lines = worker.log_lines()
    failed = [x for x in lines if x.get("event") == "worker.loop_failed"]
    assert len(failed) == 1, failed
    line = failed[0]
    assert (line["level"], line["logger"], line["exit_code"]) == ("error", "hedger.worker", 4)
    assert error in line["error"], line
    assert line["fenced"] == fenced, line
    ours = [x for x in lines if x.get("level") == "error" and x.get("logger") == "hedger.worker"]
    assert ours == [line]
    assert "Traceback" not in worker.log_text()
    assert [x for x in lines if x.get("level") == "critical"] == []
