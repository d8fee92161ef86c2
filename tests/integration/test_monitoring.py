"""Monitoring on the real stack: worker -> Debian Prometheus -> every dashboard query.

One worker run (1 partition everywhere, so live order equals file order)
serves the module: the walkthrough's bookings are published, Prometheus
scrapes the worker every second, and then the dashboard's queries, the
gauges' agreement with `hedger replay`, the exposition's lint and the log
lines are checked.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.kafka_io import ensure_topics, publish_log
from streams.offline.replay import replay_files
from streams.settings import load_config
from tests.factories import EXAMPLES, REPO
from tests.integration.prometheus_harness import LocalPrometheus, dashboard_queries
from tests.integration.worker_harness import WorkerProcess, read_jsonl, wait_until_idle
from tests.kafka_broker import LocalKafka

pytestmark = [pytest.mark.kafka, pytest.mark.prometheus]
DASHBOARD = REPO / "config" / "grafana" / "dashboards" / "cds-hedger.json"
CONFIG = REPO / "config" / "hedger.toml"


def require_prometheus() -> None:
    if shutil.which("prometheus") is None and os.environ.get("CI") != "true":
        pytest.skip("prometheus is not installed (scripts/install-prometheus)")


class Run:
    """What the module's single worker run left behind."""

    worker: WorkerProcess
    prometheus: LocalPrometheus
    bookings: Path
    tmp: Path


@pytest.fixture(scope="module")
def run(kafka: LocalKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    require_prometheus()
    tmp = tmp_path_factory.mktemp("monitoring")
    worker = WorkerProcess(kafka.bootstrap, f"mon{os.getpid()}", tmp, partitions=1)
    asyncio.run(ensure_topics(kafka.bootstrap, [worker.topics["loan_bookings"]], 1))
    bookings = tmp / "bookings.jsonl"
    lines = (EXAMPLES / "walkthrough.jsonl").read_text().splitlines()
    bookings.write_text("\n".join(x for x in lines if '"topic": "loan-bookings"' in x) + "\n")
    worker.start()
    prometheus = LocalPrometheus([f"127.0.0.1:{worker.metrics_port}"])
    prometheus.start()
    try:
        prometheus.wait_for_target_up(timeout=30)
        topic_map = {"loan-bookings": worker.topics["loan_bookings"]}
        asyncio.run(publish_log(bookings, kafka.bootstrap, topic_map=topic_map))
        wait_until_idle(worker)
        # rate() and increase() need two samples inside their window
        prometheus.wait_for("hedger_orders_total", timeout=30)
        time.sleep(5)
        state = Run()
        state.worker, state.prometheus, state.bookings, state.tmp = (
            worker,
            prometheus,
            bookings,
            tmp,
        )
        yield state
    finally:
        prometheus.stop()
        if worker.process is not None:
            worker.stop()


def test_every_dashboard_query_returns_data(run: Run) -> None:
    queries = dashboard_queries(DASHBOARD)
    assert len(queries) >= 10
    empty = [(title, expr) for title, expr in queries if not run.prometheus.query(expr)]
    assert empty == [], f"panels whose query returned no data: {empty}"


def test_exposure_and_residual_gauges_equal_the_replay(run: Run) -> None:
    engine, _ = replay_files(
        load_config(CONFIG), run.bookings, run.tmp / "o.jsonl", run.tmp / "d.jsonl"
    )
    views = {view.issuer_id: view for view in engine.views()}
    assert views
    for name, field in (
        ("hedger_issuer_exposure_base", "exposure"),
        ("hedger_issuer_residual_base", "residual"),
        ("hedger_issuer_limit_base", "limit"),
    ):
        live = {s["metric"]["issuer"]: float(s["value"][1]) for s in run.prometheus.query(name)}
        expected = {issuer: float(getattr(view, field)) for issuer, view in views.items()}
        assert live == expected, name


def test_orders_and_dead_letters_are_counted(run: Run) -> None:
    orders = read_jsonl(run.tmp / "o.jsonl") if (run.tmp / "o.jsonl").exists() else None
    if orders is None:
        replay_files(load_config(CONFIG), run.bookings, run.tmp / "o.jsonl", run.tmp / "d.jsonl")
        orders = read_jsonl(run.tmp / "o.jsonl")
    total = sum(float(s["value"][1]) for s in run.prometheus.query("hedger_orders_total"))
    assert total == len(orders)
    dead = read_jsonl(run.tmp / "d.jsonl")
    by_reason = {
        s["metric"]["reason"]: float(s["value"][1])
        for s in run.prometheus.query("sum by (reason) (hedger_dead_letters_total)")
    }
    expected: dict[str, float] = {}
    for record in dead:
        expected[record["reason"]] = expected.get(record["reason"], 0) + 1
    assert by_reason == expected


def test_health_and_ready(run: Run) -> None:
    assert run.worker.http_status("/health") == 200
    assert run.worker.http_status("/ready") == 200
    assert "hedger_ready 1.0" in run.worker.scrape()


def test_promtool_accepts_the_exposition(run: Run) -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None
    check = subprocess.run(
        [promtool, "check", "metrics"],
        input=run.worker.scrape(),
        capture_output=True,
        text=True,
        check=False,
    )
    # 0: clean. Lint findings would exit 3; README documents none are expected.
    assert check.returncode == 0, check.stdout + check.stderr


def test_one_info_line_per_order_and_a_warning_per_dead_letter(run: Run) -> None:
    lines = run.worker.log_lines()
    ours = [line for line in lines if line.get("logger") == "hedger.worker"]
    orders = [line for line in ours if line["event"] == "order.emitted"]
    expected_orders = read_jsonl(run.tmp / "o.jsonl")
    assert [o["order_id"] for o in orders] == [o["order_id"] for o in expected_orders]
    for line in orders:
        assert line["level"] == "info"
        assert line["issuer_id"] and line["event_id"] and line["order_id"]
    dead = [line for line in ours if line["event"] == "event.dead_lettered"]
    assert len(dead) == len(read_jsonl(run.tmp / "d.jsonl"))
    assert all(line["level"] == "warning" for line in dead)
    # where the payload named them, dead letters carry event and issuer ids
    assert sum(1 for line in dead if line["event_id"] and line["issuer_id"]) >= len(dead) - 1
    info_events = {line["event"] for line in ours if line["level"] == "info"}
    assert info_events <= {"order.emitted", "worker.starting", "http.listening"}


def test_sasl_password_never_reaches_a_log_line(kafka: LocalKafka, tmp_path: Path) -> None:
    password = "Pa55-w0rd-that-must-not-leak"  # noqa: S105 - a test secret
    env = {
        **os.environ,
        "HEDGER_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "HEDGER_SASL_USERNAME": "desk",
        "HEDGER_SASL_PASSWORD": password,
    }
    # The local broker speaks PLAINTEXT, so the SASL handshake fails: the
    # worker must say so, name the setting values it uses, and hide the secret.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams",
            "worker",
            "--config",
            str(CONFIG),
            "--bootstrap",
            kafka.bootstrap,
            "--log-format",
            "json",
            "--data-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert "worker.starting" in output
    assert "SASL_PLAINTEXT" in output
    assert password not in output
