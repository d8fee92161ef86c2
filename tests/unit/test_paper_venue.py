"""The paper venue's answers: deterministic per seed and order, and well-formed reports.

Cases for contract v2: counterparties on every fill, never an excluded one
(all excluded: rejected), the sell's counterparty hint, cancel requests
answered while the order is open at the venue, and silence.
"""

from collections import Counter
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from hedger.engine import HedgingEngine
from hedger.outcomes import Status
from streams.settings import load_config
from streams.venue.paper_venue import COUNTERPARTIES, VenueBook, is_silent, plan_reports
from tests.factories import REPO, booked, cancel_request, make_config, report


def order(n: int, notional: str = "60000000", **fields: Any) -> dict[str, Any]:
    return {
        "action": "new",
        "order_id": f"ev-{n}#1",
        "issuer_id": "ACME",
        "side": "BUY_PROTECTION",
        "notional": notional,
        "as_of": "2026-01-02T09:00:00Z",
        "excluded_counterparties": [],
        "counterparty": None,
        **fields,
    }


def cancel(order_id: str) -> dict[str, Any]:
    return cancel_request(order_id, "ACME", "2026-01-09T18:00:00Z")


def fills(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in reports if r["status"] in ("partially_filled", "filled")]


def test_same_seed_same_answers_whatever_the_order() -> None:
    orders = [order(n) for n in range(50)]
    forward = {o["order_id"]: plan_reports(o, 7, 0.8) for o in orders}
    backward = {o["order_id"]: plan_reports(o, 7, 0.8) for o in reversed(orders)}
    assert forward == backward
    other_seed = {o["order_id"]: plan_reports(o, 8, 0.8) for o in orders}
    assert other_seed != forward
    # the venue's book answers as the plan does, in any arrival order
    book_forward, book_backward = VenueBook(7, 0.8), VenueBook(7, 0.8)
    assert {o["order_id"]: book_forward.receive(o) for o in orders} == forward
    assert {o["order_id"]: book_backward.receive(o) for o in reversed(orders)} == forward


def test_fills_add_up_to_the_order_and_every_order_closes() -> None:
    statuses = set()
    for n in range(200):
        reports = plan_reports(order(n), 3, 0.85)
        statuses.add(tuple(r["status"] for r in reports))
        assert reports[-1]["status"] in ("filled", "rejected")
        filled = sum(Decimal(r.get("filled_notional", "0")) for r in reports)
        assert filled in (Decimal(0), Decimal(60_000_000))
        assert len({r["event_id"] for r in reports}) == len(reports)
    # full fills, partial-then-fill and rejects all occur
    assert statuses == {("filled",), ("partially_filled", "filled"), ("rejected",)}


def test_the_default_pool_is_the_desk_v2_sellers_and_unspecified() -> None:
    sellers = load_config(REPO / "config" / "desk-v2.toml").sellers
    assert set(COUNTERPARTIES) == {*sellers, "UNSPECIFIED"}
    assert len(COUNTERPARTIES) == len(set(COUNTERPARTIES))


def test_every_fill_names_a_counterparty_of_the_pool_and_the_pool_is_spread() -> None:
    used: Counter[str] = Counter()
    for n in range(400):
        for fill in fills(plan_reports(order(n), 5, 1.0)):
            assert fill["counterparty"] in COUNTERPARTIES
            used[fill["counterparty"]] += 1
    assert set(used) == set(COUNTERPARTIES)
    # both fills of a partially filled order come from the same counterparty
    for n in range(100):
        assert len({f["counterparty"] for f in fills(plan_reports(order(n), 5, 1.0))}) <= 1


def test_an_excluded_seller_is_never_chosen() -> None:
    excluded = ["ATLAS-RE", "DEALER-B", "UNSPECIFIED"]
    used: set[str] = set()
    for n in range(400):
        reports = plan_reports(order(n, excluded_counterparties=excluded), 2, 1.0)
        assert [r["status"] for r in reports][-1] == "filled"
        used |= {f["counterparty"] for f in fills(reports)}
    assert used == set(COUNTERPARTIES) - set(excluded)


