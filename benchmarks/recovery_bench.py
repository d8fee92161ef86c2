"""Time from start to restored, and resident size, of a worker holding a bank's book.

    .venv/bin/python -m benchmarks.recovery_bench [--loans 1000000] [--units 10000]
        [--bootstrap HOST:PORT]

Starts a local broker (scripts/kafka-local) unless --bootstrap is given.
Builds the tables of `--loans` open loans over `--units` hedging units on 4
partitions: the loan table's and the unit table's changelogs, written as
the worker writes them (the stages' own row encoding, drained through the
stores' changelog records and committed in transactions of 5,000 records).
Then, each in a new process, a transactional worker joins the group and is
timed from process start to restored (every owned partition's tables read
and the stages' state rebuilt: what /ready waits for):

  1. `memory://`: reads the whole changelog;
  2. `rocksdb://` on an empty data directory (a new machine): reads the whole
     changelog and writes the local snapshot;
  3. `rocksdb://` restarted on the same data directory, after a few
     thousand more loans were committed: the snapshot plus the changelog's tail;
  4. a partition moving to another worker: one of the 4 partitions restored
     by a worker with an empty data directory, and by one that held it before;
  5. 1 and 3 again, side by side (the machine's load moves every figure).

Each child prints its resident size (VmRSS) at start and once restored.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from benchmarks.genlog import BENCH_CONFIG
from benchmarks.live_bench import broker
from hedger.issuer import IssuerBook
from hedger.loans import LoanState
from streams.kafka_io import ensure_topics
from streams.live.book_codec import aggregate_to_json
from streams.live.table_rows import (
    AggregateRow,
    LastViewRow,
    LoanRow,
    encode_loan_state,
    loan_state_key,
)
from streams.live.topology import hedger_topology
from streams.live.txn_worker import MEMORY, ROCKSDB, TxnWorker
from streams.settings import KafkaSettings, TopicNames, load_config

REPO = Path(__file__).resolve().parents[1]
PARTITIONS = 4
PREFIX = "rb"
TXN_RECORDS = 5_000


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def make_worker(bootstrap: str, config: Path, store: str, data_dir: Path | None) -> TxnWorker:
    topology = hedger_topology(f"{PREFIX}-hedger", PARTITIONS, TopicNames.prefixed(PREFIX))
    kafka = KafkaSettings(bootstrap=bootstrap)
    return TxnWorker(kafka, load_config(config), topology, store=store, data_dir=data_dir)


# -- building the changelogs --------------------------------------------------


async def build(bootstrap: str, config: Path, first: int, count: int, units: int) -> float:
    """Commit the table rows of loans first..first+count-1 to the changelogs."""
    worker = make_worker(bootstrap, config, MEMORY, None)
    if first == 0:
        await worker.create_topics()
        topics = worker.topology.topics
        inputs = [topics.loan_bookings, topics.cds_executions, topics.desk_clock, topics.control]
        await ensure_topics(worker.kafka, inputs, PARTITIONS)
        await commit_start(bootstrap, worker.topology.app_id, worker.topology.input_topics)
    partitioner = DefaultPartitioner()
    parts = list(range(PARTITIONS))

    def home(key: str) -> int:
        partition: int = partitioner(key.encode(), parts, parts)
        return partition

    issuers = worker.issuers
    loans_table = worker.tables["loans"]
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=f"{PREFIX}-builder",
        enable_idempotence=True,
        acks="all",
        linger_ms=20,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    started = time.monotonic()
    empty = aggregate_to_json(IssuerBook("x"))
    shown = (date(2026, 1, 5), "2026-01-05T10:00:00Z")
    try:
        pending = 0
        await producer.begin_transaction()
        for i in range(first, first + count):
            loan_id, unit = f"L{i:08d}", f"U{i % units:05d}"
            outstanding = Decimal(1_000_000 + i % 7 * 250_000)
            state = LoanState(unit, 1, "USD", outstanding, date(2029, 6, 20), False)
            loan_part, unit_part = home(loan_id), home(unit)
            # the loan stage's row and the unit stage's rows, as they write them
            loans_table.put(loan_part, loan_state_key(loan_id), encode_loan_state(state))
            issuers.put_row(unit_part, LoanRow(unit, loan_id, state))
            if i < units:  # one aggregate and one last view per unit
                issuers.put_row(unit_part, AggregateRow(unit, empty))
                issuers.put_row(unit_part, LastViewRow(unit, *shown, unit_part))
            pending += 2
            if pending >= TXN_RECORDS or i == first + count - 1:
                for name in ("loans", "issuers"):
                    store, table = worker.stores[name], worker.tables[name]
                    for partition, key, value in store.records(table.drain()):
                        await producer.send(store.changelog, value, key, partition)
                    store.data.clear()
                await producer.commit_transaction()
                pending = 0
                if i != first + count - 1:
                    await producer.begin_transaction()
    finally:
        await producer.stop()
    return time.monotonic() - started


async def commit_start(bootstrap: str, group: str, topics: list[str]) -> None:
    """Commit offset 0 of every input partition: a restarted worker finds committed offsets."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.commit(dict.fromkeys(tps, 0))
    finally:
        await consumer.stop()


