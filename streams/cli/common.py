"""What every `hedger` command shares: exit codes, errors, Kafka flags, stopping.

Owns: the exit codes, `fail` (one error line on stderr), the connection
flags every Kafka command takes (`add_kafka_arguments`) and turning them into
settings with flags over environment over defaults (`kafka_settings`),
the parser every command uses (`HedgerParser`: no abbreviations, defaults in
`--help`, one-line usage errors), checking Kafka answers (`reach_kafka`),
`stop_event` (Ctrl-C, SIGTERM or a duration) and `free_port`. Imports the
standard library, rich, `streams.settings` and `streams.connectivity` (these two
where a command uses them);
never another CLI module.
"""

from __future__ import annotations

import argparse
import signal
import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias, TypeVar

from rich.console import Console

if TYPE_CHECKING:
    import asyncio

    from streams.settings import KafkaSettings

# The Kafka settings (pydantic-settings) and asyncio are imported where a
# command uses them: the offline commands start without them.

EXIT_OK = 0
EXIT_KAFKA = 1  # the broker failed or refused (unreachable, create failed, stalled)
EXIT_USAGE = 2  # bad arguments or settings, missing files, invalid configuration
EXIT_CORRUPT_LOG = 3

DEFAULT_CONFIG = "config/hedger.toml"

Commands: TypeAlias = "argparse._SubParsersAction[HedgerParser]"

S = TypeVar("S", bound="KafkaSettings")

# setting -> (metavar, help); each flag's argparse default is None so that
# the environment shows through, and its help names the variable and the
# setting's own default (from the settings model).
SETTING_FLAGS: dict[str, tuple[str, str]] = {
    "bootstrap": ("HOST:PORT[,HOST:PORT]", "Kafka brokers"),
    "security_protocol": ("P", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
    "sasl_mechanism": ("M", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
    "sasl_username": ("USER", "SASL user name"),
    "sasl_password_file": (
        "FILE",
        "file holding the SASL password; or HEDGER_SASL_PASSWORD, never on the command line",
    ),
    "ssl_cafile": ("FILE", "CA bundle to trust for SSL/SASL_SSL (default: the system's CAs)"),
    "replication_factor": (
        "R",
        "replicas of every topic the bot creates (a 3-broker cluster wants 3)",
    ),
    "app_id": ("ID", "Kafka consumer group and Faust app id"),
    "partitions": ("N", "partitions of the internal topics and of the topics it creates"),
    "data_dir": ("DIR", "local state directory"),
    "metrics_port": ("PORT", "serve /metrics, /health and /ready on this port (1-65535)"),
    "metrics_bind": ("ADDR", "address the metrics server binds to"),
    "commit_interval": (
        "S",
        "seconds a partition waits for more records before its transaction (>= 0; 0: none)",
    ),
    "batch_size": ("N", "records per poll, so at most per transaction and partition"),
    "batch_wait": ("S", "seconds one poll waits for records (> 0)"),
    "session_timeout": ("S", "seconds before a dead worker's partitions move"),
    "stall_timeout": (
        "S",
        "seconds a partition may have lag and no commit before /ready is 503",
    ),
    "retention_journal_ms": ("MS", "retention.ms of the journal topic (-1: forever)"),
    "retention_orders_ms": ("MS", "retention.ms of the orders topic (-1: forever)"),
    "retention_control_ms": ("MS", "retention.ms of the control topic (-1: forever)"),
}
KAFKA_FLAGS = (
    "bootstrap",
    "security_protocol",
    "sasl_mechanism",
    "sasl_username",
    "sasl_password_file",
    "ssl_cafile",
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class HedgerParser(argparse.ArgumentParser):
    """The parser of `hedger` and of every subcommand.

    No abbreviated long options (`--bootstr` is an error, not `--bootstrap`),
    defaults in `--help`, and a usage error is one line and exit code 2.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see: {self.prog} --help)\n")


def fail(message: str, code: int = EXIT_USAGE) -> int:
    """Print an error on stderr and return the exit code."""
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return code


def add_kafka_arguments(parser: argparse.ArgumentParser) -> None:
    """The connection flags, each over its `HEDGER_*` variable (no password flag: env or file)."""
    from streams.settings import KafkaSettings

    add_setting_flags(
        parser,
        KafkaSettings,
        KAFKA_FLAGS,
        "Kafka connection (flags over HEDGER_* environment variables over defaults; "
        "topic names from HEDGER_TOPIC_LOAN_BOOKINGS, _CDS_EXECUTIONS, _DESK_CLOCK, _LOANS, "
        "_JOURNAL, _SELLER_PARTS, _ORDERS, _DEAD_LETTERS, _CONTROL)",
    )


def add_setting_flags(
    parser: argparse.ArgumentParser,
    cls: type[KafkaSettings],
    fields: Iterable[str],
    title: str,
) -> None:
    """A flag per setting, validated by the settings model (not argparse), so that
    a bad value, flag or environment, is one line naming the setting."""
    from streams.settings import env_name, flag_name

    group = parser.add_argument_group(title)
    for field in fields:
        metavar, help_text = SETTING_FLAGS[field]
        default = cls.model_fields[field].default
        shown = "" if default is None else f", default {default}"
        group.add_argument(
            flag_name(field),
            dest=field,
            metavar=metavar,
            help=f"{help_text} (env {env_name(field)}{shown})".replace("%", "%%"),
        )


def kafka_settings(args: argparse.Namespace, cls: type[S], **given: Any) -> S:
    """Settings from the setting flags and `given` values over the environment.

    Raises `streams.settings.SettingsError` (one line) on an invalid setting.
    """
    from streams.settings import load_settings

    flags = {name: getattr(args, name) for name in SETTING_FLAGS if hasattr(args, name)}
    flags = {name: value for name, value in flags.items() if name in cls.model_fields}
    return load_settings(cls, **{**flags, **given})


def number_in(
    kind: type[int] | type[float], low: float, high: float | None = None
) -> Callable[[str], int | float]:
    """An argparse `type`: a number from `low` to `high` (inclusive), else a one-line error."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"at least {low:g}" if high is None else f"from {low:g} to {high:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}, not {text!r}")
        return value

    return parse


def reach_kafka(kafka: KafkaSettings) -> str | None:
    """None once Kafka answers with these settings; else one line saying why it does not.

    Also keeps aiokafka's own log lines off the tool's stderr: the line
    returned says what they would.
    """
    import asyncio

    from streams.connectivity import KafkaUnavailable, check_connection, quiet_kafka_logs

    quiet_kafka_logs()
    try:
        asyncio.run(check_connection(kafka))
    except KafkaUnavailable as exc:
        return str(exc)
    return None


def stop_event(duration: float = 0) -> asyncio.Event:
    """An event set by Ctrl-C, SIGTERM, SIGHUP (a closed terminal) or after `duration` s."""
    import asyncio

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    if duration:
        loop.call_later(duration, stop.set)
    return stop


def free_port(exclude: tuple[int, ...] = ()) -> int:
    """A TCP port free on 127.0.0.1 right now, not one of `exclude`."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in exclude:
            return port
    raise RuntimeError("could not find a free TCP port on 127.0.0.1")
