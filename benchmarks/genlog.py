"""Synthetic booking logs for benchmarks: booked, amended and cancelled loans.

`generate(events, loans_per_issuer, seed)` yields replay-log lines (SPEC §9)
whose issuers each hold about `loans_per_issuer` loans. Deterministic for a
seed. Only the standard library: the generator must not share code with what
it measures.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

BOOKED_SHARE = 0.7  # the rest is split between amendments and cancellations
CURRENCIES = ("USD", "USD", "EUR", "GBP", "JPY")


def generate(events: int, loans_per_issuer: int, seed: int = 7) -> Iterator[str]:
    """Lines of a bookings-only log of `events` events."""
    rng = random.Random(seed)
    issuers = max(1, round(events * BOOKED_SHARE / loans_per_issuer))
    clock = datetime(2026, 1, 5, 8, 0, 0, tzinfo=UTC)
    open_loans: list[tuple[str, str, int]] = []  # (loan_id, issuer, sequence)
    booked = 0
    for n in range(events):
        clock += timedelta(seconds=rng.randint(1, 30))
        stamp = clock.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        head = {"schema_version": 1, "event_id": f"b-{n}", "occurred_at": stamp}
        roll = rng.random()
        if roll < BOOKED_SHARE or len(open_loans) < 10:
            booked += 1
            loan_id = f"L{booked:07d}"
            issuer = f"ISS{booked % issuers:05d}"
            maturity = clock.date() + timedelta(days=rng.randint(365, 3650))
            value = head | {
                "event_type": "loan.booked",
                "loan_id": loan_id,
                "issuer_id": issuer,
                "sequence": 1,
                "notional": f"{rng.randint(1, 500) * 1_000_000}",
                "currency": rng.choice(CURRENCIES),
                "maturity_date": maturity.isoformat(),
                "desk": "BENCH",
            }
            open_loans.append((loan_id, issuer, 1))
        else:
            index = rng.randrange(len(open_loans))
            loan_id, issuer, seq = open_loans[index]
            base = head | {"loan_id": loan_id, "issuer_id": issuer, "sequence": seq + 1}
            if roll < BOOKED_SHARE + (1 - BOOKED_SHARE) * 0.6:
                value = base | {
                    "event_type": "loan.amended",
                    "notional": f"{rng.randint(1, 500) * 1_000_000}.50",
                }
                open_loans[index] = (loan_id, issuer, seq + 1)
            else:
                value = base | {"event_type": "loan.cancelled"}
                open_loans[index] = open_loans[-1]
                open_loans.pop()
        yield json.dumps({"topic": "loan-bookings", "key": value["loan_id"], "value": value})


BENCH_CONFIG = """\
# High limits: the benchmark measures event processing, not order writing.
[risk]
base_currency = "USD"
tier1_capital = "900000000000000"
large_exposure_limit_pct = "25"
default_issuer_limit = "200000000000000"
trigger_ratio = "1.00"
target_ratio = "0.90"
unwind_ratio = "0.60"
max_maturity_years = "5"

[hedge]
tenors_years = [1, 3, 5, 7, 10]
lot_size = "1000000"
min_order_notional = "5000000"
max_order_notional = "250000000"
max_decision_notional = "1000000000"
coupon_bps = 100
doc_clause = "MR14"
seniority = "SNRFOR"

[fx]
USD = "1"
EUR = "1.08"
GBP = "1.27"
JPY = "0.0067"
"""
