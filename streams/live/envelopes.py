"""What travels on the worker's own topics: journal entries and dead letters.

Owns: the JSON shape of `hedger-loans`/`hedger-journal`/`hedger-seller-parts`
entries — the input topic, the original event object and where it came from
(and, for a seller's moved part, its figures) — and of the records on
`hedger-dead-letters`, which keep the original payload byte for byte.
Imports the standard library, orjson, `hedger.issuer` (`PartChange`),
`streams.compact_json` and `streams.observer` (for `Origin`).
"""

from __future__ import annotations

import base64
import codecs
import json
from datetime import date
from typing import Any, NamedTuple

import orjson

from hedger.issuer import PartChange
from streams.compact_json import to_json
from streams.observer import Origin

PREFIX_BYTES = 1_024  # of an oversize payload quoted by reference


class Entry(NamedTuple):
    """A validated input event on its way between stages."""

    topic: str  # the input topic it was published to
    # The original payload text, unchanged: later stages re-validate it, a
    # dead letter can quote it byte for byte, and `hedger dump` writes it as
    # a raw-string value that `hedger replay` parses like the original.
    value: str
    source: Origin


def encode_entry(entry: Entry) -> bytes:
    """Journal/loan-stage message value; `hedger dump` turns it back into a replay line."""
    return to_json({"topic": entry.topic, "value": entry.value, "source": list(entry.source)})


def decode_entry(payload: bytes) -> Entry:
    """Inverse of `encode_entry` (payloads written by the worker itself)."""
    data = orjson.loads(payload)
    return Entry(data["topic"], data["value"], Origin(*data["source"]))


def dead_letter(
    reason: str,
    detail: str,
    source: Origin,
    payload: bytes | None,
    *,
    stage: str,
    event_id: str | None = None,
    issuer_id: str | None = None,
    by_reference: bool = False,
) -> bytes:
    """A dead-letter record: reason, detail, source and the original payload.

    The payload is kept as text when it is UTF-8 (the usual case), else as
    base64 with `payload_encoding: "base64"`, so it survives byte for byte.
    `by_reference` (a payload too large to copy into one message) keeps
    only its size and first `PREFIX_BYTES` bytes as text, with
    `payload_encoding: "reference"`: the original stays at `source`.
    """
    record: dict[str, Any] = {
        "reason": reason,
        "detail": detail,
        "stage": stage,
        "source": {"topic": source.topic, "partition": source.partition, "offset": source.offset},
    }
    if event_id is not None:
        record["event_id"] = event_id
    if issuer_id is not None:
        record["issuer_id"] = issuer_id
    if payload is None:
        record["payload"] = None
    elif by_reference:
        record["payload"] = None
        record["payload_encoding"] = "reference"
        record["payload_size"] = len(payload)
        # a character cut at the end is left out rather than replaced
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        record["payload_prefix"] = decoder.decode(payload[:PREFIX_BYTES])
    else:
        try:
            record["payload"] = payload.decode("utf-8")
            record["payload_encoding"] = "utf-8"
        except UnicodeDecodeError:
            record["payload"] = base64.b64encode(payload).decode()
            record["payload_encoding"] = "base64"
    return json.dumps(record).encode()


def original_payload(record: dict[str, Any]) -> bytes | None:
    """The original payload bytes of a dead-letter record."""
    payload = record.get("payload")
    if payload is None:
        return None
    if record.get("payload_encoding") == "base64":
        return base64.b64decode(payload)
    return str(payload).encode("utf-8")


SELLER_PART_TOPIC = "hedger-seller-part"  # an entry of the seller-parts topic


def part_entry(change: PartChange, as_of: date, event_id: str, source: Origin) -> Entry:
    """The message the unit stage sends for one moved part (`source`: its journal entry)."""
    value = {
        "seller": change.seller,
        "maturity": change.maturity.isoformat(),
        "currency": change.currency,
        "before": str(change.before),
        "after": str(change.after),
        "as_of": as_of.isoformat(),
        "event_id": event_id,
    }
    return Entry(SELLER_PART_TOPIC, to_json(value).decode(), source)
