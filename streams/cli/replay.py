"""`hedger replay` and `hedger check-config`: the offline commands.

Owns: their arguments and terminal output (progress bar, summary tables);
the work is done by `streams.offline.replay` and `streams.config_file`.
Imports the standard library, rich, `hedger.config` and `streams` (never the
live worker, nor the Kafka settings); the metrics (prometheus-client) and
the progress bar only when they are used.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from hedger.config import ConfigError
from streams.cli.common import (
    DEFAULT_CONFIG,
    EXIT_CORRUPT_LOG,
    EXIT_OK,
    Commands,
    fail,
)
from streams.config_file import load_config
from streams.offline.price_report import print_price_summary
from streams.offline.replay import replay_files
from streams.offline.report import orders_table, print_summary, terminal
from streams.offline.unit_report import FORMATS, unit_rows, write_unit_report
from streams.offline.unit_report import report_format as report_format_for
from streams.outputs import OutputError, atomic_bytes, check_outputs
from streams.replay_log import CorruptLog


def run_replay(
    config_path: str | Path,
    log_path: str | Path,
    orders_out: str | Path,
    dead_letters_out: str | Path,
    *,
    control: bool = False,
    metrics_out: str | None = None,
    sellers_out: str | None = None,
    risk_out: str | None = None,
    quiet: bool = False,
    report_out: str | None = None,
    report_format: str | None = None,
) -> int:
    """Replay a log file with the offline kernel; print the summary; return the exit code."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        return fail(str(exc))
    log = Path(log_path)
    if not log.is_file():
        return fail(f"{log}: no such log file")
    try:
        check_outputs(
            [log, config_path],
            [orders_out, dead_letters_out, metrics_out, sellers_out, risk_out, report_out],
        )
    except OutputError as exc:
        return fail(str(exc))
    console = terminal()
    progress: Any = None  # a rich Progress on a terminal
    on_line: Callable[[int], None] | None = None
    if sys.stderr.isatty() and not quiet:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

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
    if metrics_out:
        from streams.observe.metrics import Metrics  # prometheus-client, only when asked for

        metrics = Metrics(config, clock=None)  # offline: no wall clock, no lag or latency
    try:
        engine, stats = replay_files(
            config,
            log,
            Path(orders_out),
            Path(dead_letters_out),
            on_line,
            metrics,
            control,
            Path(sellers_out) if sellers_out else None,
            Path(risk_out) if risk_out else None,
        )
    except OutputError as exc:
        return fail(str(exc))
    except CorruptLog as exc:
        return fail(f"{log}: corrupt log at {exc}", EXIT_CORRUPT_LOG)
    except OSError as exc:
        return fail(f"cannot read or write: {exc}")
    except UnicodeDecodeError as exc:
        return fail(f"{log}: not UTF-8 text: {exc}", EXIT_CORRUPT_LOG)
    finally:
        if progress is not None:
            progress.stop()
    if metrics is not None and metrics_out:
        from prometheus_client import generate_latest

        try:
            with atomic_bytes(metrics_out) as out:
                out.write(generate_latest(metrics.registry))
        except OutputError as exc:
            return fail(str(exc))
        except OSError as exc:
            return fail(f"{metrics_out}: cannot write: {exc.strerror or exc}")
    halted = stats.halted(engine)
    views = engine.views()
    groups = engine.group_views(views)
    if report_out:
        fmt = report_format_for(report_out, report_format)
        try:
            write_unit_report(report_out, fmt, unit_rows(config, views, groups, halted))
        except OutputError as exc:
            return fail(str(exc))
        except OSError as exc:
            return fail(f"{report_out}: cannot write: {exc.strerror or exc}")
    if not quiet:
        if stats.recent_orders:
            console.print(orders_table(list(stats.recent_orders), "Orders (latest)"))
        print_summary(
            console,
            stats,
            views,
            halted,
            groups,
            engine.seller_report(),
            engine.expired_open,
        )
        print_price_summary(console, stats, engine)
        n_orders = sum(stats.orders.values())
        withheld = sum(stats.withheld.values())
        console.print(
            f"{stats.lines:,} lines: {n_orders:,} orders and {stats.cancels:,} cancel requests "
            + (f"and {withheld:,} withheld legs " if withheld else "")
            + f"→ {orders_out}, "
            f"{sum(stats.dead_letters.values()):,} dead letters → {dead_letters_out}",
            highlight=False,
        )
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    """`hedger replay LOG`: the offline kernel over a recorded log."""
    return run_replay(
        args.config,
        args.log,
        args.orders_out,
        args.dead_letters_out,
        control=args.control,
        metrics_out=args.metrics_out,
        sellers_out=args.sellers_out,
        risk_out=args.risk_out,
        quiet=args.quiet,
        report_out=args.report_out,
        report_format=args.report_format,
    )


def cmd_check_config(args: argparse.Namespace) -> int:
    """`hedger check-config FILE`: validate a configuration and show what it means."""
    try:
        config = load_config(args.file)  # an unknown key is an error (SPEC §8)
    except ConfigError as exc:
        return fail(str(exc))
    console = terminal()
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
    pricing = config.pricing
    if pricing is not None:
        console.print(
            f"  pricing (v2.1): discount rate {pricing.discount_rate}, recovery "
            f"{pricing.recovery}, quotes usable {pricing.quote_ttl_days} days, coupon "
            f"{pricing.coupon_bps or config.hedge.coupon_bps}bp, max spread "
            f"{pricing.max_spread_bps or 'none'}; "
            + ", ".join(
                f"{issuer} coupon {config.coupon_of(issuer)}bp max "
                f"{config.max_spread_of(issuer) or 'none'}"
                for issuer in sorted(pricing.issuers)
            ),
            highlight=False,
        )
    return EXIT_OK


def add_replay_commands(commands: Commands) -> None:
    """Register `replay` and `check-config` on the `hedger` parser."""
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
    replay.add_argument("--sellers-out", help="write the seller report here (SPEC §9, JSON lines)")
    replay.add_argument(
        "--risk-out", help="write the risk report here (SPEC §9, JSON lines: JTD and CS01)"
    )
    replay.add_argument(
        "--report-out",
        help="write the full per-unit risk table here (every issuer and group; "
        "CSV for a .csv file, else JSON lines)",
    )
    replay.add_argument(
        "--report-format",
        choices=FORMATS,
        help="the format of --report-out, whatever its extension",
    )
    replay.add_argument("--quiet", action="store_true", help="no summary, no progress bar")
    replay.set_defaults(func=cmd_replay)

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file")
    check.set_defaults(func=cmd_check_config)
