"""Write the project's sample booking log (samples/desk-day.jsonl).

A month of a credit desk lending to AI hyperscalers: bookings, amendments,
repayments and cancellations; the venue's fills of the bot's own orders (the
bot's engine is run alongside to know them); a protection trade booked by
hand; and a few bad payloads that must be dead-lettered. Deterministic: the
same seed writes the same file.

    .venv/bin/python scripts/make_sample_log.py [--seed N] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hedger.engine import HedgingEngine
from streams.settings import load_config

ROOT = Path(__file__).resolve().parents[1]
DESKS = ("LEV-FIN", "IG-CORP", "INFRA")
# issuer -> (currencies, typical loan in millions)
BORROWERS = {
    "MSFT": (("USD", "EUR"), 900),
    "GOOGL": (("USD",), 800),
    "AMZN": (("USD", "GBP"), 700),
    "META": (("USD", "EUR"), 650),
    "ORCL": (("USD",), 400),
    "CRWV": (("USD",), 150),
    "NBIS": (("USD", "EUR"), 120),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--out", type=Path, default=ROOT / "samples" / "desk-day.jsonl")
    parser.add_argument("--events", type=int, default=240)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    engine = HedgingEngine(load_config(ROOT / "config" / "hedger.toml"))
    clock = datetime(2026, 3, 2, 8, 0, 0, tzinfo=UTC)
    lines: list[dict[str, Any]] = []
    loans: dict[str, tuple[str, int]] = {}  # loan_id -> (issuer, last sequence)
    pending_fills: list[tuple[str, str, str, str]] = []  # (order_id, issuer, status, amount)
    n = 0

    def emit(topic: str, key: str, value: Any) -> None:
        nonlocal n
        lines.append({"topic": topic, "key": key, "value": value})
        if isinstance(value, dict):
            outcome = engine.process(topic, value)
            for order in outcome.orders:
                notional = order.notional
                if rng.random() < 0.1:
                    pending_fills.append((order.order_id, order.issuer_id, "rejected", ""))
                elif rng.random() < 0.4 and notional >= 10_000_000:
                    part = (notional / 2).quantize(1)
                    pending_fills.append(
                        (order.order_id, order.issuer_id, "partially_filled", str(part))
                    )
                    pending_fills.append(
                        (order.order_id, order.issuer_id, "filled", str(notional - part))
                    )
                else:
                    pending_fills.append((order.order_id, order.issuer_id, "filled", str(notional)))

    def stamp() -> str:
        return clock.strftime("%Y-%m-%dT%H:%M:%S.") + f"{clock.microsecond // 1000:03d}Z"

    while n < args.events:
        n += 1
        clock += timedelta(minutes=rng.randint(20, 400))
        event_id = f"ev-{n:05d}"
        head = {"schema_version": 1, "event_id": event_id, "occurred_at": stamp()}
        roll = rng.random()
        if pending_fills and roll < 0.3:
            order_id, issuer, status, amount = pending_fills.pop(0)
            value = head | {
                "event_type": "execution.report",
                "order_id": order_id,
                "issuer_id": issuer,
                "status": status,
                "counterparty": rng.choice(["INSURER-A", "FUND-B", "DEALER-C"]),
            }
            if amount:
                value["filled_notional"] = amount
            emit("cds-executions", issuer, value)
        elif roll < 0.5 or not loans:
            issuer = rng.choice(list(BORROWERS))
            currencies, size = BORROWERS[issuer]
            loan_id = f"{issuer}-{len(loans) + 1:04d}"
            loans[loan_id] = (issuer, 1)
            notional = rng.randint(size // 4, size) * 1_000_000
            maturity = clock.date() + timedelta(days=rng.randint(700, 3650))
            emit(
                "loan-bookings",
                loan_id,
                head
                | {
                    "event_type": "loan.booked",
                    "loan_id": loan_id,
                    "issuer_id": issuer,
                    "sequence": 1,
                    "notional": str(notional),
                    "currency": rng.choice(currencies),
                    "maturity_date": maturity.isoformat(),
                    "desk": rng.choice(DESKS),
                },
            )
        elif roll < 0.9:
            loan_id = rng.choice(sorted(loans))
            issuer, seq = loans[loan_id]
            state = engine.loans.get(loan_id)
            if state is None or state.closed:
                continue
            loans[loan_id] = (issuer, seq + 1)
            base = head | {"loan_id": loan_id, "issuer_id": issuer, "sequence": seq + 1}
            kind = rng.random()
            if kind < 0.3:
                emit(
                    "loan-bookings",
                    loan_id,
                    base
                    | {
                        "event_type": "loan.amended",
                        "notional": str(
                            int(
                                state.outstanding
                                * rng.choice([Decimal("1.1"), Decimal("1.25"), Decimal("0.8")])
                            )
                            // 1_000_000
                            * 1_000_000
                        ),
                    },
                )
            elif kind < 0.85:
                amount = (
                    int(
                        state.outstanding
                        * rng.choice([Decimal("0.25"), Decimal("0.5"), Decimal(1)])
                    )
                    // 1_000_000
                    * 1_000_000
                )
                emit(
                    "loan-bookings",
                    loan_id,
                    base | {"event_type": "loan.repaid", "amount": str(max(amount, 1_000_000))},
                )
            else:
                emit("loan-bookings", loan_id, base | {"event_type": "loan.cancelled"})
        elif roll < 0.94:
            issuer = rng.choice(["MSFT", "META", "ORCL"])
            emit(
                "cds-executions",
                issuer,
                head
                | {
                    "event_type": "protection.booked",
                    "issuer_id": issuer,
                    "side": "BUY_PROTECTION",
                    "notional": str(rng.randint(5, 40) * 10_000_000),
                    "currency": "USD",
                    "maturity_date": (clock.date() + timedelta(days=1800)).isoformat(),
                    "doc_clause": rng.choice(["MR14", "XR14"]),
                    "counterparty": "MANUAL-HEDGE",
                },
            )
        else:
            bad = rng.choice(
                [
                    (
                        "loan-bookings",
                        "BAD-1",
                        '{"schema_version": 1, "event_id": "'
                        + event_id
                        + '", "event_type": "loan.booked",',
                    ),
                    (
                        "loan-bookings",
                        "BAD-2",
                        head
                        | {
                            "event_type": "loan.booked",
                            "loan_id": "BAD-2",
                            "issuer_id": "ORCL",
                            "sequence": 1,
                            "notional": "100000000",
                            "currency": "SEK",
                            "maturity_date": "2030-01-01",
                        },
                    ),
                    (
                        "loan-bookings",
                        "GHOST",
                        head
                        | {
                            "event_type": "loan.repaid",
                            "loan_id": "GHOST",
                            "issuer_id": "MSFT",
                            "sequence": 2,
                            "amount": "5000000",
                        },
                    ),
                    (
                        "cds-executions",
                        "MSFT",
                        head
                        | {
                            "event_type": "execution.report",
                            "order_id": "never-sent#1",
                            "issuer_id": "MSFT",
                            "status": "filled",
                            "filled_notional": "1000000",
                        },
                    ),
                ]
            )
            emit(*bad)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as out:
        for line in lines:
            out.write(json.dumps(line) + "\n")
    print(f"wrote {len(lines)} events to {args.out}")


if __name__ == "__main__":
    main()
