"""A command line without tracebacks, run as a real subprocess.

Every bad setting — from a flag or from the environment — is one line naming
the setting and exit code 2; `--version`; `--help` shows defaults and the
environment variables; a mistyped long option is an error, not an
abbreviation; an unknown configuration key is refused by every command that
reads a configuration; `python -m streams` is the same command line.
"""

from __future__ import annotations

import os
import subprocess
from functools import partial
from pathlib import Path

import pytest

from streams.cli.common import HedgerParser
from streams.cli.main import build_parser
from streams.settings import WorkerSettings, load_config, load_settings
from tests.factories import REPO
from tests.support.cli import hedger as run_hedger

CONFIG = REPO / "config" / "hedger.toml"
SAMPLE = REPO / "samples" / "desk-day.jsonl"
# Only the flags, the config file and the `env` a test gives configure the command.
hedger = partial(run_hedger, timeout=60, inherit_settings=False)


def assert_one_line(proc: subprocess.CompletedProcess[str], *names: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    err = proc.stderr.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("error: "), err
    assert "Traceback" not in err and "validation error" not in err
    for name in names:
        assert name in err, err
    return err


@pytest.mark.parametrize(
    ("argv", "env", "names"),
    [
        (["worker"], {"HEDGER_PARTITIONS": "abc"}, ["HEDGER_PARTITIONS", "'abc'"]),
        (["worker", "--partitions", "0"], {}, ["HEDGER_PARTITIONS", "--partitions"]),
        (["worker", "--partitions", "abc"], {}, ["HEDGER_PARTITIONS", "--partitions"]),
        (["worker"], {"HEDGER_SECURITY_PROTOCOL": "TLS"}, ["HEDGER_SECURITY_PROTOCOL", "'TLS'"]),
        (["dump", "t", "--out", "x", "--security-protocol", "TLS"], {}, ["--security-protocol"]),
        (["worker", "--bootstrap", "h:0"], {}, ["HEDGER_BOOTSTRAP", "1-65535"]),
        (["control", "halt", "--reason", "r"], {"HEDGER_BOOTSTRAP": "h:65536"}, ["BOOTSTRAP"]),
        (["worker", "--commit-interval", "-1"], {}, ["HEDGER_COMMIT_INTERVAL"]),
        (["worker"], {"HEDGER_COMMIT_INTERVAL": "-0.5"}, ["HEDGER_COMMIT_INTERVAL"]),
        (["worker", "--metrics-port", "99999"], {}, ["HEDGER_METRICS_PORT", "65535"]),
        (["worker"], {"HEDGER_METRICS_PORT": "0"}, ["HEDGER_METRICS_PORT"]),
        (["worker", "--replication-factor", "0"], {}, ["HEDGER_REPLICATION_FACTOR"]),
        (["worker"], {"HEDGER_RETENTION_JOURNAL_MS": "0"}, ["HEDGER_RETENTION_JOURNAL_MS"]),
        (["worker", "--retention-orders-ms", "-2"], {}, ["HEDGER_RETENTION_ORDERS_MS"]),
        (["publish", "README.md", "--replication-factor", "x"], {}, ["REPLICATION_FACTOR"]),
        (["publish", "README.md", "--partitions", "0"], {}, ["--partitions"]),
        (
            ["paper-venue"],
            {"HEDGER_SECURITY_PROTOCOL": "SASL_PLAINTEXT"},
            ["HEDGER_SASL_USERNAME", "SASL_PLAINTEXT"],
        ),
        (["paper-venue", "--fill-ratio", "1.5"], {}, ["--fill-ratio"]),
        (["paper-venue", "--latency-ms", "-1"], {}, ["--latency-ms"]),
        (["paper-venue", "--silence-ratio", "1.01"], {}, ["--silence-ratio", "from 0 to 1"]),
        (["paper-venue", "--silence-ratio", "-0.1"], {}, ["--silence-ratio"]),
        (["demo", "--silence-ratio", "1.5"], {}, ["--silence-ratio", "from 0 to 1"]),
        (["paper-venue", "--counterparties", "A,,B"], {}, ["--counterparties", "'A,,B'"]),
        (["paper-venue", "--counterparties", ""], {}, ["--counterparties"]),
        (["paper-venue", "--counterparties", "A,B,A"], {}, ["--counterparties", "A given twice"]),
        (["worker", "--log-level", "loud"], {}, ["--log-level"]),
        (["worker", "--bootstr", "h:1"], {}, ["unrecognized arguments: --bootstr"]),
        (["replay", "x", "--orders", "o"], {}, ["unrecognized arguments: --orders"]),
        (["control", "halt", "--reas", "r"], {}, ["--reas"]),
        (["frobnicate"], {}, ["invalid choice"]),
    ],
)
def test_every_bad_setting_is_one_line_naming_it_and_exit_2(
    argv: list[str], env: dict[str, str], names: list[str]
) -> None:
    if argv[0] == "worker":
        argv = [*argv, "--config", str(CONFIG)]
    assert_one_line(hedger(*argv, env=env), *names)


def test_the_password_never_shows_in_a_settings_error() -> None:
    secret = "hunter2-but-longer"  # noqa: S105 - a test value
    proc = hedger(
        "control",
        "halt",
        "--reason",
        "r",
        "--security-protocol",
        "SASL_SSL",
        env={"HEDGER_SASL_PASSWORD": secret},
    )
    assert_one_line(proc, "HEDGER_SASL_USERNAME")
    assert secret not in proc.stderr + proc.stdout


def test_version_names_the_contract() -> None:
    proc = hedger("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("hedger ")
    assert "contract version 2.1" in proc.stdout


def test_help_names_every_exit_code() -> None:
    from streams.cli.common import EXIT_CORRUPT_LOG, EXIT_KAFKA, EXIT_OK, EXIT_USAGE
    from streams.live.app import EXIT_LOOP_FAILED

    proc = hedger("--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())  # argparse wraps lines
    assert "Exit codes: 0 success, 1 Kafka failed or refused, 2 bad arguments" in text
    assert (EXIT_OK, EXIT_KAFKA, EXIT_USAGE, EXIT_CORRUPT_LOG, EXIT_LOOP_FAILED) == (0, 1, 2, 3, 4)
    assert "3 a corrupt log line, 4 the worker's transactional loop failed or was fenced" in text
    worker = " ".join(hedger("worker", "--help").stdout.split())
    assert "1 Kafka failed or refused, 2 bad arguments" in worker
    assert "4 the transactional loop failed or was fenced" in worker


@pytest.mark.parametrize("command", ["worker", "publish", "dump", "control", "paper-venue"])
def test_help_shows_defaults_and_environment_variables(command: str) -> None:
    proc = hedger(command, "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())  # argparse wraps lines
    for shown in (
        "env HEDGER_BOOTSTRAP, default 127.0.0.1:9092",
        "env HEDGER_SECURITY_PROTOCOL, default PLAINTEXT",
        "env HEDGER_SASL_MECHANISM, default PLAIN",
        "env HEDGER_SASL_USERNAME",
        "env HEDGER_SASL_PASSWORD_FILE",
        "HEDGER_SASL_PASSWORD,",
        "env HEDGER_SSL_CAFILE",
        "HEDGER_TOPIC_LOAN_BOOKINGS",
    ):
        assert shown in text, (command, shown)
    if command == "worker":
        for shown in (
            "env HEDGER_PARTITIONS, default 4",
            "env HEDGER_REPLICATION_FACTOR, default 1",
            "env HEDGER_COMMIT_INTERVAL, default 0.0",
            "env HEDGER_METRICS_PORT",
            "env HEDGER_RETENTION_JOURNAL_MS, default -1",
            "(default: config/hedger.toml)",
        ):
            assert shown in text, shown


def test_no_parser_accepts_abbreviations() -> None:
    parser = build_parser()
    assert isinstance(parser, HedgerParser) and not parser.allow_abbrev
    subparsers = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(subparsers) >= {"replay", "check-config", "worker", "publish", "dump", "control"}
    for name, sub in subparsers.items():
        assert isinstance(sub, HedgerParser) and not sub.allow_abbrev, name


def test_flags_over_environment_over_defaults_for_the_new_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith("HEDGER_"):
            monkeypatch.delenv(name)
    defaults = load_settings(WorkerSettings)
    assert (defaults.replication_factor, defaults.retention_journal_ms) == (1, -1)
    assert defaults.retention_orders_ms == 30 * 24 * 3600 * 1000
    monkeypatch.setenv("HEDGER_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("HEDGER_RETENTION_ORDERS_MS", "86400000")
    from_env = load_settings(WorkerSettings)
    assert (from_env.replication_factor, from_env.retention_orders_ms) == (3, 86400000)
    from_flag = load_settings(WorkerSettings, replication_factor="2")
    assert from_flag.replication_factor == 2


@pytest.mark.parametrize("command", ["check-config", "replay", "worker"])
def test_an_unknown_configuration_key_is_refused_by_every_command(
    command: str, tmp_path: Path
) -> None:
    config = tmp_path / "typo.toml"
    config.write_text(CONFIG.read_text() + '\n[issuers.TYPO]\nlimit = "100"\nhalt = true\n')
    argv = {
        "check-config": ["check-config", str(config)],
        "replay": [
            "replay",
            str(SAMPLE),
            "--config",
            str(config),
            "--orders-out",
            str(tmp_path / "o.jsonl"),
            "--dead-letters-out",
            str(tmp_path / "d.jsonl"),
        ],
        # a broker nobody listens on: the configuration must stop it first
        "worker": ["worker", "--config", str(config), "--bootstrap", "127.0.0.1:9"],
    }[command]
    proc = hedger(*argv)
    assert_one_line(proc, "issuers.TYPO.halt", "unknown key")
    assert not (tmp_path / "o.jsonl").exists()


def test_several_unknown_keys_are_all_named(tmp_path: Path) -> None:
    config = tmp_path / "typos.toml"
    text = CONFIG.read_text().replace("[risk]\n", '[risk]\ntriger_ratio = "1"\n', 1)
    config.write_text(text + '\n[issuers.TYPO]\nlimit = "100"\nhalt = true\n')
    assert_one_line(hedger("check-config", str(config)), "risk.triger_ratio", "issuers.TYPO.halt")


def test_the_readme_replay_command_works_on_a_fresh_clone(tmp_path: Path) -> None:
    # The README's command, verbatim, from a checkout without build/.
    readme = (REPO / "README.md").read_text()
    line = next(line for line in readme.splitlines() if line.startswith(".venv/bin/hedger replay "))
    for name in ("samples", "config"):
        (tmp_path / name).symlink_to(REPO / name)
    argv = line.removeprefix(".venv/bin/hedger ").split()
    proc = hedger(*argv, "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "build" / "orders.jsonl").stat().st_size > 0
    assert (tmp_path / "build" / "dead-letters.jsonl").is_file()


def test_the_replication_factor_reaches_internal_topics_and_changelogs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from streams.live import app as live_app

    created: list[tuple[list[str], int]] = []

    async def ensure_topics(kafka, names, partitions, replication_factor=1, configs=None, exact=()):
        created.append((list(names), replication_factor))
        return []

    async def no_broker(self, replication_factor: int = 1) -> None:
        created.append(([], replication_factor))

    monkeypatch.setattr(live_app, "ensure_topics", ensure_topics)
    monkeypatch.setattr(live_app.TxnWorker, "create_topics", no_broker)
    monkeypatch.setenv("HEDGER_REPLICATION_FACTOR", "3")
    settings = load_settings(WorkerSettings)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        worker = live_app.Worker(settings, load_config(CONFIG))
        loop.run_until_complete(worker.create_topics())
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    (names, factor), (_, txn_factor) = created
    assert factor == txn_factor == 3
    assert "cds-hedger-loan-state-changelog" in names
    assert settings.topics.journal in names and settings.topics.control in names


def test_the_worker_creates_its_default_data_directory_in_a_fresh_checkout(
    tmp_path: Path,
) -> None:
    # No build/ in the working directory; the data directory is prepared before
    # Kafka is reached, so a broker nobody listens on still shows it.
    proc = hedger("worker", "--config", str(CONFIG), "--bootstrap", "127.0.0.1:9", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # Kafka unreachable, not a traceback
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "build" / "worker-data").is_dir()


def test_an_unusable_data_directory_is_one_line_before_kafka_is_tried(tmp_path: Path) -> None:
    (tmp_path / "occupied").write_text("a regular file\n")
    proc = hedger(
        "worker",
        "--config",
        str(CONFIG),
        "--bootstrap",
        "127.0.0.1:9",
        "--data-dir",
        str(tmp_path / "occupied" / "a" / "b"),
    )
    err = assert_one_line(proc, "HEDGER_DATA_DIR", "--data-dir")
    assert "a part of its path is a file" in err
