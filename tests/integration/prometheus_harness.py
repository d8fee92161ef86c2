"""A throwaway local Prometheus for the metrics tests, and the dashboard's queries.

Owns: `LocalPrometheus`, a context manager that runs Debian's `prometheus`
binary on 127.0.0.1 (free port, temporary storage) scraping the given
targets every second, with helpers to query its HTTP API; and
`dashboard_queries`, which reads the Grafana dashboard and returns every
panel's PromQL with Grafana's variables substituted, ready to run against it.
Imports the standard library only (no pytest), so it can be used by hand:

    with LocalPrometheus(["127.0.0.1:9108"]) as prom:
        prom.wait_for_target_up(30)
        print(prom.query("hedger_ready"))

Prometheus is installed by `scripts/install-prometheus`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from streams.cli.common import free_port

# Grafana's variables, as the dashboard uses them, and what the tests put in
# their place: every issuer, and windows that hold several 1 s scrapes.
GRAFANA_VARIABLES: dict[str, str] = {
    "issuer": ".*",
    "job": ".+",
    "instance": ".+",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "5m",
}
# `$name`, `${name}` or `${name:format}`; not `$1` (a label_replace group).
_VARIABLE = re.compile(r"\$\{([A-Za-z_]\w*)(?::\w+)?\}|\$([A-Za-z_]\w*)")


class PrometheusError(RuntimeError):
    """Prometheus failed to start, or its API answered with an error."""


def find_prometheus() -> str:
    """Path of the prometheus binary: on PATH, else Debian's /usr/bin/prometheus."""
    found = shutil.which("prometheus")
    if found:
        return found
    if Path("/usr/bin/prometheus").is_file():
        return "/usr/bin/prometheus"
    raise PrometheusError("prometheus is not installed: run scripts/install-prometheus")


class LocalPrometheus:
    """A Prometheus on 127.0.0.1 scraping `targets` ("127.0.0.1:PORT") every second.

    Starts on `__enter__` (or `start()`), stops on `__exit__` (or `stop()`),
    and removes its temporary config and storage on stop.
    """

    def __init__(
        self,
        targets: list[str],
        *,
        job: str = "cds-hedger",
        scrape_interval: str = "1s",
        start_timeout: float = 30.0,
        binary: str | None = None,
    ) -> None:
        self.targets = list(targets)
        self.job = job
        self.scrape_interval = scrape_interval
        self.start_timeout = start_timeout
        self.binary = binary
        self.port = 0
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._log: Any = None

    # -- lifecycle -------------------------------------------------------

    def __enter__(self) -> LocalPrometheus:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def config_text(self) -> str:
        """The prometheus.yml this instance runs with (JSON is valid YAML)."""
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [
                {
                    "job_name": self.job,
                    "scrape_interval": self.scrape_interval,
                    "scrape_timeout": self.scrape_interval,
                    "metrics_path": "/metrics",
                    "static_configs": [{"targets": self.targets}],
                }
            ],
        }
        return json.dumps(config, indent=2) + "\n"

    def start(self) -> None:
        if self._process is not None:
            return
        binary = self.binary or find_prometheus()
        self._tmp = tempfile.TemporaryDirectory(prefix="hedger-prometheus-")
        root = Path(self._tmp.name)
        config = root / "prometheus.yml"
        config.write_text(self.config_text())
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = (root / "prometheus.log").open("wb")
        self._process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise PrometheusError(
                    f"prometheus exited with {self._process.returncode}: {self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise PrometheusError(
            f"prometheus not ready after {self.start_timeout:g}s: {self.log_tail()}"
        )

    def stop(self) -> None:
        """Stop Prometheus (SIGTERM, then SIGKILL after 10 s) and remove its files."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines Prometheus logged (for failure messages)."""
        if self._tmp is None:
            return ""
        log = Path(self._tmp.name) / "prometheus.log"
        if not log.is_file():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    # -- HTTP API --------------------------------------------------------

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; returns `data`, raises PrometheusError unless status is success."""
        if not self.url:
            raise PrometheusError("prometheus is not running")
        query = urllib.parse.urlencode(params)
        url = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:  # 400/422/503 carry an error body
            try:
                body = json.load(exc)
            except ValueError:
                raise PrometheusError(f"{url}: HTTP {exc.code}") from exc
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; the result list (vector samples, or a one-item list for a scalar)."""
        data = self.api("query", query=expr)
        result = data["result"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": result}]
        assert isinstance(result, list)
        return result

    def targets_health(self) -> list[dict[str, Any]]:
        """The active targets: scrapeUrl, health ("up"/"down"/"unknown") and lastError."""
        active: list[dict[str, Any]] = self.api("targets", state="active")["activeTargets"]
        return active

    def wait_for_target_up(self, timeout: float = 30.0) -> None:
        """Wait until every configured target has been scraped successfully."""
        deadline = time.monotonic() + timeout
        seen: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            seen = self.targets_health()
            if len(seen) >= len(self.targets) and all(t.get("health") == "up" for t in seen):
                return
            time.sleep(0.25)
        states = [(t.get("scrapeUrl"), t.get("health"), t.get("lastError")) for t in seen]
        raise PrometheusError(f"targets not up after {timeout:g}s: {states}")

    def wait_for(self, expr: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll `expr` until it returns at least one sample; return the result."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() >= deadline:
                raise PrometheusError(f"{expr!r} returned no data within {timeout:g}s")
            time.sleep(0.5)


# -- Grafana dashboard -------------------------------------------------------


def substitute_variables(expr: str, values: dict[str, str] | None = None) -> str:
    """Replace `$name` and `${name}` (`${name:format}` too) by the test values.

    Raises ValueError for a variable with no test value, so a new dashboard
    variable cannot slip into an expression that the tests never evaluate.
    """
    table = GRAFANA_VARIABLES if values is None else values

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in table:
            raise ValueError(f"Grafana variable ${name} has no test value in {expr!r}")
        return table[name]

    return _VARIABLE.sub(replace, expr)


def _walk_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in panels:
        found.append(panel)
        found.extend(_walk_panels(panel.get("panels") or []))  # collapsed rows nest panels
    return found


def dashboard_panels(path: str | Path) -> list[dict[str, Any]]:
    """Every panel of a dashboard JSON, panels nested in rows included."""
    dashboard = json.loads(Path(path).read_text())
    return _walk_panels(dashboard.get("panels") or [])


# Series that exist only with a [pricing] table (contract v2.1): a desk without it has none.
PRICING_ONLY = (
    "hedger_quote_",
    "hedger_upfront_",
    "hedger_withheld_",
    "hedger_issuer_credit_spread_risk_base",
    "hedger_issuer_jtd_base",
)


def needs_pricing(expr: str) -> bool:
    """Whether a query reads a series that only a desk with `[pricing]` exports."""
    return any(marker in expr for marker in PRICING_ONLY)


def dashboard_queries(path: str | Path) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel, variables substituted."""
    queries: list[tuple[str, str]] = []
    for panel in dashboard_panels(path):
        for target in panel.get("targets") or []:
            expr = target.get("expr")
            if expr:
                title = str(panel.get("title", f"panel {panel.get('id')}"))
                queries.append((title, substitute_variables(expr)))
    return queries
