"""The worker's route, loan and unit stages as plain classes, one per partitioning key.

Owns: what each stage does with one message and which keys of its table it
writes — routing (stateless; ticks fanned out to every journal partition),
loan checks (state per `loan_id`) and the units' books, expiry and decisions
(state per hedging unit, through the core's one per-event step
`HedgingEngine.process`). Business rules come from `hedger`; Kafka stays in
`streams.live.txn_worker`, which feeds messages in and sends `Output`s out.
So every stage is testable with a dict for a table.

Tables are written through `BufferedTable`: writes of a batch are coalesced
per key and handed to the runtime at the end of the batch, which sends them
to the changelog partition they belong to in the batch's Kafka transaction,
with its outputs and its consumed offset. A table therefore holds exactly
what the committed offsets say was processed; an aborted batch's writes go
with its outputs, and the stage rebuilds its state from the table. The
stages keep state, not a history of what they sent.

What stages report goes to an `Observer` (`streams.observer`). May import the
standard library, `hedger`, `streams.observer`, `streams.settings` (topic names)
and `streams.live.envelopes`/`book_codec`/`table_rows`.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, NamedTuple

from hedger.config import HedgerConfig
from hedger.control import (
    ALL_ISSUERS,
    CONTROL_TOPIC,
    ControlCommand,
)
from hedger.decoding import decode_control, decode_event, parse_json, validate_event
from hedger.engine import HedgingEngine, Outcome
from hedger.events import (
    CLOCK_TOPIC,
    EXECUTION_TOPIC,
    LOAN_TOPIC,
    QUOTE_TOPIC,
    CdsQuote,
    ClockTick,
    Event,
    LoanEvent,
)
from hedger.issuer import IssuerBook
from hedger.loans import LoanState, apply_loan_event
from hedger.outcomes import Duplicate, Reason, Rejected, Status
from hedger.sellers import SellerStatusChange
from streams.live.book_codec import aggregate_to_json, load_aggregate
from streams.live.envelopes import (
    Entry,
    dead_letter,
    decode_entry,
    encode_entry,
    part_entry,
    to_json,
)
from streams.live.table_rows import (
    ISSUER_ROWS,
    AggregateRow,
    ClosedOrderRow,
    HaltRow,
    LastViewRow,
    LoanRow,
    ProtectionBookingRow,
    QuoteIdRow,
    QuoteRow,
    SellerStatusRow,
    TickRow,
    UnitRecord,
    decode_loan_state,
    decode_unit_rows,
    encode_loan_state,
    encode_unit_row,
    loan_state_key,
)
from streams.observer import DeadLettered, Observer, Origin, report_applied
from streams.settings import TopicNames


class BufferedTable:
    """A table's local data plus this batch's writes, coalesced per key.

    `data` is the store the changelog restores into (`ChangelogStore.data`, or
    a dict in tests); it is updated only by `drain`, which returns the writes
    for the runtime to send to the changelog as (partition, key, value or None).
    """

    def __init__(self, data: MutableMapping[bytes, bytes]) -> None:
        self.data = data
        self._pending: dict[bytes, tuple[int, bytes | None]] = {}

    def get(self, key: bytes) -> bytes | None:
        """The newest value: this batch's write, else the stored one."""
        pending = self._pending.get(key)
        if pending is not None:
            return pending[1]
        return self.data.get(key)

    def put(self, partition: int, key: bytes, value: bytes | None) -> None:
        """Write (or, with None, delete) a key of a changelog partition."""
        self._pending[key] = (partition, value)

    def discard(self) -> None:
        """Drop this batch's writes (its transaction was aborted)."""
        self._pending.clear()

    def drain(self) -> list[tuple[int, bytes, bytes | None]]:
        """Apply this batch's writes to `data` and return them, in write order."""
        writes = [(partition, key, value) for key, (partition, value) in self._pending.items()]
        self._pending.clear()
        for _, key, value in writes:
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value
        return writes


class Output(NamedTuple):
    """A message a stage wants sent (to `partition` if given, else by key)."""

    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None


# What the producer may send in one message (Faust's `producer_max_request_size`
# is 1,000,000 bytes and the broker's `message.max.bytes` about 1 MiB), less
# room for the record's own framing.
MAX_MESSAGE_BYTES = 1_000_000 - 1_024
# Dead-letter reasons of the worker itself (not SPEC codes): an event that
# made the worker fail, and one whose output would exceed the message limit.
PROCESSING_ERROR = "processing_error"
PAYLOAD_TOO_LARGE = "payload_too_large"


