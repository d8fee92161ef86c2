"""The transactional worker as a process of its own, for the benchmarks.

    python -m benchmarks.txn_process BOOTSTRAP PREFIX PARTITIONS CONFIG [--linger-ms MS]

Runs `streams.live.txn_worker.TxnWorker` on the topics `{PREFIX}-{field with
dashes}` until SIGTERM, prints `assigned` once it owns partitions and, on
the way out, its transaction counts (`stats committed=... records=...`).
With HEDGER_TXN_PROFILE=FILE in its environment it runs under cProfile and
writes the profile to FILE: where the worker's CPU goes under a benchmark's load.
It runs with the garbage-collector settings of `hedger worker` (`tune_gc`).
Imports the standard library and `streams` only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from streams.cli.worker import tune_gc
from streams.live.topology import hedger_topology
from streams.live.txn_worker import TxnWorker
from streams.settings import KafkaSettings, TopicNames, load_config


async def run(args: argparse.Namespace) -> int:
    kafka = KafkaSettings(bootstrap=args.bootstrap)
    topology = hedger_topology(
        f"{args.prefix}-hedger", args.partitions, TopicNames.prefixed(args.prefix)
    )
    worker = TxnWorker(kafka, load_config(args.config), topology, max_records=args.max_records)
    tune_gc()  # as `hedger worker` does
    worker.loop.linger = args.linger_ms / 1000
    await worker.create_topics()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await worker.loop.start()
    await worker.loop.assigned_event.wait()
    print("assigned", flush=True)
    while not (stop.is_set() or worker.loop.crashed):
        await asyncio.sleep(0.1)
    crashed = worker.loop.crashed
    await worker.loop.stop()
    s = worker.loop.stats
    print(
        f"stats committed={s.committed} records={s.records} aborted={s.aborted} "
        f"fenced={s.fenced} paused={getattr(s, 'paused', 0)}",
        flush=True,
    )
    return 4 if crashed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bootstrap")
    parser.add_argument("prefix")
    parser.add_argument("partitions", type=int)
    parser.add_argument("config")
    parser.add_argument("--linger-ms", type=float, default=0.0)
    parser.add_argument("--max-records", type=int, default=2000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
    logging.getLogger("hedger.txn").setLevel(logging.INFO)
    profile_to = os.environ.get("HEDGER_TXN_PROFILE")
    if not profile_to:
        sys.exit(asyncio.run(run(args)))
    import cProfile  # where the worker's CPU goes, for the benchmarks only

    profiler = cProfile.Profile()
    code = profiler.runcall(asyncio.run, run(args))
    profiler.dump_stats(profile_to)
    sys.exit(code)


if __name__ == "__main__":
    main()
