"""SPEC §2: a field is read only on the events whose field list names it.

On any other event it is an ignored extra field whatever its value (a bad
value, `null`, a wrong type, a huge string): the event is processed exactly
as if the field were absent. `READ` below is the SPEC's field lists, written
out by hand; `SPEC_FIELDS` is every field the SPEC names anywhere (the
`cds.quote` fields of v2.1 included). Every (event, field not read) pair is
checked offline (the engine, and a whole replay) and live (the worker's
stages with dict tables). A new event type is one more row of `READ` and of
`SCENARIOS`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from hedger.config import HedgerConfig
from hedger.engine import HedgingEngine, Outcome
from hedger.outcomes import Reason, Status
from streams.live.stages import RouteStage
from streams.observer import Origin, Tally
from streams.offline.replay import replay
from tests.factories import (
    amended,
    booked,
    cancelled,
    make_config,
    protection,
    quote,
    repaid,
    report,
)
from tests.support.pipeline import TOPICS, Pipeline

LOANS, EXECUTIONS, CLOCK, QUOTES = "loan-bookings", "cds-executions", "desk-clock", "cds-quotes"
COMMON = frozenset({"schema_version", "event_id", "event_type", "occurred_at"})
LOAN_COMMON = COMMON | {"loan_id", "issuer_id", "sequence"}
REPORT = COMMON | {"order_id", "issuer_id", "status", "counterparty"}

# Fields each event reads (SPEC §2), by event (a report by its status).
READ: dict[str, frozenset[str]] = {
    "loan.booked": LOAN_COMMON | {"notional", "currency", "maturity_date"},
    "loan.amended": LOAN_COMMON | {"notional", "maturity_date"},
    "loan.repaid": LOAN_COMMON | {"amount"},
    "loan.cancelled": LOAN_COMMON,
    "execution.report filled": REPORT | {"filled_notional"},
    "execution.report partially_filled": REPORT | {"filled_notional"},
    "execution.report rejected": REPORT,
    "execution.report cancelled": REPORT,
    "protection.booked": COMMON
    | {"issuer_id", "side", "notional", "currency", "maturity_date", "doc_clause", "counterparty"},
    "clock.tick": COMMON,
    "cds.quote": COMMON | {"issuer_id", "as_of_date", "tenor_years", "spread_bps", "recovery"},
}
SPEC_FIELDS = frozenset().union(*READ.values())  # every field the SPEC names on an input event

GROUP = "GRP"  # a configured group's id: a bad `issuer_id` where one is read
BAD_VALUES: list[Any] = [
    None,
    0,
    -1,
    True,
    1.5,
    "",
    "not a value",
    "-5",
    "2030-02-30",
    "XXX",  # a currency without an FX rate
    GROUP,
    [1, None],
    {"nested": None},
    "x" * 200_000,  # a huge string
]

CONFIG = make_config(
    issuers={"ACME": {"limit": "100000000"}},
    groups={GROUP: {"members": ["OTHER-1", "OTHER-2"], "limit": "900000000"}},
)
# `cds-quotes` is an input topic only with [pricing] (SPEC §2)
PRICED = make_config(
    issuers={"ACME": {"limit": "100000000"}},
    groups={GROUP: {"members": ["OTHER-1", "OTHER-2"], "limit": "900000000"}},
    pricing={"discount_rate": "0.03"},
)


# every issuer's limit 100m: the replay below spreads the scenarios over issuers
LOW_DEFAULT = make_config(
    risk={"default_issuer_limit": "100000000"},
    groups={GROUP: {"members": ["OTHER-1", "OTHER-2"], "limit": "900000000"}},
)


def tick(day: str) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": f"tick-{day}",
        "event_type": "clock.tick",
        "occurred_at": f"{day}T00:00:00Z",
    }


def _first_order(outcomes: list[Outcome]) -> dict[str, Any]:
    return outcomes[0].orders[0].to_wire()


BREACH = booked("L1", "250000000", event_id="setup-1")  # R = 250m over L = 100m: a buy
SMALL = booked("L1", "50000000", event_id="setup-1")  # no breach


def _report(status: str, amount: Callable[[dict[str, Any]], str | None]) -> Scenario:
    def event(done: list[Outcome]) -> dict[str, Any]:
        order = _first_order(done)
        return report(order["order_id"], status, amount(order), event_id="under-test")

    return Scenario(EXECUTIONS, [(LOANS, BREACH)], event)


class Scenario:
    """A state to start from, and the event under test (built from the set-up's outcomes)."""

    def __init__(
        self,
        topic: str,
        setup: list[tuple[str, dict[str, Any]]],
        event: Callable[[list[Outcome]], dict[str, Any]],
        config: HedgerConfig | None = None,
    ) -> None:
        self.topic, self.setup, self.event = topic, setup, event
        self.config = config  # the test's configuration unless given


SCENARIOS: dict[str, Scenario] = {
    "loan.booked": Scenario(LOANS, [], lambda _: booked("L2", "250000000", event_id="under-test")),
    "loan.amended": Scenario(
        LOANS,
        [(LOANS, SMALL)],
        lambda _: amended("L1", 2, notional="250000000", event_id="under-test"),
    ),
    "loan.repaid": Scenario(
        LOANS, [(LOANS, SMALL)], lambda _: repaid("L1", 2, "10000000", event_id="under-test")
    ),
    "loan.cancelled": Scenario(
        LOANS, [(LOANS, SMALL)], lambda _: cancelled("L1", 2, event_id="under-test")
    ),
    "execution.report filled": _report("filled", lambda order: order["notional"]),
    "execution.report partially_filled": _report("partially_filled", lambda _: "1000000"),
    "execution.report rejected": _report("rejected", lambda _: None),
    "execution.report cancelled": _report("cancelled", lambda _: None),
    "protection.booked": Scenario(
        EXECUTIONS, [(LOANS, BREACH)], lambda _: protection("50000000", event_id="under-test")
    ),
    "clock.tick": Scenario(CLOCK, [(LOANS, BREACH)], lambda _: tick("2026-01-05")),
    "cds.quote": Scenario(
        QUOTES,
        [(LOANS, SMALL)],
        lambda _: quote("250", as_of="2026-01-05", day="2026-01-05", event_id="under-test"),
        PRICED,
    ),
}
# The worker's stages do not consume `cds-quotes` yet: the live tests skip it.
LIVE = sorted(name for name in READ if SCENARIOS[name].topic != QUOTES)
# What each event under test does without extra fields (SPEC §2-§5, by hand):
# a booking or amendment to 250m breaches the 100m limit and buys; a rejected
# or cancelled order stops counting, so the breach is back and the bot buys
# again; the rest applies without an order.
BUYS = {
    "loan.booked",
    "loan.amended",
    "execution.report rejected",
    "execution.report cancelled",
}


def run(
    scenario: Scenario, change: Callable[[dict[str, Any]], dict[str, Any]], config: HedgerConfig
) -> Outcome:
    engine = HedgingEngine(scenario.config or config)
    done = [engine.process(topic, payload) for topic, payload in scenario.setup]
    return engine.process(scenario.topic, change(scenario.event(done)))


def comparable(outcome: Outcome) -> tuple[Any, ...]:
    return (
        outcome.status,
        outcome.reason,
        [record.to_wire() for record in outcome.records],
        [(v.issuer_id, v.exposure, v.coverage, v.residual, v.limit) for v in outcome.views],
        outcome.changes,
    )


def test_the_table_names_a_scenario_for_every_event() -> None:
    assert set(SCENARIOS) == set(READ)


@pytest.mark.parametrize("name", sorted(READ))
def test_each_event_without_extra_fields_does_what_the_spec_says(name: str) -> None:
    outcome = run(SCENARIOS[name], dict, CONFIG)
    assert outcome.status is Status.APPLIED, outcome.detail
    buys = [order.side.value for order in outcome.orders]
    assert buys == (["BUY_PROTECTION"] * len(buys) if name in BUYS else [])
    assert bool(buys) == (name in BUYS)


@pytest.mark.parametrize(
    ("name", "field"),
    [(name, field) for name in sorted(READ) for field in sorted(SPEC_FIELDS - READ[name])],
)
def test_a_field_the_event_does_not_read_is_ignored_whatever_its_value(
    name: str, field: str
) -> None:
    scenario = SCENARIOS[name]
    plain = comparable(run(scenario, dict, CONFIG))
    assert plain[0] is Status.APPLIED
    for value in BAD_VALUES:
        changed = run(scenario, lambda event, value=value: {**event, field: value}, CONFIG)
        assert comparable(changed) == plain, (name, field, repr(value)[:40], changed.detail)


@pytest.mark.parametrize(
    ("name", "field"), [(name, field) for name in sorted(READ) for field in sorted(READ[name])]
)
def test_a_field_the_event_reads_is_checked(name: str, field: str) -> None:
    """The other side of the table: on an event that reads it, `null` is a bad type (SPEC §1)."""
    outcome = run(SCENARIOS[name], lambda event: {**event, field: None}, CONFIG)
    assert outcome.reason is Reason.SCHEMA_VIOLATION


def _with_ignored_fields() -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, Any]]]:
    """One log holding every scenario; its events under test carry every field they do not read.

    Returns the log with the extra fields and the same log without them.
    """
    plain: list[tuple[str, dict[str, Any]]] = []
    extra: list[tuple[str, dict[str, Any]]] = []
    engine = HedgingEngine(LOW_DEFAULT)
    for n, name in enumerate(LIVE):
        scenario = SCENARIOS[name]
        done = []
        for topic, payload in scenario.setup:
            # each scenario on its own issuer and loans, so they do not meet
            payload = _renamed(payload, n)
            done.append(engine.process(topic, payload))
            plain.append((topic, payload))
            extra.append((topic, payload))
        event = _renamed(scenario.event(done), n)
        engine.process(scenario.topic, event)
        plain.append((scenario.topic, event))
        ignored = sorted(SPEC_FIELDS - READ[name])
        extra.append(
            (
                scenario.topic,
                event | {f: BAD_VALUES[i % len(BAD_VALUES)] for i, f in enumerate(ignored)},
            )
        )
    return extra, plain


