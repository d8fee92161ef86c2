"""Properties of contract v2.1 over generated logs: pricing annotates, the guard withholds (§14).

The logs are the v2 logs of `tests.property.logs` with `cds.quote` events
inserted (issuers, tenors, spreads and ages drawn), replayed under the v2
configuration (quotes are no input there: skipped, as a replay skips them)
and under the same configuration plus `[pricing]`.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hedger.calendar import standard_maturity
from hedger.config import HedgerConfig, config_from_mapping
from hedger.engine import HedgingEngine
from tests.property.logs import CONFIG_V2, ISSUERS_V2, build_log, logs_v2

PROFILE = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PRICE_FIELDS = (
    "quote_tenor_years",
    "quoted_spread_bps",
    "recovery",
    "quote_as_of",
    "upfront_fraction",
    "upfront_amount",
)
TENORS = (1, 3, 5, 7, 10)
SPREADS = ("20", "55", "100", "250.5", "640", "1200", "9999.9999")
MAX_SPREAD = Decimal(300)


def with_pricing(**pricing: Any) -> HedgerConfig:
    data = CONFIG_V2.model_dump(mode="python", exclude_none=True)
    data = json.loads(json.dumps(data, default=str))  # settings back to their TOML strings
    data["pricing"] = {"discount_rate": "0.03", **pricing}
    return config_from_mapping(data)


# Loans that breach ACME's and BOLT's limits from the first events on, so buys,
# fills and unwinds happen in most logs (the actions of tests.property.logs).
BREACHES: list[Any] = [
    ("book", 0, 150_000_000, "", "USD", 1500, "ACME"),
    ("book", 1, 100_000_000, "", "EUR", 900, "BOLT"),
]
PRICED = with_pricing()
GUARDED = with_pricing(max_spread_bps=str(MAX_SPREAD))

quotes = st.lists(
    st.tuples(
        st.one_of(st.just(0), st.integers(0, 200)),  # where in the log: often first
        st.sampled_from(ISSUERS_V2),
        st.one_of(st.just(5), st.just(3), st.sampled_from(TENORS)),  # mostly the hedge tenors
        st.sampled_from(SPREADS),
        st.one_of(st.just(0), st.integers(0, 8)),  # days old (quote_ttl_days is 5)
        st.sampled_from([None, "0.25", "0.4"]),
    ),
    max_size=40,
)


def insert_quotes(
    events: list[tuple[str, dict[str, Any]]], drawn: list[tuple[Any, ...]]
) -> list[tuple[str, dict[str, Any]]]:
    """The log with each drawn quote inserted, stamped like the event it precedes."""
    out = list(events)
    for n, (where, issuer, tenor, spread, age, recovery) in enumerate(drawn):
        if not out:
            break
        at = where % len(out)
        stamp = out[at][1]["occurred_at"]
        value: dict[str, Any] = {
            "schema_version": 1,
            "event_id": f"q{n}",
            "event_type": "cds.quote",
            "occurred_at": stamp,
            "issuer_id": issuer,
            "as_of_date": str(date.fromisoformat(stamp[:10]) - timedelta(days=age)),
            "tenor_years": tenor,
            "spread_bps": spread,
        }
        if recovery is not None:
            value["recovery"] = recovery
        out.insert(at, ("cds-quotes", value))
    return out


def records(events: list[tuple[str, dict[str, Any]]], config: HedgerConfig) -> list[dict[str, Any]]:
    """Every record of a replay, skipping topics that are no input (SPEC §9)."""
    engine = HedgingEngine(config)
    out = []
    for topic, event in events:
        if topic in engine.input_topics:
            out += [r.to_wire() for r in engine.process(topic, event).records]
    return out


def v2_fields(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in PRICE_FIELDS}


@PROFILE
@given(logs_v2)
def test_with_pricing_and_no_quotes_every_v2_field_is_the_v2_replays(actions: list[Any]) -> None:
    events = build_log(BREACHES + actions, CONFIG_V2)
    v2 = records(events, CONFIG_V2)
    v21 = records(events, PRICED)
    assert [v2_fields(r) for r in v21] == v2
    for record in v21:
        if record["action"] == "new":
            assert record["quoted_spread_bps"] is None and record["upfront_amount"] is None
        else:
            assert not set(PRICE_FIELDS) & record.keys()  # cancels carry no price


@PROFILE
@given(logs_v2, quotes)
def test_pricing_never_changes_a_notional_a_maturity_or_an_order_id(
    actions: list[Any], drawn: list[Any]
) -> None:
    events = insert_quotes(build_log(BREACHES + actions, CONFIG_V2), drawn)
    v2 = records(events, CONFIG_V2)
    v21 = records(events, PRICED)
    key = ("action", "order_id", "notional", "maturity_date")
    assert [tuple(r.get(k) for k in key) for r in v21] == [tuple(r.get(k) for k in key) for r in v2]
    assert [v2_fields(r) for r in v21] == v2  # no guard: nothing else changes either
    for record in v21:
        if record["action"] != "new" or record["upfront_fraction"] is None:
            continue
        fraction = Decimal(record["upfront_fraction"])
        amount = Decimal(record["upfront_amount"])
        notional = Decimal(record["notional"])
        # the amount is the notional times the unrounded fraction
        assert abs(amount - notional * fraction) <= notional * Decimal("0.000000005") + Decimal(
            "0.01"
        )
        spread, coupon = Decimal(record["quoted_spread_bps"]), record["coupon_bps"]
        if record["side"] == "BUY_PROTECTION":
            # SPEC §14.6: on the fitted contract U = (S - C) x (RPV01 / P(Ds) - alpha)
            assert record["quote_tenor_years"] == record["tenor_years"]
            if spread > coupon:
                assert fraction > 0
            elif spread < coupon:
                assert fraction < 0
        else:
            n = record["quote_tenor_years"]
            as_of = date.fromisoformat(record["as_of"][:10])
            maturity = date.fromisoformat(record["maturity_date"])
            assert standard_maturity(as_of, n) >= maturity
            assert n == 1 or standard_maturity(as_of, n - 1) < maturity


@PROFILE
@given(logs_v2, quotes)
def test_the_guard_withholds_exactly_the_unquoted_and_too_wide_buys(
    actions: list[Any], drawn: list[Any]
) -> None:
    events = insert_quotes(build_log(BREACHES + actions, CONFIG_V2), drawn)
    emitted: set[str] = set()
    withheld: set[str] = set()
    for record in records(events, GUARDED):
        if record["action"] == "withhold":
            assert record["side"] == "BUY_PROTECTION"
            assert record["order_reason"] in ("limit_breach", "group_limit_breach")
            spread = record["quoted_spread_bps"]
            if record["reason"] == "no_quote":
                assert spread is None
            else:
                assert record["reason"] == "spread_above_max"
                assert Decimal(spread) > MAX_SPREAD
            withheld.add(record["order_id"])
        elif record["action"] == "new":
            if record["side"] == "BUY_PROTECTION":
                assert record["quoted_spread_bps"] is not None
                assert Decimal(record["quoted_spread_bps"]) <= MAX_SPREAD
            emitted.add(record["order_id"])
    assert not emitted & withheld  # a withheld leg's id is never reused
