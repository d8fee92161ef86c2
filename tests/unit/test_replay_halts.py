"""`hedger replay --control` shows operator halts as the worker would after the same journal.

The metrics (`hedger_halt_active`, `hedger_issuer_halted`) and the summary's
`state` column come from the halts applied from `hedger-control` lines, not
only from the configuration's `halted` flag.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streams.cli.main import main
from tests.factories import EXAMPLES, booked, prom_samples


def _control(command: str, issuer: str | None, n: int) -> dict[str, Any]:
    value: dict[str, Any] = {
        "schema_version": 1,
        "event_id": f"ctl-{n}",
        "occurred_at": "2026-01-02T10:00:00Z",
        "command": command,
        "operator": "desk-head",
        "reason": "limit review",
    }
    if issuer is not None:
        value["issuer_id"] = issuer
    return value


def _write_log(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _replay(tmp_path: Path, log: Path, capsys: pytest.CaptureFixture[str]) -> tuple[dict, str]:
    metrics = tmp_path / "final.prom"
    code = main(
        [
            "replay",
            str(log),
            "--config",
            str(EXAMPLES / "hedger.toml"),
            "--orders-out",
            str(tmp_path / "o.jsonl"),
            "--dead-letters-out",
            str(tmp_path / "d.jsonl"),
            "--control",
            "--metrics-out",
            str(metrics),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    return prom_samples(metrics.read_text()), out


def _state(summary: str, issuer: str) -> str:
    for line in summary.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 2 and cells[1] == issuer:
            return cells[-2]
    raise AssertionError(f"{issuer} not in the summary:\n{summary}")


def test_replay_shows_an_issuer_halt_from_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = _write_log(
        tmp_path / "log.jsonl",
        [
            {
                "topic": "loan-bookings",
                "key": "L-1",
                "value": booked("L-1", "100000000", issuer="CRWV"),
            },
            {"topic": "hedger-control", "key": "CRWV", "value": _control("halt", "CRWV", 1)},
            {
                "topic": "loan-bookings",
                "key": "L-2",
                "value": booked("L-2", "50000000", issuer="CRWV"),
            },
            {
                "topic": "loan-bookings",
                "key": "L-3",
                "value": booked("L-3", "50000000", issuer="MSFT"),
            },
        ],
    )
    samples, summary = _replay(tmp_path, log, capsys)
    halt = (
        "hedger_halt_active",
        (("issuer", "CRWV"), ("operator", "desk-head"), ("reason", "limit review")),
    )
    assert samples[halt] == 1
    assert samples[("hedger_issuer_halted", (("issuer", "CRWV"),))] == 1
    assert samples[("hedger_issuer_halted", (("issuer", "MSFT"),))] == 0
    assert _state(summary, "CRWV") == "HALTED"
    assert _state(summary, "MSFT") == "ok"


def test_replay_of_a_journal_applies_a_halt_for_all_per_partition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = _write_log(
        tmp_path / "journal.jsonl",
        [
            {
                "topic": "hedger-control",
                "key": "*",
                "value": _control("halt", None, 1),
                "partition": 1,
            },
            {
                "topic": "loan-bookings",
                "key": "MSFT",
                "value": booked("L-1", "10000000", issuer="MSFT"),
                "partition": 1,
            },
            {
                "topic": "loan-bookings",
                "key": "ORCL",
                "value": booked("L-2", "10000000", issuer="ORCL"),
                "partition": 0,
            },
        ],
    )
    samples, summary = _replay(tmp_path, log, capsys)
    halt = (
        "hedger_halt_active",
        (("issuer", "*"), ("operator", "desk-head"), ("reason", "limit review")),
    )
    assert samples[halt] == 1
    assert samples[("hedger_issuer_halted", (("issuer", "MSFT"),))] == 1
    assert samples[("hedger_issuer_halted", (("issuer", "ORCL"),))] == 0
    assert _state(summary, "MSFT") == "HALTED"
    assert _state(summary, "ORCL") == "ok"


def test_a_resume_in_the_log_lifts_the_halt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = _write_log(
        tmp_path / "log.jsonl",
        [
            {"topic": "hedger-control", "key": "CRWV", "value": _control("halt", "CRWV", 1)},
            {
                "topic": "loan-bookings",
                "key": "L-1",
                "value": booked("L-1", "100000000", issuer="CRWV"),
            },
            {"topic": "hedger-control", "key": "CRWV", "value": _control("resume", "CRWV", 2)},
            {
                "topic": "loan-bookings",
                "key": "L-2",
                "value": booked("L-2", "50000000", issuer="CRWV"),
            },
        ],
    )
    samples, summary = _replay(tmp_path, log, capsys)
    assert not any(name == "hedger_halt_active" for name, _ in samples)
    assert samples[("hedger_issuer_halted", (("issuer", "CRWV"),))] == 0
    assert _state(summary, "CRWV") == "ok"
