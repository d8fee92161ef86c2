"""The `hedger` command line: replay, check-config (and the daemon commands).

Owns: argument parsing, exit codes and terminal output. Each command parses
its arguments, builds the adapters and calls the core; no business rule
lives here. Imports the standard library, rich and `streams`/`hedger`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from hedger.config import ConfigError
from streams.daemon_cli import add_commands
from streams.demo import add_demo_command
from streams.ops_cli import add_ops_commands
from streams.replay import CorruptLog, replay_files
from streams.report import orders_table, print_summary, terminal
from streams.settings import load_config, load_config_with_warnings
from streams.tools_cli import add_tool_commands

EXIT_OK = 0
EXIT_USAGE = 2  # bad arguments, missing files, invalid configuration
EXIT_CORRUPT_LOG = 3

DEFAULT_CONFIG = "config/hedger.toml"


def fail(message: str, code: int = EXIT_USAGE) -> int:
    """Print an error on stderr and return the exit code."""
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return code


def cmd_replay(args: argparse.Namespace) -> int:
    """`hedger replay LOG`: the offline kernel over a recorded log."""
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return fail(str(exc))
    log = Path(args.log)
    if not log.is_file():
        return fail(f"{log}: no such log file")
    console = terminal()
    progress: Progress | None = None
    on_line: Callable[[int], None] | None = None
    if sys.stderr.isatty() and not args.quiet:
        total = sum(1 for _ in log.open("rb"))
        progress = Progress(
            TextColumn("replaying"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        task = progress.add_task("replay", total=total)

        # Updating rich on every line would cost more than the replay itself.
        def on_line(line_no: int) -> None:
            if line_no % 2000 == 0 or line_no == total:
                progress.update(task, completed=line_no)

        progress.start()
    metrics = None
    if args.metrics_out:
        from streams.metrics import Metrics

        metrics = Metrics(config, clock=None)  # offline: no wall clock, no lag or latency
    try:
        engine, stats = replay_files(
            config,
            log,
            Path(args.orders_out),
            Path(args.dead_letters_out),
            on_line,
            metrics,
            args.control,
        )
    except CorruptLog as exc:
        return fail(f"{log}: corrupt log at {exc}", EXIT_CORRUPT_LOG)
    except OSError as exc:
        return fail(f"cannot read or write: {exc}")
    except UnicodeDecodeError as exc:
        return fail(f"{log}: not UTF-8 text: {exc}", EXIT_CORRUPT_LOG)
    finally:
        if progress is not None:
            progress.stop()
    if metrics is not None:
        from prometheus_client import write_to_textfile

        write_to_textfile(args.metrics_out, metrics.registry)
    if not args.quiet:
        if stats.recent_orders:
            console.print(orders_table(list(stats.recent_orders), "Orders (latest)"))
        print_summary(console, stats, engine.views(), stats.halted(engine))
        n_orders = sum(stats.orders.values())
        console.print(
            f"{stats.lines:,} lines: {n_orders:,} orders → {args.orders_out}, "
            f"{sum(stats.dead_letters.values()):,} dead letters → {args.dead_letters_out}",
            highlight=False,
        )
    return EXIT_OK


def cmd_check_config(args: argparse.Namespace) -> int:
    """`hedger check-config FILE`: validate a configuration and show what it means."""
    try:
        config, unknown = load_config_with_warnings(args.file)
    except ConfigError as exc:
        return fail(str(exc))
    console = terminal()
    for key in unknown:
        console.print(f"[yellow]warning:[/] {args.file}: unknown key {key} is ignored")
    risk = config.risk
    console.print(
        f"{args.file}: OK — base {risk.base_currency}, regulatory limit "
        f"{risk.regulatory_limit:,} ({risk.large_exposure_limit_pct}% of Tier 1), "
        f"{len(config.issuers)} issuers, {len(config.fx)} currencies, "
        f"tenors {list(config.hedge.tenors_years)}",
        highlight=False,
    )
    for issuer_id in sorted(config.issuers):
        halted = " [red]HALTED[/]" if config.is_halted(issuer_id) else ""
        console.print(f"  {issuer_id}: limit {config.limit_for(issuer_id):,}{halted}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every `hedger` command."""
    parser = argparse.ArgumentParser(
        prog="hedger", description="CDS hedging bot for issuer concentration limits."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    replay = commands.add_parser("replay", help="replay a recorded event log offline")
    replay.add_argument("log", help="replay log (JSON lines of {topic, key, value})")
    replay.add_argument("--config", default=DEFAULT_CONFIG, help="TOML configuration")
    replay.add_argument("--orders-out", default="orders.jsonl", help="orders (JSON lines)")
    replay.add_argument(
        "--dead-letters-out", default="dead-letters.jsonl", help="dead letters (JSON lines)"
    )
    replay.add_argument(
        "--control",
        action="store_true",
        help="apply hedger-control lines (halt/resume), as in a dumped journal",
    )
    replay.add_argument("--metrics-out", help="write the final metrics here (Prometheus text)")
    replay.add_argument("--quiet", action="store_true", help="no summary, no progress bar")
    replay.set_defaults(func=cmd_replay)

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file")
    check.set_defaults(func=cmd_check_config)

    add_commands(commands)
    add_tool_commands(commands)
    add_ops_commands(commands)
    add_demo_command(commands)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hedger` console script."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
