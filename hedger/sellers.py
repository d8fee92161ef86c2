"""What the desk owes each protection seller, and who is blocked (SPEC §13).

Owns: `SellerLedger`, which keeps every seller's exposure incrementally from
the part changes the issuer books report — per seller, the positive parts
summed per bucket maturity in base currency — and the blocked status, which
changes only when the engine evaluates it (after an applied report or
booking, for the sellers it touched; after a tick, for all). A seller's
exposure at D sums its maturities after D, never the parts of all units.
Also owns `SellerStatusChange`, the journal entry by which a live worker's
seller stage tells every unit partition of a status change. Imports the
standard library, pydantic and the core's own modules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, TypeAdapter

from hedger.config import HedgerConfig
from hedger.events import Identifier
from hedger.issuer import PartChange
from hedger.numbers import ZERO

# The journal entries of a live deployment's seller stage (SPEC §13): sellers
# span every unit, so the worker evaluates them in a stage keyed by seller
# and journals each status change to every unit partition, where it applies
# in journal order (and the replay of the journal applies it at the same place).
SELLER_STATUS_TOPIC = "hedger-seller-status"


class SellerStatusChange(BaseModel):
    """A seller became blocked or was freed, as evaluated after `event_id`."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    seller: Identifier
    blocked: bool
    event_id: Identifier


SELLER_STATUS_CHANGES: TypeAdapter[SellerStatusChange] = TypeAdapter(SellerStatusChange)


class SellerStatus(NamedTuple):
    """A seller's exposure against its limit at one as-of date."""

    seller: str
    exposure: Decimal
    limit: Decimal | None
    blocked: bool


class SellerLedger:
    """Seller exposures by maturity, and the blocked set as last evaluated."""

    __slots__ = ("blocked", "config", "exposures", "fx")

    def __init__(self, config: HedgerConfig) -> None:
        self.config = config
        self.fx: Mapping[str, Decimal] = config.fx
        # seller -> {bucket maturity: sum of the seller's positive parts x fx}
        self.exposures: dict[str, dict[date, Decimal]] = {s: {} for s in config.sellers}
        self.blocked: set[str] = set()

    def apply(self, change: PartChange) -> None:
        """Move one part: only its positive amount counts towards exposure."""
        delta = max(change.after, ZERO) - max(change.before, ZERO)
        by_maturity = self.exposures.get(change.seller)
        if by_maturity is None:
            by_maturity = self.exposures[change.seller] = {}
        if delta == ZERO:
            return
        total = by_maturity.get(change.maturity, ZERO) + delta * self.fx[change.currency]
        if total == ZERO:
            del by_maturity[change.maturity]
        else:
            by_maturity[change.maturity] = total

    def exposure(self, seller: str, as_of: date) -> Decimal:
        """`X_s` at D: positive parts of buckets maturing after D, in base currency."""
        total = ZERO
        for maturity, value in self.exposures.get(seller, {}).items():
            if maturity > as_of:
                total += value
        return total

    def status(self, seller: str, as_of: date) -> SellerStatus:
        """Exposure, limit and whether the seller is at or over its limit at D."""
        exposure = self.exposure(seller, as_of)
        limit = self.config.seller_limit(seller)
        return SellerStatus(seller, exposure, limit, limit is not None and exposure >= limit)

    def evaluate(
        self, sellers: Iterable[str], as_of: date
    ) -> tuple[list[SellerStatus], list[SellerStatus]]:
        """Re-evaluate these sellers at D: every status, and those whose blocked flag changed."""
        evaluated, changed = [], []
        for seller in sellers:
            status = self.status(seller, as_of)
            evaluated.append(status)
            if status.blocked != (seller in self.blocked):
                changed.append(status)
                if status.blocked:
                    self.blocked.add(seller)
                else:
                    self.blocked.discard(seller)
        return evaluated, changed

    def known(self) -> list[str]:
        """Every seller configured or that ever had a part, sorted by id."""
        return sorted(self.exposures)

    def report(self, as_of: date | None) -> list[SellerStatus]:
        """The seller report of SPEC §9, evaluated afresh at D (no events: nothing held)."""
        return [
            self.status(seller, as_of) if as_of is not None else self._empty(seller)
            for seller in self.known()
        ]

    def _empty(self, seller: str) -> SellerStatus:
        limit = self.config.seller_limit(seller)
        return SellerStatus(seller, ZERO, limit, limit is not None and limit <= ZERO)
