"""The consume-process-produce loop with Kafka transactions (exactly-once).

Owns: the one consumer of the worker's group (`read_committed`, no
auto-commit), one transactional producer per assigned input partition
(transactional id `"{app_id}-{topic}-{partition}"`, so a new owner's
`init_transactions` fences the producer of a worker that lost the partition
and aborts its open transaction), and the transaction of each batch: the
step's records for that partition (table changelog writes and outputs) and
the consumed offset are committed together, or not at all. On any failure
the transaction is aborted, the partition's state is restored from its
committed changelog and the consumer seeks back to the committed offset, so
committed offsets are the only source of truth.

Partitions the group assigns are taken over by the loop, not in the
rebalance callback: aiokafka sends no heartbeat while that callback runs,
and a take-over (a producer per partition, the state restored) that outlasts
the session timeout would get the worker expired from the group while it
goes on processing, a zombie its successors fence. The callback only pauses
the new partitions; the loop starts their producers, restores their state,
seeks and resumes them before its next fetch.

What a record does is not known here: `Step` turns a partition's records
into records to send. Runs as a `mode.Service` (Faust's service library),
so a Faust app can run it (`app.service`). Imports the standard library,
aiokafka and mode, through their public interfaces only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import ConsumerStoppedError
from aiokafka.structs import ConsumerRecord
from mode import Service

log = logging.getLogger("hedger.txn")
# Seconds between commits of idle partitions' positions (offsets-only
# transactions): a transaction per poll would double the commits under load.
IDLE_COMMIT_EVERY = 0.5
# Seconds to wait for a partition's position before an idle commit skips it.
POSITION_WAIT = 1.0


class Send(NamedTuple):
    """A record the step wants written in the partition's transaction.

    `value` None is a tombstone (a deleted table key); `partition` None lets
    the producer's partitioner choose by key.
    """

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None


Step: TypeAlias = Callable[[TopicPartition, list[ConsumerRecord[bytes, bytes]]], list[Send]]
Partitions: TypeAlias = Callable[[set[TopicPartition]], Awaitable[None]]


@dataclass
class TxnStats:
    """Counts for /metrics and tests."""

    committed: int = 0
    aborted: int = 0
    records: int = 0
    fenced: int = 0
    last_commit: float | None = None
    committed_offsets: dict[TopicPartition, int] = field(default_factory=dict)


class TxnLoop(Service):
    """Consume `topics` in group `group_id`; one transaction per partition and batch."""

    def __init__(
        self,
        client_options: dict[str, Any],
        group_id: str,
        topics: Sequence[str],
        transactional_id: Callable[[str, int], str],
        step: Step,
        *,
        restore: Partitions,
        release: Partitions,
        max_records: int = 2000,
        poll_ms: int = 20,
        transaction_timeout_ms: int = 60_000,
        session_timeout_ms: int = 10_000,
    ) -> None:
        super().__init__()
        self.client_options = client_options
        self.group_id = group_id
        self.topics = list(topics)
        self.transactional_id = transactional_id
        self.step = step
        self.restore, self.release = restore, release
        self.max_records, self.poll_ms = max_records, poll_ms
        self.transaction_timeout_ms = transaction_timeout_ms
        self.session_timeout_ms = session_timeout_ms
        self.producers: dict[TopicPartition, AIOKafkaProducer] = {}
        # Per owned partition: the offset the next record to process must have at least.
        self.next_offset: dict[TopicPartition, int] = {}
        self.stats = TxnStats()
        self.lock = asyncio.Lock()
        self.consumer: AIOKafkaConsumer | None = None
        self.assigned_event = asyncio.Event()
        # Assigned by the group, paused, not yet taken over (see `take_over`).
        self.pending: set[TopicPartition] = set()
        self.idle_due = 0.0  # loop time of the next idle position commit
        self.generation = 0  # counts assignments and revocations

    # -- life cycle --------------------------------------------------------

    async def on_start(self) -> None:
        consumer = AIOKafkaConsumer(
            **self.client_options,
            group_id=self.group_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            # Partition p of every topic with the same partition count goes to
            # the same worker: a stage reading two co-partitioned topics (loan
            # bookings and the loan repartition topic) owns one state partition.
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(self.session_timeout_ms // 4, 500),
        )
        consumer.subscribe(self.topics, listener=_Listener(self))
        self.consumer = consumer  # the first assignment may come while it starts
        await consumer.start()
        self.add_future(self._run())

    async def on_stop(self) -> None:
        # Not under the lock: leaving the group revokes the partitions, and
        # the revocation takes the lock (it waits for a batch in flight).
        if self.consumer is not None:
            await self.consumer.stop()
        async with self.lock:
            await self._close(set(self.producers))

    # -- assignment ------------------------------------------------------

    async def assigned(self, tps: set[TopicPartition]) -> None:
        """New partitions (in the rebalance callback): paused until the loop takes them over."""
        self.generation += 1
        new = tps - set(self.producers)
        self.pending |= new
        if new and self.consumer is not None:
            self.consumer.pause(*new)

    async def take_over(self) -> None:
        """Pending partitions: fence their previous owner, restore their state, seek, resume."""
        async with self.lock:
            new, self.pending = self.pending, set()
            if not new:
                return
            started = {tp: self._producer(tp) for tp in sorted(new)}
            # init_transactions: each previous owner's producer is fenced
            await asyncio.gather(*(producer.start() for producer in started.values()))
            self.producers.update(started)
            # Only after fencing: what the old owner committed is final now.
            await self.restore(new)
            await self._seek_committed(new)
            consumer = self.consumer
            if consumer is not None:
                consumer.resume(*(new & consumer.assignment()))
            log.info("assigned %d partitions, %d new", len(self.producers), len(new))
            self.assigned_event.set()

    def _producer(self, tp: TopicPartition) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **self.client_options,
            transactional_id=self.transactional_id(tp.topic, tp.partition),
            enable_idempotence=True,
            acks="all",
            transaction_timeout_ms=self.transaction_timeout_ms,
            linger_ms=2,
        )

    async def revoked(self, tps: set[TopicPartition]) -> None:
        """Partitions moving away: no transaction of theirs is open here (lock held)."""
        async with self.lock:
            self.generation += 1
            self.pending -= tps
            await self._close(tps & set(self.producers))
            await self.release(tps)

    async def _close(self, tps: Iterable[TopicPartition]) -> None:
        for tp in list(tps):
            producer = self.producers.pop(tp, None)
            if producer is not None:
                try:
                    await producer.stop()
                except Exception as exc:  # a fenced or dead producer: nothing to keep
                    log.warning("producer stop failed for %s: %r", tp, exc)

    async def _seek_committed(self, tps: Iterable[TopicPartition]) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        for tp in tps:
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
            self.stats.committed_offsets[tp] = committed if committed is not None else 0
            self.next_offset[tp] = committed if committed is not None else 0

    # -- processing ------------------------------------------------------

    async def _run(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        loop = asyncio.get_running_loop()
        while not self.should_stop and not self.crashed:
            if self.pending:
                await self.take_over()
                continue
            try:
                batches = await consumer.getmany(
                    timeout_ms=self.poll_ms, max_records=self.max_records
                )
            except ConsumerStoppedError:
                return  # the service is stopping
            if batches:
                async with self.lock:
                    await self.process(batches)
            elif loop.time() >= self.idle_due:
                self.idle_due = loop.time() + IDLE_COMMIT_EVERY
                await self._advance_idle()

    async def _advance_idle(self) -> None:
        """Commit the position of partitions that read past offsets holding no record.

        A read_committed consumer skips transaction markers, aborted records
        and compacted-away offsets without returning anything: the position
        moves past them while the last processed record's offset does not.
        Committing the position (in a transaction of its own, with nothing
        else in it) keeps the committed offset at the end of the log, so lag
        is zero and a new owner does not read the skipped offsets again.
        """
        consumer = self.consumer
        assert consumer is not None
        # Positions are read without the lock: a position being reset waits for
        # the rebalance, whose revocation waits for the lock.
        generation = self.generation
        positions = {}
        for tp in list(self.producers):
            try:
                positions[tp] = await asyncio.wait_for(consumer.position(tp), POSITION_WAIT)
            except Exception as exc:  # no position yet (being reset, or just revoked)
                log.debug("no position of %s: %r", tp, exc)
        async with self.lock:
            if generation != self.generation:
                return  # reassigned meanwhile: positions from before are not to commit
            for tp, position in positions.items():
                if tp not in self.producers or self.crashed:
                    continue
                if position > self.stats.committed_offsets.get(tp, 0):
                    committed = await self._commit(tp, [], position, 0)
                    if not committed and tp in self.producers and not self.crashed:
                        await self._recover(tp)

    async def process(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """Run the step over each owned partition's records; commit each in its transaction."""
        work: list[Awaitable[bool]] = []
        tps: list[TopicPartition] = []
        for tp, fetched in batches.items():
            if tp not in self.producers:
                continue  # fetched before a revocation: its new owner starts from the commit
            # Records fetched before the seek to the committed offset (a fetch
            # in flight during the rebalance, from offsets committed before
            # the previous owner's last transaction completed) are done already.
            start = self.next_offset.get(tp, 0)
            records = [r for r in fetched if r.offset >= start]
            if not records:
                continue
            self.next_offset[tp] = records[-1].offset + 1
            tps.append(tp)
            try:
                sends = self.step(tp, records)
            except Exception as exc:
                log.error("step failed on %s: %r", tp, exc)
                work.append(_failed())
                continue
            work.append(self._commit(tp, sends, records[-1].offset + 1, len(records)))
        if not work:
            return
        done = await asyncio.gather(*work)
        # Only once no transaction is open: a partition's changelog may also
        # hold what another input partition's transaction wrote.
        for tp, ok in zip(tps, done, strict=True):
            if not ok and tp in self.producers and not self.crashed:
                await self._recover(tp)

    async def _commit(self, tp: TopicPartition, sends: list[Send], offset: int, n: int) -> bool:
        """One transaction: the sends and the offset; False if it was aborted."""
        producer = self.producers[tp]
        try:
            await producer.begin_transaction()
            futures = [await producer.send(s.topic, s.value, s.key, s.partition) for s in sends]
            await asyncio.gather(*futures)
            await self.commit_offsets(producer, tp, offset)
            await producer.commit_transaction()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("transaction of %s aborted: %r", tp, exc)
            self.stats.aborted += 1
            try:
                await producer.abort_transaction()
            except Exception as abort_exc:
                # Fenced: another worker took the partition over, or the broker
                # timed the transaction out. The loop stops (the service
                # crashes); a restarted worker rejoins and owns what the group
                # gives it, from the committed offsets.
                self.stats.fenced += 1
                log.error("abort of %s failed, fenced: %r", tp, abort_exc)
                await self.crash(abort_exc)
            return False
        self.stats.committed += 1
        self.stats.records += n
        self.stats.committed_offsets[tp] = offset
        self.stats.last_commit = asyncio.get_running_loop().time()
        return True

    async def commit_offsets(
        self, producer: AIOKafkaProducer, tp: TopicPartition, offset: int
    ) -> None:
        """Add the consumed offset to the open transaction (the last step before commit)."""
        await producer.send_offsets_to_transaction({tp: offset}, self.group_id)

    async def _recover(self, tp: TopicPartition) -> None:
        """Back to the committed state and offset of the partition."""
        await self.restore({tp})
        await self._seek_committed([tp])


async def _failed() -> bool:
    return False


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: TxnLoop) -> None:
        self.loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.loop.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.loop.assigned(set(assigned))
