"""The BatchResultEvent envelope: ids, fields and the spliced original record."""

import json

import jsonschema
import orjson
import pytest

import schemas
from transforms.events import build_event, envelope_of, event_id, request_id_of
from transforms.result_files import ResultFile, parse_result_path

GCS_FILE = ResultFile(
    uri="gs://results/results/2026/11/30/prediction-model-2026-11-30T02:00:00.000000Z/predictions.jsonl",
    bucket="results", object_name="results/2026/11/30/prediction-model-2026-11-30T02:00:00.000000Z/predictions.jsonl",
    generation="1764468000123456", size=100)

VALIDATOR = jsonschema.Draft202012Validator(schemas.load(schemas.BATCH_RESULT_EVENT),
                                            format_checker=jsonschema.FormatChecker())


def test_event_id_is_deterministic():
    assert event_id("b", "o", "1", 7) == event_id("b", "o", "1", 7)


@pytest.mark.parametrize("other", [("c", "o", "1", 7), ("b", "p", "1", 7), ("b", "o", "2", 7), ("b", "o", "1", 8)])
def test_event_id_changes_with_each_part(other):
    assert event_id("b", "o", "1", 7) != event_id(*other)


@pytest.mark.parametrize("record, expected", [
    ({"id": "conv-1"}, "conv-1"),
    ({"key": 17}, "17"),
    ({"request": {"labels": {"conversation_id": "abc"}}}, "abc"),
    ({"request": {"labels": {"request_id": "r-9"}}}, "r-9"),
    ({"id": True}, None),
    ({"request": {}}, None),
])
def test_request_id_of_sources(record, expected):
    assert request_id_of(record) == expected


def test_build_event_matches_schema():
    raw = b'{"id": "conv-1", "status": "", "request": {}, "response": {"candidates": []}}'

    identifier, value = build_event(GCS_FILE, 3, json.loads(raw), raw, "2026-12-04T10:00:00.000000Z")
    event = json.loads(value)

    VALIDATOR.validate(event)
    assert event["id"] == identifier
    assert event["data"]["record"] == json.loads(raw)
    assert event["data"]["source"]["batch_date"] == "2026-11-30"
    assert event["data"]["source"]["prediction_folder"] == "prediction-model-2026-11-30T02:00:00.000000Z"
    assert event["source"].startswith("//storage.googleapis.com/projects/_/buckets/results/objects/")


def test_build_event_failed_row():
    raw = b'{"status": "Bad Request: quota", "request": {}}'

    _, value = build_event(GCS_FILE, 1, json.loads(raw), raw, "2026-12-04T10:00:00.000000Z")
    data = json.loads(value)["data"]

    assert data["status"] == "failed"
    assert data["error"] == "Bad Request: quota"


@pytest.mark.parametrize("path, expected", [
    ("results/2026/11/30/prediction-model-x/predictions.jsonl", ("2026-11-30", "prediction-model-x")),
    ("a/results/2026/02/30/prediction-model-x/predictions.jsonl", (None, None)),
    ("results/2026/11/30/predictions.jsonl", (None, None)),
    ("/tmp/predictions.jsonl", (None, None)),
])
def test_parse_result_path_shapes(path, expected):
    assert parse_result_path(path) == expected


@pytest.mark.parametrize("object_name", [
    "results/2026/11/30/prediction-model-x/predictions.jsonl",
    'odd "quoted" \\ back\tslash/ünïcode €/predictions.jsonl',
    "results/2026/11/30/prediction-model-x/predictions.jsonl#L9",
])
@pytest.mark.parametrize("raw", [
    b'{"id": "conv-1", "request": {}, "response": {}}',
    b'  {"key": 7, "status": "Quota \\"exceeded\\" \\u00e9", "request": {"labels": {"id": "x"}}}\t',
    b'{"request": {"labels": {"conversation_id": "\xc3\xa9\\n"}}, "status": ""}',
])
def test_build_event_equals_the_dict_envelope(object_name, raw):
    result_file = ResultFile(uri=f"gs://bucket-1/{object_name}", bucket="bucket-1", object_name=object_name,
                             generation="17", size=10)
    record = json.loads(raw)

    identifier, value = build_event(result_file, 12, record, raw, "2026-12-04T10:00:00.000000Z")
    reference = orjson.dumps(envelope_of(result_file, 12, identifier, "2026-12-04T10:00:00.000000Z", record, None))

    assert identifier == event_id("bucket-1", object_name, "17", 12)
    assert value == reference[:-len(b"null}}")] + raw.strip() + b"}}"
    assert json.loads(value)["data"]["record"] == record
