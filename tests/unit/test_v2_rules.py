"""Contract v2 rules with hand-computed figures: expiry, ticks, groups, sellers (SPEC §10-§13)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from hedger.config import ConfigError, config_from_mapping
from hedger.engine import HedgingEngine, Outcome
from hedger.numbers import to_cents
from hedger.outcomes import Reason, Status
from tests.factories import booked, config_data, make_config, protection, repaid, report

LOANS, EXECUTIONS, CLOCK = "loan-bookings", "cds-executions", "desk-clock"


def tick(event_id: str, day: str) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": event_id,
        "event_type": "clock.tick",
        "occurred_at": f"{day}T18:00:00Z",
    }


def control(command: str, issuer: str, event_id: str) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": event_id,
        "occurred_at": "2026-01-02T10:00:00Z",
        "command": command,
        "issuer_id": issuer,
        "operator": "ops",
        "reason": "test",
    }


def wires(outcome: Outcome) -> list[dict[str, Any]]:
    assert outcome.status is Status.APPLIED, outcome
    return [record.to_wire() for record in outcome.records]


# -- order expiry (SPEC §11) -----------------------------------------------------


def _expiring_engine() -> tuple[HedgingEngine, str]:
    # ACME: limit 100m; a 200m USD loan to 2030-01-01 booked 2026-01-02 (T = 4.0)
    # breaches: need 200m - 90m = 110m of 5y protection (2030-12-20, u = 1).
    engine = HedgingEngine(make_config(hedge={"order_ttl_days": 5}))
    (order,) = wires(engine.process(LOANS, booked("L1", "200000000", day="2026-01-02")))
    assert order["notional"] == "110000000"
    return engine, order["order_id"]


def test_an_order_expires_at_exactly_ttl_days_and_not_one_day_before() -> None:
    engine, order_id = _expiring_engine()
    assert wires(engine.process(CLOCK, tick("k-4", "2026-01-06"))) == []  # D - d = 4
    cancel, rebuy = wires(engine.process(CLOCK, tick("k-5", "2026-01-07")))  # D - d = 5
    assert cancel == {
        "action": "cancel",
        "order_id": order_id,
        "issuer_id": "ACME",
        "reason": "expired",
        "trigger_event_id": "k-5",
        "as_of": "2026-01-07T18:00:00Z",
    }
    # The expired order no longer counts in C: the breach is bought again.
    assert rebuy["order_id"] == "k-5:ACME#1"
    assert (rebuy["coverage"], rebuy["residual_before"], rebuy["notional"]) == (
        "0.00",
        "200000000.00",
        "110000000",
    )
    # An order expires once; it stays open for reports: a late fill still lands.
    assert wires(engine.process(CLOCK, tick("k-6", "2026-01-08"))) == []
    assert engine.expired_open == 1
    fill = engine.process(EXECUTIONS, report(order_id, "filled", "110000000", day="2026-01-09"))
    assert fill.status is Status.APPLIED
    assert engine.books["ACME"].buckets  # the protection exists
    assert engine.expired_open == 0


def test_a_loan_event_expires_an_order_due_and_leaves_one_not_yet_due() -> None:
    engine, order_id = _expiring_engine()
    # D - d = 4: the order is not due; 1m more exposure stays covered by it
    # (R = 201m - 110m = 91m <= 100m): no record at all.
    assert wires(engine.process(LOANS, booked("L2", "1000000", day="2026-01-06"))) == []
    assert not engine.books["ACME"].open_orders[order_id].expired
    # D - d = 5 on a loan event, not a tick: the order expires, C falls to 0,
    # and the breach of 202m is bought again: 202m - 90m = 112m.
    cancel, rebuy = wires(engine.process(LOANS, booked("L3", "1000000", day="2026-01-07")))
    assert (cancel["action"], cancel["order_id"], cancel["reason"]) == (
        "cancel",
        order_id,
        "expired",
    )
    assert (rebuy["coverage"], rebuy["notional"]) == ("0.00", "112000000")


def test_halted_issuers_orders_do_not_expire() -> None:
    engine, _ = _expiring_engine()
    engine.control(control("halt", "ACME", "h-1"))
    assert wires(engine.process(CLOCK, tick("k-5", "2026-01-07"))) == []
    assert not any(o.expired for o in engine.books["ACME"].open_orders.values())


# -- the desk clock (SPEC §10) -----------------------------------------------------


# A 125m USD loan to 2026-12-31 and 40m of external protection to 2026-10-01;
# ACME's limit is 100m.
def _ageing_engine() -> HedgingEngine:
    engine = HedgingEngine(make_config())
    engine.process(EXECUTIONS, protection("40000000", maturity="2026-10-01", counterparty="S1"))
    assert (
        wires(engine.process(LOANS, booked("L1", "125000000", maturity="2026-12-31"))) == []
    )  # C = 40m x (272/365 - 0.25) / (363/365 - 0.25): R = 98.4m, no breach
    return engine


def test_tick_the_day_before_protection_falls_under_three_months() -> None:
    # D = 2026-07-01: t = 92/365 >= 0.25, T = 183/365, so
    # mm = (92 - 91.25) / (183 - 91.25) = 0.75 / 91.75 and C = 40m x mm.
    (order,) = wires(_ageing_engine().process(CLOCK, tick("k", "2026-07-01")))
    coverage = Decimal(40_000_000) * Decimal("0.75") / Decimal("91.75")
    assert order["coverage"] == "326975.48" == to_cents(coverage)
    assert order["order_id"] == "k:ACME#1"
    # need = 125m - 326,975.48 - 90m: 35 lots of 1y protection (2027-06-20, u = 1)
    assert (order["notional"], order["tenor_years"], order["maturity_date"]) == (
        "35000000",
        1,
        "2027-06-20",
    )
    assert order["residual_after"] == to_cents(Decimal(125_000_000) - coverage - 35_000_000)


def test_tick_the_day_protection_falls_under_three_months_rehedges_it() -> None:
    # D = 2026-07-02: t = 91/365 < 0.25 and t < T: not recognised, C = 0.
    (order,) = wires(_ageing_engine().process(CLOCK, tick("k", "2026-07-02")))
    assert (order["coverage"], order["residual_before"], order["notional"]) == (
        "0.00",
        "125000000.00",
        "35000000",
    )
    assert order["residual_after"] == "90000000.00"


def test_tick_on_the_maturity_date_counts_nothing_and_frees_the_seller() -> None:
    engine = _ageing_engine()
    assert engine.sellers.status("S1", date(2026, 9, 30)).exposure == Decimal(40_000_000)
    (order,) = wires(engine.process(CLOCK, tick("k-2", "2026-10-01")))
    assert (order["order_id"], order["coverage"]) == ("k-2:ACME#1", "0.00")
    # the part matures on D: not counted in the seller's exposure either
    (seller,) = engine.seller_report()
    assert (seller.seller, seller.exposure) == ("S1", Decimal(0))


def test_a_tick_is_applied_once_and_visits_units_in_ascending_id() -> None:
    engine = HedgingEngine(make_config(issuers={"ZED": {"limit": "100000000"}}))
    engine.control(control("halt", "ZED", "h-1"))
    engine.control(control("halt", "ACME", "h-2"))
    engine.process(LOANS, booked("L1", "200000000", issuer="ZED"))
    engine.process(LOANS, booked("L2", "200000000", issuer="ACME"))
    engine.control(control("resume", "ZED", "h-3"))
    engine.control(control("resume", "ACME", "h-4"))
    ids = [o["order_id"] for o in wires(engine.process(CLOCK, tick("k", "2026-01-05")))]
    assert ids == ["k:ACME#1", "k:ZED#1"]
    assert engine.process(CLOCK, tick("k", "2026-01-06")).status is Status.DUPLICATE


# -- groups of connected clients (SPEC §12) --------------------------------------------

GROUP_ABC = {"G": {"members": ["A", "B", "C"], "limit": "300000000"}}


def test_group_step_visits_members_by_descending_residual_ties_by_id() -> None:
    engine = HedgingEngine(make_config(groups=GROUP_ABC))
    assert wires(engine.process(LOANS, booked("LB", "150000000", issuer="B"))) == []
    assert wires(engine.process(LOANS, booked("LA", "150000000", issuer="A"))) == []
    # R_G = 150 + 150 + 100 = 400m > 300m: need = 400m - 270m = 130m, on A
    # (A and B tie at 150m; A has the smaller id); 130m covers all of it.
    (order,) = wires(engine.process(LOANS, booked("LC", "100000000", issuer="C")))
    assert order["issuer_id"] == "A"
    assert order["reason"] == "group_limit_breach"
    assert order["notional"] == "130000000"
    assert (order["group_id"], order["group_limit"]) == ("G", "300000000.00")
    assert order["group_residual_before"] == "400000000.00"
    assert order["group_residual_after"] == "270000000.00"
    assert (order["residual_before"], order["residual_after"]) == (
        "150000000.00",
        "20000000.00",
    )


def test_group_step_stops_when_the_budget_is_spent() -> None:
    engine = HedgingEngine(
        make_config(
            groups=GROUP_ABC,
            hedge={"max_order_notional": "50000000", "max_decision_notional": "100000000"},
        )
    )
    engine.process(LOANS, booked("LB", "150000000", issuer="B"))
    engine.process(LOANS, booked("LA", "150000000", issuer="A"))
    # need 130m on A, capped at the 100m budget: two legs of 50m; nothing left for B.
    orders = wires(engine.process(LOANS, booked("LC", "100000000", issuer="C")))
    assert [(o["order_id"].split("#")[1], o["issuer_id"], o["notional"]) for o in orders] == [
        ("1", "A", "50000000"),
        ("2", "A", "50000000"),
    ]
    assert {o["group_residual_after"] for o in orders} == {"300000000.00"}


def _unwind_in_group(b_notional: str) -> list[dict[str, Any]]:
    # A (limit 100m) holds 110m of its own protection from S2 and S1 (55m each);
    # its loan is then repaid down to 150m while halted; B books b_notional.
    engine = HedgingEngine(
        make_config(
            issuers={"A": {"limit": "100000000"}},
            groups={"G": {"members": ["A", "B"], "limit": "200000000"}},
        )
    )
    (buy,) = wires(engine.process(LOANS, booked("LA", "200000000", issuer="A")))
    assert buy["notional"] == "110000000"
    engine.process(
        EXECUTIONS,
        report(buy["order_id"], "partially_filled", "55000000", issuer="A", counterparty="S2"),
    )
    engine.process(
        EXECUTIONS, report(buy["order_id"], "filled", "55000000", issuer="A", counterparty="S1")
    )
    engine.control(control("halt", "A", "h-1"))
    assert wires(engine.process(LOANS, repaid("LA", 2, "50000000", issuer="A"))) == []
    assert wires(engine.process(LOANS, booked("LB", b_notional, issuer="B"))) == []
    engine.control(control("resume", "A", "h-2"))
    return wires(engine.process(CLOCK, tick("k", "2026-01-05")))


def test_unwind_with_the_group_at_target_unwinds_nothing() -> None:
    # A: E = 150m, C = 110m, R = 40m < 60m (below band): uncapped excess
    # 110m - (150m - 90m) = 50m. R_G = 40m + 140m = 180m = 200m x 0.9: no room,
    # and C <= E: nothing may be unwound.
    assert _unwind_in_group("140000000") == []


def test_unwind_is_capped_by_the_groups_room() -> None:
    # R_G = 40m + 130m = 170m: room 10m, so 10m is unwound (not 50m).
    (sell,) = _unwind_in_group("130000000")
    assert (sell["side"], sell["reason"], sell["notional"]) == (
        "SELL_PROTECTION",
        "below_unwind_band",
        "10000000",
    )
    # parts S1 and S2 tie at 55m: the smaller id is the counterparty to terminate with
    assert sell["counterparty"] == "S1"
    assert sell["excluded_counterparties"] == []
    assert (sell["group_residual_before"], sell["group_residual_after"]) == (
        "170000000.00",
        "180000000.00",
    )


def test_over_hedged_member_of_a_group_at_target_unwinds_only_c_minus_e() -> None:
    engine = HedgingEngine(
        make_config(
            issuers={"A": {"limit": "100000000"}},
            groups={"G": {"members": ["A", "B"], "limit": "200000000"}},
        )
    )
    (buy,) = wires(engine.process(LOANS, booked("LA", "200000000", issuer="A")))
    engine.process(EXECUTIONS, report(buy["order_id"], "filled", "110000000", issuer="A"))
    engine.control(control("halt", "A", "h-1"))
    engine.process(LOANS, repaid("LA", 2, "100000000", issuer="A"))  # E = 100m < C = 110m
    engine.process(LOANS, booked("LB", "180000000", issuer="B"))  # R_G = 180m: at target
    engine.control(control("resume", "A", "h-2"))
    (sell,) = wires(engine.process(CLOCK, tick("k", "2026-01-05")))
    # uncapped: 110m - (100m - 90m) = 100m; capped: (C - E) + room = 10m + 0
    assert (sell["reason"], sell["notional"], sell["counterparty"]) == (
        "over_hedged",
        "10000000",
        "UNSPECIFIED",
    )


# -- protection sellers (SPEC §13) ---------------------------------------------------


def _seller_engine(limit: str) -> tuple[HedgingEngine, str]:
    engine = HedgingEngine(make_config(sellers={"S1": {"limit": limit}}))
    (buy,) = wires(engine.process(LOANS, booked("L1", "200000000")))
    engine.process(EXECUTIONS, report(buy["order_id"], "filled", "110000000", counterparty="S1"))
    return engine, buy["order_id"]


def test_a_seller_exactly_at_its_limit_is_blocked() -> None:
    engine, _ = _seller_engine("110000000")
    assert engine.sellers.blocked == {"S1"}
    (status,) = engine.seller_report()
    assert (status.exposure, status.limit, status.blocked) == (
        Decimal(110_000_000),
        Decimal(110_000_000),
        True,
    )
    (buy,) = wires(engine.process(LOANS, booked("L2", "100000000")))
    assert buy["excluded_counterparties"] == ["S1"]


def test_a_seller_just_below_its_limit_is_not_blocked() -> None:
    engine, _ = _seller_engine("110000000.01")
    assert engine.sellers.blocked == set()
    (buy,) = wires(engine.process(LOANS, booked("L2", "100000000")))
    assert buy["excluded_counterparties"] == []


def test_a_status_change_applies_from_the_next_event() -> None:
    # G = {A, B}, L_G = 300m; budget 100m per decision, so a breach persists.
    engine = HedgingEngine(
        make_config(
            groups={"G": {"members": ["A", "B"], "limit": "300000000"}},
            sellers={"S1": {"limit": "50000000"}},
            hedge={"max_order_notional": "50000000", "max_decision_notional": "100000000"},
        )
    )
    first, _ = wires(engine.process(LOANS, booked("LA", "420000000", issuer="A")))
    # need 150m, budget 100m: R_G = 320m after. The fill that blocks S1 (50m)
    # decides before the status changes: its buy does not exclude S1 yet.
    (during,) = wires(
        engine.process(
            EXECUTIONS,
            report(first["order_id"], "filled", "50000000", issuer="A", counterparty="S1"),
        )
    )
    assert (during["notional"], during["excluded_counterparties"]) == ("50000000", [])
    assert engine.sellers.blocked == {"S1"}
    (after,) = wires(engine.process(EXECUTIONS, report(during["order_id"], "rejected", issuer="A")))
    assert after["excluded_counterparties"] == ["S1"]


def test_wrong_way_sellers_are_excluded_from_the_units_buys() -> None:
    engine = HedgingEngine(
        make_config(
            issuers={"A": {"limit": "100000000"}, "C": {"limit": "100000000"}},
            groups={"G": {"members": ["A", "B"]}},
            sellers={
                "B": {"type": "other"},  # a group member that also sells protection
                "NV": {"connected_to": ["A"]},
                "TIED-C": {"connected_to": ["C"]},
                "FREE": {"type": "bank"},
                "SELF": {"type": "other"},  # also borrows, not configured as an issuer
            },
        )
    )
    (buy_a,) = wires(engine.process(LOANS, booked("LA", "200000000", issuer="A")))
    (buy_c,) = wires(engine.process(LOANS, booked("LC", "200000000", issuer="C")))
    assert buy_a["excluded_counterparties"] == ["B", "NV"]
    assert buy_c["excluded_counterparties"] == ["TIED-C"]
    # Issuers named nowhere in the configuration: only a seller of the same id is wrong-way.
    # Above the default limit of 5bn: 5.2bn - 4.5bn = 700m, in legs of at most 250m.
    buys_self = wires(engine.process(LOANS, booked("LS", "5200000000", issuer="SELF")))
    buys_other = wires(engine.process(LOANS, booked("LO", "5200000000", issuer="OTHER")))
    assert [b["notional"] for b in buys_self] == ["250000000", "250000000", "200000000"]
    assert all(b["excluded_counterparties"] == ["SELF"] for b in buys_self)
    assert [b["excluded_counterparties"] for b in buys_other] == [[], [], []]


def test_seller_exposure_counts_positive_parts_only_in_base_currency() -> None:
    engine = HedgingEngine(make_config())
    engine.process(EXECUTIONS, protection("10000000", issuer="X", currency="EUR", counterparty="S"))
    engine.process(
        EXECUTIONS, protection("4000000", issuer="Y", side="SELL_PROTECTION", counterparty="S")
    )
    (status,) = engine.seller_report()
    # X's part: 10m EUR x 1.08; Y's part is negative and counts nothing.
    assert status.exposure == Decimal("10800000.00")
    assert status.limit is None and status.blocked is False


# -- grammar and configuration bounds (SPEC §1, §3, §8) --------------------------------


@pytest.mark.parametrize(
    ("day", "maturity", "applied"),
    [
        ("2000-01-01", "2000-06-01", True),
        ("2199-06-01", "2199-12-31", True),
        ("1999-12-31", "2030-01-01", False),
        ("2199-06-01", "2200-01-01", False),
    ],
)
def test_input_dates_lie_in_the_years_2000_to_2199(day: str, maturity: str, applied: bool) -> None:
    config = make_config(hedge={"tenors_years": [30]})
    outcome = HedgingEngine(config).process(
        LOANS, booked("L1", "200000000", day=day, maturity=maturity)
    )
    if applied:
        (order,) = outcome.orders  # a 30-year tenor from 2199 stays inside the calendar
        assert order.tenor_years == 30
    else:
        assert outcome.reason is Reason.SCHEMA_VIOLATION


def test_an_issuer_id_naming_a_group_is_a_schema_violation() -> None:
    engine = HedgingEngine(make_config(groups={"G": {"members": ["A"]}}))
    assert engine.process(LOANS, booked("L1", "5", issuer="G")).reason is (Reason.SCHEMA_VIOLATION)
    assert engine.process(LOANS, booked("L1", "5", issuer="G", currency="XXX")).reason is (
        Reason.SCHEMA_VIOLATION  # precedes unknown_currency
    )


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"hedge": {"tenors_years": [5, 31]}}, r"^hedge\.tenors_years: .*at most 30"),
        ({"hedge": {"order_ttl_days": 0}}, r"^hedge\.order_ttl_days: "),
        ({"risk": {"default_seller_limit": 5}}, r"^risk\.default_seller_limit: "),
        ({"groups": {"G": {"members": []}}}, r"^groups\.G\.members: "),
        ({"groups": {"G": {"members": ["A", "A"]}}}, r"^groups\.G\.members: .*twice"),
        (
            {"groups": {"G": {"members": ["A"]}, "H": {"members": ["A"]}}},
            r"^groups\.H\.members: A is already a member of G",
        ),
        ({"groups": {"ACME": {"members": ["A"]}}}, r"^groups\.ACME: .*issuer id"),
        ({"groups": {"G": {"members": ["A"], "limt": "5"}}}, r"^groups\.G\.limt: unknown key"),
        ({"sellers": {"S": {"type": "broker"}}}, r"^sellers\.S\.type: "),
        ({"sellers": {"S": {"connected_to": "A"}}}, r"^sellers\.S\.connected_to: "),
        ({"risk": {"halted": True}}, r"^risk\.halted: unknown key"),
        ({"desk": {"x": 1}}, r"^desk: unknown key"),
    ],
)
def test_invalid_v2_configurations_name_the_field(sections: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(config_data(**sections))


def test_a_v1_configuration_is_a_valid_v2_configuration() -> None:
    config = make_config()
    assert config.groups == {} and config.sellers == {}
    assert config.hedge.order_ttl_days is None and config.risk.default_seller_limit is None
    assert config.unit_of("ACME") == "ACME"
