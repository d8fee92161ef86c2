"""The worker's stages without Kafka: dict tables, lists for topics.

A synchronous pipeline (route -> loans -> issuers, each message carried
through before the next) must give the SPEC examples' orders exactly. Each
stage batch commits its outputs, table writes and offset together (a
transaction); a crash aborts the transaction in flight — its outputs and
table writes are dropped after the stages' in-memory state has moved — and
stages restarted from their tables must give the clean run's records, none
lost, none repeated.
"""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import tomllib
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hedger.config import config_from_mapping
from hedger.engine import HedgingEngine
from streams.live.envelopes import Entry, encode_entry
from streams.live.seller_stage import SellerStage
from streams.live.stages import BufferedTable, IssuerStage, LoanStage, RouteStage
from streams.observer import Origin, Tally
from streams.offline.replay import replay
from tests.factories import (
    COMPARE_ORDERS,
    EXAMPLES,
    booked,
    config_data,
    make_config,
    quote,
    repaid,
)
from tests.support.pipeline import CONFIG, TOPICS, Pipeline, read_inputs


@pytest.mark.parametrize("example", ["walkthrough", "stream-2000"])
def test_pipeline_in_file_order_gives_the_contract_orders(example: str) -> None:
    pipeline = Pipeline(read_inputs(f"{example}.jsonl"))
    pipeline.run()
    expected = [
        json.loads(line) for line in (EXAMPLES / f"{example}.orders.jsonl").read_text().splitlines()
    ]
    # A v1 example is compared on its own (v1) fields; v2 only adds fields (SPEC §7).
    orders = pipeline.orders()
    assert len(orders) == len(expected)
    assert [{k: o[k] for k in want} for o, want in zip(orders, expected, strict=True)] == expected


def test_v2_pipeline_in_file_order_gives_the_contract_records() -> None:
    """Status changes travel seller stage -> journal and still land where SPEC §13 puts them.

    With each input drained before the next (one partition, file order), a
    status change evaluated after an event is in the journal before the next
    event: the records equal the SPEC's for desk-v2, excluded sellers included.
    """
    config = config_from_mapping(tomllib.loads((EXAMPLES / "desk-v2.toml").read_text()))
    pipeline = Pipeline(read_inputs("desk-v2.jsonl"), config=config)
    pipeline.run()
    expected = [json.loads(line) for line in (EXAMPLES / "desk-v2.orders.jsonl").open()]
    assert pipeline.orders() == expected
    statuses = [
        json.loads(json.loads(value)["value"])
        for _, _, value in pipeline.topics[TOPICS.journal]
        if json.loads(value)["topic"] == "hedger-seller-status"
    ]
    blocked = {s["seller"] for s in statuses if s["blocked"]}
    assert blocked == {"BOREAL-LIFE", "CEDAR-CREDIT"}  # the SPEC's seller report
    # The journal, replayed as a dump gives it (status changes where they applied):
    lines = []
    for _, _, value in pipeline.topics[TOPICS.journal]:
        entry = json.loads(value)
        lines.append(json.dumps({"topic": entry["topic"], "value": entry["value"], "partition": 0}))
    orders_out = io.StringIO()
    replay(
        HedgingEngine(config),
        io.StringIO("\n".join(lines)),
        orders_out,
        io.StringIO(),
        control=True,
    )
    assert [json.loads(line) for line in orders_out.getvalue().splitlines()] == expected


def test_dead_letters_keep_the_original_payload() -> None:
    inputs = read_inputs("walkthrough.jsonl")
    pipeline = Pipeline(inputs)
    pipeline.run()
    records = [json.loads(value) for _, _, value in pipeline.topics[TOPICS.dead_letters]]
    reasons = sorted(r["reason"] for r in records)
    expected = sorted(
        json.loads(line)["reason"]
        for line in (EXAMPLES / "walkthrough.dead.jsonl").read_text().splitlines()
    )
    assert reasons == expected
    for record in records:
        offset = record["source"]["offset"]
        assert record["payload"].encode() == inputs[offset][1]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.floats(0.05, 0.95), min_size=1, max_size=3),
    st.integers(0, 2**32),
    st.integers(1, 8),
)
def test_crash_and_restart_lose_no_order_and_change_none(
    cuts: list[float], seed: int, batch: int
) -> None:
    inputs = read_inputs("stream-2000.jsonl")
    clean = Pipeline(inputs)
    clean.run()
    expected = {o["order_id"]: o for o in clean.orders()}

    rng = random.Random(seed)
    pipeline = Pipeline(inputs, batch)
    for cut in sorted(cuts):
        pipeline.run(until=max(int(cut * len(inputs)), pipeline.position["route"]))
        pipeline.crash(rng)
    pipeline.run()
    orders = pipeline.orders()
    assert len(orders) == len(expected)  # no order twice
    assert {o["order_id"]: o for o in orders} == expected


