"""The Dataflow launcher against a fake Dataflow REST API, through the real client library."""

import logging

import pytest

from function_launcher.config import load_config
from function_launcher.dataflow_launcher import DataflowLauncher
from function_launcher.job_names import publish_job_name
from function_launcher.launch import LaunchRequest, LaunchStatus, TransientLaunchError
from localdev.ports import free_port
from tests.launcher.conftest import GENERATION, RESULT_NAME, RESULTS_BUCKET, dataflow_environment

JOB_NAME = publish_job_name(RESULT_NAME, GENERATION)
REQUEST = LaunchRequest(job_name=JOB_NAME, bucket=RESULTS_BUCKET, object_name=RESULT_NAME,
                        generation=GENERATION, batch_date="2026-11-30")
FULL_SETTINGS = {
    "KAFKA_TOPIC": "events",
    "DEAD_LETTER_TOPIC": "events-dlq",
    "KAFKA_CONFIG": '{"security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER"}',
    "KAFKA_CONFIG_SECRET": "projects/test-project/secrets/kafka/versions/latest",
    "DEAD_LETTER_PATH": "gs://dead-letters/publish/",
    "DATAFLOW_SERVICE_ACCOUNT": "dataflow@test-project.iam.gserviceaccount.com",
    "DATAFLOW_TEMP_LOCATION": "gs://dataflow-test/tmp",
    "DATAFLOW_STAGING_LOCATION": "gs://dataflow-test/staging",
    "DATAFLOW_NETWORK": "vpc",
    "DATAFLOW_SUBNETWORK": "regions/europe-west1/subnetworks/dataflow",
    "DATAFLOW_MAX_WORKERS": "8",
    "DATAFLOW_SDK_CONTAINER_IMAGE": "europe-west1-docker.pkg.dev/test-project/images/publish-results:v1",
}


def make_launcher(endpoint, timeout_seconds=10.0, **settings):
    config = load_config(dataflow_environment(endpoint, **settings))
    return DataflowLauncher(config, timeout_seconds=timeout_seconds)


def launch_body(fake_dataflow):
    return fake_dataflow.launches()[0].body["launchParameter"]


def test_launch_path(fake_dataflow):
    make_launcher(fake_dataflow.endpoint).launch(REQUEST)
    assert fake_dataflow.launches()[0].path == "/v1b3/projects/test-project/locations/europe-west1/flexTemplates:launch"


def test_launch_job_name_and_template(fake_dataflow):
    make_launcher(fake_dataflow.endpoint).launch(REQUEST)
    body = launch_body(fake_dataflow)
    assert body["jobName"] == JOB_NAME
    assert body["containerSpecGcsPath"] == "gs://templates-test/templates/publish_results.json"


def test_launch_minimal_parameters(fake_dataflow):
    make_launcher(fake_dataflow.endpoint).launch(REQUEST)
    assert launch_body(fake_dataflow)["parameters"] == {
        "input": f"gs://{RESULTS_BUCKET}/{RESULT_NAME}",
        "source_generation": GENERATION,
        "bootstrap_servers": "broker-1:9092,broker-2:9092",
        "topic": "batch-job-results",
        "dead_letter_topic": "batch-job-results-dlq",
    }


def test_launch_full_parameters(fake_dataflow):
    make_launcher(fake_dataflow.endpoint, **FULL_SETTINGS).launch(REQUEST)
    assert launch_body(fake_dataflow)["parameters"] == {
        "input": f"gs://{RESULTS_BUCKET}/{RESULT_NAME}",
        "source_generation": GENERATION,
        "bootstrap_servers": "broker-1:9092,broker-2:9092",
        "topic": "events",
        "dead_letter_topic": "events-dlq",
        "kafka_config": '{"security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER"}',
        "kafka_config_secret": "projects/test-project/secrets/kafka/versions/latest",
        "dead_letter_path": "gs://dead-letters/publish/",
    }


def test_launch_full_environment(fake_dataflow):
    make_launcher(fake_dataflow.endpoint, **FULL_SETTINGS).launch(REQUEST)
    assert launch_body(fake_dataflow)["environment"] == {
        "serviceAccountEmail": "dataflow@test-project.iam.gserviceaccount.com",
        "tempLocation": "gs://dataflow-test/tmp",
        "stagingLocation": "gs://dataflow-test/staging",
        "network": "vpc",
        "subnetwork": "regions/europe-west1/subnetworks/dataflow",
        "maxWorkers": 8,
        "sdkContainerImage": "europe-west1-docker.pkg.dev/test-project/images/publish-results:v1",
        "additionalUserLabels": {"pipeline": "publish-results", "batch-date": "2026-11-30",
                                 "source-generation": GENERATION},
    }


def test_launch_started_with_job_id(fake_dataflow):
    result = make_launcher(fake_dataflow.endpoint).launch(REQUEST)
    assert result.status is LaunchStatus.STARTED
    assert result.job_id == "2026-11-30_00_00_00-1"


def test_listing_asks_for_job_name(fake_dataflow):
    make_launcher(fake_dataflow.endpoint).launch(REQUEST)
    listing = fake_dataflow.requests[0]
    assert listing.path == "/v1b3/projects/test-project/locations/europe-west1/jobs"
    assert listing.query["name"] == JOB_NAME
    assert listing.query["filter"] == "1"  # ListJobsRequest.Filter.ALL


