"""The alerting rules: promtool accepts them and their unit tests pass; each is wired up.

config/alerts.yml is loaded by config/prometheus.yml and mounted beside it by
docker-compose.yml; every alert has a `promtool test rules` case in
config/alerts.test.yml that sees it fire, and a README Runbook entry. Every
metric name an alert uses is one that streams/observe/metrics.py exposes.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.test_deploy_files import (
    COMPOSE,
    PROMETHEUS,
    ROOT,
    bind_mounts,
    defined_metrics,
    exposition_names,
    promtool,
)

ALERTS = ROOT / "config" / "alerts.yml"
ALERT_TESTS = ROOT / "config" / "alerts.test.yml"
README = ROOT / "README.md"
# Gauges (0/1, or a Unix time) the alerts expect and other work adds to streams/observe/metrics.py.


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load(ALERTS)["groups"] for rule in group["rules"] if "alert" in rule]


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.prometheus
def test_promtool_checks_the_rules() -> None:
    result = run_promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


@pytest.mark.prometheus
def test_promtool_rule_unit_tests_pass() -> None:
    result = run_promtool("test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.prometheus
def test_promtool_rule_unit_tests_fail_on_a_wrong_expectation(tmp_path: Path) -> None:
    """The promtool run above would notice an alert that does not fire."""
    tests = load(ALERT_TESTS)
    case = tests["tests"][0]["alert_rule_test"][-1]
    assert case["exp_alerts"], "the first case should expect a firing alert last"
    case["exp_alerts"] = []
    tests["rule_files"] = [str(ALERTS)]
    broken = tmp_path / "broken.test.yml"
    broken.write_text(yaml.safe_dump(tests))
    result = run_promtool("test", "rules", str(broken))
    assert result.returncode != 0
    assert case["alertname"] in result.stdout + result.stderr


def test_every_alert_fires_in_a_unit_test() -> None:
    firing = {
        case["alertname"]
        for test in load(ALERT_TESTS)["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    quiet = {
        case["alertname"]
        for test in load(ALERT_TESTS)["tests"]
        for case in test.get("alert_rule_test", [])
        if not case.get("exp_alerts")
    }
    names = {rule["alert"] for rule in alert_rules()}
    assert len(names) == len(alert_rules()), "alert names must be unique"
    assert names - firing == set(), "alerts never seen firing in config/alerts.test.yml"
    assert names - quiet == set(), "alerts never seen quiet in config/alerts.test.yml"


def test_every_alert_has_severity_summary_and_a_runbook_entry() -> None:
    readme = README.read_text()
    assert "\n## Runbook\n" in readme
    runbook = readme.split("\n## Runbook\n", 1)[1]
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"], name
        assert rule["annotations"]["runbook"] == f"README.md, section Runbook: {name}"
        assert f"\n### {name}\n" in runbook, f"README Runbook has no section for {name}"


def test_alert_metric_names_exist() -> None:
    known = exposition_names()
    defined = defined_metrics()
    for rule in alert_rules():
        for name in re.findall(r"hedger_[a-z_]+", rule["expr"]):
            assert name in known, (
                f"{rule['alert']}: {name} is not a metric of streams/observe/metrics.py"
            )
    # the v2 alerts read 0/1 gauges and a timestamp gauge
    for name in (
        "hedger_group_in_breach",
        "hedger_seller_blocked",
        "hedger_clock_last_tick_timestamp_seconds",
    ):
        assert defined.get(name) == "gauge", name


def test_prometheus_loads_the_rules_and_compose_mounts_them() -> None:
    config = load(PROMETHEUS)
    assert config["rule_files"] == ["alerts.yml"]
    assert (PROMETHEUS.parent / "alerts.yml") == ALERTS
    prometheus = load(COMPOSE)["services"]["prometheus"]
    mounts = dict(bind_mounts(prometheus))
    config_in_container = Path(mounts["./config/prometheus.yml"])
    assert mounts["./config/alerts.yml"] == str(config_in_container.parent / "alerts.yml")
