"""Run the transactional worker as a process of its own, for SIGKILL tests.

`python -m tests.integration.txn_worker_main BOOTSTRAP PREFIX PARTITIONS CONFIG`
runs `streams.live.txn_worker.TxnWorker` on the topics `{PREFIX}-{field}` (as
`tests.support.txn_worker.topic_names` names them) until SIGTERM, and prints
`assigned` once it owns partitions. The environment variable
`TXN_CRASH_IN_COMMIT` (a probability) makes it end itself with `os._exit`
between sending a transaction's records and committing it: a kill during a
commit; `TXN_MAX_RECORDS` is the most records one poll returns (2000). A
fenced worker (its loop crashed) exits with code 4.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import sys
from typing import Any

from streams.live.topology import hedger_topology
from streams.live.txn_worker import TxnWorker
from streams.settings import KafkaSettings, TopicNames, load_config


def topic_names(prefix: str) -> TopicNames:
    fields = TopicNames.model_fields
    return TopicNames(**{name: f"{prefix}-{name.replace('_', '-')}" for name in fields})


async def main(bootstrap: str, prefix: str, partitions: int, config_path: str) -> None:
    kafka = KafkaSettings(bootstrap=bootstrap)
    topology = hedger_topology(f"{prefix}-hedger", partitions, topic_names(prefix))
    max_records = int(os.environ.get("TXN_MAX_RECORDS", "2000"))
    worker = TxnWorker(kafka, load_config(config_path), topology, max_records=max_records)
    crash = float(os.environ.get("TXN_CRASH_IN_COMMIT", "0"))
    if crash:
        loop = worker.loop
        commit = loop.commit_offsets

        async def crashing(producer: Any, tp: Any, offset: int) -> None:
            await commit(producer, tp, offset)
            if random.random() < crash:  # offsets sent, transaction not committed
                print(f"crash in the commit of {tp} at {offset}", flush=True)
                os._exit(9)

        loop.commit_offsets = crashing  # type: ignore[method-assign]
    await worker.create_topics()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await worker.loop.start()
    await worker.loop.assigned_event.wait()
    print("assigned", flush=True)
    while not (stop.is_set() or worker.loop.crashed):
        await asyncio.sleep(0.1)
    crashed = worker.loop.crashed
    await worker.loop.stop()
    if crashed:  # fenced: the supervisor restarts the worker
        sys.exit(4)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
    logging.getLogger("hedger.txn").setLevel(logging.INFO)
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
