"""The one per-event step of the contract, for the offline replay and the live worker.

Owns: `HedgingEngine`, which holds loan states, issuer books, halts, applied
ticks, the seller ledger and (v2.1, with `[pricing]`) the quotes held, and
runs one event end to end — decode, loan checks, the issuer book, expiry and
the unit's decision (or, for a `clock.tick`, a decision of every unit with
state; a `cds.quote` is only held), the guard and the price of every record
the decision emits, the sellers' status —
and `Outcome`, what one event did, including the `Changes` the live worker
must persist. The replay feeds it a whole log; the worker's unit stage feeds
it its partitions' journal entries and writes the changes to its table, so
both run the same rules (SPEC §3–§14). The risk report (§9, §14.9) is read
from it at the end of a replay. Imports the standard library, pydantic and
the core's own modules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

from pydantic import ValidationError

from hedger.config import HedgerConfig
from hedger.control import CONTROL_TOPIC, ControlCommand, Halts
from hedger.decision import Trigger, UnitDecision, step_due
from hedger.decoding import decode_control, decode_event, describe, parse_json
from hedger.events import (
    INPUT_TOPICS,
    LOAN_EVENT_TYPES,
    PRICING_INPUT_TOPICS,
    QUOTE_TOPIC,
    CdsQuote,
    ClockTick,
    Event,
    ExecutionReport,
    IssuerEvent,
    ProtectionBooked,
    Side,
)
from hedger.issuer import IssuerBook, PartChange, RiskView
from hedger.loans import LoanState, apply_loan_event
from hedger.numbers import ZERO
from hedger.orders import CancelRequest, HedgeOrder, OrderRecord, WithholdRecord
from hedger.outcomes import Duplicate, Reason, Rejected, Status
from hedger.quotes import OlderQuote, Quote, QuoteBook
from hedger.risk_report import IssuerRisk, issuer_risk
from hedger.sellers import (
    SELLER_STATUS_CHANGES,
    SELLER_STATUS_TOPIC,
    SellerLedger,
    SellerStatus,
    SellerStatusChange,
)

if TYPE_CHECKING:
    from hedger.order_pricing import OrderPricer

__all__ = ["INPUT_TOPICS", "Changes", "GroupView", "HedgingEngine", "Outcome"]


class GroupView(NamedTuple):
    """A group's measures (SPEC §4): R_G, the sum of its members' residuals, against L_G."""

    group_id: str
    residual: Decimal
    limit: Decimal
    in_breach: bool  # R_G > L_G x trigger_ratio

    @property
    def utilisation(self) -> Decimal:
        """R_G / L_G."""
        return self.residual / self.limit


class Changes(NamedTuple):
    """What an applied event changed, for a store that persists state per key."""

    loan: tuple[str, LoanState] | None = None  # (loan_id, its new state)
    issuers: tuple[str, ...] = ()  # issuers whose buckets, parts or open orders changed
    closed_order: str | None = None  # an order a report closed (of the event's issuer)
    protection_event: str | None = None  # an applied protection booking's event id
    tick: str | None = None  # an applied clock tick's event id
    sellers: tuple[SellerStatus, ...] = ()  # sellers whose blocked status changed
    parts: tuple[PartChange, ...] = ()  # the counterparty parts the event moved
    command: ControlCommand | None = None  # an applied halt or resume (journal only)
    seller_status: SellerStatusChange | None = None  # an applied seller status (journal only)


class Outcome(NamedTuple):
    """What one event did: its status, and its records or its dead-letter reason."""

    status: Status
    event: Event | None = None
    reason: Reason | None = None
    detail: str = ""
    records: tuple[OrderRecord, ...] = ()  # new orders and cancel requests, as emitted
    views: tuple[RiskView, ...] = ()  # the measures each decision started from
    changes: Changes = Changes()
    groups: tuple[GroupView, ...] = ()  # each decided group's R_G when its decision started
    sellers: tuple[SellerStatus, ...] = ()  # every seller the event re-evaluated

    @property
    def orders(self) -> tuple[HedgeOrder, ...]:
        """The new orders among the records."""
        return tuple(r for r in self.records if isinstance(r, HedgeOrder))

    @property
    def cancels(self) -> tuple[CancelRequest, ...]:
        """The cancel requests among the records."""
        return tuple(r for r in self.records if isinstance(r, CancelRequest))

    @property
    def withheld(self) -> tuple[WithholdRecord, ...]:
        """The buy legs the guard withheld (v2.1), among the records."""
        return tuple(r for r in self.records if isinstance(r, WithholdRecord))

    @property
    def issuer_id(self) -> str | None:
        """The issuer the event names, when it could be read (None for a tick)."""
        event = self.event
        return None if event is None or isinstance(event, ClockTick) else event.issuer_id

    @property
    def event_id(self) -> str | None:
        """The event's id, when it could be read."""
        return None if self.event is None else self.event.event_id


