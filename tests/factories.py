"""Builders for test events and configurations (hand-written, no code under test)."""

from __future__ import annotations

import copy
import itertools
import tomllib
from pathlib import Path
from typing import Any

from hedger.config import HedgerConfig, config_from_mapping

REPO = Path(__file__).resolve().parents[1]
# The contract's public examples and its comparison tool, copied into the repository
# (docs/contract.md; scripts/check-contract compares them with the published ones).
EXAMPLES = REPO / "tests" / "data" / "examples"
COMPARE_ORDERS = REPO / "tests" / "data" / "tools" / "compare_orders.py"

BASE_CONFIG: dict[str, Any] = {
    "risk": {
        "base_currency": "USD",
        "tier1_capital": "60000000000",
        "large_exposure_limit_pct": "25",
        "default_issuer_limit": "5000000000",
        "trigger_ratio": "1.00",
        "target_ratio": "0.90",
        "unwind_ratio": "0.60",
        "max_maturity_years": "5",
    },
    "hedge": {
        "tenors_years": [1, 3, 5, 7, 10],
        "lot_size": "1000000",
        "min_order_notional": "5000000",
        "max_order_notional": "250000000",
        "max_decision_notional": "1000000000",
        "coupon_bps": 100,
        "doc_clause": "MR14",
        "seniority": "SNRFOR",
    },
    "fx": {"USD": "1", "EUR": "1.08", "GBP": "1.27", "JPY": "0.0067"},
    "issuers": {"ACME": {"limit": "100000000"}},
}


def prom_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of a Prometheus text exposition by (name, sorted labels)."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def config_data(**sections: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of the base configuration with some keys of some sections replaced."""
    data = copy.deepcopy(BASE_CONFIG)
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return data


def make_config(**sections: dict[str, Any]) -> HedgerConfig:
    """A validated configuration: the base one with overrides."""
    return config_from_mapping(config_data(**sections))


def example_config() -> HedgerConfig:
    """The SPEC examples' configuration."""
    return config_from_mapping(tomllib.loads((EXAMPLES / "hedger.toml").read_text()))


_ids = itertools.count(1)


def _event(event_type: str, day: str, **fields: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": fields.pop("event_id", None) or f"t-{next(_ids)}",
        "event_type": event_type,
        "occurred_at": f"{day}T09:00:00Z",
        **fields,
    }


def booked(
    loan: str,
    notional: str,
    *,
    issuer: str = "ACME",
    currency: str = "USD",
    maturity: str = "2030-01-01",
    day: str = "2026-01-02",
    seq: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    return _event(
        "loan.booked",
        day,
        loan_id=loan,
        issuer_id=issuer,
        sequence=seq,
        notional=notional,
        currency=currency,
        maturity_date=maturity,
        **extra,
    )


def amended(
    loan: str, seq: int, *, issuer: str = "ACME", day: str = "2026-01-03", **fields: Any
) -> dict[str, Any]:
    return _event("loan.amended", day, loan_id=loan, issuer_id=issuer, sequence=seq, **fields)


def repaid(
    loan: str, seq: int, amount: str, *, issuer: str = "ACME", day: str = "2026-01-03", **extra: Any
) -> dict[str, Any]:
    return _event(
        "loan.repaid", day, loan_id=loan, issuer_id=issuer, sequence=seq, amount=amount, **extra
    )


def cancelled(
    loan: str, seq: int, *, issuer: str = "ACME", day: str = "2026-01-03", **extra: Any
) -> dict[str, Any]:
    return _event("loan.cancelled", day, loan_id=loan, issuer_id=issuer, sequence=seq, **extra)


def report(
    order_id: str,
    status: str,
    filled: str | None = None,
    *,
    issuer: str = "ACME",
    day: str = "2026-01-04",
    **extra: Any,
) -> dict[str, Any]:
    fields: dict[str, Any] = {"order_id": order_id, "issuer_id": issuer, "status": status}
    if filled is not None:
        fields["filled_notional"] = filled
    return _event("execution.report", day, **fields, **extra)


def protection(
    notional: str,
    *,
    issuer: str = "ACME",
    side: str = "BUY_PROTECTION",
    currency: str = "USD",
    maturity: str = "2031-06-20",
    doc: str = "MR14",
    day: str = "2026-01-02",
    **extra: Any,
) -> dict[str, Any]:
    return _event(
        "protection.booked",
        day,
        issuer_id=issuer,
        side=side,
        notional=notional,
        currency=currency,
        maturity_date=maturity,
        doc_clause=doc,
        **extra,
    )


def cancel_request(order_id: str, issuer: str, as_of: str) -> dict[str, Any]:
    """A `cds-hedge-orders` cancel request (SPEC §7) for an expired order."""
    return {
        "action": "cancel",
        "order_id": order_id,
        "issuer_id": issuer,
        "reason": "expired",
        "trigger_event_id": "k-9",
        "as_of": as_of,
    }


def quote(
    spread: str,
    *,
    issuer: str = "ACME",
    tenor: int = 5,
    as_of: str = "2026-02-02",
    day: str = "2026-02-02",
    **extra: Any,
) -> dict[str, Any]:
    """A `cds.quote` (v2.1) on the `cds-quotes` topic."""
    return _event(
        "cds.quote",
        day,
        issuer_id=issuer,
        as_of_date=as_of,
        tenor_years=tenor,
        spread_bps=spread,
        **extra,
    )
