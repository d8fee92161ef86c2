"""The deployment files agree with each other and with the code.

docker-compose.yml, the Dockerfile, config/prometheus.yml and the Grafana
provisioning and dashboard are checked offline: ports, service names, mounted
paths, the datasource uid, and every metric name the dashboard queries
against the names `streams/observe/metrics.py` defines. With promtool installed
(scripts/install-prometheus), the Prometheus config and every dashboard
expression are also parsed by Prometheus itself; without it those two tests
skip, except in CI (CI=true), where they fail.

The dashboard linter's rules live in scripts/lint-dashboard, which these tests run.
"""

from __future__ import annotations

import fnmatch
import json
import re
import runpy
import shlex
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from streams.settings import TopicNames, load_config
from tests.integration.prometheus_harness import dashboard_panels, dashboard_queries
from tests.support.deploy_files import (
    COMPOSE,
    PROMETHEUS,
    ROOT,
    bind_mounts,
    exposition_names,
    promtool,
)

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DASHBOARD = ROOT / "config" / "grafana" / "dashboards" / "cds-hedger.json"
DATASOURCES = ROOT / "config" / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
DASHBOARD_PROVIDERS = (
    ROOT / "config" / "grafana" / "provisioning" / "dashboards" / "cds-hedger.yaml"
)

SERVICES = {"kafka", "hedger-worker", "publish-sample", "prometheus", "grafana"}
WORKER = "hedger-worker"
# What the image must contain: the package, its metadata, and the files the
# compose commands name (the configuration and the sample log).
IMAGE_NEEDS = {"pyproject.toml", "README.md", "hedger", "streams", "config", "samples"}


