"""End-to-end throughput and latency of the live worker on real Kafka.

    .venv/bin/python -m benchmarks.live_bench [--events 100000] [--bootstrap HOST:PORT]

Starts a local broker (scripts/kafka-local) unless --bootstrap is given.
Throughput: the same backlog of bookings (4 partitions) is drained, in one
run and on one broker, by
  1. the hedger worker (route -> loans -> issuers, three Kafka hops),
  2. a trivial single-hop Faust forwarder written like the worker's agents,
  3. a bare aiokafka consume -> produce loop,
timed from "ready" to "every stage committed to the end". Latency: bookings
that each breach their issuer's limit are published at --rate events/s;
publish -> order latency p50/p99 comes from the order's arrival.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.genlog import BENCH_CONFIG, generate
from streams.cli.common import free_port
from streams.kafka_io import committed_lag, ensure_topics, publish_log
from streams.settings import TopicNames

REPO = Path(__file__).resolve().parents[1]
# The worker's input topics (TopicNames fields), as named in a replay log.
INPUTS = {
    "loan_bookings": "loan-bookings",
    "cds_executions": "cds-executions",
    "desk_clock": "desk-clock",
}
# What a worker consumes: its inputs and its internal topics.
CONSUMED = (*INPUTS, "loans", "journal", "seller_parts")
# A latency event: (TopicNames field of its topic, message key, value).
LatencyEvent = tuple[str, str | None, dict[str, Any]]
LATENCY_CLOCK = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
# Every booking of 900m breaches the 500m default limit: one order each.
LATENCY_CONFIG = BENCH_CONFIG.replace('"200000000000000"', '"500000000"')


async def idle(bootstrap: str, group: str, topics: list[str], timeout: float = 900) -> float:
    """Seconds until the group has committed every topic to its end."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if await committed_lag(bootstrap, group, topics) == 0:
            return time.monotonic() - start
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{group} still lagging after {timeout}s")


def wait_idle(bootstrap: str, group: str, topics: list[str], timeout: float = 900) -> float:
    return asyncio.run(idle(bootstrap, group, topics, timeout))


def consumed(prefix: str) -> list[str]:
    """The topics a worker started with `worker_env(prefix)` consumes."""
    return [f"{prefix}-{field}" for field in CONSUMED]


def start_process(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)
    while b"Worker ready" not in log.read_bytes():
        if process.poll() is not None:
            raise RuntimeError(log.read_text()[-2000:])
        time.sleep(0.05)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(60)


def worker_env(prefix: str) -> dict[str, str]:
    env = dict(os.environ)
    for field in TopicNames.model_fields:
        env[f"HEDGER_TOPIC_{field.upper()}"] = f"{prefix}-{field}"
    return env


def run_worker(bootstrap: str, prefix: str, config: Path, work: Path) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "streams",
        "worker",
        "--config",
        str(config),
        "--bootstrap",
        bootstrap,
        "--app-id",
        f"{prefix}-app",
        "--partitions",
        "4",
        "--data-dir",
        str(work / f"{prefix}-data"),
        "--log-level",
        "info",
    ]
    return start_process(argv, worker_env(prefix), work / f"{prefix}.log")


def bench_worker(
    bootstrap: str, log: Path, config: Path, work: Path, n: int, prefix: str = "bw"
) -> float:
    """Events/s of a worker draining the log (its inputs, published first) to the end."""
    asyncio.run(ensure_topics(bootstrap, [f"{prefix}-{field}" for field in INPUTS], 4))
    topic_map = {name: f"{prefix}-{field}" for field, name in INPUTS.items()}
    asyncio.run(publish_log(log, bootstrap, topic_map=topic_map))
    process = run_worker(bootstrap, prefix, config, work)
    seconds = wait_idle(bootstrap, f"{prefix}-app", consumed(prefix))
    stop(process)
    return n / seconds


def bench_forwarder(bootstrap: str, log: Path, work: Path, n: int) -> float:
    asyncio.run(ensure_topics(bootstrap, ["fw-in", "fw-out"], 4))
    asyncio.run(publish_log(log, bootstrap, topic_map={"loan-bookings": "fw-in"}))
    argv = [
        sys.executable,
        "-m",
        "benchmarks.faust_forwarder",
        "--bootstrap",
        bootstrap,
        "--input",
        "fw-in",
        "--output",
        "fw-out",
        "--app-id",
        "fw-app",
        "--data-dir",
        str(work / "fw-data"),
    ]
    process = start_process(argv, dict(os.environ), work / "forwarder.log")
    seconds = wait_idle(bootstrap, "fw-app", ["fw-in"])
    stop(process)
    return n / seconds


