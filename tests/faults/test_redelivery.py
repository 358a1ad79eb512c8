"""Duplicate, reordered and stale finalize events, at the launcher and at the publish job.

The launcher tests run the function's event handler in this process with the
local launcher, which starts real publish jobs that read the object from
fake-gcs-server and write to the session's broker. A finalize event is
delivered as Eventarc would: several times, late, out of order, or for an
object that no longer exists.
"""

import dataclasses
import json
import sys
import threading
import urllib.parse
import urllib.request
import uuid

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from function_launcher.config import load_config
from function_launcher.handler import handle_event
from function_launcher.launch import LaunchStatus
from function_launcher.local_launcher import JobFiles, LocalLauncher, wait_for_job
from localdev.gcs_emulator import FINALIZED_EVENT_TYPE, GcsEmulator
from localdev.topic_reader import read_topic
from pipelines import publish_results
from pipelines.publish_results import build_publish_graph
from tests.conftest import CASES_DIR
from tests.faults.jobs import PUBLISH_RUNNER_ARGS, RESULT_PATH
from transforms.events import event_id
from transforms.kafka_config import KafkaConnection
from transforms.result_files import match_result_files

# tests/cases/one-broken-line.jsonl: 4 events and 1 dead letter for line 3.
INPUT = CASES_DIR / "one-broken-line.jsonl"
INPUT_EVENT_LINES = (1, 2, 4, 5)

JOB_TIMEOUT_SECONDS = 180

# Loopback requests must not go through a proxy named in the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def gcs():
    """A fake-gcs-server of this module's own."""
    with GcsEmulator() as emulator:
        yield emulator


@pytest.fixture
def launch(gcs, broker, topics, tmp_path, monkeypatch):
    """A bucket, topics and a local launcher whose jobs read from the emulator; yields their settings."""
    bucket = f"results-{uuid.uuid4().hex[:8]}"
    gcs.create_bucket(bucket)
    event_topic, dead_letter_topic = topics("events", "dead-letters")
    for name, value in gcs.environment().items():
        monkeypatch.setenv(name, value)  # The launched jobs inherit this process's environment.
    config = load_config({"RESULTS_BUCKET": bucket, "LAUNCHER": "local",
                          "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "KAFKA_TOPIC": event_topic,
                          "DEAD_LETTER_TOPIC": dead_letter_topic, "LOCAL_STATE_DIR": str(tmp_path / "state")})
    launcher = LocalLauncher(config, job_command=[sys.executable, "-m", "pipelines.publish_results",
                                                  *PUBLISH_RUNNER_ARGS])
    return {"bucket": bucket, "event_topic": event_topic, "config": config, "launcher": launcher}


def deliver(launch, resource: dict, event_id_text: str):
    """Deliver one finalize event for `resource` to the handler; return its launch result."""
    outcome = handle_event(FINALIZED_EVENT_TYPE, event_id_text, resource, launch["config"], launch["launcher"])
    return outcome.launch


