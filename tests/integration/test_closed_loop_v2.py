"""The closed loop of contract v2 on the real broker, SIGKILLs included.

The worker (config/desk-v2.toml, 4 partitions) hedges loan bookings published
day by day, each business day closed by a desk-clock tick; the paper venue
(`hedger paper-venue`, its own process) reads the orders topic and answers on
cds-executions from several counterparties, rejects some orders and leaves a
share unanswered, so the worker expires them and the venue answers the cancel
requests. Each day waits until the loop is quiet (the worker idle and the
venue silent) before the next one is published.

Expected records come from `hedger dump` of the worker's journal and `hedger
replay --control` of that dump (the offline kernel with the seller status
changes where each journal partition applied them). Outputs are read
`read_committed`: with Kafka transactions a SIGKILL neither loses nor
repeats a record. Each test prints its figures (inputs, orders, cancels, dead
letters, blocked sellers, duplicates, missing, kills, restart-to-ready times).
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from streams.kafka_io import ensure_topics, lag_by_partition, publish_log
from streams.settings import load_config
from tests.factories import REPO
from tests.integration.worker_harness import WorkerProcess, read_jsonl, wait_until_idle
from tests.kafka_broker import LocalKafka
from tests.support.accounting import accounting
from tests.support.cli import hedger_ok

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CONFIG_PATH = REPO / "config" / "desk-v2.toml"
CONFIG = load_config(CONFIG_PATH)
START = date(2026, 3, 2)  # a Monday
BUSINESS_DAYS = 12  # the order ttl is 5 days: orders of the first week expire in the second
# The venue: every seller of desk-v2.toml but ABILENE-INFRA, and fills without a
# name (UNSPECIFIED). The small sellers' limits (300m to 1.5bn) block some of
# them; DEALER-B's 8bn is far above what the loop buys, so some seller is always
# left (a buy that every seller is excluded from is rejected, and the bot buys
# again at once).
VENUE = {
    "seed": "11",
    "fill_ratio": "0.85",
    "silence_ratio": "0.2",
    "latency_ms": "40",
    "counterparties": (
        "ATLAS-RE,BOREAL-LIFE,CEDAR-CREDIT,NVDA-CAPITAL,DEALER-A,DEALER-B,UNSPECIFIED"
    ),
}
QUIET = 1.0  # seconds without a new order or report: the venue has answered
# Issuers booked after the first day: desk-v2 issuers and two unconfigured
# ones (default limit); NBIS is halted by the configuration.
LATER_ISSUERS = ("MSFT", "GOOGL", "AMZN", "STARGATE-DC", "NBIS", "NBIS-DC-FIN", "TSLA", "AVGO")
CURRENCIES = ("USD", "USD", "USD", "EUR", "GBP")


def business_days(n: int) -> list[date]:
    days, day = [], START
    while len(days) < n:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


class LoopInputs:
    """Bookings and ticks of the loop, one list of replay-log lines per business day."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.loans: dict[str, dict[str, Any]] = {}  # open loans: issuer, sequence, outstanding
        self.events = self.booked = 0
        self.expected_dead: list[str] = []  # reasons of the bad events
        self.days = [self._day(n, day) for n, day in enumerate(business_days(BUSINESS_DAYS))]

    def _day(self, n: int, day: date) -> list[str]:
        lines: list[str] = []
        if n == 0:
            # META and its SPV: each under its own limit, the group over its
            # 7bn (a group step); ORCL and CRWV over theirs (NVDA-CAPITAL is
            # excluded from CRWV's buys: its credit depends on CoreWeave).
            lines.append(self._book(day, 0, "META", 5_500_000_000))
            lines.append(self._book(day, 20, "HYPERION", 1_950_000_000))
            lines.append(self._book(day, 40, "ORCL", 3_300_000_000))
            lines.append(self._book(day, 60, "CRWV", 900_000_000))
        elif n < BUSINESS_DAYS - 1:  # the last day has only its tick
            for k in range(self.rng.randint(3, 5)):
                lines += self._random_event(day, 20 * k)
        if n == 3:
            # protection bought outside the bot, from a seller the venue also uses
            value = self._event(
                day,
                200,
                "protection.booked",
                issuer_id="AMZN",
                side="BUY_PROTECTION",
                notional="400000000",
                currency="USD",
                maturity_date="2029-06-20",
                doc_clause="MR14",
                counterparty="ATLAS-RE",
            )
            lines.append(_line("cds-executions", "AMZN", value))
        if n == 4:  # two bad events: dead letters, and the loop goes on
            loan_id = sorted(self.loans)[0]
            loan = self.loans[loan_id]
            too_much = str(loan["outstanding"] + 1_000_000)
            for kind, fields in (
                ("loan.repaid", {"amount": too_much}),
                (
                    "loan.booked",
                    {"notional": "1000000", "currency": "USD", "maturity_date": "2030-01-01"},
                ),
            ):
                value = self._event(
                    day,
                    220,
                    kind,
                    loan_id=loan_id,
                    issuer_id=loan["issuer"],
                    sequence=loan["seq"] + 10,
                    **fields,
                )
                lines.append(_line("loan-bookings", loan_id, value))
            self.expected_dead += ["repayment_exceeds_outstanding", "duplicate_loan"]
        tick = {
            "schema_version": 1,
            "event_id": f"tick{self.seed}-{day.isoformat()}",
            "event_type": "clock.tick",
            "occurred_at": f"{day.isoformat()}T18:00:00.000Z",
        }
        lines.append(_line("desk-clock", None, tick))
        return lines

    def _random_event(self, day: date, minute: int) -> list[str]:
        rng, loans = self.rng, self.loans
        roll = rng.random()
        open_ids = sorted(loans)
        if roll < 0.55 or not open_ids:
            issuer = rng.choice(LATER_ISSUERS)
            limit = float(CONFIG.limit_for(issuer))
            first = all(loan["issuer"] != issuer for loan in loans.values())
            share = 0.5 + 0.45 * rng.random() if first else 0.05 + 0.15 * rng.random()
            notional = max(_millions(limit * share), 1_000_000)
            return [self._book(day, minute, issuer, notional, rng.choice(CURRENCIES))]
        loan_id = rng.choice(open_ids)
        outstanding = loans[loan_id]["outstanding"]
        if roll < 0.8:
            new = max(_millions(outstanding * rng.uniform(0.8, 1.3)), 1_000_000)
            loans[loan_id]["outstanding"] = new
            return [self._step(day, minute, loan_id, "loan.amended", notional=str(new))]
        if roll < 0.95:  # repayments: unwinds, whose sells free sellers
            amount = _millions(outstanding * rng.uniform(0.3, 0.7))
            if not 0 < amount < outstanding:
                return []
            loans[loan_id]["outstanding"] -= amount
            return [self._step(day, minute, loan_id, "loan.repaid", amount=str(amount))]
        line = self._step(day, minute, loan_id, "loan.cancelled")
        del loans[loan_id]
        return [line]

    def _event(self, day: date, minute: int, kind: str, **fields: Any) -> dict[str, Any]:
        self.events += 1
        hour, minute = 9 + minute // 60, minute % 60
        return {
            "schema_version": 1,
            "event_id": f"cl{self.seed}-{self.events}",
            "event_type": kind,
            "occurred_at": f"{day.isoformat()}T{hour:02d}:{minute:02d}:00.000Z",
            **fields,
        }

    def _book(
        self, day: date, minute: int, issuer: str, notional: int, currency: str = "USD"
    ) -> str:
        self.booked += 1
        loan_id = f"L{self.seed}-{self.booked:03d}"  # never reused (SPEC §2)
        maturity = day + timedelta(days=self.rng.randint(500, 2200))
        value = self._event(
            day,
            minute,
            "loan.booked",
            loan_id=loan_id,
            issuer_id=issuer,
            sequence=1,
            notional=str(notional),
            currency=currency,
            maturity_date=maturity.isoformat(),
        )
        self.loans[loan_id] = {"issuer": issuer, "seq": 1, "outstanding": notional}
        return _line("loan-bookings", loan_id, value)

    def _step(self, day: date, minute: int, loan_id: str, kind: str, **fields: Any) -> str:
        loan = self.loans[loan_id]
        loan["seq"] += 1
        value = self._event(
            day,
            minute,
            kind,
            loan_id=loan_id,
            issuer_id=loan["issuer"],
            sequence=loan["seq"],
            **fields,
        )
        return _line("loan-bookings", loan_id, value)

    @property
    def ticks(self) -> list[str]:
        return [json.loads(day[-1])["value"]["event_id"] for day in self.days]

    def __len__(self) -> int:
        return sum(len(day) for day in self.days)