async def bare_loop(bootstrap: str, n: int) -> float:
    consumer = AIOKafkaConsumer(
        "ak-in",
        bootstrap_servers=bootstrap,
        group_id="ak-app",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    seen = 0
    start = time.monotonic()
    while seen < n:
        batch = await consumer.getmany(timeout_ms=500, max_records=1000)
        for messages in batch.values():
            for message in messages:
                await producer.send("ak-out", message.value, key=message.key)
                seen += 1
        await producer.flush()
        await consumer.commit()
    seconds = time.monotonic() - start
    await consumer.stop()
    await producer.stop()
    return n / seconds


def bench_aiokafka(bootstrap: str, log: Path, n: int) -> float:
    asyncio.run(ensure_topics(bootstrap, ["ak-in", "ak-out"], 4))
    asyncio.run(publish_log(log, bootstrap, topic_map={"loan-bookings": "ak-in"}))
    return asyncio.run(bare_loop(bootstrap, n))


arrivals: list[tuple[float, float]] = []  # (publish time, latency ms), for --timeline
PACE = 0.005  # seconds between the latency generator's sends of the events due
FIRST_LEG = b'#1"'  # in an order's JSON: its order id ends with #1


def stamp(at: datetime) -> str:
    """An `occurred_at` value."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def breaching_booking(i: int) -> LatencyEvent:
    """The i-th latency event: 900m booked for a new issuer, one order under LATENCY_CONFIG."""
    value = {
        "schema_version": 1,
        "event_id": f"lat-{i}",
        "event_type": "loan.booked",
        "occurred_at": stamp(LATENCY_CLOCK + timedelta(seconds=i)),
        "loan_id": f"LAT-{i}",
        "sequence": 1,
        "issuer_id": f"LATISS{i}",
        "notional": "900000000",
        "currency": "USD",
        "maturity_date": "2031-01-01",
    }
    return "loan_bookings", f"LAT-{i}", value


async def latency(
    bootstrap: str,
    prefix: str,
    rate: int,
    seconds: float,
    warmup: float,
    event: Callable[[int], LatencyEvent] = breaching_booking,
) -> list[float]:
    """Publish `event(i)` at `rate`/s; return publish -> order latencies (ms).

    An event's latency is the arrival of its first order (`{event_id}#1`);
    events that order nothing, and orders of a tick's units, are not counted.
    First, events go one per 100 ms until an order arrives: after "ready"
    Faust takes seconds to assign and fetch, a backlog that a worker with
    little headroom over `rate` would carry through the run. Then the first
    `warmup` seconds are published at `rate` but not measured: they pay for
    the first fetches, metadata and connection set-up.

    The generator shares the machine with what it measures, so it spends as
    little as it can: the payloads are encoded before the clock starts, the
    events due are sent together every `PACE` seconds (each timed from its
    own send), and only orders numbered `#1` are parsed.
    """
    consumer = AIOKafkaConsumer(
        f"{prefix}-orders",
        bootstrap_servers=bootstrap,
        auto_offset_reset="latest",
        isolation_level="read_committed",  # an order counts once its transaction commits
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await consumer.start()
    await producer.start()
    await asyncio.sleep(1.0)  # let the consumer take its "latest" position
    sent: dict[str, float] = {}
    latencies: list[float] = []
    arrivals.clear()
    ordered = asyncio.Event()
    measure_from = float("inf")

    async def receive() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for messages in batches.values():
                ordered.set()
                for message in messages:
                    if FIRST_LEG not in message.value:
                        continue
                    order = json.loads(message.value)
                    trigger = order["trigger_event_id"]
                    t0 = sent.get(trigger)
                    if (
                        t0 is not None
                        and order["order_id"] == f"{trigger}#1"
                        and t0 >= measure_from
                    ):
                        latencies.append((now - t0) * 1000)
                        arrivals.append((t0, latencies[-1]))

    def encoded(i: int) -> tuple[str, str, bytes | None, bytes]:
        field, key, value = event(i)
        topic = f"{prefix}-{field}"
        return (
            topic,
            value["event_id"],
            None if key is None else key.encode(),
            json.dumps(value).encode(),
        )

    async def send(message: tuple[str, str, bytes | None, bytes]) -> None:
        topic, event_id, key, value = message
        sent[event_id] = time.perf_counter()
        await producer.send(topic, value, key=key)

    receiver = asyncio.create_task(receive())
    primed = 0
    while not ordered.is_set():
        await send(encoded(primed))
        primed += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ordered.wait(), 0.1)
    total = int(rate * (seconds + warmup))
    messages = [encoded(primed + i) for i in range(total)]
    start = time.perf_counter()
    measure_from = start + warmup
    i = 0
    while i < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        while i < due:
            await send(messages[i])
            i += 1
        await asyncio.sleep(PACE)
    await asyncio.sleep(3.0)
    receiver.cancel()
    await producer.stop()
    await consumer.stop()
    return latencies


def measure_latency(
    bootstrap: str,
    prefix: str,
    config: str,
    work: Path,
    args: argparse.Namespace,
    event: Callable[[int], LatencyEvent] = breaching_booking,
) -> list[float]:
    """Sorted publish -> order latencies (ms) of a worker under `config` (TOML text)."""
    path = work / f"{prefix}.toml"
    path.write_text(config)
    topics = [f"{prefix}-{field}" for field in (*INPUTS, "orders")]
    asyncio.run(ensure_topics(bootstrap, topics, 4))
    process = run_worker(bootstrap, prefix, path, work)
    values = asyncio.run(latency(bootstrap, prefix, args.rate, args.seconds, args.warmup, event))
    stop(process)
    print_timeline(args)
    return sorted(values)


def print_timeline(args: argparse.Namespace) -> None:
    """With --timeline: the last latency run's p50 and max per second of publishing."""
    if args.timeline and arrivals:
        start = min(t for t, _ in arrivals)
        for second in range(int(args.seconds + args.warmup)):
            window = sorted(v for t, v in arrivals if second <= t - start < second + 1)
            if window:
                print(
                    f"  second {second:>3}: n={len(window)} "
                    f"p50={window[len(window) // 2]:.1f}"
                    f" max={window[-1]:.1f} ms"
                )


def percentiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p99 and max of sorted latencies (NaN without any)."""
    if not values:
        return math.nan, math.nan, math.nan
    return statistics.median(values), values[int(len(values) * 0.99) - 1], values[-1]


def kafka_local(command: str, state: Path) -> str:
    """`scripts/kafka-local start|stop` on a free port with its own state folder.

    Returns the bootstrap address the script prints last on a start.
    """
    port_file = state.with_suffix(".port")
    if command == "start":
        port_file.write_text(str(free_port()))
    port = port_file.read_text()
    proc = subprocess.run(
        [str(REPO / "scripts" / "kafka-local"), command, "--port", port, "--dir", str(state)],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if proc.returncode != 0:
        sys.exit(f"scripts/kafka-local {command} failed: {proc.stderr.strip() or proc.stdout}")
    lines = proc.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def arguments(doc: str, events: int, skip: str) -> argparse.ArgumentParser:
    """The options of a live benchmark; `skip` lists the parts --skip may name."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--events", type=int, default=events)
    parser.add_argument("--bootstrap")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=10.0, help="unmeasured seconds first")
    parser.add_argument("--timeline", action="store_true", help="latency per second")
    parser.add_argument("--skip", nargs="*", default=[], help=skip)
    return parser


