"""The worker's three stages as plain classes, one per partitioning key.

Owns: what each stage does with one message and which keys of its table it
writes — routing (stateless), loan checks (state per `loan_id`) and the
issuer book with the decision (state per `issuer_id`) — plus the crash-safety
protocol of the issuer table. Business rules come from `hedger`; Kafka and
Faust stay in `streams.app`, which feeds messages in and sends `Output`s out.
So every stage is testable with a dict for a table.

Crash safety (at-least-once delivery, tables written ahead of offset commits):

* Stage 2 writes one key per event (the loan) holding the input offset that
  last changed it. A redelivered message at or below that offset was seen
  before the crash; it is forwarded again when it names the loan's issuer,
  and the issuer stage deduplicates it by sequence.
* Stage 3 writes several keys per event, all in one table, hence one
  changelog partition, in order, the issuer's aggregate last. Every other
  key carries the journal offset that wrote it (`s`) and its previous value
  (`p`). After a restart, keys stamped beyond the aggregate's watermark are
  the torn writes of an unfinished event and are rolled back, so the state
  is exactly "after the watermark" and redelivered entries recompute the
  same decisions. Entries at or below the watermark were fully applied: their
  stored orders (`d` keys) are emitted again, identical, since an order can
  be lost in flight after its state was written.

May import the standard library, `hedger` and `streams.envelopes`/`streams.book_codec`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any, NamedTuple, Protocol

from hedger.config import HedgerConfig
from hedger.decoding import decode_event, parse_json, validate_event
from hedger.engine import apply_to_issuer
from hedger.events import ExecutionReport, LoanEvent, ProtectionBooked
from hedger.issuer import IssuerBook, RiskView
from hedger.loans import LoanChange, LoanState, apply_loan_event
from hedger.orders import HedgeOrder
from hedger.outcomes import Duplicate, Reason, Rejected, Status
from streams.book_codec import aggregate_to_json, load_aggregate, loan_from_json, loan_to_json
from streams.envelopes import Entry, Source, dead_letter, decode_entry, encode_entry
from streams.worker_settings import TopicNames


class KeyValue(Protocol):
    """The part of a Faust table (or a dict, in tests) the stages use."""

    def get(self, key: bytes) -> bytes | None: ...
    def __setitem__(self, key: bytes, value: bytes) -> None: ...
    def __delitem__(self, key: bytes) -> None: ...
    def items(self) -> Iterable[tuple[bytes, bytes]]: ...


class Output(NamedTuple):
    """A message a stage wants sent."""

    topic: str
    key: bytes | None
    value: bytes


class Observer(Protocol):
    """What stages report; metrics and logs implement it (no-op by default)."""

    def on_event(self, stage: str, topic: str, status: Status, reason: str | None) -> None: ...
    def on_dead_letter(
        self,
        stage: str,
        source: Source,
        reason: str,
        detail: str,
        event_id: str | None,
        issuer_id: str | None,
    ) -> None: ...
    def on_orders(self, orders: list[HedgeOrder], view: RiskView, source: Source) -> None: ...
    def on_view(self, view: RiskView, halted: bool) -> None: ...


class Tally:
    """A minimal observer: counts outcomes (used by tests and as the default)."""

    def __init__(self) -> None:
        self.events: Counter[tuple[str, str, str]] = Counter()
        self.orders: list[HedgeOrder] = []

    def on_event(self, stage: str, topic: str, status: Status, reason: str | None) -> None:
        self.events[(stage, status.value, reason or "")] += 1

    def on_dead_letter(
        self,
        stage: str,
        source: Source,
        reason: str,
        detail: str,
        event_id: str | None,
        issuer_id: str | None,
    ) -> None:
        pass

    def on_orders(self, orders: list[HedgeOrder], view: RiskView, source: Source) -> None:
        self.orders.extend(orders)

    def on_view(self, view: RiskView, halted: bool) -> None:
        pass


def _dead(
    topics: TopicNames,
    observer: Observer,
    stage: str,
    exc: Rejected,
    source: Source,
    payload: bytes | None,
    event_id: str | None = None,
    issuer_id: str | None = None,
) -> Output:
    observer.on_event(stage, source.topic, Status.DEAD_LETTER, exc.reason.value)
    observer.on_dead_letter(stage, source, exc.reason.value, exc.detail, event_id, issuer_id)
    record = dead_letter(
        exc.reason.value,
        exc.detail,
        source,
        payload,
        stage=stage,
        event_id=event_id,
        issuer_id=issuer_id,
    )
    return Output(topics.dead_letters, issuer_id.encode() if issuer_id else None, record)


class RouteStage:
    """Stage 1, stateless: validate an input message and route it by its key.

    Loan events go to the loan stage keyed by `loan_id`; execution events go
    straight to the journal keyed by `issuer_id`; the rest is dead-lettered.
    """

    def __init__(self, config: HedgerConfig, topics: TopicNames, observer: Observer) -> None:
        self.config, self.topics, self.observer = config, topics, observer
        self.input_topics = {
            topics.loan_bookings: "loan-bookings",
            topics.cds_executions: "cds-executions",
        }

    def handle(self, source: Source, payload: bytes | None) -> Output:
        topic = self.input_topics[source.topic]  # the contract's name for this input
        try:
            if payload is None:
                raise Rejected(Reason.INVALID_JSON, "empty (null) message value")
            value = parse_json(payload)
            event = validate_event(topic, value, self.config)
        except Rejected as exc:
            return _dead(self.topics, self.observer, "route", exc, source, payload)
        entry = encode_entry(Entry(topic, payload.decode("utf-8"), source))
        if isinstance(event, LoanEvent):
            return Output(self.topics.loans, event.loan_id.encode(), entry)
        return Output(self.topics.journal, event.issuer_id.encode(), entry)


class LoanStage:
    """Stage 2, keyed by `loan_id`: the checks that need a loan's history."""

    def __init__(
        self, config: HedgerConfig, table: KeyValue, topics: TopicNames, observer: Observer
    ) -> None:
        self.config, self.table, self.topics, self.observer = config, table, topics, observer

    def handle(self, offset: int, payload: bytes) -> list[Output]:
        entry = decode_entry(payload)
        source = entry.source
        event = decode_event(entry.topic, entry.value, self.config)
        assert isinstance(event, LoanEvent)
        key = event.loan_id.encode()
        stored = self.table.get(key)
        state, last_offset = (None, -1) if stored is None else _loan_row(stored)
        raw = entry.value.encode()
        forward = Output(self.topics.journal, event.issuer_id.encode(), payload)
        if state is not None and offset <= last_offset:
            # Seen before a crash: forward again unless it names another issuer;
            # the issuer stage deduplicates by sequence.
            if event.issuer_id == state.issuer_id:
                return [forward]
        try:
            new_state, _ = apply_loan_event(event, state)
        except Rejected as exc:
            return [
                _dead(
                    self.topics,
                    self.observer,
                    "loans",
                    exc,
                    source,
                    raw,
                    event.event_id,
                    event.issuer_id,
                )
            ]
        except Duplicate:
            self.observer.on_event("loans", source.topic, Status.DUPLICATE, None)
            return []
        self.table[key] = json.dumps([loan_to_json(new_state), offset]).encode()
        return [forward]