def _millions(amount: float) -> int:
    return round(amount / 1_000_000) * 1_000_000


def _line(topic: str, key: str | None, value: dict[str, Any]) -> str:
    return json.dumps({"topic": topic, "key": key, "value": value})


class ClosedLoop:
    """The worker and the paper venue on topics of their own; inputs published day by day."""

    def __init__(self, kafka: LocalKafka, prefix: str, tmp: Path) -> None:
        self.kafka, self.tmp = kafka, tmp
        self.worker = WorkerProcess(kafka.bootstrap, prefix, tmp, partitions=4, config=CONFIG_PATH)
        topics = self.worker.topics
        self.topic_map = {
            "loan-bookings": topics["loan_bookings"],
            "cds-executions": topics["cds_executions"],
            "desk-clock": topics["desk_clock"],
        }
        asyncio.run(ensure_topics(kafka.bootstrap, list(self.topic_map.values()), 4))
        self.venue: subprocess.Popen[bytes] | None = None
        self.venue_log = (tmp / "venue.log").open("wb")
        self.published = 0
        self.counter_group = f"{prefix}-nobody"  # no consumer: its "lag" is the topics' size

    def start(self) -> None:
        self.worker.start()
        # after the worker, which creates the orders topic the venue subscribes to
        self.venue = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streams",
                "paper-venue",
                "--bootstrap",
                self.kafka.bootstrap,
                "--orders-topic",
                self.worker.topics["orders"],
                "--executions-topic",
                self.worker.topics["cds_executions"],
                "--seed",
                VENUE["seed"],
                "--fill-ratio",
                VENUE["fill_ratio"],
                "--silence-ratio",
                VENUE["silence_ratio"],
                "--latency-ms",
                VENUE["latency_ms"],
                "--counterparties",
                VENUE["counterparties"],
            ],
            cwd=REPO,
            stdout=self.venue_log,
            stderr=subprocess.STDOUT,
        )

    def publish(self, lines: list[str]) -> None:
        self.published += 1
        log = self.tmp / f"day-{self.published}.jsonl"
        log.write_text("\n".join(lines) + "\n")
        asyncio.run(publish_log(log, self.kafka.bootstrap, topic_map=self.topic_map))

    def messages(self) -> int:
        """Orders and execution reports on the broker so far."""
        topics = [self.worker.topics["orders"], self.worker.topics["cds_executions"]]
        lags = asyncio.run(lag_by_partition(self.kafka.bootstrap, self.counter_group, topics))
        return sum(lags.values())

    def settle(self, rounds: int = 60) -> None:
        """Wait until the worker is idle and the venue has nothing more to say."""
        last = -1
        for _ in range(rounds):
            wait_until_idle(self.worker, timeout=120, settle=0.3)
            seen = self.messages()
            if seen == last:
                return
            last = seen
            time.sleep(QUIET)
        raise AssertionError(f"the loop never went quiet: {last} orders and reports")

    def stop(self) -> None:
        if self.venue is not None and self.venue.poll() is None:
            self.venue.terminate()
            self.venue.wait(60)
        if self.worker.process is not None:
            assert self.worker.stop() == 0

    def kill_all(self) -> None:
        for process in (self.venue, self.worker.process):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(30)
        self.venue_log.close()


