"""`hedger demo` without a broker: the demo log's desk-clock ticks and the v2 live view.

The view is rendered from a hand-written Prometheus exposition: a group in
breach and one with no state yet, a blocked seller, a seller without a
limit, cancels sent and expired orders still open, the last tick's date.
"""

from __future__ import annotations

import io
import json
import re
from decimal import Decimal
from typing import Any

from rich.console import Console

from hedger.engine import HedgingEngine
from hedger.outcomes import Status
from streams.cli.demo_feed import SAMPLE, demo_log, read_demo_log
from streams.cli.demo_view import View, parse_metrics
from tests.factories import booked, make_config, report


def _record(topic: str, value: Any, key: str | None = None) -> dict[str, Any]:
    return {"topic": topic, "key": key, "value": value}


def _names(records: list[dict[str, Any]]) -> list[str]:
    names = []
    for record in records:
        value = record["value"]
        if record["topic"] == "desk-clock":
            names.append(value["event_id"])
        else:
            names.append(value["loan_id"] if isinstance(value, dict) else "bad")
    return names


def _booking_days(records: list[dict[str, Any]]) -> list[str]:
    """The dates of the bookings that have one (the sample holds malformed payloads too)."""
    return [
        r["value"]["occurred_at"][:10]
        for r in records
        if r["topic"] == "loan-bookings" and isinstance(r["value"], dict)
        if isinstance(r["value"].get("occurred_at"), str)
    ]


def test_a_tick_follows_each_weekday_s_bookings_and_weekends_get_none() -> None:
    # 2026-03-06 is a Friday, 03-07/08 the weekend, 03-10 a Tuesday without bookings.
    log = [
        _record("loan-bookings", booked("b1", "5000000", day="2026-03-06")),
        _record("loan-bookings", booked("b2", "5000000", day="2026-03-06")),
        _record("cds-executions", report("o#1", "filled", "5000000", day="2026-03-06")),
        _record("loan-bookings", booked("b3", "5000000", day="2026-03-07")),
        _record("loan-bookings", "not json {"),
        _record("loan-bookings", booked("b4", "5000000", day="2026-03-09")),
        _record("loan-bookings", booked("b5", "5000000", day="2026-03-11")),
    ]
    out = list(demo_log(log))
    assert _names(out) == [
        "b1",
        "b2",
        "tick-2026-03-06",
        "b3",
        "bad",
        "b4",
        "tick-2026-03-09",
        "tick-2026-03-10",
        "b5",
        "tick-2026-03-11",
    ]
    assert out[2] == {
        "topic": "desk-clock",
        "value": {
            "schema_version": 1,
            "event_id": "tick-2026-03-06",
            "event_type": "clock.tick",
            "occurred_at": "2026-03-06T23:59:59.999Z",
        },
    }
    # the bot takes them as clock ticks at their day (SPEC §2, §10)
    engine = HedgingEngine(make_config())
    for record in out:
        if record["topic"] == "desk-clock":
            outcome = engine.process("desk-clock", record["value"])
            assert outcome.status is Status.APPLIED, outcome
            assert outcome.changes.tick == record["value"]["event_id"]


def test_the_sample_month_gets_25_ticks_each_after_its_day() -> None:
    sample = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    out = read_demo_log()
    ticks = [r["value"] for r in out if r["topic"] == "desk-clock"]
    # 2026-03-02 (a Monday) to 2026-04-03 (a Friday): five weeks of weekdays;
    # the last booking, on Saturday 2026-04-04, has no tick.
    assert len(ticks) == 25
    assert (ticks[0]["event_id"], ticks[-1]["event_id"]) == ("tick-2026-03-02", "tick-2026-04-03")
    assert "tick-2026-03-07" not in {t["event_id"] for t in ticks}  # a Saturday
    assert [r for r in out if r["topic"] != "desk-clock"] == [
        r for r in sample if r["topic"] == "loan-bookings"
    ]
    for n, record in enumerate(out):
        if record["topic"] != "desk-clock":
            continue
        day = record["value"]["occurred_at"][:10]
        assert _booking_days(out[: n + 1]).count(day) == _booking_days(out).count(day)
        assert all(later > day for later in _booking_days(out[n:]))


