"""`hedger worker`: the live daemon on Kafka.

Owns: parsing the worker's arguments into `WorkerSettings` (flags over
`HEDGER_*` over defaults), preparing the data directory, creating missing
topics, and running the Faust worker (the transactional runtime of
`streams.live.app`) until SIGTERM/SIGINT. Imports
`hedger.config` and `streams` (`settings`, `cli.common`); the command itself
imports faust, `kafka_io`, `observe.logs` and `live.app`, so the parser
loads none of them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
import tempfile
from pathlib import Path

from hedger.config import ConfigError
from streams.cli.common import (
    DEFAULT_CONFIG,
    EXIT_KAFKA,
    EXIT_USAGE,
    Commands,
    add_kafka_arguments,
    add_setting_flags,
    fail,
    kafka_settings,
    reach_kafka,
)
from streams.settings import SettingsError, WorkerSettings, load_config

WORKER_FLAGS = (
    "replication_factor",
    "app_id",
    "partitions",
    "data_dir",
    "metrics_port",
    "metrics_bind",
    "commit_interval",
    "batch_size",
    "batch_wait",
    "session_timeout",
    "stall_timeout",
    "retention_journal_ms",
    "retention_orders_ms",
    "retention_control_ms",
)
WORKER_GROUP = "Worker (flags over HEDGER_* environment variables over defaults)"


def cmd_worker(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM or SIGINT."""
    # The live modules load Faust and aiokafka: imported by this command only,
    # so the offline commands and --help start without them.
    import faust

    from streams.connectivity import describe
    from streams.kafka_io import PartitionCountMismatch
    from streams.live.app import Worker
    from streams.live.table_rows import TableFormatError
    from streams.observe import logs

    try:
        config = load_config(args.config)
        settings = worker_settings(args)
    except (ConfigError, SettingsError) as exc:
        return fail(str(exc))
    problem = prepare_data_dir(settings.data_dir)
    if problem is not None:
        return fail(problem)
    logs.configure(
        json=args.log_format == "json" if args.log_format else None,
        level=args.log_level,
        secrets=[settings.secret()],
    )
    log = logs.get_logger("hedger.worker")
    log.info("worker.starting", config=str(args.config), settings=settings.masked())
    problem = reach_kafka(settings)
    if problem is not None:
        log.error("worker.kafka_unreachable", bootstrap=settings.bootstrap, problem=problem)
        return fail(problem, EXIT_KAFKA)
    # One event loop for the topic creation and the Faust worker: the
    # transactional loop's locks and events belong to it.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = Worker(settings, config)
    # Every topic, internal ones and changelogs included, exists before the
    # loop subscribes: workers starting together would race to create them
    # (the broker may auto-create a topic with 1 partition).
    try:
        loop.run_until_complete(worker.create_topics())
    except PartitionCountMismatch as exc:
        log.error("worker.partition_count_mismatch", problem=str(exc))
        return fail(str(exc), EXIT_USAGE)
    except Exception as exc:  # any failure to create the topics ends the same way
        problem = f"cannot create topics on {settings.bootstrap}: {describe(exc, settings)}"
        log.error("worker.kafka_unreachable", bootstrap=settings.bootstrap, problem=problem)
        return fail(problem, EXIT_KAFKA)
    quiet_libraries(args.log_level)
    tune_gc()
    # override_logging=False: mode would replace our structlog handler.
    runner = faust.Worker(
        worker.app,
        loglevel=args.log_level,
        redirect_stdouts=False,
        quiet=True,
        override_logging=False,
        loop=loop,
    )
    worker.runner = runner
    if not sys.stdout.isatty():
        # Its frames end with no newline: they would glue onto the next JSON log line.
        runner.spinner = None
    try:
        runner.execute_from_commandline()
    except SystemExit:
        if isinstance(worker.failure, TableFormatError):
            return fail(str(worker.failure), worker.exit_code())
        if worker.failure is not None:  # logged as worker.loop_failed
            return worker.exit_code()
        raise
    return 0  # pragma: no cover - execute_from_commandline exits the process


def prepare_data_dir(path: str) -> str | None:
    """Create the data directory with its parents and check it takes files.

    Faust creates only the last level of its data directory, so on a fresh
    checkout (no `build/`) it would stop with a traceback. Returns the problem
    in one line, or None when the directory is ready.
    """
    directory = Path(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        if isinstance(exc, FileExistsError):
            reason = "it is a file, not a directory"
        elif isinstance(exc, NotADirectoryError):
            reason = "a part of its path is a file, not a directory"
        else:
            reason = (exc.strerror or type(exc).__name__).lower()
        return f"cannot use the data directory {path!r}: {reason} (HEDGER_DATA_DIR, --data-dir)"
    return None


def tune_gc() -> None:
    """Keep the garbage collector's full passes off the latency path.

    Everything loaded at start (Faust, pydantic schemas, the configuration)
    is frozen out of collection, and collections run less often: measured
    here, full collections otherwise stall the worker for 100-200 ms every few
    seconds, which was most of the p99 latency. The bot creates few reference
    cycles, so memory stays flat.
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)


def quiet_libraries(level: str) -> None:
    """Hold Faust, mode and aiokafka at the chosen level.

    aiokafka logs at DEBUG on every send; unless its logger is held at the
    chosen level, building those records costs more than the bot's own work.
    """
    quiet = max(logging.getLevelName(level.upper()), logging.WARNING)
    for name in ("aiokafka", "kafka"):
        logging.getLogger(name).setLevel(quiet)
    for name in ("faust", "mode"):
        logging.getLogger(name).setLevel(level.upper())
    # mode's logger of the transactional loop service: its only error is the
    # traceback of a crash, which the worker reports in one line
    # (worker.loop_failed) before it exits.
    logging.getLogger("streams.live.txn_loop").setLevel(logging.CRITICAL)


def worker_settings(args: argparse.Namespace) -> WorkerSettings:
    """Command-line values over `HEDGER_*` environment variables over defaults."""
    return kafka_settings(args, WorkerSettings)


def add_worker_command(commands: Commands) -> None:
    """Register `worker` on the `hedger` parser."""
    worker = commands.add_parser(
        "worker",
        help="run the live daemon on Kafka",
        description="Run the live daemon on Kafka until SIGTERM or SIGINT. Exit codes: "
        "0 stopped by a signal, 1 Kafka failed or refused, 2 bad arguments, settings, "
        "configuration or data directory, 4 the transactional loop failed or was fenced "
        "(its log's worker.loop_failed line names why; a restart resumes from the "
        "committed offsets and state).",
    )
    worker.add_argument("--config", default=DEFAULT_CONFIG, help="TOML configuration")
    add_kafka_arguments(worker)
    add_setting_flags(worker, WorkerSettings, WORKER_FLAGS, WORKER_GROUP)
    worker.add_argument(
        "--log-level",
        default="info",
        type=str.lower,
        choices=["debug", "info", "warning", "error", "critical"],
        help="log level",
    )
    worker.add_argument(
        "--log-format",
        choices=["json", "console"],
        help="default: console on a terminal, JSON lines otherwise",
    )
    worker.set_defaults(func=cmd_worker)