@pytest.fixture
def loop(kafka: LocalKafka, unique: str, tmp_path: Path) -> Iterator[ClosedLoop]:
    made = ClosedLoop(kafka, unique, tmp_path)
    yield made
    made.kill_all()


@dataclass
class Outcome:
    """What the loop left on the broker, and the replay of the dumped journal."""

    live: dict[tuple[str, str], dict[str, Any]]  # by (action, order_id)
    duplicates: int
    replayed: dict[tuple[str, str], dict[str, Any]]
    journal: list[dict[str, Any]]
    sellers: dict[str, dict[str, Any]]  # the replay's seller report, by seller
    reports: list[dict[str, Any]]  # the venue's execution reports
    dead: list[dict[str, Any]]

    @property
    def statuses(self) -> list[dict[str, Any]]:
        """The seller stage's status changes in the journal, with their partition."""
        return [
            {**json.loads(line["value"]), "partition": line["partition"]}
            for line in self.journal
            if line["topic"] == "hedger-seller-status"
        ]

    def figures(self) -> dict[str, Any]:
        records = list(self.live.values())
        return {
            "orders": sum(1 for r in records if r["action"] == "new"),
            "cancels": sum(1 for r in records if r["action"] == "cancel"),
            "group_step_orders": sum(1 for r in records if r.get("reason") == "group_limit_breach"),
            "sells": sum(1 for r in records if r.get("side") == "SELL_PROTECTION"),
            "venue_reports": len(self.reports),
            "fill_counterparties": len(
                {r["counterparty"] for r in self.reports if "filled_notional" in r}
            ),
            "dead_letters": len(self.dead),
            "dead_letter_inputs": len(
                {
                    (d["source"]["topic"], d["source"]["partition"], d["source"]["offset"])
                    for d in self.dead
                }
            ),
            "duplicate_records": self.duplicates,
            "status_entries": len(self.statuses),
            "blocked_at_end": sorted(s for s, r in self.sellers.items() if r["blocked"]),
        }


