"""The v2.1 part of the end-of-replay summary: quotes held, withheld legs, JTD and CS01.

Owns: rendering the held quotes, the buy legs the guard withheld (by reason)
and the risk report's top issuers as rich tables. Presentation only; the
figures come from the core (`HedgingEngine.quotes`, `risk_report`). Imports
rich, the standard library, `hedger` and `streams.offline.replay`.
"""

from __future__ import annotations

from decimal import Decimal

from rich.console import Console
from rich.table import Table

from hedger.engine import HedgingEngine
from hedger.risk_report import IssuerRisk
from streams.offline.replay import ReplayStats

TOP_ISSUERS = 20  # rows of the JTD/CS01 table; the risk report file has them all
TOP_QUOTES = 20


def _money(value: Decimal | None) -> str:
    if value is None:
        return "-"
    return f"{value.quantize(Decimal('0.01')):,}"


def quotes_table(engine: HedgingEngine) -> Table:
    """The quotes held at the end, most recent first, and how many older ones were ignored."""
    quotes = engine.quotes
    held = [] if quotes is None else list(quotes.held.values())
    held.sort(key=lambda q: (q.as_of_date, q.issuer_id, q.tenor_years), reverse=True)
    title = f"Quotes held: {len(held):,} (issuer, tenor); {engine.older_quotes:,} older ignored"
    table = Table(title=title, title_justify="left")
    for header in ("issuer", "tenor", "spread bp", "recovery", "as of"):
        table.add_column(header, justify="left" if header in ("issuer", "as of") else "right")
    for q in held[:TOP_QUOTES]:
        table.add_row(
            q.issuer_id, f"{q.tenor_years}Y", q.spread_bps, q.recovery, q.as_of_date.isoformat()
        )
    return table


def withheld_table(stats: ReplayStats) -> Table:
    """Buy legs the guard withheld, by reason (SPEC §14.8)."""
    table = Table(title="Withheld buys", title_justify="left")
    table.add_column("reason")
    table.add_column("legs", justify="right")
    for reason in ("no_quote", "spread_above_max"):
        table.add_row(reason, f"{stats.withheld.get(reason, 0):,}")
    return table


def risk_table(lines: list[IssuerRisk], title: str = "Jump-to-default and CS01") -> Table:
    """The issuers with the largest JTD (SPEC §14.9), with their CS01 and quote."""
    top = sorted(lines, key=lambda line: (-line.jtd, line.issuer))[:TOP_ISSUERS]
    shown = f"{title} (top {len(top)} of {len(lines)} by JTD)"
    table = Table(title=shown, title_justify="left")
    for header in (
        "issuer",
        "group",
        "exposure",
        "protection",
        "recovery",
        "JTD",
        "CS01",
        "tenor",
        "spread bp",
    ):
        table.add_column(header, justify="left" if header in ("issuer", "group") else "right")
    for line in top:
        table.add_row(
            line.issuer,
            line.group_id or "-",
            _money(line.exposure),
            _money(line.protection),
            line.recovery,
            _money(line.jtd),
            _money(line.cs01),
            f"{line.hedge_tenor_years}Y",
            line.quoted_spread_bps or "-",
        )
    return table


def print_price_summary(console: Console, stats: ReplayStats, engine: HedgingEngine) -> None:
    """The v2.1 tables: printed only when the configuration has `[pricing]`."""
    if engine.config.pricing is None:
        return
    console.print(quotes_table(engine))
    console.print(withheld_table(stats))
    console.print(risk_table(engine.risk_report()))
