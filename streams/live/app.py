"""The Faust application of the live worker: topics, tables and three agents.

Owns: wiring `streams.live.stages` to Kafka — which topic feeds which stage,
the changelog-backed tables each stage writes, and sending the stages'
outputs — and the Faust settings of the app (connection and credentials
come from `streams.settings`). Agents only translate messages and call the
stages; no business rule lives here. Imports faust, `hedger.config`,
`streams.settings`, `streams.observer`, `streams.observe` and `streams.live`.

Topology (SPEC §1 splits the state by loan and by issuer):

    loan-bookings, cds-executions (any partitions)
        -> route    (stateless: validate; dead letters)
    hedger-loans (key loan_id)      -> loans   (table hedger-loan-state)
    hedger-journal (key issuer_id)  -> issuers (table hedger-issuer-state)
        -> cds-hedge-orders (key issuer_id), hedger-dead-letters
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import faust
from faust.sensors import Sensor
from faust.types import EventT

from hedger.config import HedgerConfig
from streams.live.stages import BufferedTable, IssuerStage, LoanStage, Output, RouteStage
from streams.observe.http import make_app, serve
from streams.observe.logs import LogObserver, get_logger
from streams.observe.metrics import Metrics, WorkerCollector
from streams.observer import FanOut, Observer, Origin
from streams.settings import WorkerSettings

RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}
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
        self.positions_topics = (
            topics.loan_bookings,
            topics.cds_executions,
            topics.loans,
            topics.journal,
        )
        self.last_commit: float | None = None
        self.metrics.registry.register(
            WorkerCollector(
                self._lag, self._recovery_remaining, lambda: self.last_commit, self.ready
            )
        )
        app.sensors.add(_CommitSensor(self))
        if settings.metrics_port is not None:
            app.task(self._serve_http)
        n = settings.partitions
        inputs = app.topic(topics.loan_bookings, topics.cds_executions, **RAW)
        control = app.topic(topics.control, **RAW)
        loans_topic = app.topic(topics.loans, partitions=n, internal=True, **RAW)
        journal_topic = app.topic(
            topics.journal,
            partitions=n,
            internal=True,
            config={"retention.ms": str(settings.retention_journal_ms)},
            **RAW,
        )
        loan_table = app.Table("hedger-loan-state", partitions=n, **TABLE)
        issuer_table = app.Table("hedger-issuer-state", partitions=n, **TABLE)
        self.route = RouteStage(config, topics, self.observer, n)
        self.loans = LoanStage(config, BufferedTable(loan_table.data), topics, self.observer)
        self.issuers = IssuerStage(config, BufferedTable(issuer_table.data), topics, self.observer)
        self.changelogs = {
            "loans": loan_table.changelog_topic.get_topic_name(),
            "issuers": issuer_table.changelog_topic.get_topic_name(),
        }
        app.agent(inputs, name="hedger-route")(self._route)
        app.agent(control, name="hedger-control")(self._control)
        app.agent(loans_topic, name="hedger-loans")(self._loans)
        app.agent(journal_topic, name="hedger-issuers")(self._issuers)
        # After a rebalance the tables hold other partitions: rebuild the books.
        app.on_rebalance_complete.connect(self._on_rebalance)
        app.timer(1.0)(self._load_when_ready)

    async def _on_rebalance(self, sender: Any = None, **kwargs: Any) -> None:
        self.issuers.invalidate()

    async def _load_when_ready(self) -> None:
        # Rebuild as soon as recovery ends, so recovered halts and risk show in
        # /metrics before the next message; rollbacks go out with the next batch.
        if not self.issuers.loaded and self.ready():
            self.issuers.load()

    # -- observability -------------------------------------------------

    def ready(self) -> bool:
        """Recovered and consuming: what /ready reports."""
        app = self.app
        recovery = app.tables.recovery
        return bool(recovery.completed.is_set() and not app.in_recovery and not app.rebalancing)

    def _lag(self) -> list[tuple[str, int, int, int]]:
        """Per partition: messages behind the end, and processed but not committed."""
        consumer = self.app.consumer
        rows = []
        ours = set(self.positions_topics)
        for tp in sorted(consumer.assignment()):
            if tp.topic not in ours:
                continue  # Faust's own assignor topic
            try:
                end = consumer.highwater(tp)
            except Exception:  # not fetched yet: no figure rather than a wrong one
                end = None
            if end is None:
                continue
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

    def _track(self, events: list[EventT]) -> None:
        for event in events:
            message = event.message
            self.positions[(message.topic, message.partition)] = message.offset + 1

    def _batches(self, stream: Any) -> AsyncIterator[list[EventT]]:
        batch: AsyncIterator[list[EventT]] = stream.take_events(
            self.settings.batch_size, within=self.settings.batch_wait
        )
        return batch

    async def _send(self, outputs: list[Output]) -> None:
        send = self.app.producer.send
        for output in outputs:
            await send(output.topic, output.key, output.value, output.partition, None, None)

    async def _write(self, changelog: str, table: BufferedTable) -> None:
        send = self.app.producer.send
        for partition, key, value in table.drain():
            await send(changelog, key, value, partition, None, None)

    async def _route(self, stream: Any) -> None:
        async for events in self._batches(stream):
            outputs = []
            for event in events:
                message = event.message
                stamp = int(message.timestamp * 1000) if message.timestamp else None
                source = Origin(message.topic, message.partition, message.offset, stamp)
                outputs.append(self.route.handle(source, message.value))
            await self._send(outputs)
            self._track(events)

    async def _control(self, stream: Any) -> None:
        async for event in stream.events():  # rare: no batching
            message = event.message
            source = Origin(message.topic, message.partition, message.offset)
            await self._send(self.route.handle_control(source, message.value))

    async def _loans(self, stream: Any) -> None:
        async for events in self._batches(stream):
            outputs = []
            for event in events:
                message = event.message
                outputs += self.loans.handle(message.partition, message.offset, message.value)
            await self._send(outputs)
            await self._write(self.changelogs["loans"], self.loans.table)
            self._track(events)

    async def _issuers(self, stream: Any) -> None:
        async for events in self._batches(stream):
            outputs = []
            for event in events:
                message = event.message
                outputs += self.issuers.handle(message.partition, message.offset, message.value)
            self.issuers.finish_batch()
            await self._send(outputs)
            await self._write(self.changelogs["issuers"], self.issuers.table)
            self._track(events)


class _CommitSensor(Sensor):  # type: ignore[misc]
    """Records when offsets were last committed (Faust calls sensors as observers)."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    def on_commit_completed(self, consumer: Any, state: Any) -> None:
        self.worker.last_commit = time.time()
