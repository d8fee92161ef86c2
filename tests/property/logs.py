"""Hypothesis strategies for realistic event logs.

A log is drawn as a list of actions; `build_log` turns them into events,
running a model engine alongside so that fills answer orders the bot really
emitted and loan sequences mostly continue. Invalid events still occur
(unknown loans, overfills...), as they do in production.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from hedger.config import HedgerConfig
from hedger.engine import HedgingEngine
from tests.factories import make_config

ISSUERS = ("ACME", "BOLT")
CURRENCIES = ("USD", "EUR", "JPY")
DOCS = ("MR14", "XR14", "CR14")
START = date(2026, 1, 5)

# Small limits and lots, so breaches, buys and unwinds happen often.
CONFIG = make_config(
    risk={"default_issuer_limit": "100000000", "max_maturity_years": "5"},
    hedge={
        "lot_size": "1000000",
        "min_order_notional": "2000000",
        "max_order_notional": "40000000",
        "max_decision_notional": "120000000",
    },
    fx={"USD": "1", "EUR": "1.08", "JPY": "0.0067"},
    issuers={"ACME": {"limit": "100000000"}, "BOLT": {"limit": "60000000"}},
)

amount = st.integers(min_value=1, max_value=150).map(lambda m: m * 1_000_000)
cents = st.sampled_from(["", ".50", ".01"])

book = st.tuples(
    st.just("book"),
    st.integers(0, 7),
    amount,
    cents,
    st.sampled_from(CURRENCIES),
    st.integers(60, 3000),
    st.sampled_from(ISSUERS),
)
# one_of draws its branches evenly: listing bookings three times makes them
# common enough for loans to accumulate and breach their limits.
action = st.one_of(
    book,
    book,
    book,
    st.tuples(
        st.just("amend"),
        st.integers(0, 7),
        st.one_of(st.none(), amount),
        st.one_of(st.none(), st.integers(30, 3000)),
    ),
    st.tuples(st.just("repay"), st.integers(0, 7), st.floats(0.05, 1.2)),
    st.tuples(st.just("cancel"), st.integers(0, 7)),
    st.tuples(
        st.just("protect"),
        st.sampled_from(ISSUERS),
        st.sampled_from(["BUY", "SELL"]),
        amount,
        st.sampled_from(CURRENCIES),
        st.integers(20, 3000),
        st.sampled_from(DOCS),
    ),
    st.tuples(
        st.just("report"),
        st.integers(0, 5),
        st.sampled_from(["filled", "partially_filled", "partially_filled", "rejected"]),
        st.floats(0.1, 1.1),
    ),
    st.tuples(st.just("advance"), st.integers(1, 200)),
)

logs = st.lists(action, min_size=5, max_size=60)

# Contract v2: a group of connected clients (ACME and BOLT), sellers with
# small limits (one tied to BOLT), order expiry, and ticks; fills and
# bookings name counterparties.
SELLERS = ("S1", "S2", "NV", "UNSPECIFIED")
CONFIG_V2 = make_config(
    risk={
        "default_issuer_limit": "100000000",
        "max_maturity_years": "5",
        "default_seller_limit": "80000000",
    },
    hedge={
        "lot_size": "1000000",
        "min_order_notional": "2000000",
        "max_order_notional": "40000000",
        "max_decision_notional": "400000000",
        "order_ttl_days": 7,
    },
    fx={"USD": "1", "EUR": "1.08", "JPY": "0.0067"},
    issuers={"ACME": {"limit": "100000000"}, "BOLT": {"limit": "60000000"}},
    groups={"G": {"members": ["ACME", "BOLT"], "limit": "100000000"}},
    sellers={"S1": {"limit": "30000000"}, "NV": {"connected_to": ["BOLT"]}},
)
ISSUERS_V2 = ("ACME", "BOLT", "CORE")
action_v2 = st.one_of(
    action,
    st.tuples(st.just("tick")),
    st.tuples(st.just("tick")),
    st.tuples(st.just("counterparty"), st.sampled_from(SELLERS)),
    st.tuples(st.just("issuer"), st.sampled_from(ISSUERS_V2)),
)
logs_v2 = st.lists(action_v2, min_size=5, max_size=60)


def build_log(
    actions: list[tuple[Any, ...]], config: HedgerConfig = CONFIG
) -> list[tuple[str, dict[str, Any]]]:
    """Turn actions into (topic, event) pairs, answering orders the model engine emitted.

    v2 actions: `tick` sends a clock tick; `counterparty` and `issuer` set who
    the next fills and bookings name (bookings then go to that issuer).
    """
    model = HedgingEngine(config)
    counterparty: str | None = None
    issuer_pick: str | None = None
    today = START
    events: list[tuple[str, dict[str, Any]]] = []
    for n, act in enumerate(actions):
        kind = act[0]
        if kind == "advance":
            today += timedelta(days=act[1])
            continue
        if kind == "counterparty":
            counterparty = act[1]
            continue
        if kind == "issuer":
            issuer_pick = act[1]
            continue
        base = {"schema_version": 1, "event_id": f"e{n}", "occurred_at": f"{today}T12:00:00Z"}
        if kind == "tick":
            event = base | {"event_type": "clock.tick"}
            model.process("desk-clock", event)
            events.append(("desk-clock", event))
            continue
        if kind in ("book", "amend", "repay", "cancel"):
            known = sorted(model.loans)
            if kind != "book" and not known:
                continue
            if kind != "book" and act[1] < 7:
                loan_id = known[act[1] % len(known)]  # mostly loans that exist
            else:
                loan_id = f"L{act[1]}"
            state = model.loans.get(loan_id)
            seq = (state.last_sequence + 1) if state else 1
            issuer = state.issuer_id if state else "ACME"
            base |= {"loan_id": loan_id, "sequence": seq, "issuer_id": issuer}
            if kind == "book":
                _, _, notional, frac, ccy, days, issuer = act
                issuer = issuer_pick or issuer
                event = base | {
                    "event_type": "loan.booked",
                    "issuer_id": issuer,
                    "notional": f"{notional}{frac}",
                    "currency": ccy,
                    "maturity_date": str(today + timedelta(days=days)),
                }
            elif kind == "amend":
                event = base | {"event_type": "loan.amended"}
                if act[2] is not None:
                    event["notional"] = str(act[2])
                if act[3] is not None:
                    event["maturity_date"] = str(today + timedelta(days=act[3]))
            elif kind == "repay":
                outstanding = state.outstanding if state else Decimal(10_000_000)
                repay = (outstanding * Decimal(str(round(act[2], 2)))).quantize(Decimal("0.01"))
                event = base | {
                    "event_type": "loan.repaid",
                    "amount": str(max(repay, Decimal("0.01"))),
                }
            else:
                event = base | {"event_type": "loan.cancelled"}
            topic = "loan-bookings"
        elif kind == "protect":
            _, issuer, side, notional, ccy, days, doc = act
            event = base | {
                "event_type": "protection.booked",
                "issuer_id": issuer,
                "side": f"{side}_PROTECTION",
                "notional": str(notional),
                "currency": ccy,
                "maturity_date": str(today + timedelta(days=days)),
                "doc_clause": doc,
            }
            if counterparty is not None:
                event["counterparty"] = counterparty
            topic = "cds-executions"
        else:
            _, pick, status, fraction = act
            open_orders = [o for b in model.books.values() for o in b.open_orders.values()]
            if not open_orders:
                continue
            order = open_orders[pick % len(open_orders)]
            issuer = next(i for i, b in model.books.items() if order.order_id in b.open_orders)
            event = base | {
                "event_type": "execution.report",
                "order_id": order.order_id,
                "issuer_id": issuer,
                "status": status,
            }
            if status != "rejected":
                filled = (order.remaining * Decimal(str(round(fraction, 2)))).quantize(Decimal(1))
                event["filled_notional"] = str(max(filled, Decimal(1)))
                if counterparty is not None:
                    event["counterparty"] = counterparty
            topic = "cds-executions"
        model.process(topic, event)
        events.append((topic, event))
    return events
