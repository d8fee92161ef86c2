"""The stages wired to the transactional loop: the exactly-once worker.

Owns: building the stages over changelog-backed tables from the declared
topology (`streams.live.topology`), the step that hands one input
partition's records to its stage in offset order and returns the records
of its transaction (outputs, then the table's changelog writes), the two-hop
path of loan events (on a loan-bookings topic with the internal partition
count, an event on the partition its `loan_id` hashes to is validated and
checked against its loan in one step and goes straight to the journal; a
mis-keyed one takes the repartition hop to the loan stage), which input
partitions write the same state (the loop commits them one after the
other, see `lane`), and what
an assignment, a revocation or an aborted transaction does to the stages'
state (restore from the committed changelog, forget, rebuild). An event a
stage fails on is dead-lettered (`processing_error`), never a crash. No
business rule lives here. Imports the standard library, aiokafka (public
API), `hedger.config`, `hedger.events`, `streams.settings`, `streams.kafka_io` (topic
creation), `streams.observer` and `streams.live`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from hedger.config import HedgerConfig
from hedger.events import LoanEvent
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
from streams.live.state_store import ChangelogStore, LocalStore, SlowRestore
from streams.live.topology import Topology
from streams.live.txn_loop import Send, TxnLoop, home
from streams.observer import Observer, Origin, Tally
from streams.settings import KafkaSettings

Handle = Callable[[ConsumerRecord[bytes, bytes]], list[Output]]
log = logging.getLogger("hedger.txn")
# The stores a worker's tables can use (`WorkerSettings.store`).
MEMORY, ROCKSDB = "memory://", "rocksdb://"
# Seconds between snapshots of the tables into the local store (`rocksdb://`):
# a restart on the same disk reads at most about this much changelog tail.
CHECKPOINT_EVERY = 10.0


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
        linger_ms: float = 0.0,
        poll_ms: int = 20,
        session_timeout_ms: int = 10_000,
        store: str = MEMORY,
        data_dir: Path | None = None,
        recovery_warn_after: float | None = None,
        on_slow_recovery: SlowRestore | None = None,
        checkpoint_every: float = CHECKPOINT_EVERY,
    ) -> None:
        self.kafka, self.topology = kafka, topology
        # Restores in progress (assignment or abort): the worker is not ready meanwhile.
        self.restoring = 0
        self.observer = observer or Tally()
        topics, n, obs = topology.topics, topology.partitions, self.observer
        specs = {stage.name: stage for stage in topology.stages}
        if store not in (MEMORY, ROCKSDB):
            raise ValueError(f"unknown store {store!r}: use {MEMORY} or {ROCKSDB}")
        if store == ROCKSDB and data_dir is None:
            raise ValueError(f"the {ROCKSDB} store needs a data directory")
        self.checkpoint_every = checkpoint_every
        self._checkpointing = False
        self.stores: dict[str, ChangelogStore] = {}
        for name, spec in specs.items():
            if spec.changelog is not None:
                local = None
                if store == ROCKSDB:
                    assert data_dir is not None
                    local = LocalStore(data_dir / topology.app_id, spec.changelog)
                self.stores[name] = ChangelogStore(
                    spec.changelog,
                    local,
                    warn_after=recovery_warn_after,
                    on_slow=on_slow_recovery or _log_slow_restore,
                )
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
            linger_ms=linger_ms,
            poll_ms=poll_ms,
            session_timeout_ms=session_timeout_ms,
            task_of=self.lane,
        )

    # -- topics ------------------------------------------------------------

    async def create_topics(self, replication_factor: int = 1) -> None:
        """Internal topics and compacted changelogs with the topology's partition count."""
        topology = self.topology
        names = topology.exact_topics
        configs = topology.topic_configs
        await ensure_topics(
            self.kafka,
            names,
            topology.partitions,
            replication_factor,
            configs={name: configs[name] for name in names if name in configs},
            exact=names,
        )
        bookings = topology.topics.loan_bookings
        counts = await partition_counts(self.kafka, [bookings])
        self.copartitioned = counts.get(bookings) == topology.partitions

    # -- the step ------------------------------------------------------------

    def lane(self, tp: TopicPartition) -> object:
        """What `tp`'s step writes: partitions writing the same state share a lane.

        Loan state partition p is written by hedger-loans p and, when
        co-partitioned, by loan-bookings p (see `_route`); every other input
        partition writes its own stage's partition, or nothing.
        """
        topics = self.topology.topics
        if tp.topic == topics.loans or (self.copartitioned and tp.topic == topics.loan_bookings):
            return ("loans", tp.partition)
        return tp

    @staticmethod
    def _stateful(handle: Callable[[int, int, bytes], list[Output]]) -> Handle:
        return lambda record: handle(record.partition, record.offset, record.value or b"")

    def _route(self, record: ConsumerRecord[bytes, bytes]) -> list[Output]:
        source = Origin(record.topic, record.partition, record.offset, record.timestamp)
        if not self.copartitioned or record.topic != self.topology.topics.loan_bookings:
            return self.route.handle(source, record.value)
        outputs, entry, event = self.route.check(source, record.value)
        loans, n = self.topology.topics.loans, self.topology.partitions
        direct: list[Output] = []
        for output in outputs:
            if output.topic == loans and self._home(output.key, n) == record.partition:
                # keyed by its loan_id: its loan state is this partition's,
                # and the event is checked as the route stage validated it
                assert entry is not None and isinstance(event, LoanEvent)
                checked = (entry, event)
                direct += self.loans.handle(record.partition, record.offset, output.value, checked)
            else:  # mis-keyed: the repartition hop to its loan's partition
                direct.append(output)
        return direct

    def _home(self, key: bytes | None, n: int) -> int | None:
        """The partition the producer's partitioner sends `key` to."""
        return None if key is None else home(key, n)

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

    @property
    def remaining(self) -> int:
        """Changelog records left to read by the restores under way (0: restored)."""
        return sum(store.remaining for store in self.stores.values())

    async def restore(self, tps: set[TopicPartition]) -> None:
        """Partitions (newly owned, or after an abort): their committed state.

        Called by the loop with its lock held. The stages' state is rebuilt
        here too, so the worker is ready (and its gauges show) once this returns.
        """
        options = self.kafka.client_options()
        self.restoring += 1
        try:
            for stage, partitions in self._stateful_partitions(tps).items():
                self.tables[stage].discard()
                started = time.monotonic()
                store = self.stores[stage]
                await store.restore(options, partitions)
                self._own(stage, partitions, add=True)
                self._load(stage)
                # What a restart cost: the changelog records read (only the
                # tail after a snapshot with the local store) and the time.
                log.info(
                    "restored %s partitions %s: %d changelog records in %.2f s",
                    stage,
                    sorted(partitions),
                    store.restored_records,
                    time.monotonic() - started,
                )
        finally:
            self.restoring -= 1
        if not self._checkpointing and any(s.local for s in self.stores.values()):
            self._checkpointing = True
            self.loop.add_future(self._checkpoints())

    async def release(self, tps: set[TopicPartition]) -> None:
        """Partitions moved away: their keys are no longer this worker's.

        Called by the loop with its lock held and no transaction open: with
        the local store, their last writes are snapshotted first, so the
        partitions coming back here read only the changelog written meanwhile.
        """
        options = self.kafka.client_options()
        for stage, partitions in self._stateful_partitions(tps).items():
            self.tables[stage].discard()
            store = self.stores[stage]
            if not self.loop.crashed:
                await store.flush(options, partitions)
            store.release(partitions)
            self._own(stage, partitions, add=False)

    async def checkpoint(self) -> int:
        """Snapshot every table's new writes into the local store; keys written.

        Runs in the loop's exclusive section: no transaction is open, so the tables hold
        exactly what is committed. Skipped once the loop crashed or stops.
        """
        options = self.kafka.client_options()
        written = 0
        # The loop's exclusive section: no transaction is open.
        async with self.loop.gate.exclusive():
            # Once the loop stops it may leave the group, and another worker
            # write these partitions: a snapshot then could hold stale keys.
            if self.loop.crashed or self.loop.should_stop:
                return 0
            for store in self.stores.values():
                written += await store.flush(options)
        return written

    async def _checkpoints(self) -> None:
        while not self.loop.should_stop:
            await self.loop.sleep(self.checkpoint_every)
            if self.loop.should_stop:
                return
            try:
                await self.checkpoint()
            except Exception as exc:  # the next checkpoint (or a rebuild) covers it
                log.warning("table checkpoint failed: %r", exc)

    async def stop(self) -> None:
        """Stop cleanly: snapshot the tables while the partitions are still
        owned (leaving the group does not revoke them first), stop the loop,
        close the stores. What commits between the snapshot and the stop is
        the changelog tail the next start reads."""
        if any(store.local for store in self.stores.values()) and self.loop.consumer is not None:
            try:
                await self.checkpoint()
            except Exception as exc:  # the next start reads a longer tail
                log.warning("table checkpoint at stop failed: %r", exc)
        await self.loop.stop()
        await self.close()

    async def close(self) -> None:
        """Close the tables' local stores (after the loop stopped)."""
        for store in self.stores.values():
            await store.close()

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


def _log_slow_restore(changelog: str, left: dict[int, int]) -> None:
    """The default report of a restore that outlasts its bound (one line per restore)."""
    behind = ", ".join(f"{p}: {n}" for p, n in sorted(left.items()))
    log.warning("restore of %s is slow: offsets left per partition {%s}", changelog, behind)