@pytest.mark.parametrize("payload", [b"not json", b"{}", b'{"topic": "loan-bookings"}', b"[1]"])
def test_unreadable_internal_messages_are_dead_lettered_not_fatal(payload: bytes) -> None:
    tally = Tally()
    loans = LoanStage(CONFIG, BufferedTable({}), TOPICS, tally)
    issuers = IssuerStage(CONFIG, BufferedTable({}), TOPICS, tally)
    for outputs in (loans.handle(0, 5, payload), issuers.handle(0, 5, payload)):
        (output,) = outputs
        record = json.loads(output.value)
        assert output.topic == TOPICS.dead_letters
        assert record["reason"] == "schema_violation"
        assert record["payload"].encode() == payload


def test_entry_that_a_changed_configuration_rejects_is_dead_lettered() -> None:
    pipeline = Pipeline(read_inputs("walkthrough.jsonl")[:1])  # one USD booking
    pipeline.run()
    (entry,) = pipeline.topics[TOPICS.journal]
    without_usd = CONFIG.model_copy(update={"fx": {"EUR": CONFIG.fx["EUR"]}})
    stage = IssuerStage(without_usd, BufferedTable({}), TOPICS, Tally())
    (output,) = stage.handle(0, 0, entry[2])
    assert json.loads(output.value)["reason"] == "unknown_currency"


def _part(seller: str, before: str, after: str, offset: int) -> bytes:
    """A seller-parts message as the unit stage sends it, from journal partition 2."""
    value = {
        "seller": seller,
        "maturity": "2030-12-20",
        "currency": "USD",
        "before": before,
        "after": after,
        "as_of": "2026-01-05",
        "event_id": f"f-{offset}",
    }
    entry = {
        "topic": "hedger-seller-part",
        "value": json.dumps(value),
        "source": [TOPICS.journal, 2, offset, None],
    }
    return json.dumps(entry).encode()


def test_seller_stage_blocks_at_the_limit_and_a_restart_goes_on_from_its_table() -> None:
    config = config_from_mapping(config_data(sellers={"S1": {"limit": "100000000"}}))
    table: dict[bytes, bytes] = {}
    tally = Tally()
    stage = SellerStage(config, BufferedTable(table), TOPICS, tally, journal_partitions=3)
    assert stage.handle(0, 0, _part("S1", "0", "60000000", 10)) == []  # 60m < 100m
    (b0, b1, b2) = stage.handle(0, 1, _part("S1", "60000000", "100000000", 11))  # at the limit
    assert [o.partition for o in (b0, b1, b2)] == [0, 1, 2]  # to every unit partition
    change = json.loads(json.loads(b0.value)["value"])
    assert (change["seller"], change["blocked"]) == ("S1", True)
    stage.table.drain()
    # a restart (or the next owner) goes on from the committed table: blocked at 100m
    again = SellerStage(config, BufferedTable(table), TOPICS, tally, journal_partitions=3)
    again.load()
    assert again.ledger.exposure("S1", date(2026, 1, 5)) == Decimal(100_000_000)
    assert "S1" in again.ledger.blocked
    # a sell fill takes the part back under the limit: freed
    (freed, _, _) = again.handle(0, 2, _part("S1", "100000000", "40000000", 12))
    assert json.loads(json.loads(freed.value)["value"])["blocked"] is False


