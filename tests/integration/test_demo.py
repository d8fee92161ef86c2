"""`hedger demo` starts the whole loop and stops it cleanly, in a bounded run."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from streams.cli.common import free_port
from tests.factories import REPO

pytestmark = pytest.mark.kafka


def test_demo_runs_the_loop_and_stops_cleanly() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams",
            "demo",
            "--duration",
            "30",
            "--rate",
            "20",
            "--metrics-port",
            str(free_port()),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "worker ready" in output
    assert "demo stopped: worker and Kafka are down." in output
    # the last status line: bookings went in, orders came out, the venue answered
    status = re.findall(
        r"published (\d+)\s+processed (\d+).*orders (\d+)\s+execution reports (\d+)", output
    )
    assert status, output[-3000:]
    published, processed, orders, reports = (int(x) for x in status[-1])
    assert published > 100 and processed >= published
    assert orders > 0 and reports > 0
    for issuer in ("MSFT", "CRWV", "NBIS"):
        assert issuer in output
    assert "HALTED" in output  # NBIS is halted by the configuration
    # nothing left running: the broker of the demo is stopped
    status_cmd = subprocess.run(
        [
            str(REPO / "scripts" / "kafka-local"),
            "status",
            "--dir",
            str(REPO / "build" / "demo-kafka"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert status_cmd.returncode == 1, status_cmd.stdout
