"""One kernel for replay and live: event in, outcome and orders out (SPEC §3–§7).

Owns: `HedgingEngine`, which holds the loan states and issuer books in
memory and runs the three stages in order — decode (stateless), loan checks
(per loan), issuer book and decision (per issuer) — and `Outcome`, the
record of what one event did. The live worker runs the same stages on
partitioned state; both call the functions below, so their orders agree.
Imports the standard library and the core's own modules.
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

from hedger.config import HedgerConfig
from hedger.control import ControlCommand, Halts
from hedger.decision import Trigger, decide
from hedger.decoding import decode_control, decode_event
from hedger.events import (
    EXECUTION_TOPIC,
    LOAN_TOPIC,
    Event,
    ExecutionReport,
    LoanEvent,
    ProtectionBooked,
)
from hedger.issuer import IssuerBook, RiskView
from hedger.loans import LoanChange, LoanState, apply_loan_event
from hedger.orders import HedgeOrder
from hedger.outcomes import Duplicate, Reason, Rejected, Status

INPUT_TOPICS = (LOAN_TOPIC, EXECUTION_TOPIC)


class Outcome(NamedTuple):
    """What one event did: its status, and the orders or the dead-letter reason."""

    status: Status
    event: Event | None = None
    reason: Reason | None = None
    detail: str = ""
    orders: tuple[HedgeOrder, ...] = ()

    @property
    def issuer_id(self) -> str | None:
        """The issuer the event names, when it could be read."""
        return None if self.event is None else self.event.issuer_id

    @property
    def event_id(self) -> str | None:
        """The event's id, when it could be read."""
        return None if self.event is None else self.event.event_id


def apply_to_issuer(
    book: IssuerBook,
    event: Event,
    change: LoanChange | None,
    config: HedgerConfig,
    halted: bool,
) -> tuple[RiskView, list[HedgeOrder]]:
    """Stage 3: apply an event (already loan-checked) to its issuer, then decide.

    Raises `Rejected`/`Duplicate` for execution-side checks, leaving the book
    untouched. Returns the risk view the decision saw and the orders, which
    are already recorded as open in the book.
    """
    if isinstance(event, ExecutionReport):
        book.apply_report(event)
    elif isinstance(event, ProtectionBooked):
        book.apply_protection(event)
    else:
        assert change is not None
        book.apply_loan_change(change)
    view = book.view(config, event.as_of)
    if halted:
        return view, []
    orders = decide(book, view, config, Trigger(event.event_id, event.occurred_at))
    for order in orders:
        book.open_order(order)
    return view, orders


class HedgingEngine:
    """The whole contract in one process: the offline replay's kernel."""

    def __init__(self, config: HedgerConfig) -> None:
        self.config = config
        self.loans: dict[str, LoanState] = {}
        self.books: dict[str, IssuerBook] = {}
        self.last_as_of: dict[str, date] = {}
        self.halts = Halts()

    def is_halted(self, issuer_id: str, scope: int | None = None) -> bool:
        """Halted by the configuration or by an operator's command."""
        return self.config.is_halted(issuer_id) or (
            self.halts.halt_for(issuer_id, scope) is not None
        )

    def control(self, payload: object, scope: int | None = None) -> ControlCommand:
        """Apply a `hedger-control` command; raise `Rejected` if it is malformed."""
        command = decode_control(payload)
        self.halts.apply(command, scope)
        return command

    def book(self, issuer_id: str) -> IssuerBook:
        """The issuer's book, created empty on first use."""
        book = self.books.get(issuer_id)
        if book is None:
            book = self.books[issuer_id] = IssuerBook(issuer_id)
        return book

    def process(self, topic: str, payload: object, scope: int | None = None) -> Outcome:
        """Process one payload of an input topic (raw text/bytes or decoded JSON).

        `scope` is the journal partition a line came from, when replaying a
        dumped journal: halts for all issuers apply per partition.
        """
        event: Event | None = None
        try:
            event = decode_event(topic, payload, self.config)
            change = None
            if isinstance(event, LoanEvent):
                change = self._apply_loan(event)
            book = self.book(event.issuer_id)
            _, orders = apply_to_issuer(
                book, event, change, self.config, self.is_halted(event.issuer_id, scope)
            )
        except Rejected as rejected:
            return Outcome(Status.DEAD_LETTER, event, rejected.reason, rejected.detail)
        except Duplicate:
            return Outcome(Status.DUPLICATE, event)
        self.last_as_of[event.issuer_id] = event.as_of
        return Outcome(Status.APPLIED, event, orders=tuple(orders))

    def _apply_loan(self, event: LoanEvent) -> LoanChange:
        state, change = apply_loan_event(event, self.loans.get(event.loan_id))
        self.loans[event.loan_id] = state
        return change

    def views(self) -> list[RiskView]:
        """Each issuer's risk at the as-of date of its last applied event, by issuer id."""
        return [
            self.books[issuer].view(self.config, as_of)
            for issuer, as_of in sorted(self.last_as_of.items())
        ]
