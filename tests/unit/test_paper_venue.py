"""The paper venue's answers: deterministic per seed and order, and well-formed reports."""

from decimal import Decimal

from hedger.engine import HedgingEngine
from hedger.outcomes import Status
from streams.venue.paper_venue import plan_reports
from tests.factories import booked, make_config


def order(n: int, notional: str = "60000000") -> dict[str, str]:
    return {
        "order_id": f"ev-{n}#1",
        "issuer_id": "ACME",
        "notional": notional,
        "as_of": "2026-01-02T09:00:00Z",
    }


def test_same_seed_same_answers_whatever_the_order() -> None:
    orders = [order(n) for n in range(50)]
    forward = {o["order_id"]: plan_reports(o, 7, 0.8) for o in orders}
    backward = {o["order_id"]: plan_reports(o, 7, 0.8) for o in reversed(orders)}
    assert forward == backward
    other_seed = {o["order_id"]: plan_reports(o, 8, 0.8) for o in orders}
    assert other_seed != forward


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
        for report in plan_reports(wire, seed, 0.7):
            assert trial.process("cds-executions", report).status is Status.APPLIED
        book = trial.books["ACME"]
        # closed; after a reject the bot may well have ordered again
        assert wire["order_id"] in book.closed_orders
        assert wire["order_id"] not in book.open_orders
