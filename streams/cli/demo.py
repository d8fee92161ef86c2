"""`hedger demo`: the whole loop on one machine, watched live in the terminal.

Owns: starting a local Kafka (scripts/kafka-local), the worker (on the v2.1
desk configuration by default) and the paper venue (the configuration's
sellers as counterparties, a share of orders left silent so that they
expire); publishing the demo log (`streams.cli.demo_feed`: bookings, a
desk-clock tick per simulated business day and, with `[pricing]`, a morning
quote feed in which one name widens past its guard and comes back) at a
pace a person can follow;
refreshing the live view (`streams.cli.demo_view`) from the worker's
/metrics and the order and execution topics; and stopping everything —
worker and broker — on Ctrl-C, SIGTERM, a closed terminal (SIGHUP) or after
--duration. A run that could not clean up (killed) is cleaned up by the
next one (`build/demo.pid`). Without Java it says so and runs the offline
replay of the demo log instead. Topic names and the connection come from
`streams.settings` (`HEDGER_*`, passed on to the worker it starts): with
--bootstrap (or HEDGER_BOOTSTRAP) it runs against that broker, else against
a local one it starts (PLAINTEXT). Imports rich, the standard library
(aiokafka inside the Kafka steps only) and `streams` (`cli.common`,
`cli.demo_feed`, `cli.demo_view`, `cli.replay`, `settings`, `venue.paper_venue`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

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
from streams.cli.demo_feed import QuoteFeed, read_demo_log
from streams.cli.demo_view import View
from streams.cli.replay import run_replay
from streams.settings import (
    ENV_PREFIX,
    KafkaSettings,
    SettingsError,
    WorkerSettings,
    flag_name,
    load_settings,
)
from streams.venue.paper_venue import run_venue

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO / "config" / "desk-v21.toml"
# Of the venue's answers: most orders filled, some rejected, a share never
# answered (they expire after the configuration's order_ttl_days and the bot
# sends a cancel request).
FILL_RATIO = 0.85
DEFAULT_SILENCE_RATIO = 0.2
# What a running demo started: {"demo": pid, "worker": pid, "kafka_dir": path or null}.
PID_FILE = REPO / "build" / "demo.pid"
DEFAULT_METRICS_PORT = 9108
# Seconds the publisher waits for the worker to apply what it sent to a topic.
APPLIED_WAIT = 5.0


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


async def _follow(
    kafka: KafkaSettings,
    topic: str,
    take: Callable[[dict[str, Any]], None],
    stop: asyncio.Event,
) -> None:
    from aiokafka import AIOKafkaConsumer  # the Kafka clients load with the command only

    consumer = AIOKafkaConsumer(
        topic,
        **kafka.client_options(),
        auto_offset_reset="earliest",
        isolation_level="read_committed",  # never what an aborted transaction wrote
    )
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


def quote_feed(config: Path | str) -> QuoteFeed | None:
    """The demo's quote feed for a configuration with [pricing] (its hedge tenors), else None."""
    from streams.settings import load_config

    try:
        loaded = load_config(config)
    except Exception:  # the worker reports a bad configuration in its own words
        return None
    if loaded.pricing is None:
        return None
    return QuoteFeed(tuple(loaded.hedge.tenors_years))


async def _publish(
    kafka: KafkaSettings,
    rate: float,
    view: View,
    stop: asyncio.Event,
    feed: QuoteFeed | None,
    applied: Applied,
) -> None:
    """The demo log: bookings at `rate` a second, each day's tick right after its bookings.

    Kafka orders records within a partition only: before a record of another
    topic than the last one is sent, the worker has applied what was sent
    (`Applied`), so the worker takes the log in its order, as the replay does.
    """
    from aiokafka import AIOKafkaProducer  # the Kafka clients load with the command only

    producer = AIOKafkaProducer(**kafka.client_options(), acks="all")
    await producer.start()
    quotes: list[asyncio.Future[Any]] = []  # a morning's quotes, sent together
    last = None
    try:
        for record in read_demo_log(feed=feed):
            if stop.is_set():
                return
            if last is not None and record["topic"] != last:
                await asyncio.gather(*quotes)
                await applied.wait(last, view, stop)
            last = record["topic"]
            value = record["value"]
            payload = value.encode() if isinstance(value, str) else json.dumps(value).encode()
            if record["topic"] == "cds-quotes":
                key = str(record["key"]).encode()
                quotes.append(await producer.send(kafka.topics.cds_quotes, payload, key=key))
                view.quotes += 1
                continue
            # the day's quotes are on the broker before its first booking
            await asyncio.gather(*quotes)
            quotes.clear()
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


class Applied:
    """Events of the demo's input topics the worker counts (`hedger_events_total`)."""

    def __init__(self, metrics_url: str, kafka: KafkaSettings, partitions: int) -> None:
        self.metrics_url, self.partitions = metrics_url, partitions
        t = kafka.topics
        self.topics = {
            "loan-bookings": t.loan_bookings,
            "cds-quotes": t.cds_quotes,
            "desk-clock": t.desk_clock,
        }

    async def wait(self, topic: str, view: View, stop: asyncio.Event) -> None:
        """Until the worker applied every record sent to `topic` (at most APPLIED_WAIT s).

        A tick is applied once per journal partition.
        """
        sent = {
            "loan-bookings": view.published,
            "cds-quotes": view.quotes,
            "desk-clock": view.ticks * self.partitions,
        }[topic]
        deadline = time.monotonic() + APPLIED_WAIT
        while not stop.is_set() and time.monotonic() < deadline:
            if await asyncio.to_thread(self.events, self.topics[topic]) >= sent:
                return
            await asyncio.sleep(0.02)

    def events(self, topic: str) -> float:
        """`hedger_events_total` of one topic, all outcomes (0 if /metrics does not answer)."""
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=2) as response:  # noqa: S310
                text = response.read().decode()
        except OSError:
            return 0.0
        label = f'topic="{topic}"'
        return sum(
            float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line.startswith("hedger_events_total{") and label in line
        )


async def _run(
    args: argparse.Namespace, kafka: KafkaSettings, metrics_url: str, console: Console
) -> None:
    stop = stop_event(args.duration)
    view = View()
    applied = Applied(metrics_url, kafka, load_settings(WorkerSettings).partitions)
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
        asyncio.create_task(
            _publish(kafka, args.rate, view, stop, quote_feed(args.config), applied)
        ),
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
        records = read_demo_log(feed=quote_feed(args.config))
        log.write_text("".join(json.dumps(record) + "\n" for record in records))
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
