"""Where a halt applies: the one rule both the worker's unit stage and the replay use.

A command for all issuers is fanned out to every journal partition and
halts only the units of the partition that applies it; one issuer's command
halts that issuer wherever it is journaled.
"""

from __future__ import annotations

import json

from hedger.control import CONTROL_TOPIC, ControlCommand, Halts
from hedger.engine import HedgingEngine
from hedger.outcomes import Reason, Status
from hedger.sellers import SELLER_STATUS_TOPIC
from tests.factories import make_config


def command(kind: str, issuer: str | None = None) -> ControlCommand:
    fields = {
        "schema_version": 1,
        "event_id": f"c-{kind}-{issuer}",
        "occurred_at": "2026-12-07T09:00:00Z",
        "command": kind,
        "operator": "desk",
        "reason": "test",
    }
    if issuer is not None:
        fields["issuer_id"] = issuer
    return ControlCommand.model_validate(fields)


def test_a_halt_for_all_applies_to_the_partition_that_applies_it() -> None:
    halts = Halts()
    halts.apply(command("halt"), 2)
    assert command("halt").scope_on(2) == 2
    assert halts.halt_for("MSFT", 2) is not None
    assert halts.halt_for("MSFT", 1) is None
    halts.apply(command("resume"), 2)
    assert halts.halt_for("MSFT", 2) is None


def test_one_issuers_halt_applies_wherever_the_issuer_is() -> None:
    halts = Halts()
    halts.apply(command("halt", "ORCL"), 3)
    assert command("halt", "ORCL").scope_on(3) is None
    assert halts.halt_for("ORCL", 0) is not None
    assert halts.halt_for("ORCL", None) is not None
    assert halts.halt_for("MSFT", 3) is None


def test_the_engines_step_applies_journal_commands_and_seller_statuses() -> None:
    """The replay and the unit stage hand these entries to `process` like any other."""
    engine = HedgingEngine(make_config())
    halt = command("halt").model_dump_json(exclude_none=True)
    outcome = engine.process(CONTROL_TOPIC, halt, 1)
    assert outcome.status is Status.APPLIED
    assert outcome.changes.command == command("halt")
    assert engine.is_halted("MSFT", 1) and not engine.is_halted("MSFT", 0)
    blocked = json.dumps({"seller": "FUND-A", "blocked": True, "event_id": "e-9"})
    outcome = engine.process(SELLER_STATUS_TOPIC, blocked, 1)
    assert outcome.status is Status.APPLIED
    assert outcome.changes.seller_status is not None
    assert outcome.changes.seller_status.seller == "FUND-A"
    assert engine.scoped_blocked == {1: {"FUND-A"}}
    bad = engine.process(CONTROL_TOPIC, '{"command": "pause"}', 1)
    assert bad.status is Status.DEAD_LETTER and bad.reason is Reason.SCHEMA_VIOLATION
    assert bad.changes.command is None
