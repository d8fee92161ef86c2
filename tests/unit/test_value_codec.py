"""The value codec of `publish` and `dump` (streams.kafka_io): bytes on the wire <-> log values.

A value that is a JSON object goes on the wire as compact JSON; anything else is raw
UTF-8 text (surrogate escapes keep bytes that are not UTF-8). Expected values come from
`json` and plain `str.encode`, not from the code under test.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from streams.kafka_io import decode_value, encode_value


@given(st.binary())
def test_any_payload_survives_decode_then_encode(payload: bytes) -> None:
    value = decode_value(payload)
    if isinstance(value, str):
        assert encode_value(value) == payload
    else:
        assert value == json.loads(payload)
        assert json.loads(encode_value(value)) == value


@given(st.text())
def test_raw_string_goes_on_the_wire_as_its_utf8_bytes(text: str) -> None:
    assert encode_value(text) == text.encode("utf-8")
    if not isinstance(_try_json(text), dict):
        assert decode_value(encode_value(text)) == text


def _try_json(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return None


JSON_OBJECTS = st.dictionaries(
    st.text(),
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=10,
    ),
)


@given(JSON_OBJECTS)
def test_objects_round_trip(value: dict[str, Any]) -> None:
    assert decode_value(encode_value(value)) == value


def test_codec_edge_cases() -> None:
    assert decode_value(b"\xff\xfe{") == "\udcff\udcfe{"
    assert encode_value("\udcff\udcfe{") == b"\xff\xfe{"
    assert encode_value("\ud800") == b"\xed\xa0\x80"  # lone surrogate: no crash
    assert decode_value(b"[1, 2]") == "[1, 2]"  # JSON, but not an object: raw
    assert decode_value(b'{"a": NaN}') == '{"a": NaN}'  # not strict JSON: raw
    assert decode_value(None) == ""  # a tombstone replays as invalid_json, as live
    assert encode_value([1, 2]) == b"[1,2]"
    assert encode_value({"a": "é"}) == '{"a":"é"}'.encode()
    assert decode_value(encode_value({"a": "\ud800"})) == {"a": "\ud800"}
