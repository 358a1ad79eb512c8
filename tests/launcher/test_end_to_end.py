"""End to end on local servers: upload → function → publish job reading gs:// → Kafka.

The function runs under `python -m functions_framework` with the local
launcher, the publish job reads the object from fake-gcs-server through
`STORAGE_EMULATOR_HOST`, and writes to the session's Tansu broker.
"""

import json
import os
import pathlib
import subprocess
import sys
import threading
import time
import uuid

import pytest

from function_launcher.config import ENVIRONMENT_VARIABLES
from function_launcher.job_names import publish_job_name
from function_launcher.local_launcher import JobFiles, wait_for_job
from localdev.gcs_emulator import finalized_event, post_event
from localdev.ports import free_port, wait_for_port
from localdev.topic_reader import read_topic
from tests.conftest import CASES_DIR
from tests.launcher.conftest import RESULT_NAME

pytestmark = pytest.mark.slow

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

# tests/cases/one-broken-line.jsonl: 4 events and 1 dead letter for line 3.
INPUT = CASES_DIR / "one-broken-line.jsonl"
EXPECTED_EVENTS = 4
EXPECTED_DEAD_LETTERS = 1

JOB_TIMEOUT_SECONDS = 240


@pytest.fixture
def pipeline(gcs_emulator, broker, topics, tmp_path):
    """The bucket, topics and a served function with the local launcher; yields their settings."""
    bucket = f"results-{uuid.uuid4().hex[:8]}"
    gcs_emulator.create_bucket(bucket)
    event_topic, dead_letter_topic = topics("batch-job-results", "batch-job-results-dlq")
    state_dir = tmp_path / "state"
    environment = {
        "RESULTS_BUCKET": bucket, "LAUNCHER": "local", "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "KAFKA_TOPIC": event_topic, "DEAD_LETTER_TOPIC": dead_letter_topic, "LOCAL_STATE_DIR": str(state_dir),
        **gcs_emulator.environment(),
    }
    clean = {name: value for name, value in os.environ.items() if name not in ENVIRONMENT_VARIABLES}
    port = free_port()
    log_path = tmp_path / "function.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "functions_framework", "--source", "function_launcher/main.py",
             "--target", "on_result_finalized", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT, env={**clean, **environment}, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, 60, process)
        yield {"url": f"http://127.0.0.1:{port}/", "bucket": bucket, "event_topic": event_topic,
               "dead_letter_topic": dead_letter_topic, "state_dir": state_dir, "log": log_path}
    finally:
        process.terminate()
        process.wait(timeout=15)


def deliver_concurrently(url, event, count):
    """Post `event` `count` times at once; return each delivery's HTTP status or exception."""
    outcomes = []

    def deliver():
        try:
            outcomes.append(post_event(url, event)[0])
        except OSError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=deliver) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_upload_publishes_events(gcs_emulator, broker, pipeline):
    resource = gcs_emulator.upload(pipeline["bucket"], RESULT_NAME, INPUT.read_bytes())
    finalized_at = time.monotonic()
    statuses = deliver_concurrently(pipeline["url"], finalized_event(resource), 10)

    job_name = publish_job_name(RESULT_NAME, resource["generation"])
    exit_code = wait_for_job(pipeline["state_dir"], job_name, JOB_TIMEOUT_SECONDS)
    events = read_topic(broker.bootstrap_servers, pipeline["event_topic"], expected=EXPECTED_EVENTS)
    dead_letters = read_topic(broker.bootstrap_servers, pipeline["dead_letter_topic"],
                              expected=EXPECTED_DEAD_LETTERS)
    print(f"finalize to job end: {time.monotonic() - finalized_at:.1f} s")

    assert statuses == [200] * 10
    assert exit_code == 0
    assert len(events) == EXPECTED_EVENTS
    assert len(dead_letters) == EXPECTED_DEAD_LETTERS
    assert len(list(pipeline["state_dir"].glob("*.claim.json"))) == 1  # one marker: one job for ten deliveries
    generations = {json.loads(message.value)["data"]["source"]["generation"] for message in events}
    assert generations == {resource["generation"]}


def test_job_summary_balanced(gcs_emulator, pipeline):
    resource = gcs_emulator.upload(pipeline["bucket"], RESULT_NAME, INPUT.read_bytes())
    post_event(pipeline["url"], finalized_event(resource), "structured")
    job_name = publish_job_name(RESULT_NAME, resource["generation"])
    wait_for_job(pipeline["state_dir"], job_name, JOB_TIMEOUT_SECONDS)
    summary = json.loads(JobFiles.of(pipeline["state_dir"], job_name).summary.read_text())
    assert summary["balanced"]
    assert summary["published"] == EXPECTED_EVENTS


def test_new_generation_second_job(gcs_emulator, pipeline):
    first = gcs_emulator.upload(pipeline["bucket"], RESULT_NAME, INPUT.read_bytes())
    second = gcs_emulator.upload(pipeline["bucket"], RESULT_NAME, INPUT.read_bytes())
    post_event(pipeline["url"], finalized_event(first))
    post_event(pipeline["url"], finalized_event(second))
    # The first job finds its generation replaced: a clear error, exit code 2.
    first_exit = wait_for_job(pipeline["state_dir"], publish_job_name(RESULT_NAME, first["generation"]),
                              JOB_TIMEOUT_SECONDS)
    second_exit = wait_for_job(pipeline["state_dir"], publish_job_name(RESULT_NAME, second["generation"]),
                               JOB_TIMEOUT_SECONDS)
    assert first_exit == 2
    assert second_exit == 0


def test_ignored_object_starts_no_job(gcs_emulator, pipeline):
    resource = gcs_emulator.upload(pipeline["bucket"], RESULT_NAME.replace("predictions.jsonl", "notes.txt"), b"x")
    status, _ = post_event(pipeline["url"], finalized_event(resource))
    assert status == 200
    assert list(pipeline["state_dir"].glob("*.claim.json")) == []
