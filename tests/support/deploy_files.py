"""Deployment file paths and the metric names the code defines, for the deploy and alert tests.

May import pytest (promtool skips or fails a test without it).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "config" / "prometheus.yml"
METRICS_SOURCE = ROOT / "streams" / "observe" / "metrics.py"


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host path, container path) of every bind mount of a service."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                mounts.append((volume["source"], volume["target"]))
            continue
        source, _, rest = volume.partition(":")
        if source.startswith((".", "/", "~")):
            mounts.append((source, rest.split(":")[0]))
    return mounts


def defined_metrics() -> dict[str, str | None]:
    """Metric names defined in streams/observe/metrics.py, with their type where it can be told.

    Names are every `hedger_...` string literal; the type comes from the
    constructor the literal is the first argument of (Counter, Gauge,
    Histogram, Summary, or a *MetricFamily of a collector).
    """
    source = METRICS_SOURCE.read_text()
    names: dict[str, str | None] = dict.fromkeys(re.findall(r"[\"'](hedger_[a-z_]+)[\"']", source))
    kinds = {
        "Counter": "counter",
        "CounterMetricFamily": "counter",
        "Gauge": "gauge",
        "GaugeMetricFamily": "gauge",
        "Histogram": "histogram",
        "HistogramMetricFamily": "histogram",
        "Summary": "summary",
        "SummaryMetricFamily": "summary",
    }
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        first = node.args[0]
        if called in kinds and isinstance(first, ast.Constant) and isinstance(first.value, str):
            names[first.value] = kinds[called]
    return names


# Exposition names of each metric type, by suffix on the defined name.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    None: ("", "_total", "_bucket", "_sum", "_count", "_created"),
}


def exposition_names() -> set[str]:
    names: set[str] = set()
    for name, kind in defined_metrics().items():
        if kind == "counter":  # prometheus_client drops a `_total` given in the name
            name = name.removesuffix("_total")
        names.update(name + suffix for suffix in SUFFIXES[kind])
    return names


def promtool() -> str:
    """Path of promtool; skips the test without it, but fails in CI."""
    found = shutil.which("promtool")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("promtool is not installed in CI: run scripts/install-prometheus")
    pytest.skip("promtool is not installed (scripts/install-prometheus)")
