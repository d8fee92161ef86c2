"""A loan's own state and the checks that need its history (SPEC §2, §3).

Owns: `LoanState` and `apply_loan_event`, which turns a validated loan event
and the loan's previous state into the loan's next state plus the change of
its contribution to the issuer's exposure. Everything here is keyed by
`loan_id`, so the live worker can run it on a loan-partitioned stream.
Value types are NamedTuples: immutable, and several times cheaper to build
than frozen dataclasses on the per-event path. Imports the standard library
and the core's events and outcomes.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import NamedTuple

from hedger.events import LoanAmended, LoanBooked, LoanCancelled, LoanEvent, LoanRepaid
from hedger.outcomes import Duplicate, Reason, Rejected


class Contribution(NamedTuple):
    """What one open loan adds to its issuer: an amount, its currency, its maturity."""

    currency: str
    outstanding: Decimal
    maturity: date


class LoanState(NamedTuple):
    """A loan as the bot knows it; closed loans are kept to catch reuse and replays."""

    issuer_id: str
    last_sequence: int
    currency: str
    outstanding: Decimal
    maturity: date
    closed: bool = False

    def contribution(self) -> Contribution | None:
        """The loan's share of the exposure, or None once it is closed."""
        if self.closed:
            return None
        return Contribution(self.currency, self.outstanding, self.maturity)


class LoanChange(NamedTuple):
    """The effect of one applied loan event on its issuer's aggregates."""

    issuer_id: str
    before: Contribution | None
    after: Contribution | None


def apply_loan_event(event: LoanEvent, state: LoanState | None) -> tuple[LoanState, LoanChange]:
    """Check a loan event against its loan's history and apply it.

    Raises `Rejected` with the first SPEC §3 code that applies after
    `unknown_currency` (which needs no history), or `Duplicate` when the
    sequence was already applied. State is never mutated.
    """
    if state is not None:
        if event.issuer_id != state.issuer_id:
            raise Rejected(
                Reason.ISSUER_MISMATCH,
                f"loan {event.loan_id} belongs to {state.issuer_id}, event names {event.issuer_id}",
            )
        if event.sequence <= state.last_sequence:
            raise Duplicate
    if isinstance(event, LoanBooked):
        if state is not None:
            raise Rejected(Reason.DUPLICATE_LOAN, f"loan {event.loan_id} was booked before")
        new = LoanState(
            event.issuer_id, event.sequence, event.currency, event.notional, event.maturity_date
        )
        return new, LoanChange(event.issuer_id, None, new.contribution())
    if state is None:
        raise Rejected(Reason.UNKNOWN_LOAN, f"loan {event.loan_id} was never booked")
    if state.closed:
        raise Rejected(Reason.LOAN_CLOSED, f"loan {event.loan_id} is closed")
    before = state.contribution()
    outstanding, maturity, closed = state.outstanding, state.maturity, False
    if isinstance(event, LoanAmended):
        if event.notional is not None:
            outstanding = event.notional
        if event.maturity_date is not None:
            maturity = event.maturity_date
    elif isinstance(event, LoanRepaid):
        if event.amount > outstanding:
            raise Rejected(
                Reason.REPAYMENT_EXCEEDS_OUTSTANDING,
                f"repaying {event.amount} of {outstanding} outstanding",
            )
        outstanding -= event.amount
        closed = outstanding == 0
    else:
        assert isinstance(event, LoanCancelled)
        closed = True
    # Built directly rather than with dataclasses.replace, which is slow.
    new = LoanState(state.issuer_id, event.sequence, state.currency, outstanding, maturity, closed)
    return new, LoanChange(state.issuer_id, before, new.contribution())
