"""Monitoring on the real stack: worker -> Debian Prometheus -> every dashboard query.

One worker run (1 partition everywhere, so live order equals file order)
serves the module, on the contract v2 desk (config/desk-v2.toml): the SPEC
example desk-v2.jsonl up to the bookings of the ORCL group (groups of
connected clients, fills with counterparties on the orders the worker
emitted, a blocked seller), then a later ORCL booking that expires the
group's unanswered orders (cancel requests) and a dead letter. Each run of
events of one topic is published after the worker is idle on the previous
one, so the fills always find their orders. Prometheus scrapes the worker
every second; then the dashboard's queries, the gauges' agreement with
`hedger replay`, the exposition's lint and the log lines are checked.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from hedger.engine import HedgingEngine
from streams.kafka_io import ensure_topics, publish_log
from streams.observe.metrics import Metrics
from streams.offline.replay import replay_files
from streams.settings import load_config
from tests.factories import EXAMPLES, REPO
from tests.integration.prometheus_harness import LocalPrometheus, dashboard_queries, needs_pricing
from tests.integration.worker_harness import WorkerProcess, read_jsonl, wait_until_idle
from tests.kafka_broker import LocalKafka
from tests.support.cli import hedger

pytestmark = [pytest.mark.kafka, pytest.mark.prometheus]
DASHBOARD = REPO / "config" / "grafana" / "dashboards" / "cds-hedger.json"
CONFIG = REPO / "config" / "desk-v2.toml"
# SPEC desk-v2.jsonl events applied before the first clock tick the worker would need
LAST_EXAMPLE_EVENT = "w-23"
# 2026-02-24 is 7 and 8 days after the ORCL group's orders of 02-16/17 (order_ttl_days 5)
LATER_ORCL_BOOKING = {
    "topic": "loan-bookings",
    "key": "MON-1",
    "value": {
        "schema_version": 1,
        "event_id": "mon-1",
        "event_type": "loan.booked",
        "occurred_at": "2026-02-24T09:00:00.000Z",
        "loan_id": "MON-1",
        "issuer_id": "ORCL",
        "sequence": 1,
        "notional": "10000000",
        "currency": "USD",
        "maturity_date": "2029-06-20",
    },
}
# a clock.tick on the loan topic: an unknown event type there, dead-lettered
MISROUTED_TICK = {
    "topic": "loan-bookings",
    "key": None,
    "value": {
        "schema_version": 1,
        "event_id": "mon-2",
        "event_type": "clock.tick",
        "occurred_at": "2026-02-24T18:00:00.000Z",
    },
}
# a tick on the desk clock, after the booking: the tick-age panel has data
DESK_TICK = {
    "topic": "desk-clock",
    "key": None,
    "value": {
        "schema_version": 1,
        "event_id": "mon-3",
        "event_type": "clock.tick",
        "occurred_at": "2026-02-24T18:00:00.000Z",
    },
}


def require_prometheus() -> None:
    if shutil.which("prometheus") is None and os.environ.get("CI") != "true":
        pytest.skip("prometheus is not installed (scripts/install-prometheus)")


def monitoring_log() -> list[dict[str, Any]]:
    """The events of the run, in order (the example's own desk-clock lines left out)."""
    records = []
    for line in (EXAMPLES / "desk-v2.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["topic"] == "desk-clock":
            continue
        records.append(record)
        if record["value"].get("event_id") == LAST_EXAMPLE_EVENT:
            break
    return [*records, LATER_ORCL_BOOKING, MISROUTED_TICK, DESK_TICK]


class Run:
    """What the module's single worker run left behind, and the replay of its input."""

    worker: WorkerProcess
    prometheus: LocalPrometheus
    log: Path
    tmp: Path
    engine: HedgingEngine
    orders: list[dict[str, Any]]
    cancels: list[dict[str, Any]]
    dead: list[dict[str, Any]]
    replayed: CollectorRegistry


@pytest.fixture(scope="module")
def run(kafka: LocalKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    require_prometheus()
    tmp = tmp_path_factory.mktemp("monitoring")
    worker = WorkerProcess(kafka.bootstrap, f"mon{os.getpid()}", tmp, partitions=1, config=CONFIG)
    inputs = [worker.topics[t] for t in ("loan_bookings", "cds_executions", "desk_clock")]
    asyncio.run(ensure_topics(kafka.bootstrap, inputs, 1))
    records = monitoring_log()
    log = tmp / "events.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    worker.start()
    prometheus = LocalPrometheus([f"127.0.0.1:{worker.metrics_port}"])
    prometheus.start()
    try:
        prometheus.wait_for_target_up(timeout=30)
        topic_map = {
            "loan-bookings": worker.topics["loan_bookings"],
            "cds-executions": worker.topics["cds_executions"],
            "desk-clock": worker.topics["desk_clock"],
        }
        runs = itertools.groupby(records, key=lambda r: r["topic"])
        for n, (_, group) in enumerate(runs):
            part = tmp / f"part-{n}.jsonl"
            part.write_text("".join(json.dumps(r) + "\n" for r in group))
            asyncio.run(publish_log(part, kafka.bootstrap, topic_map=topic_map))
            wait_until_idle(worker, settle=0.3)
        # rate() and increase() need two samples inside their window
        prometheus.wait_for("hedger_cancel_requests_total > 0", timeout=30)
        time.sleep(5)
        state = Run()
        state.worker, state.prometheus, state.log, state.tmp = worker, prometheus, log, tmp
        # the replay feeds the worker's Metrics class through the same report_applied path
        state.replayed = CollectorRegistry()
        config = load_config(CONFIG)
        state.engine, _ = replay_files(
            config,
            log,
            tmp / "o.jsonl",
            tmp / "d.jsonl",
            observer=Metrics(config, registry=state.replayed),
        )
        records_out = read_jsonl(tmp / "o.jsonl")
        state.orders = [o for o in records_out if o["action"] == "new"]
        state.cancels = [o for o in records_out if o["action"] == "cancel"]
        state.dead = read_jsonl(tmp / "d.jsonl")
        yield state
    finally:
        prometheus.stop()
        if worker.process is not None:
            worker.stop()


def test_every_dashboard_query_returns_data(run: Run) -> None:
    queries = dashboard_queries(DASHBOARD)
    assert len(queries) >= 10
    # the price panels are queried against the v2.1 worker (tests/integration/test_worker_v21.py)
    queries = [(title, expr) for title, expr in queries if not needs_pricing(expr)]
    empty = [(title, expr) for title, expr in queries if not run.prometheus.query(expr)]
    assert empty == [], f"panels whose query returned no data: {empty}"


def live_values(run: Run, name: str, label: str) -> dict[str, float]:
    return {s["metric"][label]: float(s["value"][1]) for s in run.prometheus.query(name)}


def replayed_values(run: Run, name: str, label: str) -> dict[str, float]:
    return {
        sample.labels[label]: sample.value
        for family in run.replayed.collect()
        for sample in family.samples
        if sample.name == name
    }


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("hedger_issuer_exposure_base", "issuer"),
        ("hedger_issuer_residual_base", "issuer"),
        ("hedger_issuer_limit_base", "issuer"),
        ("hedger_issuer_utilisation_ratio", "issuer"),
        ("hedger_group_residual_base", "group"),
        ("hedger_group_limit_base", "group"),
        ("hedger_group_utilisation_ratio", "group"),
        ("hedger_group_in_breach", "group"),
        ("hedger_seller_exposure_base", "seller"),
        ("hedger_seller_limit_base", "seller"),
        ("hedger_seller_utilisation_ratio", "seller"),
        ("hedger_seller_blocked", "seller"),
    ],
)
def test_gauges_equal_the_replay(run: Run, name: str, label: str) -> None:
    replayed = replayed_values(run, name, label)
    assert replayed, name
    assert live_values(run, name, label) == pytest.approx(replayed), name


def test_issuer_gauges_show_the_final_book_where_no_order_followed(run: Run) -> None:
    # ORCL's last decision (mon-1) emitted orders, so its gauges show where it started
    views = {view.issuer_id: view for view in run.engine.views() if view.issuer_id != "ORCL"}
    live = live_values(run, "hedger_issuer_exposure_base", "issuer")
    assert {i: live[i] for i in views} == {i: float(v.exposure) for i, v in views.items()}


def test_group_and_seller_figures_by_hand(run: Run) -> None:
    limits = live_values(run, "hedger_group_limit_base", "group")
    # the configured L_G, capped at 25% of Tier 1 (15bn): none is capped here
    assert limits == {"META-GROUP": 7e9, "ORCL-GROUP": 3.5e9, "NBIS-GROUP": 7e8}
    assert {"META-GROUP", "ORCL-GROUP"} <= set(
        live_values(run, "hedger_group_residual_base", "group")
    )
    exposure = live_values(run, "hedger_seller_exposure_base", "seller")
    # parts from the example's fills: BOREAL-LIFE 100m + 250m, CEDAR-CREDIT 250m + 50m
    assert exposure["BOREAL-LIFE"] == 350e6 and exposure["CEDAR-CREDIT"] == 300e6
    blocked = live_values(run, "hedger_seller_blocked", "seller")
    assert {s for s, v in blocked.items() if v == 1} == {"CEDAR-CREDIT"}  # 300m >= 300m
    seller_limits = live_values(run, "hedger_seller_limit_base", "seller")
    assert seller_limits["CEDAR-CREDIT"] == 300e6 and seller_limits["BOREAL-LIFE"] == 600e6


def test_orders_cancels_and_dead_letters_are_counted(run: Run) -> None:
    total = sum(float(s["value"][1]) for s in run.prometheus.query("hedger_orders_total"))
    assert total == len(run.orders)
    # the ORCL group's 7 orders of 02-16/17, never answered, expire at the 02-24 booking
    expired = ["w-22#1", "w-22#2", "w-23#1", "w-23#2", "w-23#3", "w-23#4", "w-23#5"]
    assert [c["order_id"] for c in run.cancels] == expired
    (cancels,) = run.prometheus.query("hedger_cancel_requests_total")
    assert float(cancels["value"][1]) == len(expired)
    (still_open,) = run.prometheus.query("hedger_expired_orders_open")
    assert float(still_open["value"][1]) == len(expired)
    by_reason = {
        s["metric"]["reason"]: float(s["value"][1])
        for s in run.prometheus.query("sum by (reason) (hedger_dead_letters_total)")
    }
    expected: dict[str, float] = {}
    for record in run.dead:
        expected[record["reason"]] = expected.get(record["reason"], 0) + 1
    assert by_reason == expected
    assert sum(expected.values()) >= 1


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
    # 0: clean. Lint findings would exit 3; docs/operations.md documents none are expected.
    assert check.returncode == 0, check.stdout + check.stderr


def test_one_info_line_per_order_and_a_warning_per_dead_letter(run: Run) -> None:
    lines = run.worker.log_lines()
    ours = [line for line in lines if line.get("logger") == "hedger.worker"]
    orders = [line for line in ours if line["event"] == "order.emitted"]
    assert [o["order_id"] for o in orders] == [o["order_id"] for o in run.orders]
    for line in orders:
        assert line["level"] == "info"
        assert line["issuer_id"] and line["event_id"] and line["order_id"]
    cancels = [line for line in ours if line["event"] == "order.cancel_requested"]
    assert [c["order_id"] for c in cancels] == [c["order_id"] for c in run.cancels]
    dead = [line for line in ours if line["event"] == "event.dead_lettered"]
    assert len(dead) == len(run.dead)
    assert all(line["level"] == "warning" for line in dead)
    # where the payload named them, dead letters carry event and issuer ids
    assert sum(1 for line in dead if line["event_id"] and line["issuer_id"]) >= len(dead) - 1
    blocked = [line["seller"] for line in ours if line["event"] == "seller.blocked"]
    assert blocked == ["CEDAR-CREDIT"]
    info_events = {line["event"] for line in ours if line["level"] == "info"}
    assert info_events <= {
        "order.emitted",
        "order.cancel_requested",
        "seller.unblocked",
        "worker.starting",
        "http.listening",
    }


def test_sasl_password_never_reaches_a_log_line(kafka: LocalKafka, tmp_path: Path) -> None:
    password = "Pa55-w0rd-that-must-not-leak"  # noqa: S105 - a test secret
    env = {
        "HEDGER_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "HEDGER_SASL_USERNAME": "desk",
        "HEDGER_SASL_PASSWORD": password,
    }
    # The local broker speaks PLAINTEXT, so the SASL handshake fails: the
    # worker must say so, name the setting values it uses, and hide the secret.
    result = hedger(
        "worker",
        "--config",
        str(CONFIG),
        "--bootstrap",
        kafka.bootstrap,
        "--log-format",
        "json",
        "--data-dir",
        str(tmp_path),
        env=env,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert "worker.starting" in output
    assert "SASL_PLAINTEXT" in output
    assert password not in output
