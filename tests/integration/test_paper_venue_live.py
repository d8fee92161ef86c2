"""The paper venue on the real broker: v2 orders and cancel requests in, reports out.

`hedger paper-venue` runs as a subprocess on unique topics; orders and cancel
requests (SPEC §7) are published to its orders topic and the reports are read
back from its executions topic. Expected answers are written by hand from the
rules: a fill never from an excluded counterparty, everyone excluded is a
reject, a sell's hint is its counterparty, a cancel of an order still open at
the venue is answered `cancelled`, a cancel of a closed order gets nothing.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.kafka_io import dump_topic, ensure_topics, publish_log
from tests.factories import cancel_request
from tests.integration.worker_harness import WorkerProcess, read_jsonl, start_paper_venue
from tests.kafka_broker import LocalKafka

pytestmark = pytest.mark.kafka
Reports = dict[str, list[dict[str, Any]]]


def new(order_id: str, side: str = "BUY_PROTECTION", **fields: Any) -> dict[str, Any]:
    return {
        "action": "new",
        "order_id": order_id,
        "issuer_id": "ORCL",
        "side": side,
        "notional": "50000000",
        "currency": "USD",
        "as_of": "2026-04-01T10:00:00Z",
        "excluded_counterparties": [],
        "counterparty": None,
        **fields,
    }


def cancel(order_id: str) -> dict[str, Any]:
    return cancel_request(order_id, "ORCL", "2026-04-09T18:00:00Z")


class Venue:
    """A `hedger paper-venue` subprocess on topics of its own."""

    def __init__(self, kafka: LocalKafka, prefix: str, tmp: Path, *flags: str) -> None:
        # WorkerProcess only names the topics here: no worker is started
        self.names = WorkerProcess(kafka.bootstrap, prefix, tmp)
        self.kafka, self.tmp = kafka, tmp
        topics = [self.names.topics["orders"], self.names.topics["cds_executions"]]
        asyncio.run(ensure_topics(kafka.bootstrap, topics, 1))
        self.process: subprocess.Popen[bytes] = start_paper_venue(
            self.names, 5, "1", 1500, "--bootstrap", kafka.bootstrap, *flags
        )
        self.sent = 0

    def publish(self, *records: dict[str, Any]) -> None:
        self.sent += 1
        log = self.tmp / f"orders-{self.sent}.jsonl"
        log.write_text(
            "".join(
                json.dumps({"topic": "orders", "key": r["issuer_id"], "value": r}) + "\n"
                for r in records
            )
        )
        topic_map = {"orders": self.names.topics["orders"]}
        asyncio.run(publish_log(log, self.kafka.bootstrap, topic_map=topic_map))

    def reports(self) -> Reports:
        out = self.tmp / "executions.jsonl"
        asyncio.run(dump_topic(self.names.topics["cds_executions"], self.kafka.bootstrap, out))
        by_order: Reports = {}
        for line in read_jsonl(out):
            by_order.setdefault(line["value"]["order_id"], []).append(line["value"])
        return by_order

    def wait_for(self, done: Callable[[Reports], bool], timeout: float = 60) -> Reports:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.reports()
            if done(found):
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(f"venue reports so far: {self.reports()}\n{self.stop()}")

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.communicate(timeout=60)[0].decode()


@pytest.fixture
def venues() -> Iterator[list[Venue]]:
    started: list[Venue] = []
    yield started
    for venue in started:
        if venue.process.poll() is None:
            venue.process.kill()
            venue.process.wait(30)


def statuses(reports: Reports, order_id: str) -> list[str]:
    return [r["status"] for r in reports.get(order_id, [])]


def closed(reports: Reports, order_id: str) -> bool:
    return bool(statuses(reports, order_id)) and statuses(reports, order_id)[-1] in (
        "filled",
        "rejected",
        "cancelled",
    )


def test_excluded_counterparties_and_cancel_requests_on_the_broker(
    kafka: LocalKafka, unique: str, tmp_path: Path, venues: list[Venue]
) -> None:
    venue = Venue(kafka, unique, tmp_path, "--counterparties", "DEALER-A,DEALER-B")
    venues.append(venue)
    venue.publish(
        new("A#1", excluded_counterparties=["DEALER-A"]),
        new("B#1", excluded_counterparties=["DEALER-A", "DEALER-B"]),
        new("C#1", side="SELL_PROTECTION", counterparty="ATLAS-RE"),
        # answered 1.5 s after it arrives: the cancel right behind it comes first
        new("D#1"),
        cancel("D#1"),
    )
    first = venue.wait_for(lambda r: all(closed(r, o) for o in ("A#1", "B#1", "C#1", "D#1")))
    assert statuses(first, "A#1")[-1] == "filled"
    assert {r["counterparty"] for r in first["A#1"]} == {"DEALER-B"}
    assert first["B#1"] == [
        {
            "schema_version": 1,
            "event_id": "venue:B#1:1",
            "event_type": "execution.report",
            "occurred_at": "2026-04-01T10:00:01.000Z",
            "order_id": "B#1",
            "issuer_id": "ORCL",
            "status": "rejected",
        }
    ]
    assert statuses(first, "C#1")[-1] == "filled"
    assert {r["counterparty"] for r in first["C#1"]} == {"ATLAS-RE"}
    total = sum(int(r["filled_notional"]) for r in first["C#1"])
    assert total == 50_000_000
    assert first["D#1"] == [
        {
            "schema_version": 1,
            "event_id": "venue:D#1:cancelled",
            "event_type": "execution.report",
            "occurred_at": "2026-04-09T18:00:01.000Z",
            "order_id": "D#1",
            "issuer_id": "ORCL",
            "status": "cancelled",
        }
    ]
    # Cancels of closed orders get nothing; E's cancel, behind them, marks the end.
    venue.publish(cancel("A#1"), cancel("B#1"), cancel("D#1"), new("E#1"), cancel("E#1"))
    second = venue.wait_for(lambda r: closed(r, "E#1"))
    time.sleep(2.0)  # E's delayed fill, were it sent, would be here by now
    second = venue.reports()
    assert statuses(second, "E#1") == ["cancelled"]
    for order_id in ("A#1", "B#1", "C#1", "D#1"):
        assert second[order_id] == first[order_id]
    output = venue.stop()
    assert venue.process.returncode == 0, output
    assert "paper venue: answered 5 orders" in output


def test_a_silent_venue_leaves_orders_open_until_cancelled(
    kafka: LocalKafka, unique: str, tmp_path: Path, venues: list[Venue]
) -> None:
    venue = Venue(kafka, unique, tmp_path, "--silence-ratio", "1")
    venues.append(venue)
    venue.publish(new("S#1"), new("S#2"))
    time.sleep(3.0)  # twice the latency: nothing comes
    assert venue.reports() == {}
    venue.publish(cancel("S#2"))
    found = venue.wait_for(lambda r: closed(r, "S#2"))
    assert statuses(found, "S#2") == ["cancelled"] and "S#1" not in found
    output = venue.stop()
    assert venue.process.returncode == 0, output
