"""Dead-letter records: raw bytes, caps and the schema."""

import jsonschema

import schemas
from transforms.dead_letter_records import MAX_RAW_BYTES, decode_raw, encode_raw, make_dead_letter

VALIDATOR = jsonschema.Draft202012Validator(schemas.load(schemas.DEAD_LETTER),
                                            format_checker=jsonschema.FormatChecker())
SOURCE = {"uri": "/tmp/p.jsonl", "bucket": "", "object": "/tmp/p.jsonl", "generation": "1", "line": 4}


def test_encode_raw_utf8_text():
    raw = encode_raw("héllo".encode())

    assert raw == {"encoding": "utf-8", "data": "héllo", "size": 6, "truncated": False}


def test_encode_raw_invalid_utf8_round_trips():
    data = b'{"a": "\xff\xfe"}'

    raw = encode_raw(data)

    assert raw["encoding"] == "base64"
    assert decode_raw(raw) == data


def test_encode_raw_caps_size():
    raw = encode_raw(b"x" * (MAX_RAW_BYTES + 10))

    assert len(raw["data"]) == MAX_RAW_BYTES
    assert raw["size"] == MAX_RAW_BYTES + 10
    assert raw["truncated"] is True


def test_encode_raw_cut_inside_character_stays_text():
    data = b"a" * (MAX_RAW_BYTES - 1) + "é".encode()

    raw = encode_raw(data)

    assert raw["encoding"] == "utf-8"
    assert raw["truncated"] is True


def test_make_dead_letter_matches_schema():
    letter = make_dead_letter(pipeline="publish_results", step="parse_json", reason="The line is not valid JSON.",
                              error_type="JSONDecodeError", source=SOURCE, raw=b"{")

    VALIDATOR.validate(letter)


def test_dead_letter_id_is_deterministic():
    first = make_dead_letter(pipeline="publish_results", step="parse_json", reason="r", error_type="E",
                             source=SOURCE, raw=b"{")
    second = make_dead_letter(pipeline="publish_results", step="parse_json", reason="r", error_type="E",
                              source=SOURCE, raw=b"{")

    assert first["id"] == second["id"]
