"""The live worker: the transactional runtime run by a Faust application.

Owns: the Faust app of `hedger worker` and what runs in it — the
transactional loop (`streams.live.txn_worker`: the stages over
changelog-backed tables, one Kafka transaction per input partition and
batch), the HTTP endpoints (/metrics, /health, /ready), a watch every 2 s
(does the broker answer, log end offsets for the lag gauge), the creation
of every topic the declared topology names, and the stop of the process when
the loop fails (one ERROR line; `hedger worker` exits with code 4).

Faust is the application framework: its worker runs the app, handles
signals and exit codes. The app starts no Kafka client of its own: its boot
strategy (`TxnBoot`, Faust's public `BootStrategy` with Kafka and its web
server off) leaves the one consumer of the group to the transactional loop,
which Faust's consumer would otherwise join with another protocol.

No business rule lives here. Imports faust, mode and aiokafka (public
API), `hedger.config`, `streams.settings`, `streams.kafka_io`,
`streams.observer`, `streams.observe` and `streams.live`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import faust
from aiokafka import TopicPartition
from faust.app.base import BootStrategy
from mode import Service

from hedger.config import HedgerConfig
from streams.kafka_io import ensure_topics
from streams.live.table_rows import TableFormatError
from streams.live.topology import Retention, Topology, hedger_topology
from streams.live.txn_worker import TxnWorker
from streams.observe.health import BrokerWatch, LibraryLogGate
from streams.observe.http import make_app, serve
from streams.observe.logs import LogObserver, get_logger
from streams.observe.metrics import Metrics, WorkerCollector
from streams.observer import FanOut, Observer
from streams.settings import WorkerSettings

# Exit code of a worker whose transactional loop failed or was fenced.
EXIT_LOOP_FAILED = 4
# The tables hold rows of an older format (`TableFormatError`): an operator's
# decision (rebuild into a new app id), not a failure a restart would mend.
EXIT_OLD_TABLES = 2
# Seconds between two looks at the broker and the log end offsets.
WATCH_EVERY = 2.0
# Seconds the broker has to answer a metadata or end-offset request.
BROKER_TIMEOUT = 5.0


class TxnBoot(BootStrategy):
    """Faust's services without its Kafka consumer, producer, tables and web server.

    The transactional loop is the group's only consumer; our own HTTP
    server answers /metrics, /health and /ready.
    """

    enable_kafka = False
    enable_web = False


class HedgerApp(faust.App):
    """The Faust app of the worker: `faust.App` builds `BootStrategy(app)` at init."""

    BootStrategy = TxnBoot


def faust_settings(settings: WorkerSettings) -> dict[str, Any]:
    """The app's settings: no broker connection, so neither broker nor credentials."""
    return {
        "datadir": settings.data_dir,
        "web_enabled": False,
        "worker_redirect_stdouts": False,
        "autodiscover": False,
    }


