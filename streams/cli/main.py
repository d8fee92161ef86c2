"""The `hedger` command line: the parser of every command, and the entry point.

Owns: `build_parser` (the command groups registered in order) and `main`.
Each group lives in its own module on `streams.cli.common`; none imports this
one, so there is no circle. An offline command (`replay`, `check-config`)
builds only its own group's parser, so it starts without the live stack, the
Kafka settings or the demo; every other command line builds them all.
Imports the standard library, `hedger` (the contract version) and `streams`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from hedger import CONTRACT_VERSION
from streams.cli.common import HedgerParser
from streams.cli.replay import add_replay_commands

OFFLINE_COMMANDS = frozenset({"replay", "check-config"})  # what add_replay_commands registers


class _Version(argparse.Action):
    """`--version`: the installed version, looked up only when asked for."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        kwargs.update(nargs=0, default=argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> NoReturn:
        from streams.observe.metrics import build_version

        print(f"hedger {build_version()} (contract version {CONTRACT_VERSION})")  # on stdout
        parser.exit()


def build_parser(command: str | None = None) -> HedgerParser:
    """The argument parser of every `hedger` command (of only an offline `command`'s group)."""
    parser = HedgerParser(
        prog="hedger",
        description="CDS hedging bot for issuer concentration limits. Exit codes: 0 success, "
        "1 Kafka failed or refused, 2 bad arguments, settings, files or configuration, "
        "3 a corrupt log line, 4 the worker's transactional loop failed or was fenced "
        "(its log's worker.loop_failed line names why; a restart resumes from the committed "
        "offsets and state).",
    )
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    commands = parser.add_subparsers(dest="command", required=True)
    add_replay_commands(commands)
    if command in OFFLINE_COMMANDS:
        return parser
    from streams.cli.demo import add_demo_command
    from streams.cli.ops import add_ops_commands
    from streams.cli.tools import add_tool_commands
    from streams.cli.worker import add_worker_command

    add_worker_command(commands)
    add_tool_commands(commands)
    add_ops_commands(commands)
    add_demo_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hedger` console script (and of `python -m streams`)."""
    words = sys.argv[1:] if argv is None else list(argv)
    # the top-level parser takes no option with a value: the first word is the command
    command = next((word for word in words if not word.startswith("-")), None)
    args = build_parser(command).parse_args(words)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