@contextlib.contextmanager
def broker(bootstrap: str | None, name: str) -> Iterator[tuple[Path, str]]:
    """A work folder and a broker: `bootstrap`, else a scripts/kafka-local one for the run."""
    work = Path(tempfile.mkdtemp(prefix=f"hedger-{name}-"))
    state = None
    if bootstrap is None:
        state = work / "kafka"
        bootstrap = kafka_local("start", state)
    try:
        yield work, bootstrap
    finally:
        if state is not None:
            kafka_local("stop", state)


def main() -> None:
    args = arguments(__doc__, 100_000, "worker forwarder aiokafka latency").parse_args()
    with broker(args.bootstrap, "live-bench") as (work, bootstrap):
        log = work / "bookings.jsonl"
        log.write_text("\n".join(generate(args.events, 50)) + "\n")
        config = work / "bench.toml"
        config.write_text(BENCH_CONFIG)
        n = args.events
        results: dict[str, float] = {}
        if "worker" not in args.skip:
            results["worker"] = bench_worker(bootstrap, log, config, work, n)
        if "forwarder" not in args.skip:
            results["forwarder"] = bench_forwarder(bootstrap, log, work, n)
        if "aiokafka" not in args.skip:
            results["aiokafka"] = bench_aiokafka(bootstrap, log, n)
        for name, rate in results.items():
            print(f"{name:>10}: {rate:>9,.0f} events/s ({n:,} events)")
        if "worker" in results and "forwarder" in results:
            print(
                "worker / Faust forwarder = "
                f"{results['worker'] / results['forwarder']:.2f} (goal >= 0.50)"
            )
        if "worker" in results and "aiokafka" in results:
            print(f"worker / aiokafka loop   = {results['worker'] / results['aiokafka']:.2f}")
        if "latency" not in args.skip:
            values = measure_latency(bootstrap, "lt", LATENCY_CONFIG, work, args)
            p50, p99, top = percentiles(values)
            print(
                f"latency at {args.rate}/s: n={len(values)} p50={p50:.1f} ms "
                f"p99={p99:.1f} ms max={top:.1f} ms (goal p99 <= 100 ms)"
            )


if __name__ == "__main__":
    main()