def create_versioned_bucket(gcs, name: str) -> None:
    """Create a bucket with object versioning on, so that older generations stay readable."""
    body = json.dumps({"name": name, "versioning": {"enabled": True}}).encode()
    request = urllib.request.Request(gcs.endpoint + "/storage/v1/b?project=local", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with _OPENER.open(request, timeout=30) as response:
        assert response.status == 200


def delete_object(gcs, bucket: str, name: str) -> None:
    """Delete the live version of an object on the emulator."""
    path = f"/storage/v1/b/{bucket}/o/{urllib.parse.quote(name, safe='')}"
    with _OPENER.open(urllib.request.Request(gcs.endpoint + path, method="DELETE"), timeout=30) as response:
        assert response.status in (200, 204)


def job_log(launch, job_name: str) -> str:
    return JobFiles.of(launch["launcher"].state_dir, job_name).log.read_text(encoding="utf-8", errors="replace")


def test_repeated_finalize_starts_one_job(gcs, broker, launch):
    """Delivers one finalize event 8 times at once, then twice more after the job ended, once with a new event id.

    Checks that one delivery starts a job and the other 9 are duplicates, and
    that the topic contains each event id of the file exactly once.
    """
    resource = gcs.upload(launch["bucket"], RESULT_PATH, INPUT.read_bytes())
    results = []
    threads = [threading.Thread(target=lambda: results.append(deliver(launch, resource, "event-1")))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    started = [result for result in results if result.status is LaunchStatus.STARTED]
    assert len(started) == 1

    exit_code = wait_for_job(launch["launcher"].state_dir, started[0].job_name, JOB_TIMEOUT_SECONDS)
    late = [deliver(launch, resource, "event-1"), deliver(launch, resource, "event-2")]
    keys = [message.key.decode() for message in read_topic(broker.bootstrap_servers, launch["event_topic"],
                                                           idle_seconds=2)]
    expected = {event_id(launch["bucket"], RESULT_PATH, resource["generation"], line) for line in INPUT_EVENT_LINES}

    assert [result.status for result in results].count(LaunchStatus.DUPLICATE) == 7
    assert [result.status for result in late] == [LaunchStatus.DUPLICATE, LaunchStatus.DUPLICATE]
    assert exit_code == 0, job_log(launch, started[0].job_name)[-3000:]
    assert sorted(keys) == sorted(expected)


def test_older_generation_after_newer(gcs, broker, launch):
    """Overwrites a result file, then delivers the newer generation's event before the older one's.

    Checks that each generation gets its own job, and that the newer one
    publishes every line under its generation. The older generation no
    longer exists, so its job must exit 2 with a clear error and publish
    nothing.
    """
    older = gcs.upload(launch["bucket"], RESULT_PATH, INPUT.read_bytes())
    newer = gcs.upload(launch["bucket"], RESULT_PATH, INPUT.read_bytes())

    newer_launch = deliver(launch, newer, "event-newer")
    newer_exit = wait_for_job(launch["launcher"].state_dir, newer_launch.job_name, JOB_TIMEOUT_SECONDS)
    older_launch = deliver(launch, older, "event-older")
    older_exit = wait_for_job(launch["launcher"].state_dir, older_launch.job_name, JOB_TIMEOUT_SECONDS)
    events = [json.loads(message.value) for message in read_topic(broker.bootstrap_servers, launch["event_topic"],
                                                                 idle_seconds=2)]

    assert newer_launch.status is LaunchStatus.STARTED
    assert older_launch.status is LaunchStatus.STARTED
    assert older_launch.job_name != newer_launch.job_name
    assert newer_exit == 0, job_log(launch, newer_launch.job_name)[-3000:]
    assert older_exit == 2
    assert f"Generation {older['generation']} of gs://{launch['bucket']}/{RESULT_PATH} does not exist" in job_log(
        launch, older_launch.job_name)
    assert sorted(event["data"]["source"]["line"] for event in events) == list(INPUT_EVENT_LINES)
    assert {event["data"]["source"]["generation"] for event in events} == {newer["generation"]}


def test_older_generation_versioned_bucket(gcs, broker, topics, launch):
    """Overwrites a result file in a versioned bucket, then delivers the newer generation's event first.

    The newer generation's row ids are upper case. Checks that both jobs
    complete, each publishing every line of its own generation's content,
    and that the two generations share no event id.
    """
    bucket = f"versioned-{uuid.uuid4().hex[:8]}"
    create_versioned_bucket(gcs, bucket)
    launch["config"] = dataclasses.replace(launch["config"], results_bucket=bucket)
    older = gcs.upload(bucket, RESULT_PATH, INPUT.read_bytes())
    newer = gcs.upload(bucket, RESULT_PATH, INPUT.read_bytes().replace(b"conv", b"CONV"))

    newer_launch = deliver(launch, newer, "event-newer")
    newer_exit = wait_for_job(launch["launcher"].state_dir, newer_launch.job_name, JOB_TIMEOUT_SECONDS)
    older_launch = deliver(launch, older, "event-older")
    older_exit = wait_for_job(launch["launcher"].state_dir, older_launch.job_name, JOB_TIMEOUT_SECONDS)
    events = [json.loads(message.value) for message in read_topic(broker.bootstrap_servers, launch["event_topic"],
                                                                 idle_seconds=2)]
    by_generation = {}
    for event in events:
        by_generation.setdefault(event["data"]["source"]["generation"], []).append(event)

    assert newer_exit == 0, job_log(launch, newer_launch.job_name)[-3000:]
    assert older_exit == 0, job_log(launch, older_launch.job_name)[-3000:]
    assert sorted(by_generation) == sorted([older["generation"], newer["generation"]])
    assert sorted(e["data"]["source"]["line"] for e in by_generation[older["generation"]]) == list(INPUT_EVENT_LINES)
    assert sorted(e["data"]["source"]["line"] for e in by_generation[newer["generation"]]) == list(INPUT_EVENT_LINES)
    assert len({event["id"] for event in events}) == 2 * len(INPUT_EVENT_LINES)
    assert {e["data"]["request_id"][:4] for e in by_generation[older["generation"]]} == {"conv"}
    assert {e["data"]["request_id"][:4] for e in by_generation[newer["generation"]]} == {"CONV"}


def test_deleted_object_event(gcs, broker, launch):
    """Deletes a result file before its finalize event arrives.

    Checks that the job exits 2 with an error naming the missing object, and
    publishes nothing.
    """
    resource = gcs.upload(launch["bucket"], RESULT_PATH, INPUT.read_bytes())
    delete_object(gcs, launch["bucket"], RESULT_PATH)

    result = deliver(launch, resource, "event-deleted")
    exit_code = wait_for_job(launch["launcher"].state_dir, result.job_name, JOB_TIMEOUT_SECONDS)
    messages = read_topic(broker.bootstrap_servers, launch["event_topic"], idle_seconds=1)

    assert result.status is LaunchStatus.STARTED
    assert exit_code == 2
    assert f"No file matches --input 'gs://{launch['bucket']}/{RESULT_PATH}'" in job_log(launch, result.job_name)
    assert messages == []


def test_publish_file_deleted_after_listing(broker, topics, tmp_path):
    """Deletes a result file after the publish job listed it and before it read it.

    Checks that the pipeline fails with an error naming the missing file,
    instead of finishing with zero lines, and publishes nothing.
    """
    path = tmp_path / RESULT_PATH
    path.parent.mkdir(parents=True)
    path.write_bytes(INPUT.read_bytes())
    event_topic, dead_letter_topic = topics("events", "dead-letters")
    files = match_result_files([str(path)], "300")
    path.unlink()
    pipeline = beam.Pipeline(options=PipelineOptions(list(PUBLISH_RUNNER_ARGS)))
    build_publish_graph(pipeline, files, connection=KafkaConnection(broker.bootstrap_servers), topic=event_topic,
                        dead_letter_topic=dead_letter_topic)

    with pytest.raises(Exception) as failure:
        pipeline.run().wait_until_finish()
    messages = read_topic(broker.bootstrap_servers, event_topic, idle_seconds=1)

    assert "FileNotFoundError" in str(failure.value)
    assert str(path) in str(failure.value)
    assert messages == []


def publish_generation(broker, path, generation: str, event_topic: str, dead_letter_topic: str) -> dict:
    return publish_results.run([*PUBLISH_RUNNER_ARGS, "--input", str(path), "--source_generation", generation,
                                "--bootstrap_servers", broker.bootstrap_servers, "--topic", event_topic,
                                "--dead_letter_topic", dead_letter_topic])


def test_publish_older_generation_after_newer(broker, topics, tmp_path):
    """Publishes generation 200 of a file, then generation 100, then 200 again, as reordered and repeated events.

    Checks that every run completes with balanced accounting, that the two
    generations share no event id, and that the repeat of generation 200
    repeats exactly its ids.
    """
    path = tmp_path / RESULT_PATH
    path.parent.mkdir(parents=True)
    path.write_bytes(INPUT.read_bytes())
    event_topic, dead_letter_topic = topics("events", "dead-letters")
    object_name = str(path.resolve())

    summaries = [publish_generation(broker, path, generation, event_topic, dead_letter_topic)
                 for generation in ("200", "100", "200")]
    keys = [message.key.decode() for message in read_topic(broker.bootstrap_servers, event_topic, expected=12,
                                                           idle_seconds=2)]
    newer = {event_id("", object_name, "200", line) for line in INPUT_EVENT_LINES}
    older = {event_id("", object_name, "100", line) for line in INPUT_EVENT_LINES}

    assert [summary["balanced"] for summary in summaries] == [True, True, True]
    assert [summary["published"] for summary in summaries] == [4, 4, 4]
    assert not newer & older
    assert sorted(keys) == sorted(list(newer) * 2 + list(older))
