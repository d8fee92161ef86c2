"""The hedge decision of one hedging unit (SPEC §5, §6, §7, §10, §12, §13).

Owns: `UnitDecision`, one decision of one unit at one as-of date: the issuer
step (buy on a breach, or unwind the bot's own buckets, capped for a group
member by the group's room), the group step (members by descending residual
under the decision's budget), leg numbering across the decision, and the
figures every order reports. Expiry (§11) runs before it, in the engine.
Pure: it reads issuer books and views; the caller records the orders as
open. Imports the standard library and the core's own modules.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import NamedTuple

from hedger.calendar import standard_maturity, year_fraction
from hedger.config import HedgerConfig, HedgeSettings, RiskSettings
from hedger.events import Side
from hedger.issuer import IssuerBook, RiskView, residual
from hedger.numbers import ZERO
from hedger.orders import HedgeOrder, OrderReason
from hedger.recognition import QUARTER


class Trigger(NamedTuple):
    """The applied event a decision follows, and the prefix of its order ids.

    The prefix is the event id, or `{tick_event_id}:{unit_id}` for a tick (§10).
    """

    event_id: str
    occurred_at: str
    as_of: date
    prefix: str


def choose_tenor(hedge: HedgeSettings, as_of: date, maturity_years: Decimal) -> tuple[int, date]:
    """The shortest tenor whose standard maturity has `yf >= T - 0.25`, else the longest."""
    tenors = sorted(hedge.tenors_years)
    for tenor in tenors:
        maturity = standard_maturity(as_of, tenor)
        if year_fraction(as_of, maturity) >= maturity_years - QUARTER:
            return tenor, maturity
    return tenors[-1], standard_maturity(as_of, tenors[-1])


def split_legs(notional: Decimal, hedge: HedgeSettings) -> list[Decimal]:
    """Legs of `max_order_notional`; a last leg below `min_order_notional` is raised to it."""
    full, rest = divmod(notional, hedge.max_order_notional)
    legs = [hedge.max_order_notional] * int(full)
    if rest > ZERO:
        legs.append(max(rest, hedge.min_order_notional))
    return legs


def lots_for(need: Decimal, unit_value: Decimal, hedge: HedgeSettings) -> Decimal:
    """`ceil(need / u / lot) x lot`: the notional whose recognised value covers `need`."""
    lots = (need / unit_value / hedge.lot_size).to_integral_value(rounding=ROUND_CEILING)
    return lots * hedge.lot_size


def buy_notional(
    need: Decimal, unit_value: Decimal, hedge: HedgeSettings, budget: Decimal | None = None
) -> Decimal:
    """`N = min(max(ceil(need / u / lot) x lot, min_order), budget)`.

    The budget is what the decision has left (SPEC §5); a whole one by default.
    """
    notional = lots_for(need, unit_value, hedge)
    cap = hedge.max_decision_notional if budget is None else budget
    return min(max(notional, hedge.min_order_notional), cap)


def step_due(
    exposure: Decimal, coverage: Decimal, resid: Decimal, limit: Decimal, risk: RiskSettings
) -> Side | None:
    """Which issuer step is due (SPEC §5): BUY over the trigger, SELL to unwind, or none.

    A buy when `R > L x trigger_ratio`; else an unwind when `C > 0` and
    (`C > E` or `R < L x unwind_ratio`).
    """
    if resid > limit * risk.trigger_ratio:
        return Side.BUY
    if coverage > ZERO and (coverage > exposure or resid < limit * risk.unwind_ratio):
        return Side.SELL
    return None


class _Draft(NamedTuple):
    """A leg before the decision ends: its figures after need every leg of the decision."""

    issuer_id: str
    side: Side
    notional: Decimal
    currency: str
    maturity: date
    tenor: int | None
    doc_clause: str
    reason: OrderReason
    unit_value: Decimal
    counterparty: str | None


class UnitDecision:
    """One decision of one hedging unit; steps run in the SPEC's order, each seeing the last."""

    __slots__ = (
        "added",
        "blocked",
        "books",
        "budget",
        "config",
        "drafts",
        "group_id",
        "group_limit",
        "trigger",
        "views",
    )

    def __init__(
        self,
        config: HedgerConfig,
        group_id: str | None,
        books: Mapping[str, IssuerBook],
        trigger: Trigger,
        blocked: Collection[str],
    ) -> None:
        self.config, self.group_id, self.books = config, group_id, books
        self.trigger, self.blocked = trigger, blocked
        # Every member's measures when the decision starts (after expiry);
        # later steps add the legs emitted so far through `added`.
        as_of = trigger.as_of
        self.views: dict[str, RiskView] = {}
        for issuer, book in books.items():
            self.views[issuer] = book.view(config, as_of)
        self.added: dict[str, Decimal] = {}  # per member: value of its legs so far
        self.budget = config.hedge.max_decision_notional
        self.drafts: list[_Draft] = []
        self.group_limit = None if group_id is None else config.group_limit(group_id)

    # -- measures with the legs emitted so far -----------------------------

    def coverage(self, issuer: str) -> Decimal:
        """C of a member with every leg of this decision counted."""
        view = self.views[issuer]
        added = self.added.get(issuer)
        return view.coverage if added is None else view.coverage + added

    def residual(self, issuer: str) -> Decimal:
        """R of a member with every leg of this decision counted."""
        view = self.views[issuer]
        added = self.added.get(issuer)
        return view.residual if added is None else residual(view.exposure, view.coverage + added)

    def group_residual(self) -> Decimal:
        """`R_G`: the members' residuals with every leg of this decision counted."""
        return sum((self.residual(issuer) for issuer in self.views), ZERO)

    # -- steps ---------------------------------------------------------------

    def issuer_step(self, issuer: str) -> None:
        """SPEC §5: buy on a breach, else unwind surplus (the caller skips halted issuers)."""
        view = self.views[issuer]
        risk = self.config.risk
        limit, exposure = view.limit, view.exposure
        added = self.added.get(issuer)
        if added is None:  # the first step of this member: its view as it stands
            coverage, resid = view.coverage, view.residual
        else:
            coverage = view.coverage + added
            resid = residual(exposure, coverage)
        step = step_due(exposure, coverage, resid, limit, risk)
        if step is Side.BUY:
            self._buy(view, resid - limit * risk.target_ratio, OrderReason.LIMIT_BREACH)
        elif step is Side.SELL:
            reason = (
                OrderReason.OVER_HEDGED if coverage > exposure else OrderReason.BELOW_UNWIND_BAND
            )
            excess = coverage - max(exposure - limit * risk.target_ratio, ZERO)
            if self.group_limit is not None:
                # A member's unwind may raise R_G by at most the group's room.
                room = max(self.group_limit * risk.target_ratio - self.group_residual(), ZERO)
                excess = min(excess, max(coverage - exposure, ZERO) + room)
            self._unwind(issuer, view, reason, excess)

    def group_step(self, halted: Collection[str]) -> None:
        """SPEC §12: cover the group's breach on its members by descending residual."""
        if self.group_limit is None:
            return
        risk = self.config.risk
        if self.group_residual() <= self.group_limit * risk.trigger_ratio:
            return
        need = self.group_residual() - self.group_limit * risk.target_ratio
        # Descending residual, ties by ascending issuer id.
        candidates = sorted(
            (-self.residual(issuer), issuer)
            for issuer in self.views
            if issuer not in halted and self.residual(issuer) > ZERO
        )
        for _, issuer in candidates:
            member_residual = self.residual(issuer)
            covered = self._buy(
                self.views[issuer], min(need, member_residual), OrderReason.GROUP_LIMIT_BREACH
            )
            if covered is None:
                return  # the budget is spent
            need -= min(covered, member_residual)
            if need <= ZERO:
                return

    def _buy(self, view: RiskView, need: Decimal, reason: OrderReason) -> Decimal | None:
        """Legs covering `need` within the budget; the value they add, or None when spent."""
        hedge = self.config.hedge
        tenor, maturity = choose_tenor(hedge, view.as_of, view.maturity_years)
        currency = view.exposure_currency
        unit_value = view.recognition.unit_value(maturity, currency, hedge.doc_clause)
        if unit_value == ZERO:  # pragma: no cover - a standard maturity is always > 3 months away
            return None
        notional = buy_notional(need, unit_value, hedge, self.budget)
        if notional < hedge.min_order_notional:
            return None
        legs = split_legs(notional, hedge)
        total = sum(legs, ZERO)
        self.budget -= total
        for leg in legs:
            self.drafts.append(
                _Draft(
                    view.issuer_id,
                    Side.BUY,
                    leg,
                    currency,
                    maturity,
                    tenor,
                    hedge.doc_clause,
                    reason,
                    unit_value,
                    None,
                )
            )
        value = total * unit_value
        self.added[view.issuer_id] = self.added.get(view.issuer_id, ZERO) + value
        return value

    def _unwind(self, issuer: str, view: RiskView, reason: OrderReason, excess: Decimal) -> None:
        book = self.books[issuer]
        hedge = self.config.hedge
        lot = hedge.lot_size
        for key, net in book.bot_buckets():
            unit_value = view.recognition.unit_value(key.maturity, key.currency, key.doc_clause)
            if unit_value == ZERO:
                continue
            available = net - book.open_sells_on(key)
            lots = min(
                (available / lot).to_integral_value(rounding=ROUND_FLOOR),
                (excess / unit_value / lot).to_integral_value(rounding=ROUND_FLOOR),
            )
            notional = lots * lot
            if notional < hedge.min_order_notional:
                continue
            self.drafts.append(
                _Draft(
                    issuer,
                    Side.SELL,
                    notional,
                    key.currency,
                    key.maturity,
                    None,
                    key.doc_clause,
                    reason,
                    unit_value,
                    book.largest_part(key),
                )
            )
            excess -= notional * unit_value
            self.added[issuer] = self.added.get(issuer, ZERO) - notional * unit_value

    # -- the records ---------------------------------------------------------

    def _residual_emitted(self, withheld: Collection[int]) -> dict[str, Decimal]:
        """Each member's R with only the legs emitted as orders counted (SPEC §14.8)."""
        added: dict[str, Decimal] = {}
        for leg, draft in enumerate(self.drafts):
            if leg not in withheld:
                value = draft.notional * draft.unit_value
                signed = value if draft.side is Side.BUY else -value
                added[draft.issuer_id] = added.get(draft.issuer_id, ZERO) + signed
        after = {}
        for issuer, view in self.views.items():
            extra = added.get(issuer)
            after[issuer] = (
                view.residual if extra is None else residual(view.exposure, view.coverage + extra)
            )
        return after

    def orders(self, withheld: Collection[int] = ()) -> list[HedgeOrder]:
        """The decision's legs as orders, numbered from 1, with their before/after figures.

        `withheld` names the legs (by index) that the guard keeps back: they
        are still returned, but the after-figures count only the others.
        """
        if not self.drafts:
            return []
        config, trigger = self.config, self.trigger
        hedge = config.hedge
        after = self._residual_emitted(withheld) if withheld else None
        group_before = group_after = None
        if self.group_limit is not None:
            group_before = sum((view.residual for view in self.views.values()), ZERO)
            group_after = self.group_residual() if after is None else sum(after.values(), ZERO)
        orders = []
        for leg_no, draft in enumerate(self.drafts, start=1):
            view = self.views[draft.issuer_id]
            excluded: tuple[str, ...] = ()
            if draft.side is Side.BUY:
                excluded = tuple(sorted(set(self.blocked).union(config.wrong_way(view.issuer_id))))
            orders.append(
                HedgeOrder(
                    order_id=f"{trigger.prefix}#{leg_no}",
                    issuer_id=draft.issuer_id,
                    side=draft.side,
                    notional=draft.notional,
                    currency=draft.currency,
                    maturity_date=draft.maturity,
                    tenor_years=draft.tenor,
                    coupon_bps=config.coupon_of(draft.issuer_id),
                    doc_clause=draft.doc_clause,
                    seniority=hedge.seniority,
                    reason=draft.reason,
                    trigger_event_id=trigger.event_id,
                    as_of=trigger.occurred_at,
                    exposure=view.exposure,
                    coverage=view.coverage,
                    residual_before=view.residual,
                    residual_after=(
                        self.residual(draft.issuer_id) if after is None else after[draft.issuer_id]
                    ),
                    limit=view.limit,
                    group_id=self.group_id,
                    group_residual_before=group_before,
                    group_residual_after=group_after,
                    group_limit=self.group_limit,
                    excluded_counterparties=excluded,
                    counterparty=draft.counterparty,
                )
            )
        return orders