METRICS = """\
# TYPE hedger_events_total counter
hedger_events_total{outcome="applied",topic="loan-bookings"} 180.0
hedger_events_total{outcome="applied",topic="desk-clock"} 25.0
# TYPE hedger_issuer_exposure_base gauge
hedger_issuer_exposure_base{issuer="META"} 6.5e+09
# TYPE hedger_issuer_residual_base gauge
hedger_issuer_residual_base{issuer="META"} 5.4e+09
# TYPE hedger_issuer_limit_base gauge
hedger_issuer_limit_base{issuer="META"} 6e+09
# TYPE hedger_issuer_halted gauge
hedger_issuer_halted{issuer="META"} 0.0
hedger_issuer_halted{issuer="HYPERION"} 0.0
# TYPE hedger_group_residual_base gauge
hedger_group_residual_base{group="META-GROUP"} 7.7e+09
# TYPE hedger_group_limit_base gauge
hedger_group_limit_base{group="META-GROUP"} 7e+09
hedger_group_limit_base{group="NBIS-GROUP"} 7e+08
# TYPE hedger_group_in_breach gauge
hedger_group_in_breach{group="META-GROUP"} 1.0
# TYPE hedger_seller_exposure_base gauge
hedger_seller_exposure_base{seller="BOREAL-LIFE"} 7.19e+08
hedger_seller_exposure_base{seller="ATLAS-RE"} 3e+08
hedger_seller_exposure_base{seller="NO-LIMIT-BANK"} 2.5e+08
# TYPE hedger_seller_limit_base gauge
hedger_seller_limit_base{seller="BOREAL-LIFE"} 6e+08
hedger_seller_limit_base{seller="ATLAS-RE"} 1.5e+09
# TYPE hedger_seller_blocked gauge
hedger_seller_blocked{seller="BOREAL-LIFE"} 1.0
hedger_seller_blocked{seller="ATLAS-RE"} 0.0
hedger_seller_blocked{seller="NO-LIMIT-BANK"} 0.0
# TYPE hedger_cancel_requests_total counter
hedger_cancel_requests_total 3.0
# TYPE hedger_expired_orders_open gauge
hedger_expired_orders_open 1.0
# TYPE hedger_clock_last_tick_timestamp_seconds gauge
hedger_clock_last_tick_timestamp_seconds 1.775260799999e+09
"""


def _row(text: str, *cells: str) -> None:
    """A table row holding these cells in order, with any cells between them."""
    pattern = r"│\s*" + r"\s*│(?:[^│\n]*│)*?\s*".join(re.escape(c) for c in cells) + r"\s*│"
    assert re.search(pattern, text), (cells, text)


def test_metrics_become_decimals() -> None:
    snapshot = parse_metrics(METRICS)
    assert snapshot.events == Decimal(205)
    assert snapshot.groups["META-GROUP"]["residual_base"] == Decimal("7700000000")
    assert snapshot.sellers["BOREAL-LIFE"]["exposure_base"] == Decimal("719000000")
    assert "limit_base" not in snapshot.sellers["NO-LIMIT-BANK"]
    assert (snapshot.cancels, snapshot.expired_open) == (Decimal(3), Decimal(1))
    assert str(snapshot.last_tick) == "2026-04-03"  # 1775260799 = 2026-04-03T23:59:59Z


def test_the_view_shows_groups_sellers_blocked_and_cancels() -> None:
    view = View()
    view.published, view.ticks = 190, 25
    view.metrics = parse_metrics(METRICS)
    view.take_order(
        {
            "action": "new",
            "order_id": "ev-00010#1",
            "issuer_id": "CRWV",
            "side": "BUY_PROTECTION",
            "notional": "5000000",
            "reason": "limit_breach",
        }
    )
    view.take_order(
        {
            "action": "cancel",
            "order_id": "tick-2026-03-20:CRWV#1",
            "issuer_id": "CRWV",
            "reason": "expired",
            "trigger_event_id": "tick-2026-03-27",
            "as_of": "2026-03-27T23:59:59.999Z",
        }
    )
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(view.render(12))
    text = console.export_text()
    assert "published 190 + 25 ticks  processed 205" in text
    assert "orders 1  execution reports 0" in text  # the cancel is not a new order
    assert (
        "desk clock: last tick 2026-04-03  cancels sent 3  expired still open 1  "
        "blocked sellers: BOREAL-LIFE"
    ) in text
    _row(text, "META", "6,500m", "5,400m", "6,000m", "90%", "ok")
    _row(text, "HYPERION", "–", "–", "–", "no state yet")
    # groups: R_G, L_G, R_G / L_G, state
    _row(text, "META-GROUP", "7,700m", "7,000m", "110%", "BREACH")
    _row(text, "NBIS-GROUP", "–", "700m", "no state yet")
    # sellers: exposure, limit, exposure / limit, state
    _row(text, "BOREAL-LIFE", "719m", "600m", "120%", "BLOCKED")
    _row(text, "ATLAS-RE", "300m", "1,500m", "20%", "ok")
    _row(text, "NO-LIMIT-BANK", "250m", "no limit", "ok")
    # the orders topic, newest first: the cancel request, then the buy
    _row(text, "tick-2026-03-20:CRWV#1", "CRWV", "CANCEL", "expired")
    _row(text, "ev-00010#1", "CRWV", "BUY", "5,000,000", "limit_breach")
    assert text.index("tick-2026-03-20:CRWV#1") < text.index("ev-00010#1")


