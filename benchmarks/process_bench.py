"""Whole-process replay cost against the JSON floor, v2 against v1, big books against small.

    .venv/bin/python -m benchmarks.process_bench [--events 200000] [--issuers 2000]
        [--runs 3] [--work DIR] [--baseline-src DIR]

Times whole processes from outside (start-up, imports and the summary
included), each command's runs alternating with the others' so that a drift
in the machine's speed hits all alike; the CPU time (user + system) of each
finished child is the operating system's own accounting. Figures are the
median of --runs. It writes, once, into --work:

- `bookings.jsonl`: --events bookings over --issuers issuers, no decisions
  (`genlog`, limits far above any exposure);
- `loop.jsonl`: the same bookings with a daily `clock.tick` and fills of
  the orders the bot emits (`v2_bench.closed_loop`): decisions on every day;
- `big.jsonl`: --events bookings on about 25,000 loans per issuer.

and prints:

- floor: a bare `json.loads` of every line of the log, whole process;
- `hedger replay LOG` per log and configuration, and its ratio to the floor
  (targets: <= 4x for the bookings log and for the closed loop);
- the closed loop under the v2 configuration against the v1 one (target
  <= 1.2x), and the big-book log against the bookings log per event
  (target <= 1x: a book of 25,000 loans no dearer per event than one of the
  bookings log, about 70 at the defaults).

With --baseline-src DIR (a source tree holding `hedger/` and `streams/`,
e.g. an older commit's `git archive`), every replay also runs against that
tree in the same alternation, so before and after come from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from benchmarks.genlog import BENCH_CONFIG, generate
from benchmarks.v2_bench import V1_LIMITS, closed_loop, v2_config_text
from hedger.config import config_from_mapping

FLOOR = """
import json, sys
loads = json.loads
with open(sys.argv[1], encoding="utf-8") as stream:
    for line in stream:
        loads(line)
"""


def cpu_seconds(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """User + system seconds of one whole child process (it must succeed).

    `cwd` holds no source tree: `python -m` looks there before PYTHONPATH.
    """
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        assert proc.stderr is not None
        raise SystemExit(f"{argv[:4]} failed: {proc.stderr.read().decode()[-500:]}")
    return usage.ru_utime + usage.ru_stime


def prepare(work: Path, events: int, issuers: int) -> None:
    """The three logs and the configurations, unless already there."""
    work.mkdir(parents=True, exist_ok=True)
    loans = max(1, round(events * 0.7 / issuers))  # genlog books 70% of its events
    if not (work / "loop.jsonl").exists():
        bookings = list(generate(events, loans))
        ids = sorted({json.loads(line)["value"]["issuer_id"] for line in bookings})
        (work / "bookings.jsonl").write_text("\n".join(bookings) + "\n")
        (work / "bench.toml").write_text(BENCH_CONFIG)
        (work / "v1.toml").write_text(V1_LIMITS)
        v2_text = v2_config_text(ids, V1_LIMITS)
        (work / "v2.toml").write_text(v2_text)
        v2 = config_from_mapping(tomllib.loads(v2_text))
        (work / "loop.jsonl").write_text("\n".join(closed_loop(bookings, v2)) + "\n")
    if not (work / "big.jsonl").exists():
        (work / "big.jsonl").write_text("\n".join(generate(events, 25_000)) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--issuers", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--baseline-src", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="hedger-process-bench-"))
    prepare(work, args.events, args.issuers)
    out = work / "out"
    out.mkdir(exist_ok=True)
    python = sys.executable
    here = str(Path(__file__).resolve().parents[1])
    trees = {"now": here}
    if args.baseline_src is not None:
        trees["baseline"] = str(args.baseline_src.resolve())

    def replay(log: str, config: str) -> list[str]:
        return [
            python,
            "-m",
            "streams",
            "replay",
            str(work / log),
            "--config",
            str(work / config),
            "--orders-out",
            str(out / "orders.jsonl"),
            "--dead-letters-out",
            str(out / "dead.jsonl"),
        ]

    cases = {
        "bookings": ("bookings.jsonl", "bench.toml"),
        "loop v1": ("loop.jsonl", "v1.toml"),
        "loop v2": ("loop.jsonl", "v2.toml"),
        "big book": ("big.jsonl", "bench.toml"),
    }
    commands: dict[tuple[str, str], tuple[list[str], dict[str, str]]] = {}
    for log in ("bookings.jsonl", "loop.jsonl", "big.jsonl"):
        commands[("floor", log)] = ([python, "-c", FLOOR, str(work / log)], dict(os.environ))
    for tree, src in trees.items():
        env = {**os.environ, "PYTHONPATH": src}
        for case, (log, config) in cases.items():
            commands[(tree, case)] = (replay(log, config), env)
    times: dict[tuple[str, str], list[float]] = {key: [] for key in commands}
    for _ in range(args.runs):
        for key, (argv, env) in commands.items():
            times[key].append(cpu_seconds(argv, env, out))
    median = {key: statistics.median(values) for key, values in times.items()}
    print(f"work folder {work}; median of {args.runs} runs; CPU seconds of whole processes")
    for log in ("bookings.jsonl", "loop.jsonl", "big.jsonl"):
        print(f"  floor (json.loads of every line) {log:15s} {median[('floor', log)]:6.2f} s")
    header = "  " + " " * 10 + "".join(f"{tree:>26s}" for tree in trees)
    print(header)
    for case, (log, _) in cases.items():
        cells = []
        for tree in trees:
            seconds = median[(tree, case)]
            cells.append(f"{seconds:7.2f} s = {seconds / median[('floor', log)]:5.2f}x floor")
        print(f"  {case:10s}" + "".join(f"{cell:>26s}" for cell in cells))
    for tree in trees:
        floor = median[("floor", "bookings.jsonl")]
        loop_floor = median[("floor", "loop.jsonl")]
        print(
            f"  {tree}: bookings {median[(tree, 'bookings')] / floor:.2f}x floor (target <= 4); "
            f"closed loop {median[(tree, 'loop v1')] / loop_floor:.2f}x floor (target <= 4); "
            f"v2/v1 {median[(tree, 'loop v2')] / median[(tree, 'loop v1')]:.2f} (target <= 1.2); "
            f"25,000-loan books / 50-loan books per event "
            f"{median[(tree, 'big book')] / median[(tree, 'bookings')]:.2f} (target <= 1)"
        )


if __name__ == "__main__":
    main()
