"""Contract v2 cost, measured side by side with v1 on the same log (issue: contract v2 core).

    .venv/bin/python -m benchmarks.v2_bench [--events 200000] [--repeat 3] [--units 2000]

1. A closed-loop log: the 50-loans-per-issuer bookings log of `genlog`, with a
   `clock.tick` every simulated day and a responder that fills each order the
   bot emits (under the v2 configuration) a few events later, from one of 20
   sellers. It is replayed under the v1 configuration (no groups, sellers or
   expiry) and under the v2 one (groups of 3, 20 sellers with limits, a
   default seller limit, order expiry). Target: v2 / v1 per event <= 1.2.
2. Ticks: an engine holding 2,000 units with state (a loan and protection
   each); the cost of one tick divided by the units it visits. Target <= 25 us.

Best of --repeat runs each; both configurations run in this process, one
after the other, on the same file.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

from benchmarks.genlog import BENCH_CONFIG, generate
from benchmarks.replay_bench import best_of
from hedger.config import HedgerConfig, config_from_mapping
from hedger.engine import HedgingEngine
from streams.offline.replay import replay_files

SELLERS = [f"SELLER{n:02d}" for n in range(20)]
RESPONSE_DELAY = 3  # events between an order and its fill
# Limits low enough that issuers breach and the responder has work.
V1_LIMITS = BENCH_CONFIG.replace(
    'default_issuer_limit = "200000000000000"', 'default_issuer_limit = "9000000000"'
).replace('tier1_capital = "900000000000000"', 'tier1_capital = "120000000000"')


def v2_config_text(issuers: list[str], base: str = V1_LIMITS) -> str:
    """A v1 text (a BENCH_CONFIG variant) plus groups of 3 of `issuers`, 20 sellers, expiry."""
    text = base.replace(
        'max_maturity_years = "5"', 'max_maturity_years = "5"\ndefault_seller_limit = "60000000000"'
    ).replace('seniority = "SNRFOR"', 'seniority = "SNRFOR"\norder_ttl_days = 5')
    groups = []
    for g in range(len(issuers) // 3):
        members = ", ".join(f'"{issuer}"' for issuer in issuers[3 * g : 3 * g + 3])
        groups.append(f'[groups.GRP{g:05d}]\nmembers = [{members}]\nlimit = "25000000000"\n')
    sellers = []
    for n, seller in enumerate(SELLERS):
        tie = f'connected_to = ["{issuers[n]}"]\n' if n % 5 == 0 and n < len(issuers) else ""
        sellers.append(f'[sellers.{seller}]\nlimit = "{40 + n}000000000"\n{tie}')
    return text + "\n" + "\n".join(groups) + "\n" + "\n".join(sellers)


def closed_loop(bookings: list[str], config: HedgerConfig) -> Iterator[str]:
    """Bookings with a daily tick, and fills answering the orders the bot emits."""
    engine = HedgingEngine(config)
    pending: list[tuple[int, dict[str, object]]] = []
    day = None
    fills = 0
    for n, line in enumerate(bookings):
        envelope = json.loads(line)
        stamp = envelope["value"]["occurred_at"]
        lines = [line]
        if day is not None and stamp[:10] != day:
            tick = {
                "schema_version": 1,
                "event_id": f"tick-{stamp[:10]}",
                "event_type": "clock.tick",
                "occurred_at": f"{stamp[:10]}T00:00:00.000Z",
            }
            lines.insert(0, json.dumps({"topic": "desk-clock", "value": tick}))
        day = stamp[:10]
        while pending and pending[0][0] <= n:
            _, order = pending.pop(0)
            fills += 1
            report = {
                "schema_version": 1,
                "event_id": f"fill-{fills}",
                "event_type": "execution.report",
                "occurred_at": stamp,
                "order_id": order["order_id"],
                "issuer_id": order["issuer_id"],
                "status": "filled",
                "filled_notional": order["notional"],
                "counterparty": SELLERS[fills % len(SELLERS)],
            }
            lines.append(
                json.dumps({"topic": "cds-executions", "key": order["issuer_id"], "value": report})
            )
        for out in lines:
            record = json.loads(out)
            outcome = engine.process(record["topic"], record["value"])
            for order in outcome.orders:
                pending.append((n + RESPONSE_DELAY, order.to_wire()))
            yield out


def tick_cost(units: int, repeat: int) -> float:
    """Seconds per visited unit of one tick over `units` units with state."""
    config = config_from_mapping(tomllib.loads(BENCH_CONFIG))
    engine = HedgingEngine(config)
    for n in range(units):
        issuer = f"U{n:05d}"
        engine.process(
            "loan-bookings",
            {
                "schema_version": 1,
                "event_id": f"l{n}",
                "event_type": "loan.booked",
                "occurred_at": "2026-01-05T09:00:00Z",
                "loan_id": f"L{n}",
                "issuer_id": issuer,
                "sequence": 1,
                "notional": "100000000",
                "currency": "USD",
                "maturity_date": "2029-06-30",
            },
        )
        engine.process(
            "cds-executions",
            {
                "schema_version": 1,
                "event_id": f"p{n}",
                "event_type": "protection.booked",
                "occurred_at": "2026-01-05T09:00:00Z",
                "issuer_id": issuer,
                "side": "BUY_PROTECTION",
                "notional": "50000000",
                "currency": "EUR",
                "maturity_date": "2030-06-20",
                "doc_clause": "MR14",
                "counterparty": "S1",
            },
        )
    best = float("inf")
    for k in range(repeat):
        gc.collect()
        tick = {
            "schema_version": 1,
            "event_id": f"t{k}",
            "event_type": "clock.tick",
            "occurred_at": f"2026-01-{6 + k:02d}T00:00:00Z",
        }
        start = time.perf_counter()
        outcome = engine.process("desk-clock", tick)
        best = min(best, time.perf_counter() - start)
        assert len(outcome.views) == units and not outcome.records
    return best / units


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--units", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hedger-v2-bench-"))
    bookings = list(generate(args.events, 50))
    issuers = sorted({json.loads(line)["value"]["issuer_id"] for line in bookings})
    v1 = config_from_mapping(tomllib.loads(V1_LIMITS))
    v2 = config_from_mapping(tomllib.loads(v2_config_text(issuers)))
    log = work / "closed-loop.jsonl"
    log.write_text("\n".join(closed_loop(bookings, v2)) + "\n")
    lines = sum(1 for _ in log.open())
    results = {}
    for name, config in (("v1", v1), ("v2", v2)):
        seconds = best_of(
            args.repeat,
            lambda config=config: replay_files(
                config,
                log,
                work / "orders.jsonl",
                work / "dead.jsonl",
                sellers_path=work / "sellers.jsonl",
            ),
        )
        records = sum(1 for _ in (work / "orders.jsonl").open())
        results[name] = seconds
        print(
            f"{name} configuration: {lines / seconds:>8,.0f} ev/s "
            f"({seconds / lines * 1e6:5.1f} us/ev) | records {records}"
        )
    print(
        f"per-event cost, v2 vs v1 on the same {lines:,}-line log: "
        f"{results['v2'] / results['v1']:4.2f}x (target <= 1.2)"
    )
    per_unit = tick_cost(args.units, args.repeat)
    print(
        f"tick over {args.units:,} units with state: {per_unit * 1e6:5.1f} us per unit "
        "(target <= 25)"
    )


if __name__ == "__main__":
    main()
