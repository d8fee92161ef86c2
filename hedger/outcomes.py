"""What processing one event can lead to: applied, duplicate or dead-lettered.

Owns: the dead-letter reason codes of SPEC §3 and the `Rejected` exception
that carries one through the core. Imports only the standard library.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Dead-letter reason codes (SPEC §3), in no particular precedence."""

    INVALID_JSON = "invalid_json"
    SCHEMA_VIOLATION = "schema_violation"
    UNKNOWN_CURRENCY = "unknown_currency"
    ISSUER_MISMATCH = "issuer_mismatch"
    DUPLICATE_LOAN = "duplicate_loan"
    UNKNOWN_LOAN = "unknown_loan"
    LOAN_CLOSED = "loan_closed"
    REPAYMENT_EXCEEDS_OUTSTANDING = "repayment_exceeds_outstanding"
    UNKNOWN_ORDER = "unknown_order"
    OVERFILL = "overfill"


class Status(StrEnum):
    """Outcome of one event."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    DEAD_LETTER = "dead_letter"


class Rejected(Exception):
    """An event that must go to the dead-letter output; state stays untouched."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class Duplicate(Exception):
    """An event already applied: ignored and counted, no decision."""
