"""The worker's runtime metrics: build info, process/platform collectors, last-event time,
the count of expired orders still open, and the figures read from the running worker."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hedger.engine import HedgingEngine, Outcome
from hedger.outcomes import Status
from streams.observe.metrics import Metrics
from streams.observer import Origin, report_applied
from tests.factories import booked, example_config, make_config, report


def samples(metrics: Metrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    text = generate_latest(metrics.registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def test_build_info_names_the_package_and_contract_version() -> None:
    found = samples(Metrics(example_config()))
    assert found["hedger_build_info"] == [
        ({"version": version("cds-hedger"), "contract_version": "2.1"}, 1.0)
    ]


def test_live_worker_exposes_process_and_platform_metrics() -> None:
    found = samples(Metrics(example_config(), clock=lambda: 1000.0))
    assert "python_info" in found
    assert found["process_cpu_seconds_total"][0][1] >= 0
    assert found["process_resident_memory_bytes"][0][1] > 0


def test_offline_replay_has_no_process_metrics() -> None:
    found = samples(Metrics(example_config(), clock=None))
    assert "hedger_build_info" in found
    assert not [name for name in found if name.startswith(("process_", "python_"))]


def test_last_event_timestamp_follows_the_wall_clock() -> None:
    now = [1000.0]
    metrics = Metrics(example_config(), clock=lambda: now[0])
    assert samples(metrics)["hedger_last_event_timestamp_seconds"] == [({}, 1000.0)]
    now[0] = 1234.5
    metrics.on_event("route", "loan-bookings", Status.APPLIED, None)
    assert samples(metrics)["hedger_last_event_timestamp_seconds"] == [({}, 1234.5)]
    now[0] = 2000.0
    metrics.on_event("route", "loan-bookings", Status.DEAD_LETTER, "invalid_json")
    assert samples(metrics)["hedger_last_event_timestamp_seconds"] == [({}, 2000.0)]


def test_expired_orders_open_falls_when_a_report_closes_an_expired_order() -> None:
    # ACME: limit 100m; a 200m loan booked 2026-01-02 gives one buy of 110m
    # (tests/unit/test_v2_rules.py); with order_ttl_days 5 it expires at a
    # tick of 2026-01-07, and the venue's `cancelled` report closes it.
    config = make_config(hedge={"order_ttl_days": 5})
    engine = HedgingEngine(config)
    metrics = Metrics(config, clock=None)

    def apply(topic: str, payload: dict[str, Any], line: int) -> Outcome:
        outcome = engine.process(topic, payload)
        assert outcome.status is Status.APPLIED, outcome
        report_applied(metrics, engine, outcome, None, Origin(topic, 0, line))
        return outcome

    (order,) = apply("loan-bookings", booked("L1", "200000000", day="2026-01-02"), 1).orders
    tick = {
        "schema_version": 1,
        "event_id": "k-5",
        "event_type": "clock.tick",
        "occurred_at": "2026-01-07T18:00:00Z",
    }
    assert len(apply("desk-clock", tick, 2).cancels) == 1
    found = samples(metrics)
    assert found["hedger_cancel_requests_total"] == [({}, 1.0)]
    assert found["hedger_expired_orders_open"] == [({}, 1.0)]
    apply("cds-executions", report(order.order_id, "cancelled", day="2026-01-07"), 3)
    found = samples(metrics)
    assert found["hedger_cancel_requests_total"] == [({}, 1.0)]
    assert found["hedger_expired_orders_open"] == [({}, 0.0)]


def test_the_worker_collector_shows_lag_recovery_commit_age_and_transactions() -> None:
    from streams.observe.metrics import WorkerCollector

    metrics = Metrics(example_config(), clock=None)
    metrics.registry.register(
        WorkerCollector(
            lambda: [("loan-bookings", 0, 7, 2), ("hedger-control", 1, 0, 0)],
            lambda: 42,
            lambda: 990.0,
            lambda: False,
            clock=lambda: 1000.0,
            transactions=lambda: {"committed": 12, "aborted": 3, "fenced": 1},
        )
    )
    found = samples(metrics)
    assert found["hedger_consumer_lag"] == [
        ({"topic": "loan-bookings", "partition": "0"}, 7.0),
        ({"topic": "hedger-control", "partition": "1"}, 0.0),
    ]
    assert found["hedger_uncommitted_messages"][0] == (
        {"topic": "loan-bookings", "partition": "0"},
        2.0,
    )
    assert found["hedger_recovery_remaining"] == [({}, 42.0)]
    assert found["hedger_last_commit_age_seconds"] == [({}, 10.0)]
    assert found["hedger_ready"] == [({}, 0.0)]
    transactions = {
        labels["outcome"]: value for labels, value in found["hedger_transactions_total"]
    }
    assert transactions == {"aborted": 3.0, "committed": 12.0, "fenced": 1.0}
