"""Input events of the contract and their wire grammar (SPEC §1, §2).

Owns: the event types (immutable NamedTuples: cheap to build and to read on
the per-event path), the wire grammar of every field (money, dates,
timestamps, integers, identifiers, currencies, enums, and v2.1's spreads and
recoveries, kept as the strings received), the per-event rules that need no
state (an amendment names a field, fills carry an amount, maturities lie after
the as-of date, every date lies in the years 2000-2199) and `read_event`,
which turns a decoded payload into an event or raises `Rejected`
(`schema_violation`) naming the first bad field.

One field table drives the grammar: each field's type is an `Annotated`
alias carrying its `Reader` (the check run here, in field order, stopping at
the first bad field) and the equivalent pydantic constraint, so the same
aliases type the pydantic journal records (`hedger.control`,
`hedger.sellers`). The messages are pydantic's, so a dead letter reads the
same whichever model checked its payload. Imports the standard library,
pydantic (for those aliases only) and the core's `numbers` and `outcomes`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, NamedTuple, get_type_hints

from pydantic import Field, PlainValidator, StringConstraints

from hedger.numbers import parse_money, parse_recovery, parse_spread
from hedger.outcomes import Reason, Rejected

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
_CURRENCY = re.compile(r"[A-Z]{3}")


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


class Reader(NamedTuple):
    """How one field is read.

    `read` checks a value and returns it as the event holds it, or raises
    ValueError with the dead letter's message; `required`: whether the field
    must be present (an optional one, absent, reads as None). `test` and
    `make` are the same check as Python expressions over `{v}` for the fast
    reader (`_fast_source`): `test` true only for a value `read` accepts
    (raising ValueError or being false sends the payload to `read`, which
    names the problem), `make` its value; without them the fast reader calls
    `read`.
    """

    read: Callable[[Any], Any]
    required: bool = True
    test: str | None = None
    make: str = "{v}"


# -- the grammar of each kind of field (messages as pydantic words them) --


def _string(low: int, high: int) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if type(value) is not str:
            raise ValueError("Input should be a valid string")
        size = len(value)  # code points, as the SPEC counts
        if size < low:
            raise ValueError(f"String should have at least {low} character{'s' * (low != 1)}")
        if size > high:
            raise ValueError(f"String should have at most {high} characters")
        return value

    return check


def _integer(low: int, high: int | None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if type(value) is not int:  # strict: true and 1.0 are not integers
            raise ValueError("Input should be a valid integer")
        if value < low:
            raise ValueError(f"Input should be greater than or equal to {low}")
        if high is not None and value > high:
            raise ValueError(f"Input should be less than or equal to {high}")
        return value

    return check


def _currency(value: Any) -> str:
    if type(value) is not str:
        raise ValueError("Input should be a valid string")
    if _CURRENCY.fullmatch(value) is None:
        raise ValueError("String should match pattern '^[A-Z]{3}$'")
    return value


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
    # Optional identifiers need their own check: an explicit null must fail.
    if type(value) is not str or not 1 <= len(value) <= 128:
        raise ValueError(f"not a string of 1 to 128 characters: {value!r}")
    return value


def _enum(kind: type[StrEnum]) -> Callable[[Any], Any]:
    members = {member.value: member for member in kind}

    def check(value: object) -> StrEnum:
        if type(value) is not str or value not in members:
            raise ValueError(f"unknown {kind.__name__}: {value!r}")
        return members[value]

    return check


def _doc_clause(value: object) -> str:
    if value not in ("CR14", "MR14", "MM14", "XR14"):  # a tuple: a list value is no error
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


_identifier = _string(1, 128)
_side = _enum(Side)
_status = _enum(ReportStatus)
# what the fast reader's tests name
_SIDES = {member.value: member for member in Side}
_STATUSES = {member.value: member for member in ReportStatus}
_DOC_CLAUSES = frozenset({"CR14", "MR14", "MM14", "XR14"})
_STAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?Z"
).fullmatch
_PLAIN_MONEY = re.compile(r"[1-9][0-9]{0,14}(?:\.[0-9]{1,2})?").fullmatch
_CODE = _CURRENCY.fullmatch

# -- the field types: each with its Reader, and its pydantic equivalent --
# (pydantic ignores the Reader; `read_event` uses only the Reader.)

_STRING = "type({v}) is str and 0 < len({v}) <= %d"
SchemaVersion = Annotated[
    int,
    Field(strict=True, ge=1, le=1),
    Reader(_integer(1, 1), test="type({v}) is int and {v} == 1"),
]
Identifier = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=128),
    Reader(_identifier, test=_STRING % 128),
]
OrderId = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=300),
    Reader(_string(1, 300), test=_STRING % 300),
]
Timestamp = Annotated[
    str,
    PlainValidator(_timestamp),
    Reader(_timestamp, test="type({v}) is str and _STAMP({v}) is not None and _day({v}[:10])"),
]
Sequence = Annotated[int, Reader(_integer(1, None), test="type({v}) is int and {v} >= 1")]
Tenor = Annotated[int, Reader(_integer(1, 30), test="type({v}) is int and 1 <= {v} <= 30")]
# A leading digit 1-9 and at most 15 digits before the point: in (0, 10^15).
_MONEY_TEST = "type({v}) is str and _PLAIN_MONEY({v}) is not None"
Money = Annotated[Decimal, Reader(_money, test=_MONEY_TEST, make="Decimal({v})")]
Currency = Annotated[str, Reader(_currency, test="type({v}) is str and _CODE({v}) is not None")]
CalendarDate = Annotated[date, Reader(_calendar_date, test="type({v}) is str", make="_day({v})")]
DocClause = Annotated[str, Reader(_doc_clause, test="type({v}) is str and {v} in _DOC_CLAUSES")]
# Spreads and recoveries stay the strings received: they are written as received (§14.7).
Spread = Annotated[str, Reader(_spread)]
SideField = Annotated[
    Side, Reader(_side, test="type({v}) is str and {v} in _SIDES", make="_SIDES[{v}]")
]
StatusField = Annotated[
    ReportStatus,
    Reader(_status, test="type({v}) is str and {v} in _STATUSES", make="_STATUSES[{v}]"),
]
# Optional fields: absent means None, but an explicit JSON null reaches the
# check and is rejected, as SPEC §1 requires.
OptionalMoney = Annotated[
    Decimal | None, Reader(_money, False, test=_MONEY_TEST, make="Decimal({v})")
]
OptionalDate = Annotated[
    date | None, Reader(_calendar_date, False, test="type({v}) is str", make="_day({v})")
]
OptionalIdentifier = Annotated[
    str | None,
    PlainValidator(_optional_identifier),
    Reader(_optional_identifier, False, test=_STRING % 128),
]
OptionalRecovery = Annotated[str | None, Reader(_recovery, required=False)]

# -- the events: fields in the order they are read; `as_of` is derived --


class LoanBooked(NamedTuple):
    """`loan.booked`: a new loan."""

    schema_version: SchemaVersion
    event_id: Identifier
    occurred_at: Timestamp
    loan_id: Identifier
    issuer_id: Identifier
    sequence: Sequence
    notional: Money
    currency: Currency
    maturity_date: CalendarDate
    as_of: date  # `D`: the UTC date of `occurred_at`


class LoanAmended(NamedTuple):
    """`loan.amended`: a new outstanding and/or a new maturity."""

    schema_version: SchemaVersion
    event_id: Identifier
    occurred_at: Timestamp
    loan_id: Identifier
    issuer_id: Identifier
    sequence: Sequence
    notional: OptionalMoney
    maturity_date: OptionalDate
    as_of: date


class LoanRepaid(NamedTuple):
    """`loan.repaid`: part or all of the outstanding is repaid."""

    schema_version: SchemaVersion
    event_id: Identifier
    occurred_at: Timestamp
    loan_id: Identifier
    issuer_id: Identifier
    sequence: Sequence
    amount: Money
    as_of: date


class LoanCancelled(NamedTuple):
    """`loan.cancelled`: the loan closes."""

    schema_version: SchemaVersion
    event_id: Identifier
    occurred_at: Timestamp
    loan_id: Identifier
    issuer_id: Identifier
    sequence: Sequence
    as_of: date


class ExecutionReport(NamedTuple):
    """`execution.report`: the venue's answer to one of the bot's orders."""

    schema_version: SchemaVersion
    event_id: Identifier
    occurred_at: Timestamp
    order_id: OrderId
    issuer_id: Identifier
    status: StatusField
    filled_notional: OptionalMoney
    counterparty: OptionalIdentifier
    as_of: date


class ProtectionBooked(NamedTuple):
    """`protection.booked`: protection traded outside the bot."""

    schema_version: SchemaVersion
    event_id: Identifier
    occurred_at: Timestamp
    issuer_id: Identifier
    side: SideField
    notional: Money
    currency: Currency
    maturity_date: CalendarDate
    doc_clause: DocClause
    counterparty: OptionalIdentifier
    as_of: date


class ClockTick(NamedTuple):
    """`clock.tick` (v2): the desk's scheduler asks for a re-check of every unit at D."""

    schema_version: SchemaVersion
    event_id: Identifier
    occurred_at: Timestamp
    as_of: date


