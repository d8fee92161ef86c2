"""The wire grammar of SPEC §1–§2: every bad field is a schema_violation."""

from typing import Any

import pytest

from hedger.engine import HedgingEngine
from hedger.outcomes import Reason, Status
from tests.factories import amended, booked, make_config, protection, report

GOOD = booked("L1", "250000000.50", maturity="2030-01-01")


def outcome(payload: dict[str, Any], topic: str = "loan-bookings") -> Status | Reason:
    result = HedgingEngine(make_config()).process(topic, payload)
    return result.reason if result.reason is not None else result.status


def test_good_event_applies() -> None:
    assert outcome(GOOD) is Status.APPLIED
    assert outcome({**GOOD, "desk": "LEV-FIN", "extra": [1, None]}) is Status.APPLIED


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("notional", 100),  # a number, not a string
        ("notional", "1.234"),
        ("notional", "-5"),
        ("notional", "+5"),
        ("notional", "0"),
        ("notional", "0.00"),
        ("notional", "1e5"),
        ("notional", " 5"),
        ("notional", "5."),
        ("notional", "1000000000000000"),  # 10^15 is not below 10^15
        ("notional", "١٢٣"),  # non-ASCII digits
        ("notional", None),
        ("currency", "usd"),
        ("currency", "USDX"),
        ("maturity_date", "2030-02-30"),
        ("maturity_date", "2030-1-01"),
        ("maturity_date", "20300101"),
        ("maturity_date", "2026-01-02"),  # not after D
        ("occurred_at", "2026-01-02T24:00:00Z"),
        ("occurred_at", "2026-01-02T09:00:00"),
        ("occurred_at", "2026-01-02T09:00:00.1234567890Z"),
        ("occurred_at", "2026-01-02 09:00:00Z"),
        ("occurred_at", "2026-01-02T09:00:00+00:00"),
        ("schema_version", 2),
        ("schema_version", True),
        ("schema_version", 1.0),
        ("schema_version", "1"),
        ("sequence", 0),
        ("sequence", True),
        ("sequence", 1.0),
        ("event_id", ""),
        ("event_id", "x" * 129),
        ("loan_id", 7),
        ("issuer_id", None),
        ("event_type", "loan.exploded"),
        ("event_type", "execution.report"),  # right type, wrong topic
    ],
)
def test_bad_field_is_a_schema_violation(field: str, value: object) -> None:
    assert outcome({**GOOD, field: value}) is Reason.SCHEMA_VIOLATION


@pytest.mark.parametrize("field", ["notional", "currency", "maturity_date", "event_id", "sequence"])
def test_missing_field_is_a_schema_violation(field: str) -> None:
    payload = {k: v for k, v in GOOD.items() if k != field}
    assert outcome(payload) is Reason.SCHEMA_VIOLATION


def test_limits_of_identifiers_and_timestamps_are_inclusive() -> None:
    assert outcome({**GOOD, "loan_id": "L" * 128}) is Status.APPLIED
    assert outcome({**GOOD, "occurred_at": "2026-01-02T23:59:59.123456789Z"}) is Status.APPLIED
    assert outcome({**GOOD, "notional": "999999999999999.99"}) is Status.APPLIED


def test_amendment_needs_a_field_and_rejects_null() -> None:
    engine = HedgingEngine(make_config())
    engine.process("loan-bookings", GOOD)
    for bad in (
        amended("L1", 2),
        amended("L1", 2, notional=None),
        amended("L1", 2, notional="1", maturity_date=None),
    ):
        assert engine.process("loan-bookings", bad).reason is Reason.SCHEMA_VIOLATION
    assert engine.process("loan-bookings", amended("L1", 2, maturity_date="2031-01-01")).status is (
        Status.APPLIED
    )


def test_execution_report_grammar() -> None:
    engine = HedgingEngine(make_config())
    for bad in (
        report("x#1", "filled"),  # fill without amount
        report("x#1", "partially_filled"),
        report("x#1", "expired"),
        report("x#1", "rejected", counterparty=None),
        report("x" * 301, "rejected"),
        report("x#1", "filled", "abc"),
    ):
        assert engine.process("cds-executions", bad).reason is Reason.SCHEMA_VIOLATION, bad
    # SPEC §2: a rejected report does not read filled_notional (an ignored extra field)
    ignored = report("x#1", "rejected", filled_notional="abc")
    assert engine.process("cds-executions", ignored).reason is Reason.UNKNOWN_ORDER
    # contract v2: order ids of up to 300 characters are well-formed (and unknown)
    for length in (136, 137, 300):
        assert engine.process("cds-executions", report("x" * length, "rejected")).reason is (
            Reason.UNKNOWN_ORDER
        )


def test_protection_grammar() -> None:
    engine = HedgingEngine(make_config())
    for bad in (
        protection("5", side="BUY"),
        protection("5", doc="XR"),
        protection("5", maturity="2026-01-02"),
        protection("5", counterparty=""),
    ):
        assert engine.process("cds-executions", bad).reason is Reason.SCHEMA_VIOLATION, bad
