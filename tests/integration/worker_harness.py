"""Run the real `hedger worker` as a subprocess against the local broker.

`WorkerProcess` starts the daemon with its own app id and topic names (so
tests never share state), waits until it is ready, and stops it with
SIGTERM (graceful) or SIGKILL (a crash). `wait_until_idle` polls the
consumer group until every stage has committed up to the end of its input
(control included): with transactions, committed offsets are the only
record of progress.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from streams.cli.common import free_port
from streams.kafka_io import committed_lag, lag_by_partition
from streams.live.topology import hedger_topology
from streams.settings import TopicNames
from tests.factories import REPO

# What Faust's start-up spinner ends with (backspaces, cursor-show): see log_lines.
SPINNER_END = re.compile(r"^\x08*\x1b\[\?25h")


class WorkerProcess:
    """One `hedger worker` subprocess with unique topics and app id."""

    def __init__(
        self,
        bootstrap: str,
        prefix: str,
        workdir: Path,
        *,
        partitions: int = 4,
        config: Path | None = None,
        extra_env: dict[str, str] | None = None,
        module: str = "streams",
        cwd: Path = REPO,
        data_dir: Path | None = None,
    ) -> None:
        """`module` is run with `python -m` (a launcher such as `faulty_worker`) in `cwd`;
        `data_dir` (relative to `cwd`) defaults to `workdir/data`."""
        self.bootstrap, self.prefix, self.workdir = bootstrap, prefix, workdir
        self.cwd = cwd
        self.data_dir = data_dir or workdir / "data"
        self.module = module
        self.partitions = partitions
        self.config = config or (REPO / "config" / "hedger.toml")
        self.topics = TopicNames.prefixed(prefix).model_dump()
        self.app_id = f"{prefix}-hedger"
        self.env = {**os.environ, **(extra_env or {})}
        for field, name in self.topics.items():
            self.env[f"HEDGER_TOPIC_{field.upper()}"] = name
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.metrics_port = free_port()
        # What the worker's consumer group reads, as its declared topology
        # says (cds-quotes only when the configuration has [pricing]).
        pricing = "[pricing]" in self.config.read_text()
        names = TopicNames(**self.topics)
        topology = hedger_topology(self.app_id, partitions, names, pricing=pricing)
        self.input_topics = list(topology.input_topics)

    def start(self, timeout: float = 90.0, wait: bool = True) -> WorkerProcess:
        if self.starts == 0:
            atexit.register(self._kill_if_running)  # never leave a worker behind
        self.starts += 1
        log = (self.workdir / f"worker-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                self.module,
                "worker",
                "--config",
                str(self.config),
                "--bootstrap",
                self.bootstrap,
                "--app-id",
                self.app_id,
                "--partitions",
                str(self.partitions),
                "--data-dir",
                str(self.data_dir),
                "--log-level",
                "info",
                "--log-format",
                "json",
                "--metrics-port",
                str(self.metrics_port),
            ],
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if not wait:
            return self
        return self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 90.0) -> WorkerProcess:
        """Wait until /ready answers 200 (raises if the worker exits first)."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        path = self.workdir / f"worker-{self.starts}.log"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {path.read_text()[-3000:]}")
            if self.http_status("/ready") == 200:
                return self
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready after {timeout}s: {path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout)
        self.process = None
        return code

    def _kill_if_running(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def http_status(self, path: str) -> int | None:
        try:
            with urllib.request.urlopen(self.metrics_url + path, timeout=2) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return None

    def scrape(self) -> str:
        with urllib.request.urlopen(self.metrics_url + "/metrics", timeout=5) as response:
            return str(response.read().decode())

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines of every start of this worker.

        Once started, Faust's spinner writes backspaces and a cursor-show
        escape to stdout with no newline; stdout and stderr share the log
        file here, so they can prefix the next log line.
        """
        lines = (SPINNER_END.sub("", x) for x in self.log_text().splitlines())
        return [json.loads(x) for x in lines if x.startswith("{")]

    def log_text(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.workdir.glob("worker-*.log"))
        )


def start_paper_venue(
    worker: WorkerProcess, seed: int, fill_ratio: str, latency_ms: int, *extra: str
) -> subprocess.Popen[bytes]:
    """`hedger paper-venue` on the worker's orders and executions topics (stdout+stderr piped)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streams",
            "paper-venue",
            *extra,
            "--seed",
            str(seed),
            "--fill-ratio",
            fill_ratio,
            "--latency-ms",
            str(latency_ms),
            "--orders-topic",
            worker.topics["orders"],
            "--executions-topic",
            worker.topics["cds_executions"],
        ],
        cwd=REPO,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_until_idle(worker: WorkerProcess, timeout: float = 120.0, settle: float = 1.0) -> None:
    """Wait until the worker has committed every stage's input up to its end."""
    topics = worker.input_topics
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if asyncio.run(committed_lag(worker.bootstrap, worker.app_id, topics)) == 0:
            time.sleep(settle)  # outputs of the last commit are flushed before it
            if asyncio.run(committed_lag(worker.bootstrap, worker.app_id, topics)) == 0:
                return
        time.sleep(0.5)
    lags = asyncio.run(lag_by_partition(worker.bootstrap, worker.app_id, topics))
    raise TimeoutError(
        f"worker still has lag after {timeout}s: {lags}\n{worker.log_text()[-3000:]}"
    )


def processed_lag(worker: WorkerProcess, topics: list[str]) -> int | None:
    """Sum of the worker's own `hedger_consumer_lag` over `topics` (None if unreadable)."""
    try:
        text = worker.scrape()
    except OSError:
        return None
    total, seen = 0, False
    for line in text.splitlines():
        if line.startswith("hedger_consumer_lag{"):
            labels, _, value = line.rpartition(" ")
            if any(f'topic="{topic}"' in labels for topic in topics):
                total += int(float(value))
                seen = True
    return total if seen else None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
