"""The full per-unit risk table of a replay, as a file (`hedger replay --report-out`).

Owns: the columns of that table and its two formats, JSON lines and CSV (by
the file's extension, `.csv` for CSV, or by `--report-format`). One row per
issuer with state at the end of the replay, then one per configured group:
`kind` (issuer or group), `unit` (the id), `group` (an issuer's group),
`exposure_currency`, money columns as decimal strings with 2 decimals
(`exposure`, `coverage`, `residual`, `limit`), `utilisation` (residual /
limit, 6 decimals, half-even) and `state` (BREACH, HALTED or ok). Written
whole or not at all (`streams.outputs`). Imports the standard library,
`hedger` and `streams.outputs`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from hedger.config import HedgerConfig
from hedger.engine import GroupView
from hedger.issuer import RiskView
from hedger.numbers import to_cents
from streams.outputs import atomic_text

FORMATS = ("jsonl", "csv")
COLUMNS = (
    "kind",
    "unit",
    "group",
    "exposure_currency",
    "exposure",
    "coverage",
    "residual",
    "limit",
    "utilisation",
    "state",
)
_MICRO = Decimal("0.000001")


def report_format(path: str | Path, chosen: str | None = None) -> str:
    """The format asked for, else the one the extension names (`.csv`), else JSON lines."""
    if chosen is not None:
        return chosen
    return "csv" if Path(path).suffix.lower() == ".csv" else "jsonl"


def unit_rows(
    config: HedgerConfig,
    views: Iterable[RiskView],
    groups: Iterable[GroupView],
    halted: Callable[[str], bool],
) -> Iterator[dict[str, Any]]:
    """Every issuer's row (by id), then every group's (by id)."""
    for view in views:
        breach = view.residual > view.limit
        yield {
            "kind": "issuer",
            "unit": view.issuer_id,
            "group": config.group_of(view.issuer_id),
            "exposure_currency": view.exposure_currency,
            "exposure": to_cents(view.exposure),
            "coverage": to_cents(view.coverage),
            "residual": to_cents(view.residual),
            "limit": to_cents(view.limit),
            "utilisation": str(view.utilisation.quantize(_MICRO)),
            "state": "HALTED" if halted(view.issuer_id) else "BREACH" if breach else "ok",
        }
    for group in groups:
        yield {
            "kind": "group",
            "unit": group.group_id,
            "group": None,
            "exposure_currency": None,
            "exposure": None,
            "coverage": None,
            "residual": to_cents(group.residual),
            "limit": to_cents(group.limit),
            "utilisation": str(group.utilisation.quantize(_MICRO)),
            "state": "BREACH" if group.in_breach else "ok",
        }


def write_unit_report(path: str | Path, fmt: str, rows: Iterable[dict[str, Any]]) -> int:
    """Write the rows in `fmt` (jsonl or csv); return how many. A missing value is
    `null` in JSON lines and an empty cell in CSV."""
    count = 0
    with atomic_text(path) as out:
        if fmt == "csv":
            writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
            writer.writeheader()
            for row in rows:
                writer.writerow(row)
                count += 1
        else:
            for row in rows:
                out.write(json.dumps(row) + "\n")
                count += 1
    return count