class Worker:
    """The Faust app, the transactional worker it runs, and what operators see of it."""

    def __init__(self, settings: WorkerSettings, config: HedgerConfig) -> None:
        self.settings = settings
        self.metrics = Metrics(config)
        self.observer: Observer = FanOut(self.metrics, LogObserver())
        self.topology: Topology = hedger_topology(
            settings.app_id,
            settings.partitions,
            settings.topics,
            pricing=config.pricing is not None,
            retention=Retention(
                settings.retention_journal_ms,
                settings.retention_orders_ms,
                settings.retention_control_ms,
            ),
        )
        self.txn = TxnWorker(
            settings,
            config,
            self.topology,
            self.observer,
            max_records=settings.batch_size,
            linger_ms=settings.commit_interval * 1000,
            poll_ms=max(1, round(settings.batch_wait * 1000)),
            session_timeout_ms=int(settings.session_timeout * 1000),
            store=settings.store,
            data_dir=Path(settings.data_dir),
            recovery_warn_after=settings.recovery_warn_after,
            on_slow_recovery=self.slow_recovery,
        )
        self.loop = self.txn.loop
        # Log end offsets (last stable offsets: read_committed) of the assigned
        # partitions, asked of the broker every watch: the consumer knows them
        # only for partitions it has fetched.
        self.ends: dict[TopicPartition, int] = {}
        # Per partition: the last committed offset seen, and since when (monotonic).
        self.progress: dict[TopicPartition, tuple[int, float]] = {}
        # Per partition: since when (monotonic) it has been seen with lag.
        self.lag_seen: dict[TopicPartition, float] = {}
        self.failure: BaseException | None = None
        # The Faust worker running the app (set by `hedger worker`): told that
        # a loop failure is reported here, so it does not raise it again.
        self.runner: Service | None = None
        self.metrics.registry.register(
            WorkerCollector(
                self.lag,
                self.recovery_remaining,
                self.last_commit,
                self.ready,
                transactions=self.transactions,
            )
        )
        self.gate = LibraryLogGate(settings.log_summary_every)
        for handler in logging.getLogger().handlers:
            handler.addFilter(self.gate)
        self.broker = BrokerWatch(self.gate, settings.log_summary_every)
        self.log = get_logger("hedger.worker")
        app = HedgerApp(settings.app_id, **faust_settings(settings))
        self.app = app
        # Started with the app, in this order: the endpoints answer (503)
        # while the loop joins the group and restores its tables.
        app.add_dependency(_Runtime(self))
        app.add_dependency(self.loop)
        # Started last, so stopped first: on a clean stop the tables'
        # snapshot is taken while the loop still owns its partitions.
        app.add_dependency(_SnapshotAtStop(self))
        app.timer(WATCH_EVERY)(self.watch)

    # -- topics ------------------------------------------------------------

    async def create_topics(self) -> None:
        """Every topic of the topology that does not exist yet.

        Internal topics and changelogs must have exactly `partitions`
        partitions (keys are spread over them by partition number); inputs
        and outputs take it when created here.
        """
        settings, topology = self.settings, self.topology
        await ensure_topics(
            settings,
            list(topology.created_topics),
            settings.partitions,
            settings.replication_factor,
            topology.topic_configs,
            exact=topology.exact_topics,
        )
        # Learns whether loan-bookings is co-partitioned with the loan topic.
        await self.txn.create_topics(settings.replication_factor)

    # -- the watch -----------------------------------------------------------

    async def watch(self) -> None:
        """Every 2 s: does the broker answer; the log end offsets of the assigned partitions."""
        consumer = self.loop.consumer
        if consumer is None:
            return
        try:
            await asyncio.wait_for(consumer.topics(), BROKER_TIMEOUT)
            tps = [tp for tp in consumer.assignment() if tp.topic in self.topology.input_topics]
            ends = await asyncio.wait_for(consumer.end_offsets(tps), BROKER_TIMEOUT) if tps else {}
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.broker.update(False, repr(exc))
            return
        self.broker.update(True)
        self.ends = dict(ends)
        self.stalled()  # notes when lag is first seen

    # -- observability -------------------------------------------------------

    def lag(self) -> list[tuple[str, int, int, int]]:
        """Per assigned partition: offsets from the committed one to the end, and of
        these, the records processed in the transaction in flight.

        Only a committed transaction counts as progress: until then its
        records would be processed again by the partition's next owner.
        """
        consumer = self.loop.consumer
        if consumer is None:
            return []
        stats = self.loop.stats
        rows = []
        for tp in sorted(consumer.assignment()):
            if tp.topic not in self.topology.input_topics:
                continue
            known = [self.ends.get(tp), consumer.last_stable_offset(tp)]
            ends = [end for end in known if end is not None]
            if not ends:
                continue
            committed = stats.committed_offsets.get(tp, 0)
            position = max(self.loop.next_offset.get(tp, 0), committed)
            behind = max(max(ends) - committed, 0)
            rows.append((tp.topic, tp.partition, behind, position - committed))
        return rows

    def stalled(self) -> list[tuple[str, int]]:
        """Partitions (control included) with lag and no commit for `stall_timeout` seconds."""
        now = time.monotonic()
        committed = self.loop.stats.committed_offsets
        stalled = []
        lagging = set()
        for topic, partition, behind, _ in self.lag():
            tp = TopicPartition(topic, partition)
            offset = committed.get(tp, 0)
            seen = self.progress.get(tp)
            if seen is None or seen[0] != offset:
                self.progress[tp] = seen = (offset, now)
            if behind == 0:
                continue
            lagging.add(tp)
            # Timed from when the lag was first seen, not from the last commit
            # before it: a stall is reported once it has lasted the whole timeout.
            since = self.lag_seen.setdefault(tp, now)
            if now - max(seen[1], since) > self.settings.stall_timeout:
                stalled.append((topic, partition))
        for tp in set(self.lag_seen) - lagging:
            del self.lag_seen[tp]  # nothing to do is no stall
        return stalled

    def slow_recovery(self, changelog: str, left: dict[int, int]) -> None:
        """One WARNING per restore that outlasts `recovery_warn_after`."""
        offsets = {str(partition): n for partition, n in sorted(left.items())}
        self.log.warning("recovery.slow", changelog=changelog, offsets_left=offsets)

    def recovery_remaining(self) -> int:
        """Changelog records left to restore, over every table."""
        return sum(store.remaining for store in self.txn.stores.values())

    def last_commit(self) -> float | None:
        """Wall-clock time of the last committed transaction (None: none yet)."""
        last = self.loop.stats.last_commit
        if last is None:
            return None
        return time.time() - (asyncio.get_event_loop().time() - last)

    def transactions(self) -> dict[str, int]:
        """Transactions by outcome since the start."""
        stats = self.loop.stats
        return {"committed": stats.committed, "aborted": stats.aborted, "fenced": stats.fenced}

    def ready(self) -> bool:
        """What /ready and `hedger_ready` report: assigned, restored, consuming, healthy.

        Not ready before the first assignment's tables are restored, while a
        table is being restored, while the broker does not answer, once the
        loop has failed, and while a partition has lag and no commit for
        `stall_timeout` seconds.
        """
        return bool(
            self.loop.assigned_event.is_set()
            and not self.txn.restoring
            and self.recovery_remaining() == 0
            and self.broker.reachable
            and not self.loop.crashed
            and not self.stalled()
        )

    # -- failure -------------------------------------------------------------

    def exit_code(self) -> int:
        """The exit code of `hedger worker` after the loop failed."""
        if isinstance(self.failure, TableFormatError):
            return EXIT_OLD_TABLES
        return EXIT_LOOP_FAILED

    def fail(self, reason: BaseException | None, *, stop: bool) -> None:
        """The loop failed or was fenced: one ERROR line, then a graceful stop.

        With `stop`, the process sends itself SIGTERM: the Faust worker stops
        every service (the loop leaves the group, its producers close) and
        `hedger worker` exits with code 4. A restarted worker rejoins the
        group and resumes every partition from its committed offset and
        state; the open transaction is aborted by the partition's next owner.
        """
        if self.failure is not None:
            return
        self.failure = reason or RuntimeError("transactional loop ended")
        self.log.error(
            "worker.loop_failed",
            error=repr(self.failure),
            fenced=self.loop.stats.fenced,
            exit_code=self.exit_code(),
        )
        if self.runner is not None:
            # mode marks every service up to the worker crashed; the worker
            # would log the crash again and raise it after its shutdown.
            self.runner.crash_reason = None
        if stop:
            os.kill(os.getpid(), signal.SIGTERM)


