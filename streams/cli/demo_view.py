"""The demo's live view: what the terminal shows, read from the worker's /metrics.

Owns: parsing one scrape of /metrics into Decimal figures (`Snapshot`) and
rendering the issuers, groups (R_G against L_G), sellers (exposure against
limit, BLOCKED), the v2 status line (last tick, cancels, expired orders
still open), the v2.1 price line (the 5-year quotes held, withheld buy legs
by reason) and the recent orders, cancels, withheld legs and fills. Imports rich,
prometheus_client's parser and the standard library.
"""

from __future__ import annotations

import dataclasses
import math
import time
import urllib.request
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Group
from rich.table import Table
from rich.text import Text

BAR = 24
BAR_FULL = Decimal("1.5")  # a full bar is 150% of the limit
MILLION = Decimal(1_000_000)
ZERO = Decimal(0)


@dataclass
class Snapshot:
    """One scrape of the worker's /metrics, as the view shows it (money in Decimal)."""

    events: Decimal = ZERO
    issuers: dict[str, dict[str, Decimal]] = dataclasses.field(default_factory=dict)
    groups: dict[str, dict[str, Decimal]] = dataclasses.field(default_factory=dict)
    sellers: dict[str, dict[str, Decimal]] = dataclasses.field(default_factory=dict)
    cancels: Decimal | None = None  # cancel requests sent
    expired_open: Decimal | None = None  # expired orders no report has closed yet
    last_tick: date | None = None  # D of the last desk-clock tick applied
    # v2.1: quoted par spread (bp) per issuer and tenor; withheld buy legs per reason
    quotes: dict[str, dict[str, Decimal]] = dataclasses.field(default_factory=dict)
    withheld: dict[str, Decimal] = dataclasses.field(default_factory=dict)


def parse_metrics(text: str) -> Snapshot:
    """The view's figures from a Prometheus exposition of the worker's metrics.

    Each value becomes the Decimal of its shortest decimal form, so what the
    view computes (ratios, millions) is Decimal arithmetic on the figures
    the worker exposed; non-finite values are left out.
    """
    snapshot = Snapshot()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not math.isfinite(sample.value):
                continue
            value = Decimal(repr(sample.value))
            name, labels = sample.name, sample.labels
            if name == "hedger_events_total":
                snapshot.events += value
            elif name.startswith("hedger_issuer_") and "issuer" in labels:
                key = name.removeprefix("hedger_issuer_")
                if "source" in labels:
                    key += "_" + labels["source"]
                snapshot.issuers.setdefault(labels["issuer"], {})[key] = value
            elif name.startswith("hedger_group_") and "group" in labels:
                key = name.removeprefix("hedger_group_")
                snapshot.groups.setdefault(labels["group"], {})[key] = value
            elif name.startswith("hedger_seller_") and "seller" in labels:
                key = name.removeprefix("hedger_seller_")
                snapshot.sellers.setdefault(labels["seller"], {})[key] = value
            elif name == "hedger_quote_spread_bps" and "issuer" in labels:
                snapshot.quotes.setdefault(labels["issuer"], {})[labels.get("tenor", "")] = value
            elif name == "hedger_withheld_legs_total" and "reason" in labels:
                reason = labels["reason"]
                snapshot.withheld[reason] = snapshot.withheld.get(reason, ZERO) + value
            elif name == "hedger_cancel_requests_total":
                snapshot.cancels = value
            elif name == "hedger_expired_orders_open":
                snapshot.expired_open = value
            elif name == "hedger_clock_last_tick_timestamp_seconds" and value > 0:
                snapshot.last_tick = datetime.fromtimestamp(float(value), UTC).date()
    return snapshot


def _millions(value: Decimal | None) -> str:
    return "–" if value is None else f"{value / MILLION:,.0f}m"


