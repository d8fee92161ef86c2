"""Human-readable summaries for the terminal: per-issuer risk and replay counts.

Owns: rendering `RiskView`s and `ReplayStats` as rich tables. Presentation
only; figures come from the core. Imports rich, the standard library,
`hedger` and `streams.offline.replay`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

from rich.console import Console
from rich.table import Table

from hedger.issuer import RiskView
from hedger.numbers import to_cents
from hedger.orders import HedgeOrder
from streams.offline.replay import ReplayStats


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


def print_summary(
    console: Console,
    stats: ReplayStats,
    views: Iterable[RiskView],
    halted: Callable[[str], bool],
) -> None:
    """The end-of-replay summary: outcomes, dead letters, orders, issuers."""
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
            sorted((f"{side} / {reason}", n) for (side, reason), n in stats.orders.items()),
        )
    )
    console.print(issuer_table(views, halted))