class _SnapshotAtStop(Service):
    """On a clean stop, the `rocksdb://` tables' snapshot before the loop leaves the group.

    Leaving the group does not revoke the partitions first, and once it has
    left, another worker may write them: a snapshot then could hold stale
    keys. Taken here, a restart on the same disk reads only what committed
    after it.
    """

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    async def on_stop(self) -> None:
        txn = self.worker.txn
        if not any(store.local for store in txn.stores.values()):
            return
        try:
            written = await txn.checkpoint()
        except Exception as exc:  # the next start reads a longer tail
            self.worker.log.warning("tables.snapshot_failed", error=repr(exc))
        else:
            self.worker.log.info("tables.snapshot", keys=written)


class _Runtime(Service):
    """The HTTP endpoints, and the end of the process when the loop fails (an app dependency)."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker
        self.supervisor: asyncio.Task[None] | None = None
        self.http: Any = None

    async def on_start(self) -> None:
        worker = self.worker
        port = worker.settings.metrics_port
        if port is not None:
            bind = worker.settings.metrics_bind
            self.http = await serve(make_app(worker.metrics.registry, worker.ready), bind, port)
            worker.log.info(
                "http.listening", bind=bind, port=port, endpoints=["/metrics", "/health", "/ready"]
            )
        # A plain task, not a service future: a crash of the loop marks every
        # service of the app crashed, and this task must still see it.
        self.supervisor = asyncio.ensure_future(self._supervise())

    async def _supervise(self) -> None:
        loop = self.worker.loop
        while not loop.crashed:
            await asyncio.sleep(0.2)
        self.worker.fail(loop.crash_reason, stop=True)

    async def on_stop(self) -> None:
        if self.worker.loop.crashed:  # the app stops because the loop crashed
            self.worker.fail(self.worker.loop.crash_reason, stop=False)
        if self.supervisor is not None:
            self.supervisor.cancel()
        if self.http is not None:
            await self.http.cleanup()