def collect(loop: ClosedLoop) -> Outcome:
    """`hedger dump` the outputs and the journal; `hedger replay --control` the journal."""
    worker, tmp, bootstrap = loop.worker, loop.tmp, loop.kafka.bootstrap
    paths = {name: tmp / f"out-{name}.jsonl" for name in ("orders", "journal", "reports", "dead")}
    topics = {
        "orders": worker.topics["orders"],
        "journal": worker.topics["journal"],
        "reports": worker.topics["cds_executions"],
        "dead": worker.topics["dead_letters"],
    }
    for name, topic in topics.items():
        journal = "--journal" if name == "journal" else "--no-journal"
        hedger_ok("dump", topic, "--bootstrap", bootstrap, "--out", str(paths[name]), journal)
    replay_orders, replay_sellers = tmp / "replay.orders.jsonl", tmp / "replay.sellers.jsonl"
    hedger_ok(
        "replay",
        str(paths["journal"]),
        "--config",
        str(CONFIG_PATH),
        "--control",
        "--orders-out",
        str(replay_orders),
        "--dead-letters-out",
        str(tmp / "replay.dead.jsonl"),
        "--sellers-out",
        str(replay_sellers),
        "--quiet",
    )
    live: dict[tuple[str, str], dict[str, Any]] = {}
    duplicates = 0
    for line in read_jsonl(paths["orders"]):
        record = line["value"]
        first = live.setdefault((record["action"], record["order_id"]), record)
        if first is not record:
            duplicates += 1
            assert first == record, f"{record['order_id']} emitted again with other content"
    replayed: dict[tuple[str, str], dict[str, Any]] = {}
    for record in read_jsonl(replay_orders):
        key = (record["action"], record["order_id"])
        assert key not in replayed, f"the replay emitted {key} twice"
        replayed[key] = record
    return Outcome(
        live,
        duplicates,
        replayed,
        read_jsonl(paths["journal"]),
        {row["seller"]: row for row in read_jsonl(replay_sellers)},
        [line["value"] for line in read_jsonl(paths["reports"])],
        [line["value"] for line in read_jsonl(paths["dead"])],
    )


