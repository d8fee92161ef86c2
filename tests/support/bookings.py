"""Loan bookings for a one-partition worker: build them, publish them.

May import streams.kafka_io and the worker harness.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from streams.kafka_io import publish_log
from tests.integration.worker_harness import WorkerProcess


def booking(n: int, issuer: str, notional: str, day: str = "2026-04-01") -> dict[str, Any]:
    return {
        "topic": "loan-bookings",
        "key": f"OPS-{n}",
        "value": {
            "schema_version": 1,
            "event_id": f"ops-{n}",
            "event_type": "loan.booked",
            "occurred_at": f"{day}T10:00:{n % 60:02d}Z",
            "loan_id": f"OPS-{n}",
            "sequence": 1,
            "issuer_id": issuer,
            "notional": notional,
            "currency": "USD",
            "maturity_date": "2030-06-30",
        },
    }


def publish_events(worker: WorkerProcess, tmp: Path, records: list[dict[str, Any]]) -> None:
    log = tmp / f"publish-{time.monotonic_ns()}.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    asyncio.run(
        publish_log(
            log, worker.bootstrap, topic_map={"loan-bookings": worker.topics["loan_bookings"]}
        )
    )
