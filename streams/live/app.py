"""The Faust application of the live worker: topics, tables and five agents.

Owns: wiring `streams.live.stages` to Kafka — which topic feeds which stage,
the changelog-backed tables each stage writes, and sending the stages'
outputs — and the Faust settings of the app (connection and credentials
come from `streams.settings`). Agents only translate messages and call the
stages; no business rule lives here. Imports faust, `hedger.config`,
`streams.settings`, `streams.observer`, `streams.observe` and `streams.live`.

Topology (SPEC §1 splits the state by loan and by hedging unit; §13's
sellers span every unit):

    loan-bookings, cds-executions, desk-clock,
    cds-quotes (only with [pricing]) (any partitions)
        -> route    (stateless: validate; dead letters; ticks to every partition)
    hedger-control                         -> control (commands to the journal)
    hedger-loans (key loan_id)             -> loans   (table hedger-loan-state)
    hedger-journal (key hedging unit)      -> issuers (table hedger-issuer-state)
        -> cds-hedge-orders (key issuer_id), hedger-dead-letters
    hedger-seller-parts (key seller)       -> sellers (table hedger-seller-state)
        -> seller status changes to every hedger-journal partition
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn, TypeAlias

import faust
from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError
from faust.exceptions import ConsumerNotStarted
from faust.sensors import Sensor
from faust.types import EventT
from mode import Service

from hedger.config import HedgerConfig
from streams.live.continuity import Continuity
from streams.live.seller_stage import SellerStage
from streams.live.stages import (
    PAYLOAD_TOO_LARGE,
    BufferedTable,
    IssuerStage,
    LoanStage,
    Output,
    RouteStage,
    dead_output,
    failed,
)
from streams.observe.health import BrokerWatch, LibraryLogGate
from streams.observe.http import make_app, serve
from streams.observe.logs import LogObserver, get_logger
from streams.observe.metrics import Metrics, WorkerCollector
from streams.observer import FanOut, Observer, Origin
from streams.settings import WorkerSettings

# Seconds a partition may have messages owed while none arrives before it
# is fetched again (a hole at its very end).
REFETCH_AFTER = 10.0

RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}
# The tables of the loan, unit and seller stages; Faust names their changelogs
# "{app id}-{table}-changelog".
TABLES = ("hedger-loan-state", "hedger-issuer-state", "hedger-seller-state")
# An output with the input it came from (None for table writes) and that input's payload.
Sent: TypeAlias = tuple[Origin | None, bytes | None, Output]
Step: TypeAlias = Callable[[Any], list[Output]]
Handler: TypeAlias = Callable[[list[EventT]], list[Sent]]
TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError)
# Exit code of a worker that stopped on a failure it cannot handle in place.
EXIT_AGENT_FAILED = 4
# Tables take no serializer arguments: bytes types select the raw codec.
TABLE: dict[str, Any] = {"key_type": bytes, "value_type": bytes}


def faust_settings(settings: WorkerSettings) -> dict[str, Any]:
    """Faust settings from the worker settings (explained where not obvious)."""
    options: dict[str, Any] = {
        **settings.faust_options(),  # broker URL and SASL/TLS credentials
        "store": settings.store,
        "datadir": settings.data_dir,
        "topic_partitions": settings.partitions,
        # Internal topics and table changelogs (HEDGER_REPLICATION_FACTOR).
        "topic_replication_factor": settings.replication_factor,
        # A standby replica needs a second worker; recovery reads the changelog.
        "table_standby_replicas": 0,
        # Commit often: offsets bound how much is redelivered after a crash.
        "broker_commit_interval": settings.commit_interval,
        "broker_session_timeout": settings.session_timeout,
        "broker_heartbeat_interval": min(3.0, settings.session_timeout / 4),
        "consumer_auto_offset_reset": "earliest",
        # Our own /metrics server; Faust's web server would bind 0.0.0.0:6066.
        "web_enabled": False,
        "worker_redirect_stdouts": False,
        "producer_acks": -1,
    }
    return options


class Worker:
    """The Faust app and the stages it drives.

    Agents take events in batches (`take_events`): each batch runs through
    its stage, then the stage's outputs and coalesced table writes go to the
    producer directly. Faust flushes the producer before it commits offsets,
    so whatever a committed batch produced is durable.
    """

    def __init__(self, settings: WorkerSettings, config: HedgerConfig) -> None:
        self.settings = settings
        self.metrics = Metrics(config)
        self.observer: Observer = FanOut(self.metrics, LogObserver())
        topics = settings.topics
        app = faust.App(settings.app_id, **faust_settings(settings))
        self.app = app
        # Next offset to process per (topic, partition), for the lag gauge.
        self.positions: dict[tuple[str, int], int] = {}
        # cds-quotes is an input only with [pricing] (SPEC §2, §14).
        self.input_topics = (
            topics.loan_bookings,
            topics.cds_executions,
            topics.desk_clock,
            *([topics.cds_quotes] if config.pricing is not None else []),
        )
        self.positions_topics = (
            *self.input_topics,
            topics.loans,
            topics.journal,
            topics.seller_parts,
        )
        # Log end offsets per partition, asked of the broker every 2 s: the
        # consumer's highwater is only known for partitions it has fetched.
        self.ends: dict[tuple[str, int], int] = {}
        # Start of the log of assigned partitions that had no committed offset.
        self.log_starts: dict[Any, int] = {}
        # Offsets owed to the stages and offsets done, per input partition.
        self.continuity = Continuity()
        self.tp_ends: dict[Any, int] = {}
        self.refetched: dict[Any, int] = {}  # last hole logged per partition
        self.last_commit: float | None = None
        # Monotonic time each agent last finished a batch (or started).
        self.progress: dict[str, float] = {}
        # Monotonic time each agent was first seen with lag on its inputs
        # (dropped when it is seen with none).
        self.lag_seen: dict[str, float] = {}
        self.metrics.registry.register(
            WorkerCollector(
                self._lag, self._recovery_remaining, lambda: self.last_commit, self.ready
            )
        )
        app.sensors.add(_CommitSensor(self))
        self.gate = LibraryLogGate(settings.log_summary_every)
        for handler in logging.getLogger().handlers:
            handler.addFilter(self.gate)
        self.broker = BrokerWatch(self.gate, settings.log_summary_every)
        app.timer(2.0)(self._watch)
        if settings.metrics_port is not None:
            # Started with the app's services, not as an app.task: Faust starts
            # tasks only once the first table recovery has completed, and the
            # endpoints must answer during it (/ready 503, the recovery gauge).
            app.add_dependency(_HttpServer(self))
        n = settings.partitions
        inputs = app.topic(*self.input_topics, **RAW)
        control = app.topic(topics.control, **RAW)
        loans_topic = app.topic(topics.loans, partitions=n, internal=True, **RAW)
        journal_topic = app.topic(
            topics.journal,
            partitions=n,
            internal=True,
            config={"retention.ms": str(settings.retention_journal_ms)},
            **RAW,
        )
        seller_topic = app.topic(topics.seller_parts, partitions=n, internal=True, **RAW)
        loan_table = app.Table(TABLES[0], partitions=n, **TABLE)
        issuer_table = app.Table(TABLES[1], partitions=n, **TABLE)
        seller_table = app.Table(TABLES[2], partitions=n, **TABLE)
        self.route = RouteStage(config, topics, self.observer, n)
        self.loans = LoanStage(config, BufferedTable(loan_table.data), topics, self.observer)
        self.issuers = IssuerStage(config, BufferedTable(issuer_table.data), topics, self.observer)
        self.sellers = SellerStage(
            config, BufferedTable(seller_table.data), topics, self.observer, n
        )
        self.changelogs = {
            "loans": loan_table.changelog_topic.get_topic_name(),
            "issuers": issuer_table.changelog_topic.get_topic_name(),
            "sellers": seller_table.changelog_topic.get_topic_name(),
        }
        app.agent(inputs, name="hedger-route")(self._route)
        app.agent(control, name="hedger-control")(self._control)
        app.agent(loans_topic, name="hedger-loans")(self._loans)
        app.agent(journal_topic, name="hedger-issuers")(self._issuers)
        app.agent(seller_topic, name="hedger-sellers")(self._sellers)
        # After a rebalance the tables hold other partitions: rebuild the
        # books once recovery has filled the table, from the owned partitions
        # only, and show their figures before the next message.
        self.recovered = False
        app.on_partitions_revoked.connect(self._on_rebalance)
        app.on_partitions_assigned.connect(self._on_assigned)
        issuer_table.on_recover(self._on_recovered)

    async def _on_rebalance(self, sender: Any = None, *args: Any, **kwargs: Any) -> None:
        self.recovered = False
        # Faust has committed (on revocation); until the seek of the new
        # assignment no partition is this worker's to hand to the stages.
        self.continuity.forget(list(self.continuity.expect))
        self.issuers.invalidate()
        self.sellers.invalidate()

    async def _on_assigned(self, sender: Any = None, *args: Any, **kwargs: Any) -> None:
        self._guard_offsets()
        await self._on_rebalance()
        # mode passes the app as sender when the signal has one, else the set
        assigned = args[0] if args else sender
        self._forget_acks(assigned if isinstance(assigned, set) else set())
        # Positions of an earlier assignment are not ours to report.
        self.positions.clear()

    def _guard_offsets(self) -> None:
        """Make Faust commit only offsets whose every message was processed (once per consumer).

        Three Faust defects let a commit pass messages nobody processed, or a
        stage see a later message before an earlier one (with several workers
        killed and restarted: the first offsets of partitions lost, and orders
        that differ from the journal replay):

        * After a rebalance Faust "seeks to the committed offsets", but for a
          partition with no committed offset it seeks nowhere (aiokafka skips
          it), so fetching goes on from the position of the earlier
          assignment, past the messages fetched then and dropped from the
          buffers by the rebalance. `_seek_fresh` seeks such partitions to
          the start of the log.
        * Faust treats offsets it did not see between two fetched messages
          as gaps (compaction, transaction markers) and commits over them
          (`_add_gap`), and with no committed offset it commits any acked
          run however far from the start (`_new_offset`). Our inputs are
          neither compacted nor transactional: `_next_commit` commits only
          the run of offsets processed from the committed offset (or, with
          none, from the start of the log seen at assignment), kept by
          `streams.live.continuity`.
        * Its fetch loop drops messages fetched while the flow is suspended
          for a rebalance, and goes on delivering a batch fetched before a
          seek after it, moving its read offset past messages no stage saw;
          re-fetched, they are dropped as already read. `_run` holds back an
          event past such a hole and seeks its partition back to the hole.
        """
        consumer = self.app.consumer
        if getattr(consumer, "_hedger_guarded", False):
            return
        consumer._hedger_guarded = True
        seek = consumer.perform_seek

        async def perform_seek() -> None:
            await seek()
            await self._seek_fresh()
            self._restart_continuity()

        async def no_gap(tp: Any, offset_from: int, offset_to: int) -> None:
            return None

        consumer.perform_seek = perform_seek
        consumer._add_gap = no_gap
        consumer._new_offset = self._next_commit

    async def _seek_fresh(self) -> None:
        """Seek the assigned partitions that have no committed offset to the log start."""
        consumer = self.app.consumer
        ours = set(self.positions_topics) | {self.settings.topics.control}
        fresh = [
            tp
            for tp in consumer.assignment()
            if tp.topic in ours and consumer._committed_offset.get(tp) is None
        ]
        if not fresh:
            return
        starts = await consumer.earliest_offsets(*fresh)
        await consumer.seek_wait({tp: starts[tp] for tp in fresh})
        self.log_starts.update(starts)

    def _restart_continuity(self) -> None:
        """After the seek to the committed offsets: each partition is owed from there."""
        consumer = self.app.consumer
        ours = set(self.positions_topics) | {self.settings.topics.control}
        assigned = {tp for tp in consumer.assignment() if tp.topic in ours}
        self.continuity.forget(set(self.continuity.expect) - assigned)
        starts = {}
        for tp in assigned:
            start = consumer._committed_offset.get(tp)
            if start is None:
                start = self.log_starts.get(tp)
            if start is not None:  # else unknown: passes unchecked, never committed
                starts[tp] = start
        self.continuity.reset(starts, time.monotonic())

    def _next_commit(self, tp: Any) -> int | None:
        """The offset to commit for `tp`: the end of the run processed from the last commit.

        Faust's acks say only that an event was taken from the stream, not
        that its outputs are durable, nor that every offset before it was
        seen: they are cleared, and the processed run decides.
        """
        consumer = self.app.consumer
        consumer._acked[tp].clear()
        consumer._acked_index[tp].clear()
        return self.continuity.commit_point(tp, consumer._committed_offset.get(tp))

    def _forget_acks(self, tps: Any) -> None:
        """Clear Faust's ack bookkeeping of partitions (re)assigned to this worker.

        Faust drops it when a partition is revoked, but an ack arriving after
        that (an event taken before the rebalance) builds a new list; if the
        partition comes back, the next commit would be computed from acks of
        the earlier assignment — possibly past messages nobody processed.
        The new assignment starts from the committed offset with no acks.
        """
        consumer = self.app.consumer
        for tp in tps:
            consumer._acked.pop(tp, None)
            consumer._acked_index.pop(tp, None)
            consumer._gap.pop(tp, None)

    async def _on_recovered(self) -> None:
        journal = self.settings.topics.journal
        assigned = self.app.consumer.assignment()
        self.issuers.owned = {tp.partition for tp in assigned if tp.topic == journal}
        self.issuers.invalidate()
        self.issuers.load()
        parts = self.settings.topics.seller_parts
        self.sellers.owned = {tp.partition for tp in assigned if tp.topic == parts}
        self.sellers.invalidate()
        self.sellers.load()  # shows the recovered sellers' figures before the next message
        self.recovered = True

    # -- observability -------------------------------------------------

    def ready(self) -> bool:
        """What /ready and `hedger_ready` report: recovered, consuming, healthy.

        Not ready before recovery completes, while the broker does not
        answer, and while an agent is dead or stalled (finished no batch for
        `stall_timeout` seconds although its input has lag).
        """
        app = self.app
        recovery = app.tables.recovery
        return bool(
            self.recovered
            and recovery.completed.is_set()
            and not app.in_recovery
            and not app.rebalancing
            and self.broker.reachable
            and not self.dead_agents()
            and not self.stalled_agents()
        )

    def dead_agents(self) -> list[str]:
        """Our agents whose every actor has ended (none left to take a message)."""
        dead = []
        for name, agent in self.app.agents.items():
            tasks = [getattr(actor, "actor_task", None) for actor in getattr(agent, "_actors", ())]
            tasks = [task for task in tasks if task is not None]
            if tasks and all(task.done() for task in tasks):
                dead.append(name)
        return dead

    def stalled_agents(self) -> list[str]:
        topics = self.settings.topics
        agent_of = {
            **{topic: "route" for topic in self.input_topics},
            topics.loans: "loans",
            topics.journal: "issuers",
            topics.seller_parts: "sellers",
        }
        now = time.monotonic()
        lagging: set[str] = set()
        for topic, _, lag, _ in self._lag():
            if lag > 0:
                lagging.add(agent_of[topic])
        for agent in {"route", "loans", "issuers", "sellers"} - lagging:
            self.lag_seen.pop(agent, None)  # nothing to do is no stall
        stalled = []
        for agent in sorted(lagging):
            # Timed from when the lag was first seen, not from when the agent
            # was last seen idle (up to a watch period earlier): a stall is
            # reported only once it has lasted the whole timeout.
            since = self.lag_seen.setdefault(agent, now)
            last = max(self.progress.get(agent, now), since)
            if now - last > self.settings.stall_timeout:
                stalled.append(agent)
        return stalled

    async def _watch(self) -> None:
        """Every 2 s: does the broker answer; is every agent alive."""
        self.stalled_agents()  # notes when lag is first seen
        dead = self.dead_agents()
        if dead and not self.app.should_stop:
            fatal(",".join(dead), RuntimeError("agent ended"))
        try:
            client = self.app.producer._ensure_producer().client
            await asyncio.wait_for(client.fetch_all_metadata(), timeout=5.0)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.broker.update(False, repr(exc))
        else:
            self.broker.update(True)
            await self._update_ends()
            # A hole at the end of a partition: nothing later reveals it.
            starved = self.continuity.starved(self.tp_ends, time.monotonic(), REFETCH_AFTER)
            for tp, offset in starved.items():
                await self._seek_back(tp, offset)

    async def _update_ends(self) -> None:
        ours = set(self.positions_topics)
        tps = [tp for tp in self.app.consumer.assignment() if tp.topic in ours]
        if not tps:
            return
        try:
            ends = await asyncio.wait_for(self.app.consumer.highwaters(*tps), timeout=5.0)
        except asyncio.CancelledError:
            raise
        except Exception:  # the gauge keeps the last figures; the broker watch reports
            return
        self.ends = {(tp.topic, tp.partition): end for tp, end in ends.items()}
        self.tp_ends = dict(ends)

    async def _seek_back(self, tp: Any, offset: int) -> None:
        """Fetch a partition again from `offset`, the first offset no stage has seen."""
        consumer = self.app.consumer
        if tp not in consumer.assignment():
            return  # moved away meanwhile: its next owner starts from the commit
        log = get_logger("hedger.worker")
        try:
            earliest = (await consumer.earliest_offsets(tp)).get(tp)
            if earliest is not None and offset < earliest:
                # Retention deleted what was owed: nothing to fetch again.
                log.error(
                    "input.truncated",
                    topic=tp.topic,
                    partition=tp.partition,
                    owed=offset,
                    start=earliest,
                )
                self.continuity.reset({tp: earliest}, time.monotonic())
                offset = earliest
            else:
                self.metrics.refetches.labels(tp.topic).inc()
                if self.refetched.get(tp) != offset:  # stale records repeat the same hole
                    log.warning(
                        "input.refetch", topic=tp.topic, partition=tp.partition, offset=offset
                    )
                self.continuity.sought(tp, time.monotonic())
            self.refetched[tp] = offset
            # Through the consumer's own thread (aiokafka is not thread-safe:
            # a seek from here raced its fetcher), resetting the read offset.
            await consumer.seek_wait({tp: offset})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a rebalance or the broker: the hole is still owed
            log.warning(
                "input.refetch_failed", topic=tp.topic, partition=tp.partition, error=repr(exc)
            )

    def _lag(self) -> list[tuple[str, int, int, int]]:
        """Per partition: messages behind the end, and processed but not committed."""
        consumer = self.app.consumer
        rows = []
        ours = set(self.positions_topics)
        try:
            assigned = consumer.assignment()
        except ConsumerNotStarted:  # the endpoints answer before the consumer starts
            return rows
        for tp in sorted(assigned):
            if tp.topic not in ours:
                continue  # Faust's own assignor topic
            try:
                end = consumer.highwater(tp)
            except Exception:
                end = None
            # A partition not fetched yet has no highwater: the broker's end
            # offset still says how far behind it is.
            known = [x for x in (end, self.ends.get((tp.topic, tp.partition))) if x is not None]
            if not known:
                continue
            end = max(known)
            committed = consumer._committed_offset.get(tp)  # Faust keeps no public copy
            position = self.positions.get((tp.topic, tp.partition))
            if position is None:
                position = committed if committed is not None else 0
            uncommitted = max(position - (committed if committed is not None else 0), 0)
            rows.append((tp.topic, tp.partition, max(end - position, 0), uncommitted))
        return rows

    def _recovery_remaining(self) -> int:
        try:
            return int(self.app.tables.recovery.active_remaining_total())
        except Exception:  # before the first assignment there is nothing to recover
            return 0

    async def _serve_http(self) -> None:
        port = self.settings.metrics_port
        assert port is not None
        self.http = await serve(
            make_app(self.metrics.registry, self.ready), self.settings.metrics_bind, port
        )
        get_logger("hedger.worker").info(
            "http.listening",
            bind=self.settings.metrics_bind,
            port=port,
            endpoints=["/metrics", "/health", "/ready"],
        )

    def _track(self, agent: str, events: list[EventT]) -> None:
        for event in events:
            message = event.message
            self.positions[(message.topic, message.partition)] = message.offset + 1
        self.progress[agent] = time.monotonic()

    def _batches(self, stream: Any) -> AsyncIterator[list[EventT]]:
        batch: AsyncIterator[list[EventT]] = stream.take_events(
            self.settings.batch_size, within=self.settings.batch_wait
        )
        return batch

    async def _run(self, agent: str, stream: Any, handle: Handler) -> None:
        """Drive `handle` over the stream's batches: never commit what is not durable.

        Faust acks a batch's events (its next commit covers them) as soon as
        the agent asks for the next batch, even when the agent failed on it.
        So every batch's outputs are awaited until the broker has them before
        the next batch is taken, an event the stage fails on is dead-lettered
        (`processing_error`) by the stage's own handler, and a failure outside
        any event (the producer refusing, a bug here) ends the process at once
        with exit code 4, before Faust can commit the batch: the supervisor
        restarts the worker, which takes the batch again from the last commit.
        """
        self.progress[agent] = time.monotonic()
        continuity = self.continuity
        async for events in self._batches(stream):
            try:
                # Each partition's events go to the stages once, in offset order
                # from the committed offset; an event past a hole (see
                # `_guard_offsets`) waits until the partition is fetched again.
                # Skipping a partition briefly unassigned instead would let its
                # later events run first after a crash, so orders would differ
                # from the journal replay; and the commit never passes a held-back
                # offset.
                pairs = [(event.message.tp, event.message.offset) for event in events]
                admitted = continuity.admit(pairs, time.monotonic())
                kept = [events[i] for i in admitted.keep]
                if kept:
                    outputs = handle(kept)
                    await self._deliver(agent, outputs)
                    continuity.delivered([pairs[i] for i in admitted.keep])
                    self._track(agent, kept)
                for tp, offset in admitted.seeks.items():
                    await self._seek_back(tp, offset)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                fatal(agent, exc)

    async def _deliver(self, agent: str, outputs: list[Sent]) -> None:
        """Send the outputs and wait until the broker has acknowledged every one.

        An output refused for its size (by the producer or the broker) is
        replaced by a dead letter of its input quoted by reference
        (`payload_too_large`); any other failure is raised.
        """
        send = self.app.producer.send
        pending = []
        for _, _, output in outputs:
            try:
                sent = await send(
                    output.topic, output.key, output.value, output.partition, None, None
                )
            except TOO_LARGE as exc:  # refused before sending
                sent = _failed(exc)
            pending.append(sent)
        results = await asyncio.gather(*pending, return_exceptions=True)
        replacements = []
        for (origin, payload, output), result in zip(outputs, results, strict=True):
            if not isinstance(result, BaseException):
                continue
            if origin is None or not isinstance(result, TOO_LARGE):
                raise result
            detail = f"output of {len(output.value)} bytes to {output.topic} refused: {result!r}"
            replacements.append(
                dead_output(
                    self.settings.topics,
                    self.observer,
                    agent,
                    PAYLOAD_TOO_LARGE,
                    detail,
                    origin,
                    payload,
                    by_reference=True,
                )
            )
        for output in replacements:
            await (await send(output.topic, output.key, output.value, output.partition, None, None))

    def _each(self, stage: str, events: list[EventT], handle: Step) -> tuple[list[Sent], bool]:
        """Run `handle` on each event's message; an event it fails on is dead-lettered.

        Returns the outputs and whether any event failed.
        """
        outputs: list[Sent] = []
        broken = False
        for event in events:
            message = event.message
            source = Origin(message.topic, message.partition, message.offset)
            try:
                sent = handle(message)
            except Exception as exc:
                broken = True
                topics, observer = self.settings.topics, self.observer
                sent = [failed(topics, observer, stage, exc, source, message.value)]
            outputs += [(source, message.value, output) for output in sent]
        return outputs, broken

    def _route_one(self, message: Any) -> list[Output]:
        stamp = int(message.timestamp * 1000) if message.timestamp else None
        source = Origin(message.topic, message.partition, message.offset, stamp)
        return self.route.handle(source, message.value)

    def _route_batch(self, events: list[EventT]) -> list[Sent]:
        return self._each("route", events, self._route_one)[0]

    def _control_batch(self, events: list[EventT]) -> list[Sent]:
        def control(message: Any) -> list[Output]:
            source = Origin(message.topic, message.partition, message.offset)
            return self.route.handle_control(source, message.value)

        return self._each("route", events, control)[0]

    def _loans_batch(self, events: list[EventT]) -> list[Sent]:
        stage = self.loans
        outputs, _ = self._each(
            "loans", events, lambda m: stage.handle(m.partition, m.offset, m.value)
        )
        return outputs + self._writes(self.changelogs["loans"], stage.table)

    def _sellers_batch(self, events: list[EventT]) -> list[Sent]:
        stage = self.sellers
        outputs, broken = self._each(
            "sellers", events, lambda m: stage.handle(m.partition, m.offset, m.value)
        )
        outputs += self._writes(self.changelogs["sellers"], stage.table)
        if broken:
            stage.invalidate()  # rebuilt from the table, which has every complete write
        return outputs

    def _issuers_batch(self, events: list[EventT]) -> list[Sent]:
        stage = self.issuers
        outputs, broken = self._each(
            "issuers", events, lambda m: stage.handle(m.partition, m.offset, m.value)
        )
        stage.finish_batch()
        outputs += self._writes(self.changelogs["issuers"], stage.table)
        if broken:
            # The engine may hold a half-applied event: rebuild it from the
            # table, which has every complete event's writes.
            stage.invalidate()
        return outputs

    def _writes(self, changelog: str, table: BufferedTable) -> list[Sent]:
        return [
            (None, None, Output(changelog, key, value, partition))
            for partition, key, value in table.drain()
        ]

    async def _route(self, stream: Any) -> None:
        await self._run("route", stream, self._route_batch)

    async def _control(self, stream: Any) -> None:
        await self._run("control", stream, self._control_batch)

    async def _loans(self, stream: Any) -> None:
        await self._run("loans", stream, self._loans_batch)

    async def _issuers(self, stream: Any) -> None:
        await self._run("issuers", stream, self._issuers_batch)

    async def _sellers(self, stream: Any) -> None:
        await self._run("sellers", stream, self._sellers_batch)


def _failed(exc: BaseException) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future


def fatal(agent: str, exc: BaseException) -> NoReturn:
    """End the process now, without letting Faust commit the batch in flight."""
    log = get_logger("hedger.worker")
    log.critical("agent.failed", agent=agent, error=repr(exc), exit_code=EXIT_AGENT_FAILED)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_AGENT_FAILED)


class _HttpServer(Service):
    """/metrics, /health and /ready from the start of the app (a dependency of the app)."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    async def on_start(self) -> None:
        await self.worker._serve_http()


class _CommitSensor(Sensor):  # type: ignore[misc]
    """Records when offsets were last committed (Faust calls sensors as observers)."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    def on_commit_completed(self, consumer: Any, state: Any) -> None:
        self.worker.last_commit = time.time()
