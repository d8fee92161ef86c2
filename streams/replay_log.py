"""Reading a replay log (SPEC §9): JSON lines of `{topic, key, value}` envelopes.

Owns: `read_log`, which yields each envelope as a `LogRecord` in file order
(with the journal partition of a dumped journal as its `scope`), and
`CorruptLog`, raised on the first line that is not a valid envelope. Shared by
the offline replay (`streams.offline.replay`) and `publish`
(`streams.kafka_io`). Imports the standard library and `hedger.decoding`/
`hedger.outcomes`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import IO, Any, NamedTuple

from hedger.decoding import parse_json
from hedger.outcomes import Rejected

_WHITESPACE = " \t\n\r"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


_STRICT_MEMBER = json.JSONDecoder(parse_constant=_no_constant)
_OPENERS, _CLOSERS = "[{", "]}"


class CorruptLog(ValueError):
    """A log line that is not a valid envelope: the replay stops (SPEC §9)."""

    def __init__(self, line_no: int, problem: str) -> None:
        super().__init__(f"line {line_no}: {problem}")
        self.line_no = line_no


class LogRecord(NamedTuple):
    """One envelope of a replay log."""

    line_no: int
    topic: str
    key: Any
    value: Any
    scope: int | None = None  # journal partition, in a dumped journal


def read_log(stream: IO[str]) -> Iterator[LogRecord]:
    """Envelopes in file order; blank lines are skipped but keep their number."""
    for line_no, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            envelope = parse_json(line)
        except Rejected:
            envelope = _envelope_of_unparseable_value(line)
            if envelope is None:
                raise CorruptLog(line_no, "not strict JSON") from None
        if not isinstance(envelope, dict):
            raise CorruptLog(line_no, "not a JSON object")
        topic = envelope.get("topic")
        if not isinstance(topic, str):
            raise CorruptLog(line_no, "no string 'topic'")
        if "value" not in envelope:
            raise CorruptLog(line_no, "no 'value'")
        partition = envelope.get("partition")
        scope = partition if type(partition) is int else None
        yield LogRecord(line_no, topic, envelope.get("key"), envelope["value"], scope)


def _envelope_of_unparseable_value(line: str) -> dict[str, Any] | None:
    """An envelope whose `value` is valid JSON that the parser cannot hold.

    JSON nested deeper than the parser's recursion allows, or an integer of
    thousands of digits, is a bad payload (`invalid_json`), as it is on the
    wire, not a corrupt log. The line is split into its top-level members
    without recursion; the value goes on as its raw text, so the core's
    parser rejects it exactly as the worker's does. None: the line is not
    such an envelope (the log is corrupt).
    """
    members = _top_level_members(line)
    if members is None or "value" not in members:
        return None
    envelope: dict[str, Any] = {}
    for name, raw in members.items():
        try:
            envelope[name] = _STRICT_MEMBER.decode(raw)
        except (RecursionError, ValueError) as exc:
            if name != "value" or not _too_big_to_parse(exc):
                return None
            envelope[name] = raw
    return envelope


def _too_big_to_parse(exc: Exception) -> bool:
    if isinstance(exc, RecursionError):
        return True
    # "Exceeds the limit (4300 digits) for integer string conversion"
    return not isinstance(exc, json.JSONDecodeError) and "integer string" in str(exc)


def _top_level_members(line: str) -> dict[str, str] | None:
    """`{"name": <raw JSON text>, ...}` of a one-line JSON object, or None."""
    text = line.strip(_WHITESPACE)
    if len(text) < 2 or text[0] != "{" or text[-1] != "}":
        return None
    members: dict[str, str] = {}
    i, end = 1, len(text) - 1
    while True:
        i = _skip_whitespace(text, i)
        if i == end and not members:
            return members
        if i >= end or text[i] != '"':
            return None
        try:
            name, i = scanstring(text, i + 1)
        except ValueError:
            return None
        i = _skip_whitespace(text, i)
        if i >= end or text[i] != ":":
            return None
        start = _skip_whitespace(text, i + 1)
        i = _value_end(text, start, end)
        if i is None or i == start:
            return None
        members[name] = text[start:i].rstrip(_WHITESPACE)
        if i == end:
            return members
        i += 1  # the comma


def _skip_whitespace(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WHITESPACE:
        i += 1
    return i


def _value_end(text: str, i: int, end: int) -> int | None:
    """Index of the comma or closing brace that ends the member value at `i`."""
    depth = 0
    while i < end:
        char = text[i]
        if char == '"':
            try:
                _, i = scanstring(text, i + 1)
            except ValueError:
                return None
            continue
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            depth -= 1
            if depth < 0:
                return None
        elif char == "," and depth == 0:
            return i
        i += 1
    return i if depth == 0 else None