def dead_letter_reasons(outcome: Outcome) -> list[str]:
    """The reasons of the dead letters; fails if an input was dead-lettered twice."""
    sources = [
        (d["source"]["topic"], d["source"]["partition"], d["source"]["offset"])
        for d in outcome.dead
    ]
    assert len(sources) == len(set(sources)), f"an input dead-lettered twice: {sources}"
    return sorted(d["reason"] for d in outcome.dead)


def assert_replay_equals_live(outcome: Outcome) -> None:
    """Every live record equals the replay's, field by field, and none is missing."""
    missing = sorted(set(outcome.replayed) - set(outcome.live))
    extra = sorted(set(outcome.live) - set(outcome.replayed))
    assert not missing, f"records of the journal replay not emitted live: {missing[:10]}"
    assert not extra, f"live records the journal replay does not give: {extra[:10]}"
    for key, record in outcome.live.items():
        expected = outcome.replayed[key]
        differ = {
            name: (record.get(name), expected.get(name))
            for name in record.keys() | expected.keys()
            if record.get(name) != expected.get(name)
        }
        assert not differ, f"{key}: live != replay on {differ}"
        if record["action"] == "new":  # the v2 field, on every new order
            assert record["excluded_counterparties"] == expected["excluded_counterparties"]


def assert_statuses_reach_every_partition(outcome: Outcome) -> dict[str, list[bool]]:
    """Per seller, each journal partition saw the same status changes; the last one is
    the replay's seller report."""
    by_partition: dict[int, dict[str, list[bool]]] = {p: {} for p in range(4)}
    for status in outcome.statuses:
        seen = by_partition[status["partition"]].setdefault(status["seller"], [])
        if not seen or seen[-1] != status["blocked"]:
            seen.append(status["blocked"])
    changes = by_partition[0]
    for partition in range(1, 4):
        assert by_partition[partition] == changes, f"partition {partition} missed a change"
    for seller, row in outcome.sellers.items():
        assert changes.get(seller, [False])[-1] == row["blocked"], seller
    return changes


def assert_metrics_equal_seller_report(worker: WorkerProcess, outcome: Outcome) -> None:
    """`hedger_seller_exposure_base` and `hedger_seller_blocked` equal the seller report."""
    exposure: dict[str, Decimal] = {}
    blocked: dict[str, Decimal] = {}
    for line in worker.scrape().splitlines():
        for name, into in (
            ("hedger_seller_exposure_base", exposure),
            ("hedger_seller_blocked", blocked),
        ):
            if line.startswith(name + '{seller="'):
                labels, _, value = line.rpartition(" ")
                into[labels.split('"')[1]] = Decimal(value)
    assert outcome.sellers, "the replay reports no seller"
    for seller, row in outcome.sellers.items():
        assert exposure.get(seller) == Decimal(row["exposure"]), (seller, exposure.get(seller), row)
        assert blocked.get(seller) == Decimal(int(row["blocked"])), (seller, row)


def assert_the_scenario(outcome: Outcome, changes: dict[str, list[bool]]) -> list[str]:
    """A seller blocked and then excluded, an order expired and cancelled, a group step."""
    blocked = sorted(s for s, seen in changes.items() if True in seen)
    assert blocked, "no seller was ever blocked"
    ordered = sorted(outcome.live.values(), key=lambda r: r["as_of"])
    # a later buy excludes a blocked seller for no other reason (wrong-way risk)
    excluded_for_a_block = {
        seller
        for r in ordered
        if r["action"] == "new"
        for seller in r["excluded_counterparties"]
        if seller not in CONFIG.wrong_way(r["issuer_id"])
    }
    assert excluded_for_a_block, "no buy excludes a blocked seller"
    assert excluded_for_a_block <= set(blocked), excluded_for_a_block
    cancels = [r for r in ordered if r["action"] == "cancel"]
    assert cancels, "no order expired"
    assert all(r["reason"] == "expired" for r in cancels)
    answered = {r["order_id"] for r in outcome.reports if r.get("status") == "cancelled"}
    assert answered & {r["order_id"] for r in cancels}, "the venue cancelled no expired order"
    group_steps = [r for r in ordered if r.get("reason") == "group_limit_breach"]
    assert group_steps and all(r["group_id"] for r in group_steps), "no group step"
    fills = {r["counterparty"] for r in outcome.reports if "filled_notional" in r}
    assert len(fills) >= 3, f"fills from {fills} only"
    return blocked


