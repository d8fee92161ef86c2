"""From raw payload to a validated event, or the first dead-letter code (SPEC §1–§3).

Owns: strict JSON parsing (no NaN/Infinity), reading a payload as its topic's event, and the
stateless configuration checks (an `issuer_id` that names a group, and
`unknown_currency`). Needs no state, so the live
worker runs it on any partition before routing. Imports the standard
library, pydantic and the core's own modules.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from pydantic import ValidationError

from hedger.config import HedgerConfig
from hedger.control import CONTROL_COMMANDS, ControlCommand
from hedger.events import ClockTick, Event, LoanBooked, ProtectionBooked, read_event
from hedger.outcomes import Reason, Rejected


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


# One decoder for every payload: json.loads with a keyword argument would
# build a new JSONDecoder per call, a measurable share of the per-event cost.
_STRICT = json.JSONDecoder(parse_constant=_reject_constant)


# orjson parses several times faster than json and is as strict (RFC 8259,
# no NaN), but reads integers of 19 or more digits as floats (or refuses
# them) and refuses what it cannot hold. Such payloads, and anything it
# refuses, take the standard parser, whose answer is the contract's. Digit
# runs are found by mapping every digit to 0 (bytes.translate runs in C).
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


def parse_json(payload: str | bytes | bytearray) -> Any:
    """Parse strict JSON; raise `Rejected(invalid_json)` for anything else."""
    try:
        data = payload.encode("utf-8") if isinstance(payload, str) else payload
        if data.translate(_DIGITS_TO_ZERO).find(_LONG_NUMBER) < 0:  # find: cheaper than `in`
            return orjson.loads(data)
    except (orjson.JSONDecodeError, UnicodeEncodeError):
        pass  # the standard parser decides, and names the problem
    try:
        if not isinstance(payload, str):
            payload = payload.decode("utf-8")
        elif not payload.isascii():
            # A text holding lone surrogates stands for bytes that were not
            # UTF-8 (a dump keeps them so): invalid_json, as on the wire.
            payload.encode("utf-8")
        return _STRICT.decode(payload)
    # ValueError covers JSONDecodeError, bad UTF-8 (UnicodeDecodeError and
    # UnicodeEncodeError) and over-long integers; RecursionError covers
    # absurdly deep nesting.
    except (ValueError, RecursionError, TypeError) as exc:
        raise Rejected(Reason.INVALID_JSON, f"payload is not JSON: {exc}") from None


def describe(error: ValidationError) -> str:
    """One line naming the first bad field, for the dead letter's `detail`."""
    first = error.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"] if not str(part).startswith("function"))
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


# isinstance with a tuple is cheaper than with a union
_WITH_CURRENCY = (LoanBooked, ProtectionBooked)


def validate_event(topic: str, value: Any, config: HedgerConfig) -> Event:
    """Validate a decoded payload for its topic; raise `Rejected` with its SPEC code."""
    if not isinstance(value, dict):
        raise Rejected(
            Reason.SCHEMA_VIOLATION, f"payload is a JSON {type(value).__name__}, not an object"
        )
    event = read_event(topic, value)
    if isinstance(event, ClockTick):
        return event
    if event.issuer_id in config.groups:
        raise Rejected(
            Reason.SCHEMA_VIOLATION, f"issuer_id: {event.issuer_id} is a group, not an issuer"
        )
    if isinstance(event, _WITH_CURRENCY) and event.currency not in config.fx:
        raise Rejected(Reason.UNKNOWN_CURRENCY, f"no FX rate for {event.currency}")
    return event


def decode_control(payload: object) -> ControlCommand:
    """A `hedger-control` command from raw bytes/str or decoded JSON; `Rejected` if malformed."""
    if isinstance(payload, str | bytes | bytearray):
        payload = parse_json(payload)
    try:
        return CONTROL_COMMANDS.validate_python(payload)
    except ValidationError as exc:
        raise Rejected(Reason.SCHEMA_VIOLATION, describe(exc)) from None


_RAW = (str, bytes, bytearray)  # isinstance with a tuple: cheaper than with a union


def decode_event(topic: str, payload: object, config: HedgerConfig) -> Event:
    """Raw bytes/str are parsed as strict JSON; anything else is an already-decoded value."""
    if isinstance(payload, _RAW):
        payload = parse_json(payload)
    return validate_event(topic, payload, config)