def test_seller_stage_applies_a_tick_published_twice_once() -> None:
    config = config_from_mapping(config_data(sellers={"S1": {"limit": "100000000"}}))
    table: dict[bytes, bytes] = {}
    stage = SellerStage(config, BufferedTable(table), TOPICS, Tally(), journal_partitions=1)
    stage.handle(0, 0, _part("S1", "0", "120000000", 10))  # blocked
    # after the bucket's maturity (2030-12-20) the exposure is 0: freed, once
    (freed,) = stage.handle(0, 1, _tick("k-1", "2031-01-06"))
    assert json.loads(json.loads(freed.value)["value"])["blocked"] is False
    assert stage.handle(0, 2, _tick("k-1", "2031-01-06")) == []


class SellerGauges(Tally):
    """The last status reported per seller, as the /metrics gauges keep it."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: dict[str, tuple[Decimal, bool]] = {}

    def on_seller(self, status: Any, changed: bool) -> None:
        self.shown[status.seller] = (status.exposure, status.blocked)


def _tick(event_id: str, day: str) -> bytes:
    value = {
        "schema_version": 1,
        "event_id": event_id,
        "event_type": "clock.tick",
        "occurred_at": f"{day}T18:00:00Z",
    }
    entry = {"topic": "desk-clock", "value": json.dumps(value), "source": ["clock", 0, 0, None]}
    return json.dumps(entry).encode()


def test_a_restarted_seller_stage_shows_each_seller_as_last_evaluated() -> None:
    config = config_data(sellers={"S1": {"limit": "100000000"}, "S2": {}})
    config = config_from_mapping(config)
    table: dict[bytes, bytes] = {}
    before = SellerGauges()
    stage = SellerStage(config, BufferedTable(table), TOPICS, before, journal_partitions=1)
    stage.handle(0, 0, _part("S1", "0", "120000000", 10))  # blocked at 2026-01-05
    stage.handle(0, 1, _part("S2", "0", "30000000", 11))
    # a tick after the bucket's maturity (2030-12-20): both exposures fall to 0, S1 is freed
    stage.handle(0, 2, _tick("k-1", "2031-01-06"))
    stage.table.drain()
    assert before.shown == {"S1": (Decimal(0), False), "S2": (Decimal(0), False)}
    # a restart: the gauges start empty; loading the table shows the same figures
    after = SellerGauges()
    again = SellerStage(config, BufferedTable(table), TOPICS, after, journal_partitions=1)
    again.load()
    assert after.shown == before.shown
    # and a part's own date when that was the last evaluation
    again.handle(0, 3, _part("S2", "30000000", "50000000", 12))
    again.table.drain()
    shown = SellerGauges()
    SellerStage(config, BufferedTable(table), TOPICS, shown, journal_partitions=1).load()
    assert shown.shown == {"S1": (Decimal(0), False), "S2": (Decimal(50_000_000), False)}


# -- v2.1: quotes through the route and unit stages --------------------------

V21_CONFIG = config_from_mapping(tomllib.loads((EXAMPLES / "desk-v21.toml").read_text()))


def compare_with_contract(records: list[dict[str, Any]], tmp_path: Any) -> None:
    """The records equal the SPEC's desk-v21 orders (price fields within SPEC §14.10)."""
    actual = tmp_path / "orders.jsonl"
    actual.write_text("".join(json.dumps(record) + "\n" for record in records))
    compare = subprocess.run(
        [sys.executable, str(COMPARE_ORDERS), str(EXAMPLES / "desk-v21.orders.jsonl"), str(actual)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert compare.returncode == 0, compare.stdout


def test_v21_pipeline_routes_quotes_to_the_unit_and_gives_the_contract_records(
    tmp_path: Any,
) -> None:
    """Quotes reach the unit stage, which prices and withholds as the SPEC's desk-v21 says."""
    inputs = read_inputs("desk-v21.jsonl")
    pipeline = Pipeline(inputs, config=V21_CONFIG)
    pipeline.run()
    records = pipeline.orders()
    compare_with_contract(records, tmp_path)
    assert any(record["action"] == "withhold" for record in records)
    # every valid quote went to the journal keyed by its issuer's hedging unit
    journal = [
        json.loads(value) | {"key": key} for _, key, value in pipeline.topics[TOPICS.journal]
    ]
    quotes = [entry for entry in journal if entry["topic"] == "cds-quotes"]
    assert quotes
    for entry in quotes:
        issuer = json.loads(entry["value"])["issuer_id"]
        assert entry["key"] == V21_CONFIG.unit_of(issuer).encode()
    # a bad quote is a dead letter of the route stage, with its source and payload
    dead = [json.loads(value) for _, _, value in pipeline.topics[TOPICS.dead_letters]]
    expected_dead = [json.loads(line) for line in (EXAMPLES / "desk-v21.dead.jsonl").open()]
    bad_quotes = [d for d in expected_dead if d["topic"] == "cds-quotes"]
    assert bad_quotes, "desk-v21 has bad quotes"
    live_bad = [d for d in dead if d["source"]["topic"] == "cds-quotes"]
    assert sorted(d["reason"] for d in live_bad) == sorted(d["reason"] for d in bad_quotes)
    for record in live_bad:
        assert record["payload"].encode() == inputs[record["source"]["offset"]][1]


def test_without_pricing_the_route_stage_does_not_read_cds_quotes() -> None:
    assert TOPICS.cds_quotes not in RouteStage(CONFIG, TOPICS, Tally()).input_topics
    assert TOPICS.cds_quotes in RouteStage(V21_CONFIG, TOPICS, Tally()).input_topics


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.floats(0.05, 0.95), min_size=1, max_size=3),
    st.integers(0, 2**32),
    st.integers(1, 4),
)
def test_v21_crash_and_restart_price_the_same(cuts: list[float], seed: int, batch: int) -> None:
    """A restarted unit stage holds the quotes it held: every record equals the clean run's."""
    inputs = read_inputs("desk-v21.jsonl")
    clean = Pipeline(inputs, config=V21_CONFIG)
    clean.run()
    expected = clean.orders()

    rng = random.Random(seed)
    pipeline = Pipeline(inputs, batch, config=V21_CONFIG)
    for cut in sorted(cuts):
        pipeline.run(until=max(int(cut * len(inputs)), pipeline.position["route"]))
        pipeline.crash(rng)
    pipeline.run()
    assert pipeline.orders() == expected  # none lost, none repeated, none differs


