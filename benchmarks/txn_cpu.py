"""CPU seconds the transactional worker spends per 1,000 breaching bookings.

    .venv/bin/python -m benchmarks.txn_cpu [--events 20000] [--rate 1000]
        [--seconds 10] [--rounds 2] [--baseline-src DIR] [--bootstrap HOST:PORT]

Starts a local broker (scripts/kafka-local) unless --bootstrap is given. Each
round runs the transactional worker (`benchmarks.txn_process`) twice on
topics of its own, with bookings that each breach their issuer's limit
(`live_bench.breaching_booking`, keyed by loan_id, 4 partitions):
  - drain: --events bookings published first, then the worker started;
  - paced: the worker started, then --rate bookings a second published for
    --seconds (small transactions, as in the latency benchmark).
The worker process's CPU time (user + system, from /proc) is read once it
owns its partitions (paced: just before publishing) and again once every
input is committed to the end: the difference over the events is its CPU
per event, which a busy machine makes slower to spend but not larger.
The paced run's CPU less the drain's per event, over its transactions, is
about what one transaction costs (the records' share aside).
With --baseline-src DIR (a source tree holding `hedger/` and `streams/`,
e.g. `git archive main`), that tree's worker takes the same runs in each
round, this tree's and the baseline's in alternating order; both are
printed side by side.
Linux only (/proc). Imports the standard library, aiokafka and `benchmarks`/`streams`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

from benchmarks.live_bench import LATENCY_CONFIG, breaching_booking, broker, stop, wait_idle
from benchmarks.txn_bench import PARTITIONS, start_txn, txn_stats
from streams.kafka_io import ensure_topics
from streams.live.topology import hedger_topology
from streams.settings import TopicNames

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (utime and stime of /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, from field 3
    return (int(fields[11]) + int(fields[12])) / TICKS


async def publish(bootstrap: str, topic: str, n: int, rate: float | None = None) -> None:
    """`n` breaching bookings to `topic`: at `rate` a second, or as fast as they go."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = []
        start = time.perf_counter()
        for i in range(n):
            if rate is not None:
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            _, key, value = breaching_booking(i)
            assert key is not None
            futures.append(await producer.send(topic, json.dumps(value).encode(), key=key.encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def run(
    bootstrap: str,
    work: Path,
    args: argparse.Namespace,
    prefix: str,
    src: Path | None,
    rate: float | None,
) -> tuple[int, float, float, int, int]:
    """(events, CPU seconds, wall seconds, transactions, records) of one worker:
    a drain of a backlog (`rate` None), else bookings published at `rate`."""
    topics = TopicNames.prefixed(prefix)
    topology = hedger_topology(f"{prefix}-hedger", PARTITIONS, topics)
    config = work / "latency.toml"
    config.write_text(LATENCY_CONFIG)
    inputs = [topics.loan_bookings, topics.cds_executions, topics.desk_clock, topics.control]
    asyncio.run(ensure_topics(bootstrap, [*inputs, topics.orders, topics.dead_letters], PARTITIONS))
    n = args.events if rate is None else int(rate * args.seconds)
    if rate is None:
        asyncio.run(publish(bootstrap, topics.loan_bookings, n))
    process = start_txn(bootstrap, prefix, config, work, args, src)
    if rate is not None:
        time.sleep(2.0)  # the first fetches and metadata, not measured
    cpu0, started = cpu_seconds(process.pid), time.monotonic()
    if rate is not None:
        asyncio.run(publish(bootstrap, topics.loan_bookings, n, rate))
    wait_idle(bootstrap, topology.app_id, list(topology.input_topics))
    cpu1, wall = cpu_seconds(process.pid), time.monotonic() - started
    stop(process)
    committed, records = txn_stats(work, prefix)
    return n, cpu1 - cpu0, wall, committed, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=1000, help="of the paced runs")
    parser.add_argument("--seconds", type=float, default=10.0, help="of the paced runs")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--bootstrap")
    parser.add_argument("--baseline-src", type=Path, default=None)
    parser.add_argument("--linger-ms", type=float, default=0.0)
    args = parser.parse_args()
    baseline = args.baseline_src.resolve() if args.baseline_src else None
    trees: dict[str, Path | None] = {"this tree": None}
    if baseline is not None:
        trees["baseline"] = baseline
    modes: dict[str, float | None] = {"drain": None, f"{args.rate}/s": args.rate}
    results: dict[tuple[str, str], list[float]] = {}
    with broker(args.bootstrap, "txn-cpu") as (work, bootstrap):
        for round_ in range(args.rounds):
            order = list(trees.items())
            if round_ % 2:
                order.reverse()
            for mode, rate in modes.items():
                for name, src in order:
                    prefix = f"cpu{round_}{'d' if rate is None else 'p'}{'b' if src else 't'}"
                    n, cpu, wall, committed, records = run(bootstrap, work, args, prefix, src, rate)
                    per_1000 = cpu / n * 1000
                    results.setdefault((mode, name), []).append(per_1000)
                    print(
                        f"round {round_} {mode:>7} {name:>9}: {per_1000:6.3f} CPU s per 1,000 "
                        f"events ({n:,} events, {cpu:.1f} s CPU, {wall:.1f} s wall, "
                        f"{committed:,} transactions, {records / max(committed, 1):.1f} records "
                        f"each; load {os.getloadavg()[0]:.2f})",
                        flush=True,
                    )
                    if rate is not None and committed:
                        # The drain's transactions are few and large: its CPU per
                        # event is the events' own; the rest of the paced run's
                        # is the transactions'.
                        own = results[("drain", name)][-1] / 1000 * n
                        per_txn = (cpu - own) / committed * 1000
                        results.setdefault(("per txn", name), []).append(per_txn)
                        print(f"    {name}: about {per_txn:.2f} ms CPU per transaction")
    print("CPU s per 1,000 breaching bookings, and ms per transaction (best, then every round):")
    for (mode, name), values in results.items():
        print(
            f"  {mode:>7} {name:>9}: {min(values):.3f}  ("
            + ", ".join(f"{v:.3f}" for v in values)
            + ")"
        )


if __name__ == "__main__":
    main()
