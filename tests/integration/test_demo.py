"""`hedger demo` starts the whole v2 loop and stops it cleanly, in a bounded run."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.cli.common import free_port
from streams.cli.demo import PID_FILE
from tests.factories import REPO
from tests.support.cli import hedger

pytestmark = pytest.mark.kafka


# config/desk-v21.toml (desk-v2.toml with [pricing]), written out by hand: each
# group's L_G and each seller's L_s (DEALER-A has none of its own:
# default_seller_limit, 4bn), in millions.
GROUP_LIMITS = {"META-GROUP": "7,000", "NBIS-GROUP": "700", "ORCL-GROUP": "3,500"}
SELLER_LIMITS = {
    "ABILENE-INFRA": "800",
    "ATLAS-RE": "1,500",
    "BOREAL-LIFE": "600",
    "CEDAR-CREDIT": "300",
    "DEALER-A": "4,000",
    "DEALER-B": "8,000",
    "NVDA-CAPITAL": "1,000",
}
CELL = r"\s*│\s*"


def test_demo_runs_the_v21_loop_and_stops_cleanly() -> None:
    """The v2.1 desk: ticks applied, groups and sellers shown, the venue's silence expired,
    quotes held and CRWV's buys withheld while its spread is past the guard."""
    result = hedger(
        "demo",
        "--duration",
        "40",
        "--rate",
        "20",
        "--metrics-port",
        str(free_port()),
        timeout=240,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "worker ready" in output
    assert "demo stopped: worker and Kafka are down." in output
    # the last status lines: the sample's 190 bookings and a tick for each of
    # the 25 weekdays from 2026-03-02 to 2026-04-03 went in, orders came out,
    # the venue answered
    status = re.findall(
        r"published (\d+) \+ (\d+) ticks\s+processed (\d+).*orders (\d+)\s+"
        r"execution reports (\d+)\n"
        r"desk clock: last tick (\S+)\s+cancels sent (\d+)\s+expired still open (\d+)",
        output,
    )
    assert status, output[-3000:]
    published, ticks, processed, orders, reports, last_tick, cancels, still_open = status[-1]
    # the final view: the blocked sellers named after the status (the line may wrap)
    final = output[output.rindex("blocked sellers:") :]
    # (up to the v2.1 price line, which names issuers)
    final = re.split(r"\d+ quotes; 5y|Residual against limit", final)[0]
    blocked = set(re.findall(r"[A-Z][A-Z-]+", final))
    print(
        f"demo: {published} bookings + {ticks} ticks published, {processed} processed, "
        f"{orders} orders, {reports} reports, last tick {last_tick}, {cancels} cancels, "
        f"{still_open} expired still open, blocked: {sorted(blocked) or 'none'}"
    )
    assert (int(published), int(ticks)) == (190, 25)
    assert int(processed) >= 190 + 25 and int(orders) > 0 and int(reports) > 0
    # v2.1: 7 issuers x 5 tenors quoted on each of the 34 days with bookings
    prices = re.findall(r"(\d+) quotes; 5y \(bp\): (.*)withheld buys: (.*)", output)
    published_quotes, *price = prices[-1]
    assert int(published_quotes) == 7 * 5 * 34
    print(f"demo prices: {price}")
    assert "MSFT 35" in price[0] and "CRWV" in price[0]
    # CRWV widened past its 900bp guard from 2026-03-18 to 2026-03-21: buys withheld
    assert "spread_above_max" in price[1]
    # at least one tick applied: the worker's clock gauge holds a weekday of the month
    assert re.fullmatch(r"2026-0[34]-\d\d", last_tick), last_tick
    assert "2026-03-02" <= last_tick <= "2026-04-03"
    # the venue left some orders silent: they expired, were cancelled, and the
    # venue's `cancelled` reports closed them all by the end
    assert int(cancels) >= 1 and int(still_open) == 0
    for issuer in ("MSFT", "CRWV", "NBIS"):
        assert issuer in output
    assert "HALTED" in output  # NBIS is halted by the configuration
    # every group with its R_G against its L_G
    for group, limit in GROUP_LIMITS.items():
        row = rf"│ {group}{CELL}[\d,]+m{CELL}{limit}m{CELL}[^│]*{CELL}\d+%{CELL}(ok|BREACH)\s*│"
        assert re.search(row, output), (group, output[-4000:])
    # every configured seller with its limit; BLOCKED exactly when X_s >= L_s
    rows = re.findall(
        rf"│ ([A-Z-]+){CELL}([\d,]+)m{CELL}([\d,]+)m{CELL}[^│]*{CELL}(\d+)%{CELL}(ok|BLOCKED)\s*│",
        output[output.rindex("Sellers: exposure against limit") :],
    )
    shown = {seller: limit for seller, _, limit, _, _ in rows}
    assert SELLER_LIMITS.items() <= shown.items(), rows
    for seller, _, _, percent, state in rows:
        # a rounded percentage: >= 100 when blocked, <= 100 when not
        assert int(percent) >= 100 if state == "BLOCKED" else int(percent) <= 100, seller
    assert blocked == {seller for seller, *_, state in rows if state == "BLOCKED"}
    # nothing left running: the broker of the demo is stopped
    status_cmd = subprocess.run(
        [
            str(REPO / "scripts" / "kafka-local"),
            "status",
            "--dir",
            str(REPO / "build" / "demo-kafka"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert status_cmd.returncode == 1, status_cmd.stdout


def _demo(out: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "streams", "demo", "--rate", "20", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=out.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _wait_for(out: Path, text: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in out.read_text(errors="replace"):
            return
        assert process.poll() is None, out.read_text()[-3000:]
        time.sleep(0.3)
    raise TimeoutError(f"no {text!r}: {out.read_text()[-3000:]}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][:1]
    except (OSError, IndexError):
        return "Z"


def _broker_running() -> bool:
    status = subprocess.run(
        [str(REPO / "scripts" / "kafka-local"), "status", "--dir", str(DEMO_KAFKA)],
        capture_output=True,
        check=False,
    )
    return status.returncode == 0


DEMO_KAFKA = REPO / "build" / "demo-kafka"


def test_demo_killed_is_cleaned_up_by_the_next_which_a_hangup_stops(tmp_path: Path) -> None:
    """A killed demo leaves worker and broker; the next one stops them; SIGHUP stops all.

    Also: a busy metrics port is replaced by a free one.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        first_out = tmp_path / "first.out"
        first = _demo(first_out, "--metrics-port", str(port))
        _wait_for(first_out, "worker ready", first, 150)
        assert f"metrics port {port} is busy: using" in first_out.read_text()
    first_worker = json.loads(PID_FILE.read_text())["worker"]
    first.kill()  # a crash: no clean-up
    first.wait()
    assert _alive(first_worker) and _broker_running()  # left behind

    second_out = tmp_path / "second.out"
    second = _demo(second_out)
    _wait_for(second_out, "worker ready", second, 150)
    text = second_out.read_text()
    assert f"cleaned up after an earlier demo that did not stop (pid {first.pid})" in text
    assert not _alive(first_worker)
    second_worker = json.loads(PID_FILE.read_text())["worker"]
    began = time.monotonic()
    second.send_signal(signal.SIGHUP)  # the terminal is closed
    assert second.wait(120) == 0, second_out.read_text()[-3000:]
    stopped = time.monotonic() - began
    print(f"demo: SIGHUP to everything stopped in {stopped:.1f}s")
    assert "demo stopped: worker and Kafka are down." in second_out.read_text()
    assert not _alive(second_worker)
    assert not _broker_running()
    assert not PID_FILE.exists()


def test_demo_refuses_a_metrics_port_out_of_range() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streams", "demo", "--metrics-port", "70000"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--metrics-port" in result.stderr and "65535" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