# -- v2.1: the quote feed and the price line ---------------------------------


def test_the_quote_feed_widens_one_name_past_its_guard_and_brings_it_back() -> None:
    from streams.cli.demo_feed import QuoteFeed

    records = read_demo_log(feed=QuoteFeed((1, 3, 5, 7, 10)))
    quotes = [r["value"] for r in records if r["topic"] == "cds-quotes"]
    # every quote is dated the day it is published on, before that day's first booking
    first_of_day: dict[str, int] = {}
    for n, record in enumerate(records):
        if record["topic"] == "loan-bookings" and isinstance(record["value"], dict):
            first_of_day.setdefault(record["value"]["occurred_at"][:10], n)
    for n, record in enumerate(records):
        if record["topic"] == "cds-quotes":
            day = record["value"]["as_of_date"]
            assert record["value"]["occurred_at"].startswith(day)
            assert n < first_of_day[day]
    crwv = [
        Decimal(q["spread_bps"])
        for q in quotes
        if q["issuer_id"] == "CRWV" and q["tenor_years"] == 5
    ]
    # desk-v21.toml guards CRWV at 900bp: 650 for 16 days, 1040 for four, then 650 again
    assert crwv[:22] == [Decimal(650)] * 16 + [Decimal(1040)] * 4 + [Decimal(650)] * 2
    widened = [q["as_of_date"] for q in quotes if Decimal(q["spread_bps"]) > 900]
    assert sorted(set(widened)) == ["2026-03-18", "2026-03-19", "2026-03-20", "2026-03-21"]
    assert {q["tenor_years"] for q in quotes} == {1, 3, 5, 7, 10}
    # without a feed, the log is the v2 demo log
    assert not [r for r in read_demo_log() if r["topic"] == "cds-quotes"]


def test_the_view_shows_quotes_and_withheld_legs() -> None:
    text = (
        'hedger_quote_spread_bps{issuer="CRWV",tenor="5"} 1040.0\n'
        'hedger_quote_spread_bps{issuer="CRWV",tenor="3"} 832.0\n'
        'hedger_quote_spread_bps{issuer="MSFT",tenor="5"} 35.0\n'
        'hedger_withheld_legs_total{issuer="CRWV",reason="spread_above_max"} 2.0\n'
        'hedger_withheld_legs_total{issuer="NBIS",reason="spread_above_max"} 1.0\n'
    )
    snapshot = parse_metrics(text)
    assert snapshot.quotes == {
        "CRWV": {"5": Decimal("1040.0"), "3": Decimal("832.0")},
        "MSFT": {"5": Decimal("35.0")},
    }
    assert snapshot.withheld == {"spread_above_max": Decimal("3.0")}
    view = View()
    view.published, view.ticks, view.quotes = 20, 3, 70
    view.metrics = snapshot
    view.take_order(
        {
            "action": "withhold",
            "order_id": "ev-00042#1",
            "issuer_id": "CRWV",
            "side": "BUY_PROTECTION",
            "notional": "25000000",
            "reason": "spread_above_max",
        }
    )
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(view.render(5))
    out = console.export_text()
    assert "published 20 + 3 ticks  processed" in out
    assert "orders 0  execution reports 0" in out  # a withheld leg is no order
    assert "70 quotes; 5y (bp): CRWV 1040  MSFT 35  withheld buys: spread_above_max 3" in out
    assert re.search(
        r"ev-00042#1\s+│\s+CRWV\s+│\s+WITHHELD\s+│\s+25,000,000\s+│\s+spread_above_max", out
    )