def _count(value: Decimal | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def _bar(ratio: Decimal, style: str) -> Text:
    """`ratio` as a bar of BAR cells; `|` marks the limit (ratio 1), a full bar is 150%."""
    filled = min(int(ratio * BAR / BAR_FULL), BAR)
    mark = int(BAR / BAR_FULL)
    return Text(
        "".join("|" if i == mark else ("█" if i < filled else "·") for i in range(BAR + 1)),
        style=style,
    )


def _table(title: str, *columns: str, right: tuple[str, ...] = ()) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left")
    return table


def issuer_table(issuers: dict[str, dict[str, Decimal]]) -> Table:
    """Each issuer's residual R against its limit L, and whether it is halted or in breach."""
    table = _table(
        "Residual against limit (bar: residual / limit, | = limit)",
        *("issuer", "exposure", "residual", "limit", "residual / limit", "utilisation", "state"),
        right=("exposure", "residual", "limit", "utilisation"),
    )
    for issuer, figures in sorted(issuers.items()):
        state = (
            "HALTED" if figures.get("halted") else "BREACH" if figures.get("in_breach") else "ok"
        )
        style = "red" if state == "BREACH" else "yellow" if state == "HALTED" else "green"
        limit = figures.get("limit_base")
        if not limit:  # a configured issuer without an event yet: only its halt is known
            table.add_row(
                issuer, "–", "–", "–", "", "", "HALTED" if state == "HALTED" else "no state yet"
            )
            continue
        ratio = figures.get("residual_base", ZERO) / limit
        table.add_row(
            issuer,
            _millions(figures.get("exposure_base", ZERO)),
            _millions(figures.get("residual_base", ZERO)),
            _millions(limit),
            _bar(ratio, style),
            f"{ratio:4.0%}",
            state,
        )
    return table


def group_table(groups: dict[str, dict[str, Decimal]]) -> Table:
    """Each group of connected clients: R_G (its members' residuals) against L_G (SPEC §12)."""
    table = _table(
        "Groups of connected clients: R_G against L_G (bar: R_G / L_G, | = limit)",
        *("group", "residual R_G", "limit L_G", "R_G / L_G", "utilisation", "state"),
        right=("residual R_G", "limit L_G", "utilisation"),
    )
    for group, figures in sorted(groups.items()):
        residual, limit = figures.get("residual_base"), figures.get("limit_base")
        if residual is None or not limit:  # no member has had a decision yet
            table.add_row(group, "–", _millions(limit), "", "", "no state yet")
            continue
        ratio = residual / limit
        breach = bool(figures.get("in_breach"))
        style = "red" if breach else "green"
        table.add_row(
            group,
            _millions(residual),
            _millions(limit),
            _bar(ratio, style),
            f"{ratio:4.0%}",
            Text("BREACH" if breach else "ok", style=style),
        )
    return table


def seller_table(sellers: dict[str, dict[str, Decimal]]) -> Table:
    """Each protection seller's exposure X_s against its limit L_s, blocked ones marked (§13)."""
    table = _table(
        "Sellers: exposure against limit (bar: exposure / limit, | = limit; BLOCKED: no more buys)",
        *("seller", "exposure", "limit", "exposure / limit", "utilisation", "state"),
        right=("exposure", "limit", "utilisation"),
    )
    for seller, figures in sorted(sellers.items()):
        exposure, limit = figures.get("exposure_base", ZERO), figures.get("limit_base")
        blocked = bool(figures.get("blocked"))
        style = "red" if blocked else "green"
        state = Text("BLOCKED" if blocked else "ok", style="bold red" if blocked else style)
        if not limit:  # a seller without a limit is never blocked
            table.add_row(seller, _millions(exposure), "no limit", "", "", state)
            continue
        ratio = exposure / limit
        bar = _bar(ratio, style)
        table.add_row(seller, _millions(exposure), _millions(limit), bar, f"{ratio:4.0%}", state)
    return table


def v2_status(snapshot: Snapshot) -> Text:
    """The desk clock's last tick, cancels sent, expired orders still open, blocked sellers."""
    blocked = sorted(s for s, figures in snapshot.sellers.items() if figures.get("blocked"))
    tick = snapshot.last_tick.isoformat() if snapshot.last_tick else "none yet"
    return Text(
        f"desk clock: last tick {tick}  cancels sent {_count(snapshot.cancels)}  "
        f"expired still open {_count(snapshot.expired_open)}  "
        f"blocked sellers: {', '.join(blocked) or 'none'}"
    )


def price_status(snapshot: Snapshot, published: int = 0) -> Text:
    """v2.1: quotes published, the 5-year quote held per issuer, the buy legs withheld."""
    quotes = "  ".join(
        f"{issuer} {tenors['5']:.0f}"
        for issuer, tenors in sorted(snapshot.quotes.items())
        if "5" in tenors
    )
    withheld = ", ".join(
        f"{reason} {count:.0f}" for reason, count in sorted(snapshot.withheld.items())
    )
    style = "bold red" if snapshot.withheld else ""
    line = Text(f"{published} quotes; 5y (bp): {quotes or 'none yet'}  withheld buys: ")
    line.append(withheld or "none", style=style)
    return line


def orders_table(records: Iterable[dict[str, Any]]) -> Table:
    """Records of the orders topic, newest first: new orders and cancel requests (§7)."""
    table = _table("Recent orders and cancels", "order_id", "issuer", "side", "notional", "reason")
    for record in records:
        if record.get("action") == "cancel":
            table.add_row(
                record["order_id"],
                record["issuer_id"],
                Text("CANCEL", style="magenta"),
                "",
                record.get("reason", ""),
            )
            continue
        if record.get("action") == "withhold":  # a buy leg the spread guard held back
            table.add_row(
                record["order_id"],
                record["issuer_id"],
                Text("WITHHELD", style="bold red"),
                f"{int(record['notional']):,}",
                record.get("reason", ""),
            )
            continue
        table.add_row(
            record["order_id"],
            record["issuer_id"],
            record["side"].removesuffix("_PROTECTION"),
            f"{int(record['notional']):,}",
            record["reason"],
        )
    return table


class View:
    """What the live view shows, fed by the topics and by /metrics."""

    def __init__(self) -> None:
        self.orders: deque[dict[str, Any]] = deque(maxlen=8)
        self.fills: deque[dict[str, Any]] = deque(maxlen=8)
        self.order_count = 0  # new orders on the orders topic (cancel requests: /metrics)
        self.report_count = 0
        self.published = 0  # bookings
        self.ticks = 0  # desk-clock ticks
        self.quotes = 0  # v2.1: quotes published
        self.metrics = Snapshot()
        self.rate = 0.0
        self._last: tuple[float, Decimal] | None = None

    def take_order(self, record: dict[str, Any]) -> None:
        self.orders.append(record)
        if record.get("action", "new") == "new":  # not a cancel request or a withheld leg
            self.order_count += 1

    def take_report(self, record: dict[str, Any]) -> None:
        if record.get("event_type", "execution.report") == "execution.report":
            self.fills.append(record)
            self.report_count += 1

    def scrape(self, url: str) -> None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own port
                text = response.read().decode()
        except OSError:
            return
        snapshot = parse_metrics(text)
        now = time.monotonic()
        if self._last is not None and now > self._last[0]:
            self.rate = float(snapshot.events - self._last[1]) / (now - self._last[0])
        self._last = (now, snapshot.events)
        self.metrics = snapshot

    def head(self, elapsed: float) -> Text:
        """Two status lines: the flow, then the v2 figures."""
        head = Text(
            f"cds-hedger demo  {elapsed:5.0f}s  published {self.published} + {self.ticks} ticks  "
            f"processed {self.metrics.events:.0f} ({self.rate:.1f} ev/s)  "
            f"orders {self.order_count}  execution reports {self.report_count}\n",
            style="bold",
        )
        head.append_text(v2_status(self.metrics))
        if self.quotes or self.metrics.quotes or self.metrics.withheld:
            head.append("\n")
            head.append_text(price_status(self.metrics, self.quotes))
        return head

    def render(self, elapsed: float) -> Group:
        parts: list[Any] = [self.head(elapsed), issuer_table(self.metrics.issuers)]
        if self.metrics.groups:
            parts.append(group_table(self.metrics.groups))
        if self.metrics.sellers:
            parts.append(seller_table(self.metrics.sellers))
        parts.append(orders_table(list(self.orders)[::-1]))
        fills = _table("Recent execution reports", "order_id", "status", "filled", "counterparty")
        for report in list(self.fills)[::-1]:
            fills.add_row(
                report["order_id"],
                report["status"],
                f"{int(report.get('filled_notional', '0').split('.')[0]):,}",
                report.get("counterparty", ""),
            )
        parts.append(fills)
        return Group(*parts)
