"""Stage 4, keyed by protection seller: exposure across all units, and who is blocked.

Owns: the seller stage of a live worker (SPEC §13 across partitions). Sellers
span every hedging unit, so the unit stage sends each part a fill or a
protection booking moved (seller, bucket maturity, currency, part before and
after) to the `hedger-seller-parts` topic keyed by seller; desk-clock ticks
reach every partition of it too. This stage keeps each seller's exposure by
maturity with the core's `SellerLedger`, evaluates the seller's limit at the
event's as-of date, and when a blocked status changes journals a
`SellerStatusChange` to every journal partition, where each unit partition
applies it in journal order, so the replay of the journal reproduces every
`excluded_counterparties` list.

Each part message is applied exactly once: the unit stage writes it in the
transaction of the journal entry that moved it, and this stage applies it in
a transaction with its own offset, so neither a crash nor a rebalance
repeats it. One key per seller (a `SellerRow` of `streams.live.table_rows`:
exposure by maturity, status, and the as-of date it was last evaluated at,
so that a restarted worker shows every seller's figures in /metrics again)
and one per applied tick and partition (a tick published twice is applied
once, SPEC §3): no write is O(all parts).

May import the standard library, orjson, `hedger`, `streams.observer`,
`streams.settings` (topic names) and `streams.live.envelopes`/`stages`/
`table_rows`.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import orjson

from hedger.config import HedgerConfig
from hedger.decoding import decode_event
from hedger.events import CLOCK_TOPIC, ClockTick
from hedger.issuer import PartChange
from hedger.outcomes import Rejected
from hedger.sellers import SELLER_STATUS_TOPIC, SellerLedger, SellerStatus
from streams.live.envelopes import SELLER_PART_TOPIC, Entry, decode_entry, encode_entry
from streams.live.stages import BufferedTable, Output, _unreadable
from streams.live.table_rows import (
    SELLER_TICK_VALUE,
    SellerRow,
    decode_seller_rows,
    seller_key,
    seller_tick_key,
)
from streams.observer import Observer, Origin
from streams.settings import TopicNames


class SellerStage:
    """Seller exposures and limits for this worker's seller-parts partitions."""

    def __init__(
        self,
        config: HedgerConfig,
        table: BufferedTable,
        topics: TopicNames,
        observer: Observer,
        journal_partitions: int,
    ) -> None:
        self.config, self.table, self.topics, self.observer = config, table, topics, observer
        self.journal_partitions = journal_partitions
        self.ledger = SellerLedger(config)
        self.partition_of: dict[str, int] = {}  # seller -> its seller-parts partition
        self.loaded = False
        # Seller-parts partitions this worker owns (None: all the table holds):
        # the memory store keeps keys of partitions that moved to another worker.
        self.owned: set[int] | None = None

    def invalidate(self) -> None:
        """Forget the in-memory ledger: rebuilt from the table on the next message."""
        self.loaded = False

    def load(self) -> None:
        """Rebuild the ledger from the table now (else on the next message)."""
        self._ensure_loaded()

    def _ensure_loaded(self) -> None:
        if self.loaded:
            return
        self.ledger = SellerLedger(self.config)
        self.partition_of = {}
        shown: dict[str, date] = {}
        for seller, row in decode_seller_rows(list(self.table.data.items())):
            if self.owned is not None and row.partition not in self.owned:
                continue
            self.partition_of[seller] = row.partition
            self.ledger.exposures[seller] = row.exposure
            if row.blocked:
                self.ledger.blocked.add(seller)
            if row.evaluated_as_of is not None:
                shown[seller] = date.fromisoformat(row.evaluated_as_of)
        self.loaded = True
        # Report each seller as its last evaluation did: after a restart the
        # gauges started at zero (configured sellers) or absent, and stayed so
        # until the seller's next part or tick, though the table had its exposure.
        for seller, as_of in sorted(shown.items()):
            self.observer.on_seller(self.ledger.status(seller, as_of), False)

    # -- processing ----------------------------------------------------

    def handle(self, partition: int, offset: int, payload: bytes) -> list[Output]:
        self._ensure_loaded()
        internal = Origin(self.topics.seller_parts, partition, offset)
        try:
            entry = decode_entry(payload)
            if entry.topic == CLOCK_TOPIC:
                tick = decode_event(CLOCK_TOPIC, entry.value, self.config)
                assert isinstance(tick, ClockTick)
                return self._tick(partition, tick, internal)
            if entry.topic != SELLER_PART_TOPIC:
                raise ValueError(f"not a seller-parts entry: {entry.topic}")
            part = orjson.loads(entry.value)
            return self._part(partition, part, internal)
        except (Rejected, ValueError, KeyError, TypeError, AssertionError) as exc:
            return [_unreadable(self.topics, self.observer, "sellers", exc, internal, payload)]

    def _part(self, partition: int, part: dict[str, Any], internal: Origin) -> list[Output]:
        seller = part["seller"]
        row = self._row(seller)
        change = PartChange(
            seller,
            date.fromisoformat(part["maturity"]),
            part["currency"],
            Decimal(part["before"]),
            Decimal(part["after"]),
        )
        self.ledger.apply(change)
        self.partition_of[seller] = partition
        row.evaluated_as_of = part["as_of"]
        # Evaluated after the event that moved the part (SPEC §13): the unit
        # partitions apply any change from their next entry on.
        _, changed = self.ledger.evaluate([seller], date.fromisoformat(part["as_of"]))
        status = self.ledger.status(seller, date.fromisoformat(part["as_of"]))
        self._write(partition, seller, row)
        self.observer.on_seller(status, bool(changed))
        return self._status_outputs(changed, internal)

    def _tick(self, partition: int, tick: ClockTick, internal: Origin) -> list[Output]:
        key = seller_tick_key(partition, tick.event_id)
        sellers = sorted(s for s, p in self.partition_of.items() if p == partition)
        if self.table.get(key) is not None:
            return []  # a tick published twice: applied once
        evaluated, changed = self.ledger.evaluate(sellers, tick.as_of)
        changed_ids = {status.seller for status in changed}
        as_of = tick.as_of.isoformat()
        for status in evaluated:
            self.observer.on_seller(status, status.seller in changed_ids)
            row = self._row(status.seller)
            if status.seller not in changed_ids and row.evaluated_as_of == as_of:
                continue  # nothing of its key changes
            # evaluated at the tick: what /metrics shows after a restart
            row.evaluated_as_of = as_of
            self._write(partition, status.seller, row)
        self.table.put(partition, key, SELLER_TICK_VALUE)
        return self._status_outputs(changed, internal)

    def _row(self, seller: str) -> SellerRow:
        stored = self.table.get(seller_key(seller))
        return SellerRow() if stored is None else SellerRow.decode(stored)

    def _write(self, partition: int, seller: str, row: SellerRow) -> None:
        row.partition = partition
        row.exposure = self.ledger.exposures.get(seller, {})
        row.blocked = seller in self.ledger.blocked
        self.table.put(partition, seller_key(seller), row.encode())

    def _status_outputs(self, statuses: list[SellerStatus], source: Origin) -> list[Output]:
        """One journal entry per status change, to every journal partition."""
        outputs = []
        for status in statuses:
            value = json.dumps(
                {"seller": status.seller, "blocked": status.blocked, "event_id": _cause(source)}
            )
            entry = encode_entry(Entry(SELLER_STATUS_TOPIC, value, source))
            key = status.seller.encode()
            outputs += [
                Output(self.topics.journal, key, entry, p) for p in range(self.journal_partitions)
            ]
        return outputs


def _cause(source: Origin) -> str:
    return f"{source.topic}:{source.partition}:{source.offset}"