def _renamed(event: dict[str, Any], n: int) -> dict[str, Any]:
    event = dict(event)
    if "issuer_id" in event and event["issuer_id"] == "ACME":
        event["issuer_id"] = f"ISS-{n}"
    if "loan_id" in event:
        event["loan_id"] = f"{event['loan_id']}-{n}"
    if "event_id" in event:
        event["event_id"] = f"{event['event_id']}-{n}"
    return event


def _log(events: list[tuple[str, dict[str, Any]]]) -> str:
    return "".join(json.dumps({"topic": t, "value": v}) + "\n" for t, v in events)


def _replay(events: list[tuple[str, dict[str, Any]]]) -> tuple[list[Any], list[Any]]:
    orders, dead = io.StringIO(), io.StringIO()
    replay(HedgingEngine(LOW_DEFAULT), io.StringIO(_log(events)), orders, dead)
    return (
        [json.loads(line) for line in orders.getvalue().splitlines()],
        [json.loads(line) for line in dead.getvalue().splitlines()],
    )


def test_replay_ignores_every_field_an_event_does_not_read() -> None:
    extra, plain = _with_ignored_fields()
    orders, dead = _replay(extra)
    assert dead == []
    assert (orders, dead) == _replay(plain)
    # by hand: each breaching booking (six set-ups, the booking and the
    # amendment under test) buys on its own issuer
    buying = {order["issuer_id"] for order in orders if order.get("side") == "BUY_PROTECTION"}
    assert len(buying) == 8


