"""The worker's stages in memory, for tests without Kafka: dict tables, lists for topics.

May import the stages under streams.live, the core and tests.factories.
"""

from __future__ import annotations

import json
import random
from typing import Any

from hedger.config import HedgerConfig
from hedger.decoding import parse_json
from streams.live.seller_stage import SellerStage
from streams.live.stages import BufferedTable, IssuerStage, LoanStage, Output, RouteStage
from streams.observer import Origin, Tally
from streams.settings import TopicNames
from tests.factories import EXAMPLES, example_config

TOPICS = TopicNames()
CONFIG = example_config()


def read_inputs(name: str) -> list[tuple[str, bytes]]:
    records = []
    for line in (EXAMPLES / name).read_text().splitlines():
        if line.strip():
            record = parse_json(line)
            value = record["value"]
            payload = value.encode() if isinstance(value, str) else json.dumps(value).encode()
            records.append((record["topic"], payload))
    return records


class Table(dict[bytes, bytes]):
    """A dict that logs its writes, like a changelog: (cause, key, value or None).

    `cause` is the input offset up to which the batch being written reached.
    """

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[int, bytes, bytes | None]] = []
        self.cause = 0

    def __setitem__(self, key: bytes, value: bytes) -> None:
        super().__setitem__(key, value)
        self.writes.append((self.cause, key, value))

    def pop(self, key: bytes, default: Any = None) -> Any:
        self.writes.append((self.cause, key, None))
        return super().pop(key, default)

    @classmethod
    def recovered(cls, writes: list[tuple[int, bytes, bytes | None]]) -> Table:
        table = cls()
        for write in writes:
            table.cause, key, value = write
            if value is None:
                dict.pop(table, key, None)
            else:
                dict.__setitem__(table, key, value)
        table.writes = list(writes)
        return table


class Pipeline:
    """The four stages and their topics in memory; offsets are list indexes."""

    def __init__(
        self, inputs: list[tuple[str, bytes]], batch: int = 1, config: HedgerConfig = CONFIG
    ) -> None:
        self.inputs = inputs
        self.batch = batch
        self.config = config
        self.topics: dict[str, list[tuple[int, bytes | None, bytes]]] = {
            TOPICS.loans: [],
            TOPICS.journal: [],
            TOPICS.seller_parts: [],
            TOPICS.orders: [],
            TOPICS.dead_letters: [],
        }
        self.loan_table, self.issuer_table, self.seller_table = Table(), Table(), Table()
        self.position = {"route": 0, "loans": 0, "issuers": 0, "sellers": 0}
        self.make_stages()

    def make_stages(self) -> None:
        tally = Tally()
        config = self.config
        self.route = RouteStage(config, TOPICS, tally)
        self.loans = LoanStage(config, BufferedTable(self.loan_table), TOPICS, tally)
        self.issuers = IssuerStage(config, BufferedTable(self.issuer_table), TOPICS, tally)
        self.sellers = SellerStage(config, BufferedTable(self.seller_table), TOPICS, tally, 1)

    def emit(self, cause: int, outputs: list[Output]) -> None:
        for output in outputs:
            self.topics[output.topic].append((cause, output.key, output.value))

    def run(self, until: int | None = None) -> None:
        end = len(self.inputs) if until is None else until
        while self.position["route"] < end:
            i = self.position["route"]
            topic, payload = self.inputs[i]
            self.emit(i, self.route.handle(Origin(topic, 0, i), payload))
            self.position["route"] += 1
            self.drain()

    def drain(self) -> None:
        loans, journal = self.topics[TOPICS.loans], self.topics[TOPICS.journal]
        parts = self.topics[TOPICS.seller_parts]
        while (
            self.position["loans"] < len(loans)
            or self.position["issuers"] < len(journal)
            or self.position["sellers"] < len(parts)
        ):
            while self.position["loans"] < len(loans):
                first = self.position["loans"]
                last = min(first + self.batch, len(loans))
                for n in range(first, last):
                    self.emit(n, self.loans.handle(0, n, loans[n][2]))
                self.loan_table.cause = first  # durable once any of the batch is committed
                self.loans.table.drain()
                self.position["loans"] = last
            while self.position["issuers"] < len(journal):
                first = self.position["issuers"]
                last = min(first + self.batch, len(journal))
                for n in range(first, last):
                    self.emit(n, self.issuers.handle(0, n, journal[n][2]))
                self.issuers.finish_batch()
                self.issuer_table.cause = first
                self.issuers.table.drain()
                self.position["issuers"] = last
            while self.position["sellers"] < len(parts):
                first = self.position["sellers"]
                last = min(first + self.batch, len(parts))
                for n in range(first, last):
                    self.emit(n, self.sellers.handle(0, n, parts[n][2]))
                self.seller_table.cause = first
                self.sellers.table.drain()
                self.position["sellers"] = last

    def orders(self) -> list[dict[str, Any]]:
        return [json.loads(value) for _, _, value in self.topics[TOPICS.orders]]

    def crash(self, rng: random.Random) -> None:
        """Keep what at-least-once guarantees, plus a random part of the rest."""
        # a stage commits at batch boundaries only: whole batches or nothing
        committed = {stage: rng.randint(0, pos) for stage, pos in self.position.items()}

        # Faust flushes the producer before it commits: everything caused by
        # committed input is durable; later writes survive up to a random point.
        def keep(log: list[Any], stage: str, floor: int = 0) -> list[Any]:
            must = max(floor, sum(1 for entry in log if entry[0] < committed[stage]))
            return log[: rng.randint(must, len(log))]

        # a stage read what was on the broker: its position bounds the loss
        self.topics[TOPICS.loans] = keep(self.topics[TOPICS.loans], "route", self.position["loans"])
        journal = self.topics[TOPICS.journal]
        # the journal has several writers (route, loans, sellers); keep at least what was read
        self.topics[TOPICS.journal] = journal[: rng.randint(self.position["issuers"], len(journal))]
        self.topics[TOPICS.orders] = keep(self.topics[TOPICS.orders], "issuers")
        parts = self.topics[TOPICS.seller_parts]
        self.topics[TOPICS.seller_parts] = keep(parts, "issuers", self.position["sellers"])
        self.loan_table = Table.recovered(keep(self.loan_table.writes, "loans"))
        self.issuer_table = Table.recovered(keep(self.issuer_table.writes, "issuers"))
        self.seller_table = Table.recovered(keep(self.seller_table.writes, "sellers"))
        self.position = committed
        self.make_stages()
