"""The kill switch: operator commands that halt or resume hedging.

Owns: `ControlCommand` (the `hedger-control` topic's wire model) and
`Halts`, the halt state the engine consults before deciding. A halt stops
orders only: state and risk keep updating, so a resume hedges from an
up-to-date book on the next event. A halt for all issuers is scoped to a
journal partition when the worker fans it out (`scope`), so the replay of a
dumped journal applies it exactly where each partition saw it. The
configuration's `halted = true` is separate and always wins: a command cannot
resume an issuer the configuration halts. Imports the standard library,
pydantic and `hedger.events`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, TypeAdapter

from hedger.events import Identifier, OptionalIdentifier, SchemaVersion, Timestamp

CONTROL_TOPIC = "hedger-control"
ALL_ISSUERS = "*"


class ControlCommand(BaseModel):
    """`halt` or `resume`, for one issuer or (no `issuer_id`) for all, with who and why."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    schema_version: SchemaVersion
    event_id: Identifier
    occurred_at: Timestamp
    command: Literal["halt", "resume"]
    issuer_id: OptionalIdentifier = None
    operator: Identifier
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1024)]

    @property
    def target(self) -> str:
        """The issuer, or `*` for all issuers."""
        return self.issuer_id if self.issuer_id is not None else ALL_ISSUERS

    def scope_on(self, partition: int | None) -> int | None:
        """Where the command applies when a journal partition applies it.

        A command for all issuers reaches every journal partition (the
        worker fans it out) and applies to that partition's units only; one
        issuer's command applies to the issuer wherever it is (None).
        """
        return partition if self.issuer_id is None else None


CONTROL_COMMANDS: TypeAdapter[ControlCommand] = TypeAdapter(ControlCommand)


class Halts:
    """Active halts: per issuer, and for all issuers per scope."""

    def __init__(self) -> None:
        self.issuers: dict[str, ControlCommand] = {}
        self.everyone: dict[int | None, ControlCommand] = {}

    def apply(self, command: ControlCommand, partition: int | None = None) -> None:
        """Record a halt, or lift one, as the journal partition `partition` applies it."""
        scope = command.scope_on(partition)
        if command.issuer_id is None:
            if command.command == "halt":
                self.everyone[scope] = command
            else:
                self.everyone.pop(scope, None)
        elif command.command == "halt":
            self.issuers[command.issuer_id] = command
        else:
            self.issuers.pop(command.issuer_id, None)

    def halt_for(self, issuer_id: str, scope: int | None = None) -> ControlCommand | None:
        """The command that halts this issuer, if any (its own first, then all issuers)."""
        own = self.issuers.get(issuer_id)
        if own is not None:
            return own
        return self.everyone.get(scope)
