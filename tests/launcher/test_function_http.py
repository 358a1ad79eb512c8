"""Real CloudEvents posted to the function as functions-framework serves it.

Most tests use functions-framework's in-process test client; the last ones
run `python -m functions_framework` and post over HTTP on loopback. The
function uses the Dataflow launcher against a fake Dataflow API, so "a job
started" means the fake received a launch request.
"""

import os
import pathlib
import subprocess
import sys

import pytest
from cloudevents.conversion import to_binary, to_structured
from functions_framework import create_app

from function_launcher.config import ENVIRONMENT_VARIABLES
from localdev.gcs_emulator import finalized_event, post_event
from localdev.ports import free_port, wait_for_port
from tests.launcher.conftest import RESULT_NAME, dataflow_environment, object_resource

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
MAIN_PY = REPO_ROOT / "function_launcher" / "main.py"
TARGET = "on_result_finalized"


def serve_in_process(monkeypatch, environment):
    """Return a test client of the function configured by `environment` alone."""
    for name in ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return create_app(TARGET, str(MAIN_PY)).test_client()


@pytest.fixture
def client(monkeypatch, fake_dataflow):
    return serve_in_process(monkeypatch, dataflow_environment(fake_dataflow.endpoint))


def post(client, event, mode):
    headers, body = to_binary(event) if mode == "binary" else to_structured(event)
    return client.post("/", headers=headers, data=body)


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_result_file_starts_job(client, fake_dataflow, mode):
    response = post(client, finalized_event(object_resource()), mode)
    assert response.status_code == 200
    assert len(fake_dataflow.launches()) == 1


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_launch_names_object(client, fake_dataflow, mode):
    post(client, finalized_event(object_resource()), mode)
    parameters = fake_dataflow.launches()[0].body["launchParameter"]["parameters"]
    assert parameters["input"] == f"gs://results-test/{RESULT_NAME}"


@pytest.mark.parametrize("resource", [
    object_resource(name="results/2026/11/30/prediction-model-2026-11-30T02:00:00.000000Z/"),
    object_resource(size="0"),
    object_resource(name="gsutil/tmp/parallel_composite_uploads/for_details_see/gsutil_help_cp/0a1b_3"),
    object_resource(name=RESULT_NAME + ".tmp"),
    object_resource(name=RESULT_NAME.replace("predictions.jsonl", "incremental_predictions.jsonl")),
    object_resource(name="results/2026/02/31/prediction-model-x/predictions.jsonl"),
    object_resource(bucket="other-bucket"),
])
@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_other_object_starts_nothing(client, fake_dataflow, resource, mode):
    response = post(client, finalized_event(resource), mode)
    assert response.status_code == 200
    assert fake_dataflow.requests == []


@pytest.mark.parametrize("attribute", ["id", "source", "type", "specversion"])
def test_missing_attribute_rejected(client, fake_dataflow, attribute):
    headers, body = to_binary(finalized_event(object_resource()))
    del headers[f"ce-{attribute}"]
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 400
    assert fake_dataflow.requests == []


# (data, content type, text the response must contain)
MALFORMED_DATA = [
    (b'{"bucket": "results-test", "generation": "1"}', "application/json", "&#39;name&#39; is missing"),
    (b'{"bucket": "results-test", "name": "x", "generation": "v1"}', "application/json", "&#39;generation&#39; must"),
    (b"[1, 2, 3]", "application/json", "must be a JSON object"),
    (b"not json at all", "text/plain", "must be a JSON object"),
]


@pytest.mark.parametrize("data, content_type, message", MALFORMED_DATA)
def test_malformed_data_rejected(client, fake_dataflow, data, content_type, message):
    headers = {"ce-specversion": "1.0", "ce-id": "event-1", "ce-source": "//storage.googleapis.com/projects/_/buckets/x",
               "ce-type": "google.cloud.storage.object.v1.finalized", "Content-Type": content_type}
    response = client.post("/", headers=headers, data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert fake_dataflow.requests == []


def test_transient_error_answers_500(client, fake_dataflow):
    fake_dataflow.fail_next_launch(503, "UNAVAILABLE")
    response = post(client, finalized_event(object_resource()), "binary")
    assert response.status_code == 500


def test_permanent_error_acknowledged(client, fake_dataflow):
    fake_dataflow.fail_next_launch(403, "PERMISSION_DENIED")
    response = post(client, finalized_event(object_resource()), "binary")
    assert response.status_code == 200


def test_ten_deliveries_one_launch(client, fake_dataflow):
    fake_dataflow.listing_visible = False  # Each delivery reaches the launch call.
    event = finalized_event(object_resource(), event_id="redelivered-event")
    statuses = [post(client, event, "binary").status_code for _ in range(10)]
    assert statuses == [200] * 10
    assert [request.status for request in fake_dataflow.launches()] == [200] + [409] * 9


def test_new_generation_starts_second_job(client, fake_dataflow):
    post(client, finalized_event(object_resource(generation="1")), "binary")
    post(client, finalized_event(object_resource(generation="2")), "binary")
    names = {request.body["launchParameter"]["jobName"] for request in fake_dataflow.launches()}
    assert len(names) == 2


def start_function(environment, port):
    command = [sys.executable, "-m", "functions_framework", "--source", str(MAIN_PY), "--target", TARGET,
               "--host", "127.0.0.1", "--port", str(port)]
    clean = {name: value for name, value in os.environ.items() if name not in ENVIRONMENT_VARIABLES}
    return subprocess.Popen(command, cwd=REPO_ROOT, env={**clean, **environment}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop_function(process):
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def function_url(fake_dataflow):
    port = free_port()
    process = start_function(dataflow_environment(fake_dataflow.endpoint), port)
    try:
        wait_for_port(port, 60, process)
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop_function(process)


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_served_function_starts_job(function_url, fake_dataflow, mode):
    status, _ = post_event(function_url, finalized_event(object_resource()), mode)
    assert status == 200
    assert len(fake_dataflow.launches()) == 1


def test_served_function_ignores_other_object(function_url, fake_dataflow):
    status, _ = post_event(function_url, finalized_event(object_resource(size="0")), "structured")
    assert status == 200
    assert fake_dataflow.requests == []


def test_served_function_invalid_config_stops_start(fake_dataflow):
    environment = dataflow_environment(fake_dataflow.endpoint, TEMPLATE_GCS_PATH="")
    process = start_function(environment, free_port())
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "TEMPLATE_GCS_PATH is missing" in output
