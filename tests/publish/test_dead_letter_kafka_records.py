"""Tests of `to_kafka_record`: dead letters as Kafka records within the largest message size."""

import logging

import orjson
import pytest

from transforms.dead_letter_records import MAX_RAW_BYTES, decode_raw, make_dead_letter
from transforms.dead_letters import to_kafka_record
from transforms.kafka_write import record_size

SOURCE = {"uri": "gs://bucket/results/2026/11/30/p/predictions.jsonl", "object": "results/2026/11/30/p/predictions.jsonl",
          "generation": "1764468000000000", "line": 7}

# Raw inputs whose JSON form grows in different ways. Quotes and control characters are escaped, up to 6
# bytes for one. A cut can split a 3-byte UTF-8 character. Bytes that are not UTF-8 are stored as base64.
RAW_INPUTS = {
    "ascii": b'{"id": "conv-1", "text": "' + b"a" * 70_000 + b'"}',
    "escaped": (b'"\x01\\' * 25_000),
    "multibyte": "\u20ac".encode("utf-8") * 25_000,
    "binary": bytes(range(256)) * 300,
}


def dead_letter_of(raw: bytes, reason: str = "The line is not valid JSON.") -> dict:
    return make_dead_letter(pipeline="publish_results", step="parse_json", reason=reason,
                            error_type="JSONDecodeError", source=dict(SOURCE), raw=raw)


def test_small_dead_letter_unchanged():
    dead_letter = dead_letter_of(b'{"id": 1')

    record = to_kafka_record(dead_letter, max_message_bytes=20_000)

    assert record.value == orjson.dumps(dead_letter)
    assert record.key == dead_letter["id"].encode("ascii")


@pytest.mark.parametrize("max_message_bytes", [2_000, 20_000, 50_000])
@pytest.mark.parametrize("kind", sorted(RAW_INPUTS))
def test_large_raw_cut_to_fit(kind, max_message_bytes):
    original = RAW_INPUTS[kind]
    dead_letter = dead_letter_of(original)
    assert record_size(to_kafka_record(dead_letter)) > max_message_bytes  # Over the limit as it is.

    record = to_kafka_record(dead_letter, max_message_bytes=max_message_bytes)
    written = orjson.loads(record.value)
    kept = decode_raw(written["raw"])

    assert record_size(record) <= max_message_bytes
    assert record_size(record) > max_message_bytes - 1_000  # Most of the room goes to the raw input.
    assert original.startswith(kept)
    assert written["raw"]["truncated"] is True
    assert written["raw"]["size"] == len(original)
    assert written["raw"]["encoding"] == dead_letter["raw"]["encoding"]
    assert {name: value for name, value in written.items() if name != "raw"} == {
        name: value for name, value in dead_letter.items() if name != "raw"}


def test_cut_leaves_dead_letter_unchanged():
    dead_letter = dead_letter_of(RAW_INPUTS["binary"])
    before = orjson.dumps(dead_letter)

    to_kafka_record(dead_letter, max_message_bytes=5_000)

    assert orjson.dumps(dead_letter) == before


def test_raw_already_capped_keeps_original_size():
    original = b"x" * (MAX_RAW_BYTES * 3)
    dead_letter = dead_letter_of(original)

    written = orjson.loads(to_kafka_record(dead_letter, max_message_bytes=10_000).value)

    assert written["raw"]["size"] == len(original)
    assert written["raw"]["truncated"] is True


def test_too_large_without_raw_is_returned(caplog):
    dead_letter = dead_letter_of(b"x" * 5_000, reason="r" * 3_000)

    with caplog.at_level(logging.WARNING, logger="transforms.dead_letters"):
        record = to_kafka_record(dead_letter, max_message_bytes=2_000)

    assert record_size(record) > 2_000
    assert orjson.loads(record.value)["raw"]["data"] == ""
    assert "with 0 bytes of its raw input" in caplog.text
