"""The `hedger` command line: the parser of every command, and the entry point.

Owns: `build_parser` (the command groups registered in order) and `main`.
Each group lives in its own module on `streams.cli.common`; none imports this
one, so there is no circle. Imports the standard library, `hedger` (the
contract version) and `streams`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hedger import CONTRACT_VERSION
from streams.cli.common import HedgerParser
from streams.cli.demo import add_demo_command
from streams.cli.ops import add_ops_commands
from streams.cli.replay import add_replay_commands
from streams.cli.tools import add_tool_commands
from streams.cli.worker import add_worker_command
from streams.observe.metrics import build_version


def build_parser() -> HedgerParser:
    """The argument parser of every `hedger` command."""
    parser = HedgerParser(
        prog="hedger",
        description="CDS hedging bot for issuer concentration limits. Exit codes: 0 success, "
        "1 Kafka failed or refused, 2 bad arguments, settings, files or configuration, "
        "3 a corrupt log line, 4 the worker's transactional loop failed or was fenced "
        "(its log's worker.loop_failed line names why; a restart resumes from the committed "
        "offsets and state).",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"hedger {build_version()} (contract version {CONTRACT_VERSION})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_replay_commands(commands)
    add_worker_command(commands)
    add_tool_commands(commands)
    add_ops_commands(commands)
    add_demo_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hedger` console script (and of `python -m streams`)."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