def test_a_restarted_unit_stage_holds_the_quotes_and_their_ids() -> None:
    """The table keeps the held quote per (issuer, tenor) and the received ids."""
    table: dict[bytes, bytes] = {}
    stage = IssuerStage(V21_CONFIG, BufferedTable(table), TOPICS, Tally())
    first = quote("120", issuer="ACME", event_id="q-1", as_of="2026-02-02", day="2026-02-02")
    newer = quote("300", issuer="ACME", event_id="q-2", as_of="2026-02-03", day="2026-02-03")
    older = quote("90", issuer="ACME", event_id="q-3", as_of="2026-02-01", day="2026-02-01")
    for offset, event in enumerate([first, newer, older]):
        entry = encode_entry(
            Entry("cds-quotes", json.dumps(event), Origin("cds-quotes", 0, offset))
        )
        assert stage.handle(0, offset, entry) == []
        stage.table.drain()

    restarted = IssuerStage(V21_CONFIG, BufferedTable(table), TOPICS, Tally())
    restarted.load()
    quotes = restarted.engine.quotes
    assert quotes is not None
    (held,) = quotes.held.values()
    assert (held.issuer_id, held.tenor_years, held.spread_bps) == ("ACME", 5, "300")
    assert held.as_of_date == date(2026, 2, 3)
    assert quotes.received == {"q-1", "q-2", "q-3"}
    # a received id is a duplicate after the restart too
    again = quote("500", issuer="ACME", event_id="q-1", as_of="2026-02-04", day="2026-02-04")
    entry = encode_entry(Entry("cds-quotes", json.dumps(again), Origin("cds-quotes", 0, 3)))
    assert restarted.handle(0, 3, entry) == []
    assert quotes.held[("ACME", 5)].spread_bps == "300"