def fits(key: bytes | None, value: bytes) -> bool:
    """Whether a message of this key and value can be produced."""
    return len(value) + (len(key) if key else 0) <= MAX_MESSAGE_BYTES


def _dead(
    topics: TopicNames,
    observer: Observer,
    stage: str,
    exc: Rejected,
    source: Origin,
    payload: bytes | None,
    event_id: str | None = None,
    issuer_id: str | None = None,
) -> Output:
    return dead_output(
        topics, observer, stage, exc.reason.value, exc.detail, source, payload, event_id, issuer_id
    )


def dead_output(
    topics: TopicNames,
    observer: Observer,
    stage: str,
    reason: str,
    detail: str,
    source: Origin,
    payload: bytes | None,
    event_id: str | None = None,
    issuer_id: str | None = None,
    *,
    by_reference: bool = False,
) -> Output:
    """A dead letter for `topics.dead_letters`, reported to the observer.

    The payload is copied whole when the record fits in one message, else
    quoted by reference (source, size and a prefix; see `dead_letter`).
    """
    observer.on_event(stage, source.topic, Status.DEAD_LETTER, reason)
    observer.on_dead_letter(DeadLettered(stage, source, reason, detail, event_id, issuer_id))
    key = issuer_id.encode() if issuer_id else None
    args = (reason, detail, source, payload)
    record = b""
    if not by_reference:
        record = dead_letter(*args, stage=stage, event_id=event_id, issuer_id=issuer_id)
    if by_reference or not fits(key, record):
        record = dead_letter(
            *args, stage=stage, event_id=event_id, issuer_id=issuer_id, by_reference=True
        )
    return Output(topics.dead_letters, key, record)


def failed(
    topics: TopicNames,
    observer: Observer,
    stage: str,
    exc: BaseException,
    source: Origin,
    payload: bytes | None,
) -> Output:
    """The dead letter of an event the stage failed on (a bug, never a SPEC case)."""
    detail = f"{stage} stage failed: {exc!r}"[:1_000]
    return dead_output(topics, observer, stage, PROCESSING_ERROR, detail, source, payload)


def too_large(
    topics: TopicNames,
    observer: Observer,
    stage: str,
    what: str,
    size: int,
    source: Origin,
    payload: bytes | None,
) -> Output:
    """The dead letter of an event whose output would exceed the message limit."""
    detail = f"{what} of {size} bytes exceeds the {MAX_MESSAGE_BYTES}-byte message limit"
    return dead_output(topics, observer, stage, PAYLOAD_TOO_LARGE, detail, source, payload)


# The key of a tick's journal copies (each is sent to an explicit partition).
CLOCK_KEY = CLOCK_TOPIC.encode()


class RouteStage:
    """Stage 1, stateless: validate an input message and route it by its key.

    Loan events go to the loan stage keyed by `loan_id`; execution events and
    (with `[pricing]`) quotes go straight to the journal keyed by their
    hedging unit (a group's members share one partition, so the group step
    and the price of its orders are local); a desk-clock tick goes to every
    journal partition, where each re-checks its own units; the rest is
    dead-lettered.
    """

    def __init__(
        self, config: HedgerConfig, topics: TopicNames, observer: Observer, partitions: int = 1
    ) -> None:
        self.config, self.topics, self.observer = config, topics, observer
        self.partitions = partitions  # of the journal: a halt for all goes to each
        self.input_topics = {
            topics.loan_bookings: LOAN_TOPIC,
            topics.cds_executions: EXECUTION_TOPIC,
            topics.desk_clock: CLOCK_TOPIC,
        }
        if config.pricing is not None:  # SPEC §2: an input topic only with [pricing]
            self.input_topics[topics.cds_quotes] = QUOTE_TOPIC

    def handle_control(self, source: Origin, payload: bytes | None) -> list[Output]:
        """A kill-switch command goes to its issuer's journal partition, or to all."""
        try:
            if payload is None:
                raise Rejected(Reason.INVALID_JSON, "empty (null) message value")
            command = decode_control(payload)
        except Rejected as exc:
            return [_dead(self.topics, self.observer, "route", exc, source, payload)]
        entry = encode_entry(Entry(CONTROL_TOPIC, payload.decode("utf-8"), source))
        if not fits(ALL_ISSUERS.encode(), entry):
            return [
                too_large(
                    self.topics,
                    self.observer,
                    "route",
                    "the journal entry",
                    len(entry),
                    source,
                    payload,
                )
            ]
        if command.issuer_id is not None:
            unit = self.config.unit_of(command.issuer_id)
            return [Output(self.topics.journal, unit.encode(), entry)]
        key = ALL_ISSUERS.encode()
        return [Output(self.topics.journal, key, entry, p) for p in range(self.partitions)]

    def handle(self, source: Origin, payload: bytes | None) -> list[Output]:
        return self.check(source, payload)[0]

    def check(
        self, source: Origin, payload: bytes | None
    ) -> tuple[list[Output], Entry | None, Event | None]:
        """`handle`'s outputs, with the entry and the event it validated (None
        and None when it dead-letters), so the next stage need not decode them again."""
        topic = self.input_topics[source.topic]  # the contract's name for this input
        value: Any = None
        try:
            if payload is None:
                raise Rejected(Reason.INVALID_JSON, "empty (null) message value")
            value = parse_json(payload)
            event = validate_event(topic, value, self.config)
        except Rejected as exc:
            # name the event and issuer in logs when the payload says them
            event_id, issuer_id = _ids(value)
            dead = _dead(
                self.topics, self.observer, "route", exc, source, payload, event_id, issuer_id
            )
            return [dead], None, None
        checked = Entry(topic, payload.decode("utf-8"), source)
        entry = encode_entry(checked)
        if isinstance(event, ClockTick):  # every unit partition, and every seller partition
            outputs = [
                Output(topic, CLOCK_KEY, entry, p)
                for topic in (self.topics.journal, self.topics.seller_parts)
                for p in range(self.partitions)
            ]
        elif isinstance(event, LoanEvent):
            outputs = [Output(self.topics.loans, event.loan_id.encode(), entry)]
        else:
            unit = self.config.unit_of(event.issuer_id)
            outputs = [Output(self.topics.journal, unit.encode(), entry)]
        if not fits(outputs[0].key, entry):
            what = "the journal entry"
            observer = self.observer
            dead = too_large(self.topics, observer, "route", what, len(entry), source, payload)
            return [dead], None, None
        return outputs, checked, event


