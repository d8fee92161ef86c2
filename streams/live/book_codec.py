"""JSON forms of the core's state, for the worker's changelog-backed tables.

Owns: (de)serialising `LoanState` and the bounded part of an `IssuerBook`
(protection buckets and their parts per counterparty, open orders). Arrays
list their fields in the order the functions below write them;
`streams.live.table_rows` puts these in table rows. Amounts are decimal
strings, dates ISO strings: exact round trips, never floats. Imports the
standard library and `hedger`.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from hedger.events import Side
from hedger.issuer import BucketKey, IssuerBook, OpenOrder, Source
from hedger.loans import LoanState


def loan_to_json(state: LoanState) -> list[Any]:
    """A loan state as a compact JSON array."""
    return [
        state.issuer_id,
        state.last_sequence,
        state.currency,
        str(state.outstanding),
        state.maturity.isoformat(),
        state.closed,
    ]


def loan_from_json(data: list[Any]) -> LoanState:
    """Inverse of `loan_to_json`."""
    issuer, seq, currency, outstanding, maturity, closed = data
    return LoanState(
        issuer, seq, currency, Decimal(outstanding), date.fromisoformat(maturity), closed
    )


def aggregate_to_json(book: IssuerBook) -> dict[str, Any]:
    """The bounded part of an issuer's book: protection buckets and open orders.

    Exposure totals and maturities are not here: they are rebuilt from the
    loans' own keys, so a loan event writes only its loan.
    """
    return {
        "buckets": [
            [k.maturity.isoformat(), k.currency, k.doc_clause, k.source.value, str(net)]
            for k, net in book.buckets.items()
        ],
        "parts": [
            [
                k.maturity.isoformat(),
                k.currency,
                k.doc_clause,
                k.source.value,
                {seller: str(amount) for seller, amount in parts.items()},
            ]
            for k, parts in book.parts.items()
        ],
        "open_orders": [
            [
                o.order_id,
                o.side.value,
                o.maturity.isoformat(),
                o.currency,
                o.doc_clause,
                str(o.remaining),
                sorted(o.applied_events),
                None if o.as_of is None else o.as_of.isoformat(),
                o.seq,
                o.expired,
            ]
            for o in book.open_orders.values()
        ],
    }


def load_aggregate(book: IssuerBook, data: dict[str, Any]) -> None:
    """Fill a fresh book's buckets and open orders from JSON."""
    book.invalidate()
    book.buckets = {
        BucketKey(date.fromisoformat(m), c, d, Source(s)): Decimal(net)
        for m, c, d, s, net in data["buckets"]
    }
    book.parts = {
        BucketKey(date.fromisoformat(m), c, d, Source(s)): {
            seller: Decimal(amount) for seller, amount in parts.items()
        }
        for m, c, d, s, parts in data["parts"]
    }
    book.open_orders = {
        order_id: OpenOrder(
            order_id,
            Side(side),
            date.fromisoformat(m),
            c,
            d,
            Decimal(remaining),
            set(events),
            None if as_of is None else date.fromisoformat(as_of),
            seq,
            expired,
        )
        for order_id, side, m, c, d, remaining, events, as_of, seq, expired in data["open_orders"]
    }
