"""`hedger worker` on a fresh machine: it creates its data directory, parents included,
and a data directory it cannot create or write is one error line and exit code 2.

The worker runs in an empty working directory (no `build/`, as in a fresh clone)
against the session's broker, which the test harness started, not the worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import REPO
from tests.integration.worker_harness import WorkerProcess
from tests.kafka_broker import LocalKafka
from tests.support.cli import hedger

pytestmark = pytest.mark.kafka


def test_a_data_directory_whose_parents_do_not_exist_is_created(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    clone.mkdir()
    data_dir = Path("state") / "new" / "worker-data"  # relative to the worker's cwd
    worker = WorkerProcess(
        kafka.bootstrap, unique, tmp_path, partitions=1, cwd=clone, data_dir=data_dir
    )
    worker.start()  # returns once /ready answers 200
    try:
        assert worker.http_status("/ready") == 200
        assert (clone / data_dir).is_dir()
    finally:
        assert worker.stop() == 0  # SIGTERM: a clean stop


@pytest.mark.parametrize(
    ("data_dir", "reason"),
    [
        ("occupied/worker-data", "a part of its path is a file, not a directory"),
        ("occupied", "it is a file, not a directory"),
    ],
)
def test_a_data_directory_that_cannot_be_created_is_one_line_and_exit_2(
    kafka: LocalKafka, tmp_path: Path, data_dir: str, reason: str
) -> None:
    # A path under a regular file: no directory can be made there, even by root
    # (the tests may run as root, for whom permission bits do not stop mkdir).
    (tmp_path / "occupied").write_text("a regular file\n")
    proc = hedger(
        "worker",
        "--config",
        str(REPO / "config" / "hedger.toml"),
        "--bootstrap",
        kafka.bootstrap,
        "--data-dir",
        data_dir,
        cwd=tmp_path,
        timeout=60,
        inherit_settings=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (
        f"error: cannot use the data directory {data_dir!r}: {reason}"
        " (HEDGER_DATA_DIR, --data-dir)\n"
    )
    assert proc.stdout == ""
    assert (tmp_path / "occupied").read_text() == "a regular file\n"