def _unreadable(
    topics: TopicNames,
    observer: Observer,
    stage: str,
    exc: Exception,
    source: Origin,
    payload: bytes | None,
) -> Output:
    """An internal message that no longer reads (foreign writer, or a changed
    configuration such as a removed FX rate): dead-lettered, never a crash."""
    if not isinstance(exc, Rejected):
        exc = Rejected(Reason.SCHEMA_VIOLATION, f"unreadable {source.topic} entry: {exc!r}")
    return _dead(topics, observer, stage, exc, source, payload)


def _ids(value: Any) -> tuple[str | None, str | None]:
    if not isinstance(value, dict):
        return None, None
    found = []
    for name in ("event_id", "issuer_id"):
        item = value.get(name)
        found.append(item if isinstance(item, str) and 0 < len(item) <= 128 else None)
    return found[0], found[1]


class LoanStage:
    """Stage 2, keyed by `loan_id`: the checks that need a loan's history.

    Every event is checked against the loan's state as the table holds it:
    state and offsets commit together, so nothing processed is delivered
    again. One key per loan, holding the loan's state.
    """

    def __init__(
        self, config: HedgerConfig, table: BufferedTable, topics: TopicNames, observer: Observer
    ) -> None:
        self.config, self.table, self.topics, self.observer = config, table, topics, observer

    def handle(
        self,
        partition: int,
        offset: int,
        payload: bytes,
        checked: tuple[Entry, LoanEvent] | None = None,
    ) -> list[Output]:
        """One loan-stage entry; `checked`: the entry and event the route stage
        has just validated from `payload` (the two-hop path), not decoded again."""
        if checked is not None:
            entry, event = checked
        else:
            internal = Origin(self.topics.loans, partition, offset)
            try:
                entry = decode_entry(payload)
                event = decode_event(entry.topic, entry.value, self.config)
                if not isinstance(event, LoanEvent):
                    raise Rejected(Reason.SCHEMA_VIOLATION, "not a loan event")
            except (Rejected, ValueError, KeyError, TypeError) as exc:
                return [_unreadable(self.topics, self.observer, "loans", exc, internal, payload)]
        source = entry.source
        key = loan_state_key(event.loan_id)
        stored = self.table.get(key)
        state = None if stored is None else decode_loan_state(stored)
        try:
            new_state, _ = apply_loan_event(event, state)
        except Rejected as exc:
            return [self._rejected(exc, entry.value, source, event)]
        except Duplicate:
            self.observer.on_event("loans", source.topic, Status.DUPLICATE, None)
            return []
        self.table.put(partition, key, encode_loan_state(new_state))
        unit = self.config.unit_of(event.issuer_id)  # the journal is keyed by hedging unit
        return [Output(self.topics.journal, unit.encode(), payload)]

    def _rejected(self, exc: Rejected, raw: str, source: Origin, event: LoanEvent) -> Output:
        return _dead(
            self.topics,
            self.observer,
            "loans",
            exc,
            source,
            raw.encode(),
            event.event_id,
            event.issuer_id,
        )