def test_with_one_seller_left_every_buy_goes_to_it() -> None:
    for n in range(50):
        reports = plan_reports(order(n, excluded_counterparties=["Y"]), 4, 1.0, ("X", "Y"))
        assert {f["counterparty"] for f in fills(reports)} == {"X"}


@pytest.mark.parametrize("seed", range(10))
def test_a_buy_every_seller_of_the_pool_is_excluded_from_is_rejected(seed: int) -> None:
    everyone = sorted([*COUNTERPARTIES, "SOMEONE-ELSE"])
    reports = plan_reports(order(seed, excluded_counterparties=everyone), seed, 1.0)
    assert reports == [
        {
            "schema_version": 1,
            "event_id": f"venue:ev-{seed}#1:1",
            "event_type": "execution.report",
            "occurred_at": "2026-01-02T09:00:01.000Z",
            "order_id": f"ev-{seed}#1",
            "issuer_id": "ACME",
            "status": "rejected",
        }
    ]
    small_pool = plan_reports(order(seed, excluded_counterparties=["X", "Y"]), seed, 1, ("X", "Y"))
    assert [r["status"] for r in small_pool] == ["rejected"]


def test_a_sell_is_filled_with_its_counterparty_hint() -> None:
    for n in range(50):
        sell = order(n, side="SELL_PROTECTION", counterparty="BOREAL-LIFE")
        assert {f["counterparty"] for f in fills(plan_reports(sell, 1, 1.0, ("X",)))} == {
            "BOREAL-LIFE"
        }
        # without a hint, the pool
        no_hint = order(n, side="SELL_PROTECTION")
        assert {f["counterparty"] for f in fills(plan_reports(no_hint, 1, 1.0, ("X",)))} == {"X"}


def test_cancel_of_an_open_order_is_answered_cancelled_once() -> None:
    book = VenueBook(seed=7, fill_ratio=1.0, silence_ratio=1.0)
    assert book.receive(order(1)) == []  # silent: the order stays open at the venue
    assert book.receive(cancel("ev-1#1")) == [
        {
            "schema_version": 1,
            "event_id": "venue:ev-1#1:cancelled",
            "event_type": "execution.report",
            "occurred_at": "2026-01-09T18:00:01.000Z",
            "order_id": "ev-1#1",
            "issuer_id": "ACME",
            "status": "cancelled",
        }
    ]
    assert book.receive(cancel("ev-1#1")) == []  # closed now
    assert book.receive(order(1)) == []  # a re-emitted order is not answered again


def test_cancel_of_a_filled_or_rejected_or_unknown_order_is_ignored() -> None:
    book = VenueBook(seed=7, fill_ratio=1.0)
    filled = book.receive(order(1))
    assert filled and all(book.release(r) for r in filled)
    assert book.receive(cancel("ev-1#1")) == []
    rejected = VenueBook(seed=7, fill_ratio=0.0)
    (reject,) = rejected.receive(order(2))
    assert reject["status"] == "rejected" and rejected.release(reject)
    assert rejected.receive(cancel("ev-2#1")) == []
    assert book.receive(cancel("never-seen#1")) == []


def test_cancel_between_a_partial_fill_and_the_rest_stops_the_rest() -> None:
    book = VenueBook(seed=7, fill_ratio=1.0)
    n = next(n for n in range(100) if len(plan_reports(order(n), 7, 1.0)) == 2)
    partial, rest = book.receive(order(n))
    assert (partial["status"], rest["status"]) == ("partially_filled", "filled")
    assert book.release(partial)
    (cancelled,) = book.receive(cancel(f"ev-{n}#1"))
    assert cancelled["status"] == "cancelled"
    assert not book.release(rest)


def test_a_cancel_arriving_before_the_delayed_answer_wins() -> None:
    book = VenueBook(seed=7, fill_ratio=1.0)
    planned = book.receive(order(3))
    assert [r["status"] for r in book.receive(cancel("ev-3#1"))] == ["cancelled"]
    assert not any(book.release(r) for r in planned)


def test_silence_ratio_one_answers_nothing_and_zero_everything() -> None:
    for n in range(100):
        assert plan_reports(order(n), 7, 1.0, silence_ratio=1.0) == []
        assert plan_reports(order(n), 7, 0.0, silence_ratio=0.0) != []


