"""The end-of-replay summary shows what needs action; the full table is a file.

A log of 26 issuers against a limit of 100m: BIG (5bn of loans, one decision
capped at 1bn of protection, so still in breach), HALT (halted by the
configuration, 50m) and I01..I24 (n million each, utilisation n%). The
terminal lists BIG and HALT, then the 20 others of highest utilisation
(I24 down to I05), and the counts; `--report-out` writes every issuer, as
JSON lines or CSV, through the same output checks as every other file.
"""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import hedger

CONFIG = """\
[risk]
base_currency = "USD"
tier1_capital = "60000000000"
large_exposure_limit_pct = "25"
default_issuer_limit = "100000000"
trigger_ratio = "1.00"
target_ratio = "0.90"
unwind_ratio = "0.60"
max_maturity_years = "5"

[hedge]
tenors_years = [1, 3, 5, 7, 10]
lot_size = "1000000"
min_order_notional = "5000000"
max_order_notional = "250000000"
max_decision_notional = "1000000000"
coupon_bps = 100
doc_clause = "MR14"
seniority = "SNRFOR"

[fx]
USD = "1"

[issuers.HALT]
halted = true
"""
EXPOSURES = {"BIG": 5_000_000_000, "HALT": 50_000_000} | {
    f"I{n:02d}": n * 1_000_000 for n in range(1, 25)
}


def _booking(n: int, issuer: str, notional: int) -> str:
    value = {
        "schema_version": 1,
        "event_id": f"e{n}",
        "event_type": "loan.booked",
        "occurred_at": "2026-01-02T09:00:00Z",
        "loan_id": f"L{n}",
        "issuer_id": issuer,
        "sequence": 1,
        "notional": str(notional),
        "currency": "USD",
        "maturity_date": "2030-01-01",
    }
    return json.dumps({"topic": "loan-bookings", "value": value})


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "hedger.toml").write_text(CONFIG)
    lines = [_booking(n, issuer, e) for n, (issuer, e) in enumerate(EXPOSURES.items())]
    (tmp_path / "log.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path


def replay(folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return hedger(
        "replay",
        str(folder / "log.jsonl"),
        "--config",
        str(folder / "hedger.toml"),
        "--orders-out",
        str(folder / "orders.jsonl"),
        "--dead-letters-out",
        str(folder / "dead.jsonl"),
        *extra,
        timeout=120,
    )


def shown_issuers(stdout: str) -> list[str]:
    """The issuer ids in the rows of the summary's issuer table, in order."""
    table = stdout.split("Issuer risk:", 1)[1]
    ids = []
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if len(cells) > 1 and cells[0] in EXPOSURES:
            ids.append(cells[0])
    return ids


def test_the_summary_lists_what_needs_action_then_the_top_20(files: Path) -> None:
    proc = replay(files)
    assert proc.returncode == 0, proc.stderr
    assert "26 issuers, 1 in breach, 1 halted" in proc.stdout
    expected = ["BIG", "HALT"] + [f"I{n:02d}" for n in range(24, 4, -1)]
    assert shown_issuers(proc.stdout) == expected


EXPECTED_ROWS = {
    "I07": {
        "kind": "issuer",
        "unit": "I07",
        "group": None,
        "exposure_currency": "USD",
        "exposure": "7000000.00",
        "coverage": "0.00",
        "residual": "7000000.00",
        "limit": "100000000.00",
        "utilisation": "0.070000",
        "state": "ok",
    },
    "HALT": {
        "kind": "issuer",
        "unit": "HALT",
        "group": None,
        "exposure_currency": "USD",
        "exposure": "50000000.00",
        "coverage": "0.00",
        "residual": "50000000.00",
        "limit": "100000000.00",
        "utilisation": "0.500000",
        "state": "HALTED",
    },
}


@pytest.mark.parametrize("name", ["units.jsonl", "units.json", "units"])
def test_report_out_writes_every_issuer_as_json_lines(files: Path, name: str) -> None:
    proc = replay(files, "--report-out", str(files / name), "--quiet")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (files / name).read_text().splitlines()]
    assert [row["unit"] for row in rows] == sorted(EXPOSURES)
    by_unit = {row["unit"]: row for row in rows}
    for unit, row in EXPECTED_ROWS.items():
        assert by_unit[unit] == row
    assert by_unit["BIG"]["state"] == "BREACH"
    assert by_unit["BIG"]["exposure"] == "5000000000.00"


@pytest.mark.parametrize(
    ("name", "flags"),
    [("units.csv", []), ("units.CSV", []), ("units.txt", ["--report-format", "csv"])],
)
def test_report_out_writes_csv_by_extension_or_flag(
    files: Path, name: str, flags: list[str]
) -> None:
    proc = replay(files, "--report-out", str(files / name), *flags, "--quiet")
    assert proc.returncode == 0, proc.stderr
    with (files / name).open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["unit"] for row in rows] == sorted(EXPOSURES)
    by_unit = {row["unit"]: row for row in rows}
    for unit, row in EXPECTED_ROWS.items():
        assert by_unit[unit] == {k: "" if v is None else v for k, v in row.items()}


def test_the_format_flag_wins_over_the_extension(files: Path) -> None:
    proc = replay(files, "--report-out", str(files / "u.csv"), "--report-format", "jsonl")
    assert proc.returncode == 0, proc.stderr
    first = json.loads((files / "u.csv").read_text().splitlines()[0])
    assert first["unit"] == "BIG"


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("log.jsonl", "refusing to overwrite"),  # an input
        ("orders.jsonl", "also the output"),  # another output
        (".", "not a regular file"),  # a folder
        ("log.jsonl/x.csv", "is not a folder"),
    ],
)
def test_report_out_gets_the_checks_of_every_output(files: Path, target: str, words: str) -> None:
    before = (files / "log.jsonl").read_text()
    proc = replay(files, "--report-out", str(files / target))
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and words in err, err
    assert "Traceback" not in proc.stderr
    assert (files / "log.jsonl").read_text() == before
    assert not (files / "orders.jsonl").exists()  # checked before any work


def test_an_unknown_report_format_is_a_usage_error(files: Path) -> None:
    proc = replay(files, "--report-out", str(files / "u.x"), "--report-format", "xml")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
