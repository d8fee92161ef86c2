"""`hedger demo`: the whole loop on one machine, watched live in the terminal.

Owns: starting a local Kafka (scripts/kafka-local), the worker (on the v2
desk configuration by default) and the paper venue (the configuration's
sellers as counterparties, a share of orders left silent so that they
expire); the demo log: the sample's bookings with a desk-clock tick after
each simulated business day, published at a pace a person can follow; the
live view (per-issuer residual against limit, per-group R_G against L_G,
per-seller exposure against limit with blocked sellers, cancels sent and
expired orders still open, the last tick applied, recent orders, cancels
and fills, events per second, read from the worker's /metrics and the
order and execution topics); and stopping everything — worker and broker —
on Ctrl-C, SIGTERM, a closed terminal (SIGHUP) or after --duration. A run
that could not clean up (killed) is cleaned up by the next one
(`build/demo.pid`). Without Java it says so and runs the offline replay of
the demo log instead. Topic names and the connection come from
`streams.settings` (`HEDGER_*`, passed on to the worker it starts): with
--bootstrap (or HEDGER_BOOTSTRAP) it runs against that broker, else against
a local one it starts (PLAINTEXT). Imports aiokafka, rich,
prometheus_client's parser, the standard library and `streams`
(`cli.common`, `cli.replay`, `settings`, `venue.paper_venue`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from streams.cli.common import (
    KAFKA_FLAGS,
    Commands,
    add_kafka_arguments,
    fail,
    free_port,
    kafka_settings,
    number_in,
    reach_kafka,
    stop_event,
)
from streams.cli.replay import run_replay
from streams.settings import ENV_PREFIX, KafkaSettings, SettingsError, flag_name, load_settings
from streams.venue.paper_venue import run_venue

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "desk-day.jsonl"
DEFAULT_CONFIG = REPO / "config" / "desk-v2.toml"
# Of the venue's answers: most orders filled, some rejected, a share never
# answered (they expire after the configuration's order_ttl_days and the bot
# sends a cancel request).
FILL_RATIO = 0.85
DEFAULT_SILENCE_RATIO = 0.2
BAR = 24
BAR_FULL = Decimal("1.5")  # a full bar is 150% of the limit
MILLION = Decimal(1_000_000)
ZERO = Decimal(0)
# What a running demo started: {"demo": pid, "worker": pid, "kafka_dir": path or null}.
PID_FILE = REPO / "build" / "demo.pid"
DEFAULT_METRICS_PORT = 9108


class Hangup(Exception):
    """SIGHUP or SIGTERM while the demo starts or stops: clean up and leave."""


def _on_signal(signum: int, frame: Any) -> None:
    raise Hangup(signal.Signals(signum).name)


def _runs(pid: object, *words: bytes) -> bool:
    """Whether `pid` is alive with every one of `words` in its command line."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return all(word in cmdline for word in words)


def clean_stale_run(console: Console) -> str | None:
    """Stop what an earlier demo left running; None, or why this demo cannot start.

    An earlier demo that was killed (no chance to clean up) leaves its pid
    file, its worker and its broker behind. Its worker and broker are
    stopped and the file removed; a demo that is still running is left alone.
    """
    if not PID_FILE.exists():
        return None
    try:
        state = json.loads(PID_FILE.read_text())
    except ValueError:
        state = {}
    if not isinstance(state, dict):
        state = {}
    demo = state.get("demo")
    if demo != os.getpid() and _runs(demo, b"demo"):
        return f"another hedger demo is running (pid {demo}); stop it first"
    worker = state.get("worker")
    if _runs(worker, b"streams", b"worker"):
        assert isinstance(worker, int)
        os.kill(worker, signal.SIGKILL)  # the demo's own throw-away worker
    kafka_dir = state.get("kafka_dir")
    if isinstance(kafka_dir, str):
        _kafka_local("stop", "--dir", kafka_dir)
    PID_FILE.unlink(missing_ok=True)
    console.print(f"cleaned up after an earlier demo that did not stop (pid {demo})")
    return None


def _write_pid_file(worker: int | None, kafka_dir: Path | None) -> None:
    PID_FILE.parent.mkdir(parents=True, exist_ok=True)
    state = {"demo": os.getpid(), "worker": worker, "kafka_dir": kafka_dir and str(kafka_dir)}
    PID_FILE.write_text(json.dumps(state) + "\n")


