"""Input events of the contract as strict pydantic v2 models (SPEC §1, §2).

Owns: the wire grammar of every field (money, dates, timestamps, integers,
identifiers, currencies, enums, and v2.1's spreads and recoveries, kept as the
strings received) and the per-event rules that need no state
(an amendment names a field, fills carry an amount, maturities lie after the
as-of date, every date lies in the years 2000-2199). A model that validates
is a domain event; anything else is a `schema_violation`. Imports the standard library, pydantic and
`hedger.numbers`.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    TypeAdapter,
    model_validator,
)

from hedger.numbers import parse_money, parse_recovery, parse_spread

LOAN_TOPIC = "loan-bookings"
EXECUTION_TOPIC = "cds-executions"
CLOCK_TOPIC = "desk-clock"
QUOTE_TOPIC = "cds-quotes"  # v2.1: an input topic only with [pricing]
# Every input date lies in these years (SPEC §1), so the latest standard
# maturity (a 30-year tenor, §8) stays far inside Python's calendar.
FIRST_YEAR, LAST_YEAR = 2000, 2199
UNSPECIFIED_SELLER = "UNSPECIFIED"  # a fill or booking without a counterparty

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?Z"
)


class Side(StrEnum):
    """Direction of protection: the bot buys on a breach and sells to unwind."""

    BUY = "BUY_PROTECTION"
    SELL = "SELL_PROTECTION"


class ReportStatus(StrEnum):
    """Status of an `execution.report`."""

    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


FILL_STATUSES = frozenset({ReportStatus.PARTIALLY_FILLED, ReportStatus.FILLED})
# the wire values of the statuses that read no `filled_notional` (SPEC §2)
_NON_FILL_STATUSES = frozenset(
    status.value for status in ReportStatus if status not in FILL_STATUSES
)


def _money(value: object) -> Decimal:
    amount = parse_money(value)
    if amount is None:
        raise ValueError(f"not a money string in (0, 10^15) with at most 2 decimals: {value!r}")
    return amount


@lru_cache(maxsize=8192)
def _day(text: str) -> date:
    """A `YYYY-MM-DD` in the years 2000-2199, or ValueError (days repeat: memoised)."""
    if _DATE.fullmatch(text) is None:
        raise ValueError(f"not a YYYY-MM-DD date: {text!r}")
    day = date.fromisoformat(text)  # rejects 2026-02-30
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValueError(f"outside the years {FIRST_YEAR}-{LAST_YEAR}: {text!r}")
    return day


def _calendar_date(value: object) -> date:
    if type(value) is not str:
        raise ValueError(f"not a YYYY-MM-DD date: {value!r}")
    return _day(value)


def _timestamp_date(value: str) -> date:
    if _TIMESTAMP.fullmatch(value) is None:
        raise ValueError(f"not a YYYY-MM-DDTHH:MM:SS[.f]Z timestamp: {value!r}")
    # Times must be real: no 24:00:00, no minute or second 60.
    if value[11:13] > "23" or value[14:16] > "59" or value[17:19] > "59":
        raise ValueError(f"not a real time of day: {value!r}")
    try:
        return _day(value[:10])
    except ValueError:
        raise ValueError(
            f"not a real date, or outside {FIRST_YEAR}-{LAST_YEAR}: {value!r}"
        ) from None


def _timestamp(value: object) -> str:
    if type(value) is not str:
        raise ValueError(f"not a timestamp string: {value!r}")
    _timestamp_date(value)
    return value


def _optional_identifier(value: object) -> str:
    # Optional identifiers need a Python check: an explicit null must fail.
    if type(value) is not str or not 1 <= len(value) <= 128:
        raise ValueError(f"not a string of 1 to 128 characters: {value!r}")
    return value


def _enum(kind: type[StrEnum]) -> Any:
    members = {member.value: member for member in kind}

    def check(value: object) -> StrEnum:
        if type(value) is not str or value not in members:
            raise ValueError(f"unknown {kind.__name__}: {value!r}")
        return members[value]

    return PlainValidator(check)


def _doc_clause(value: object) -> str:
    if value not in ("CR14", "MR14", "MM14", "XR14"):
        raise ValueError(f"unknown doc_clause: {value!r}")
    assert isinstance(value, str)
    return value


def _spread(value: object) -> str:
    if parse_spread(value) is None:
        raise ValueError(f"not a spread string in (0, 10000] with at most 4 decimals: {value!r}")
    assert isinstance(value, str)
    return value


def _recovery(value: object) -> str:
    if parse_recovery(value) is None:
        raise ValueError(f"not a recovery string <= 0.95 with at most 4 decimals: {value!r}")
    assert isinstance(value, str)
    return value


Money = Annotated[Decimal, PlainValidator(_money)]
# Spreads and recoveries stay the strings received: they are written as received (§14.7).
Spread = Annotated[str, PlainValidator(_spread)]
OptionalRecovery = Annotated[str | None, PlainValidator(_recovery)]
Tenor = Annotated[int, Field(ge=1, le=30)]
CalendarDate = Annotated[date, PlainValidator(_calendar_date)]
Timestamp = Annotated[str, PlainValidator(_timestamp)]
# Native pydantic-core constraints (strict str, length in code points like
# Python's len; strict int rejects true and 1.0) run in Rust: cheaper than a
# Python validator per field on the hot path.
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128)]
OrderId = Annotated[str, StringConstraints(min_length=1, max_length=300)]
# A native pattern (Rust regex, strict str) is cheaper than a Python validator.
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
# Strict int (the models are strict): true and 1.0 are refused, natively.
SchemaVersion = Annotated[int, Field(ge=1, le=1)]
Sequence = Annotated[int, Field(ge=1)]
DocClause = Annotated[str, PlainValidator(_doc_clause)]
# Optional fields: absent means None, but an explicit JSON null reaches the
# validator and is rejected, as SPEC §1 requires.
OptionalMoney = Annotated[Decimal | None, PlainValidator(_money)]
OptionalDate = Annotated[date | None, PlainValidator(_calendar_date)]
OptionalIdentifier = Annotated[str | None, PlainValidator(_optional_identifier)]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    schema_version: SchemaVersion
    event_id: Identifier
    occurred_at: Timestamp

    @property
    def as_of(self) -> date:
        """`D`: the UTC date of `occurred_at` (validated on the way in; days are memoised)."""
        return _day(self.occurred_at[:10])


class _LoanEvent(_Event):
    loan_id: Identifier
    issuer_id: Identifier
    sequence: Sequence


class LoanBooked(_LoanEvent):
    """`loan.booked`: a new loan."""

    event_type: Literal["loan.booked"]
    notional: Money
    currency: Currency
    maturity_date: CalendarDate

    @model_validator(mode="after")
    def _matures_after_as_of(self) -> LoanBooked:
        if self.maturity_date <= self.as_of:
            raise ValueError("maturity_date must be after the as-of date")
        return self


class LoanAmended(_LoanEvent):
    """`loan.amended`: a new outstanding and/or a new maturity."""

    event_type: Literal["loan.amended"]
    notional: OptionalMoney = None
    maturity_date: OptionalDate = None

    @model_validator(mode="after")
    def _names_a_field(self) -> LoanAmended:
        if self.notional is None and self.maturity_date is None:
            raise ValueError("an amendment needs notional and/or maturity_date")
        if self.maturity_date is not None and self.maturity_date <= self.as_of:
            raise ValueError("maturity_date must be after the as-of date")
        return self


class LoanRepaid(_LoanEvent):
    """`loan.repaid`: part or all of the outstanding is repaid."""

    event_type: Literal["loan.repaid"]
    amount: Money


class LoanCancelled(_LoanEvent):
    """`loan.cancelled`: the loan closes."""

    event_type: Literal["loan.cancelled"]


class ExecutionReport(_Event):
    """`execution.report`: the venue's answer to one of the bot's orders."""

    event_type: Literal["execution.report"]
    order_id: OrderId
    issuer_id: Identifier
    status: Annotated[ReportStatus, _enum(ReportStatus)]
    filled_notional: OptionalMoney = None
    counterparty: OptionalIdentifier = None

    @model_validator(mode="before")
    @classmethod
    def _amount_read_on_fills_only(cls, data: Any) -> Any:
        # SPEC §2: a field is read only on the events whose field list names
        # it, and `filled_notional` belongs to the two fill statuses; on a
        # `rejected` or `cancelled` report it is an extra field, ignored
        # whatever its value. A bad or missing status fails on its own.
        if (
            type(data) is dict
            and "filled_notional" in data
            and type(status := data.get("status")) is str  # a list is unhashable
            and status in _NON_FILL_STATUSES
        ):
            data = {name: value for name, value in data.items() if name != "filled_notional"}
        return data

    @model_validator(mode="after")
    def _fills_carry_amount(self) -> ExecutionReport:
        if self.status in FILL_STATUSES and self.filled_notional is None:
            raise ValueError(f"filled_notional is required for status {self.status.value}")
        return self


class ProtectionBooked(_Event):
    """`protection.booked`: protection traded outside the bot."""

    event_type: Literal["protection.booked"]
    issuer_id: Identifier
    side: Annotated[Side, _enum(Side)]
    notional: Money
    currency: Currency
    maturity_date: CalendarDate
    doc_clause: DocClause
    counterparty: OptionalIdentifier = None

    @model_validator(mode="after")
    def _matures_after_as_of(self) -> ProtectionBooked:
        if self.maturity_date <= self.as_of:
            raise ValueError("maturity_date must be after the as-of date")
        return self


class ClockTick(_Event):
    """`clock.tick` (v2): the desk's scheduler asks for a re-check of every unit at D."""

    event_type: Literal["clock.tick"]


