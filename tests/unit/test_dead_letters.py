"""One test per dead-letter code (SPEC §3), plus the precedence between them."""

import pytest

from hedger.engine import HedgingEngine
from hedger.outcomes import Reason, Status
from tests.factories import amended, booked, cancelled, make_config, protection, repaid, report

LOANS, EXECUTIONS = "loan-bookings", "cds-executions"


@pytest.fixture
def engine() -> HedgingEngine:
    return HedgingEngine(make_config())


def reason_of(engine: HedgingEngine, topic: str, payload: object) -> Reason | None:
    outcome = engine.process(topic, payload)
    return outcome.reason if outcome.status is Status.DEAD_LETTER else None


def with_order(engine: HedgingEngine) -> str:
    outcome = engine.process(LOANS, booked("L1", "150000000", maturity="2028-01-02"))
    return outcome.orders[0].order_id


@pytest.mark.parametrize(
    "payload",
    [
        '{"schema_version": 1,',
        "not json",
        '{"a": NaN}',
        '{"a": Infinity}',
        b"\xff\xfe",
        "[" * 100_000,
        "1" * 5000,
        "",
    ],
)
def test_invalid_json(engine: HedgingEngine, payload: object) -> None:
    assert reason_of(engine, LOANS, payload) is Reason.INVALID_JSON


@pytest.mark.parametrize("payload", ["[1, 2]", '"text"', "null", "1e400", 7, None, [1]])
def test_payload_that_is_not_an_object_is_a_schema_violation(
    engine: HedgingEngine, payload: object
) -> None:
    assert reason_of(engine, LOANS, payload) is Reason.SCHEMA_VIOLATION


def test_schema_violation_of_a_field(engine: HedgingEngine) -> None:
    assert reason_of(engine, LOANS, booked("L1", "1.234")) is Reason.SCHEMA_VIOLATION


def test_unknown_currency(engine: HedgingEngine) -> None:
    assert reason_of(engine, LOANS, booked("L1", "100", currency="CHF")) is Reason.UNKNOWN_CURRENCY
    assert (
        reason_of(engine, EXECUTIONS, protection("100", currency="CHF")) is Reason.UNKNOWN_CURRENCY
    )


def test_issuer_mismatch(engine: HedgingEngine) -> None:
    engine.process(LOANS, booked("L1", "100"))
    assert reason_of(engine, LOANS, amended("L1", 2, issuer="OTHER", notional="5")) is (
        Reason.ISSUER_MISMATCH
    )


def test_duplicate_loan(engine: HedgingEngine) -> None:
    engine.process(LOANS, booked("L1", "100"))
    assert reason_of(engine, LOANS, booked("L1", "100", seq=2)) is Reason.DUPLICATE_LOAN


def test_duplicate_loan_also_after_it_closed(engine: HedgingEngine) -> None:
    engine.process(LOANS, booked("L1", "100"))
    engine.process(LOANS, cancelled("L1", 2))
    assert reason_of(engine, LOANS, booked("L1", "100", seq=3)) is Reason.DUPLICATE_LOAN


def test_unknown_loan(engine: HedgingEngine) -> None:
    assert reason_of(engine, LOANS, repaid("L9", 2, "5")) is Reason.UNKNOWN_LOAN


def test_loan_closed(engine: HedgingEngine) -> None:
    engine.process(LOANS, booked("L1", "100"))
    engine.process(LOANS, repaid("L1", 2, "100"))  # repaid to 0: closed
    assert reason_of(engine, LOANS, amended("L1", 3, notional="50")) is Reason.LOAN_CLOSED


def test_repayment_exceeds_outstanding(engine: HedgingEngine) -> None:
    engine.process(LOANS, booked("L1", "100"))
    engine.process(LOANS, amended("L1", 2, notional="60"))
    assert reason_of(engine, LOANS, repaid("L1", 3, "60.01")) is (
        Reason.REPAYMENT_EXCEEDS_OUTSTANDING
    )


def test_unknown_order(engine: HedgingEngine) -> None:
    order_id = with_order(engine)
    assert reason_of(engine, EXECUTIONS, report("nope#1", "rejected")) is Reason.UNKNOWN_ORDER
    # the order exists, but not for the issuer the report names
    assert reason_of(engine, EXECUTIONS, report(order_id, "rejected", issuer="OTHER")) is (
        Reason.UNKNOWN_ORDER
    )


def test_overfill(engine: HedgingEngine) -> None:
    order_id = with_order(engine)  # 60m
    assert reason_of(engine, EXECUTIONS, report(order_id, "partially_filled", "60000000.01")) is (
        Reason.OVERFILL
    )


# -- precedence and duplicates ---------------------------------------------


def test_unknown_currency_comes_before_the_loan_checks(engine: HedgingEngine) -> None:
    engine.process(LOANS, booked("L1", "100"))
    again = booked("L1", "100", currency="CHF", issuer="OTHER")
    assert reason_of(engine, LOANS, again) is Reason.UNKNOWN_CURRENCY


def test_issuer_mismatch_comes_before_the_duplicate_rule(engine: HedgingEngine) -> None:
    engine.process(LOANS, booked("L1", "100"))
    assert reason_of(engine, LOANS, booked("L1", "100", issuer="OTHER")) is Reason.ISSUER_MISMATCH


def test_replayed_sequence_is_a_duplicate_not_a_dead_letter(engine: HedgingEngine) -> None:
    first = booked("L1", "100")
    engine.process(LOANS, first)
    assert engine.process(LOANS, {**first, "event_id": "other"}).status is Status.DUPLICATE
    engine.process(LOANS, cancelled("L1", 5))
    # closed loan, old sequence: the duplicate rule comes before loan_closed
    assert engine.process(LOANS, amended("L1", 4, notional="5")).status is Status.DUPLICATE


def test_report_for_a_closed_order_is_a_duplicate(engine: HedgingEngine) -> None:
    order_id = with_order(engine)
    engine.process(EXECUTIONS, report(order_id, "filled", "60000000"))
    # even one that would overfill: the duplicate rule comes before overfill
    late = report(order_id, "partially_filled", "90000000")
    assert engine.process(EXECUTIONS, late).status is Status.DUPLICATE


def test_same_report_event_twice_is_a_duplicate(engine: HedgingEngine) -> None:
    order_id = with_order(engine)
    fill = report(order_id, "partially_filled", "10000000")
    assert engine.process(EXECUTIONS, fill).status is Status.APPLIED
    assert engine.process(EXECUTIONS, fill).status is Status.DUPLICATE
    assert engine.books["ACME"].open_orders[order_id].remaining == 50_000_000


def test_protection_booked_twice_is_a_duplicate(engine: HedgingEngine) -> None:
    booking = protection("10000000")
    assert engine.process(EXECUTIONS, booking).status is Status.APPLIED
    assert engine.process(EXECUTIONS, booking).status is Status.DUPLICATE


def test_dead_letters_leave_state_untouched(engine: HedgingEngine) -> None:
    engine.process(LOANS, booked("L1", "100"))
    before = engine.loans["L1"]
    engine.process(LOANS, repaid("L1", 2, "101"))
    assert engine.loans["L1"] is before
    # sequence 2 was not consumed by the dead letter
    assert engine.process(LOANS, repaid("L1", 2, "40")).status is Status.APPLIED
