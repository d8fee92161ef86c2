"""Reading a replay log (SPEC §9): JSON lines of `{topic, key, value}` envelopes.

Owns: `read_log`, which yields each envelope as a `LogRecord` in file order
(with the journal partition of a dumped journal as its `scope`), and
`CorruptLog`, raised on the first line that is not a valid envelope. Shared by
the offline replay (`streams.offline.replay`) and `publish`
(`streams.kafka_io`). Imports the standard library and `hedger.decoding`/
`hedger.outcomes`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any, NamedTuple

from hedger.decoding import parse_json
from hedger.outcomes import Rejected


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
