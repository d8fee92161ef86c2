"""Where every input message of a test worker went: journal, dead letter or duplicate.

May import streams.kafka_io and the worker harness.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from streams.kafka_io import dump_topic
from tests.integration.worker_harness import WorkerProcess, read_jsonl
from tests.support.topics import dead_letters


def accounting(worker: WorkerProcess, tmp: Path) -> dict[str, int]:
    """Every input message of loan-bookings and cds-executions, and where it went.

    An input is accounted for when a journal entry or a dead letter names it
    as its source, or when it repeats (same loan and sequence, or same event
    id) an event the journal holds: a duplicate input. Also counted: journal
    entries and dead letters identical to an earlier one (what a redelivery
    re-sends; exactly-once sends none).
    """
    inputs: list[dict[str, Any]] = []
    for field in ("loan_bookings", "cds_executions"):
        out = tmp / f"in-{field}.jsonl"
        asyncio.run(dump_topic(worker.topics[field], worker.bootstrap, out, journal=False))
        inputs += read_jsonl(out)
    journal = tmp / "acc-journal.jsonl"
    asyncio.run(dump_topic(worker.topics["journal"], worker.bootstrap, journal, journal=True))
    entries = read_jsonl(journal)
    seen = {tuple(e["source"][:3]) for e in entries}
    events = [json.loads(e["value"]) for e in entries]
    ids = {e.get("event_id") for e in events}
    loan_steps = {(e.get("loan_id"), e.get("sequence")) for e in events if "loan_id" in e}
    dead = dead_letters(worker, tmp)
    dead_sources = {
        (d["source"]["topic"], d["source"]["partition"], d["source"]["offset"]) for d in dead
    }
    missing = duplicates = 0
    for line in inputs:
        where = (line["topic"], line["partition"], line["offset"])
        if where in seen or where in dead_sources:
            continue
        value = line["value"]
        if isinstance(value, dict) and (
            value.get("event_id") in ids
            or (value.get("loan_id"), value.get("sequence")) in loan_steps
        ):
            duplicates += 1
            continue
        missing += 1
        print(f"missing input: {where}")
    return {
        "inputs": len(inputs),
        "journal": len(entries),
        "dead_letters": len(dead),
        "input_duplicates": duplicates,
        "missing": missing,
        "journal_duplicates": repeats(
            [(e["partition"], e["key"], e["topic"], e["value"], e["source"]) for e in entries]
        ),
        "dead_letter_duplicates": repeats(dead),
    }


def repeats(records: list[Any]) -> int:
    """How many records are identical to an earlier one."""
    texts = [json.dumps(record, sort_keys=True) for record in records]
    return len(texts) - len(set(texts))
