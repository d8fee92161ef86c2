"""The offline commands start without the live stack.

`hedger replay`, `check-config`, `--version` and `--help` run in a fresh
interpreter; afterwards none of Faust, aiokafka, their own dependencies
(mode, aiohttp) or the project's live modules is in `sys.modules`. Only the
command that needs them (the worker, the Kafka tools) loads them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import EXAMPLES, REPO

CONFIG = REPO / "config" / "hedger.toml"
SAMPLE = REPO / "samples" / "desk-day.jsonl"
LIVE_ONLY = (
    "faust",
    "aiokafka",
    "mode",
    "aiohttp",
    "kafka",
    "structlog",
    "streams.live",
    "streams.kafka_io",
    "streams.connectivity",
    "streams.observe.logs",
)

# Runs the command in-process, then prints the live-only modules it loaded.
PROBE = """
import json, sys
tops = json.loads(sys.argv[1])
from streams.cli.main import main
try:
    code = main(sys.argv[2:])
except SystemExit as exit:
    code = exit.code
live = sorted(
    name for name in sys.modules
    if any(name == top or name.startswith(top + ".") for top in tops)
)
print(json.dumps({"code": code, "live": live}))
"""


def loaded(*argv: str, tops: tuple[str, ...] = LIVE_ONLY) -> tuple[object, list[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(tops), *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    result = json.loads(proc.stdout.splitlines()[-1])
    return result["code"], result["live"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["--help"],
        ["replay", "--help"],
        ["check-config", str(CONFIG)],
    ],
)
def test_offline_commands_load_no_live_module(argv: list[str]) -> None:
    code, live = loaded(*argv)
    assert code in (0, None)
    assert live == []


def test_a_replay_loads_no_live_module(tmp_path: Path) -> None:
    code, live = loaded(
        "replay",
        str(SAMPLE),
        "--config",
        str(CONFIG),
        "--orders-out",
        str(tmp_path / "orders.jsonl"),
        "--dead-letters-out",
        str(tmp_path / "dead.jsonl"),
        "--metrics-out",
        str(tmp_path / "metrics.txt"),
    )
    assert code == 0
    assert live == []
    assert (tmp_path / "orders.jsonl").stat().st_size > 0


def test_the_probe_sees_a_live_module_when_one_is_loaded() -> None:
    # the worker's parser error path runs after the command loaded Faust
    code, live = loaded("worker", "--config", str(REPO / "no-such-config.toml"))
    assert code != 0
    assert "faust" in live or "aiokafka" in live


def replay_argv(log: Path, config: Path, out: Path) -> list[str]:
    return [
        "replay",
        str(log),
        "--config",
        str(config),
        "--orders-out",
        str(out / "orders.jsonl"),
        "--dead-letters-out",
        str(out / "dead.jsonl"),
    ]


def test_quantlib_is_loaded_only_by_a_configuration_that_prices(tmp_path: Path) -> None:
    # without [pricing] nothing is priced, so QuantLib's start-up cost is not paid
    code, pricing_modules = loaded(
        *replay_argv(SAMPLE, CONFIG, tmp_path), tops=("QuantLib", "hedger.pricing")
    )
    assert code == 0
    assert pricing_modules == []
    code, pricing_modules = loaded(
        *replay_argv(EXAMPLES / "desk-v21.jsonl", EXAMPLES / "desk-v21.toml", tmp_path),
        tops=("QuantLib", "hedger.pricing"),
    )
    assert code == 0
    assert "QuantLib" in pricing_modules
    assert "hedger.pricing" in pricing_modules


# What only the Kafka commands, the demo or --metrics-out need.
NOT_FOR_A_PLAIN_REPLAY = (
    "pydantic_settings",
    "prometheus_client",
    "asyncio",
    "streams.settings",
    "streams.cli.demo",
    "streams.cli.worker",
    "streams.cli.tools",
    "streams.cli.ops",
    "streams.venue",
)


def test_a_plain_replay_loads_neither_settings_metrics_nor_the_other_commands(
    tmp_path: Path,
) -> None:
    code, loaded_modules = loaded(
        *replay_argv(SAMPLE, CONFIG, tmp_path), tops=NOT_FOR_A_PLAIN_REPLAY
    )
    assert code == 0
    assert loaded_modules == []
    assert (tmp_path / "orders.jsonl").stat().st_size > 0
    # the same probe sees them when a command needs them
    code, loaded_modules = loaded("worker", "--help", tops=NOT_FOR_A_PLAIN_REPLAY)
    assert "pydantic_settings" in loaded_modules
    assert "streams.cli.demo" in loaded_modules
