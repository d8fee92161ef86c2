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
        self.loan_table: dict[bytes, bytes] = {}
        self.issuer_table: dict[bytes, bytes] = {}
        self.seller_table: dict[bytes, bytes] = {}
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
        """Every stage takes its input in batches; each batch commits at once
        (its outputs, table writes and offset together: a transaction)."""
        loans, journal = self.topics[TOPICS.loans], self.topics[TOPICS.journal]
        parts = self.topics[TOPICS.seller_parts]
        stages = (
            ("loans", loans, self.loans.handle, self.loans.table),
            ("issuers", journal, self.issuers.handle, self.issuers.table),
            ("sellers", parts, self.sellers.handle, self.sellers.table),
        )
        while any(self.position[name] < len(log) for name, log, _, _ in stages):
            for name, log, handle, table in stages:
                while self.position[name] < len(log):
                    first = self.position[name]
                    last = min(first + self.batch, len(log))
                    for n in range(first, last):
                        self.emit(n, handle(0, n, log[n][2]))
                    table.drain()
                    self.position[name] = last

    def orders(self) -> list[dict[str, Any]]:
        return [json.loads(value) for _, _, value in self.topics[TOPICS.orders]]

    def crash(self, rng: random.Random) -> None:
        """Abort a transaction in flight, then restart the stages from their tables.

        The next few inputs go through the stages (their in-memory state
        moves, their tables buffer writes); then the transaction is aborted:
        their outputs and table writes are dropped, nothing is committed, and
        new stages rebuild their state from the tables, as a new owner does.
        """
        start = self.position["route"]
        n = rng.randint(0, min(self.batch, len(self.inputs) - start))
        hops = {TOPICS.loans: self.loans.handle, TOPICS.journal: self.issuers.handle}
        hops[TOPICS.seller_parts] = self.sellers.handle
        pending = []
        for i in range(start, start + n):
            topic, payload = self.inputs[i]
            pending += self.route.handle(Origin(topic, 0, i), payload)
        while pending:
            output = pending.pop(0)
            handle = hops.get(output.topic)
            if handle is not None:
                pending += handle(0, len(self.topics[output.topic]), output.value)
        for stage in (self.loans, self.issuers, self.sellers):
            stage.table.discard()
        self.make_stages()