def _loan_entry(event: dict[str, Any], offset: int) -> bytes:
    """A loan-stage message as the route stage sends it, from loan-bookings offset `offset`."""
    source = Origin("loan-bookings", 0, offset)
    return encode_entry(Entry("loan-bookings", json.dumps(event), source))


def test_an_aborted_batch_leaves_no_loan_state_so_its_events_get_their_outcome_again() -> None:
    """Offset 10 (a repayment) comes before its booking (11): unknown_loan. The batch
    is aborted after both; processed again from the table, 10 is the same dead
    letter and 11 the same booking, never a forwarded repayment."""
    config = make_config()
    table: dict[bytes, bytes] = {}
    stage = LoanStage(config, BufferedTable(table), TOPICS, Tally())
    repayment = _loan_entry(repaid("L-1", 2, "1000000"), 10)
    booking = _loan_entry(booked("L-1", "5000000"), 11)
    (first,) = stage.handle(0, 10, repayment)
    assert first.topic == TOPICS.dead_letters
    assert json.loads(first.value)["reason"] == "unknown_loan"
    (forward,) = stage.handle(0, 11, booking)
    assert (forward.topic, forward.key) == (TOPICS.journal, b"ACME")
    stage.table.discard()  # the transaction is aborted
    assert table == {}
    again = LoanStage(config, BufferedTable(table), TOPICS, Tally())
    (dead,) = again.handle(0, 10, repayment)
    assert dead.topic == TOPICS.dead_letters
    assert json.loads(dead.value)["reason"] == "unknown_loan"
    assert [o.value for o in again.handle(0, 11, booking)] == [booking]


def test_a_loan_key_holds_the_loan_state_only() -> None:
    """A booking (11), a second booking of it (12: duplicate_loan) and a repayment
    (13): one key for the loan, holding its state, and no offsets or outcomes."""
    config = make_config()
    table: dict[bytes, bytes] = {}
    stage = LoanStage(config, BufferedTable(table), TOPICS, Tally())
    booking = _loan_entry(booked("L-2", "5000000"), 11)
    rebooking = _loan_entry(booked("L-2", "7000000", seq=2), 12)
    repayment = _loan_entry(repaid("L-2", 3, "1000000"), 13)
    assert [o.topic for o in stage.handle(0, 11, booking)] == [TOPICS.journal]
    (dead,) = stage.handle(0, 12, rebooking)
    assert json.loads(dead.value)["reason"] == "duplicate_loan"
    assert [o.topic for o in stage.handle(0, 13, repayment)] == [TOPICS.journal]
    stage.table.drain()
    assert list(table) == [b'["loan", "L-2"]']
    state = json.loads(table[b'["loan", "L-2"]'])
    assert "duplicate_loan" not in json.dumps(state)  # no outcome history


def test_each_order_is_its_own_record_and_no_key_holds_them() -> None:
    """The issuer stage: the same orders, one record each, and no table key that
    collects an entry's outputs (one oversized key for a tick ordering for many
    units), nor a watermark."""
    pipeline = Pipeline(read_inputs("walkthrough.jsonl"))
    pipeline.run()
    expected = [json.loads(value) for _, _, value in pipeline.topics[TOPICS.orders]]
    assert expected
    table: dict[bytes, bytes] = {}
    stage = IssuerStage(CONFIG, BufferedTable(table), TOPICS, Tally())
    orders = []
    for offset, (_, _, entry) in enumerate(pipeline.topics[TOPICS.journal]):
        for output in stage.handle(0, offset, entry):
            if output.topic == TOPICS.orders:
                orders.append(json.loads(output.value))
        stage.table.drain()
    assert orders == expected
    kinds = {json.loads(key)[0] for key in table}
    assert kinds <= {"loan", "aggregate", "closed-order", "protection-booking", "last-view"}
    assert all(set(json.loads(value)) == {"partition", "value"} for value in table.values())


def test_the_transactional_topology_reads_cds_quotes_only_with_pricing() -> None:
    from streams.live.topology import hedger_topology

    plain = hedger_topology("app", 2, TOPICS)
    priced = hedger_topology("app", 2, TOPICS, pricing=True)
    assert TOPICS.cds_quotes not in plain.input_topics
    assert priced.stage_of(TOPICS.cds_quotes).name == "route"
