"""Contract v2.1 rules through the per-event step: quotes, price fields, the guard, JTD/CS01.

Figures are hand-computed from the base configuration of tests/factories.py
(ACME, limit 100m: buys bring R down to 90m) or taken from SPEC §14.11.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from hedger.config import ConfigError, config_from_mapping
from hedger.engine import HedgingEngine, Outcome
from hedger.outcomes import Reason, Status
from tests.factories import booked, config_data, make_config, protection, quote, repaid, report

LOANS, EXECUTIONS, QUOTES, CLOCK = "loan-bookings", "cds-executions", "cds-quotes", "desk-clock"
PRICE_FIELDS = (
    "quote_tenor_years",
    "quoted_spread_bps",
    "recovery",
    "quote_as_of",
    "upfront_fraction",
    "upfront_amount",
)


def priced(**pricing: Any) -> HedgingEngine:
    return HedgingEngine(make_config(pricing={"discount_rate": "0.03", **pricing}))


def wires(outcome: Outcome) -> list[dict[str, Any]]:
    assert outcome.status is Status.APPLIED, outcome
    return [record.to_wire() for record in outcome.records]


def tick(event_id: str, day: str) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": event_id,
        "event_type": "clock.tick",
        "occurred_at": f"{day}T18:00:00Z",
    }


# A 340m loan to 2030-01-01 booked Tuesday 3 February 2026: R = 340m over L = 100m,
# need 340m - 90m = 250m of 5Y (T = 1428/365 years; the 3Y, 2028-12-20, is too short),
# maturity 2030-12-20: the META contract of SPEC §14.11 example 2.
BREACH = {"notional": "340000000", "maturity": "2030-01-01", "day": "2026-02-03"}


def test_an_order_carries_the_price_of_the_meta_example() -> None:
    engine = priced()
    assert engine.process(QUOTES, quote("55")).status is Status.APPLIED
    (order,) = wires(engine.process(LOANS, booked("L1", **BREACH)))
    assert order["action"] == "new"
    assert (order["notional"], order["maturity_date"], order["tenor_years"]) == (
        "250000000",
        "2030-12-20",
        5,
    )
    assert order["coupon_bps"] == 100
    assert {f: order[f] for f in PRICE_FIELDS} == {
        "quote_tenor_years": 5,
        "quoted_spread_bps": "55",
        "recovery": "0.40",
        "quote_as_of": "2026-02-02",
        "upfront_fraction": "-0.02018692",
        "upfront_amount": "-5046729.34",
    }


def test_without_pricing_quotes_are_no_input_and_orders_have_no_price_fields() -> None:
    plain = HedgingEngine(make_config())
    assert "cds-quotes" not in plain.input_topics
    outcome = plain.process(QUOTES, quote("55"))
    assert outcome.status is Status.DEAD_LETTER  # only a direct call: a replay skips the line
    (v2,) = wires(plain.process(LOANS, booked("L1", **BREACH, event_id="b-1")))
    assert not set(PRICE_FIELDS) & v2.keys()
    engine = priced()
    engine.process(QUOTES, quote("55"))
    (v21,) = wires(engine.process(LOANS, booked("L1", **BREACH, event_id="b-1")))
    assert {k: v21[k] for k in v2} == v2  # pricing only adds fields


def test_the_issuer_coupon_overrides_pricing_and_hedge_coupons() -> None:
    engine = priced(coupon_bps=500, issuers={"ACME": {"coupon_bps": 100}})
    assert engine.config.coupon_of("ACME") == 100
    assert engine.config.coupon_of("OTHER") == 500
    assert HedgingEngine(make_config()).config.coupon_of("ACME") == 100


def test_no_usable_quote_leaves_the_quote_fields_null_and_the_buy_goes_out() -> None:
    engine = priced()  # no max_spread_bps: never guarded
    (order,) = wires(engine.process(LOANS, booked("L1", **BREACH)))
    assert order["action"] == "new"
    assert {f: order[f] for f in PRICE_FIELDS} == {
        "quote_tenor_years": 5,
        "quoted_spread_bps": None,
        "recovery": None,
        "quote_as_of": None,
        "upfront_fraction": None,
        "upfront_amount": None,
    }


def test_a_buy_without_a_quote_is_withheld_and_never_becomes_an_order() -> None:
    engine = priced(max_spread_bps="400")
    (record,) = wires(engine.process(LOANS, booked("L1", **BREACH, event_id="b-1")))
    assert record["action"] == "withhold"
    assert (record["reason"], record["order_reason"]) == ("no_quote", "limit_breach")
    assert record["order_id"] == "b-1#1"
    assert record["notional"] == "250000000"
    # not emitted: R stays where it was, nothing is open
    assert record["residual_before"] == record["residual_after"] == "340000000.00"
    assert engine.books["ACME"].open_orders == {}
    dead = engine.process(EXECUTIONS, report("b-1#1", "filled", "250000000", day="2026-02-04"))
    assert (dead.status, dead.reason) == (Status.DEAD_LETTER, Reason.UNKNOWN_ORDER)
    # the next decision sizes afresh, and withholds again under its own order id
    (again,) = wires(engine.process(CLOCK, tick("k-1", "2026-02-04")))
    assert (again["action"], again["order_id"]) == ("withhold", "k-1:ACME#1")


def test_the_guard_lets_a_spread_equal_to_the_maximum_pass() -> None:
    engine = priced(issuers={"ACME": {"max_spread_bps": "55"}})
    engine.process(QUOTES, quote("55"))
    (order,) = wires(engine.process(LOANS, booked("L1", **BREACH)))
    assert order["action"] == "new"
    assert order["upfront_fraction"] == "-0.02018692"


def test_a_spread_above_the_maximum_is_withheld_with_its_price() -> None:
    engine = priced(max_spread_bps="54.9999")
    engine.process(QUOTES, quote("55"))
    (record,) = wires(engine.process(LOANS, booked("L1", **BREACH)))
    assert (record["action"], record["reason"]) == ("withhold", "spread_above_max")
    assert record["quoted_spread_bps"] == "55"
    assert record["upfront_fraction"] == "-0.02018692"
    assert record["upfront_amount"] == "-5046729.34"


def test_a_sell_is_never_withheld_even_without_a_quote() -> None:
    engine = priced(max_spread_bps="400")  # quote_ttl_days 5 by default
    engine.process(QUOTES, quote("55"))
    (buy,) = wires(engine.process(LOANS, booked("L1", **BREACH, event_id="b-1")))
    assert buy["action"] == "new"
    engine.process(EXECUTIONS, report("b-1#1", "filled", "250000000", day="2026-02-04"))
    # Friday 20 Feb: 300m repaid leaves E = 40m against C = 250m (u = 1): over hedged,
    # excess 250m - max(40m - 90m, 0) = 250m; the 2026-02-02 quote is 18 days old.
    (sell,) = wires(engine.process(LOANS, repaid("L1", 2, "300000000", day="2026-02-20")))
    assert (sell["action"], sell["side"], sell["reason"]) == (
        "new",
        "SELL_PROTECTION",
        "over_hedged",
    )
    assert sell["notional"] == "250000000"
    # before the March roll the 5Y standard maturity is 2030-12-20 itself
    assert sell["quote_tenor_years"] == 5
    assert sell["quoted_spread_bps"] is None and sell["upfront_amount"] is None


# -- quotes held and usable (SPEC §14.1, §3) --------------------------------------


def test_an_older_quote_is_ignored_and_a_same_day_one_replaces() -> None:
    engine = priced()
    assert engine.process(QUOTES, quote("55", event_id="q-1")).status is Status.APPLIED
    older = engine.process(QUOTES, quote("80", as_of="2026-02-01", event_id="q-2"))
    assert older.status is Status.DUPLICATE and engine.older_quotes == 1
    assert engine.process(QUOTES, quote("80", as_of="2026-02-01", event_id="q-2")).status is (
        Status.DUPLICATE
    )
    assert engine.older_quotes == 1  # the second q-2 is a duplicate, not an older quote
    assert engine.quotes is not None
    held = engine.quotes.usable("ACME", 5, date(2026, 2, 2))
    assert held is not None and held.spread_bps == "55"
    same_day = engine.process(QUOTES, quote("60", event_id="q-3", day="2026-02-03"))
    assert same_day.status is Status.APPLIED
    held = engine.quotes.usable("ACME", 5, date(2026, 2, 3))
    assert held is not None and held.spread_bps == "60"


def test_a_dead_lettered_quote_id_is_not_remembered() -> None:
    engine = priced()
    bad = engine.process(QUOTES, quote("55", tenor=31, event_id="q-1"))
    assert (bad.status, bad.reason) == (Status.DEAD_LETTER, Reason.SCHEMA_VIOLATION)
    assert engine.process(QUOTES, quote("55", event_id="q-1")).status is Status.APPLIED


@pytest.mark.parametrize(
    ("day", "usable"),
    [
        ("2026-02-02", True),
        ("2026-02-07", True),  # D - 5 = as_of_date
        ("2026-02-08", False),  # one day too old
    ],
)
def test_a_quote_is_usable_for_quote_ttl_days(day: str, usable: bool) -> None:
    engine = priced()
    engine.process(QUOTES, quote("55"))
    assert engine.quotes is not None
    found = engine.quotes.usable("ACME", 5, date.fromisoformat(day))
    assert (found is not None) is usable


def test_a_quote_without_recovery_takes_the_configured_one_as_written() -> None:
    engine = priced(recovery="0.4")
    engine.process(QUOTES, quote("55"))
    engine.process(QUOTES, quote("70", tenor=3, recovery="0.3500"))
    assert engine.quotes is not None
    five = engine.quotes.usable("ACME", 5, date(2026, 2, 2))
    three = engine.quotes.usable("ACME", 3, date(2026, 2, 2))
    assert five is not None and five.recovery == "0.4"
    assert three is not None and three.recovery == "0.3500"


@pytest.mark.parametrize(
    "change",
    [
        {"tenor_years": 0},
        {"tenor_years": 31},
        {"tenor_years": 5.0},
        {"tenor_years": True},
        {"spread_bps": "0"},
        {"spread_bps": "10000.0001"},
        {"spread_bps": "1e3"},
        {"spread_bps": "37.12345"},
        {"spread_bps": 55},
        {"spread_bps": "-5"},
        {"recovery": "0.96"},
        {"recovery": None},
        {"recovery": ".4"},
        {"as_of_date": "2026-02-03"},  # after D
        {"as_of_date": "2026-02-30"},
        {"issuer_id": "ACME-GROUP"},  # a group id
        {"event_type": "loan.booked"},
    ],
)
def test_bad_quotes_are_schema_violations(change: dict[str, Any]) -> None:
    engine = HedgingEngine(
        make_config(pricing={"discount_rate": "0.03"}, groups={"ACME-GROUP": {"members": ["B"]}})
    )
    event = quote("55")
    event.update(change)
    outcome = engine.process(QUOTES, event)
    assert (outcome.status, outcome.reason) == (Status.DEAD_LETTER, Reason.SCHEMA_VIOLATION)


def test_a_quote_on_another_topic_is_a_schema_violation() -> None:
    outcome = priced().process(LOANS, quote("55"))
    assert (outcome.status, outcome.reason) == (Status.DEAD_LETTER, Reason.SCHEMA_VIOLATION)


def test_the_largest_spread_and_recovery_pass() -> None:
    engine = priced()
    assert engine.process(QUOTES, quote("10000", recovery="0.95")).status is Status.APPLIED
    assert engine.process(QUOTES, quote("0.0001", tenor=1, recovery="0")).status is (Status.APPLIED)


# -- configuration (SPEC §8) -------------------------------------------------------


@pytest.mark.parametrize(
    ("pricing", "names"),
    [
        ({"recovery": "0.4"}, "pricing.discount_rate"),
        ({"discount_rate": "0.26"}, "pricing.discount_rate"),
        ({"discount_rate": 0.03}, "pricing.discount_rate"),
        ({"discount_rate": "-0.01"}, "pricing.discount_rate"),
        ({"discount_rate": "0.03", "recovery": "0.96"}, "pricing.recovery"),
        ({"discount_rate": "0.03", "coupon_bps": 0}, "pricing.coupon_bps"),
        ({"discount_rate": "0.03", "coupon_bps": 10001}, "pricing.coupon_bps"),
        ({"discount_rate": "0.03", "quote_ttl_days": -1}, "pricing.quote_ttl_days"),
        ({"discount_rate": "0.03", "max_spread_bps": 400}, "pricing.max_spread_bps"),
        ({"discount_rate": "0.03", "max_spred_bps": "400"}, "pricing.max_spred_bps"),
        (
            {"discount_rate": "0.03", "issuers": {"ACME": {"max_spread": "4"}}},
            "pricing.issuers.ACME.max_spread",
        ),
    ],
)
def test_a_bad_pricing_table_stops_the_bot_naming_the_field(
    pricing: dict[str, Any], names: str
) -> None:
    data = config_data()
    data["pricing"] = pricing
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")):
        config_from_mapping(data)


def test_the_hedge_coupon_must_be_a_pricing_coupon_when_pricing_takes_it() -> None:
    data = config_data(hedge={"coupon_bps": 10001})
    config_from_mapping(data)  # v2: any positive coupon
    data["pricing"] = {"discount_rate": "0.03"}
    with pytest.raises(ConfigError, match=r"pricing\.coupon_bps"):
        config_from_mapping(data)
    data["pricing"]["coupon_bps"] = 500
    assert config_from_mapping(data).coupon_of("ACME") == 500


def test_a_pricing_issuer_id_must_not_be_a_group_id() -> None:
    data = config_data(groups={"G": {"members": ["A", "B"]}})
    data["pricing"] = {"discount_rate": "0", "issuers": {"G": {"coupon_bps": 500}}}
    with pytest.raises(ConfigError, match="group id"):
        config_from_mapping(data)


def test_pricing_defaults() -> None:
    config = make_config(pricing={"discount_rate": "0"})
    assert config.pricing is not None
    assert (config.pricing.recovery, config.pricing.quote_ttl_days) == ("0.40", 5)
    assert config.max_spread_of("ACME") is None


# -- the risk report (SPEC §9, §14.9) ---------------------------------------------


def _risk_engine(engine: HedgingEngine) -> HedgingEngine:
    # E = 340m; external protection: 100m USD to 2031-06-20 and 50m EUR (fx 1.08) to
    # 2026-03-20 (within its last coupon period on 3 Feb 2026: c1 is 20 March itself).
    engine.process(EXECUTIONS, protection("100000000", day="2026-02-03"))
    engine.process(
        EXECUTIONS,
        protection("50000000", currency="EUR", maturity="2026-03-20", day="2026-02-03"),
    )
    engine.process(LOANS, booked("L1", **BREACH))
    return engine


def test_the_risk_report_without_pricing() -> None:
    engine = _risk_engine(HedgingEngine(make_config()))
    (line,) = [r.to_wire() for r in engine.risk_report()]
    # P = 100m + 50m x 1.08 = 154m; jtd = 0.60 x (340m - 154m) = 111.6m
    assert line == {
        "issuer": "ACME",
        "group_id": None,
        "as_of_date": "2026-02-03",
        "exposure": "340000000.00",
        "protection": "154000000.00",
        "recovery": "0.40",
        "jtd": "111600000.00",
        "hedge_tenor_years": 5,
        "quoted_spread_bps": None,
        "quote_as_of": None,
        "cs01": None,
    }


def test_the_risk_report_takes_the_quote_recovery_and_measures_cs01() -> None:
    engine = priced()
    engine.process(QUOTES, quote("55", recovery="0.35"))
    _risk_engine(engine)
    (line,) = engine.risk_report()
    assert line.recovery == "0.35"
    assert line.jtd == Decimal("0.65") * Decimal(186_000_000)  # 120.9m
    assert (line.quoted_spread_bps, line.quote_as_of) == ("55", date(2026, 2, 2))
    assert line.cs01 is not None and line.cs01 > 0  # bought protection gains as spreads widen
    # only the 2031 bucket counts: CS01 per unit of it is about its risky duration x 1bp
    per_unit = line.cs01 / Decimal(100_000_000)
    assert Decimal("0.0004") < per_unit < Decimal("0.0006")


def test_an_order_past_quantlibs_calendar_has_its_quote_but_no_upfront() -> None:
    """QuantLib's dates end with 2199: the 1Y of 2 June 2199 (2200-06-20) has no price."""
    engine = priced()
    engine.process(QUOTES, quote("55", as_of="2199-06-01", day="2199-06-01", tenor=1))
    # T = 212/365 years: the 1Y is long enough
    loan = booked("L1", "340000000", maturity="2199-12-31", day="2199-06-02")
    (order,) = wires(engine.process(LOANS, loan))
    assert (order["action"], order["tenor_years"], order["maturity_date"]) == (
        "new",
        1,
        "2200-06-20",
    )
    assert (order["quoted_spread_bps"], order["quote_as_of"]) == ("55", "2199-06-01")
    assert order["upfront_fraction"] is None and order["upfront_amount"] is None
    (line,) = engine.risk_report()
    assert line.quoted_spread_bps == "55" and line.cs01 is None  # no fit past 2199