def metrics_port(wanted: int, console: Console) -> int:
    """`wanted` if it is free on 127.0.0.1, else any free port (said on the console)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", wanted))
        except OSError:
            port = free_port()
            console.print(f"metrics port {wanted} is busy: using {port}")
            return port
    return wanted


def _worker_flags(args: argparse.Namespace, kafka: KafkaSettings) -> list[str]:
    """The connection flags given to the demo, passed on to its worker."""
    flags = []
    for field in KAFKA_FLAGS:
        value = getattr(args, field, None)
        if field == "bootstrap":
            value = kafka.bootstrap
        elif field == "security_protocol":
            value = kafka.security_protocol
        if value is not None:
            flags += [flag_name(field), str(value)]
    return flags


def _kafka_local(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "scripts" / "kafka-local"), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _event_day(value: object) -> date | None:
    """The UTC date of an event's `occurred_at`; None for a payload that has none."""
    if not isinstance(value, dict) or not isinstance(value.get("occurred_at"), str):
        return None
    try:
        return date.fromisoformat(value["occurred_at"][:10])
    except ValueError:
        return None


def business_days(start: date, end: date) -> Iterator[date]:
    """The weekdays from `start` up to, not including, `end`."""
    day = start
    while day < end:
        if day.weekday() < 5:
            yield day
        day += timedelta(days=1)


def clock_tick(day: date) -> dict[str, Any]:
    """The replay-log record of the desk clock's end-of-day tick for `day` (SPEC §2)."""
    tick = {
        "schema_version": 1,
        "event_id": f"tick-{day.isoformat()}",
        "event_type": "clock.tick",
        "occurred_at": f"{day.isoformat()}T23:59:59.999Z",
    }
    return {"topic": "desk-clock", "value": tick}


