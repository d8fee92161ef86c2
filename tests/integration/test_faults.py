"""Faults and bad input on the real broker: no event is ever lost silently.

Every input ends in an output (the loans/journal topics, an order) or a dead
letter with a reason; the worker stays ready while it copes, and after a
restart its gauges are right before the next event.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from streams.kafka_io import dump_topic
from streams.offline.replay import replay_files
from streams.settings import load_config
from tests.factories import REPO
from tests.integration.worker_harness import WorkerProcess, read_jsonl, wait_until_idle
from tests.support.bookings import booking, publish_events
from tests.support.gauges import BREACHING, four_breaching_issuers, gauges
from tests.support.readiness import ReadyWatch
from tests.support.topics import dead_letters, orders, send_raw

pytestmark = pytest.mark.kafka
CONFIG = REPO / "config" / "hedger.toml"


def oversize_booking() -> bytes:
    """A valid 600 KB booking whose ignored `desk` field makes a 1.2 MB journal entry."""
    value = booking(900, "CRWV", "1000000")["value"]
    # A backslash is 2 bytes in the payload's JSON and 4 in the entry, which
    # holds the payload's text as a JSON string.
    value["desk"] = "\\" * 300_000
    return json.dumps(value, ensure_ascii=False).encode()


def test_bad_and_oversize_payloads_are_dead_lettered_and_processing_goes_on(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    worker.start()
    watch = ReadyWatch(worker)
    topic = worker.topics["loan_bookings"]
    bad: list[tuple[bytes | None, bytes | None, str]] = [
        (b"big", oversize_booking(), "payload_too_large"),
        (b"deep", b"[" * 200_000 + b"]" * 200_000, "invalid_json"),
        (b"int", b'{"n": ' + b"9" * 5_000 + b"}", "invalid_json"),
        (b"tomb", None, "invalid_json"),
        (None, b"", "invalid_json"),
        (None, b"\xff\xfe{", "invalid_json"),
        (b"mega", b"x" * 1_000_000, "invalid_json"),
    ]
    asyncio.run(send_raw(worker.bootstrap, topic, [(k, v) for k, v, _ in bad]))
    # a valid booking after the bad ones: CRWV's limit is 750m, so it orders
    publish_events(worker, tmp_path, [booking(1, "CRWV", "900000000")])
    wait_until_idle(worker)
    watch.stop()

    live = orders(worker, tmp_path)
    assert {o["trigger_event_id"] for o in live} == {"ops-1"}
    dead = dead_letters(worker, tmp_path)
    by_offset = {d["source"]["offset"]: d for d in dead if d["source"]["topic"] == topic}
    assert sorted(by_offset) == list(range(len(bad)))  # every bad input, no other
    for offset, (_, value, reason) in enumerate(bad):
        record = by_offset[offset]
        assert record["reason"] == reason, record["detail"]
        if offset in (0, 6):  # too large to copy into a dead letter: quoted by reference
            assert record["payload_encoding"] == "reference"
            assert record["payload_size"] == len(value)
            assert value.decode("utf-8", "replace").startswith(record["payload_prefix"])
    assert worker.process is not None and worker.process.poll() is None
    assert watch.polls > 10 and watch.not_ready == 0, (watch.polls, watch.not_ready)
    assert "payload_too_large" in worker.scrape()

    # the dumped input replays to the same codes (tombstone, empty, non-UTF-8, deep, huge)
    log = tmp_path / "inputs.jsonl"
    asyncio.run(dump_topic(topic, worker.bootstrap, log))
    lines = [{**line, "topic": "loan-bookings"} for line in read_jsonl(log)]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    replay_files(load_config(CONFIG), log, tmp_path / "r.o", tmp_path / "r.d")
    replayed = {d["line"] - 1: d["reason"] for d in read_jsonl(tmp_path / "r.d")}
    for offset in (1, 2, 3, 4, 5, 6):
        assert replayed[offset] == by_offset[offset]["reason"], offset
    assert worker.stop() == 0


def test_gauges_are_rebuilt_from_the_tables_before_the_next_event(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    worker.start()
    before = four_breaching_issuers(worker, tmp_path)
    assert before["hedger_open_orders"] > 0
    assert sum(1 for name in before if name.startswith("hedger_issuer_exposure_base")) == 4
    assert worker.stop() == 0
    worker.start()  # no event after the restart
    after = gauges(worker.scrape())
    assert set(after) == set(before)  # every series is back
    for name in ("exposure", "limit", "issuer_open_orders"):
        assert {k: v for k, v in after.items() if name in k} == {
            k: v for k, v in before.items() if name in k
        }
    assert after["hedger_open_orders"] == before["hedger_open_orders"]
    # Before the restart the risk gauges showed the measures each decision
    # started from; after it they show the book as it stands, which is what
    # the replay of the journal ends with.
    journal = tmp_path / "journal.jsonl"
    asyncio.run(dump_topic(worker.topics["journal"], worker.bootstrap, journal, journal=True))
    engine, _ = replay_files(load_config(CONFIG), journal, tmp_path / "j.o", tmp_path / "j.d")
    views = {view.issuer_id: view for view in engine.views()}
    assert sorted(views) == sorted(BREACHING)
    for issuer, view in views.items():
        label = f'{{issuer="{issuer}"}}'
        assert after[f"hedger_issuer_residual_base{label}"] == float(view.residual)
        assert after[f"hedger_issuer_exposure_base{label}"] == float(view.exposure)
        held = f'hedger_issuer_coverage_base{{issuer="{issuer}",source="open_orders"}}'
        assert after[held] == float(view.pending_coverage)
        assert after[f"hedger_issuer_utilisation_ratio{label}"] == float(view.residual / view.limit)
    breaching = sum(
        1 for v in views.values() if v.residual > v.limit * engine.config.risk.trigger_ratio
    )
    assert after["hedger_issuers_in_breach"] == breaching
