"""The worker's runtime metrics: build info, process/platform collectors, last-event time."""

from __future__ import annotations

from importlib.metadata import version

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hedger.outcomes import Status
from streams.observe.metrics import Metrics
from tests.factories import example_config


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
        ({"version": version("cds-hedger"), "contract_version": "2"}, 1.0)
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
