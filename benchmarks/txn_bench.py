"""Drain rate and latency of the transactional worker next to the trivial Faust forwarder.

    .venv/bin/python -m benchmarks.txn_bench [--events 20000] [--rates 300 1000]
        [--linger-ms 0] [--partitions 4] [--timeline] [--skip worker]
        [--baseline-src DIR] [--bootstrap HOST:PORT]

Starts a local broker (scripts/kafka-local) unless --bootstrap is given. The
same backlog of bookings (4 partitions, keyed by loan_id) is drained, in one
run and on one broker, by
  1. the transactional worker (`streams.live.txn_worker`, exactly-once: one
     transactional producer per input partition, a transaction per partition
     and batch; loan events keyed by loan_id take two hops), run by
     `benchmarks.txn_process`,
  2. `hedger worker`,
  3. the trivial single-hop Faust forwarder (`benchmarks.faust_forwarder`),
timed from "partitions assigned" / "Worker ready" to "every input committed
to the end". Also printed: the producers the worker holds, its time from
start to owning its partitions (the cost of a producer per input
partition), and its transactions and records per transaction. Then, for
each of --rates, a new transactional worker on topics of its own gets
bookings that each breach their issuer's limit, published at that rate
(after --warmup unmeasured seconds); printed are the p50/p99/max of publish
-> order latency, orders read read_committed (an order counts when its
transaction commits), side by side.

With --baseline-src DIR (a source tree holding `hedger/` and `streams/`,
e.g. an older commit's `git archive`), the transactional worker of that tree
(run by this tree's `benchmarks/txn_process.py`) drains the same backlog and
takes the same latency runs, each right after this tree's: before and after
from one run, on one broker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
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
    print_timeline,
    stop,
    wait_idle,
)
from streams.kafka_io import ensure_topics, publish_log
from streams.live.topology import hedger_topology
from streams.settings import TopicNames

REPO = Path(__file__).resolve().parents[1]
PARTITIONS = 4  # of every topic, unless --partitions


def start_txn(
    bootstrap: str,
    prefix: str,
    config: Path,
    work: Path,
    args: argparse.Namespace,
    src: Path | None = None,
) -> subprocess.Popen[bytes]:
    """The transactional worker on the topics `{prefix}-{field with dashes}`, once it owns
    its partitions; `src`: the source tree whose `streams` it runs (this one by default)."""
    out = work / f"{prefix}-worker.log"
    # Run as a script: its folder, not the working directory, heads sys.path,
    # so PYTHONPATH decides which tree's `streams` is imported.
    argv = [sys.executable, str(REPO / "benchmarks" / "txn_process.py")]
    argv += [
        bootstrap,
        prefix,
        str(args.partitions),
        str(config),
        "--linger-ms",
        str(args.linger_ms),
    ]
    env = {**os.environ, "PYTHONPATH": str(src or REPO)}
    process = subprocess.Popen(
        argv, cwd=src or REPO, env=env, stdout=out.open("wb"), stderr=subprocess.STDOUT
    )
    while b"assigned" not in out.read_bytes():
        if process.poll() is not None:
            raise RuntimeError(out.read_text()[-2000:])
        time.sleep(0.05)
    return process


def txn_stats(work: Path, prefix: str) -> tuple[int, int]:
    """(transactions committed, records processed) the stopped worker printed."""
    found = re.search(
        r"stats committed=(\d+) records=(\d+)", (work / f"{prefix}-worker.log").read_text()
    )
    return (int(found[1]), int(found[2])) if found else (0, 0)


def dashed_booking(i: int) -> LatencyEvent:
    """`breaching_booking` for topics named with dashes (`{prefix}-loan-bookings`)."""
    _, key, value = breaching_booking(i)
    return "loan-bookings", key, value


def txn_latency(
    bootstrap: str, work: Path, args: argparse.Namespace, rate: int, src: Path | None = None
) -> list[float]:
    """Sorted publish -> order latencies (ms) at `rate`/s, orders read read_committed."""
    prefix = f"tl{rate}" + ("b" if src else "") + args.tag
    topics = TopicNames.prefixed(prefix)
    config = work / "latency.toml"
    config.write_text(LATENCY_CONFIG)
    inputs = [topics.loan_bookings, topics.cds_executions, topics.desk_clock, topics.control]
    asyncio.run(
        ensure_topics(bootstrap, [*inputs, topics.orders, topics.dead_letters], args.partitions)
    )
    process = start_txn(bootstrap, prefix, config, work, args, src)
    values = asyncio.run(
        latency(bootstrap, prefix, rate, args.seconds, args.warmup, dashed_booking)
    )
    stop(process)
    print_timeline(args)
    committed, records = txn_stats(work, prefix)
    name = "baseline" if src else "txn worker"
    print(
        f"  {name} at {rate}/s: {committed:,} transactions, {records / max(committed, 1):.1f} each"
    )
    return sorted(values)


def bench_txn(
    bootstrap: str,
    log: Path,
    config: Path,
    work: Path,
    args: argparse.Namespace,
    src: Path | None = None,
) -> tuple[float, float]:
    """(events/s, seconds from start to owning its partitions) of the transactional worker."""
    prefix = "txb" if src else "tx"
    topics = TopicNames.prefixed(prefix)
    topology = hedger_topology(f"{prefix}-hedger", args.partitions, topics)
    inputs = [topics.loan_bookings, topics.cds_executions, topics.desk_clock, topics.control]
    asyncio.run(
        ensure_topics(bootstrap, [*inputs, topics.orders, topics.dead_letters], args.partitions)
    )
    asyncio.run(publish_log(log, bootstrap, topic_map={"loan-bookings": topics.loan_bookings}))
    started = time.monotonic()
    process = start_txn(bootstrap, prefix, config, work, args, src)
    assigned = time.monotonic() - started
    seconds = wait_idle(bootstrap, topology.app_id, list(topology.input_topics))
    stop(process)
    return args.events / seconds, assigned


def main() -> None:
    parser = arguments(__doc__, 20_000, "txn worker forwarder latency")
    parser.add_argument("--rates", type=int, nargs="+", default=[300, 1000])
    parser.add_argument("--linger-ms", type=float, default=0.0, help="lane wait before a commit")
    parser.add_argument("--baseline-src", type=Path, default=None)
    parser.add_argument(
        "--partitions", type=int, default=PARTITIONS, help="of every topic (inputs and internal)"
    )
    parser.add_argument(
        "--tag", default="", help="added to the latency runs' topic names (a reused --bootstrap)"
    )
    args = parser.parse_args()
    baseline = args.baseline_src.resolve() if args.baseline_src else None
    with broker(args.bootstrap, "txn-bench") as (work, bootstrap):
        log = work / "bookings.jsonl"
        log.write_text("\n".join(generate(args.events, 50)) + "\n")
        config = work / "bench.toml"
        config.write_text(BENCH_CONFIG)
        n = args.events
        results: dict[str, float] = {}
        if "txn" not in args.skip:
            results["txn worker"], assigned = bench_txn(bootstrap, log, config, work, args)
            producers = args.partitions * 7  # 4 inputs + 3 internal topics, each partition
            committed, records = txn_stats(work, "tx")
            print(
                f"txn worker: {producers} transactional producers, owned after {assigned:.1f} s; "
                f"{committed:,} transactions, {records / max(committed, 1):.1f} records each"
            )
            if baseline is not None:
                results["baseline"], _ = bench_txn(bootstrap, log, config, work, args, baseline)
                committed, records = txn_stats(work, "txb")
                print(
                    f"baseline: {committed:,} transactions, {records / max(committed, 1):.1f} each"
                )
        if "worker" not in args.skip:  # `hedger worker`
            results["hedger worker"] = bench_worker(bootstrap, log, config, work, n)
        if "forwarder" not in args.skip:
            results["forwarder"] = bench_forwarder(bootstrap, log, work, n)
        for name, rate in results.items():
            print(f"{name:>13}: {rate:>9,.0f} events/s ({n:,} events)")
        for name in ("txn worker", "baseline", "hedger worker"):
            if name in results and "forwarder" in results:
                ratio = results[name] / results["forwarder"]
                print(f"{name} / Faust forwarder = {ratio:.2f} (goal >= 0.50)")
        if "latency" not in args.skip:
            print(f"latency publish -> order, linger {args.linger_ms:g} ms:")
            trees = {"txn worker": None} | ({"baseline": baseline} if baseline else {})
            rows = [
                (name, rate, txn_latency(bootstrap, work, args, rate, src))
                for rate in args.rates
                for name, src in trees.items()
            ]
            for name, rate, values in rows:
                p50, p99, top = percentiles(values)
                print(
                    f"  {name:>10} {rate:>5}/s: n={len(values):>6} p50={p50:7.1f} ms "
                    f"p99={p99:7.1f} ms max={top:7.1f} ms (goal p99 <= 250 ms at 1000/s)"
                )


if __name__ == "__main__":
    main()
