"""Buy and unwind decisions (SPEC §5) with hand-computed figures.

Common set-up unless a test says otherwise: issuer ACME with limit 100m,
trigger 1.00, target 0.90, unwind 0.60; D = 2026-01-02; the loan matures on
2028-01-02, 730 days later, so T = 2. The 3Y standard maturity 2028-12-20
is the shortest with yf >= T - 0.25, and outlives T, so u = 1 in USD.
"""

from decimal import Decimal

from hedger.config import HedgeSettings
from hedger.decision import buy_notional, split_legs
from hedger.engine import HedgingEngine
from hedger.outcomes import Status
from tests.factories import booked, cancelled, make_config, protection, repaid, report

LOAN_MATURITY = "2028-01-02"


def hedge(**overrides: str) -> HedgeSettings:
    return make_config(hedge=overrides).hedge


def orders_of(engine: HedgingEngine, topic: str, event: dict) -> list[dict]:
    outcome = engine.process(topic, event)
    assert outcome.status is Status.APPLIED, outcome
    return [order.to_wire() for order in outcome.orders]


def test_split_legs_of_max_order_notional() -> None:
    m = Decimal(1_000_000)
    assert split_legs(1000 * m, hedge()) == [250 * m] * 4
    assert split_legs(264 * m, hedge()) == [250 * m, 14 * m]
    assert split_legs(60 * m, hedge()) == [60 * m]


def test_last_leg_below_minimum_is_raised_to_it() -> None:
    m = Decimal(1_000_000)
    assert split_legs(252 * m, hedge()) == [250 * m, 5 * m]


def test_buy_notional_rounds_up_to_lots_then_floors_and_caps() -> None:
    m = Decimal(1_000_000)
    settings = hedge()
    assert buy_notional(Decimal("60000000.01"), Decimal(1), settings) == 61 * m
    assert buy_notional(Decimal("60000000"), Decimal("0.6"), settings) == 100 * m
    assert buy_notional(Decimal("3000000"), Decimal(1), settings) == 5 * m  # min order
    assert buy_notional(Decimal("5000000000"), Decimal(1), settings) == 1000 * m  # decision cap


def test_breach_buys_down_to_target() -> None:
    engine = HedgingEngine(make_config())
    (order,) = orders_of(engine, "loan-bookings", booked("L1", "150000000", maturity=LOAN_MATURITY))
    # need = 150m - 0.9 x 100m = 60m, u = 1
    assert order["side"] == "BUY_PROTECTION"
    assert order["notional"] == "60000000"
    assert order["maturity_date"] == "2028-12-20"
    assert order["tenor_years"] == 3
    assert order["currency"] == "USD"
    assert order["doc_clause"] == "MR14"
    assert order["reason"] == "limit_breach"
    assert order["exposure"] == "150000000.00"
    assert order["coverage"] == "0.00"
    assert order["residual_before"] == "150000000.00"
    assert order["residual_after"] == "90000000.00"
    assert order["limit"] == "100000000.00"


def test_no_buy_at_exactly_the_trigger() -> None:
    engine = HedgingEngine(make_config())
    assert (
        orders_of(engine, "loan-bookings", booked("L1", "100000000", maturity=LOAN_MATURITY)) == []
    )


def test_decision_cap_bounds_the_buy_and_legs_split() -> None:
    engine = HedgingEngine(make_config())
    orders = orders_of(engine, "loan-bookings", booked("L1", "1200000000", maturity=LOAN_MATURITY))
    # need 1110m is capped at max_decision_notional 1000m: 4 legs of 250m
    assert [o["notional"] for o in orders] == ["250000000"] * 4
    assert [o["order_id"] for o in orders] == [
        f"{orders[0]['trigger_event_id']}#{n}" for n in (1, 2, 3, 4)
    ]
    assert {o["residual_after"] for o in orders} == {"200000000.00"}


def test_last_leg_raised_shows_in_residual_after() -> None:
    engine = HedgingEngine(make_config())
    orders = orders_of(engine, "loan-bookings", booked("L1", "342000000", maturity=LOAN_MATURITY))
    # need 252m -> legs 250m + 2m raised to 5m: 255m bought, 87m left
    assert [o["notional"] for o in orders] == ["250000000", "5000000"]
    assert orders[0]["residual_after"] == "87000000.00"


def test_open_orders_count_as_coverage() -> None:
    engine = HedgingEngine(make_config())
    orders_of(engine, "loan-bookings", booked("L1", "150000000", maturity=LOAN_MATURITY))
    # E = 155m, C = 60m (open) -> R = 95m, under the trigger: no second buy
    assert orders_of(engine, "loan-bookings", booked("L2", "5000000", maturity=LOAN_MATURITY)) == []


def test_exposure_currency_and_maturity_drive_the_buy() -> None:
    # EUR 100m x 1.08 = 108m USD against 50m USD: EUR is the exposure currency.
    # T = 2 (latest maturity). need = 158m - 90m = 68m; u(EUR) = 1.08 -> 68/1.08 = 62.96 -> 63m
    engine = HedgingEngine(make_config())
    orders_of(engine, "loan-bookings", booked("L1", "50000000", maturity="2027-01-02"))
    (order,) = orders_of(
        engine, "loan-bookings", booked("L2", "100000000", currency="EUR", maturity=LOAN_MATURITY)
    )
    assert order["currency"] == "EUR"
    assert order["notional"] == "63000000"
    # 158m - 63m x 1.08 = 89.96m
    assert order["residual_after"] == "89960000.00"


