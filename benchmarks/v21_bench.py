"""Contract v2.1 cost, measured side by side with v2 on the same log (the price of protection).

    .venv/bin/python -m benchmarks.v21_bench [--events 200000] [--repeat 3]

The closed-loop log of `benchmarks.v2_bench` (bookings, a daily tick, fills
answering the bot's orders) with a quote feed added: every simulated day a
third of the issuers get a 3Y and a 5Y `cds.quote` (spreads 20 to 600bp,
some with their own recovery), so a quote is usable for most orders. The
same file is replayed under the v2 configuration (cds-quotes is no input
topic: its lines are skipped) and under that configuration plus `[pricing]`
(quotes held, every new order priced through QuantLib). The risk report,
written once at the end of a replay, is timed on its own. No guard is
configured, so both runs emit the same orders and the difference is the
price alone. Target: v2.1 / v2 per event <= 1.3.

The price is computed per order, not per event: the figures printed show how
many orders were priced and how many hazard fits QuantLib ran (fits are
memoised per as-of date and quote). Best of --repeat runs each, the two
configurations interleaved so that both see the same machine load.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import tempfile
import time
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path

from benchmarks.genlog import generate
from benchmarks.v2_bench import closed_loop, v2_config_text
from hedger.config import config_from_mapping
from hedger.pricing import clear_caches, fit_hazard
from streams.offline.replay import replay_files

PRICING = '\n[pricing]\ndiscount_rate = "0.03"\nrecovery = "0.40"\nquote_ttl_days = 5\n'
QUOTED_TENORS = (3, 5)


def with_quotes(lines: Iterable[str], issuers: list[str], seed: int = 11) -> Iterator[str]:
    """The log with, at the start of each day, 3Y and 5Y quotes for a third of the issuers."""
    rng = random.Random(seed)
    day = None
    days = 0
    quotes = 0
    for line in lines:
        stamp = json.loads(line)["value"]["occurred_at"]
        if stamp[:10] != day:
            day = stamp[:10]
            days += 1
            for n, issuer in enumerate(issuers):
                if n % 3 != days % 3:
                    continue
                for tenor in QUOTED_TENORS:
                    quotes += 1
                    value: dict[str, object] = {
                        "schema_version": 1,
                        "event_id": f"q-{quotes}",
                        "event_type": "cds.quote",
                        "occurred_at": f"{day}T00:00:00.000Z",
                        "issuer_id": issuer,
                        "as_of_date": day,
                        "tenor_years": tenor,
                        "spread_bps": f"{rng.randint(2000, 60000) / 100}",
                    }
                    if rng.random() < 0.2:
                        value["recovery"] = "0.35"
                    yield json.dumps({"topic": "cds-quotes", "key": issuer, "value": value})
        yield line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hedger-v21-bench-"))
    bookings = list(generate(args.events, 50))
    issuers = sorted({json.loads(line)["value"]["issuer_id"] for line in bookings})
    v2_text = v2_config_text(issuers)
    v2 = config_from_mapping(tomllib.loads(v2_text))
    v21 = config_from_mapping(tomllib.loads(v2_text + PRICING))
    log = work / "closed-loop-quotes.jsonl"
    log.write_text("\n".join(with_quotes(closed_loop(bookings, v2), issuers)) + "\n")
    lines = sum(1 for _ in log.open())
    quote_lines = sum(1 for line in log.open() if '"cds-quotes"' in line)
    runs = (("v2", v2), ("v2.1", v21))
    best = {name: float("inf") for name, _ in runs}
    report = float("inf")
    # Interleaved (v2, v2.1, v2, v2.1, ...) so both see the same machine load.
    for _ in range(args.repeat):
        for name, config in runs:
            clear_caches()  # every run prices from a cold start
            gc.collect()
            start = time.perf_counter()
            engine, _ = replay_files(
                config,
                log,
                work / f"orders-{name}.jsonl",
                work / "dead.jsonl",
                sellers_path=work / "sellers.jsonl",
            )
            best[name] = min(best[name], time.perf_counter() - start)
            if name == "v2.1":  # the end-of-run risk report, timed on its own
                start = time.perf_counter()
                issuers_reported = len(engine.risk_report())
                report = min(report, time.perf_counter() - start)
    results = best
    for name, _ in runs:
        records = [json.loads(line) for line in (work / f"orders-{name}.jsonl").open()]
        priced = sum(1 for r in records if r.get("upfront_fraction") is not None)
        fits = fit_hazard.cache_info().currsize if name == "v2.1" else 0
        seconds = best[name]
        print(
            f"{name:4} configuration: {lines / seconds:>8,.0f} lines/s "
            f"({seconds / lines * 1e6:5.1f} us/line) | records {len(records):,}, "
            f"priced {priced:,}, hazard fits {fits:,}"
        )
    print(
        f"per-line cost, v2.1 vs v2 on the same {lines:,}-line log "
        f"({quote_lines:,} quote lines): {results['v2.1'] / results['v2']:4.2f}x (target <= 1.3)"
    )
    print(
        f"risk report at the end (--risk-out, once per run): {issuers_reported:,} issuers "
        f"in {report:.2f} s (two hazard fits and the CS01 upfronts per quoted issuer)"
    )


if __name__ == "__main__":
    main()