class CdsQuote(NamedTuple):
    """`cds.quote` (v2.1): a par spread for one issuer and tenor; it makes no decision."""

    schema_version: SchemaVersion
    event_id: Identifier
    occurred_at: Timestamp
    issuer_id: Identifier
    as_of_date: CalendarDate
    tenor_years: Tenor
    spread_bps: Spread
    recovery: OptionalRecovery
    as_of: date


LoanEvent = LoanBooked | LoanAmended | LoanRepaid | LoanCancelled
ExecutionEvent = ExecutionReport | ProtectionBooked
IssuerEvent = LoanEvent | ExecutionEvent
# isinstance with a tuple is cheaper than with a union, on every event
LOAN_EVENT_TYPES = (LoanBooked, LoanAmended, LoanRepaid, LoanCancelled)
Event = IssuerEvent | ClockTick | CdsQuote

# -- the rules across fields, run once every field reads well --


def _maturity_after_as_of(event: Any) -> str | None:
    if event.maturity_date <= event.as_of:
        return "maturity_date must be after the as-of date"
    return None


def _amendment(event: LoanAmended) -> str | None:
    if event.notional is None and event.maturity_date is None:
        return "an amendment needs notional and/or maturity_date"
    if event.maturity_date is not None and event.maturity_date <= event.as_of:
        return "maturity_date must be after the as-of date"
    return None


