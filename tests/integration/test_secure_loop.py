"""The whole loop over SASL_SSL on the real broker.

Every client is the real command line (`python -m streams ...`) configured
only through `HEDGER_*` variables: `publish` → `worker` → orders, a
`control halt`, the `paper-venue` answering, `dump` reading the results back.
A wrong password stops each command with one line naming the problem; a
PLAINTEXT client on the TLS port reads nothing; the password appears in no
output, log line, error, metric or file written.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import REPO
from tests.integration.worker_harness import (
    WorkerProcess,
    read_jsonl,
    start_paper_venue,
    wait_until_idle,
)
from tests.kafka_broker import LocalKafka
from tests.support.bookings import booking
from tests.support.cli import hedger

pytestmark = pytest.mark.kafka
CONFIG = REPO / "config" / "hedger.toml"


@pytest.fixture
def secure_env(
    secure_kafka: LocalKafka, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """This process's environment (inherited by every command) set for the SASL_SSL listener.

    The password comes from a file (HEDGER_SASL_PASSWORD_FILE), as in production.
    """
    for name in list(os.environ):
        if name.startswith("HEDGER_"):
            monkeypatch.delenv(name)
    password_file = tmp_path / "kafka.pass"
    password_file.write_text(secure_kafka.scram_password + "\n")
    password_file.chmod(0o600)
    env = {
        "HEDGER_BOOTSTRAP": secure_kafka.sasl_ssl_bootstrap,
        "HEDGER_SECURITY_PROTOCOL": "SASL_SSL",
        "HEDGER_SASL_MECHANISM": "SCRAM-SHA-512",
        "HEDGER_SASL_USERNAME": secure_kafka.scram_user,
        "HEDGER_SASL_PASSWORD_FILE": str(password_file),
        "HEDGER_SSL_CAFILE": str(secure_kafka.ca_file),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env


def wait_for(worker: WorkerProcess, needle: str, present: bool = True, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (needle in worker.scrape()) == present:
            return
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} {'never appeared' if present else 'stayed'} in /metrics")


def test_the_whole_loop_runs_over_sasl_ssl(
    secure_kafka: LocalKafka, secure_env: dict[str, str], unique: str, tmp_path: Path
) -> None:
    password = secure_kafka.scram_password
    outputs: list[str] = []
    worker = WorkerProcess(secure_kafka.sasl_ssl_bootstrap, unique, tmp_path, partitions=1)
    topics = worker.topics
    rename = f"loan-bookings={topics['loan_bookings']}"

    # publish creates the input topic (over SASL_SSL) before the worker starts
    first = tmp_path / "first.jsonl"
    first.write_text(json.dumps(booking(1, "MSFT", "1000000")) + "\n")  # below every limit
    proc = hedger("publish", str(first), "--partitions", "1", "--rename", rename)
    outputs.append(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stderr

    worker.start()
    venue = start_paper_venue(worker, 3, "1", 10)
    try:
        proc = hedger(
            "control",
            "halt",
            "--issuer",
            "CRWV",
            "--reason",
            "secure review",
            "--operator",
            "desk-head",
            "--topic",
            topics["control"],
        )
        outputs.append(proc.stdout + proc.stderr)
        assert proc.returncode == 0, proc.stderr
        wait_for(worker, 'hedger_halt_active{issuer="CRWV",operator="desk-head"')

        # CRWV (limit 750m) is halted: no order; MSFT (limit 8bn) breaches: orders
        events = tmp_path / "events.jsonl"
        events.write_text(
            json.dumps(booking(2, "CRWV", "900000000"))
            + "\n"
            + json.dumps(booking(3, "MSFT", "9000000000"))
            + "\n"
        )
        proc = hedger("publish", str(events), "--rename", rename)
        outputs.append(proc.stdout + proc.stderr)
        assert proc.returncode == 0, proc.stderr

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the venue fills every order
            wait_until_idle(worker)
            metrics = worker.scrape()
            if "hedger_open_orders 0.0" in metrics and "hedger_orders_total{" in metrics:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"orders still open:\n{worker.scrape()}")
    finally:
        venue.send_signal(signal.SIGTERM)
        venue_output = venue.communicate(timeout=60)[0].decode()
        outputs.append(venue_output)
    metrics = worker.scrape()
    assert worker.stop() == 0
    assert venue.returncode == 0, venue_output
    assert "paper venue: answered" in venue_output

    orders_file = tmp_path / "out" / "orders.jsonl"
    proc = hedger("dump", topics["orders"], "--out", str(orders_file))
    outputs.append(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stderr
    orders = [line["value"] for line in read_jsonl(orders_file)]
    assert orders, "no order over SASL_SSL"
    assert {o["issuer_id"] for o in orders} == {"MSFT"}  # CRWV halted
    assert orders[0]["trigger_event_id"] == "ops-3"  # later ones follow the venue's fills

    reports_file = tmp_path / "out" / "reports.jsonl"
    proc = hedger("dump", topics["cds_executions"], "--out", str(reports_file))
    outputs.append(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stderr
    reports = [line["value"] for line in read_jsonl(reports_file)]
    filled = {r["order_id"] for r in reports if r["status"] == "filled"}
    assert filled == {o["order_id"] for o in orders}

    # the password: in no output, log line, metric or file written
    halted = [x for x in worker.log_lines() if x.get("event") == "hedging.halted"]
    assert halted and halted[0]["issuer_id"] == "CRWV"
    assert "**********" in worker.log_text()  # the settings banner masks it
    for text in [*outputs, worker.log_text(), metrics]:
        assert password not in text
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name != "kafka.pass":
            assert password.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("command", ["worker", "publish", "dump", "control", "paper-venue"])
def test_a_wrong_password_is_one_line_naming_the_problem(
    command: str,
    secure_kafka: LocalKafka,
    secure_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrong = "not-" + secure_kafka.scram_password
    monkeypatch.delenv("HEDGER_SASL_PASSWORD_FILE")
    log = tmp_path / "in.jsonl"
    log.write_text(json.dumps(booking(9, "MSFT", "1000000")) + "\n")
    argv = {
        "worker": ["worker", "--config", str(CONFIG), "--log-format", "json"],
        "publish": ["publish", str(log)],
        "dump": ["dump", "hedger-journal", "--out", str(tmp_path / "dump.jsonl")],
        "control": ["control", "halt", "--reason", "wrong password test"],
        "paper-venue": ["paper-venue", "--duration", "5"],
    }[command]
    started = time.monotonic()
    proc = hedger(*argv, env={"HEDGER_SASL_PASSWORD": wrong})
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert time.monotonic() - started < 60
    # the worker also logs (JSON lines); besides those, one line
    lines = [x for x in proc.stderr.splitlines() if x.strip() and not x.startswith("{")]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines
    assert "authentication failed" in lines[0]
    assert f"credentials of user {secure_kafka.scram_user!r}" in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    for secret in (wrong, secure_kafka.scram_password):
        assert secret not in proc.stderr + proc.stdout
    assert not (tmp_path / "dump.jsonl").exists()


def test_a_plaintext_client_on_the_tls_port_reads_nothing(
    secure_kafka: LocalKafka, secure_env: dict[str, str], unique: str, tmp_path: Path
) -> None:
    log = tmp_path / "in.jsonl"
    log.write_text(json.dumps(booking(7, "MSFT", "1000000")) + "\n")
    topic = f"{unique}-secret"
    proc = hedger("publish", str(log), "--partitions", "1", "--rename", f"loan-bookings={topic}")
    assert proc.returncode == 0, proc.stderr

    out = tmp_path / "stolen.jsonl"
    proc = hedger("dump", topic, "--out", str(out), "--security-protocol", "PLAINTEXT")
    assert proc.returncode == 1
    err = proc.stderr.strip()
    assert err.count("\n") == 0 and err.startswith("error: nothing dumped:"), err
    assert "does that listener speak PLAINTEXT?" in err
    assert not out.exists()

    proc = hedger("dump", topic, "--out", str(out))  # the same command over SASL_SSL
    assert proc.returncode == 0, proc.stderr
    assert [line["key"] for line in read_jsonl(out)] == ["OPS-7"]