def test_silence_is_a_deterministic_share_that_leaves_the_other_answers_alone() -> None:
    orders = [order(n) for n in range(1000)]
    silent = {o["order_id"] for o in orders if not plan_reports(o, 11, 0.9, silence_ratio=0.3)}
    assert 250 <= len(silent) <= 350
    assert silent == {o["order_id"] for o in orders if is_silent(o["order_id"], 11, 0.3)}
    # a larger ratio silences the same orders and more; another seed, others
    wider = {o["order_id"] for o in orders if is_silent(o["order_id"], 11, 0.5)}
    assert silent < wider
    assert silent != {o["order_id"] for o in orders if is_silent(o["order_id"], 12, 0.3)}
    for o in orders:
        if o["order_id"] not in silent:
            assert plan_reports(o, 11, 0.9, silence_ratio=0.3) == plan_reports(o, 11, 0.9)


def test_reports_are_valid_and_close_the_bots_order() -> None:
    engine = HedgingEngine(make_config())
    outcome = engine.process("loan-bookings", booked("L1", "150000000", maturity="2028-01-02"))
    wire = outcome.orders[0].to_wire()
    for seed in range(20):
        trial = HedgingEngine(make_config())
        trial.process(
            "loan-bookings",
            booked("L1", "150000000", maturity="2028-01-02", event_id=outcome.event_id),
        )
        for answer in plan_reports(wire, seed, 0.7):
            assert trial.process("cds-executions", answer).status is Status.APPLIED
        book = trial.books["ACME"]
        # closed; after a reject the bot may well have ordered again
        assert wire["order_id"] in book.closed_orders
        assert wire["order_id"] not in book.open_orders


def test_the_bots_excluded_seller_gets_no_part_and_a_cancel_closes_its_order() -> None:
    # S1 (limit 110m) sells the first buy's 110m in full: blocked (X >= L).
    engine = HedgingEngine(make_config(sellers={"S1": {"limit": "110000000"}}))
    (first,) = [
        r.to_wire() for r in engine.process("loan-bookings", booked("L1", "200000000")).records
    ]
    engine.process(
        "cds-executions", report(first["order_id"], "filled", "110000000", counterparty="S1")
    )
    (buy,) = [
        r.to_wire() for r in engine.process("loan-bookings", booked("L2", "100000000")).records
    ]
    assert buy["excluded_counterparties"] == ["S1"]
    book = VenueBook(seed=3, fill_ratio=1.0, counterparties=("S1", "S2"))
    for answer in book.receive(buy):
        assert answer["counterparty"] == "S2"
        assert book.release(answer)
        assert engine.process("cds-executions", answer).status is Status.APPLIED
    assert buy["order_id"] in engine.books["ACME"].closed_orders
    # the 100m bought went to S2's part; S1 kept its 110m
    day = date(2026, 1, 2)
    assert engine.sellers.status("S2", day).exposure == Decimal(100_000_000)
    assert engine.sellers.status("S1", day).exposure == Decimal(110_000_000)
    # A third buy the venue stays silent on, cancelled by request: the engine closes it.
    (third,) = [
        r.to_wire() for r in engine.process("loan-bookings", booked("L3", "100000000")).records
    ]
    silent = VenueBook(seed=3, silence_ratio=1.0)
    assert silent.receive(third) == []
    (cancelled,) = silent.receive({**cancel(third["order_id"]), "as_of": third["as_of"]})
    assert engine.process("cds-executions", cancelled).status is Status.APPLIED
    assert third["order_id"] in engine.books["ACME"].closed_orders
    assert third["order_id"] not in engine.books["ACME"].open_orders


def test_a_withhold_record_is_no_order_and_gets_no_answer() -> None:
    """SPEC §14.8: a withheld leg is never emitted; the venue answers priced orders as before."""
    book = VenueBook(seed=7, fill_ratio=1.0)
    withheld = order(1, reason="spread_above_max", order_reason="limit_breach")
    withheld["action"] = "withhold"
    assert book.receive(withheld) == []
    assert book.open == set()
    priced = order(2, quoted_spread_bps="55", upfront_amount="-5046729.34")
    reports = book.receive(priced)
    assert reports and sum(Decimal(r["filled_notional"]) for r in fills(reports)) == Decimal(
        "60000000"
    )
