"""Every key and value of the worker's tables: their kinds, their records, their JSON.

Owns: the names of the keys the loan, unit and seller stages write, the
typed record each key holds, and their encoding; nothing else writes or
parses a table row. A key is a JSON array whose first element names its
kind (identifiers may contain any character, so no separator is safe):

Loan table (keyed by loan):
  ["loan", loan_id]                     a loan's state (`LoanState`)

Unit table (keyed by hedging unit), values `{"partition": p, "value": v}`
with `p` the journal partition the row belongs to:
  ["loan", issuer, loan_id]             `LoanRow`: a loan's state
  ["aggregate", issuer]                 `AggregateRow`: buckets, parts, open orders
  ["closed-order", issuer, order_id]    `ClosedOrderRow`: a closed order
  ["protection-booking", issuer, id]    `ProtectionBookingRow`: an applied booking
  ["tick", partition, tick_id]          `TickRow`: a clock tick applied there
  ["seller-status", partition, seller]  `SellerStatusRow`: blocked as journaled there
  ["halt", target] / ["halt", target, partition]
                                        `HaltRow`: a halt (null value: lifted)
  ["last-view", issuer]                 `LastViewRow`: as-of date, time, partition
                                        of the issuer's last measures
  ["quote", issuer, tenor]              `QuoteRow`: the quote held
  ["quote-id", issuer, quote_id]        `QuoteIdRow`: a received quote id

Seller table (keyed by protection seller):
  ["seller", seller]                    `SellerRow`: exposure, status, last entries
  ["tick", partition, tick_id]          a tick applied to that seller-parts partition

A key of any other kind (the one-letter kinds of an older version) raises
`TableFormatError`: such tables are rebuilt by processing the inputs again
under a new app id (docs/operations.md, "Table format"). Amounts are decimal strings, dates ISO
strings. Imports the standard library, orjson, `hedger`,
`streams.compact_json` and `streams.live.book_codec`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple, TypeAlias

import orjson

from hedger.control import ControlCommand
from hedger.decoding import parse_json
from hedger.loans import LoanState
from hedger.outcomes import Rejected
from hedger.quotes import Quote
from streams.compact_json import to_json
from streams.live.book_codec import loan_from_json, loan_to_json


class TableFormatError(Exception):
    """A table holds a row this version cannot read (written by an older one)."""


# The characters `json.dumps` writes as they are (printable ASCII but `"`
# and `\\`); any other is escaped.
_PLAIN = re.compile(r"[ !#-\[\]-~]*")


def _key(*parts: str | int) -> bytes:
    """A key's bytes: exactly what `json.dumps(parts)` writes (spaces after
    commas, non-ASCII escaped), so a deletion hits the key an earlier version
    wrote. Parts that need no escape (the usual identifiers) are joined
    directly, at half the cost; anything else goes through `json.dumps`."""
    out = []
    for part in parts:
        if type(part) is int:
            out.append(str(part))
        elif type(part) is str and _PLAIN.fullmatch(part):
            out.append(f'"{part}"')
        else:
            return json.dumps(parts).encode()
    return f"[{', '.join(out)}]".encode()


# -- the loan table --------------------------------------------------------


def loan_state_key(loan_id: str) -> bytes:
    """The loan stage's key of a loan."""
    return _key("loan", loan_id)


def encode_loan_state(state: LoanState) -> bytes:
    return to_json(loan_to_json(state))


def _loads(raw: bytes) -> Any:
    """A stored value, exactly: the core's parser, which leaves orjson for `json`
    where an integer of 19 or more digits (a loan's sequence may be any size) is."""
    try:
        return parse_json(raw)
    except Rejected as exc:
        raise ValueError(exc.detail) from None


def decode_loan_state(raw: bytes) -> LoanState:
    return loan_from_json(_loads(raw))


# -- the unit table --------------------------------------------------------


class LoanRow(NamedTuple):
    issuer: str
    loan_id: str
    state: LoanState


class AggregateRow(NamedTuple):
    """An issuer's buckets, parts and open orders (`book_codec.aggregate_to_json`)."""

    issuer: str
    aggregate: dict[str, Any]


class ClosedOrderRow(NamedTuple):
    issuer: str
    order_id: str


class ProtectionBookingRow(NamedTuple):
    issuer: str
    event_id: str


class TickRow(NamedTuple):
    partition: int
    tick_id: str


class SellerStatusRow(NamedTuple):
    partition: int
    seller: str
    blocked: bool


class HaltRow(NamedTuple):
    """A halt of `target` (an issuer, or all), scoped to a journal partition or
    not; `command` None: lifted."""

    target: str
    scope: int | None
    command: ControlCommand | None


class LastViewRow(NamedTuple):
    issuer: str
    as_of: date
    occurred_at: str
    partition: int


class QuoteRow(NamedTuple):
    quote: Quote


class QuoteIdRow(NamedTuple):
    issuer: str
    quote_id: str


UnitRecord: TypeAlias = (
    LoanRow
    | AggregateRow
    | ClosedOrderRow
    | ProtectionBookingRow
    | TickRow
    | SellerStatusRow
    | HaltRow
    | LastViewRow
    | QuoteRow
    | QuoteIdRow
)
# Rows whose key names an issuer: every key of a unit lives in its journal partition.
ISSUER_ROWS = (LoanRow, AggregateRow, ClosedOrderRow, ProtectionBookingRow, LastViewRow)