class CdsQuote(_Event):
    """`cds.quote` (v2.1): a par spread for one issuer and tenor; it makes no decision."""

    event_type: Literal["cds.quote"]
    issuer_id: Identifier
    as_of_date: CalendarDate
    tenor_years: Tenor
    spread_bps: Spread
    recovery: OptionalRecovery = None

    @model_validator(mode="after")
    def _not_after_as_of(self) -> CdsQuote:
        if self.as_of_date > self.as_of:
            raise ValueError("as_of_date must not be after the as-of date")
        return self


LoanEvent = LoanBooked | LoanAmended | LoanRepaid | LoanCancelled
ExecutionEvent = ExecutionReport | ProtectionBooked
IssuerEvent = LoanEvent | ExecutionEvent
# isinstance with a tuple is cheaper than with a union, on every event
LOAN_EVENT_TYPES = (LoanBooked, LoanAmended, LoanRepaid, LoanCancelled)
Event = IssuerEvent | ClockTick | CdsQuote

LOAN_EVENTS: TypeAdapter[LoanEvent] = TypeAdapter(
    Annotated[LoanEvent, Field(discriminator="event_type")]
)
EXECUTION_EVENTS: TypeAdapter[ExecutionEvent] = TypeAdapter(
    Annotated[ExecutionEvent, Field(discriminator="event_type")]
)
CLOCK_EVENTS: TypeAdapter[ClockTick] = TypeAdapter(ClockTick)
QUOTE_EVENTS: TypeAdapter[CdsQuote] = TypeAdapter(CdsQuote)
ADAPTERS: dict[str, TypeAdapter[Any]] = {
    LOAN_TOPIC: LOAN_EVENTS,
    EXECUTION_TOPIC: EXECUTION_EVENTS,
    CLOCK_TOPIC: CLOCK_EVENTS,
    QUOTE_TOPIC: QUOTE_EVENTS,
}
INPUT_TOPICS = (LOAN_TOPIC, EXECUTION_TOPIC, CLOCK_TOPIC)  # without [pricing] (SPEC §2)
PRICING_INPUT_TOPICS = (*INPUT_TOPICS, QUOTE_TOPIC)  # with [pricing]
