"""What every `hedger` command shares: exit codes, errors, Kafka flags, stopping.

Owns: the exit codes, `fail` (one error line on stderr), the connection
flags every Kafka command takes (`add_kafka_arguments`) and turning them into
settings with flags over environment over defaults (`kafka_settings`),
`stop_event` (Ctrl-C, SIGTERM or a duration) and `free_port`. Imports the
standard library, rich and `streams.settings`; never another CLI module.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
from typing import Any, TypeAlias, TypeVar

from rich.console import Console

from streams.settings import KafkaSettings, load_settings

EXIT_OK = 0
EXIT_KAFKA = 1  # the broker failed or refused (unreachable, create failed, stalled)
EXIT_USAGE = 2  # bad arguments or settings, missing files, invalid configuration
EXIT_CORRUPT_LOG = 3

DEFAULT_CONFIG = "config/hedger.toml"

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

S = TypeVar("S", bound=KafkaSettings)

# flag -> setting; every default is None so that the environment shows through
_KAFKA_FLAGS = {
    "bootstrap": ("--bootstrap", "HOST:PORT[,HOST:PORT]", "Kafka brokers"),
    "security_protocol": (
        "--security-protocol",
        "P",
        "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    ),
    "sasl_mechanism": ("--sasl-mechanism", "M", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
    "sasl_username": ("--sasl-username", "USER", "SASL user name"),
    "sasl_password_file": ("--sasl-password-file", "FILE", "file holding the SASL password"),
    "ssl_cafile": ("--ssl-cafile", "FILE", "CA bundle to trust for SSL/SASL_SSL"),
}


def fail(message: str, code: int = EXIT_USAGE) -> int:
    """Print an error on stderr and return the exit code."""
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return code


def add_kafka_arguments(parser: argparse.ArgumentParser) -> None:
    """The connection flags, each over its `HEDGER_*` variable (no password flag: env or file)."""
    group = parser.add_argument_group(
        "Kafka connection (flags over HEDGER_* environment variables over defaults)"
    )
    for dest, (flag, metavar, help_text) in _KAFKA_FLAGS.items():
        env = "HEDGER_" + dest.upper()
        group.add_argument(flag, dest=dest, metavar=metavar, help=f"{help_text} (env {env})")


def kafka_settings(args: argparse.Namespace, cls: type[S], **given: Any) -> S:
    """Settings from the connection flags and `given` values over the environment.

    Raises `streams.settings.SettingsError` (one line) on an invalid setting.
    """
    flags = {dest: getattr(args, dest, None) for dest in _KAFKA_FLAGS}
    return load_settings(cls, **flags, **given)


def stop_event(duration: float = 0) -> asyncio.Event:
    """An event set by Ctrl-C, SIGTERM or, if given, after `duration` seconds."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
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