# -- one restore, in a child process -------------------------------------------


async def child(args: argparse.Namespace) -> None:
    gc.freeze()  # as `hedger worker` starts (streams/cli/worker.py)
    gc.set_threshold(100_000, 50, 1000)
    base = rss_mib()
    data_dir = Path(args.data_dir) if args.data_dir else None
    worker = make_worker(args.bootstrap, Path(args.config), args.store, data_dir)
    topology = worker.topology
    restore = worker.restore
    phases: dict[str, float] = {}

    async def timed_restore(tps: set[TopicPartition]) -> None:
        phases["restore_start"] = time.time()
        await restore(tps)

    worker.loop.restore = timed_restore
    if args.partitions is None:
        await worker.loop.start()
        await worker.loop.assigned_event.wait()
    else:  # what a new owner does once the group assigned it these partitions
        wanted = {int(p) for p in args.partitions.split(",")}
        inputs = [topology.topics.loan_bookings, topology.topics.loans, topology.topics.journal]
        await timed_restore({TopicPartition(t, p) for t in inputs for p in wanted})
    ready = time.time()
    loans = len(worker.issuers.engine.loans)
    result = {"ready": ready, "loans": loans, "rss": rss_mib(), "rss_start": base}
    result["restore"] = ready - phases.get("restore_start", ready)
    print(json.dumps(result), flush=True)
    if args.partitions is None:
        await worker.loop.stop()
    await worker.close()


def run_child(
    bootstrap: str, config: Path, store: str, data_dir: Path | None, partitions: str | None
) -> dict[str, float]:
    argv = [sys.executable, "-m", "benchmarks.recovery_bench", "--child", "--bootstrap", bootstrap]
    argv += ["--config", str(config), "--store", store]
    if data_dir is not None:
        argv += ["--data-dir", str(data_dir)]
    if partitions is not None:
        argv += ["--partitions", partitions]
    started = time.time()
    out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False, timeout=1800)
    if out.returncode != 0:
        sys.exit(f"restore child failed ({out.returncode}):\n{out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    result["seconds"] = result["ready"] - started
    return result


def report(name: str, result: dict[str, float]) -> None:
    print(
        f"{name:<52} {result['seconds']:7.1f} s (restore {result['restore']:5.1f} s)"
        f"   loans {int(result['loans']):>9,}"
        f"   RSS {result['rss']:5.0f} MiB (start {result['rss_start']:.0f};"
        f" {(result['rss'] - result['rss_start']) / result['loans'] * 100_000:.0f} MiB"
        " per 100,000 loans)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--bootstrap")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--store", default=MEMORY, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--partitions", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args))
        return
    with broker(args.bootstrap, "recovery") as (work, bootstrap):
        config = work / "hedger.toml"
        config.write_text(BENCH_CONFIG)
        seconds = asyncio.run(build(bootstrap, config, 0, args.loans, args.units))
        print(f"built {args.loans:,} loans over {args.units:,} units in {seconds:.0f} s")
        print(f"load average {os.getloadavg()[0]:.1f} (2 cores)", flush=True)
        report("memory://, whole changelog", run_child(bootstrap, config, MEMORY, None, None))
        disk = work / "data"
        report(
            "rocksdb://, empty data directory", run_child(bootstrap, config, ROCKSDB, disk, None)
        )
        tail = min(10_000, args.loans)
        asyncio.run(build(bootstrap, config, args.loans, tail, args.units))
        name = f"rocksdb://, same data directory (+{tail:,} loans)"
        report(name, run_child(bootstrap, config, ROCKSDB, disk, None))
        moved = work / "moved"
        name = "partition move, 1 of 4 partitions, empty directory"
        report(name, run_child(bootstrap, config, ROCKSDB, moved, "0"))
        name = "partition move, 1 of 4 partitions, held it before"
        report(name, run_child(bootstrap, config, ROCKSDB, disk, "0"))
        # again, side by side: the machine's load moves every figure
        report(
            "memory://, whole changelog (again)", run_child(bootstrap, config, MEMORY, None, None)
        )
        name = "rocksdb://, same data directory (again)"
        report(name, run_child(bootstrap, config, ROCKSDB, disk, None))
        print(f"load average {os.getloadavg()[0]:.1f} (2 cores)")
        shutil.rmtree(work / "data", ignore_errors=True)


if __name__ == "__main__":
    main()
