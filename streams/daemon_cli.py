"""`hedger worker`: the live daemon on Kafka.

Owns: parsing the worker's arguments into `WorkerSettings`, creating missing
topics, and running the Faust worker until SIGTERM/SIGINT. Imports faust,
aiokafka and `streams`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
from typing import Any

import faust

from hedger.config import ConfigError
from streams import logs
from streams.app import Worker
from streams.kafka_io import ensure_topics
from streams.settings import load_config
from streams.worker_settings import TopicNames, WorkerSettings


def client_security(settings: WorkerSettings) -> dict[str, Any]:
    """aiokafka keyword arguments for the configured security protocol."""
    if not settings.security_protocol.startswith("SASL"):
        return {"security_protocol": settings.security_protocol}
    assert settings.sasl_password is not None
    return {
        "security_protocol": settings.security_protocol,
        "sasl_mechanism": settings.sasl_mechanism,
        "sasl_plain_username": settings.sasl_username,
        "sasl_plain_password": settings.sasl_password.get_secret_value(),
    }


def worker_settings(args: argparse.Namespace) -> WorkerSettings:
    """Command-line values over `HEDGER_*` environment variables over defaults."""
    given: dict[str, Any] = {"bootstrap": args.bootstrap}
    for name in ("metrics_port", "metrics_bind", "partitions", "app_id", "data_dir"):
        value = getattr(args, name, None)
        if value is not None:
            given[name] = value
    return WorkerSettings(**given)


def cmd_worker(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM or SIGINT."""
    from streams.cli import fail

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return fail(str(exc))
    settings = worker_settings(args)
    secret = settings.sasl_password.get_secret_value() if settings.sasl_password else None
    logs.configure(
        json=args.log_format == "json" if args.log_format else None,
        level=args.log_level,
        secrets=[secret],
    )
    log = logs.get_logger("hedger.worker")
    log.info("worker.starting", config=str(args.config), settings=settings.masked())
    topics: TopicNames = settings.topics
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(
            ensure_topics(
                settings.bootstrap,
                [
                    topics.loan_bookings,
                    topics.cds_executions,
                    topics.orders,
                    topics.dead_letters,
                    topics.control,
                ],
                settings.partitions,
                **client_security(settings),
            )
        )
    except Exception as exc:  # any connection failure ends the same way
        log.error("worker.kafka_unreachable", bootstrap=settings.bootstrap, error=repr(exc))
        return fail(f"cannot reach Kafka at {settings.bootstrap}: {exc!r}")
    finally:
        loop.close()
    asyncio.set_event_loop(asyncio.new_event_loop())
    quiet_libraries(args.log_level)
    tune_gc()
    worker = Worker(settings, config)
    # override_logging=False: mode would replace our structlog handler.
    faust.Worker(
        worker.app,
        loglevel=args.log_level,
        redirect_stdouts=False,
        quiet=True,
        override_logging=False,
    ).execute_from_commandline()
    return 0  # pragma: no cover - execute_from_commandline exits the process


def tune_gc() -> None:
    """Keep the garbage collector's full passes off the latency path.

    Everything loaded at start (Faust, pydantic schemas, the configuration)
    is frozen out of collection, and collections run less often: measured
    here, full collections otherwise stall an agent for 100-200 ms every few
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


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the daemon commands on the `hedger` parser."""
    worker = commands.add_parser("worker", help="run the live daemon on Kafka")
    worker.add_argument("--config", default="config/hedger.toml", help="TOML configuration")
    worker.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka HOST:PORT")
    worker.add_argument("--metrics-port", type=int, help="serve /metrics on this port")
    worker.add_argument("--metrics-bind", help="address for /metrics (default 127.0.0.1)")
    worker.add_argument("--partitions", type=int, help="partitions of the internal topics")
    worker.add_argument("--app-id", help="Kafka consumer group / Faust app id")
    worker.add_argument("--data-dir", help="local state directory")
    worker.add_argument("--log-level", default="info", help="log level (default info)")
    worker.add_argument(
        "--log-format",
        choices=["json", "console"],
        help="default: console on a terminal, JSON lines otherwise",
    )
    worker.set_defaults(func=cmd_worker)
