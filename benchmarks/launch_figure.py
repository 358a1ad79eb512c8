"""The launch figure: time from a finalize event reaching the function to the first event on Kafka.

The set-up is the local one: fake-gcs-server contains the results bucket, and the
launcher function (`function_launcher/main.py`) runs under
functions-framework with `LAUNCHER=local`. That launcher starts the publish
job as a child process on the local runner, and the job reads the object
through `gs://` from the emulator.

Each repetition uploads the file under a new object name, then posts the
finalize CloudEvent that Eventarc would send (binary content mode). The
clock starts just before the POST. A consumer of the event topic, running
since before the POST, stops the clock when the first event of that object
generation arrives. The figure also gives the HTTP response time (the
function returns once the job process has started) and the job's own
phases from its log. Upload time is not part of the figure, because Cloud
Storage sends the event only after the object is complete.
"""

import json
import logging
import os
import statistics
import threading
import time
import uuid

import orjson
from confluent_kafka import Consumer, TopicPartition

from benchmarks.publish_job import log_phase_times
from benchmarks.topics import delete_topics

_LOGGER = logging.getLogger(__name__)

BUCKET = "benchmark-results"
OBJECT_FOLDER = "results/2026/11/30/prediction-model-2026-11-30T02:00:00.000000Z"


class _FirstEventWatcher(threading.Thread):
    """Reads the event topic and stores when the first event of each object generation arrived."""

    def __init__(self, bootstrap_servers: str, topic: str, stop_after_seconds: float):
        super().__init__(name=f"first-event-{topic}", daemon=True)
        self._bootstrap_servers = bootstrap_servers
        self._topic = topic
        self._stop_after_seconds = stop_after_seconds
        self._stop_event = threading.Event()
        self.first_arrival: dict[str, float] = {}

    def run(self):
        consumer = Consumer({"bootstrap.servers": self._bootstrap_servers, "group.id": f"benchmark-{self._topic}",
                             "enable.auto.commit": "false", "enable.partition.eof": "false",
                             "fetch.wait.max.ms": "10"})
        deadline = time.monotonic() + self._stop_after_seconds
        try:
            partitions = consumer.list_topics(self._topic, timeout=10).topics[self._topic].partitions
            consumer.assign([TopicPartition(self._topic, partition, 0) for partition in partitions])
            while not self._stop_event.is_set() and time.monotonic() < deadline:
                for message in consumer.consume(num_messages=1000, timeout=0.05):
                    arrived = time.time()
                    if message.error():
                        continue
                    generation = orjson.loads(message.value())["data"]["source"]["generation"]
                    self.first_arrival.setdefault(generation, arrived)
        finally:
            consumer.close()

    def stop(self):
        self._stop_event.set()
        self.join(timeout=30)


def _job_phases(log_path: str, started_at: float) -> dict:
    """Return the job's start-up and pipeline start from its log, in seconds after `started_at`."""
    publishing, summarized, runner = log_phase_times(log_path)
    return {"job_publishing_log_seconds": round(publishing - started_at, 3) if publishing else None,
            "summary_seconds": round(summarized - started_at, 3) if summarized else None,
            "runner": runner}


def measure_launch(context, input_path: str) -> dict:
    """Run `context.args.launch_repeat` finalize events through the local function and time each."""
    from function_launcher.job_names import publish_job_name
    from function_launcher.local_launcher import JobFiles, wait_for_job
    from localdev.automation import FunctionServer
    from localdev.gcs_emulator import GcsEmulator, finalized_event, post_event

    bootstrap = context.broker.bootstrap_servers
    event_topic, dead_letter_topic = context.new_topic("launch-events"), context.new_topic("launch-dlq")
    state_dir = os.path.join(context.work_dir, f"launcher-state-{uuid.uuid4().hex[:6]}")
    with open(input_path, "rb") as stream:
        data = stream.read()

    runs = []
    watcher = _FirstEventWatcher(bootstrap, event_topic, stop_after_seconds=context.job_timeout_seconds)
    with GcsEmulator(log_path=os.path.join(context.work_dir, "fake-gcs-server.log")) as emulator:
        emulator.create_bucket(BUCKET)
        environment = {"RESULTS_BUCKET": BUCKET, "LAUNCHER": "local", "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                       "KAFKA_TOPIC": event_topic, "DEAD_LETTER_TOPIC": dead_letter_topic,
                       "LOCAL_STATE_DIR": state_dir, **emulator.environment()}
        with FunctionServer(environment, os.path.join(context.work_dir, "function.log")) as function:
            watcher.start()
            try:
                for repetition in range(1, context.args.launch_repeat + 1):
                    object_name = f"{OBJECT_FOLDER}-run{repetition}/predictions.jsonl"
                    resource = emulator.upload(BUCKET, object_name, data, "application/jsonl")
                    generation = str(resource["generation"])
                    job_name = publish_job_name(object_name, generation)

                    posted_at = time.time()
                    status, body = post_event(function.url, finalized_event(resource))
                    responded_at = time.time()
                    if status != 200:
                        raise RuntimeError(f"The function returned HTTP {status} for the finalize event: {body[:300]!r}; "
                                           f"see {os.path.join(context.work_dir, 'function.log')}.")
                    exit_code = wait_for_job(state_dir, job_name, context.job_timeout_seconds)
                    deadline = time.monotonic() + 30
                    while generation not in watcher.first_arrival and time.monotonic() < deadline:
                        time.sleep(0.05)
                    first_event = watcher.first_arrival.get(generation)
                    log_path = str(JobFiles.of(state_dir, job_name).log)
                    run = {"object": object_name, "generation": generation, "job_exit_code": exit_code,
                           "http_response_seconds": round(responded_at - posted_at, 3),
                           "first_event_seconds": round(first_event - posted_at, 3) if first_event else None,
                           **_job_phases(log_path, posted_at), "job_log": log_path}
                    _LOGGER.info("Launch %d: first event %.2f s after the finalize event (HTTP answer after %.3f s)",
                                 repetition, run["first_event_seconds"] or float("nan"), run["http_response_seconds"])
                    runs.append(run)
            finally:
                watcher.stop()
    delete_topics(bootstrap, [event_topic, dead_letter_topic])

    times = [run["first_event_seconds"] for run in runs if run["first_event_seconds"] is not None]
    with open(os.path.join(context.work_dir, "launch.json"), "w", encoding="utf-8") as stream:
        json.dump(runs, stream, indent=1)
    return {
        "file": {"path": input_path, "size_bytes": len(data)},
        "runs": runs,
        "median_first_event_seconds": statistics.median(times) if times else None,
        "min_first_event_seconds": min(times) if times else None,
        "max_first_event_seconds": max(times) if times else None,
    }
