"""Reference for the live benchmark: the trivial single-hop Faust agent.

Forwards every message of the input topic to the output topic with a Faust
agent — raw serializers, batching (`take_events` with the worker's batch
size and wait) and direct producer sends — so the benchmark can say what
the worker's own work costs next to the plainest Faust pipeline.

    python -m benchmarks.faust_forwarder --bootstrap HOST:PORT --input T --output T2 --app-id ID
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import faust

from streams.cli.worker import quiet_libraries, tune_gc
from streams.settings import WorkerSettings

# Faust's consumer commits offsets on a timer (the worker commits per transaction).
FORWARDER_COMMIT_INTERVAL = 0.5

RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


def faust_settings(settings: WorkerSettings) -> dict[str, Any]:
    """A Faust app with its own consumer and producer, committing every commit interval."""
    return {
        **settings.faust_options(),  # broker URL and SASL/TLS credentials
        "store": settings.store,
        "datadir": settings.data_dir,
        "topic_partitions": settings.partitions,
        "broker_commit_interval": FORWARDER_COMMIT_INTERVAL,
        "broker_session_timeout": settings.session_timeout,
        "broker_heartbeat_interval": min(3.0, settings.session_timeout / 4),
        "consumer_auto_offset_reset": "earliest",
        "web_enabled": False,
        "worker_redirect_stdouts": False,
        "producer_acks": -1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--data-dir", default="build/forwarder-data")
    args = parser.parse_args()
    settings = WorkerSettings(bootstrap=args.bootstrap, app_id=args.app_id, data_dir=args.data_dir)
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = faust.App(args.app_id, **faust_settings(settings))
    source = app.topic(args.input, **RAW)

    async def forward(stream: Any) -> None:
        send = app.producer.send
        async for events in stream.take_events(settings.batch_size, within=settings.batch_wait):
            for event in events:
                message = event.message
                await send(args.output, message.key, message.value, None, None, None)

    app.agent(source, name="forward")(forward)
    quiet_libraries("info")
    tune_gc()
    faust.Worker(
        app, loglevel="info", redirect_stdouts=False, quiet=True
    ).execute_from_commandline()


if __name__ == "__main__":
    main()
