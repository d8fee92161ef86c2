"""Operator commands: `hedger control` (the kill switch) and `hedger paper-venue`.

Owns: their arguments, the control message they publish, and running the
paper venue until Ctrl-C/SIGTERM or `--duration`; connection and topic names
come from `streams.settings` (flags over `HEDGER_*` over defaults). Imports
rich, the standard library, `hedger.control` and `streams` (`cli.common`,
`settings`, `venue.paper_venue`); aiokafka and `streams.connectivity` inside
the commands only.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from rich.console import Console

from hedger.control import CONTROL_COMMANDS
from streams.cli.common import (
    EXIT_KAFKA,
    EXIT_OK,
    Commands,
    add_kafka_arguments,
    fail,
    kafka_settings,
    number_in,
    reach_kafka,
    stop_event,
)
from streams.settings import KafkaSettings, SettingsError, connection
from streams.venue.paper_venue import COUNTERPARTIES, run_venue


def control_message(command: str, issuer: str | None, operator: str, reason: str) -> dict[str, Any]:
    """A `hedger-control` command, validated against the wire model."""
    value: dict[str, Any] = {
        "schema_version": 1,
        "event_id": f"ctl-{uuid.uuid4()}",
        "occurred_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "command": command,
        "operator": operator,
        "reason": reason,
    }
    if issuer is not None:
        value["issuer_id"] = issuer
    CONTROL_COMMANDS.validate_python(value)
    return value


async def send_control(
    kafka: KafkaSettings | str, topic: str | None, value: dict[str, Any]
) -> None:
    """Publish a control command (to the settings' control topic unless `topic` is given)."""
    from aiokafka import AIOKafkaProducer  # the Kafka clients load with the command only

    kafka = connection(kafka)
    topic = topic or kafka.topics.control
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all")
    try:
        await producer.start()  # stop() below also cleans up a failed start
        key = value.get("issuer_id", "*").encode()
        await producer.send_and_wait(topic, json.dumps(value).encode(), key=key)
    finally:
        await producer.stop()


def cmd_control(args: argparse.Namespace) -> int:
    """`hedger control halt|resume`: send a kill-switch command."""
    from aiokafka.errors import KafkaError  # the Kafka clients load with the command only

    from streams.connectivity import describe

    try:
        kafka = kafka_settings(args, KafkaSettings)
        value = control_message(args.action, args.issuer, args.operator, args.reason)
    except SettingsError as exc:
        return fail(str(exc))
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"])
        return fail(f"control command not sent: {where}: {error['msg']}")
    problem = reach_kafka(kafka)
    if problem is not None:
        return fail(f"control command not sent: {problem}", EXIT_KAFKA)
    try:
        asyncio.run(send_control(kafka, args.topic, value))
    except (KafkaError, OSError) as exc:
        return fail(f"control command not sent: {describe(exc, kafka)}", EXIT_KAFKA)
    target = args.issuer or "all issuers"
    Console().print(
        f"{args.action} sent for {target} by {args.operator}: {args.reason}", highlight=False
    )
    return EXIT_OK


def cmd_paper_venue(args: argparse.Namespace) -> int:
    """`hedger paper-venue`: answer the bot's orders until stopped."""
    from aiokafka.errors import KafkaError  # the Kafka clients load with the command only

    from streams.connectivity import describe

    try:
        kafka = kafka_settings(args, KafkaSettings)
    except SettingsError as exc:
        return fail(str(exc))
    problem = reach_kafka(kafka)
    if problem is not None:
        return fail(f"paper venue not started: {problem}", EXIT_KAFKA)

    async def main() -> int:
        stop = stop_event(args.duration)
        return await run_venue(
            kafka,
            orders_topic=args.orders_topic,
            executions_topic=args.executions_topic,
            seed=args.seed,
            fill_ratio=args.fill_ratio,
            latency_ms=args.latency_ms,
            counterparties=args.counterparties,
            silence_ratio=args.silence_ratio,
            stop=stop,
        )

    try:
        answered = asyncio.run(main())
    except (KafkaError, OSError) as exc:
        return fail(f"paper venue stopped: {describe(exc, kafka)}", EXIT_KAFKA)
    Console().print(f"paper venue: answered {answered} orders", highlight=False)
    return EXIT_OK


def counterparty_list(text: str) -> tuple[str, ...]:
    """An argparse `type`: comma-separated counterparty ids, at least one, no blank, no repeat."""
    names = tuple(name.strip() for name in text.split(","))
    if not text.strip() or any(not name for name in names):
        raise argparse.ArgumentTypeError(f"a comma-separated list of ids, not {text!r}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"{', '.join(repeated)} given twice")
    return names


def add_ops_commands(commands: Commands) -> None:
    """Register `control` and `paper-venue` on the `hedger` parser."""
    control = commands.add_parser("control", help="halt or resume hedging (kill switch)")
    control.add_argument("action", choices=["halt", "resume"])
    control.add_argument("--issuer", help="one issuer (default: all issuers)")
    control.add_argument("--reason", required=True, help="why: shown in metrics and logs")
    control.add_argument("--operator", default=getpass.getuser(), help="who (default: $USER)")
    add_kafka_arguments(control)
    control.add_argument("--topic", help="control topic (default: HEDGER_TOPIC_CONTROL)")
    control.set_defaults(func=cmd_control)

    venue = commands.add_parser("paper-venue", help="simulated venue answering the orders")
    add_kafka_arguments(venue)
    venue.add_argument("--seed", type=int, default=7, help="seed of the venue's answers")
    venue.add_argument(
        "--fill-ratio", type=number_in(float, 0, 1), default=0.9, help="share of orders filled"
    )
    venue.add_argument(
        "--latency-ms", type=number_in(int, 0), default=200, help="delay before each report"
    )
    venue.add_argument(
        "--counterparties",
        type=counterparty_list,
        default=",".join(COUNTERPARTIES),
        metavar="A,B,C",
        help="sellers the venue fills with, never one an order excludes; "
        "the default is config/desk-v2.toml's and UNSPECIFIED",
    )
    venue.add_argument(
        "--silence-ratio",
        type=number_in(float, 0, 1),
        default=0.0,
        help="share of orders left unanswered (the bot expires them)",
    )
    venue.add_argument("--orders-topic", help="default: HEDGER_TOPIC_ORDERS")
    venue.add_argument("--executions-topic", help="default: HEDGER_TOPIC_CDS_EXECUTIONS")
    venue.add_argument(
        "--duration", type=number_in(float, 0), default=0, help="stop after S seconds (0: never)"
    )
    venue.set_defaults(func=cmd_paper_venue)
