"""The stages wired to the transactional loop: the exactly-once worker.

Owns: building the stages over changelog-backed tables from the declared
topology (`streams.live.topology`), the step that hands one input
partition's records to its stage in offset order and returns the records
of its transaction (outputs, then the table's changelog writes), the two-hop
path of loan events (on a loan-bookings topic with the internal partition
count, an event on the partition its `loan_id` hashes to is validated and
checked against its loan in one step and goes straight to the journal; a
mis-keyed one takes the repartition hop to the loan stage), and what
an assignment, a revocation or an aborted transaction does to the stages'
state (restore from the committed changelog, forget, rebuild). An event a
stage fails on is dead-lettered (`processing_error`), never a crash. No
business rule lives here. Imports the standard library, aiokafka (public
API), `hedger.config`, `streams.settings`, `streams.kafka_io` (topic
creation), `streams.observer` and `streams.live`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiokafka import TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord

from hedger.config import HedgerConfig
from streams.kafka_io import ensure_topics, partition_counts
from streams.live.seller_stage import SellerStage
from streams.live.stages import (
    BufferedTable,
    IssuerStage,
    LoanStage,
    Output,
    RouteStage,
    failed,
)
from streams.live.state_store import ChangelogStore
from streams.live.topology import Topology
from streams.live.txn_loop import Send, TxnLoop
from streams.observer import Observer, Origin, Tally
from streams.settings import KafkaSettings

Handle = Callable[[ConsumerRecord[bytes, bytes]], list[Output]]


class TxnWorker:
    """The stages, their tables and the loop that drives them, for one topology."""

    def __init__(
        self,
        kafka: KafkaSettings,
        config: HedgerConfig,
        topology: Topology,
        observer: Observer | None = None,
        *,
        max_records: int = 2000,
        session_timeout_ms: int = 10_000,
    ) -> None:
        self.kafka, self.topology = kafka, topology
        # Restores in progress (assignment or abort): the worker is not ready meanwhile.
        self.restoring = 0
        self.observer = observer or Tally()
        topics, n, obs = topology.topics, topology.partitions, self.observer
        specs = {stage.name: stage for stage in topology.stages}
        self.stores: dict[str, ChangelogStore] = {}
        for name, spec in specs.items():
            if spec.changelog is not None:
                self.stores[name] = ChangelogStore(spec.changelog)
        self.tables = {name: BufferedTable(store.data) for name, store in self.stores.items()}
        self.route = RouteStage(config, topics, obs, n)
        self.loans = LoanStage(config, self.tables["loans"], topics, obs)
        self.issuers = IssuerStage(config, self.tables["issuers"], topics, obs)
        self.issuers.owned = set()
        self.sellers = SellerStage(config, self.tables["sellers"], topics, obs, n)
        self.sellers.owned = set()
        # Whether loan-bookings has the internal partition count: then a loan
        # event on the partition its loan_id hashes to is checked right there
        # (its loan state is that partition's), else it takes the loans hop.
        self.copartitioned = False
        self._partition_of = DefaultPartitioner()
        self.handlers: dict[str, tuple[str, Handle]] = {}
        for topic in specs["route"].inputs:
            route = self._control if topic == topics.control else self._route
            self.handlers[topic] = ("route", route)
        self.handlers[topics.loans] = ("loans", self._stateful(self.loans.handle))
        self.handlers[topics.journal] = ("issuers", self._stateful(self.issuers.handle))
        self.handlers[topics.seller_parts] = ("sellers", self._stateful(self.sellers.handle))
        self.loop = TxnLoop(
            kafka.client_options(),
            topology.app_id,
            topology.input_topics,
            topology.transactional_id,
            self.step,
            restore=self.restore,
            release=self.release,
            max_records=max_records,
            session_timeout_ms=session_timeout_ms,
        )

    # -- topics ------------------------------------------------------------

    async def create_topics(self, replication_factor: int = 1) -> None:
        """Internal topics and compacted changelogs with the topology's partition count."""
        topology = self.topology
        compact = {"cleanup.policy": "compact"}
        names = (*topology.internal_topics, *topology.changelogs)
        await ensure_topics(
            self.kafka,
            names,
            topology.partitions,
            replication_factor,
            configs={name: compact for name in topology.changelogs},
            exact=names,
        )
        bookings = topology.topics.loan_bookings
        counts = await partition_counts(self.kafka, [bookings])
        self.copartitioned = counts.get(bookings) == topology.partitions

    # -- the step ------------------------------------------------------------

    @staticmethod
    def _stateful(handle: Callable[[int, int, bytes], list[Output]]) -> Handle:
        return lambda record: handle(record.partition, record.offset, record.value or b"")

    def _route(self, record: ConsumerRecord[bytes, bytes]) -> list[Output]:
        source = Origin(record.topic, record.partition, record.offset, record.timestamp)
        outputs = self.route.handle(source, record.value)
        if not self.copartitioned or record.topic != self.topology.topics.loan_bookings:
            return outputs
        loans, n = self.topology.topics.loans, self.topology.partitions
        direct: list[Output] = []
        for output in outputs:
            if output.topic == loans and self._home(output.key, n) == record.partition:
                # keyed by its loan_id: its loan state is this partition's
                direct += self.loans.handle(record.partition, record.offset, output.value)
            else:  # mis-keyed: the repartition hop to its loan's partition
                direct.append(output)
        return direct

    def _home(self, key: bytes | None, n: int) -> int | None:
        """The partition the producer's partitioner sends `key` to."""
        if key is None:
            return None
        partitions = list(range(n))
        home: int = self._partition_of(key, partitions, partitions)
        return home

    def _control(self, record: ConsumerRecord[bytes, bytes]) -> list[Output]:
        source = Origin(record.topic, record.partition, record.offset)
        return self.route.handle_control(source, record.value)

    def step(self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]) -> list[Send]:
        """One partition's records through its stage: the records of their transaction."""
        stage, handle = self.handlers[tp.topic]
        sends: list[Send] = []
        for record in records:
            try:
                outputs = handle(record)
            except Exception as exc:
                # The stage may hold a half-applied event: the transaction
                # commits its dead letter, and the state is rebuilt from the
                # table, which holds every complete event's writes.
                source = Origin(record.topic, record.partition, record.offset)
                outputs = [
                    failed(self.topology.topics, self.observer, stage, exc, source, record.value)
                ]
                self._invalidate(stage)
            sends += [Send(o.topic, o.key, o.value, o.partition) for o in outputs]
        for name, store in self.stores.items():  # route may write loan state (see _route)
            for partition, key, value in store.records(self.tables[name].drain()):
                sends.append(Send(store.changelog, key, value, partition))
        return sends

    def _invalidate(self, stage: str) -> None:
        if stage == "issuers":
            self.issuers.invalidate()
        elif stage == "sellers":
            self.sellers.invalidate()

    # -- state across assignments and aborts ---------------------------------

    def _stateful_partitions(self, tps: set[TopicPartition]) -> dict[str, set[int]]:
        by_stage: dict[str, set[int]] = {}
        bookings = self.topology.topics.loan_bookings
        for tp in tps:
            stage = self.handlers[tp.topic][0]
            if tp.topic == bookings and self.copartitioned:
                stage = "loans"  # checks loan events of its partition in place
            if stage in self.stores:
                by_stage.setdefault(stage, set()).add(tp.partition)
        return by_stage

    async def restore(self, tps: set[TopicPartition]) -> None:
        """Partitions (newly owned, or after an abort): their committed state."""
        options = self.kafka.client_options()
        self.restoring += 1
        try:
            for stage, partitions in self._stateful_partitions(tps).items():
                self.tables[stage].discard()
                await self.stores[stage].restore(options, partitions)
                self._own(stage, partitions, add=True)
                self._load(stage)
        finally:
            self.restoring -= 1

    async def release(self, tps: set[TopicPartition]) -> None:
        """Partitions moved away: their keys are no longer this worker's."""
        for stage, partitions in self._stateful_partitions(tps).items():
            self.tables[stage].discard()
            self.stores[stage].drop(partitions)
            self._own(stage, partitions, add=False)

    def _load(self, stage: str) -> None:
        """Rebuild the stage's state now: its gauges show the restored figures first."""
        if stage == "issuers":
            self.issuers.load()
        elif stage == "sellers":
            self.sellers.load()

    def _own(self, stage: str, partitions: set[int], *, add: bool) -> None:
        target: Any = {"issuers": self.issuers, "sellers": self.sellers}.get(stage)
        if target is None:
            return
        owned: set[int] = target.owned if target.owned is not None else set()
        target.owned = owned | partitions if add else owned - partitions
        target.invalidate()
