"""`HedgingEngine.restore_loans`: stored loan states back into a fresh engine.

Expected figures are written out by hand from the loans below.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hedger.engine import HedgingEngine
from hedger.loans import LoanState
from hedger.outcomes import Status
from tests.factories import booked, make_config

LOANS = [
    ("L-1", LoanState("ACME", 1, "USD", Decimal("10000000"), date(2029, 6, 20), False)),
    ("L-2", LoanState("ACME", 3, "USD", Decimal("5000000"), date(2030, 1, 1), False)),
    ("L-3", LoanState("ACME", 2, "EUR", Decimal("2000000"), date(2030, 1, 1), False)),
    ("L-4", LoanState("BETA", 2, "USD", Decimal("0"), date(2028, 3, 1), True)),  # closed
]


def test_restored_loans_make_each_issuers_totals_and_maturities() -> None:
    engine = HedgingEngine(make_config())
    engine.restore_loans(LOANS)
    assert engine.loans == dict(LOANS)
    acme = engine.books["ACME"]
    assert acme.currency_totals == {"USD": Decimal("15000000"), "EUR": Decimal("2000000")}
    assert acme.maturities.counts() == {date(2029, 6, 20): 1, date(2030, 1, 1): 2}
    assert acme.maturities.latest() == date(2030, 1, 1)
    beta = engine.books["BETA"]  # a book, as the step leaves one after a cancellation
    assert beta.currency_totals == {} and len(beta.maturities) == 0


def test_a_restored_loan_takes_its_next_event_as_if_never_restarted() -> None:
    """L-1 restored at sequence 1: its sequence 1 again is a duplicate, a new loan
    adds to ACME's USD total (10m + 5m + 7m)."""
    engine = HedgingEngine(make_config())
    engine.restore_loans(LOANS[:2])
    again = engine.process("loan-bookings", booked("L-1", "10000000", maturity="2029-06-20"))
    assert again.status is Status.DUPLICATE
    engine.process("loan-bookings", booked("L-9", "7000000", maturity="2029-01-02"))
    assert engine.books["ACME"].currency_totals == {"USD": Decimal("22000000")}
