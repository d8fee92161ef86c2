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
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.genlog import BENCH_CONFIG, generate
from streams.cli.common import free_port
from streams.kafka_io import committed_lag, ensure_topics, publish_log

REPO = Path(__file__).resolve().parents[1]


def wait_idle(bootstrap: str, group: str, topics: list[str], timeout: float = 900) -> float:
    """Seconds until the group has committed every topic to its end."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if asyncio.run(committed_lag(bootstrap, group, topics)) == 0:
            return time.monotonic() - start
        time.sleep(0.1)
    raise TimeoutError(f"{group} still lagging after {timeout}s")


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
    for field in ("loan_bookings", "cds_executions", "loans", "journal", "orders", "dead_letters"):
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


def bench_worker(bootstrap: str, log: Path, config: Path, work: Path, n: int) -> float:
    prefix = "bw"
    asyncio.run(
        ensure_topics(bootstrap, [f"{prefix}-loan_bookings", f"{prefix}-cds_executions"], 4)
    )
    asyncio.run(publish_log(log, bootstrap, topic_map={"loan-bookings": f"{prefix}-loan_bookings"}))
    process = run_worker(bootstrap, prefix, config, work)
    seconds = wait_idle(
        bootstrap, f"{prefix}-app", [f"{prefix}-{t}" for t in ("loan_bookings", "loans", "journal")]
    )
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


async def latency(
    bootstrap: str, prefix: str, rate: int, seconds: float, warmup: float
) -> list[float]:
    """Publish breaching bookings at `rate`/s; return publish -> order latencies (ms).

    The first `warmup` seconds are published the same way but not measured:
    they pay for the first fetches, metadata and connection set-up.
    """
    consumer = AIOKafkaConsumer(
        f"{prefix}-orders", bootstrap_servers=bootstrap, auto_offset_reset="latest"
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await consumer.start()
    await producer.start()
    await asyncio.sleep(1.0)  # let the consumer take its "latest" position
    sent: dict[str, float] = {}
    latencies: list[float] = []
    arrivals.clear()

    async def receive() -> None:
        async for message in consumer:
            order = json.loads(message.value)
            t0 = sent.get(order["trigger_event_id"])
            if t0 is not None and order["order_id"].endswith("#1") and t0 >= measure_from:
                latencies.append((time.perf_counter() - t0) * 1000)
                arrivals.append((t0, latencies[-1]))

    receiver = asyncio.create_task(receive())
    clock = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    total = int(rate * (seconds + warmup))
    start = time.perf_counter()
    measure_from = start + warmup
    for i in range(total):
        target = start + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        event_id = f"lat-{i}"
        stamp = (clock + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        value = {
            "schema_version": 1,
            "event_id": event_id,
            "event_type": "loan.booked",
            "occurred_at": stamp,
            "loan_id": f"LAT-{i}",
            "sequence": 1,
            "issuer_id": f"LATISS{i}",
            "notional": "900000000",
            "currency": "USD",
            "maturity_date": "2031-01-01",
        }
        sent[event_id] = time.perf_counter()
        await producer.send(
            f"{prefix}-loan_bookings", json.dumps(value).encode(), key=f"LAT-{i}".encode()
        )
    await asyncio.sleep(3.0)
    receiver.cancel()
    await producer.stop()
    await consumer.stop()
    return latencies


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--bootstrap")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=10.0, help="unmeasured seconds first")
    parser.add_argument("--timeline", action="store_true", help="latency per second")
    parser.add_argument("--skip", nargs="*", default=[], help="worker forwarder aiokafka latency")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hedger-live-bench-"))
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        broker = work / "kafka"
        bootstrap = kafka_local("start", broker)
    try:
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
            lat_config = work / "latency.toml"
            # every booking of 900m breaches the 500m default limit: one order each
            lat_config.write_text(BENCH_CONFIG.replace('"200000000000000"', '"500000000"'))
            prefix = "lt"
            asyncio.run(
                ensure_topics(bootstrap, [f"{prefix}-loan_bookings", f"{prefix}-orders"], 4)
            )
            process = run_worker(bootstrap, prefix, lat_config, work)
            values = asyncio.run(latency(bootstrap, prefix, args.rate, args.seconds, args.warmup))
            stop(process)
            values.sort()
            p50 = statistics.median(values)
            p99 = values[int(len(values) * 0.99) - 1]
            if args.timeline:
                start = min(t for t, _ in arrivals)
                for second in range(int(args.seconds + args.warmup)):
                    window = sorted(v for t, v in arrivals if second <= t - start < second + 1)
                    if window:
                        print(
                            f"  second {second:>3}: n={len(window)} "
                            f"p50={window[len(window) // 2]:.1f}"
                            f" max={window[-1]:.1f} ms"
                        )
            print(
                f"latency at {args.rate}/s: n={len(values)} p50={p50:.1f} ms "
                f"p99={p99:.1f} ms max={values[-1]:.1f} ms (goal p99 <= 100 ms)"
            )
    finally:
        if broker is not None:
            kafka_local("stop", broker)


if __name__ == "__main__":
    main()