def _unit_key_value(record: UnitRecord) -> tuple[bytes, Any]:
    match record:
        case LoanRow(issuer, loan_id, state):
            return _key("loan", issuer, loan_id), loan_to_json(state)
        case AggregateRow(issuer, aggregate):
            return _key("aggregate", issuer), aggregate
        case ClosedOrderRow(issuer, order_id):
            return _key("closed-order", issuer, order_id), True
        case ProtectionBookingRow(issuer, event_id):
            return _key("protection-booking", issuer, event_id), True
        case TickRow(partition, tick_id):
            return _key("tick", partition, tick_id), True
        case SellerStatusRow(partition, seller, blocked):
            return _key("seller-status", partition, seller), blocked
        case HaltRow(target, scope, command):
            key = _key("halt", target) if scope is None else _key("halt", target, scope)
            value = None if command is None else command.model_dump(exclude_none=True)
            return key, value
        case LastViewRow(issuer, as_of, occurred_at, partition):
            value = {"as_of": as_of.isoformat(), "occurred_at": occurred_at, "partition": partition}
            return _key("last-view", issuer), value
        case QuoteRow(quote):
            value = {
                "as_of_date": quote.as_of_date.isoformat(),
                "spread_bps": quote.spread_bps,
                "recovery": quote.recovery,
                "event_id": quote.event_id,
            }
            return _key("quote", quote.issuer_id, quote.tenor_years), value
        case QuoteIdRow(issuer, quote_id):
            return _key("quote-id", issuer, quote_id), True
    raise TypeError(f"not a unit table record: {record!r}")  # pragma: no cover


def encode_unit_row(partition: int, record: UnitRecord) -> tuple[bytes, bytes]:
    """The key and value of a unit-table record of journal partition `partition`."""
    key, value = _unit_key_value(record)
    return key, to_json({"partition": partition, "value": value})


def _unit_record(parts: list[Any], value: Any) -> UnitRecord:
    kind = parts[0]
    if kind == "loan":
        return LoanRow(parts[1], parts[2], loan_from_json(value))
    if kind == "aggregate":
        return AggregateRow(parts[1], value)
    if kind == "closed-order":
        return ClosedOrderRow(parts[1], parts[2])
    if kind == "protection-booking":
        return ProtectionBookingRow(parts[1], parts[2])
    if kind == "tick":
        return TickRow(parts[1], parts[2])
    if kind == "seller-status":
        return SellerStatusRow(parts[1], parts[2], bool(value))
    if kind == "halt":
        scope = parts[2] if len(parts) > 2 else None
        command = None if value is None else ControlCommand.model_validate(value)
        return HaltRow(parts[1], scope, command)
    if kind == "last-view":
        as_of = date.fromisoformat(value["as_of"])
        return LastViewRow(parts[1], as_of, value["occurred_at"], value["partition"])
    if kind == "quote":
        as_of = date.fromisoformat(value["as_of_date"])
        quote = Quote(
            parts[1], parts[2], as_of, value["spread_bps"], value["recovery"], value["event_id"]
        )
        return QuoteRow(quote)
    if kind == "quote-id":
        return QuoteIdRow(parts[1], parts[2])
    raise KeyError(kind)


def _older(table: str, key: bytes) -> TableFormatError:
    return TableFormatError(
        f"the {table} table holds a row of an older format (key {key[:80]!r}): "
        "rebuild the tables by processing the inputs again under a new app id "
        "(docs/operations.md, Table format)"
    )


def decode_unit_rows(items: Iterable[tuple[bytes, bytes]]) -> Iterator[tuple[int, UnitRecord]]:
    """A unit table's rows as (journal partition, record): the bulk of a restore.

    orjson parses these small documents about three times as fast as `json`,
    with the same results. Raises `TableFormatError` on a row of another format.
    """
    loads = orjson.loads  # keys hold strings and partitions only
    for key, raw in items:  # one at a time: a million rows are never all decoded at once
        try:
            parts, row = loads(key), _loads(raw)
            yield row["partition"], _unit_record(parts, row["value"])
        except (KeyError, IndexError, TypeError, ValueError) as exc:  # JSONDecodeError too
            raise _older("unit", key) from exc


# -- the seller table ------------------------------------------------------


def seller_key(seller: str) -> bytes:
    return _key("seller", seller)


def seller_tick_key(partition: int, tick_id: str) -> bytes:
    """The key of a tick applied to a seller-parts partition (value `true`)."""
    return _key("tick", partition, tick_id)


SELLER_TICK_VALUE = b"true"


@dataclass
class SellerRow:
    """A seller's key: exposure by maturity, blocked status and the as-of date
    of its last evaluation (what /metrics shows after a restart)."""

    partition: int = 0  # its seller-parts partition
    exposure: dict[date, Decimal] = field(default_factory=dict)
    blocked: bool = False
    evaluated_as_of: str | None = None

    def encode(self) -> bytes:
        return to_json(
            {
                "partition": self.partition,
                "exposure": {m.isoformat(): str(v) for m, v in self.exposure.items()},
                "blocked": self.blocked,
                "evaluated_as_of": self.evaluated_as_of,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> SellerRow:
        row = orjson.loads(raw)
        return cls(
            row["partition"],
            {date.fromisoformat(m): Decimal(v) for m, v in row["exposure"].items()},
            row["blocked"],
            row["evaluated_as_of"],
        )


def decode_seller_rows(items: Iterable[tuple[bytes, bytes]]) -> Iterator[tuple[str, SellerRow]]:
    """The seller table's seller rows (its tick keys are skipped).

    Raises `TableFormatError` on a row of another format."""
    for key, raw in items:
        try:
            kind, *rest = orjson.loads(key)
            if kind == "tick" and len(rest) == 2:
                continue
            if kind != "seller":
                raise KeyError(kind)
            (seller,) = rest
            yield seller, SellerRow.decode(raw)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise _older("seller", key) from exc
