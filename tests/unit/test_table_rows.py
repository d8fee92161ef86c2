"""The tables' keys and records: each kind round-trips, each key names its kind,
and a row of an older format stops the restore with one clear message."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from hedger.control import ControlCommand
from hedger.loans import LoanState
from hedger.quotes import Quote
from streams.live.seller_stage import SellerStage
from streams.live.stages import BufferedTable, IssuerStage
from streams.live.table_rows import (
    AggregateRow,
    ClosedOrderRow,
    HaltRow,
    LastViewRow,
    LoanRow,
    ProtectionBookingRow,
    QuoteIdRow,
    QuoteRow,
    SellerRow,
    SellerStatusRow,
    TableFormatError,
    TickRow,
    UnitRecord,
    decode_loan_state,
    decode_seller_rows,
    decode_unit_rows,
    encode_loan_state,
    encode_unit_row,
    loan_state_key,
    seller_key,
    seller_tick_key,
)
from streams.observer import Tally
from tests.factories import make_config
from tests.support.pipeline import TOPICS

LOAN = LoanState("ACME", 3, "USD", Decimal("2500000.50"), date(2030, 6, 20), False)
HALT = ControlCommand.model_validate(
    {
        "schema_version": 1,
        "event_id": "C-1",
        "occurred_at": "2026-01-05T09:00:00Z",
        "command": "halt",
        "issuer_id": "ACME",
        "operator": "ops",
        "reason": "review",
    }
)
AGGREGATE = {"buckets": [["2030-06-20", "USD", "XR14", "loan", "-1000000"]], "parts": []}
AGGREGATE["open_orders"] = []

RECORDS: list[tuple[UnitRecord, list[object]]] = [
    (LoanRow("ACME", "L-1", LOAN), ["loan", "ACME", "L-1"]),
    (AggregateRow("ACME", AGGREGATE), ["aggregate", "ACME"]),
    (ClosedOrderRow("ACME", "O-7"), ["closed-order", "ACME", "O-7"]),
    (ProtectionBookingRow("ACME", "E-9"), ["protection-booking", "ACME", "E-9"]),
    (TickRow(1, "tick-4"), ["tick", 1, "tick-4"]),
    (SellerStatusRow(1, "BANK/A", True), ["seller-status", 1, "BANK/A"]),
    (HaltRow("ACME", None, HALT), ["halt", "ACME"]),
    (HaltRow("*", 2, None), ["halt", "*", 2]),
    (
        LastViewRow("ACME", date(2026, 1, 5), "2026-01-05T10:00:00Z", 1),
        ["last-view", "ACME"],
    ),
    (
        QuoteRow(Quote("ACME", 5, date(2026, 1, 5), "125.5", "0.4", "Q-1")),
        ["quote", "ACME", 5],
    ),
    (QuoteIdRow("ACME", "Q-1"), ["quote-id", "ACME", "Q-1"]),
]


@pytest.mark.parametrize(("record", "key"), RECORDS, ids=lambda x: type(x).__name__)
def test_every_unit_record_round_trips_under_a_key_that_names_its_kind(
    record: UnitRecord, key: list[object]
) -> None:
    raw_key, raw_value = encode_unit_row(1, record)
    assert json.loads(raw_key) == key
    assert set(json.loads(raw_value)) == {"partition", "value"}
    assert list(decode_unit_rows([(raw_key, raw_value)])) == [(1, record)]


def test_named_fields_of_the_records_that_carry_more_than_a_flag() -> None:
    _, view = encode_unit_row(0, LastViewRow("A", date(2026, 1, 5), "T", 0))
    assert json.loads(view)["value"] == {
        "as_of": "2026-01-05",
        "occurred_at": "T",
        "partition": 0,
    }
    _, quote = encode_unit_row(0, QuoteRow(Quote("A", 5, date(2026, 1, 5), "125.5", "0.4", "Q")))
    assert set(json.loads(quote)["value"]) == {"as_of_date", "spread_bps", "recovery", "event_id"}


def test_loan_state_and_seller_rows_round_trip() -> None:
    assert json.loads(loan_state_key("L/1")) == ["loan", "L/1"]
    assert decode_loan_state(encode_loan_state(LOAN)) == LOAN
    row = SellerRow(
        partition=3,
        exposure={date(2030, 6, 20): Decimal("1000000.25")},
        blocked=True,
        evaluated_as_of="2026-01-05",
    )
    assert SellerRow.decode(row.encode()) == row
    assert set(json.loads(row.encode())) == {
        "partition",
        "exposure",
        "blocked",
        "evaluated_as_of",
    }
    assert json.loads(seller_key("BANK")) == ["seller", "BANK"]
    table = [(seller_key("BANK"), row.encode()), (seller_tick_key(3, "tick-1"), b"true")]
    assert list(decode_seller_rows(table)) == [("BANK", row)]


OLD_UNIT_ROW = (b'["l", "ACME", "L-1"]', b'{"q": 0, "v": ["ACME", 1]}')
OLD_SELLER_ROW = (b'["x", "BANK"]', b'{"q": 0, "m": {}, "b": false}')


def test_a_row_of_the_older_one_letter_format_is_refused_with_the_way_out() -> None:
    with pytest.raises(TableFormatError, match=r"older format.*processing the inputs again"):
        list(decode_unit_rows([OLD_UNIT_ROW]))
    with pytest.raises(TableFormatError, match="older format"):
        list(decode_seller_rows([OLD_SELLER_ROW]))
    config = make_config()
    issuers = IssuerStage(config, BufferedTable(dict([OLD_UNIT_ROW])), TOPICS, Tally())
    with pytest.raises(TableFormatError, match="the unit table"):
        issuers.load()
    sellers = SellerStage(config, BufferedTable(dict([OLD_SELLER_ROW])), TOPICS, Tally(), 1)
    with pytest.raises(TableFormatError, match="the seller table"):
        sellers.load()


def test_restored_halt_tick_status_and_view_reach_the_engine() -> None:
    config = make_config()
    rows = dict(
        encode_unit_row(0, record)
        for record in (
            LoanRow("ACME", "L-1", LOAN),
            HaltRow("ACME", None, HALT),
            TickRow(0, "tick-4"),
            SellerStatusRow(0, "BANK", True),
            SellerStatusRow(0, "OTHER", False),
            LastViewRow("ACME", date(2026, 1, 5), "2026-01-05T10:00:00Z", 0),
        )
    )
    stage = IssuerStage(config, BufferedTable(rows), TOPICS, Tally())
    stage.load()
    engine = stage.engine
    assert engine.is_halted("ACME", 0)
    assert (0, "tick-4") in engine.ticks
    assert engine.scoped_blocked == {0: {"BANK"}}
    assert engine.last_as_of == {"ACME": date(2026, 1, 5)}
    assert engine.loans == {"L-1": LOAN}
    assert engine.unit_scopes[config.unit_of("ACME")] == 0


def test_keys_keep_the_bytes_json_dumps_wrote_so_deletions_hit_stored_keys() -> None:
    # Spaces after commas and non-ASCII as \u escapes, written out by hand.
    assert loan_state_key("L-\u00e9") == b'["loan", "L-\\u00e9"]'
    state = LoanState("ACME", 1, "USD", Decimal("5"), date(2030, 1, 1))
    key, _ = encode_unit_row(2, LoanRow("\u00c9CO", "L-1", state))
    assert key == b'["loan", "\\u00c9CO", "L-1"]'
    assert encode_unit_row(0, TickRow(3, "t-1"))[0] == b'["tick", 3, "t-1"]'
    assert seller_key("BANK") == b'["seller", "BANK"]'


def test_values_are_compact_json_with_amounts_as_strings_and_any_sequence() -> None:
    state = LoanState("\u00c9CO", 2, "USD", Decimal("1000000.50"), date(2031, 1, 1))
    encoded = encode_loan_state(state)
    assert encoded == '["\u00c9CO",2,"USD","1000000.50","2031-01-01",false]'.encode()
    assert decode_loan_state(encoded) == state
    # A sequence beyond 64 bits (the contract bounds none) is still written.
    huge = state._replace(last_sequence=2**70)
    assert json.loads(encode_loan_state(huge))[1] == 1180591620717411303424
    # ... and read back as that integer, from the loan table and the unit table
    # (orjson alone reads it as a float, which has no room for the last 1).
    odd = state._replace(last_sequence=2**70 + 1)
    assert decode_loan_state(encode_loan_state(odd)).last_sequence == 1180591620717411303425
    ((_, row),) = decode_unit_rows([encode_unit_row(0, LoanRow("ACME", "L-1", odd))])
    assert isinstance(row, LoanRow) and row.state.last_sequence == 1180591620717411303425


def test_a_key_holds_the_bytes_of_json_dumps_whatever_character_it_holds() -> None:
    for code in range(0x300):  # control characters, quotes, backslash, DEL, non-ASCII
        text = f"a{chr(code)}b"
        assert loan_state_key(text) == json.dumps(["loan", text]).encode(), code
        assert seller_tick_key(code, text) == json.dumps(["tick", code, text]).encode(), code
