"""Replay throughput, measured side by side with bare `json.loads` (issue: engine).

    .venv/bin/python -m benchmarks.replay_bench [--events 200000] [--repeat 3]

Builds two bookings logs of the same length — about 50 loans per issuer, and
about 25,000 — then times, in one run and on the same files: `json.loads` of
every line, and `hedger replay` of the log in-process (parse, validate, loan
checks, issuer book, decision, output). Prints events/s and the two ratios
the targets are set on: replay / json.loads <= 4, and per-event cost of the
25k-loan log / the 50-loan log <= 1. Best of --repeat runs each.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.genlog import BENCH_CONFIG, generate
from streams.offline.replay import replay_files
from streams.settings import load_config


def best_of(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def bare_json(path: Path) -> None:
    loads = json.loads
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            loads(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hedger-bench-"))
    config_path = work / "bench.toml"
    config_path.write_text(BENCH_CONFIG)
    config = load_config(config_path)
    results: dict[int, tuple[float, float, int]] = {}
    for loans in (50, 25_000):
        log = work / f"bookings-{loans}.jsonl"
        log.write_text("\n".join(generate(args.events, loans)) + "\n")
        parse = best_of(args.repeat, lambda log=log: bare_json(log))
        full = best_of(
            args.repeat,
            lambda log=log: replay_files(config, log, work / "orders.jsonl", work / "dead.jsonl"),
        )
        orders = sum(1 for _ in (work / "orders.jsonl").open())
        results[loans] = (parse, full, orders)
        print(
            f"{loans:>6} loans/issuer: json.loads {args.events / parse:>10,.0f} ev/s | "
            f"replay {args.events / full:>8,.0f} ev/s ({full / args.events * 1e6:5.1f} us/ev) | "
            f"replay/json.loads = {full / parse:4.2f}x (target <= 4) | orders {orders}"
        )
    ratio = results[25_000][1] / results[50][1]
    print(f"per-event cost, 25,000 vs 50 loans per issuer: {ratio:4.2f}x (target <= 1)")


if __name__ == "__main__":
    main()
