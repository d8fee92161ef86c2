"""Drain rate of the transactional worker next to the trivial Faust forwarder.

    .venv/bin/python -m benchmarks.txn_bench [--events 20000] [--bootstrap HOST:PORT]

Starts a local broker (scripts/kafka-local) unless --bootstrap is given. The
same backlog of bookings (4 partitions, keyed by loan_id) is drained, in one
run and on one broker, by
  1. the transactional worker (`streams.live.txn_worker`, exactly-once: one
     transactional producer per input partition, a transaction per partition
     and batch; loan events keyed by loan_id take two hops),
  2. `hedger worker` (the Faust-agent worker, three hops),
  3. the trivial single-hop Faust forwarder (`benchmarks.faust_forwarder`),
timed from "partitions assigned" / "Worker ready" to "every input committed
to the end". Also printed: the producers the worker holds and its time from
start to owning its partitions (the cost of a producer per input partition),
and publish -> order latency p50/p99 of bookings that each breach their
issuer's limit, published at --rate events/s (orders read read_committed: an
order counts when its transaction commits, at most one poll plus one commit
after its booking).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.genlog import BENCH_CONFIG, generate
from benchmarks.live_bench import (
    LATENCY_CONFIG,
    LatencyEvent,
    arguments,
    bench_forwarder,
    bench_worker,
    breaching_booking,
    broker,
    latency,
    percentiles,
    stop,
    wait_idle,
)
from streams.kafka_io import ensure_topics, publish_log
from streams.live.topology import hedger_topology
from tests.integration.txn_worker_main import topic_names

REPO = Path(__file__).resolve().parents[1]
PARTITIONS = 4


def start_txn(bootstrap: str, prefix: str, config: Path, work: Path) -> subprocess.Popen[bytes]:
    """The transactional worker on the topics `{prefix}-{field with dashes}`, once it owns
    its partitions."""
    out = work / f"{prefix}-worker.log"
    argv = [sys.executable, "-m", "tests.integration.txn_worker_main"]
    argv += [bootstrap, prefix, str(PARTITIONS), str(config)]
    process = subprocess.Popen(argv, cwd=REPO, stdout=out.open("wb"), stderr=subprocess.STDOUT)
    while b"assigned" not in out.read_bytes():
        if process.poll() is not None:
            raise RuntimeError(out.read_text()[-2000:])
        time.sleep(0.05)
    return process


def dashed_booking(i: int) -> LatencyEvent:
    """`breaching_booking` for topics named with dashes (`{prefix}-loan-bookings`)."""
    _, key, value = breaching_booking(i)
    return "loan-bookings", key, value


def txn_latency(bootstrap: str, work: Path, args: argparse.Namespace) -> list[float]:
    """Sorted publish -> order latencies (ms), orders read read_committed."""
    prefix = "tl"
    topics = topic_names(prefix)
    config = work / "latency.toml"
    config.write_text(LATENCY_CONFIG)
    inputs = [topics.loan_bookings, topics.cds_executions, topics.desk_clock, topics.control]
    asyncio.run(ensure_topics(bootstrap, [*inputs, topics.orders, topics.dead_letters], PARTITIONS))
    process = start_txn(bootstrap, prefix, config, work)
    rate, seconds, warmup = args.rate, args.seconds, args.warmup
    values = asyncio.run(latency(bootstrap, prefix, rate, seconds, warmup, dashed_booking))
    stop(process)
    return sorted(values)


def bench_txn(bootstrap: str, log: Path, config: Path, work: Path, n: int) -> tuple[float, float]:
    """(events/s, seconds from start to owning its partitions) of the transactional worker."""
    prefix = "tx"
    topics = topic_names(prefix)
    topology = hedger_topology(f"{prefix}-hedger", PARTITIONS, topics)
    inputs = [topics.loan_bookings, topics.cds_executions, topics.desk_clock, topics.control]
    asyncio.run(ensure_topics(bootstrap, [*inputs, topics.orders, topics.dead_letters], PARTITIONS))
    asyncio.run(publish_log(log, bootstrap, topic_map={"loan-bookings": topics.loan_bookings}))
    started = time.monotonic()
    process = start_txn(bootstrap, prefix, config, work)
    assigned = time.monotonic() - started
    seconds = wait_idle(bootstrap, topology.app_id, list(topology.input_topics))
    stop(process)
    return n / seconds, assigned


def main() -> None:
    args = arguments(__doc__, 20_000, "txn worker forwarder latency").parse_args()
    with broker(args.bootstrap, "txn-bench") as (work, bootstrap):
        log = work / "bookings.jsonl"
        log.write_text("\n".join(generate(args.events, 50)) + "\n")
        config = work / "bench.toml"
        config.write_text(BENCH_CONFIG)
        n = args.events
        results: dict[str, float] = {}
        if "txn" not in args.skip:
            results["txn worker"], assigned = bench_txn(bootstrap, log, config, work, n)
            producers = PARTITIONS * 7  # 4 inputs + 3 internal topics, each partition
            print(f"txn worker: {producers} transactional producers, owned after {assigned:.1f} s")
        if "worker" not in args.skip:  # `hedger worker`: the Faust agents, three hops
            results["hedger worker"] = bench_worker(bootstrap, log, config, work, n)
        if "forwarder" not in args.skip:
            results["forwarder"] = bench_forwarder(bootstrap, log, work, n)
        for name, rate in results.items():
            print(f"{name:>13}: {rate:>9,.0f} events/s ({n:,} events)")
        for name in ("txn worker", "hedger worker"):
            if name in results and "forwarder" in results:
                ratio = results[name] / results["forwarder"]
                print(f"{name} / Faust forwarder = {ratio:.2f} (goal >= 0.50)")
        if "latency" not in args.skip:
            values = txn_latency(bootstrap, work, args)
            p50, p99, top = percentiles(values)
            print(
                f"latency at {args.rate}/s: n={len(values)} p50={p50:.1f} ms "
                f"p99={p99:.1f} ms max={top:.1f} ms (goal p99 <= 250 ms)"
            )


if __name__ == "__main__":
    main()
