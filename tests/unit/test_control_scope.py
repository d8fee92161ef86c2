"""Where a halt applies: the one rule both the worker's unit stage and the replay use.

A command for all issuers is fanned out to every journal partition and
halts only the units of the partition that applies it; one issuer's command
halts that issuer wherever it is journaled.
"""

from __future__ import annotations

from hedger.control import ControlCommand, Halts


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
