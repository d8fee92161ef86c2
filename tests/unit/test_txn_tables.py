"""The transactional worker's tables after many desk-clock ticks, without Kafka.

The worker's step (`TxnWorker.step`) runs on records built here; nothing
connects to a broker. The contract (docs/contract.md §3) makes a
`clock.tick` whose `event_id` was already applied a duplicate, with no
window and no ordering of ticks (a repeated id is ignored whatever its
`occurred_at`): every applied tick id is remembered, as one small `t` key
per partition in the unit table and one in the seller table (a duplicate
tick re-evaluates no seller). Nothing else grows with ticks.
"""

from __future__ import annotations

import json

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from streams.kafka_io import encode_key, encode_value
from streams.live.topology import hedger_topology
from streams.live.txn_worker import TxnWorker
from streams.settings import KafkaSettings, TopicNames
from tests.factories import booked, make_config

TOPICS = TopicNames()
TICKS = 10_000


def _record(topic: str, offset: int, key: bytes | None, value: bytes) -> ConsumerRecord:
    return ConsumerRecord(topic, 0, offset, 0, 0, key, value, None, 0, len(value), ())


def _tick(n: int) -> dict[str, object]:
    return {
        "schema_version": 1,
        "event_id": f"tick-{n}",
        "event_type": "clock.tick",
        "occurred_at": "2026-01-05T18:00:00Z",
    }


def test_ten_thousand_ticks_add_one_small_key_each_and_nothing_else() -> None:
    topology = hedger_topology("app", 1, TOPICS)
    worker = TxnWorker(KafkaSettings(bootstrap="unused:9092"), make_config(), topology)
    worker.issuers.owned = {0}
    worker.sellers.owned = {0}
    internal = (TOPICS.loans, TOPICS.journal, TOPICS.seller_parts)
    offsets = dict.fromkeys(internal, 0)

    def run(topic: str, key: bytes | None, value: bytes, offset: int) -> None:
        sends = worker.step(TopicPartition(topic, 0), [_record(topic, offset, key, value)])
        for send in sends:
            if send.topic in internal:  # the next hop, one partition everywhere
                next_offset = offsets[send.topic]
                offsets[send.topic] += 1
                run(send.topic, send.key, send.value or b"", next_offset)

    # a loan under the trigger (ACME's limit is 100m): the ticks visit its unit
    booking = booked("L-1", "50000000")
    run(TOPICS.loan_bookings, encode_key("L-1"), encode_value(booking), 0)
    issuer_keys = dict(worker.stores["issuers"].data)
    seller_keys = dict(worker.stores["sellers"].data)
    for n in range(TICKS):
        run(TOPICS.desk_clock, None, encode_value(_tick(n)), n)
    data = worker.stores["issuers"].data
    added = {key: value for key, value in data.items() if key not in issuer_keys}
    kinds = sorted({json.loads(key)[0] for key in added})
    assert kinds == ["tick"]
    assert len(added) == TICKS
    assert sorted(json.loads(key)[2] for key in added) == sorted(f"tick-{n}" for n in range(TICKS))
    # every other key is still there, none grew into a history
    assert set(issuer_keys) <= set(data)
    assert len(data) == len(issuer_keys) + TICKS
    # one small key per tick: about 50 bytes of key and value together
    sizes = [len(key) + len(value) for key, value in added.items()]
    assert max(sizes) < 100
    assert len(worker.stores["loans"].data) == 1
    sellers = worker.stores["sellers"].data
    assert seller_keys == {}  # no seller has a part: only the ticks' keys
    assert sorted(sellers) == sorted(
        json.dumps(["tick", 0, f"tick-{n}"]).encode() for n in range(TICKS)
    )
    seller_sizes = [len(key) + len(value) for key, value in sellers.items()]
    assert max(seller_sizes) < 100
    print(
        f"\nafter {TICKS} ticks: unit table {len(data)} keys ({len(issuer_keys)} before), "
        f"{sum(sizes)} bytes of tick keys (max {max(sizes)}); seller table {len(sellers)} keys, "
        f"{sum(seller_sizes)} bytes (max {max(seller_sizes)})"
    )