def _fill_amount(event: ExecutionReport) -> str | None:
    if event.status in FILL_STATUSES and event.filled_notional is None:
        return f"filled_notional is required for status {event.status.value}"
    return None


def _quote_date(event: CdsQuote) -> str | None:
    if event.as_of_date > event.as_of:
        return "as_of_date must not be after the as-of date"
    return None


def _amount_read_on_fills_only(data: dict[str, Any]) -> dict[str, Any]:
    # SPEC §2: a field is read only on the events whose field list names it,
    # and `filled_notional` belongs to the two fill statuses; on a `rejected`
    # or `cancelled` report it is an extra field, ignored whatever its value.
    # A bad or missing status fails on its own.
    if (
        "filled_notional" in data
        and type(status := data.get("status")) is str  # a list is unhashable
        and status in _NON_FILL_STATUSES
    ):
        return {name: value for name, value in data.items() if name != "filled_notional"}
    return data


_ABSENT = object()
_Fields = tuple[tuple[str, Reader], ...]


class _Kind(NamedTuple):
    """One event type as read: its wire tag, its class, its field table and its rule."""

    tag: str
    make: Callable[[list[Any]], Any]
    fields: _Fields
    fast: Callable[[dict[str, Any]], Any]  # the event, or None: `fields` say what is wrong
    rule: Callable[[Any], str | None] | None
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None


def _field_table(kind: type[tuple[Any, ...]]) -> _Fields:
    """Each field's name and Reader, in declaration order, from the class's annotations."""
    hints = get_type_hints(kind, include_extras=True)
    table = []
    for name in kind._fields:  # type: ignore[attr-defined]
        readers = [m for m in getattr(hints[name], "__metadata__", ()) if isinstance(m, Reader)]
        if readers:
            table.append((name, readers[0]))
    return tuple(table)


def _fast_source(fields: _Fields) -> str:
    """A reader of a well-formed payload as straight-line code, from the field table.

    It returns the event, or None as soon as a field is absent or bad (the
    field table's readers then name the problem): one function call per
    event instead of one per field.
    """
    lines = ["def fast(data):", "    get = data.get", "    try:"]
    for number, (name, reader) in enumerate(fields):
        v = f"v{number}"
        test = (reader.test or "True").format(v=v)
        make = (reader.make if reader.test is not None else f"_read{number}({{v}})").format(v=v)
        lines.append(f"        {v} = get({name!r}, _ABSENT)")
        if not reader.required:
            lines.append(f"        if {v} is _ABSENT:")
            lines.append(f"            {v} = None")
            lines.append(f"        elif {test}:")
            lines.append(f"            {v} = {make}")
            lines.append("        else:")
            lines.append("            return None")
            continue
        # every test fails on _ABSENT: it is not of the type the test names
        absent = "" if reader.test is not None else f"{v} is _ABSENT or "
        lines.append(f"        if {absent}not ({test}):")
        lines.append("            return None")
        if make != v:
            lines.append(f"        {v} = {make}")
    values = ", ".join(f"v{number}" for number in range(len(fields)))
    lines.append(f"        return _new(_cls, ({values}, _day(v2[:10])))")
    lines.append("    except ValueError:")
    lines.append("        return None")
    return "\n".join(lines) + "\n"


