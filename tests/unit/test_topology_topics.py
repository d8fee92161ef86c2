"""The topics the worker creates, as its declared topology states them.

Topic creation reads the topology: which topics exist, which must have
exactly the internal partition count, and their configurations (compacted
changelogs; the retention of the journal, the orders and the control topic).
"""

from __future__ import annotations

from streams.live.topology import Retention, hedger_topology
from streams.settings import TopicNames

TOPICS = TopicNames(**{name: f"t-{name}" for name in TopicNames.model_fields})
COMPACT = {"cleanup.policy": "compact", "segment.ms": "3600000"}
CHANGELOGS = (
    "app-loan-state-changelog",
    "app-issuer-state-changelog",
    "app-seller-state-changelog",
)


def test_the_worker_creates_inputs_internal_topics_changelogs_and_outputs() -> None:
    topology = hedger_topology("app", 4, TOPICS)
    assert topology.exact_topics == ("t-loans", "t-journal", "t-seller_parts", *CHANGELOGS)
    assert set(topology.created_topics) == {
        "t-loan_bookings",
        "t-cds_executions",
        "t-desk_clock",
        "t-control",
        "t-loans",
        "t-journal",
        "t-seller_parts",
        *CHANGELOGS,
        "t-orders",
        "t-dead_letters",
    }
    priced = hedger_topology("app", 4, TOPICS, pricing=True)
    assert set(priced.created_topics) - set(topology.created_topics) == {"t-cds_quotes"}


def test_changelogs_are_compacted_and_records_kept_as_configured() -> None:
    assert hedger_topology("app", 4, TOPICS).topic_configs == dict.fromkeys(CHANGELOGS, COMPACT)
    retention = Retention(journal_ms=-1, orders_ms=2_592_000_000, control_ms=86_400_000)
    configs = hedger_topology("app", 4, TOPICS, retention=retention).topic_configs
    assert configs == {
        **dict.fromkeys(CHANGELOGS, COMPACT),
        "t-journal": {"retention.ms": "-1"},
        "t-orders": {"retention.ms": "2592000000"},
        "t-control": {"retention.ms": "86400000"},
    }
