"""Which input partitions the transactional worker commits one after the other, without Kafka.

Partitions whose steps write the same state share a lane of the loop
(`TxnWorker.lane`): the loan state of partition p is written by
`hedger-loans` p and, when `loan-bookings` has the internal partition count,
by `loan-bookings` p. Every other input partition has a lane of its own.
"""

from __future__ import annotations

from aiokafka import TopicPartition

from streams.live.topology import hedger_topology
from streams.live.txn_worker import TxnWorker
from streams.settings import KafkaSettings, TopicNames
from tests.factories import make_config

TOPICS = TopicNames()


def _worker(copartitioned: bool) -> TxnWorker:
    topology = hedger_topology("lanes-hedger", 4, TOPICS)
    worker = TxnWorker(KafkaSettings(bootstrap="localhost:1"), make_config(), topology)
    worker.copartitioned = copartitioned
    return worker


def test_loan_bookings_share_the_loan_partitions_lane_only_when_copartitioned() -> None:
    together, apart = _worker(True), _worker(False)
    for p in range(4):
        bookings, loans = TopicPartition(TOPICS.loan_bookings, p), TopicPartition(TOPICS.loans, p)
        assert together.lane(bookings) == together.lane(loans)
        assert apart.lane(bookings) != apart.lane(loans)
    lanes = {together.lane(TopicPartition(TOPICS.loans, p)) for p in range(4)}
    assert len(lanes) == 4  # one per state partition


def test_every_other_input_partition_has_a_lane_of_its_own() -> None:
    worker = _worker(True)
    others = [TOPICS.cds_executions, TOPICS.desk_clock, TOPICS.control, TOPICS.journal]
    others.append(TOPICS.seller_parts)
    tps = [TopicPartition(topic, p) for topic in others for p in range(4)]
    assert len({worker.lane(tp) for tp in tps}) == len(tps) == 20
    loans = {worker.lane(TopicPartition(TOPICS.loans, p)) for p in range(4)}
    assert loans.isdisjoint(worker.lane(tp) for tp in tps)


def test_the_loop_is_given_the_lanes() -> None:
    worker = _worker(True)
    bookings, loans = TopicPartition(TOPICS.loan_bookings, 2), TopicPartition(TOPICS.loans, 2)
    assert worker.loop.task_of(bookings) == worker.loop.task_of(loans)