class IssuerStage:
    """Stage 3, keyed by hedging unit: the core's per-event step.

    Holds a `HedgingEngine` with the state of this worker's partitions,
    rebuilt from the table after (re)assignment or an aborted transaction,
    and hands every journal entry to `HedgingEngine.process`, the same step
    the offline replay runs. What stays here is Kafka's part: the table
    writes of the `Changes` the core reports, as the records of
    `streams.live.table_rows`: loan states (exposure totals and maturities
    are rebuilt from them), aggregates, closed orders, applied protection
    bookings and ticks, sellers' statuses, halts, each issuer's last view
    (so /metrics shows it again after a restart), held quotes and received
    quote ids (with `[pricing]`: a restarted worker prices with the same
    quotes and still knows which quote ids are duplicates).
    """

    def __init__(
        self,
        config: HedgerConfig,
        table: BufferedTable,
        topics: TopicNames,
        observer: Observer,
    ) -> None:
        self.config, self.table, self.topics, self.observer = config, table, topics, observer
        self.engine = HedgingEngine(config)
        self.loaded = False
        # Journal partitions this worker owns (None: all the table holds). The
        # memory store keeps keys of partitions that moved to another worker.
        self.owned: set[int] | None = None
        # Per issuer: the journal partition and `occurred_at` of its last view.
        self._shown: dict[str, tuple[int, str]] = {}

    @property
    def books(self) -> dict[str, IssuerBook]:
        """The issuer books of this worker's partitions."""
        return self.engine.books

    # -- recovery ------------------------------------------------------

    def invalidate(self) -> None:
        """Forget the in-memory state: rebuilt from the table on the next message."""
        self.loaded = False

    def load(self) -> None:
        """Rebuild the state from the table now (else on the next message)."""
        self._ensure_loaded()

    def _ensure_loaded(self) -> None:
        if self.loaded:
            return
        self.engine = HedgingEngine(self.config)
        self._shown = {}
        owned = self.owned
        loans: list[tuple[str, LoanState]] = []
        engine, unit_of = self.engine, self.config.unit_of
        for partition, record in decode_unit_rows(list(self.table.data.items())):
            if owned is not None and partition not in owned:
                continue
            if isinstance(record, LoanRow):  # most keys: restored together by the core
                loans.append((record.loan_id, record.state))
            else:
                self._load_row(record)
            if isinstance(record, ISSUER_ROWS):
                # every key of a unit lives in the unit's journal partition
                engine.restore_unit_scope(unit_of(record.issuer), partition)
        self.engine.restore_loans(loans)
        self.engine.restore_emitted()
        self.loaded = True
        self._show()
        engine = self.engine
        if engine.quotes is not None:  # the price and risk gauges show again
            for quote in engine.quotes.held.values():
                self.observer.on_quote(quote)
            for issuer, as_of in engine.last_as_of.items():
                risk = engine.issuer_risk(issuer, as_of)
                if risk is not None:
                    self.observer.on_issuer_risk(risk)

    def _show(self) -> None:
        """Report every recovered issuer's figures, as its last event did."""
        engine = self.engine
        for view in engine.views():
            scope, occurred_at = self._shown[view.issuer_id]
            halted = engine.is_halted(view.issuer_id, scope)
            open_orders = len(engine.books[view.issuer_id].open_orders)
            self.observer.on_view(view, halted, open_orders, occurred_at)

    def _load_row(self, record: UnitRecord) -> None:
        engine = self.engine
        match record:
            case HaltRow(_, scope, command) if command is not None:
                engine.restore_halt(command, scope)
                self.observer.on_control(command, scope)  # a recovered halt shows again
            case TickRow(partition, tick_id):  # a tick is applied per partition
                engine.restore_tick(partition, tick_id)
            case SellerStatusRow(partition, seller, blocked) if blocked:
                engine.restore_seller_blocked(partition, seller)
            case QuoteRow(quote):
                engine.restore_quote(quote)
            case QuoteIdRow(_, quote_id):
                engine.restore_quote_id(quote_id)
            case LastViewRow(issuer, as_of, occurred_at, partition):
                engine.restore_as_of(issuer, as_of)
                self._shown[issuer] = (partition, occurred_at)
            case AggregateRow(issuer, aggregate):
                load_aggregate(engine.book(issuer), aggregate)
            case ClosedOrderRow(issuer, order_id):
                engine.restore_closed_order(issuer, order_id)
            case ProtectionBookingRow(issuer, event_id):
                engine.restore_protection_booking(issuer, event_id)

    # -- processing ----------------------------------------------------

    def handle(self, partition: int, offset: int, payload: bytes) -> list[Output]:
        self._ensure_loaded()
        internal = Origin(self.topics.journal, partition, offset)
        try:
            entry = decode_entry(payload)
            source = entry.source
        except (Rejected, ValueError, KeyError, TypeError) as exc:
            return [_unreadable(self.topics, self.observer, "issuers", exc, internal, payload)]
        outcome = self.engine.process(entry.topic, entry.value, scope=partition)
        changes = outcome.changes
        if changes.command is not None:
            self._control(partition, changes.command)
            return []
        if changes.seller_status is not None:
            self._seller_status(partition, changes.seller_status)
            return []
        if outcome.status is Status.DEAD_LETTER:
            assert outcome.reason is not None
            rejected = Rejected(outcome.reason, outcome.detail)
            if outcome.event is None:  # a journal entry that no longer reads
                observer = self.observer
                return [_unreadable(self.topics, observer, "issuers", rejected, internal, payload)]
            raw = entry.value.encode()
            return [
                _dead(
                    self.topics,
                    self.observer,
                    "issuers",
                    rejected,
                    source,
                    raw,
                    outcome.event_id,
                    outcome.issuer_id,
                )
            ]
        if outcome.status is Status.DUPLICATE:
            quote = outcome.event
            if isinstance(quote, CdsQuote):
                # An older quote is not held, but its id is received (SPEC §14.1);
                # a repeated id is written again, unchanged.
                self.put_row(partition, QuoteIdRow(quote.issuer_id, quote.event_id))
            self.observer.on_event("issuers", source.topic, Status.DUPLICATE, None)
            return []
        self.observer.on_event("issuers", source.topic, Status.APPLIED, None)
        outputs = [
            Output(self.topics.orders, record.issuer_id.encode(), _order_bytes(record.to_wire()))
            for record in outcome.records
        ]
        event = outcome.event
        assert event is not None
        for change in outcome.changes.parts:  # sellers span units: their stage counts them
            part = part_entry(change, event.as_of, event.event_id, internal)
            outputs.append(
                Output(self.topics.seller_parts, change.seller.encode(), encode_entry(part))
            )
        self._persist(partition, outcome)
        report_applied(self.observer, self.engine, outcome, partition, source)
        return outputs

    def _persist(self, partition: int, outcome: Outcome) -> None:
        """Write what the event changed."""
        changes, books = outcome.changes, self.engine.books
        issuer = outcome.issuer_id or ""
        if changes.loan is not None:
            loan_id, state = changes.loan
            self.put_row(partition, LoanRow(issuer, loan_id, state))
        for touched in changes.issuers:
            self.put_row(partition, AggregateRow(touched, aggregate_to_json(books[touched])))
        if changes.closed_order is not None:
            self.put_row(partition, ClosedOrderRow(issuer, changes.closed_order))
        if changes.protection_event is not None:
            self.put_row(partition, ProtectionBookingRow(issuer, changes.protection_event))
        if changes.tick is not None:
            self.put_row(partition, TickRow(partition, changes.tick))
        event = outcome.event
        assert event is not None
        if isinstance(event, CdsQuote):  # held: the newest quote of its issuer and tenor
            quotes = self.engine.quotes
            assert quotes is not None
            held = quotes.held[(event.issuer_id, event.tenor_years)]
            self.put_row(partition, QuoteRow(held))
            self.put_row(partition, QuoteIdRow(event.issuer_id, event.event_id))
        for view in outcome.views:  # what /metrics shows of the issuer, after a restart too
            shown = LastViewRow(view.issuer_id, view.as_of, event.occurred_at, partition)
            self.put_row(partition, shown)

    def _control(self, partition: int, command: ControlCommand) -> None:
        """Persist and show a command the engine has applied."""
        scope = command.scope_on(partition)
        held = command if command.command == "halt" else None
        self.put_row(partition, HaltRow(command.target, scope, held))
        self.observer.on_control(command, scope)

    def put_row(self, partition: int, record: UnitRecord) -> None:
        """Write a record of journal partition `partition` to the table."""
        self.table.put(partition, *encode_unit_row(partition, record))

    def _seller_status(self, partition: int, change: SellerStatusChange) -> None:
        """Persist a seller status the engine has applied to this partition."""
        self.put_row(partition, SellerStatusRow(partition, change.seller, change.blocked))


def _order_bytes(wire: dict[str, Any]) -> bytes:
    return to_json(wire)
