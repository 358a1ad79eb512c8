"""Parsing one line into a JSON object, with a reason for every rejection."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.json_lines import InvalidLineError, parse_object


@pytest.mark.parametrize("data, reason_part", [
    (b'{"a": NaN}', "NaN or Infinity"),
    (b'{"a": -Infinity}', "NaN or Infinity"),
    (b"[" * 5000 + b"]" * 5000, "deeper than"),
    (b'{"a": "\xff"}', "not valid UTF-8"),
    (b'{"a": "\\ud800"}', "invalid Unicode escape"),
    (b'{"a": 1', "not valid JSON"),
    (b"[1, 2]", "an array, not a JSON object"),
    (b'"text"', "a string, not a JSON object"),
    (b"42", "a number, not a JSON object"),
    (b"null", "null, not a JSON object"),
    (b'{"a": 1} {"b": 2}', "not valid JSON"),
    (b'{}],[{}', "not valid JSON"),
    (b'\xef\xbb\xbf{"a": 1}', "byte-order mark"),
], ids=["nan", "infinity", "deep", "utf8", "surrogate", "truncated", "array", "string", "number", "null",
        "two-objects", "wrap-breakout", "bom"])
def test_parse_object_rejects(data, reason_part):
    with pytest.raises(InvalidLineError) as raised:
        parse_object(data)

    assert reason_part in str(raised.value)


def test_parse_object_accepts_object():
    assert parse_object(b' {"a": [1, 2.5, "x"]} ') == {"a": [1, 2.5, "x"]}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parse_object_never_crashes(data):
    try:
        value = parse_object(data)
    except InvalidLineError as error:
        assert str(error)
    else:
        assert isinstance(value, dict)


@pytest.mark.parametrize("depth, accepted", [(1022, True), (1023, False), (1024, False)])
def test_parse_object_depth_fits_envelope(depth, accepted):
    data = b'{"a": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"

    if accepted:
        assert parse_object(data)["a"] is not None
    else:
        with pytest.raises(InvalidLineError) as raised:
            parse_object(data)
        assert "envelope" in str(raised.value) or "deeper" in str(raised.value)