def _hedged_book(fill: bool = True) -> tuple[HedgingEngine, str]:
    engine = HedgingEngine(make_config())
    (order,) = orders_of(engine, "loan-bookings", booked("L1", "150000000", maturity=LOAN_MATURITY))
    if fill:
        orders_of(engine, "cds-executions", report(order["order_id"], "filled", "60000000"))
    return engine, order["order_id"]


def test_over_hedged_unwinds_the_bot_bucket() -> None:
    engine, _ = _hedged_book()
    loan = engine.loans["L1"]
    (sell,) = orders_of(engine, "loan-bookings", repaid("L1", loan.last_sequence + 1, "100000000"))
    # E = 50m, C = 60m > E: excess = 60m - max(50m - 90m, 0) = 60m
    assert sell["side"] == "SELL_PROTECTION"
    assert sell["reason"] == "over_hedged"
    assert sell["notional"] == "60000000"
    assert sell["maturity_date"] == "2028-12-20"
    assert sell["tenor_years"] is None
    assert sell["residual_before"] == "0.00"
    assert sell["residual_after"] == "50000000.00"


def test_below_unwind_band_unwinds_the_excess_over_target() -> None:
    engine, _ = _hedged_book()
    (sell,) = orders_of(engine, "loan-bookings", repaid("L1", 2, "70000000"))
    # E = 80m, C = 60m, R = 20m < 60m: excess = 60m - max(80m - 90m, 0) = 60m
    assert sell["reason"] == "below_unwind_band"
    assert sell["notional"] == "60000000"
    assert sell["residual_after"] == "80000000.00"


def test_partial_unwind_keeps_protection_for_the_target() -> None:
    engine, _ = _hedged_book()  # E = 150m, C = 60m held, R = 90m
    # repay 10m: E = 140m, R = 80m, inside the band
    assert orders_of(engine, "loan-bookings", repaid("L1", 2, "10000000")) == []
    # repay 20m: E = 120m, R = 60m, not below 0.6 x 100m
    assert orders_of(engine, "loan-bookings", repaid("L1", 3, "20000000")) == []
    # repay 1m: E = 119m, R = 59m < 60m; excess = 60m - (119m - 90m) = 31m
    (sell,) = orders_of(engine, "loan-bookings", repaid("L1", 4, "1000000"))
    assert sell["notional"] == "31000000"
    assert sell["residual_after"] == "90000000.00"  # 119m - 29m


def test_open_sells_reduce_what_is_available() -> None:
    engine, _ = _hedged_book()
    (sell,) = orders_of(engine, "loan-bookings", repaid("L1", 2, "70000000"))
    assert sell["notional"] == "60000000"
    # the sell is open: coverage already excludes it, nothing left to unwind
    assert orders_of(engine, "loan-bookings", repaid("L1", 3, "1000000")) == []


def test_external_protection_is_never_unwound() -> None:
    engine = HedgingEngine(make_config())
    orders_of(engine, "cds-executions", protection("60000000", maturity="2028-12-20"))
    orders_of(engine, "loan-bookings", booked("L1", "150000000", maturity=LOAN_MATURITY))
    # C = 60m external, R = 90m: no buy; after repaying 140m, C > E but nothing is the bot's
    assert orders_of(engine, "loan-bookings", repaid("L1", 2, "140000000")) == []


def test_unwind_with_no_loans_left() -> None:
    engine, _ = _hedged_book()
    (sell,) = orders_of(engine, "loan-bookings", cancelled("L1", 2))
    # E = 0, T = 0: protection outlives T (u = 1); C = 60m > 0 = E: over_hedged
    assert sell["reason"] == "over_hedged"
    assert sell["notional"] == "60000000"
    assert sell["exposure"] == "0.00"
    assert sell["residual_after"] == "0.00"


def test_halted_issuer_updates_state_but_emits_nothing() -> None:
    engine = HedgingEngine(make_config(issuers={"ACME": {"limit": "100000000", "halted": True}}))
    assert (
        orders_of(engine, "loan-bookings", booked("L1", "500000000", maturity=LOAN_MATURITY)) == []
    )
    (view,) = engine.views()
    assert view.exposure == Decimal(500_000_000)


def test_partial_fill_moves_protection_and_keeps_order_open() -> None:
    engine, order_id = _hedged_book(fill=False)
    assert (
        orders_of(engine, "cds-executions", report(order_id, "partially_filled", "20000000")) == []
    )
    book = engine.books["ACME"]
    assert book.open_orders[order_id].remaining == Decimal(40_000_000)
    assert sum(book.buckets.values()) == Decimal(20_000_000)
    # a rejection closes it: the 40m remaining no longer counts, R = 130m > 100m: buy again
    (again,) = orders_of(engine, "cds-executions", report(order_id, "rejected"))
    assert again["coverage"] == "20000000.00"
    assert again["notional"] == "40000000"


def test_regulatory_limit_caps_the_issuer_limit() -> None:
    # Tier 1 of 400m at 25% gives 100m, below ACME's internal 500m limit
    config = make_config(
        risk={"tier1_capital": "400000000"}, issuers={"ACME": {"limit": "500000000"}}
    )
    engine = HedgingEngine(config)
    (order,) = orders_of(engine, "loan-bookings", booked("L1", "150000000", maturity=LOAN_MATURITY))
    assert order["limit"] == "100000000.00"
    assert order["notional"] == "60000000"
