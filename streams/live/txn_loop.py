"""The consume-process-produce loop with Kafka transactions (exactly-once).

Owns: the one consumer of the worker's group (`read_committed`, no
auto-commit), one transactional producer per assigned input partition
(transactional id `"{app_id}-{topic}-{partition}"`, so a new owner's
`init_transactions` fences the producer of a worker that lost the partition
and aborts its open transaction), and the transactions: the step's records
for one partition (table changelog writes and outputs) and the consumed
offset are committed together, or not at all. On any failure the
transaction is aborted, the partition's state is restored from its
committed changelog and the consumer seeks back to the committed offset, so
committed offsets are the only source of truth.

Partitions the group assigns are taken over by the loop, not in the
rebalance callback: aiokafka sends no heartbeat while that callback runs,
and a take-over (a producer per partition, the state restored) that outlasts
the session timeout would get the worker expired from the group while it
goes on processing, a zombie its successors fence. The callback only pauses
the new partitions; the poller starts their producers, restores their
state, seeks and resumes them before its next fetch.

How records flow: one poller fetches and hands each partition's records to
its lane's queue; each lane (a task) takes what has accumulated, runs the
step and commits, then takes what accumulated meanwhile. Partitions in
different lanes never wait for each other's commits, and a lane's batch
grows with the load while its latency stays one commit. Partitions whose
steps write the same state (`task_of` maps them to one lane) are processed
one transaction at a time, so no step reads what an open transaction
wrote. A partition whose queue is long is paused (public `pause`/`resume`).

What a record does is not known here: `Step` turns a partition's records
into records to send. Runs as a `mode.Service` (Faust's service library),
so a Faust app can run it (`app.service`). Imports the standard library,
aiokafka and mode, through their public interfaces only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import ConsumerStoppedError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord
from mode import Service

if TYPE_CHECKING:  # what `AIOKafkaProducer.create_batch` returns
    from aiokafka.producer.message_accumulator import BatchBuilder

log = logging.getLogger("hedger.txn")
# Seconds a lane waits without records before it commits its partitions'
# positions (offsets-only transactions), so offsets skipped by markers reach
# the committed offset without a transaction per poll.
IDLE_COMMIT_EVERY = 0.5
# Seconds to wait for a partition's position before an idle commit skips it.
POSITION_WAIT = 1.0
# A partition whose queue holds more than this many batches is paused until
# its lane has taken it below one batch: memory stays bounded, and a slow
# lane does not make the poller fetch for it alone.
PAUSE_AFTER_BATCHES = 2
# Bytes of one produce batch (aiokafka's default is 16 KiB). aiokafka keeps
# one request in flight per broker and one open batch per partition, so a
# transaction's records cost one round trip per batch: larger batches, fewer
# round trips. A batch must fit the `max.message.bytes` of every topic written
# (Kafka's default is about 1 MiB); 64 KiB fits any but a deliberately small one.
BATCH_BYTES = 64 * 1024


_PARTITIONER = DefaultPartitioner()


@functools.lru_cache(maxsize=1 << 16)
def home(key: bytes, n: int) -> int:
    """The partition (of `n`) that the producer's default partitioner sends `key` to.

    Cached: its murmur2 is pure Python, and a few keys (hedging units,
    issuers, sellers) take most records.
    """
    partition: int = _PARTITIONER(key, list(range(n)), [])
    return partition


class Send(NamedTuple):
    """A record the step wants written in the partition's transaction.

    `value` None is a tombstone (a deleted table key); `partition` None lets
    the producer's partitioner choose by key.
    """

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None


Record: TypeAlias = ConsumerRecord[bytes, bytes]
Step: TypeAlias = Callable[[TopicPartition, list[Record]], list[Send]]
Partitions: TypeAlias = Callable[[set[TopicPartition]], Awaitable[None]]
TaskOf: TypeAlias = Callable[[TopicPartition], Hashable]


@dataclass
class TxnStats:
    """Counts for /metrics and tests."""

    committed: int = 0
    aborted: int = 0
    records: int = 0
    fenced: int = 0
    last_commit: float | None = None
    committed_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    paused: int = 0  # times a partition was paused for a long queue


@dataclass
class _Lane:
    """Partitions processed one transaction at a time, by one task."""

    queues: dict[TopicPartition, list[Record]] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class _Gate:
    """Transactions run side by side; assignment, revocation and recovery run alone.

    `exclusive` waits for the open transactions to end and holds new ones
    back (the lock is fair: a transaction asking after it waits).
    """

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.open = 0
        self.none_open = asyncio.Event()
        self.none_open.set()

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self.lock:
            self.open += 1
            self.none_open.clear()
        try:
            yield
        finally:
            self.open -= 1
            if not self.open:
                self.none_open.set()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self.lock:
            await self.none_open.wait()
            yield


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
        task_of: TaskOf | None = None,
        linger_ms: float = 0.0,
        batch_bytes: int = BATCH_BYTES,
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
        # Partitions mapped to one value write the same state: one lane.
        self.task_of: TaskOf = task_of or (lambda tp: tp)
        # Seconds a woken lane waits for more records before its transaction.
        self.linger = linger_ms / 1000
        self.batch_bytes = batch_bytes
        self.producers: dict[TopicPartition, AIOKafkaProducer] = {}
        # Per owned partition: the offset the next record to process must have at least.
        self.next_offset: dict[TopicPartition, int] = {}
        self.stats = TxnStats()
        self.gate = _Gate()
        self.lock = self.gate.lock  # held by assignment, revocation and recovery
        self.consumer: AIOKafkaConsumer | None = None
        self.assigned_event = asyncio.Event()
        # Assigned by the group, paused, not yet taken over (see `take_over`).
        self.pending: set[TopicPartition] = set()
        self.generation = 0  # counts assignments and revocations
        self.lanes: dict[Hashable, _Lane] = {}
        self.lane_of: dict[TopicPartition, _Lane] = {}
        self.in_hand: set[TopicPartition] = set()  # polled, not queued yet
        # Seeks counted: records in hand across a seek of their partition
        # are from before it, and are read again from the new position.
        self.seeks = 0
        self.sought: dict[TopicPartition, int] = {}
        # Per topic written: its partitions, read from the producer's metadata
        # once per assignment.
        self.partitions: dict[str, list[int]] = {}

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
        # Not under the gate: leaving the group revokes the partitions, and
        # the revocation waits for the transactions in flight.
        if self.consumer is not None:
            await self.consumer.stop()
        async with self.gate.exclusive():
            await self._close(set(self.producers))
            tasks = [lane.task for lane in self.lanes.values() if lane.task is not None]
            self.lanes.clear()
            self.lane_of.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- assignment ------------------------------------------------------

    async def assigned(self, tps: set[TopicPartition]) -> None:
        """New partitions (in the rebalance callback): paused until the poller takes them over."""
        self.generation += 1
        new = tps - set(self.producers)
        self.pending |= new
        if new and self.consumer is not None:
            self.consumer.pause(*new)

    async def take_over(self) -> None:
        """Pending partitions: fence their previous owner, restore their state, seek, resume."""
        async with self.gate.exclusive():
            new, self.pending = self.pending, set()
            if not new:
                return
            self.generation += 1
            self.partitions.clear()
            started = {tp: self._producer(tp) for tp in sorted(new)}
            # init_transactions: each previous owner's producer is fenced
            await asyncio.gather(*(producer.start() for producer in started.values()))
            self.producers.update(started)
            # Only after fencing: what the old owner committed is final now.
            await self.restore(new)
            await self._seek_committed(new)
            for tp in sorted(new):
                self._join_lane(tp)
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
            max_batch_size=self.batch_bytes,
        )

    async def revoked(self, tps: set[TopicPartition]) -> None:
        """Partitions moving away: waits for the open transactions, then drops them."""
        self.pending -= tps
        async with self.gate.exclusive():
            self.generation += 1
            for tp in tps:
                self._leave_lane(tp)
            await self._close(tps & set(self.producers))
            await self.release(tps)

    def _join_lane(self, tp: TopicPartition) -> None:
        key = self.task_of(tp)
        lane = self.lanes.get(key)
        if lane is None:
            lane = self.lanes[key] = _Lane()
            lane.task = asyncio.create_task(self._lane(lane), name=f"txn-lane-{key}")
        lane.queues[tp] = []
        self.lane_of[tp] = lane

    def _leave_lane(self, tp: TopicPartition) -> None:
        """Called with no transaction open: the lane is between transactions."""
        lane = self.lane_of.pop(tp, None)
        if lane is None:
            return
        lane.queues.pop(tp, None)
        if not lane.queues:
            for key, other in list(self.lanes.items()):
                if other is lane:
                    del self.lanes[key]
            if lane.task is not None:
                lane.task.cancel()

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
        fresh = []
        for tp in tps:
            committed = await consumer.committed(tp)
            # Counted in the same step as the seek starts: what the poller
            # holds from before it is dropped, what it gets after is kept.
            self.seeks += 1
            self.sought[tp] = self.seeks
            if committed is None:
                fresh.append(tp)
            else:
                consumer.seek(tp, committed)
            self.stats.committed_offsets[tp] = committed if committed is not None else 0
            self.next_offset[tp] = committed if committed is not None else 0
        if fresh:
            # One request for all of them: a group's first start assigns
            # every partition with no committed offset at once.
            await consumer.seek_to_beginning(*fresh)

    # -- fetching ----------------------------------------------------------

    async def _run(self) -> None:
        """Poll, and hand each owned partition's new records to its lane."""
        consumer = self.consumer
        assert consumer is not None
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
                await self.process(batches)

    async def process(self, batches: dict[TopicPartition, list[Record]]) -> None:
        """Queue each owned partition's records behind what its lane has not taken yet.

        Called as soon as the poll returned `batches`, with nothing awaited
        in between: the seek count read first is the one of the poll. Waits
        while a partition is being assigned, revoked or recovered (its lane
        and committed offset are being set); a partition sought meanwhile is
        read again from its new position, and its records in hand are dropped.
        """
        seeks = self.seeks
        # Records in hand are not in their queue yet: no idle commit may
        # take their position for done.
        self.in_hand = set(batches)
        try:
            async with self.gate.lock:
                self._queue(batches, seeks)
        finally:
            self.in_hand = set()

    def _queue(self, batches: dict[TopicPartition, list[Record]], seeks: int) -> None:
        consumer = self.consumer
        for tp, fetched in batches.items():
            lane = self.lane_of.get(tp)
            if lane is None:
                continue  # fetched before a revocation: its new owner starts from the commit
            if self.sought.get(tp, 0) > seeks:
                continue
            start = self.next_offset.get(tp, 0)
            # Records fetched before the seek to the committed offset (a fetch
            # in flight during the rebalance, from offsets committed before
            # the previous owner's last transaction completed) are done already.
            records = [r for r in fetched if r.offset >= start]
            if not records:
                continue
            self.next_offset[tp] = records[-1].offset + 1
            queue = lane.queues[tp]
            queue += records
            lane.wake.set()
            if len(queue) > PAUSE_AFTER_BATCHES * self.max_records and consumer is not None:
                consumer.pause(tp)
                self.stats.paused += 1

    # -- processing --------------------------------------------------------

    async def _lane(self, lane: _Lane) -> None:
        """Run the lane; what it cannot recover from (a restore that fails)
        crashes the loop, as in the poller: a restarted worker starts over
        from the committed offsets."""
        try:
            await self._lane_loop(lane)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("lane failed: %r", exc)
            await self.crash(exc)

    async def _lane_loop(self, lane: _Lane) -> None:
        """Take each partition's queued records, step, commit; repeat."""
        while not self.should_stop and not self.crashed:
            if not any(lane.queues.values()):
                try:
                    await asyncio.wait_for(lane.wake.wait(), IDLE_COMMIT_EVERY)
                except TimeoutError:
                    await self._advance_idle(lane)
                    continue
                if self.linger:
                    await asyncio.sleep(self.linger)
            lane.wake.clear()
            for tp, queue in list(lane.queues.items()):
                if queue and not self.crashed:
                    await self._transaction(tp, queue)

    async def _transaction(self, tp: TopicPartition, queue: list[Record]) -> None:
        """One batch of a partition: step and commit; on failure, recover."""
        records = queue[: self.max_records]
        del queue[: len(records)]
        consumer = self.consumer
        if consumer is not None and len(queue) < self.max_records and tp in consumer.paused():
            consumer.resume(tp)
        async with self.gate.shared():
            if tp not in self.producers:
                return
            try:
                sends = self.step(tp, records)
            except Exception as exc:
                log.error("step failed on %s: %r", tp, exc)
                ok = False
            else:
                ok = await self._commit(tp, sends, records[-1].offset + 1, len(records))
        if not ok:
            await self._recover(tp)

    async def _advance_idle(self, lane: _Lane) -> None:
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
        for tp, queue in list(lane.queues.items()):
            if queue or tp not in self.producers:
                continue
            # Outside the gate: a position being reset waits for the
            # rebalance, whose revocation waits for the gate.
            try:
                position = await asyncio.wait_for(consumer.position(tp), POSITION_WAIT)
            except Exception as exc:  # no position yet (being reset, or just revoked)
                log.debug("no position of %s: %r", tp, exc)
                continue
            if position <= self.stats.committed_offsets.get(tp, 0):
                continue
            async with self.gate.shared():
                # Every record below `position` was polled before it was read:
                # none in hand and an empty queue mean each one is committed.
                if queue or tp in self.in_hand or tp not in self.producers or self.crashed:
                    continue
                ok = await self._commit(tp, [], position, 0)
            if not ok:
                await self._recover(tp)

    async def _commit(self, tp: TopicPartition, sends: list[Send], offset: int, n: int) -> bool:
        """One transaction: the sends and the offset; False if it was aborted."""
        producer = self.producers[tp]
        try:
            await producer.begin_transaction()
            futures = await self.send(producer, sends)
            # The offsets join the transaction while the records are being
            # acknowledged: two coordinator round trips off the commit's path.
            done = await asyncio.gather(
                self.commit_offsets(producer, tp, offset), *futures, return_exceptions=True
            )
            for result in done:
                if isinstance(result, BaseException):
                    raise result
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

    async def send(
        self, producer: AIOKafkaProducer, sends: list[Send]
    ) -> list[asyncio.Future[Any]]:
        """The sends into the open transaction, as one batch per partition (or
        a few, when one fills): a future per batch, not per record."""
        batches = await self.batches(producer, sends)
        futures = []
        # A second batch of a partition waits until its first one is taken
        # by the sender: every partition's first batch goes before any second.
        for i in range(max((len(queued) for queued in batches.values()), default=0)):
            for (topic, partition), queued in batches.items():
                if i < len(queued):
                    batch = queued[i]
                    batch.close()  # nothing else may be appended to it
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
        return futures

    async def batches(
        self, producer: AIOKafkaProducer, sends: list[Send]
    ) -> dict[tuple[str, int], list[BatchBuilder]]:
        """The sends grouped by (topic, partition), each partition's in order,
        in batches of the producer's batch size; a keyed send without a
        partition goes where the producer's partitioner would send it."""
        batches: dict[tuple[str, int], list[BatchBuilder]] = {}
        for topic, key, value, partition in sends:
            if partition is None:
                partition = await self._partition(producer, topic, key)
            queued = batches.get((topic, partition))
            if queued is None:
                queued = batches[topic, partition] = [producer.create_batch()]
            if queued[-1].append(key=key, value=value, timestamp=None) is None:  # full
                batch = producer.create_batch()
                # An empty batch takes any record (one larger than the batch
                # size travels alone).
                batch.append(key=key, value=value, timestamp=None)
                queued.append(batch)
        return batches

    async def _partition(self, producer: AIOKafkaProducer, topic: str, key: bytes | None) -> int:
        partitions = self.partitions.get(topic)
        if partitions is None:
            partitions = self.partitions[topic] = sorted(await producer.partitions_for(topic))
        if key is None:  # the partitioner picks one at random
            chosen: int = _PARTITIONER(None, partitions, partitions)
            return chosen
        return partitions[home(key, len(partitions))]

    async def commit_offsets(
        self, producer: AIOKafkaProducer, tp: TopicPartition, offset: int
    ) -> None:
        """Add the consumed offset to the open transaction (the last step before commit)."""
        await producer.send_offsets_to_transaction({tp: offset}, self.group_id)

    async def _recover(self, tp: TopicPartition) -> None:
        """Back to the committed state and offset of the partition.

        Only once no transaction is open: a partition's changelog may also
        hold what another input partition's transaction wrote, and the
        restored state must not miss it or hold what an abort undid.
        """
        async with self.gate.exclusive():
            if tp not in self.producers or self.crashed:
                return
            lane = self.lane_of.get(tp)
            if lane is not None:
                lane.queues[tp].clear()  # read again from the committed offset
            consumer = self.consumer
            if consumer is not None and tp in consumer.paused():
                consumer.resume(tp)
            await self.restore({tp})
            await self._seek_committed([tp])


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: TxnLoop) -> None:
        self.loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.loop.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.loop.assigned(set(assigned))
