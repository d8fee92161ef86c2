"""The `hedger publish` and `hedger dump` commands: replay logs to and from Kafka.

Owns: their arguments and terminal output; the work is done by
`streams.kafka_io`, the connection comes from `streams.settings` (flags over
`HEDGER_*` over defaults). `add_tool_commands` adds them to the `hedger`
parser. Imports the standard library, rich and `streams` (`cli.common`,
`replay_log`, `offline.report`, `settings`); `kafka_io` and aiokafka's errors
inside the commands only.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from rich.table import Table

from streams.cli.common import (
    EXIT_CORRUPT_LOG,
    EXIT_KAFKA,
    EXIT_OK,
    EXIT_USAGE,
    Commands,
    add_kafka_arguments,
    add_setting_flags,
    fail,
    kafka_settings,
    number_in,
    reach_kafka,
)
from streams.offline.report import terminal
from streams.outputs import OutputError, resolve_output
from streams.replay_log import CorruptLog
from streams.settings import KafkaSettings, SettingsError


def _topic_map(pairs: list[str] | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs or []:
        old, sep, new = pair.partition("=")
        if not sep or not old or not new:
            raise ValueError(f"--rename {pair!r}: expected LOG_TOPIC=KAFKA_TOPIC")
        mapping[old] = new
    return mapping


def cmd_publish(args: argparse.Namespace) -> int:
    """`hedger publish LOG`: produce a replay log's records to their topics."""
    from aiokafka.errors import KafkaError  # the Kafka clients load with the command only

    from streams.kafka_io import KafkaToolError, publish_log

    log = Path(args.log)
    if not log.is_file():
        return fail(f"{log}: no such log file", EXIT_USAGE)
    try:
        rename = _topic_map(args.rename)
        kafka = kafka_settings(args, KafkaSettings)
    except (ValueError, SettingsError) as exc:
        return fail(str(exc), EXIT_USAGE)
    problem = reach_kafka(kafka)
    if problem is not None:
        return fail(f"nothing published: {problem}", EXIT_KAFKA)
    try:
        stats = asyncio.run(
            publish_log(
                log,
                kafka,
                topics=set(args.topic) if args.topic else None,
                create_partitions=args.partitions,
                topic_map=rename,
                replication_factor=kafka.replication_factor,
            )
        )
    except CorruptLog as exc:
        return fail(f"{log}: corrupt log at {exc}; nothing published", EXIT_CORRUPT_LOG)
    except UnicodeDecodeError as exc:
        return fail(f"{log}: not UTF-8 text: {exc}; nothing published", EXIT_CORRUPT_LOG)
    except OSError as exc:
        return fail(f"cannot read {log}: {exc}", EXIT_USAGE)
    except (KafkaError, KafkaToolError) as exc:
        message = f"publishing to {kafka.bootstrap} failed: {exc}"
        return fail(message, EXIT_KAFKA)
    console = terminal()
    table = Table(title=f"Published to {kafka.bootstrap}", title_justify="left")
    table.add_column("topic")
    table.add_column("messages", justify="right")
    for topic, count in sorted(stats.published.items()):
        created = " (created)" if topic in stats.created_topics else ""
        table.add_row(f"{topic}{created}", f"{count:,}")
    console.print(table)
    skipped = sum(stats.skipped.values())
    summary = f"{log}: {stats.total:,} messages → {kafka.bootstrap}"
    if skipped:
        summary += f", {skipped:,} lines of other topics skipped"
    console.print(summary, highlight=False)
    return EXIT_OK


def cmd_dump(args: argparse.Namespace) -> int:
    """`hedger dump TOPIC`: write a topic's messages as a replay log."""
    from aiokafka.errors import KafkaError  # the Kafka clients load with the command only

    from streams.kafka_io import KafkaToolError, TopicNotFound, dump_topic

    try:
        kafka = kafka_settings(args, KafkaSettings)
        resolve_output(args.out)  # refused before anything is read
    except (SettingsError, OutputError) as exc:
        return fail(str(exc), EXIT_USAGE)
    problem = reach_kafka(kafka)
    if problem is not None:
        return fail(f"nothing dumped: {problem}", EXIT_KAFKA)
    try:
        count = asyncio.run(dump_topic(args.topic, kafka, Path(args.out), journal=args.journal))
    except TopicNotFound as exc:
        return fail(str(exc), EXIT_USAGE)
    except (KafkaError, KafkaToolError) as exc:
        return fail(f"dumping {args.topic} failed: {exc}", EXIT_KAFKA)
    except OutputError as exc:
        return fail(str(exc), EXIT_USAGE)
    except OSError as exc:
        return fail(f"{args.out}: cannot write: {exc.strerror or exc}", EXIT_USAGE)
    terminal().print(f"{count:,} messages of {args.topic} → {args.out}", highlight=False)
    return EXIT_OK


def add_tool_commands(commands: Commands) -> None:
    """Add `publish` and `dump` to the `hedger` subcommands."""
    publish = commands.add_parser("publish", help="produce a replay log's records to Kafka")
    publish.add_argument("log", help="replay log (JSON lines of {topic, key, value})")
    add_kafka_arguments(publish)
    publish.add_argument(
        "--topic",
        action="append",
        metavar="T",
        help="publish only lines of this log topic (repeatable); others are skipped",
    )
    publish.add_argument(
        "--partitions",
        type=number_in(int, 1),
        metavar="N",
        help="create missing topics with N partitions (default: broker auto-create)",
    )
    add_setting_flags(publish, KafkaSettings, ["replication_factor"], "Topics it creates")
    publish.add_argument(
        "--rename",
        action="append",
        metavar="LOG_TOPIC=KAFKA_TOPIC",
        help="write a log topic's lines to another topic (repeatable)",
    )
    publish.set_defaults(func=cmd_publish)

    dump = commands.add_parser("dump", help="write a Kafka topic as a replay log")
    dump.add_argument("topic")
    add_kafka_arguments(dump)
    dump.add_argument("--out", required=True, metavar="FILE", help="replay log to write")
    dump.add_argument(
        "--journal",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="messages are journal entries {topic, value, ...} "
        "(default: when the topic name ends with 'journal')",
    )
    dump.set_defaults(func=cmd_dump)