def _loan_row(stored: bytes) -> tuple[LoanState, int]:
    data = json.loads(stored)
    return loan_from_json(data[0]), data[1]


def _key(kind: str, issuer: str, name: str = "") -> bytes:
    # JSON arrays: identifiers may contain any character, so no separator is safe.
    return json.dumps([kind, issuer, name]).encode()


class IssuerStage:
    """Stage 3, keyed by `issuer_id`: the issuer book, the decision, the orders.

    Holds the books of this worker's partitions in memory, rebuilt from the
    table after (re)assignment; every change is written to the table.
    """

    def __init__(
        self, config: HedgerConfig, table: KeyValue, topics: TopicNames, observer: Observer
    ) -> None:
        self.config, self.table, self.topics, self.observer = config, table, topics, observer
        self.books: dict[str, IssuerBook] = {}
        self.loans: dict[str, LoanState] = {}
        self.watermarks: dict[str, int] = {}
        self.loaded = False

    # -- recovery ------------------------------------------------------

    def invalidate(self) -> None:
        """Forget the in-memory books: rebuilt from the table on the next message."""
        self.loaded = False

    def _ensure_loaded(self) -> None:
        if self.loaded:
            return
        self.books, self.loans, self.watermarks = {}, {}, {}
        rows = [(json.loads(k), json.loads(v)) for k, v in self.table.items()]
        for (kind, issuer, _), data in rows:
            if kind == "a":
                self.watermarks[issuer] = load_aggregate(self._book(issuer), data)
        for (kind, issuer, name), data in rows:
            if kind == "a":
                continue
            if data["s"] > self.watermarks.get(issuer, -1):
                data = self._roll_back(kind, issuer, name, data)  # a torn write
                if data is None:
                    continue
            self._load_key(kind, issuer, name, data["v"])
        self.loaded = True

    def _roll_back(
        self, kind: str, issuer: str, name: str, data: dict[str, Any]
    ) -> dict[str, Any] | None:
        key = _key(kind, issuer, name)
        if data["p"] is None:
            del self.table[key]
            return None
        restored = {"s": -1, "v": data["p"], "p": None}
        self.table[key] = json.dumps(restored).encode()
        return restored

    def _load_key(self, kind: str, issuer: str, name: str, value: Any) -> None:
        book = self._book(issuer)
        if kind == "m":
            book.maturities.add(date.fromisoformat(name), value)
        elif kind == "l":
            self.loans[name] = loan_from_json(value)
        elif kind == "c":
            book.closed_orders.add(name)
        elif kind == "e":
            book.protection_events.add(name)

    def _book(self, issuer: str) -> IssuerBook:
        book = self.books.get(issuer)
        if book is None:
            book = self.books[issuer] = IssuerBook(issuer)
        return book

    # -- processing ----------------------------------------------------

    def handle(self, offset: int, payload: bytes) -> list[Output]:
        self._ensure_loaded()
        entry = decode_entry(payload)
        source = entry.source
        raw = entry.value.encode()
        event = decode_event(entry.topic, entry.value, self.config)
        issuer = event.issuer_id
        if offset <= self.watermarks.get(issuer, -1):
            return list(self._stored_orders(issuer, event.event_id))
        book = self._book(issuer)
        loan_change = None
        new_loan: LoanState | None = None
        old_loan: LoanState | None = None
        try:
            if isinstance(event, LoanEvent):
                old_loan = self.loans.get(event.loan_id)
                new_loan, loan_change = apply_loan_event(event, old_loan)
            maturities = _touched_maturities(loan_change)
            counts_before = {m: book.maturities.count(m) for m in maturities}
            was_open = isinstance(event, ExecutionReport) and event.order_id in book.open_orders
            halted = self.config.is_halted(issuer)
            view, orders = apply_to_issuer(book, event, loan_change, self.config, halted)
        except Rejected as exc:
            return [
                _dead(
                    self.topics, self.observer, "issuers", exc, source, raw, event.event_id, issuer
                )
            ]
        except Duplicate:
            self.observer.on_event("issuers", source.topic, Status.DUPLICATE, None)
            return []
        self.observer.on_event("issuers", source.topic, Status.APPLIED, None)
        # Persist: stamped keys first, the aggregate (with the watermark) last.
        if new_loan is not None:
            assert isinstance(event, LoanEvent)
            self.loans[event.loan_id] = new_loan
            self._put(
                "l",
                issuer,
                event.loan_id,
                offset,
                loan_to_json(new_loan),
                None if old_loan is None else loan_to_json(old_loan),
            )
            for maturity, before in counts_before.items():
                after = book.maturities.count(maturity)
                if after != before:
                    self._put("m", issuer, maturity.isoformat(), offset, after, before or None)
        if (
            was_open
            and isinstance(event, ExecutionReport)
            and event.order_id not in book.open_orders
        ):
            self._put("c", issuer, event.order_id, offset, 1, None)
        if isinstance(event, ProtectionBooked):
            self._put("e", issuer, event.event_id, offset, 1, None)
        wires = [order.to_wire() for order in orders]
        if wires:
            self._put("d", issuer, event.event_id, offset, wires, None)
        self.table[_key("a", issuer)] = json.dumps(aggregate_to_json(book, offset)).encode()
        self.watermarks[issuer] = offset
        self.observer.on_view(view, halted)
        if orders:
            self.observer.on_orders(orders, view, source)
        return [Output(self.topics.orders, issuer.encode(), _order_bytes(w)) for w in wires]

    def _put(
        self, kind: str, issuer: str, name: str, offset: int, value: Any, previous: Any
    ) -> None:
        self.table[_key(kind, issuer, name)] = json.dumps(
            {"s": offset, "v": value, "p": previous}
        ).encode()

    def _stored_orders(self, issuer: str, event_id: str) -> Iterator[Output]:
        stored = self.table.get(_key("d", issuer, event_id))
        if stored is not None:
            for wire in json.loads(stored)["v"]:
                yield Output(self.topics.orders, issuer.encode(), _order_bytes(wire))


def _touched_maturities(change: LoanChange | None) -> set[date]:
    if change is None:
        return set()
    return {part.maturity for part in (change.before, change.after) if part is not None}


def _order_bytes(wire: dict[str, Any]) -> bytes:
    return json.dumps(wire).encode()
