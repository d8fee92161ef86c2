"""`python -m tests.integration.commit_crash_worker worker ...`: a worker that may die in a commit.

The volume tests need a worker killed inside a transaction's commit: after
the transaction's records and its consumed offsets were sent to the broker,
before the commit. This launcher wraps `TxnLoop.commit_offsets` (the last
step of a transaction before its commit) and then runs the ordinary `hedger`
command line. With the environment variable `TXN_CRASH_IN_COMMIT` set to a
probability, each commit ends the process with `os._exit(9)` (no clean-up,
as a SIGKILL) with that probability, after printing `crash in the commit of
TOPIC-PARTITION at OFFSET`. Without it the worker runs unchanged.
"""

from __future__ import annotations

import os
import random
import sys

from aiokafka import AIOKafkaProducer, TopicPartition

from streams.cli.main import main
from streams.live.txn_loop import TxnLoop

CRASH_EXIT = 9


def install() -> None:
    """Wrap the loop's offset commit when the environment asks for crashes."""
    chance = float(os.environ.get("TXN_CRASH_IN_COMMIT") or 0)
    if not chance:
        return
    commit_offsets = TxnLoop.commit_offsets

    async def crashing(
        self: TxnLoop, producer: AIOKafkaProducer, tp: TopicPartition, offset: int
    ) -> None:
        await commit_offsets(self, producer, tp, offset)
        if random.random() < chance:  # offsets sent, transaction not committed
            print(f"crash in the commit of {tp.topic}-{tp.partition} at {offset}", flush=True)
            os._exit(CRASH_EXIT)

    TxnLoop.commit_offsets = crashing  # type: ignore[method-assign]


if __name__ == "__main__":
    install()
    sys.exit(main())