def test_the_worker_stages_ignore_every_field_an_event_does_not_read() -> None:
    extra, plain = _with_ignored_fields()
    pipeline = Pipeline(
        [(topic, json.dumps(value).encode()) for topic, value in extra], config=LOW_DEFAULT
    )
    pipeline.run()
    assert pipeline.topics[TOPICS.dead_letters] == []
    assert pipeline.orders() == _replay(plain)[0]


@pytest.mark.parametrize("name", LIVE)
def test_the_route_stage_routes_an_event_whatever_the_fields_it_does_not_read(name: str) -> None:
    """The worker's first stage validates with the core: every bad value, every field not read."""
    scenario = SCENARIOS[name]
    engine = HedgingEngine(CONFIG)
    event = scenario.event([engine.process(topic, payload) for topic, payload in scenario.setup])
    route = RouteStage(CONFIG, TOPICS, Tally())
    plain = route.handle(Origin(scenario.topic, 0, 0), json.dumps(event).encode())
    assert plain and all(output.topic != TOPICS.dead_letters for output in plain)
    where = {(output.topic, output.key, output.partition) for output in plain}
    for field in sorted(SPEC_FIELDS - READ[name]):
        for value in BAD_VALUES:
            payload = json.dumps({**event, field: value}).encode()
            outputs = route.handle(Origin(scenario.topic, 0, 1), payload)
            assert {(o.topic, o.key, o.partition) for o in outputs} == where, (field, value)
