"""Human-readable summaries for the terminal: what needs action, and replay counts.

Owns: rendering `RiskView`s, groups, sellers and `ReplayStats` as rich
tables. A terminal shows what a person acts on — every issuer in breach or
halted, every group in breach, every blocked seller — then the `TOP` others
by utilisation, and counts; the full per-unit table is a file
(`streams.offline.unit_report`). Presentation only; figures come from the
core. Imports rich, the standard library, `hedger` and `streams.offline.replay`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

from rich.console import Console
from rich.table import Table

from hedger.engine import GroupView
from hedger.issuer import RiskView
from hedger.numbers import to_cents
from hedger.orders import HedgeOrder
from hedger.sellers import SellerStatus
from streams.offline.replay import ReplayStats

TOP = 20  # rows shown beyond those that need action, by utilisation


def _money(value: Decimal) -> str:
    whole, _, cents = to_cents(value).partition(".")
    return f"{int(whole):,}.{cents}"


def terminal() -> Console:
    """A console for stdout; wide enough for the tables when output is a file."""
    return Console() if sys.stdout.isatty() else Console(width=160)


def issuer_table(
    views: Iterable[RiskView], halted: Callable[[str], bool], title: str = "Issuer risk"
) -> Table:
    """Exposure, coverage, residual, limit and utilisation per issuer."""
    table = Table(title=title, title_justify="left")
    for header in ("issuer", "ccy", "exposure", "coverage", "residual", "limit", "utilisation"):
        table.add_column(header, justify="left" if header in ("issuer", "ccy") else "right")
    table.add_column("state")
    for view in views:
        utilisation = view.utilisation
        breach = view.residual > view.limit
        style = "bold red" if breach else None
        state = "HALTED" if halted(view.issuer_id) else "BREACH" if breach else "ok"
        table.add_row(
            view.issuer_id,
            view.exposure_currency,
            _money(view.exposure),
            _money(view.coverage),
            _money(view.residual),
            _money(view.limit),
            f"{utilisation * 100:.1f}%",
            state,
            style=style,
        )
    return table


def needing_action(
    views: Iterable[RiskView], halted: Callable[[str], bool], top: int = TOP
) -> tuple[list[RiskView], list[RiskView], int, int, int]:
    """Issuers in breach or halted, and the `top` others by utilisation; and the counts.

    Returns (action, top others, issuers, in breach, halted); each list by
    utilisation, highest first, ties by issuer id.
    """
    action: list[RiskView] = []
    others: list[RiskView] = []
    total = breaches = halts = 0
    for view in views:
        total += 1
        breach = view.residual > view.limit
        is_halted = halted(view.issuer_id)
        breaches += breach
        halts += is_halted
        (action if breach or is_halted else others).append(view)

    def by_utilisation(view: RiskView) -> tuple[Decimal, str]:
        return (-view.utilisation, view.issuer_id)

    action.sort(key=by_utilisation)
    return action, sorted(others, key=by_utilisation)[:top], total, breaches, halts


def counts_table(title: str, rows: Iterable[tuple[str, int]]) -> Table:
    """A two-column table of counts."""
    table = Table(title=title, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for what, count in rows:
        table.add_row(what, f"{count:,}")
    return table


def orders_table(orders: Sequence[HedgeOrder], title: str) -> Table:
    """Orders with their terms and the figures that explain them."""
    table = Table(title=title, title_justify="left")
    for header in (
        "order_id",
        "issuer",
        "side",
        "notional",
        "ccy",
        "maturity",
        "reason",
        "residual before",
        "residual after",
        "limit",
    ):
        table.add_column(header, justify="right" if header[0] in "nrl" else "left")
    for order in orders:
        table.add_row(
            order.order_id,
            order.issuer_id,
            order.side.value.removesuffix("_PROTECTION"),
            f"{order.notional:,}",
            order.currency,
            order.maturity_date.isoformat(),
            order.reason.value,
            _money(order.residual_before),
            _money(order.residual_after),
            _money(order.limit),
        )
    return table


def group_table(groups: Iterable[GroupView], title: str = "Group risk") -> Table:
    """R_G against L_G per group of connected clients (SPEC §12)."""
    table = Table(title=title, title_justify="left")
    for header in ("group", "residual R_G", "limit L_G", "utilisation", "state"):
        table.add_column(header, justify="left" if header in ("group", "state") else "right")
    for group in groups:
        table.add_row(
            group.group_id,
            _money(group.residual),
            _money(group.limit),
            f"{group.utilisation * 100:.1f}%",
            "BREACH" if group.in_breach else "ok",
            style="bold red" if group.in_breach else None,
        )
    return table


def seller_table(sellers: Iterable[SellerStatus], title: str = "Protection sellers") -> Table:
    """Exposure to each protection seller against its limit (SPEC §13)."""
    table = Table(title=title, title_justify="left")
    for header in ("seller", "exposure", "limit", "utilisation", "state"):
        table.add_column(header, justify="left" if header in ("seller", "state") else "right")
    for seller in sellers:
        limit = seller.limit
        table.add_row(
            seller.seller,
            _money(seller.exposure),
            "-" if limit is None else _money(limit),
            "-" if limit is None else f"{seller.exposure / limit * 100:.1f}%",
            "BLOCKED" if seller.blocked else "ok",
            style="bold red" if seller.blocked else None,
        )
    return table


def print_summary(
    console: Console,
    stats: ReplayStats,
    views: Iterable[RiskView],
    halted: Callable[[str], bool],
    groups: Sequence[GroupView] = (),
    sellers: Sequence[SellerStatus] = (),
    expired_open: int = 0,
) -> None:
    """The end-of-replay summary: outcomes, dead letters, orders, issuers, groups, sellers."""
    outcome_rows = sorted(stats.outcomes.items())
    if stats.skipped_topics:
        outcome_rows.append(("skipped (other topic)", stats.skipped_topics))
    if stats.control:
        outcome_rows.append(("control commands", stats.control))
    console.print(counts_table("Events by outcome", outcome_rows))
    console.print(counts_table("Dead letters by reason", sorted(stats.dead_letters.items())))
    console.print(
        counts_table(
            "Orders by side and reason",
            [
                *sorted((f"{side} / {reason}", n) for (side, reason), n in stats.orders.items()),
                ("cancel requests (orders expired)", stats.cancels),
                ("expired orders still open", expired_open),
            ],
        )
    )
    action, top, total, breaches, halts = needing_action(views, halted)
    console.print(
        issuer_table(
            action + top,
            halted,
            f"Issuer risk: {total:,} issuers, {breaches:,} in breach, {halts:,} halted "
            f"— those first, then the top {len(top):,} others by utilisation",
        )
    )
    if groups:
        in_breach = [g for g in groups if g.in_breach]
        others = sorted(
            (g for g in groups if not g.in_breach), key=lambda g: (-g.utilisation, g.group_id)
        )
        console.print(
            group_table(
                sorted(in_breach, key=lambda g: (-g.utilisation, g.group_id)) + others[:TOP],
                f"Group risk: {len(groups):,} groups, {len(in_breach):,} in breach "
                f"— those first, then the top {min(len(others), TOP):,} others by utilisation",
            )
        )
    if sellers:
        blocked = [s for s in sellers if s.blocked]
        rest = sorted(
            (s for s in sellers if not s.blocked),
            key=lambda s: (-(s.exposure / s.limit) if s.limit else Decimal(0), s.seller),
        )
        console.print(
            seller_table(
                blocked + rest[:TOP],
                f"Protection sellers: {len(sellers):,} sellers, {len(blocked):,} blocked "
                f"— those first, then the top {min(len(rest), TOP):,} others by utilisation",
            )
        )
