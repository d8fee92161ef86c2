"""The declared topology of the transactional worker: stages, inputs, state, outputs.

Owns: which stage reads which topics (and by which key they are
partitioned), which stage keeps a changelog-backed table and the name of its
compacted changelog topic, the topics every stage may write, and the
topics the worker creates with their partition counts and configurations
(compaction, retention). The wiring (`streams.live.txn_worker`), topic
creation, lag checks and tests read this one description instead of
keeping lists of their own. Plain data;
imports the standard library and `streams.settings` (topic names).

Topology (SPEC §1 splits the state by loan and by hedging unit):

    loan-bookings, cds-executions, desk-clock, control (any partitions)
        -> route    (stateless: validate; dead letters)
    hedger-loans (key loan_id)          -> loans   (table loan-state)
    hedger-journal (key hedging unit)   -> issuers (table issuer-state)
    hedger-seller-parts (key seller)    -> sellers (table seller-state)
        -> cds-hedge-orders (key issuer_id), hedger-dead-letters

A stage with a table reads topics of exactly `partitions` partitions, and
its changelog partition p holds the state of its input partition p: the
transaction of input partition p writes only changelog partition p.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from streams.settings import TopicNames

# The changelogs' topic configuration: compacted, and a segment rolls every
# hour, since compaction never touches the open segment: a restore from the
# beginning reads about one hour of superseded rows at most, not days of them.
CHANGELOG_CONFIG = {"cleanup.policy": "compact", "segment.ms": "3600000"}


class Retention(NamedTuple):
    """`retention.ms` of the topics the worker creates that keep a record (-1: forever)."""

    journal_ms: int
    orders_ms: int
    control_ms: int


@dataclass(frozen=True)
class StageSpec:
    """One stage: its name, its input topics, their key and its table."""

    name: str
    inputs: tuple[str, ...]
    key: str  # what the inputs are partitioned by (documentation and checks)
    changelog: str | None  # compacted topic of its table, None if stateless
    outputs: tuple[str, ...]

    @property
    def stateful(self) -> bool:
        return self.changelog is not None


@dataclass(frozen=True)
class Topology:
    """Every stage of the worker, and the partition count of internal topics."""

    app_id: str
    partitions: int
    topics: TopicNames
    stages: tuple[StageSpec, ...]
    retention: Retention | None = None  # None: the broker's defaults

    def stage_of(self, topic: str) -> StageSpec:
        """The stage that consumes `topic`."""
        for stage in self.stages:
            if topic in stage.inputs:
                return stage
        raise KeyError(topic)

    @property
    def input_topics(self) -> tuple[str, ...]:
        """Every topic the worker's consumer group reads."""
        return tuple(topic for stage in self.stages for topic in stage.inputs)

    @property
    def internal_topics(self) -> tuple[str, ...]:
        """Topics the worker creates with `partitions` partitions (keyed repartitions)."""
        t = self.topics
        return (t.loans, t.journal, t.seller_parts)

    @property
    def changelogs(self) -> tuple[str, ...]:
        """The compacted changelog topics (also `partitions` partitions)."""
        return tuple(stage.changelog for stage in self.stages if stage.changelog is not None)

    @property
    def exact_topics(self) -> tuple[str, ...]:
        """Topics that must have exactly `partitions` partitions: keys are spread over them
        by partition number, so another count would send one key to two places."""
        return (*self.internal_topics, *self.changelogs)

    @property
    def created_topics(self) -> tuple[str, ...]:
        """Every topic the worker creates when missing: inputs, internal topics,
        changelogs and outputs."""
        t = self.topics
        names = (*self.input_topics, *self.exact_topics, t.orders, t.dead_letters)
        return tuple(dict.fromkeys(names))

    @property
    def topic_configs(self) -> dict[str, dict[str, str]]:
        """Topic configurations the worker creates topics with: compacted changelogs,
        and the retention of the journal, the orders and the control topic."""
        configs = {name: dict(CHANGELOG_CONFIG) for name in self.changelogs}
        if self.retention is not None:
            t, r = self.topics, self.retention
            configs[t.journal] = {"retention.ms": str(r.journal_ms)}
            configs[t.orders] = {"retention.ms": str(r.orders_ms)}
            configs[t.control] = {"retention.ms": str(r.control_ms)}
        return configs

    def transactional_id(self, topic: str, partition: int) -> str:
        """The producer of one input partition: a new owner's producer fences the old one."""
        return f"{self.app_id}-{topic}-{partition}"


def hedger_topology(
    app_id: str,
    partitions: int,
    topics: TopicNames,
    *,
    pricing: bool = False,
    retention: Retention | None = None,
) -> Topology:
    """The worker's topology: route, loans, issuers and sellers.

    With `pricing` (a configuration with `[pricing]`) the route stage reads
    cds-quotes too and sends each quote to its issuer's unit, like executions.
    """
    t = topics
    outs = (t.dead_letters,)
    quotes = (t.cds_quotes,) if pricing else ()
    stages = (
        StageSpec(
            "route",
            (t.loan_bookings, t.cds_executions, t.desk_clock, *quotes, t.control),
            "any",
            None,
            (t.loans, t.journal, t.seller_parts, *outs),
        ),
        StageSpec(
            "loans", (t.loans,), "loan_id", f"{app_id}-loan-state-changelog", (t.journal, *outs)
        ),
        StageSpec(
            "issuers",
            (t.journal,),
            "hedging unit",
            f"{app_id}-issuer-state-changelog",
            (t.orders, t.seller_parts, *outs),
        ),
        StageSpec(
            "sellers",
            (t.seller_parts,),
            "seller",
            f"{app_id}-seller-state-changelog",
            (t.journal, *outs),
        ),
    )
    return Topology(app_id, partitions, topics, stages, retention)
