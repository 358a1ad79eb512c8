"""One finalize event from data check to launch request, with a recording launcher."""

import logging

import pytest

from function_launcher.config import load_config
from function_launcher.handler import handle_event
from function_launcher.job_names import publish_job_name
from function_launcher.launch import LaunchResult, LaunchStatus
from function_launcher.storage_events import FINALIZED_EVENT_TYPE, MalformedEventError, parse_finalized_object
from tests.launcher.conftest import GENERATION, RESULT_NAME, RESULTS_BUCKET, object_resource

CONFIG = load_config({"RESULTS_BUCKET": RESULTS_BUCKET, "LAUNCHER": "local",
                      "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"})


class RecordingLauncher:
    def __init__(self):
        self.requests = []

    def launch(self, request):
        self.requests.append(request)
        return LaunchResult(LaunchStatus.STARTED, request.job_name, "1")


def test_handler_launches_result_file():
    launcher = RecordingLauncher()
    outcome = handle_event(FINALIZED_EVENT_TYPE, "event-1", object_resource(), CONFIG, launcher)
    assert outcome.launch.status is LaunchStatus.STARTED
    assert len(launcher.requests) == 1


def test_handler_request_fields():
    launcher = RecordingLauncher()
    handle_event(FINALIZED_EVENT_TYPE, "event-1", object_resource(), CONFIG, launcher)
    request = launcher.requests[0]
    assert request.job_name == publish_job_name(RESULT_NAME, GENERATION)
    assert request.input_uri == f"gs://{RESULTS_BUCKET}/{RESULT_NAME}"
    assert request.generation == GENERATION
    assert request.batch_date == "2026-11-30"


@pytest.mark.parametrize("resource", [
    object_resource(name="results/2026/11/30/"),
    object_resource(size="0"),
    object_resource(bucket="other-bucket"),
    object_resource(name=RESULT_NAME.replace("predictions.jsonl", "errors.jsonl")),
])
def test_handler_ignores_other_objects(resource):
    launcher = RecordingLauncher()
    outcome = handle_event(FINALIZED_EVENT_TYPE, "event-1", resource, CONFIG, launcher)
    assert launcher.requests == []
    assert outcome.ignored_reason


def test_handler_logs_one_line_per_ignored_object(caplog):
    caplog.set_level(logging.INFO, logger="function_launcher")
    handle_event(FINALIZED_EVENT_TYPE, "event-7", object_resource(size="0"), CONFIG, RecordingLauncher())
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1
    assert "zero-byte" in lines[0]
    assert "event-7" in lines[0]


def test_handler_ignores_other_event_type():
    launcher = RecordingLauncher()
    outcome = handle_event("google.cloud.storage.object.v1.deleted", "event-1", object_resource(), CONFIG, launcher)
    assert launcher.requests == []
    assert "deleted" in outcome.ignored_reason


# (data, text the error must contain)
MALFORMED = [
    (b"not json", "must be a JSON object"),
    ("text", "must be a JSON object"),
    (None, "must be a JSON object"),
    ({"name": RESULT_NAME, "generation": "1"}, "'bucket' is missing"),
    ({"bucket": RESULTS_BUCKET, "generation": "1"}, "'name' is missing"),
    ({"bucket": RESULTS_BUCKET, "name": RESULT_NAME}, "'generation' must be"),
    ({"bucket": RESULTS_BUCKET, "name": RESULT_NAME, "generation": "abc"}, "'generation' must be"),
    ({"bucket": RESULTS_BUCKET, "name": RESULT_NAME, "generation": "-1"}, "'generation' must be"),
    ({"bucket": RESULTS_BUCKET, "name": RESULT_NAME, "generation": True}, "'generation' must be"),
    ({"bucket": RESULTS_BUCKET, "name": RESULT_NAME, "generation": "1", "size": "big"}, "'size' must be"),
    ({"bucket": 5, "name": RESULT_NAME, "generation": "1"}, "'bucket' is missing or not a non-empty string"),
]


@pytest.mark.parametrize("data, message", MALFORMED)
def test_parse_malformed_data_rejected(data, message):
    with pytest.raises(MalformedEventError) as raised:
        parse_finalized_object("event-9", data)
    assert message in str(raised.value)
    assert "event-9" in str(raised.value)


def test_parse_numbers_as_strings_or_integers():
    parsed = parse_finalized_object("e", {"bucket": "b", "name": "n", "generation": 17, "size": "05"})
    assert parsed.generation == "17"
    assert parsed.size == 5


def test_parse_missing_size_is_none():
    assert parse_finalized_object("e", {"bucket": "b", "name": "n", "generation": "1"}).size is None