def test_closed_loop_on_four_partitions_replays_the_live_records(loop: ClosedLoop) -> None:
    inputs = LoopInputs(seed=1)
    began = time.monotonic()
    loop.start()
    for day in inputs.days:
        loop.publish(day)
        loop.settle()
    outcome = collect(loop)
    assert_replay_equals_live(outcome)
    changes = assert_statuses_reach_every_partition(outcome)
    blocked = assert_the_scenario(outcome, changes)
    assert_metrics_equal_seller_report(loop.worker, outcome)
    assert dead_letter_reasons(outcome) == sorted(inputs.expected_dead)
    figures = accounting(loop.worker, loop.tmp)
    print(
        f"closed loop, 4 partitions: {len(inputs)} bookings and ticks over "
        f"{len(inputs.days)} days, {figures}, {outcome.figures()}, "
        f"sellers ever blocked {blocked}, {time.monotonic() - began:.0f}s"
    )
    assert figures["missing"] == 0
    assert outcome.duplicates == 0
    assert figures["journal_duplicates"] == figures["dead_letter_duplicates"] == 0
    loop.stop()


def test_sigkills_during_the_closed_loop_lose_nothing(loop: ClosedLoop) -> None:
    inputs = LoopInputs(seed=2)
    rng = random.Random(1111)
    # kills after the publication of six of the days, the last day's included
    # (after its tick, while the venue answers what the tick ordered)
    kill_days = set(rng.sample(range(1, len(inputs.days) - 1), 5)) | {len(inputs.days) - 1}
    began = time.monotonic()
    loop.start()
    kills, restarts = 0, []
    for n, day in enumerate(inputs.days):
        loop.publish(day)
        if n in kill_days:
            time.sleep(rng.uniform(0.0, 2.5))
            loop.worker.kill()
            kills += 1
            started = time.monotonic()
            loop.worker.start(timeout=180)
            restarts.append(time.monotonic() - started)
        loop.settle()
    outcome = collect(loop)
    figures = accounting(loop.worker, loop.tmp)
    changes = assert_statuses_reach_every_partition(outcome)
    ever_blocked = sorted(s for s, seen in changes.items() if True in seen)
    print(
        f"closed loop, {kills} SIGKILLs: {len(inputs)} bookings and ticks over "
        f"{len(inputs.days)} days, {figures}, {outcome.figures()}, sellers ever blocked "
        f"{ever_blocked}, missing records {len(set(outcome.replayed) - set(outcome.live))}, "
        f"restart to ready {', '.join(f'{t:.1f}' for t in restarts)}s, "
        f"{time.monotonic() - began:.0f}s"
    )
    assert kills >= 5
    assert figures["missing"] == 0  # every input is in the journal or a dead letter
    assert_replay_equals_live(outcome)  # no record lost
    assert outcome.duplicates == 0  # none emitted twice: the killed transactions aborted
    assert figures["journal_duplicates"] == figures["dead_letter_duplicates"] == 0
    # every tick reached every journal partition
    ticks = {
        (line["partition"], json.loads(line["value"])["event_id"])
        for line in outcome.journal
        if line["topic"] == "desk-clock"
    }
    assert ticks == {(p, t) for p in range(4) for t in inputs.ticks}
    assert_the_scenario(outcome, changes)
    assert_metrics_equal_seller_report(loop.worker, outcome)
    assert dead_letter_reasons(outcome) == sorted(inputs.expected_dead)
    loop.stop()