# -- helpers ---------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE)
    assert isinstance(data, dict)
    return data


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def command_args(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    if isinstance(command, str):
        return shlex.split(command)
    return [str(arg) for arg in command]


def flag(args: list[str], name: str) -> str | None:
    """The value of `--name VALUE` or `--name=VALUE` in an argument list."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def published_ports(service: dict[str, Any]) -> list[tuple[int, int]]:
    """(host port, container port) of a service's `ports`."""
    pairs = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            pairs.append((int(port["published"]), int(port["target"])))
            continue
        parts = str(port).split("/")[0].split(":")
        container = int(parts[-1])
        host = int(parts[-2]) if len(parts) >= 2 else container
        pairs.append((host, container))
    return pairs


def prometheus_targets(job: str = "cds-hedger") -> list[str]:
    config = load_yaml(PROMETHEUS)
    jobs = {scrape["job_name"]: scrape for scrape in config["scrape_configs"]}
    assert job in jobs, f"no scrape job {job!r} in {PROMETHEUS.name}"
    return [target for static in jobs[job]["static_configs"] for target in static["targets"]]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = (pending + stripped).strip()
        pending = ""
        if whole:
            keyword, _, rest = whole.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerfile_copies() -> list[tuple[list[str], str, bool]]:
    """(sources, absolute destination, destination is a directory) of each COPY/ADD.

    Copies from another build stage (`--from=`) are left out.
    """
    workdir = PurePosixPath("/")
    copies = []
    for keyword, rest in dockerfile_instructions():
        if keyword == "WORKDIR":
            workdir = workdir / rest
        if keyword not in ("COPY", "ADD"):
            continue
        words = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        if any(word.startswith("--from") for word in words):
            continue
        *sources, dest = [word for word in words if not word.startswith("--")]
        absolute = str(workdir / dest)
        copies.append(([s.rstrip("/") or "." for s in sources], absolute, dest.endswith("/")))
    return copies


def image_path_to_repo(path: str) -> Path | None:
    """The repository file an absolute path in the image was copied from, if any."""
    for sources, dest, dest_is_dir in dockerfile_copies():
        for source in sources:
            if (ROOT / source).is_dir():  # a directory's content lands in dest
                prefix = dest
            elif dest_is_dir or len(sources) > 1:
                prefix = str(PurePosixPath(dest) / PurePosixPath(source).name)
            else:
                prefix = dest
            prefix = prefix.rstrip("/") or "/"
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                relative = path[len(prefix.rstrip("/")) :].lstrip("/")
                return ROOT / source / relative if relative else ROOT / source
    return None


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def provisioned_datasource() -> dict[str, Any]:
    config = load_yaml(DATASOURCES)
    assert config["apiVersion"] == 1
    sources = config["datasources"]
    prometheus = [source for source in sources if source["type"] == "prometheus"]
    assert len(prometheus) == 1
    found: dict[str, Any] = prometheus[0]
    return found


# -- docker-compose.yml --------------------------------------------------


def test_compose_has_the_services(compose: dict[str, Any]) -> None:
    assert SERVICES <= set(services(compose))


def test_compose_bind_mounts_exist_in_the_repo(compose: dict[str, Any]) -> None:
    mounts = [(name, m) for name, s in services(compose).items() for m in bind_mounts(s)]
    assert mounts, "expected the Prometheus and Grafana config mounts"
    for name, (host, _) in mounts:
        assert host.startswith("./"), f"{name}: mount {host} is not relative to the repo"
        assert (ROOT / host).exists(), f"{name}: {host} does not exist in the repository"


def test_worker_port_matches_metrics_port_and_scrape_target(compose: dict[str, Any]) -> None:
    worker = services(compose)[WORKER]
    args = command_args(worker)
    assert args[0] == "worker"
    metrics_port = flag(args, "--metrics-port")
    assert metrics_port is not None, "the worker must serve /metrics"
    # In a container, the default 127.0.0.1 is unreachable from Prometheus.
    assert flag(args, "--metrics-bind") == "0.0.0.0"  # noqa: S104
    assert (int(metrics_port), int(metrics_port)) in published_ports(worker)
    assert prometheus_targets() == [f"{WORKER}:{metrics_port}"]


def test_worker_and_publisher_reach_the_compose_kafka(compose: dict[str, Any]) -> None:
    kafka = environment(services(compose)["kafka"])
    advertised = kafka["KAFKA_ADVERTISED_LISTENERS"]
    plaintext = re.search(r"PLAINTEXT://([^,]+)", advertised)
    assert plaintext is not None
    for name in (WORKER, "publish-sample"):
        assert flag(command_args(services(compose)[name]), "--bootstrap") == plaintext.group(1)


def test_kafka_is_a_single_kraft_node(compose: dict[str, Any]) -> None:
    kafka = services(compose)["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    for key, value in env.items():
        if key.endswith(("REPLICATION_FACTOR", "MIN_ISR")):
            assert value == "1", f"{key}={value} needs more brokers than one"
    healthcheck = " ".join(kafka["healthcheck"]["test"])
    assert "kafka-topics.sh" in healthcheck


def test_startup_order(compose: dict[str, Any]) -> None:
    svc = services(compose)
    assert svc[WORKER]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert WORKER in svc["publish-sample"]["depends_on"]
    assert svc["publish-sample"].get("restart") == "no"


def test_compose_uses_the_default_topic_names(compose: dict[str, Any]) -> None:
    defaults = TopicNames.model_construct()
    for name, service in services(compose).items():
        for key, value in environment(service).items():
            if key.startswith("HEDGER_TOPIC_"):
                field = key.removeprefix("HEDGER_TOPIC_").lower()
                assert value == getattr(defaults, field), f"{name}: {key}={value}"


def test_sample_log_uses_the_default_input_topics(compose: dict[str, Any]) -> None:
    args = command_args(services(compose)["publish-sample"])
    assert args[0] == "publish"
    log = image_path_to_repo(args[1])
    assert log is not None and log.is_file(), f"{args[1]} is not copied into the image"
    topics = {json.loads(line)["topic"] for line in log.read_text().splitlines() if line}
    defaults = TopicNames.model_construct()
    assert topics <= {defaults.loan_bookings, defaults.cds_executions}


def test_worker_config_is_in_the_image(compose: dict[str, Any]) -> None:
    config = flag(command_args(services(compose)[WORKER]), "--config")
    assert config is not None
    assert config.startswith("/"), "the image's working directory is not the repo"
    repo_file = image_path_to_repo(config)
    assert repo_file is not None and repo_file.is_file(), f"{config} is not copied into the image"


# -- Dockerfile ----------------------------------------------------------


def test_dockerfile_copies_what_the_image_needs() -> None:
    copied = {source for sources, _, _ in dockerfile_copies() for source in sources}
    assert IMAGE_NEEDS <= copied, f"not copied: {sorted(IMAGE_NEEDS - copied)}"
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such path"
    instructions = dockerfile_instructions()
    base = next(rest for keyword, rest in instructions if keyword == "FROM")
    assert base.startswith("python:3.11")
    assert ("EXPOSE", "9108") in instructions
    entrypoint = next(rest for keyword, rest in instructions if keyword == "ENTRYPOINT")
    assert json.loads(entrypoint) == ["hedger"]
    assert any(k == "RUN" and "pip install ." in rest for k, rest in instructions)


def test_dockerignore_keeps_what_the_image_needs() -> None:
    patterns = [
        line.strip().strip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    ]
    assert ".venv" in patterns and ".git" in patterns
    for needed in IMAGE_NEEDS:
        for pattern in patterns:
            assert not fnmatch.fnmatch(needed, pattern), f".dockerignore {pattern} drops {needed}"


# -- Prometheus ----------------------------------------------------------


def test_prometheus_config_scrapes_the_worker() -> None:
    config = load_yaml(PROMETHEUS)
    assert config["global"]["scrape_interval"] == "5s"
    assert prometheus_targets() == [f"{WORKER}:9108"]


def test_promtool_accepts_the_prometheus_config() -> None:
    result = subprocess.run(
        [promtool(), "check", "config", str(PROMETHEUS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- Grafana -------------------------------------------------------------


def test_dashboard_top_level() -> None:
    board = dashboard()
    assert 8 <= len(board["uid"]) <= 40
    assert board["title"]
    assert isinstance(board["schemaVersion"], int) and 36 <= board["schemaVersion"] <= 41
    assert board["refresh"] == "10s"
    assert board["time"]["from"].startswith("now-")
    variables = {v["name"]: v for v in board["templating"]["list"]}
    issuer = variables["issuer"]
    query = issuer["query"]["query"] if isinstance(issuer["query"], dict) else issuer["query"]
    assert query == "label_values(hedger_issuer_exposure_base, issuer)"
    assert issuer["multi"] and issuer["includeAll"]


def test_dashboard_panels_are_complete() -> None:
    uid = TEMPLATED_DATASOURCE
    panels = dashboard_panels(DASHBOARD)
    ids = [panel["id"] for panel in panels]
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        title = panel.get("title")
        assert panel["type"], title
        grid = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= set(grid), title
        assert all(isinstance(grid[k], int) for k in "hwxy"), title
        assert grid["x"] + grid["w"] <= 24, title
        assert panel["datasource"]["uid"] == uid, title
        assert panel["datasource"]["type"] == "prometheus", title
        assert panel.get("description") or panel["type"] == "row", title
        if panel["type"] == "row":
            continue
        targets = panel["targets"]
        assert targets, title
        ref_ids = [target["refId"] for target in targets]
        assert len(ref_ids) == len(set(ref_ids)), title
        for target in targets:
            assert target["expr"].strip(), title
            if "datasource" in target:
                assert target["datasource"]["uid"] == uid, title


def test_dashboard_covers_the_metrics() -> None:
    used = set(re.findall(r"hedger_[a-z_]+", " ".join(e for _, e in dashboard_queries(DASHBOARD))))
    for needed in (
        "hedger_issuer_exposure_base",
        "hedger_issuer_limit_base",
        "hedger_issuer_residual_base",
        "hedger_issuer_utilisation_ratio",
        "hedger_issuers_in_breach",
        "hedger_issuer_halted",
        "hedger_issuer_coverage_base",
        "hedger_orders_total",
        "hedger_order_notional_base_total",
        "hedger_dead_letters_total",
        "hedger_events_total",
        "hedger_processing_latency_seconds_bucket",
        "hedger_consumer_lag",
        "hedger_last_commit_age_seconds",
        "hedger_recovery_remaining",
        "hedger_ready",
        "hedger_event_time_lag_seconds",
        "hedger_uncommitted_messages",
        "hedger_transactions_total",
        # contract v2: groups, sellers, expiry and the desk clock
        "hedger_group_residual_base",
        "hedger_group_limit_base",
        "hedger_group_utilisation_ratio",
        "hedger_group_in_breach",
        "hedger_seller_exposure_base",
        "hedger_seller_limit_base",
        "hedger_seller_utilisation_ratio",
        "hedger_seller_blocked",
        "hedger_cancel_requests_total",
        "hedger_expired_orders_open",
        "hedger_clock_last_tick_timestamp_seconds",
        # contract v2.1: the price of protection
        "hedger_quote_spread_bps",
        "hedger_quote_as_of_timestamp_seconds",
        "hedger_upfront_paid_base_total",
        "hedger_upfront_received_base_total",
        "hedger_withheld_legs_total",
        "hedger_issuer_jtd_base",
        "hedger_issuer_credit_spread_risk_base",
    ):
        assert needed in used, f"no panel shows {needed}"


def test_dashboard_has_the_v2_rows() -> None:
    """Groups, Sellers, Expiry & clock and (v2.1) Price and risk rows, with the panels they name."""
    panels = dashboard_panels(DASHBOARD)
    rows = [p["title"] for p in panels if p["type"] == "row"]
    assert rows[-4:] == ["Groups", "Sellers", "Expiry & clock", "Price and risk"]
    below: dict[str, list[str]] = {}
    current = ""
    for panel in sorted(panels, key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"])):
        if panel["type"] == "row":
            current = panel["title"]
            continue
        below.setdefault(current, []).extend(t["expr"] for t in panel["targets"])
    for row, metrics in (
        ("Groups", ["hedger_group_residual_base", "hedger_group_in_breach"]),
        ("Sellers", ["hedger_seller_exposure_base", "hedger_seller_blocked"]),
        ("Expiry & clock", ["hedger_cancel_requests_total", "hedger_clock_last_tick"]),
        (
            "Price and risk",
            [
                "hedger_quote_spread_bps",
                "hedger_upfront_paid_base_total",
                "hedger_withheld_legs_total",
                "hedger_issuer_jtd_base",
                "hedger_issuer_credit_spread_risk_base",
            ],
        ),
    ):
        text = " ".join(below[row])
        assert all(metric in text for metric in metrics), row
    # tick age: seconds since the last tick, not the tick's timestamp
    assert any("time() - " in expr for expr in below["Expiry & clock"])


def test_dashboard_metric_names_are_defined_by_the_code() -> None:
    known = exposition_names()
    assert "hedger_ready" in known and "hedger_orders_total" in known
    for title, expr in dashboard_queries(DASHBOARD):
        for name in re.findall(r"hedger_[a-z_]+", expr):
            assert name in known, f"{title}: {name} is not a metric of streams/observe/metrics.py"


def test_dashboard_expressions_parse(tmp_path: Path) -> None:
    """promtool parses each expression (as a recording rule): no PromQL syntax errors."""
    queries = dashboard_queries(DASHBOARD)
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": expr}
                    for i, (_, expr) in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_matches_compose(compose: dict[str, Any]) -> None:
    grafana = services(compose)["grafana"]
    mounts = dict(bind_mounts(grafana))
    assert mounts["./config/grafana/provisioning"] == "/etc/grafana/provisioning"
    dashboards_dir = mounts["./config/grafana/dashboards"]

    source = provisioned_datasource()
    assert source["access"] == "proxy" and source.get("isDefault") is True
    match = re.fullmatch(r"http://([\w.-]+):(\d+)/?", source["url"])
    assert match is not None, source["url"]
    host, port = match.group(1), int(match.group(2))
    assert host in services(compose), f"datasource host {host} is not a compose service"
    assert port in [container for _, container in published_ports(services(compose)[host])]

    providers = load_yaml(DASHBOARD_PROVIDERS)
    assert providers["apiVersion"] == 1
    paths = [p["options"]["path"] for p in providers["providers"] if p["type"] == "file"]
    assert paths == [dashboards_dir]
    home = environment(grafana).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert home == f"{dashboards_dir}/{DASHBOARD.name}"


# -- Grafana dashboard-linter rules ------------------------------------------
# The rules of github.com/grafana/dashboard-linter (lint/rule_*.go) that apply
# to this dashboard, checked statically so they stay fixed: a templated
# Prometheus datasource used by every panel and target, job and instance
# variables matched by every selector, a unit on every panel, counters only
# under rate/irate/increase, $__rate_interval in (i)rate, titles and
# descriptions, reload on time change, not editable. And this project's own:
# stat panels aggregate over workers, no currency unit (the base currency is
# configurable: it is named in the title through $base_currency).

# The linter's rules live in scripts/lint-dashboard; these tests run it and use its functions.
LINT_SCRIPT = ROOT / "scripts" / "lint-dashboard"
_lint = runpy.run_path(str(LINT_SCRIPT))
COUNTER_IN_RATE = _lint["COUNTER_IN_RATE"]
RATE_RANGE = _lint["RATE_RANGE"]
dashboard_lint = _lint["dashboard_lint"]
outer_call_spans_all = _lint["outer_call_spans_all"]
walk_panels = _lint["walk_panels"]
TEMPLATED_DATASOURCE = _lint["TEMPLATED_DATASOURCE"]


def test_dashboard_passes_the_linter_rules() -> None:
    assert dashboard_lint(dashboard()) == []


def test_lint_dashboard_script_reports_findings_and_exits_non_zero(tmp_path: Path) -> None:
    clean = subprocess.run(
        [sys.executable, str(LINT_SCRIPT), str(DASHBOARD)], capture_output=True, text=True
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr
    board = dashboard()
    board["editable"] = True
    broken = tmp_path / "board.json"
    broken.write_text(json.dumps(board))
    found = subprocess.run(
        [sys.executable, str(LINT_SCRIPT), str(broken)], capture_output=True, text=True
    )
    assert found.returncode == 1
    assert found.stdout.splitlines() == ["uneditable-dashboard: editable must be false"]
    missing = subprocess.run(
        [sys.executable, str(LINT_SCRIPT), str(tmp_path / "absent.json")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "absent.json" in missing.stderr


def test_dashboard_base_currency_is_the_configured_one() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    configured = load_config(ROOT / "config" / "hedger.toml").risk.base_currency
    assert variables["base_currency"]["query"] == configured


def test_dashboard_lint_catches_each_regression() -> None:
    """Each way the dashboard used to break the linter is reported."""
    board = dashboard()
    panels = {panel["id"]: panel for panel in walk_panels(board["panels"])}
    stat = next(p for p in panels.values() if p["type"] == "stat" and "sum(" in json.dumps(p))
    money = next(p for p in panels.values() if "base_currency" in p.get("title", ""))
    counter = next(p for p in panels.values() if "_total" in json.dumps(p.get("targets")))
    stat["datasource"] = {"type": "prometheus", "uid": "prometheus"}
    stat["targets"][0]["expr"] = 'hedger_ready{job=~"$job", instance=~"$instance"}'
    money["fieldConfig"]["defaults"]["unit"] = "currencyUSD"
    money["title"] = money["title"].replace("(${base_currency})", "")
    counter["targets"][0]["expr"] = "sum by (side) (hedger_orders_total)"
    del counter["fieldConfig"]["defaults"]["unit"]
    board["editable"] = True
    board["templating"]["list"] = [
        v for v in board["templating"]["list"] if v["name"] not in ("datasource", "job")
    ]
    found = " | ".join(dashboard_lint(board))
    for expected in (
        "template-datasource-rule",
        "template-job-rule",
        "uneditable-dashboard",
        f"panel-datasource-rule: panel {stat['title']!r}",
        f"stat panel does not sum() across workers: panel {stat['title']!r}",
        f"panel-units-rule: panel {money['title']!r} has unit 'currencyUSD'",
        f"panel {money['title']!r} shows base-currency amounts",
        f"target-counter-agg-rule: raw counter in panel {counter['title']!r}",
        f"target-job-rule: hedger_orders_total in panel {counter['title']!r}",
        f"panel-units-rule: panel {counter['title']!r} has unit None",
    ):
        assert expected in found, expected


def test_counter_and_rate_interval_rules() -> None:
    ok = 'sum(rate(hedger_orders_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))'
    assert COUNTER_IN_RATE.findall(ok) and RATE_RANGE.findall(ok) == ["$__rate_interval"]
    assert not COUNTER_IN_RATE.findall("sum(hedger_orders_total)")
    assert RATE_RANGE.findall("rate(hedger_events_total[5m])") == ["5m"]
    assert outer_call_spans_all("sum(a) + sum(b)") is False
    assert outer_call_spans_all("sum by (x) (a{b='c'})") is True
