"""One settings source: flags over environment over defaults, secrets masked, one-line errors."""

from __future__ import annotations

import json
import os
import ssl
from pathlib import Path

import pytest

from streams.cli.common import EXIT_USAGE, kafka_settings
from streams.cli.main import build_parser, main
from streams.cli.worker import worker_settings
from streams.settings import (
    DEFAULT_BOOTSTRAP,
    KafkaSettings,
    SettingsError,
    WorkerSettings,
    load_settings,
)

SECRET = "correct-horse-battery-staple"  # noqa: S105 - a test value


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HEDGER_"):
            monkeypatch.delenv(name)


def test_defaults_when_nothing_is_given() -> None:
    args = build_parser().parse_args(["worker"])
    settings = worker_settings(args)
    assert settings.bootstrap == DEFAULT_BOOTSTRAP
    assert settings.security_protocol == "PLAINTEXT"
    assert settings.topics.control == "hedger-control"


def test_environment_over_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEDGER_BOOTSTRAP", "kafka-env:9093")
    monkeypatch.setenv("HEDGER_PARTITIONS", "7")
    monkeypatch.setenv("HEDGER_TOPIC_CONTROL", "env-control")
    settings = worker_settings(build_parser().parse_args(["worker"]))
    assert settings.bootstrap == "kafka-env:9093"
    assert settings.partitions == 7
    assert settings.topics.control == "env-control"


def test_flags_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEDGER_BOOTSTRAP", "kafka-env:9093")
    monkeypatch.setenv("HEDGER_PARTITIONS", "7")
    monkeypatch.setenv("HEDGER_SECURITY_PROTOCOL", "SSL")
    args = build_parser().parse_args(
        "worker --bootstrap kafka-flag:9094 --partitions 2 --security-protocol PLAINTEXT".split()
    )
    settings = worker_settings(args)
    assert (settings.bootstrap, settings.partitions) == ("kafka-flag:9094", 2)
    assert settings.security_protocol == "PLAINTEXT"


@pytest.mark.parametrize("command", ["publish LOG", "dump T --out F", "control halt --reason r"])
def test_every_kafka_command_reads_the_environment(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEDGER_BOOTSTRAP", "kafka-env:9093")
    args = build_parser().parse_args(command.split())
    assert kafka_settings(args, KafkaSettings).bootstrap == "kafka-env:9093"
    args = build_parser().parse_args([*command.split(), "--bootstrap", "flag:1"])
    assert kafka_settings(args, KafkaSettings).bootstrap == "flag:1"


def test_sasl_ssl_client_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text(SECRET + "\n")
    monkeypatch.setenv("HEDGER_SASL_PASSWORD_FILE", str(secret_file))
    settings = load_settings(
        KafkaSettings,
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="desk",
    )
    options = settings.client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "desk"
    assert options["sasl_plain_password"] == SECRET
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    credentials = settings.faust_options()["broker_credentials"]
    assert credentials.password == SECRET
    assert credentials.ssl_context is not None


def test_ssl_has_a_context_and_plaintext_none() -> None:
    ssl_options = load_settings(KafkaSettings, security_protocol="SSL").client_options()
    assert isinstance(ssl_options["ssl_context"], ssl.SSLContext)
    plain = load_settings(KafkaSettings).client_options()
    assert "ssl_context" not in plain and "sasl_plain_password" not in plain


def test_the_password_never_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEDGER_SASL_PASSWORD", SECRET)
    settings = load_settings(
        WorkerSettings, security_protocol="SASL_PLAINTEXT", sasl_username="desk"
    )
    assert settings.secret() == SECRET
    for shown in (
        repr(settings),
        str(settings),
        json.dumps(settings.masked()),
        settings.model_dump_json(),
        str(settings.model_dump()),
        repr(settings.faust_options()),
    ):
        assert SECRET not in shown


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HEDGER_SECURITY_PROTOCOL": "TLS"}, "HEDGER_SECURITY_PROTOCOL"),
        ({"HEDGER_SASL_MECHANISM": "GSSAPI"}, "HEDGER_SASL_MECHANISM"),
        ({"HEDGER_BOOTSTRAP": "broker:99999"}, "HEDGER_BOOTSTRAP"),
        ({"HEDGER_BOOTSTRAP": "no-port"}, "HEDGER_BOOTSTRAP"),
        ({"HEDGER_SECURITY_PROTOCOL": "SASL_SSL"}, "HEDGER_SASL_USERNAME"),
        (
            {"HEDGER_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "HEDGER_SASL_USERNAME": "desk"},
            "HEDGER_SASL_PASSWORD",
        ),
        ({"HEDGER_SSL_CAFILE": "/nonexistent/ca.pem"}, "HEDGER_SSL_CAFILE"),
        ({"HEDGER_SASL_PASSWORD_FILE": "/nonexistent/pw"}, "HEDGER_SASL_PASSWORD_FILE"),
    ],
)
def test_bad_settings_are_one_line_naming_the_setting(
    env: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if expected == "HEDGER_SASL_USERNAME":  # a password given must not leak into the error
        monkeypatch.setenv("HEDGER_SASL_PASSWORD", SECRET)
    with pytest.raises(SettingsError) as caught:
        load_settings(KafkaSettings)
    message = str(caught.value)
    assert message.startswith(expected), message
    assert "\n" not in message
    assert SECRET not in message


@pytest.mark.parametrize(
    "argv",
    [
        ["worker", "--security-protocol", "BOGUS"],
        ["publish", "x.jsonl", "--bootstrap", "h:70000"],
        ["dump", "t", "--out", "o", "--security-protocol", "SASL_SSL"],
        ["control", "halt", "--reason", "r", "--ssl-cafile", "/nonexistent/ca.pem"],
        ["paper-venue", "--sasl-mechanism", "MD5"],
    ],
)
def test_commands_exit_2_with_one_line_and_no_traceback(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if argv[0] == "publish":
        log = tmp_path / "x.jsonl"
        log.write_text("")
        argv = [argv[0], str(log), *argv[2:]]
    if argv[0] == "worker":
        argv = [*argv, "--config", str(Path(__file__).parents[2] / "config" / "hedger.toml")]
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: HEDGER_"), err
    assert err.strip().count("\n") == 0, err
    assert "Traceback" not in err and "validation error" not in err
