"""Journal entries: what the worker writes, it reads back, whichever JSON writer wrote it."""

from __future__ import annotations

import json

import pytest

from streams.compact_json import to_json
from streams.live.envelopes import Entry, decode_entry, encode_entry
from streams.observer import Origin

ENTRY = Entry("loan-bookings", '{"issuer_id": "\u00c9CO", "n": "1.50"}', Origin("in", 3, 42, 1700))


def test_an_entry_is_compact_json_and_round_trips() -> None:
    written = encode_entry(ENTRY)
    assert written == (
        b'{"topic":"loan-bookings","value":"{\\"issuer_id\\": \\"\xc3\x89CO\\", '
        b'\\"n\\": \\"1.50\\"}","source":["in",3,42,1700]}'
    )
    assert decode_entry(written) == ENTRY


def test_an_entry_written_by_json_dumps_with_ascii_escapes_reads_the_same() -> None:
    older = (
        b'{"topic":"loan-bookings","value":"{\\"issuer_id\\": \\"\\u00c9CO\\", '
        b'\\"n\\": \\"1.50\\"}","source":["in",3,42,1700]}'
    )
    assert decode_entry(older) == ENTRY


def test_what_orjson_refuses_is_written_by_json() -> None:
    assert json.loads(to_json({"seq": 2**70})) == {"seq": 2**70}


@pytest.mark.parametrize("payload", [b"not json", b"{}", b'{"topic": "t"}', b"[1]"])
def test_a_foreign_payload_raises_what_the_stages_dead_letter(payload: bytes) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        decode_entry(payload)
