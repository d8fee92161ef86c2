"""The alerting rules: promtool accepts them and their unit tests pass; each is wired up.

config/alerts.yml is loaded by config/prometheus.yml and mounted beside it by
docker-compose.yml; every alert has a `promtool test rules` case in
config/alerts.test.yml that sees it fire, and a `runbook_url` annotation that
links its own section of docs/runbook.md. Every metric name an alert uses is
one that streams/observe/metrics.py exposes.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.deploy_files import (
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
RUNBOOK = ROOT / "docs" / "runbook.md"
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


def runbook_sections() -> list[str]:
    """The alert sections of docs/runbook.md (its `## ` headings), in order."""
    return [
        line.removeprefix("## ")
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    ]


def test_every_alert_has_severity_summary_and_a_runbook_url() -> None:
    sections = runbook_sections()
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"], name
        # GitHub's anchor of the heading "## HedgerIssuerInBreach" is its lower case.
        assert rule["annotations"]["runbook_url"] == f"docs/runbook.md#{name.lower()}", name
        assert "runbook" not in rule["annotations"], f"{name}: one runbook link, runbook_url"
        assert name in sections, f"docs/runbook.md has no section for {name}"


def test_the_runbook_has_a_section_per_alert_and_no_other() -> None:
    assert sorted(runbook_sections()) == sorted(rule["alert"] for rule in alert_rules())


def test_the_rule_tests_expect_the_runbook_url() -> None:
    # promtool compares annotations exactly: a firing case names the same link.
    urls = {rule["alert"]: rule["annotations"]["runbook_url"] for rule in alert_rules()}
    for test in load(ALERT_TESTS)["tests"]:
        for case in test.get("alert_rule_test", []):
            for alert in case.get("exp_alerts", []):
                expected = alert["exp_annotations"]["runbook_url"]
                assert expected == urls[case["alertname"]], case["alertname"]


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
