"""Contract v2.1 live: quotes, priced orders, withheld legs and risk on the real broker.

A worker on the v2.1 desk configuration (`[pricing]`) reads cds-quotes with
the other inputs. With one partition end to end, and each run of one topic
published only once the events before it are processed (Kafka orders
nothing across two topics), its records equal the contract's desk-v21
records; the replay of its journal (`dump` then `replay --control`) equals
every live record; and /metrics shows each issuer's quoted spread, JTD and
CS01 as the replay's risk report gives them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from decimal import Decimal
from itertools import groupby
from pathlib import Path

import pytest

from streams.kafka_io import dump_topic, ensure_topics, publish_log
from streams.offline.replay import replay_files
from streams.settings import load_config
from tests.factories import COMPARE_ORDERS, EXAMPLES, REPO, prom_samples
from tests.integration.prometheus_harness import LocalPrometheus, dashboard_queries, needs_pricing
from tests.integration.worker_harness import WorkerProcess, read_jsonl, wait_until_idle
from tests.kafka_broker import LocalKafka

pytestmark = pytest.mark.kafka
INPUTS = {
    "loan-bookings": "loan_bookings",
    "cds-executions": "cds_executions",
    "desk-clock": "desk_clock",
    "cds-quotes": "cds_quotes",
}
CONFIG = REPO / "config" / "desk-v21.toml"
DASHBOARD = REPO / "config" / "grafana" / "dashboards" / "cds-hedger.json"


def compare(expected: Path, actual: Path, *extra: str) -> None:
    result = subprocess.run(
        [sys.executable, str(COMPARE_ORDERS), str(expected), str(actual), *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_live_v21_records_and_risk_equal_the_journal_replay(
    kafka: LocalKafka, unique: str, tmp_path: Path
) -> None:
    worker = WorkerProcess(kafka.bootstrap, unique, tmp_path, partitions=1, config=CONFIG)
    topic_map = {name: worker.topics[field] for name, field in INPUTS.items()}
    asyncio.run(ensure_topics(kafka.bootstrap, list(topic_map.values()), 1))
    worker.start()
    try:
        lines = (EXAMPLES / "desk-v21.jsonl").read_text().splitlines()
        for n, (_, run) in enumerate(groupby(lines, key=lambda line: json.loads(line)["topic"])):
            part = tmp_path / f"part-{n}.jsonl"
            part.write_text("\n".join(run) + "\n")
            asyncio.run(publish_log(part, kafka.bootstrap, topic_map=topic_map))
            wait_until_idle(worker, settle=0.5)
        asyncio.run(dump_topic(worker.topics["orders"], kafka.bootstrap, tmp_path / "o.jsonl"))
        live = tmp_path / "live.orders.jsonl"
        live.write_text(
            "".join(json.dumps(line["value"]) + "\n" for line in read_jsonl(tmp_path / "o.jsonl"))
        )
        # the contract's records, price fields within SPEC §14.10
        compare(EXAMPLES / "desk-v21.orders.jsonl", live)
        records = read_jsonl(live)
        withheld = {r["reason"] for r in records if r["action"] == "withhold"}
        assert withheld == {"no_quote", "spread_above_max"}
        assert any(r["action"] == "new" and r["upfront_amount"] is not None for r in records)
        # bad quotes are dead letters with their reason, source and payload
        dead = tmp_path / "dead.jsonl"
        asyncio.run(dump_topic(worker.topics["dead_letters"], kafka.bootstrap, dead))
        expected_dead = sorted(d["reason"] for d in read_jsonl(EXAMPLES / "desk-v21.dead.jsonl"))
        live_dead = [d["value"] for d in read_jsonl(dead)]
        assert sorted(d["reason"] for d in live_dead) == expected_dead
        quote_dead = [d for d in live_dead if d["source"]["topic"] == worker.topics["cds_quotes"]]
        assert quote_dead and all(d["payload"] for d in quote_dead)

        # the journal, dumped and replayed, gives every live record
        journal = tmp_path / "journal.jsonl"
        asyncio.run(dump_topic(worker.topics["journal"], kafka.bootstrap, journal, journal=True))
        assert any(line["topic"] == "cds-quotes" for line in read_jsonl(journal))
        replayed = tmp_path / "replay.orders.jsonl"
        risk = tmp_path / "replay.risk.jsonl"
        replay_files(
            load_config(CONFIG),
            journal,
            replayed,
            tmp_path / "r.dead.jsonl",
            control=True,
            risk_path=risk,
        )
        compare(replayed, live)
        compare(
            EXAMPLES / "desk-v21.orders.jsonl",
            replayed,
            "--risk",
            str(EXAMPLES / "desk-v21.risk.jsonl"),
            str(risk),
        )

        # /metrics: each issuer's quoted spread, JTD and CS01 as the replay's risk report
        samples = prom_samples(worker.scrape())
        report = read_jsonl(risk)
        assert report
        figures = []
        for line in report:
            issuer = line["issuer"]
            jtd = samples[("hedger_issuer_jtd_base", (("issuer", issuer),))]
            assert jtd == pytest.approx(float(Decimal(line["jtd"])), abs=0.01)
            cs01 = samples.get(("hedger_issuer_credit_spread_risk_base", (("issuer", issuer),)))
            if line["cs01"] is None:
                assert cs01 is None
            else:
                assert cs01 == pytest.approx(float(Decimal(line["cs01"])), abs=0.01)
            spread = None
            if line["quoted_spread_bps"] is not None:
                tenor = str(line["hedge_tenor_years"])
                key = (("issuer", issuer), ("tenor", tenor))
                spread = samples[("hedger_quote_spread_bps", key)]
                assert spread == float(Decimal(line["quoted_spread_bps"]))
            figures.append((issuer, spread, jtd, cs01, line))
        withheld_metric = {
            dict(labels)["reason"]: value
            for (name, labels), value in samples.items()
            if name == "hedger_withheld_legs_total"
        }
        assert set(withheld_metric) == {"no_quote", "spread_above_max"}
        paid = sum(v for (n, _), v in samples.items() if n == "hedger_upfront_paid_base_total")
        assert paid > 0
        print(f"withheld legs {withheld_metric}, upfront paid {paid:.2f}")
        for issuer, spread, jtd, cs01, line in figures:  # shown with -s: the run's figures
            print(
                f"{issuer}: live spread={spread} jtd={jtd:.2f} cs01={cs01} | "
                f"replay spread={line['quoted_spread_bps']} jtd={line['jtd']} cs01={line['cs01']}"
            )

        # the dashboard's price and risk panels, queried on a Prometheus scraping this worker
        price_queries = [(t, e) for t, e in dashboard_queries(DASHBOARD) if needs_pricing(e)]
        assert len(price_queries) >= 5
        with LocalPrometheus([f"127.0.0.1:{worker.metrics_port}"]) as prometheus:
            prometheus.wait_for_target_up(timeout=30)
            prometheus.wait_for("hedger_withheld_legs_total > 0", timeout=30)
            time.sleep(5)  # rate() and increase() need two samples inside their window
            empty = [(t, e) for t, e in price_queries if not prometheus.query(e)]
        assert empty == [], f"price panels whose query returned no data: {empty}"
    finally:
        assert worker.stop() == 0
