"""Operations on the real stack: the kill switch and the paper venue's full loop."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from streams.cli.ops import control_message, send_control
from streams.kafka_io import dump_topic, ensure_topics, publish_log
from streams.offline.replay import replay_files
from streams.settings import load_config
from tests.factories import REPO
from tests.integration.worker_harness import (
    WorkerProcess,
    read_jsonl,
    start_paper_venue,
    wait_until_idle,
)
from tests.kafka_broker import LocalKafka
from tests.support.bookings import booking, publish_events
from tests.support.topics import orders

pytestmark = pytest.mark.kafka
CONFIG = REPO / "config" / "hedger.toml"


def control(worker: WorkerProcess, action: str, issuer: str | None, reason: str) -> None:
    value = control_message(action, issuer, "desk-head", reason)
    asyncio.run(send_control(worker.bootstrap, worker.topics["control"], value))


def wait_for_metric(
    worker: WorkerProcess, needle: str, present: bool = True, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (needle in worker.scrape()) == present:
            return
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} {'never appeared' if present else 'stayed'} in /metrics")


def test_halt_blocks_orders_and_resume_hedges_on_the_next_event(worker, tmp_path: Path) -> None:
    worker.start()
    control(worker, "halt", "CRWV", "limit review")
    wait_for_metric(
        worker, 'hedger_halt_active{issuer="CRWV",operator="desk-head",reason="limit review"} 1.0'
    )
    # CRWV's limit is 750m: a 900m booking breaches it
    publish_events(worker, tmp_path, [booking(1, "CRWV", "900000000")])
    wait_until_idle(worker)
    assert orders(worker, tmp_path) == []
    assert 'hedger_issuer_halted{issuer="CRWV"} 1.0' in worker.scrape()
    assert 'hedger_issuer_in_breach{issuer="CRWV"} 1.0' in worker.scrape()  # state kept updating
    halted = [x for x in worker.log_lines() if x.get("event") == "hedging.halted"]
    assert halted and halted[0]["reason"] == "limit review" and halted[0]["operator"] == "desk-head"

    control(worker, "resume", "CRWV", "review done")
    wait_for_metric(worker, 'hedger_halt_active{issuer="CRWV"', present=False)
    publish_events(worker, tmp_path, [booking(2, "CRWV", "10000000")])
    wait_until_idle(worker)
    live = orders(worker, tmp_path)
    assert live and {o["trigger_event_id"] for o in live} == {"ops-2"}
    assert {o["issuer_id"] for o in live} == {"CRWV"}


def test_halt_survives_a_restart(worker, tmp_path: Path) -> None:
    worker.start()
    control(worker, "halt", None, "market closed")  # all issuers
    wait_for_metric(
        worker, 'hedger_halt_active{issuer="*",operator="desk-head",reason="market closed"} 1.0'
    )
    assert worker.stop() == 0
    worker.start()
    # the recovered halt shows before any new event arrives
    wait_for_metric(worker, 'hedger_halt_active{issuer="*"')
    publish_events(worker, tmp_path, [booking(3, "MSFT", "9000000000")])  # limit 8bn
    wait_until_idle(worker)
    assert orders(worker, tmp_path) == []
    control(worker, "resume", None, "market open")
    wait_for_metric(worker, 'hedger_halt_active{issuer="*"', present=False)
    publish_events(worker, tmp_path, [booking(4, "MSFT", "5000000")])
    wait_until_idle(worker)
    assert {o["trigger_event_id"] for o in orders(worker, tmp_path)} == {"ops-4"}


def test_paper_venue_fills_close_orders_and_the_journal_replays_them(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    worker = WorkerProcess(kafka.bootstrap, unique, tmp_path, partitions=2)
    asyncio.run(ensure_topics(kafka.bootstrap, [worker.topics["loan_bookings"]], 2))
    sample = REPO / "samples" / "desk-day.jsonl"
    bookings = tmp_path / "bookings.jsonl"
    bookings.write_text(
        "".join(
            line + "\n"
            for line in sample.read_text().splitlines()
            if '"topic": "loan-bookings"' in line
        )
    )
    worker.start()
    venue = start_paper_venue(worker, 11, "0.8", 20, "--bootstrap", kafka.bootstrap)
    try:
        asyncio.run(
            publish_log(
                bookings,
                kafka.bootstrap,
                topic_map={"loan-bookings": worker.topics["loan_bookings"]},
            )
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # until every order has its final report
            wait_until_idle(worker)
            if "hedger_open_orders 0.0" in worker.scrape():
                time.sleep(1.0)
                wait_until_idle(worker)
                if "hedger_open_orders 0.0" in worker.scrape():
                    break
            time.sleep(0.5)
        else:
            raise AssertionError("orders still open after 3 minutes")
    finally:
        venue.send_signal(signal.SIGTERM)
        output = venue.communicate(timeout=60)[0].decode()
    stopped = worker.stop()
    assert venue.returncode == 0, output
    assert stopped == 0

    live = {o["order_id"]: o for o in orders(worker, tmp_path)}
    journal = tmp_path / "journal.jsonl"
    asyncio.run(dump_topic(worker.topics["journal"], kafka.bootstrap, journal, journal=True))
    entries = read_jsonl(journal)
    reports = [e for e in entries if e["topic"] == "cds-executions"]
    statuses = {json.loads(e["value"])["status"] for e in reports}
    assert {"filled", "rejected", "partially_filled"} <= statuses
    engine, _ = replay_files(
        load_config(CONFIG), journal, tmp_path / "r.o", tmp_path / "r.d", control=True
    )
    replayed = {o["order_id"]: o for o in read_jsonl(tmp_path / "r.o")}
    assert replayed == live
    assert any(o["side"] == "SELL_PROTECTION" for o in live.values()) or len(live) > 5
    assert all(not book.open_orders for book in engine.books.values())  # all closed


def test_a_changelog_of_an_older_row_format_stops_the_worker_with_one_line(
    worker, kafka: LocalKafka
) -> None:
    """A unit-table row with a one-letter key (an older version's format): the
    restore stops the worker with exit code 2 and one line naming the way out."""
    changelog = f"{worker.app_id}-issuer-state-changelog"
    asyncio.run(ensure_topics(kafka.bootstrap, [changelog], 1))
    old_row = (b'["l", "ACME", "L-1"]', b'{"q": 0, "v": ["ACME", 1]}')
    asyncio.run(_produce(kafka.bootstrap, changelog, *old_row))
    worker.start(wait=False)
    assert worker.process is not None
    code = worker.process.wait(60)
    worker.process = None
    assert code == 2
    text = worker.log_text()
    assert "the unit table holds a row of an older format" in text
    assert "processing the inputs again under a new app id" in text
    assert "Traceback" not in text


async def _produce(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, partition=0)
    finally:
        await producer.stop()