@pytest.mark.parametrize("state", ["JOB_STATE_QUEUED", "JOB_STATE_RUNNING", "JOB_STATE_DONE",
                                   "JOB_STATE_CANCELLED"])
def test_existing_job_is_duplicate(fake_dataflow, state):
    fake_dataflow.add_job(JOB_NAME, state)
    result = make_launcher(fake_dataflow.endpoint).launch(REQUEST)
    assert result.status is LaunchStatus.DUPLICATE
    assert fake_dataflow.launches() == []


def test_failed_job_launched_again(fake_dataflow):
    fake_dataflow.add_job(JOB_NAME, "JOB_STATE_FAILED")
    result = make_launcher(fake_dataflow.endpoint).launch(REQUEST)
    assert result.status is LaunchStatus.STARTED


def test_other_job_name_ignored(fake_dataflow):
    fake_dataflow.filter_by_name = False
    fake_dataflow.add_job("publish-20261130-0000000000", "JOB_STATE_RUNNING")
    result = make_launcher(fake_dataflow.endpoint).launch(REQUEST)
    assert result.status is LaunchStatus.STARTED


def test_conflict_is_duplicate(fake_dataflow):
    fake_dataflow.fail_next_launch(409, "ALREADY_EXISTS", f"There is already an active job named {JOB_NAME}.")
    result = make_launcher(fake_dataflow.endpoint).launch(REQUEST)
    assert result.status is LaunchStatus.DUPLICATE


def test_aborted_conflict_is_transient(fake_dataflow):
    fake_dataflow.fail_next_launch(409, "ABORTED", "Concurrent modification.")
    with pytest.raises(TransientLaunchError):
        make_launcher(fake_dataflow.endpoint).launch(REQUEST)


@pytest.mark.parametrize("status, error_status", [
    (408, "DEADLINE_EXCEEDED"),
    (429, "RESOURCE_EXHAUSTED"),
    (500, "INTERNAL"),
    (502, "UNAVAILABLE"),
    (503, "UNAVAILABLE"),
    (504, "DEADLINE_EXCEEDED"),
])
def test_launch_transient_error_raises(fake_dataflow, status, error_status):
    fake_dataflow.fail_next_launch(status, error_status)
    with pytest.raises(TransientLaunchError):
        make_launcher(fake_dataflow.endpoint).launch(REQUEST)


@pytest.mark.parametrize("status, error_status", [
    (400, "INVALID_ARGUMENT"),
    (403, "PERMISSION_DENIED"),
    (404, "NOT_FOUND"),
])
def test_launch_permanent_error_rejected(fake_dataflow, status, error_status):
    fake_dataflow.fail_next_launch(status, error_status)
    result = make_launcher(fake_dataflow.endpoint).launch(REQUEST)
    assert result.status is LaunchStatus.REJECTED


def test_permanent_error_logged_with_object(fake_dataflow, caplog):
    fake_dataflow.fail_next_launch(400, "INVALID_ARGUMENT", "The template parameters are invalid.")
    make_launcher(fake_dataflow.endpoint).launch(REQUEST)
    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert f"gs://{RESULTS_BUCKET}/{RESULT_NAME}#{GENERATION}" in errors[0]
    assert "The template parameters are invalid." in errors[0]


def test_listing_transient_error_raises(fake_dataflow):
    fake_dataflow.fail_next_list(503, "UNAVAILABLE")
    with pytest.raises(TransientLaunchError):
        make_launcher(fake_dataflow.endpoint).launch(REQUEST)


def test_listing_permanent_error_rejected(fake_dataflow):
    fake_dataflow.fail_next_list(403, "PERMISSION_DENIED")
    result = make_launcher(fake_dataflow.endpoint).launch(REQUEST)
    assert result.status is LaunchStatus.REJECTED
    assert fake_dataflow.launches() == []


@pytest.mark.parametrize("call", ["list", "launch"])
def test_timeout_raises(fake_dataflow, call):
    launcher = make_launcher(fake_dataflow.endpoint, timeout_seconds=0.3)
    fake_dataflow.delays[call] = 2.0
    with pytest.raises(TransientLaunchError):
        launcher.launch(REQUEST)


def test_connection_refused_raises():
    launcher = make_launcher(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransientLaunchError):
        launcher.launch(REQUEST)


def test_ten_deliveries_found_by_listing(fake_dataflow):
    launcher = make_launcher(fake_dataflow.endpoint)
    statuses = [launcher.launch(REQUEST).status for _ in range(10)]
    assert statuses.count(LaunchStatus.STARTED) == 1
    assert statuses.count(LaunchStatus.DUPLICATE) == 9
    assert len(fake_dataflow.launches()) == 1


def test_ten_deliveries_past_listing_get_conflicts(fake_dataflow):
    fake_dataflow.listing_visible = False  # Every delivery reaches the launch call.
    launcher = make_launcher(fake_dataflow.endpoint)
    statuses = [launcher.launch(REQUEST).status for _ in range(10)]
    answers = [request.status for request in fake_dataflow.launches()]
    assert answers == [200] + [409] * 9
    assert statuses == [LaunchStatus.STARTED] + [LaunchStatus.DUPLICATE] * 9