_NONE: frozenset[str] = frozenset()


class _Decided(NamedTuple):
    records: list[OrderRecord]
    views: tuple[RiskView, ...]
    touched: set[str]
    group: GroupView | None


class HedgingEngine:
    """The whole contract's state and its per-event step."""

    def __init__(self, config: HedgerConfig) -> None:
        self.config = config
        self.loans: dict[str, LoanState] = {}
        self.books: dict[str, IssuerBook] = {}
        self.last_as_of: dict[str, date] = {}
        self.last_applied: date | None = None  # D of the last applied event
        self.halts = Halts()
        self.sellers = SellerLedger(config)
        # Blocked sellers per journal partition, as the seller stage journaled
        # them (a live worker, or the replay of its journal); the unscoped
        # replay of a raw log evaluates sellers itself (`self.sellers`).
        self.scoped_blocked: dict[int, set[str]] = {}
        # Applied ticks, per journal partition: the live worker fans a tick out
        # to every partition, and each applies it to its own units.
        self.ticks: set[tuple[int | None, str]] = set()
        # The journal partition each unit's entries come from (live, or a
        # dumped journal); a tick with a scope visits only that scope's units.
        self.unit_scopes: dict[str, int | None] = {}
        self.emitted = 0  # orders emitted so far: their emission order across units
        self.expired_open = 0  # expired orders not yet closed by a report
        # read on every decision: looked up once
        self._ttl = config.hedge.order_ttl_days
        self._groups = config.groups
        self._units = config.unit_table  # the group of each grouped issuer
        # L_G and L_G x trigger_ratio of every group (exact products), read per group event
        trigger_ratio = config.risk.trigger_ratio
        self._group_triggers = {
            group: (limit, limit * trigger_ratio)
            for group, limit in config.group_limit_table.items()
        }
        # v2.1 (SPEC §14): with [pricing], the held quotes and the pricer of
        # every new order; without it, cds-quotes is not an input topic.
        pricing = config.pricing
        self.quotes: QuoteBook | None = None
        self.pricer: OrderPricer | None = None
        self.input_topics: tuple[str, ...] = INPUT_TOPICS
        self.older_quotes = 0  # quotes ignored as older than the one held (§14.1)
        if pricing is not None:
            # QuantLib (~0.14 s to import) is loaded only by a configuration that prices
            from hedger.order_pricing import OrderPricer

            self.quotes = QuoteBook(pricing.quote_ttl_days, pricing.recovery)
            self.pricer = OrderPricer(config, pricing, self.quotes)
            self.input_topics = PRICING_INPUT_TOPICS

    # -- operator halts ------------------------------------------------

    def is_halted(self, issuer_id: str, scope: int | None = None) -> bool:
        """Halted by the configuration or by an operator's command."""
        return self.config.is_halted(issuer_id) or (
            self.halts.halt_for(issuer_id, scope) is not None
        )

    def seller_status(self, payload: object, scope: int | None) -> SellerStatusChange:
        """Apply a seller stage's status change to a journal partition; `Rejected` if malformed."""
        if isinstance(payload, str | bytes | bytearray):
            payload = parse_json(payload)
        try:
            change = SELLER_STATUS_CHANGES.validate_python(payload)
        except ValidationError as exc:
            raise Rejected(Reason.SCHEMA_VIOLATION, describe(exc)) from None
        blocked = (
            self.sellers.blocked if scope is None else self.scoped_blocked.setdefault(scope, set())
        )
        if change.blocked:
            blocked.add(change.seller)
        else:
            blocked.discard(change.seller)
        return change

    def any_halts(self) -> bool:
        """Whether any halt is in force (most decisions need not look per member)."""
        return bool(self.config.halted_issuers or self.halts.issuers or self.halts.everyone)

    def control(self, payload: object, scope: int | None = None) -> ControlCommand:
        """Apply a `hedger-control` command as journal partition `scope` sees it
        (`ControlCommand.scope_on`); raise `Rejected` if it is malformed."""
        command = decode_control(payload)
        self.halts.apply(command, scope)
        return command

    # -- state ---------------------------------------------------------

    def book(self, issuer_id: str) -> IssuerBook:
        """The issuer's book, created empty on first use."""
        book = self.books.get(issuer_id)
        if book is None:
            book = self.books[issuer_id] = IssuerBook(issuer_id)
        return book

    def restore_loans(self, loans: Iterable[tuple[str, LoanState]]) -> None:
        """After a restart: hold these stored loan states, and add each open
        loan's contribution to its issuer's exposure (totals per currency and
        maturities, summed per issuer rather than one loan at a time: a
        worker restores a million loans this way)."""
        totals: dict[str, dict[str, Decimal]] = {}
        maturities: dict[str, dict[date, int]] = {}
        held = self.loans
        for loan_id, state in loans:
            held[loan_id] = state
            issuer = state.issuer_id
            by_currency = totals.get(issuer)
            if by_currency is None:  # a book for every issuer with a loan, as the step makes
                by_currency = totals[issuer] = {}
                maturities[issuer] = {}
            if state.closed:
                continue
            by_currency[state.currency] = by_currency.get(state.currency, ZERO) + state.outstanding
            counts = maturities[issuer]
            counts[state.maturity] = counts.get(state.maturity, 0) + 1
        for issuer, by_currency in totals.items():
            book = self.book(issuer)
            book.invalidate()
            for currency, amount in by_currency.items():
                total = book.currency_totals.get(currency, ZERO) + amount
                if total == ZERO:
                    book.currency_totals.pop(currency, None)
                else:
                    book.currency_totals[currency] = total
            for maturity, count in maturities[issuer].items():
                book.maturities.add(maturity, count)

    def restore_unit_scope(self, unit: str, scope: int) -> None:
        """After a restart: the journal partition a unit's entries come from."""
        self.unit_scopes[unit] = scope

    def restore_halt(self, command: ControlCommand, scope: int | None) -> None:
        """After a restart: hold a stored halt (of one issuer, or of all in `scope`)."""
        self.halts.apply(command, scope)

    def restore_tick(self, scope: int | None, tick_id: str) -> None:
        """After a restart: a tick this journal partition applied is not applied again."""
        self.ticks.add((scope, tick_id))

    def restore_seller_blocked(self, scope: int, seller: str) -> None:
        """After a restart: a seller blocked as journaled to partition `scope`."""
        self.scoped_blocked.setdefault(scope, set()).add(seller)

    def restore_quote(self, quote: Quote) -> None:
        """After a restart: hold a stored quote (ignored without `[pricing]`)."""
        if self.quotes is not None:
            self.quotes.held[(quote.issuer_id, quote.tenor_years)] = quote
            self.quotes.received.add(quote.event_id)

    def restore_quote_id(self, event_id: str) -> None:
        """After a restart: a received quote id is a duplicate if seen again."""
        if self.quotes is not None:
            self.quotes.received.add(event_id)

    def restore_closed_order(self, issuer_id: str, order_id: str) -> None:
        """After a restart: an order closed by a report (a repeated report is a duplicate)."""
        self.book(issuer_id).closed_orders.add(order_id)

    def restore_protection_booking(self, issuer_id: str, event_id: str) -> None:
        """After a restart: an applied protection booking (a repeated one is a duplicate)."""
        self.book(issuer_id).protection_events.add(event_id)

    def restore_as_of(self, issuer_id: str, as_of: date) -> None:
        """After a restart: the as-of date of an issuer's last measures."""
        self.last_as_of[issuer_id] = as_of

    def restore_emitted(self) -> None:
        """After loading books from a store: continue the emission order past every open order."""
        orders = [order for book in self.books.values() for order in book.open_orders.values()]
        self.emitted = max((order.seq + 1 for order in orders), default=0)
        self.expired_open = sum(1 for order in orders if order.expired)

    # -- the step ------------------------------------------------------

    def process(self, topic: str, payload: object, scope: int | None = None) -> Outcome:
        """Process one payload of an input topic (raw text/bytes or decoded JSON).

        `scope` is the journal partition an entry came from, in the live
        worker or when replaying a dumped journal: halts for all issuers
        apply per partition, and a tick re-checks that partition's units.
        The journal's own entries, `hedger-control` commands and the seller
        stage's status changes, are applied here too (`Changes.command`,
        `Changes.seller_status`); they decide nothing by themselves.
        """
        event: Event | None = None
        try:
            if topic == CONTROL_TOPIC:
                command = self.control(payload, scope)
                return Outcome(Status.APPLIED, changes=Changes(command=command))
            if topic == SELLER_STATUS_TOPIC:
                change = self.seller_status(payload, scope)
                return Outcome(Status.APPLIED, changes=Changes(seller_status=change))
            if topic == QUOTE_TOPIC and self.quotes is None:
                raise Rejected(
                    Reason.SCHEMA_VIOLATION, "cds-quotes is an input topic only with [pricing]"
                )
            event = decode_event(topic, payload, self.config)
            if isinstance(event, ClockTick):
                outcome = self._tick(event, scope)
            elif isinstance(event, CdsQuote):
                outcome = self._quote(event)
            else:
                outcome = self._issuer_event(event, scope)
        except Rejected as rejected:
            return Outcome(Status.DEAD_LETTER, event, rejected.reason, rejected.detail)
        except Duplicate:
            return Outcome(Status.DUPLICATE, event)
        return outcome

    def _issuer_event(self, event: IssuerEvent, scope: int | None) -> Outcome:
        issuer = event.issuer_id
        as_of = event.as_of
        book = self.books.get(issuer)
        if book is None:
            book = self.books[issuer] = IssuerBook(issuer)
        loan: tuple[str, LoanState] | None = None
        closed: str | None = None
        parts: list[PartChange] = []
        if isinstance(event, LOAN_EVENT_TYPES):
            loan_id, loans = event.loan_id, self.loans
            state, change = apply_loan_event(event, loans.get(loan_id))
            loans[loan_id] = state
            loan = (loan_id, state)
            book.apply_loan_change(change)
        elif isinstance(event, ExecutionReport):
            order = book.open_orders.get(event.order_id)
            parts = book.apply_report(event)
            if order is not None and event.order_id not in book.open_orders:
                closed = event.order_id
                self.expired_open -= 1 if order.expired else 0
        else:
            assert isinstance(event, ProtectionBooked)
            parts = book.apply_protection(event)
        self.last_as_of[issuer] = self.last_applied = as_of
        event_id = event.event_id
        trigger = Trigger(event_id, event.occurred_at, as_of, event_id)
        unit = self._units.get(issuer, issuer)  # `config.unit_of`, looked up once
        if scope is not None:
            self.unit_scopes[unit] = scope
        decided = self._decide(unit, (issuer,), trigger, scope)
        touched = decided.touched
        if loan is None:
            touched.add(issuer)
        evaluated: tuple[SellerStatus, ...] = ()
        changed: tuple[SellerStatus, ...] = ()
        if parts:
            for part in parts:
                self.sellers.apply(part)
            if scope is None:  # a journal partition learns status from the seller stage
                # Status changes apply from the next event on: this decision saw the old one.
                statuses = self.sellers.evaluate(sorted({p.seller for p in parts}), as_of)
                evaluated, changed = tuple(statuses[0]), tuple(statuses[1])
        # Most events touch nothing else and move no part: no tuples to build.
        changes = Changes(
            loan,
            (tuple(touched) if len(touched) < 2 else tuple(sorted(touched))) if touched else (),
            closed,
            event_id if loan is None and isinstance(event, ProtectionBooked) else None,
            None,
            changed,
            tuple(parts) if parts else (),
        )
        group, records = decided.group, decided.records
        return Outcome(
            Status.APPLIED,
            event,
            None,
            "",
            tuple(records) if records else (),
            decided.views,
            changes,
            () if group is None else (group,),
            evaluated,
        )

    def _quote(self, quote: CdsQuote) -> Outcome:
        """SPEC §14.1: hold a quote; it makes no decision. An older one is ignored, counted."""
        assert self.quotes is not None
        try:
            self.quotes.apply(quote)
        except OlderQuote:
            self.older_quotes += 1
            return Outcome(Status.DUPLICATE, quote, detail="older than the quote held")
        self.last_applied = quote.as_of
        return Outcome(Status.APPLIED, quote)

    def _tick(self, tick: ClockTick, scope: int | None) -> Outcome:
        if (scope, tick.event_id) in self.ticks:
            raise Duplicate
        self.ticks.add((scope, tick.event_id))
        config = self.config
        units = sorted({config.unit_of(i) for i, book in self.books.items() if book.has_state()})
        if scope is not None:  # one journal partition's copy: its own units only
            units = [unit for unit in units if self.unit_scopes.get(unit) == scope]
        records: list[OrderRecord] = []
        views: list[RiskView] = []
        groups: list[GroupView] = []
        touched: set[str] = set()
        for unit in units:
            trigger = Trigger(
                tick.event_id, tick.occurred_at, tick.as_of, f"{tick.event_id}:{unit}"
            )
            decided = self._decide(unit, None, trigger, scope)
            records += decided.records
            views += decided.views
            touched |= decided.touched
            if decided.group is not None:
                groups.append(decided.group)
        for view in views:
            self.last_as_of[view.issuer_id] = tick.as_of
        self.last_applied = tick.as_of
        evaluated: list[SellerStatus] = []
        changed: list[SellerStatus] = []
        if scope is None:  # a journal partition learns status from the seller stage
            evaluated, changed = self.sellers.evaluate(self.sellers.known(), tick.as_of)
        changes = Changes(
            issuers=tuple(sorted(touched)), tick=tick.event_id, sellers=tuple(changed)
        )
        return Outcome(
            Status.APPLIED,
            tick,
            records=tuple(records),
            views=tuple(views),
            changes=changes,
            groups=tuple(groups),
            sellers=tuple(evaluated),
        )

    def _quiet(
        self,
        members: Iterable[str],
        books: Mapping[str, IssuerBook],
        stepping: tuple[str, ...] | None,
        as_of: date,
        expiring: bool,
    ) -> tuple[tuple[RiskView, ...], Decimal] | None:
        """The views of the members with a book and R_G (summed in member order)
        when no issuer step is due for the members that step and, if
        `expiring`, no member has an open order; None when the full decision
        must run. A plain loop: a group unit runs it on every event."""
        config, risk = self.config, self.config.risk
        views: list[RiskView] = []
        total = ZERO
        for issuer in members:
            book = books.get(issuer)
            if book is None:
                continue
            if expiring and book.open_orders:
                return None
            view = book.view(config, as_of)
            if (stepping is None or issuer in stepping) and step_due(
                view.exposure, view.coverage, view.residual, view.limit, risk
            ) is not None:
                return None
            views.append(view)
            total += view.residual
        return tuple(views), total

    def _calm(self, group: str | None, residual: Decimal) -> GroupView | None:
        """The group's view when R_G is within its trigger (None: not calm, or no group)."""
        if group is None:
            return None
        limit, trigger_at = self._group_triggers[group]
        return GroupView(group, residual, limit, False) if residual <= trigger_at else None

    def _decide(
        self, unit: str, stepping: tuple[str, ...] | None, trigger: Trigger, scope: int | None
    ) -> _Decided:
        """Expiry, the issuer step(s) and the group step of one unit (SPEC §5, §10-§12).

        `stepping` names the issuer whose event this is; None (a tick) steps
        every member in ascending issuer id.
        """
        config = self.config
        all_books = self.books
        group = unit if unit in self._groups else None
        any_halts = self.any_halts()
        if group is None and not any_halts:
            # The shortcut below for an issuer alone (most units), unrolled.
            book = all_books.get(unit)
            if book is None:
                return _Decided([], (), set(), None)
            if self._ttl is None or not book.open_orders:
                view = book.view(config, trigger.as_of)
                if (stepping is not None and unit not in stepping) or step_due(
                    view.exposure, view.coverage, view.residual, view.limit, config.risk
                ) is None:
                    return _Decided([], (view,), set(), None)
        elif not any_halts:
            # Most events decide nothing: when no issuer step is due for the
            # members that step, no member has an open order to expire, and
            # the group (if any) is within its trigger, the views are all the
            # outcome needs: the same views, in the same order, as the full
            # decision below starts from, and R_G summed in that order.
            # Whether a step is due does not depend on the order.
            members = (unit,) if group is None else config.members_of(unit)
            # An open order to expire: the full decision expires what is due.
            quiet = self._quiet(members, all_books, stepping, trigger.as_of, self._ttl is not None)
            if quiet is not None:
                calm = self._calm(group, quiet[1])
                if group is None or calm is not None:
                    return _Decided([], quiet[0], set(), calm)
        if group is None:  # an issuer alone: most units
            book = all_books.get(unit)
            books = {} if book is None else {unit: book}
        else:
            books = {m: all_books[m] for m in config.members_of(unit) if m in all_books}
        halted: frozenset[str] | set[str] = _NONE
        if any_halts:
            halted = {m for m in books if self.is_halted(m, scope)}
        records: list[OrderRecord] = []
        touched: set[str] = set()
        ttl = self._ttl
        if ttl is not None:
            expired = [
                (order.seq, order.order_id, issuer)
                for issuer, book in books.items()
                if book.open_orders and issuer not in halted  # most books have none
                for order in book.expire(trigger.as_of, ttl)
            ]
            for _, order_id, issuer in sorted(expired) if expired else ():
                records.append(
                    CancelRequest(order_id, issuer, trigger.event_id, trigger.occurred_at)
                )
                touched.add(issuer)
            self.expired_open += len(expired)
        if not halted:
            # After expiry, the same shortcut as above: no step due, the group calm.
            quiet = self._quiet(books, books, stepping, trigger.as_of, False)
            if quiet is not None:
                calm = self._calm(group, quiet[1])
                if group is None or calm is not None:
                    return _Decided(records, quiet[0], touched, calm)
        blocked = self.sellers.blocked if scope is None else self.scoped_blocked.get(scope, _NONE)
        decision = UnitDecision(config, group, books, trigger, blocked)
        for issuer in sorted(books) if stepping is None else stepping:
            if issuer not in halted:
                decision.issuer_step(issuer)
        if group is not None:
            decision.group_step(halted)
        if self.pricer is None:
            for order in decision.orders() if decision.drafts else ():
                books[order.issuer_id].open_order(order, trigger.as_of, self.emitted)
                self.emitted += 1
                touched.add(order.issuer_id)
                records.append(order)
        elif decision.drafts:
            self._priced_orders(decision, trigger.as_of, books, touched, records)
        summary: GroupView | None = None
        if group is not None:
            limit = config.group_limit(group)
            start = sum((view.residual for view in decision.views.values()), ZERO)
            summary = GroupView(group, start, limit, start > limit * config.risk.trigger_ratio)
        return _Decided(records, tuple(decision.views.values()), touched, summary)

    def _priced_orders(
        self,
        decision: UnitDecision,
        as_of: date,
        books: dict[str, IssuerBook],
        touched: set[str],
        records: list[OrderRecord],
    ) -> None:
        """SPEC §14.7, §14.8: the guard on the sized buy legs, then the price of every record.

        A withheld leg keeps its order id and place, as a withhold record; it
        is never opened.
        """
        pricer = self.pricer
        assert pricer is not None
        withheld = {}
        for leg, draft in enumerate(decision.drafts):
            if draft.side is Side.BUY and draft.tenor is not None:
                reason = pricer.withheld(draft.issuer_id, draft.tenor, as_of)
                if reason is not None:
                    withheld[leg] = reason
        for leg, order in enumerate(decision.orders(withheld)):
            priced = order.model_copy(update={"price": pricer.price(order, as_of)})
            reason = withheld.get(leg)
            if reason is not None:
                records.append(WithholdRecord(priced, reason))
                continue
            books[order.issuer_id].open_order(priced, as_of, self.emitted)
            self.emitted += 1
            touched.add(order.issuer_id)
            records.append(priced)

    # -- reports -------------------------------------------------------

    def views(self) -> list[RiskView]:
        """Each issuer's risk at the as-of date of its last applied event, by issuer id."""
        return [
            self.books[issuer].view(self.config, as_of)
            for issuer, as_of in sorted(self.last_as_of.items())
        ]

    def group_views(self, views: list[RiskView] | None = None) -> list[GroupView]:
        """Each configured group from its members' latest views (`views()` unless given)."""
        residuals = dict.fromkeys(self.config.groups, ZERO)
        for view in self.views() if views is None else views:
            group = self.config.group_of(view.issuer_id)
            if group is not None:
                residuals[group] += view.residual
        trigger = self.config.risk.trigger_ratio
        return [
            GroupView(g, r, self.config.group_limit(g), r > self.config.group_limit(g) * trigger)
            for g, r in sorted(residuals.items())
        ]

    def seller_report(self) -> list[SellerStatus]:
        """SPEC §9: every known seller at the as-of date of the last applied event."""
        return self.sellers.report(self.last_applied)

    def issuer_risk(self, issuer_id: str, as_of: date) -> IssuerRisk | None:
        """SPEC §14.9 for one issuer at `as_of`; None when it has no state."""
        book = self.books.get(issuer_id)
        if book is None or not book.has_state():
            return None
        return issuer_risk(self.config, book, as_of, self.pricer)

    def risk_report(self) -> list[IssuerRisk]:
        """SPEC §9, §14.9: each issuer with state, by id, at the last applied event's as-of date."""
        as_of = self.last_applied
        if as_of is None:
            return []
        return [
            issuer_risk(self.config, book, as_of, self.pricer)
            for issuer, book in sorted(self.books.items())
            if book.has_state()
        ]