def demo_log(records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The sample's bookings, with one desk-clock tick per simulated business day.

    Records are replay-log records (SPEC §9). The `loan-bookings` records
    keep their order; the sample's recorded fills are left out (the paper
    venue answers the bot's own orders). The tick of a weekday comes after
    every booking of that day and before the first booking of a later day;
    a weekday without bookings, between the first and the last booking's
    date, gets its tick too. A payload without a readable date keeps its
    place and moves no day.
    """
    pending: date | None = None  # the first day not ticked yet
    for record in records:
        if record.get("topic") != "loan-bookings":
            continue
        day = _event_day(record.get("value"))
        if day is not None:
            if pending is None:
                pending = day
            for tick_day in business_days(pending, day):
                yield clock_tick(tick_day)
            pending = max(pending, day)
        yield record
    if pending is not None:
        for tick_day in business_days(pending, pending + timedelta(days=1)):
            yield clock_tick(tick_day)


def read_demo_log(sample: Path = SAMPLE) -> list[dict[str, Any]]:
    """`demo_log` of the sample file."""
    return list(demo_log(json.loads(line) for line in sample.read_text().splitlines() if line))


@dataclass
class Snapshot:
    """One scrape of the worker's /metrics, as the view shows it (money in Decimal)."""

    events: Decimal = ZERO
    issuers: dict[str, dict[str, Decimal]] = dataclasses.field(default_factory=dict)
    groups: dict[str, dict[str, Decimal]] = dataclasses.field(default_factory=dict)
    sellers: dict[str, dict[str, Decimal]] = dataclasses.field(default_factory=dict)
    cancels: Decimal | None = None  # cancel requests sent
    expired_open: Decimal | None = None  # expired orders no report has closed yet
    last_tick: date | None = None  # D of the last desk-clock tick applied


def parse_metrics(text: str) -> Snapshot:
    """The view's figures from a Prometheus exposition of the worker's metrics.

    Each value becomes the Decimal of its shortest decimal form, so what the
    view computes (ratios, millions) is Decimal arithmetic on the figures
    the worker exposed; non-finite values are left out.
    """
    snapshot = Snapshot()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not math.isfinite(sample.value):
                continue
            value = Decimal(repr(sample.value))
            name, labels = sample.name, sample.labels
            if name == "hedger_events_total":
                snapshot.events += value
            elif name.startswith("hedger_issuer_") and "issuer" in labels:
                key = name.removeprefix("hedger_issuer_")
                if "source" in labels:
                    key += "_" + labels["source"]
                snapshot.issuers.setdefault(labels["issuer"], {})[key] = value
            elif name.startswith("hedger_group_") and "group" in labels:
                key = name.removeprefix("hedger_group_")
                snapshot.groups.setdefault(labels["group"], {})[key] = value
            elif name.startswith("hedger_seller_") and "seller" in labels:
                key = name.removeprefix("hedger_seller_")
                snapshot.sellers.setdefault(labels["seller"], {})[key] = value
            elif name == "hedger_cancel_requests_total":
                snapshot.cancels = value
            elif name == "hedger_expired_orders_open":
                snapshot.expired_open = value
            elif name == "hedger_clock_last_tick_timestamp_seconds" and value > 0:
                snapshot.last_tick = datetime.fromtimestamp(float(value), UTC).date()
    return snapshot


def _millions(value: Decimal | None) -> str:
    return "–" if value is None else f"{value / MILLION:,.0f}m"


def _count(value: Decimal | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def _bar(ratio: Decimal, style: str) -> Text:
    """`ratio` as a bar of BAR cells; `|` marks the limit (ratio 1), a full bar is 150%."""
    filled = min(int(ratio * BAR / BAR_FULL), BAR)
    mark = int(BAR / BAR_FULL)
    return Text(
        "".join("|" if i == mark else ("█" if i < filled else "·") for i in range(BAR + 1)),
        style=style,
    )


def _table(title: str, *columns: str, right: tuple[str, ...] = ()) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left")
    return table


def issuer_table(issuers: dict[str, dict[str, Decimal]]) -> Table:
    """Each issuer's residual R against its limit L, and whether it is halted or in breach."""
    table = _table(
        "Residual against limit (bar: residual / limit, | = limit)",
        *("issuer", "exposure", "residual", "limit", "residual / limit", "utilisation", "state"),
        right=("exposure", "residual", "limit", "utilisation"),
    )
    for issuer, figures in sorted(issuers.items()):
        state = (
            "HALTED" if figures.get("halted") else "BREACH" if figures.get("in_breach") else "ok"
        )
        style = "red" if state == "BREACH" else "yellow" if state == "HALTED" else "green"
        limit = figures.get("limit_base")
        if not limit:  # a configured issuer without an event yet: only its halt is known
            table.add_row(
                issuer, "–", "–", "–", "", "", "HALTED" if state == "HALTED" else "no state yet"
            )
            continue
        ratio = figures.get("residual_base", ZERO) / limit
        table.add_row(
            issuer,
            _millions(figures.get("exposure_base", ZERO)),
            _millions(figures.get("residual_base", ZERO)),
            _millions(limit),
            _bar(ratio, style),
            f"{ratio:4.0%}",
            state,
        )
    return table


def group_table(groups: dict[str, dict[str, Decimal]]) -> Table:
    """Each group of connected clients: R_G (its members' residuals) against L_G (SPEC §12)."""
    table = _table(
        "Groups of connected clients: R_G against L_G (bar: R_G / L_G, | = limit)",
        *("group", "residual R_G", "limit L_G", "R_G / L_G", "utilisation", "state"),
        right=("residual R_G", "limit L_G", "utilisation"),
    )
    for group, figures in sorted(groups.items()):
        residual, limit = figures.get("residual_base"), figures.get("limit_base")
        if residual is None or not limit:  # no member has had a decision yet
            table.add_row(group, "–", _millions(limit), "", "", "no state yet")
            continue
        ratio = residual / limit
        breach = bool(figures.get("in_breach"))
        style = "red" if breach else "green"
        table.add_row(
            group,
            _millions(residual),
            _millions(limit),
            _bar(ratio, style),
            f"{ratio:4.0%}",
            Text("BREACH" if breach else "ok", style=style),
        )
    return table


def seller_table(sellers: dict[str, dict[str, Decimal]]) -> Table:
    """Each protection seller's exposure X_s against its limit L_s, blocked ones marked (§13)."""
    table = _table(
        "Sellers: exposure against limit (bar: exposure / limit, | = limit; BLOCKED: no more buys)",
        *("seller", "exposure", "limit", "exposure / limit", "utilisation", "state"),
        right=("exposure", "limit", "utilisation"),
    )
    for seller, figures in sorted(sellers.items()):
        exposure, limit = figures.get("exposure_base", ZERO), figures.get("limit_base")
        blocked = bool(figures.get("blocked"))
        style = "red" if blocked else "green"
        state = Text("BLOCKED" if blocked else "ok", style="bold red" if blocked else style)
        if not limit:  # a seller without a limit is never blocked
            table.add_row(seller, _millions(exposure), "no limit", "", "", state)
            continue
        ratio = exposure / limit
        bar = _bar(ratio, style)
        table.add_row(seller, _millions(exposure), _millions(limit), bar, f"{ratio:4.0%}", state)
    return table


def v2_status(snapshot: Snapshot) -> Text:
    """The desk clock's last tick, cancels sent, expired orders still open, blocked sellers."""
    blocked = sorted(s for s, figures in snapshot.sellers.items() if figures.get("blocked"))
    tick = snapshot.last_tick.isoformat() if snapshot.last_tick else "none yet"
    return Text(
        f"desk clock: last tick {tick}  cancels sent {_count(snapshot.cancels)}  "
        f"expired still open {_count(snapshot.expired_open)}  "
        f"blocked sellers: {', '.join(blocked) or 'none'}"
    )


def orders_table(records: Iterable[dict[str, Any]]) -> Table:
    """Records of the orders topic, newest first: new orders and cancel requests (§7)."""
    table = _table("Recent orders and cancels", "order_id", "issuer", "side", "notional", "reason")
    for record in records:
        if record.get("action") == "cancel":
            table.add_row(
                record["order_id"],
                record["issuer_id"],
                Text("CANCEL", style="magenta"),
                "",
                record.get("reason", ""),
            )
            continue
        table.add_row(
            record["order_id"],
            record["issuer_id"],
            record["side"].removesuffix("_PROTECTION"),
            f"{int(record['notional']):,}",
            record["reason"],
        )
    return table


class View:
    """What the live view shows, fed by the topics and by /metrics."""

    def __init__(self) -> None:
        self.orders: deque[dict[str, Any]] = deque(maxlen=8)
        self.fills: deque[dict[str, Any]] = deque(maxlen=8)
        self.order_count = 0  # new orders on the orders topic (cancel requests: /metrics)
        self.report_count = 0
        self.published = 0  # bookings
        self.ticks = 0  # desk-clock ticks
        self.metrics = Snapshot()
        self.rate = 0.0
        self._last: tuple[float, Decimal] | None = None

    def take_order(self, record: dict[str, Any]) -> None:
        self.orders.append(record)
        if record.get("action") != "cancel":
            self.order_count += 1

    def take_report(self, record: dict[str, Any]) -> None:
        if record.get("event_type", "execution.report") == "execution.report":
            self.fills.append(record)
            self.report_count += 1

    def scrape(self, url: str) -> None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own port
                text = response.read().decode()
        except OSError:
            return
        snapshot = parse_metrics(text)
        now = time.monotonic()
        if self._last is not None and now > self._last[0]:
            self.rate = float(snapshot.events - self._last[1]) / (now - self._last[0])
        self._last = (now, snapshot.events)
        self.metrics = snapshot

    def head(self, elapsed: float) -> Text:
        """Two status lines: the flow, then the v2 figures."""
        head = Text(
            f"cds-hedger demo  {elapsed:5.0f}s  published {self.published} + {self.ticks} ticks  "
            f"processed {self.metrics.events:.0f} ({self.rate:.1f} ev/s)  "
            f"orders {self.order_count}  execution reports {self.report_count}\n",
            style="bold",
        )
        head.append_text(v2_status(self.metrics))
        return head

    def render(self, elapsed: float) -> Group:
        parts: list[Any] = [self.head(elapsed), issuer_table(self.metrics.issuers)]
        if self.metrics.groups:
            parts.append(group_table(self.metrics.groups))
        if self.metrics.sellers:
            parts.append(seller_table(self.metrics.sellers))
        parts.append(orders_table(list(self.orders)[::-1]))
        fills = _table("Recent execution reports", "order_id", "status", "filled", "counterparty")
        for report in list(self.fills)[::-1]:
            fills.add_row(
                report["order_id"],
                report["status"],
                f"{int(report.get('filled_notional', '0').split('.')[0]):,}",
                report.get("counterparty", ""),
            )
        parts.append(fills)
        return Group(*parts)


async def _follow(
    kafka: KafkaSettings,
    topic: str,
    take: Callable[[dict[str, Any]], None],
    stop: asyncio.Event,
) -> None:
    consumer = AIOKafkaConsumer(topic, **kafka.client_options(), auto_offset_reset="earliest")
    await consumer.start()
    try:
        while not stop.is_set():
            for messages in (await consumer.getmany(timeout_ms=300)).values():
                for message in messages:
                    try:
                        value = json.loads(message.value)
                    except ValueError:
                        continue
                    if isinstance(value, dict):
                        take(value)
    finally:
        await consumer.stop()


async def _publish(kafka: KafkaSettings, rate: float, view: View, stop: asyncio.Event) -> None:
    """The demo log: bookings at `rate` a second, each day's tick right after its bookings."""
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all")
    await producer.start()
    try:
        for record in read_demo_log():
            if stop.is_set():
                return
            value = record["value"]
            payload = value.encode() if isinstance(value, str) else json.dumps(value).encode()
            if record["topic"] == "desk-clock":  # no key (SPEC §2)
                await producer.send_and_wait(kafka.topics.desk_clock, payload)
                view.ticks += 1
                continue
            await producer.send_and_wait(
                kafka.topics.loan_bookings, payload, key=str(record.get("key")).encode()
            )
            view.published += 1
            await asyncio.sleep(1 / rate)
    finally:
        await producer.stop()


async def _run(
    args: argparse.Namespace, kafka: KafkaSettings, metrics_url: str, console: Console
) -> None:
    stop = stop_event(args.duration)
    view = View()
    topics = kafka.topics
    tasks = [
        asyncio.create_task(
            run_venue(
                kafka,
                seed=args.seed,
                fill_ratio=FILL_RATIO,
                latency_ms=300,
                silence_ratio=args.silence_ratio,
                stop=stop,
            )
        ),
        asyncio.create_task(_publish(kafka, args.rate, view, stop)),
        asyncio.create_task(_follow(kafka, topics.orders, view.take_order, stop)),
        asyncio.create_task(_follow(kafka, topics.cds_executions, view.take_report, stop)),
    ]
    start = time.monotonic()
    if console.is_terminal:
        with Live(view.render(0), console=console, refresh_per_second=4) as live:
            while not stop.is_set():
                view.scrape(metrics_url)
                live.update(view.render(time.monotonic() - start))
                await asyncio.sleep(0.5)
    else:
        last_print = 0.0
        while not stop.is_set():
            view.scrape(metrics_url)
            if time.monotonic() - last_print >= 5:
                last_print = time.monotonic()
                console.print(view.head(last_print - start))
            await asyncio.sleep(0.5)
    await asyncio.gather(*tasks, return_exceptions=True)
    view.scrape(metrics_url)
    console.print(view.render(time.monotonic() - start))


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo; fall back to the offline replay without Java."""
    console = Console() if sys.stdout.isatty() else Console(width=120)
    if shutil.which("java") is None:
        console.print(
            "[yellow]Java is not installed, so no local Kafka can run here:[/] "
            "showing the offline replay of the demo log (bookings and ticks) instead."
        )
        out = REPO / "build"
        out.mkdir(exist_ok=True)
        log = out / "demo-log.jsonl"
        log.write_text("".join(json.dumps(record) + "\n" for record in read_demo_log()))
        return run_replay(
            args.config,
            log,
            out / "orders.jsonl",
            out / "dead-letters.jsonl",
            sellers_out=str(out / "sellers.jsonl"),
        )
    handlers = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGHUP, signal.SIGTERM)}
    try:
        return _demo(args, console)
    except Hangup as exc:
        console.print(f"demo stopped by {exc}")
        return 0
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _demo(args: argparse.Namespace, console: Console) -> int:
    problem = clean_stale_run(console)
    if problem is not None:
        return fail(problem)
    external = args.bootstrap is not None or f"{ENV_PREFIX}BOOTSTRAP" in os.environ
    kafka_dir: Path | None = None
    try:
        if external:  # an existing broker, with the HEDGER_* connection settings
            kafka = kafka_settings(args, KafkaSettings)
        else:
            port = args.kafka_port or free_port()
            # the broker started here: plain text on localhost; topic names from HEDGER_TOPIC_*
            kafka = load_settings(
                KafkaSettings, bootstrap=f"127.0.0.1:{port}", security_protocol="PLAINTEXT"
            )
            kafka_dir = REPO / "build" / "demo-kafka"
    except SettingsError as exc:
        return fail(str(exc))
    port_metrics = metrics_port(args.metrics_port, console)
    worker: subprocess.Popen[bytes] | None = None
    _write_pid_file(None, kafka_dir)
    try:
        if kafka_dir is None:
            problem = reach_kafka(kafka)
            if problem is not None:
                return fail(problem, 1)
            console.print(f"using the Kafka at {kafka.bootstrap}")
        else:
            # A broker an earlier run left on this folder (killed before its pid
            # file existed) would answer for the new one: stop it, then start clean.
            _kafka_local("stop", "--dir", str(kafka_dir))
            shutil.rmtree(kafka_dir, ignore_errors=True)
            console.print(f"starting Kafka on {kafka.bootstrap} (scripts/kafka-local) ...")
            started = _kafka_local(
                "start", "--port", kafka.bootstrap.rpartition(":")[2], "--dir", str(kafka_dir)
            )
            if started.returncode != 0:
                console.print(f"[red]Kafka did not start:[/]\n{started.stderr[-2000:]}")
                return 1
        worker = _start_worker(args, kafka, port_metrics)
        _write_pid_file(worker.pid, kafka_dir)
        metrics_url = f"http://127.0.0.1:{port_metrics}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                console.print("[red]the worker stopped; see build/demo-worker.log[/]")
                return 1
            try:
                with urllib.request.urlopen(metrics_url + "/ready", timeout=1):  # noqa: S310
                    break
            except OSError:
                time.sleep(0.3)
        console.print(
            f"worker ready: {metrics_url}/metrics  (logs: build/demo-worker.log); "
            "paper venue answering; publishing the sample's bookings with a desk-clock tick "
            "per business day. Ctrl-C stops."
        )
        asyncio.run(_run(args, kafka, metrics_url + "/metrics", console))
    finally:
        # A second hang-up or SIGTERM must not cut the clean-up short.
        for sig in (signal.SIGHUP, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        if kafka_dir is not None:
            _kafka_local("stop", "--dir", str(kafka_dir))
        PID_FILE.unlink(missing_ok=True)
        console.print(
            "demo stopped: worker and Kafka are down."
            if kafka_dir is not None
            else "demo stopped: worker is down (the broker was not ours)."
        )
    return 0


def _start_worker(
    args: argparse.Namespace, kafka: KafkaSettings, port: int
) -> subprocess.Popen[bytes]:
    """The worker, in a session of its own: the demo alone decides when it stops."""
    worker_log = (REPO / "build" / "demo-worker.log").open("wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streams",
            "worker",
            "--config",
            args.config,
            *_worker_flags(args, kafka),
            "--metrics-port",
            str(port),
            "--data-dir",
            str(REPO / "build" / "demo-worker"),
            "--log-format",
            "json",
        ],
        cwd=REPO,
        env=dict(os.environ),
        stdout=worker_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def add_demo_command(commands: Commands) -> None:
    """Register `hedger demo`."""
    demo = commands.add_parser("demo", help="Kafka + worker + paper venue, watched live")
    demo.add_argument("--config", default=str(DEFAULT_CONFIG), help="the worker's configuration")
    demo.add_argument("--duration", type=float, default=0, help="stop after S seconds (0: Ctrl-C)")
    demo.add_argument("--rate", type=float, default=4.0, help="bookings published per second")
    demo.add_argument(
        "--metrics-port",
        type=number_in(int, 1, 65535),
        default=DEFAULT_METRICS_PORT,
        help="the worker's /metrics port; a free one if it is busy",
    )
    demo.add_argument(
        "--kafka-port",
        type=number_in(int, 0, 65534),
        default=0,
        help="port of the local broker the demo starts (0: a free port)",
    )
    add_kafka_arguments(demo)
    demo.add_argument("--seed", type=int, default=7, help="paper venue seed")
    demo.add_argument(
        "--silence-ratio",
        type=number_in(float, 0, 1),
        default=DEFAULT_SILENCE_RATIO,
        help="share of orders the paper venue leaves unanswered (the bot expires and cancels them)",
    )
    demo.set_defaults(func=cmd_demo)
