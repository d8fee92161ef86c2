"""Live orders against the replay: the orders a worker emitted, and its journal replayed offline.

May import streams.offline, streams.settings, tests.factories and the worker harness.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streams.offline.replay import replay_files
from streams.settings import load_config
from tests.factories import REPO
from tests.integration.worker_harness import WorkerProcess, read_jsonl
from tests.support.topics import dump

CONFIG_PATH = REPO / "config" / "hedger.toml"


def replay(log: Path, tmp: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    orders, dead = tmp / "replay.orders.jsonl", tmp / "replay.dead.jsonl"
    replay_files(load_config(CONFIG_PATH), log, orders, dead)
    return read_jsonl(orders), read_jsonl(dead)


def live_orders(worker: WorkerProcess, tmp: Path) -> tuple[dict[str, dict[str, Any]], int]:
    """Orders on the output topic by id, and how many ids came more than once.

    Fails if an id was emitted twice with different content.
    """
    by_id: dict[str, dict[str, Any]] = {}
    duplicates = 0
    for line in dump(worker, "orders", tmp / "live.orders.jsonl"):
        order = line["value"]
        first = by_id.setdefault(order["order_id"], order)
        if first is not order:
            duplicates += 1
            assert first == order, f"order {order['order_id']} emitted again with other content"
    return by_id, duplicates


def journal_replay(worker: WorkerProcess, tmp: Path) -> dict[str, dict[str, Any]]:
    journal = tmp / "journal.jsonl"
    dump(worker, "journal", journal, journal=True)
    orders, _ = replay(journal, tmp)
    assert len({o["order_id"] for o in orders}) == len(orders)
    return {o["order_id"]: o for o in orders}
