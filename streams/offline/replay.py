"""Offline replay of a recorded event log (SPEC §9) through the core.

Owns: feeding each input event of a log (read by `streams.replay_log`) to
`HedgingEngine`, applying `hedger-control` lines when asked, writing orders,
cancels and withhold records, dead letters, the seller report and the risk
report as JSON lines, counting what
happened, and telling an observer (metrics) what the worker's stages would
tell it, through the same `report_applied` — halts included.
It is the backtest half of backtest-live parity: the worker drives the very
same engine functions. Imports the standard library, `hedger`,
`streams.compact_json`, `streams.observer`, `streams.outputs` and
`streams.replay_log`; never the
live worker. Output files are written whole or not at all (`streams.outputs`).
"""

from __future__ import annotations

import gc
import json
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from hedger.config import HedgerConfig
from hedger.control import CONTROL_TOPIC
from hedger.engine import HedgingEngine, Outcome
from hedger.numbers import to_cents
from hedger.orders import CancelRequest, HedgeOrder, OrderRecord
from hedger.outcomes import Status
from hedger.sellers import SELLER_STATUS_TOPIC
from streams.compact_json import to_json
from streams.observer import DeadLettered, Observer, Origin, report_applied
from streams.outputs import atomic_text
from streams.replay_log import LogRecord, read_log

RECENT_ORDERS = 25  # orders kept for the summary; the file has them all


@dataclass
class ReplayStats:
    """Counts of a replay, for the summary and the metrics."""

    lines: int = 0
    skipped_topics: int = 0
    control: int = 0
    cancels: int = 0
    withheld: Counter[str] = field(default_factory=Counter)  # v2.1: buy legs withheld, by reason
    outcomes: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    orders: Counter[tuple[str, str]] = field(default_factory=Counter)
    recent_orders: deque[HedgeOrder] = field(default_factory=lambda: deque(maxlen=RECENT_ORDERS))
    # The journal partition each issuer's last applied event came from: a halt
    # for all issuers applies per partition, as in the worker.
    scopes: dict[str, int | None] = field(default_factory=dict)

    def halted(self, engine: HedgingEngine) -> Callable[[str], bool]:
        """Whether an issuer ends the replay halted (configuration or operator)."""
        return lambda issuer_id: engine.is_halted(issuer_id, self.scopes.get(issuer_id))


def dead_letter_line(record: LogRecord, outcome: Outcome) -> str:
    """The dead-letter record as one compact JSON line (a closed loop may write thousands)."""
    return to_json(dead_letter_record(record, outcome)).decode() + "\n"


def dead_letter_record(record: LogRecord, outcome: Outcome) -> dict[str, Any]:
    """The dead-letter line: at least line, topic and reason, plus a readable detail."""
    assert outcome.reason is not None
    entry: dict[str, Any] = {
        "line": record.line_no,
        "topic": record.topic,
        "reason": outcome.reason.value,
        "detail": outcome.detail,
    }
    if outcome.event is not None:
        entry["event_id"] = outcome.event.event_id
    entry["payload"] = record.value
    return entry


def replay(
    engine: HedgingEngine,
    stream: IO[str],
    orders_out: IO[str],
    dead_out: IO[str],
    on_line: Callable[[int], None] | None = None,
    observer: Observer | None = None,
    control: bool = False,
) -> ReplayStats:
    """Replay a log through the engine, writing orders and dead letters as they come.

    With `control`, the lines only a dumped journal holds are applied too —
    `hedger-control` halts and resumes, and the seller stage's status changes
    — where the journal's partition saw them; by default they are skipped
    like any other topic (SPEC §9).
    """
    stats = ReplayStats()
    outcomes, dead, orders = stats.outcomes, stats.dead_letters, stats.orders
    for record in read_log(stream):
        stats.lines = record.line_no
        if on_line is not None:
            on_line(record.line_no)
        if control and record.topic in JOURNAL_ONLY:
            _journal_entry(engine, record, stats, dead_out, observer)
            continue
        if record.topic not in engine.input_topics:
            stats.skipped_topics += 1
            continue
        outcome = engine.process(record.topic, record.value, record.scope)
        if observer is not None:
            observe(engine, record, outcome, observer)
        outcomes[outcome.status] += 1
        if record.scope is not None and outcome.status is Status.APPLIED:
            # only a dumped journal has partitions; a missing scope reads as None
            issuer_id = outcome.issuer_id
            if issuer_id is not None:
                stats.scopes[issuer_id] = record.scope
        if outcome.status is Status.DEAD_LETTER:
            assert outcome.reason is not None
            dead[outcome.reason.value] += 1
            dead_out.write(dead_letter_line(record, outcome))
        for out in outcome.records:
            if isinstance(out, HedgeOrder):
                orders[(out.side.value, out.reason.value)] += 1
                stats.recent_orders.append(out)
            elif isinstance(out, CancelRequest):
                stats.cancels += 1
            else:
                stats.withheld[out.reason.value] += 1
            orders_out.write(order_line(out))
    return stats