def _kind(
    tag: str,
    cls: type[tuple[Any, ...]],
    rule: Callable[[Any], str | None] | None = None,
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> _Kind:
    table = _field_table(cls)
    # every event reads the common fields first, occurred_at third: D comes from it
    assert [name for name, _ in table[:3]] == ["schema_version", "event_id", "occurred_at"]
    namespace = {**globals(), "_cls": cls, "_new": tuple.__new__}
    namespace.update({f"_read{number}": reader.read for number, (_, reader) in enumerate(table)})
    exec(_fast_source(table), namespace)  # noqa: S102 - source built above from the table
    make = cls._make  # type: ignore[attr-defined]
    return _Kind(tag, make, table, namespace["fast"], rule, prepare)


_LOAN_KINDS = (
    _kind("loan.booked", LoanBooked, _maturity_after_as_of),
    _kind("loan.amended", LoanAmended, _amendment),
    _kind("loan.repaid", LoanRepaid),
    _kind("loan.cancelled", LoanCancelled),
)
_EXECUTION_KINDS = (
    _kind("execution.report", ExecutionReport, _fill_amount, _amount_read_on_fills_only),
    _kind("protection.booked", ProtectionBooked, _maturity_after_as_of),
)


class _Topic(NamedTuple):
    """What a topic carries: a union told apart by `event_type`, or one event type."""

    kinds: dict[str, _Kind]
    union: bool


def _union(kinds: tuple[_Kind, ...]) -> _Topic:
    return _Topic({kind.tag: kind for kind in kinds}, True)


TOPICS: dict[str, _Topic] = {
    LOAN_TOPIC: _union(_LOAN_KINDS),
    EXECUTION_TOPIC: _union(_EXECUTION_KINDS),
    CLOCK_TOPIC: _Topic({"clock.tick": _kind("clock.tick", ClockTick)}, False),
    QUOTE_TOPIC: _Topic({"cds.quote": _kind("cds.quote", CdsQuote, _quote_date)}, False),
}
INPUT_TOPICS = (LOAN_TOPIC, EXECUTION_TOPIC, CLOCK_TOPIC)  # without [pricing] (SPEC §2)
PRICING_INPUT_TOPICS = (*INPUT_TOPICS, QUOTE_TOPIC)  # with [pricing]


def _bad(where: str, message: str) -> Rejected:
    return Rejected(Reason.SCHEMA_VIOLATION, f"{where}: {message}" if where else message)


def read_event(topic: str, data: dict[str, Any]) -> Event:
    """The event a decoded JSON object of an input topic holds.

    Raises `Rejected` (`schema_violation`) naming the first bad field, in the
    order the event declares its fields, as `event_type.field: problem` on a
    topic carrying several event types and `field: problem` on the others.
    Fields the event does not read are ignored, whatever their value.
    """
    carried = TOPICS[topic]
    tag = data.get("event_type", _ABSENT)
    if carried.union:
        if tag is _ABSENT:
            raise _bad("", "Unable to extract tag using discriminator 'event_type'")
        kind = carried.kinds.get(tag) if type(tag) is str else None
        if kind is None:
            expected = ", ".join(f"'{name}'" for name in carried.kinds)
            raise _bad(
                "",
                f"Input tag '{tag}' found using 'event_type' does not match any of "
                f"the expected tags: {expected}",
            )
        prefix = f"{tag}."
    else:
        (kind,) = carried.kinds.values()
        prefix = ""
        if tag != kind.tag:
            # one event type: its tag is checked after the common fields
            _read_fields(kind.fields[:3], data, prefix)
            wrong = "Field required" if tag is _ABSENT else f"Input should be '{kind.tag}'"
            raise _bad("event_type", wrong)
    if kind.prepare is not None:
        data = kind.prepare(data)
    event = kind.fast(data)
    if event is None:  # the field table names the first bad field
        values = _read_fields(kind.fields, data, prefix)
        values.append(_day(values[2][:10]))  # as_of: occurred_at was read, so its date is valid
        event = kind.make(values)
    if kind.rule is not None:
        problem = kind.rule(event)
        if problem is not None:
            raise _bad(prefix[:-1], problem)
    return event  # type: ignore[no-any-return]


def _read_fields(fields: _Fields, data: dict[str, Any], prefix: str) -> list[Any]:
    """Each field's value in table order; `Rejected` at the first bad or missing one."""
    values: list[Any] = []
    append = values.append
    get = data.get
    for name, reader in fields:
        value = get(name, _ABSENT)
        if value is _ABSENT:
            if reader.required:
                raise _bad(prefix + name, "Field required")
            append(None)
            continue
        try:
            append(reader.read(value))
        except ValueError as exc:
            raise _bad(prefix + name, str(exc)) from None
    return values