# Lines only a dumped journal holds: operator halts and seller status changes.
JOURNAL_ONLY = (CONTROL_TOPIC, SELLER_STATUS_TOPIC)


def _journal_entry(
    engine: HedgingEngine,
    record: LogRecord,
    stats: ReplayStats,
    dead_out: IO[str],
    observer: Observer | None,
) -> None:
    """Apply a halt or a seller status change where the journal's partition saw it."""
    outcome = engine.process(record.topic, record.value, record.scope)
    if outcome.status is Status.DEAD_LETTER:
        assert outcome.reason is not None
        stats.dead_letters[outcome.reason.value] += 1
        dead_out.write(dead_letter_line(record, outcome))
        return
    stats.control += 1
    command = outcome.changes.command
    if observer is not None and command is not None:
        observer.on_control(command, command.scope_on(record.scope))


def observe(engine: HedgingEngine, record: LogRecord, outcome: Outcome, observer: Observer) -> None:
    """Tell an observer (metrics) what one replayed event did, as the worker's stages do."""
    source = Origin(record.topic, 0, record.line_no)
    observer.on_event(
        "replay", record.topic, outcome.status, outcome.reason.value if outcome.reason else None
    )
    if outcome.status is Status.DEAD_LETTER:
        assert outcome.reason is not None
        observer.on_dead_letter(
            DeadLettered(
                "replay",
                source,
                outcome.reason.value,
                outcome.detail,
                outcome.event_id,
                outcome.issuer_id,
            )
        )
    elif outcome.status is Status.APPLIED:
        report_applied(observer, engine, outcome, record.scope, source)


def order_line(order: OrderRecord) -> str:
    """A record (new order or cancel request) as one compact JSON line (SPEC §7
    field names): a closed loop writes an order every few events."""
    return to_json(order.to_wire()).decode() + "\n"


def risk_lines(engine: HedgingEngine) -> Iterator[str]:
    """The risk report of SPEC §9 (v2.1), one JSON line per issuer with state, sorted by id."""
    for line in engine.risk_report():
        yield json.dumps(line.to_wire()) + "\n"


def seller_lines(engine: HedgingEngine) -> Iterator[str]:
    """The seller report of SPEC §9, one JSON line per seller, sorted by id."""
    for status in engine.seller_report():
        line = {
            "seller": status.seller,
            "exposure": to_cents(status.exposure),
            "limit": None if status.limit is None else to_cents(status.limit),
            "blocked": status.blocked,
        }
        yield json.dumps(line) + "\n"


@contextmanager
def few_collections() -> Iterator[None]:
    """Collect garbage seldom during a replay, as the worker does.

    The engine's state (loans, books) only grows and forms few reference
    cycles, yet the default thresholds make Python walk it again and again as
    each event allocates its small records; restored afterwards.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def replay_files(
    config: HedgerConfig,
    log: Path,
    orders_path: Path,
    dead_path: Path,
    on_line: Callable[[int], None] | None = None,
    observer: Observer | None = None,
    control: bool = False,
    sellers_path: Path | None = None,
    risk_path: Path | None = None,
) -> tuple[HedgingEngine, ReplayStats]:
    """Replay a log file into orders and dead-letters files (and seller and risk reports)."""
    engine = HedgingEngine(config)
    with (
        few_collections(),
        log.open(encoding="utf-8") as stream,
        atomic_text(orders_path) as orders_out,
        atomic_text(dead_path) as dead_out,
    ):
        stats = replay(engine, stream, orders_out, dead_out, on_line, observer, control)
    if sellers_path is not None:
        with atomic_text(sellers_path) as sellers_out:
            sellers_out.writelines(seller_lines(engine))
    if risk_path is not None:
        with atomic_text(risk_path) as risk_out:
            risk_out.writelines(risk_lines(engine))
    return engine, stats
