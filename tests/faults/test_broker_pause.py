"""The publish job while the broker process is frozen with SIGSTOP.

The broker sits behind a `FaultProxy` that injects no faults here. The proxy
only counts bytes, so that the broker is frozen at a known point of the
produce traffic: part of the file is on the topic and the rest is still being
sent. A frozen broker keeps its sockets open and answers nothing, as a hung
broker does. librdkafka's client-side timeout of a produce request is
`socket.timeout.ms`, set here to 2 s so that a pause of a few seconds spans
several request timeouts.
"""

import json
import logging
import threading
import time

import pytest

from tests.faults.jobs import JobProcess, expected_event_ids, missing_ids, publish_command, run_job, topic_keys

_LOGGER = logging.getLogger(__name__)

REQUEST_TIMEOUT_MS = 2000

# Produce traffic that passes through the proxy before the broker is frozen.
PAUSE_AFTER_BYTES = 500_000


class BrokerPauser:
    """Freeze the broker once the proxy has forwarded some bytes, and let it run again later.

    Attributes:
        paused_at: `time.monotonic()` of the SIGSTOP, or None before it.
        resumed_at: `time.monotonic()` of the SIGCONT, or None before it.
        job_running_at_pause: Whether the job was still running when the broker froze.
    """

    def __init__(self, proxied, pause_seconds: float):
        self._proxied = proxied
        self._pause_seconds = pause_seconds
        self._job = None
        self._timer = None
        self.paused_at = None
        self.resumed_at = None
        self.job_running_at_pause = None

    def arm(self, job: JobProcess) -> None:
        """Freeze the broker after `PAUSE_AFTER_BYTES` more bytes of traffic through the proxy."""
        self._job = job
        self._proxied.proxy.call_after_bytes(self._proxied.proxy.total_forwarded_bytes + PAUSE_AFTER_BYTES,
                                             self._pause)

    def _pause(self) -> None:
        self._proxied.broker.pause()
        self.paused_at = time.monotonic()
        self.job_running_at_pause = self._job.running()
        self._timer = threading.Timer(self._pause_seconds, self.resume)
        self._timer.start()

    def resume(self) -> None:
        """Let the broker run again now, if it is frozen."""
        if self._timer is not None:
            self._timer.cancel()
        if self.paused_at is not None and self.resumed_at is None:
            self._proxied.broker.resume()
            self.resumed_at = time.monotonic()

    def wait_resumed(self) -> None:
        """Wait until the timer has let the broker run again."""
        if self._timer is not None:
            self._timer.join(timeout=self._pause_seconds + 5)
        self.resume()


def test_publish_pause_shorter_than_delivery_timeout(proxied_broker, predictions, tmp_path):
    """Freeze the broker for 8 s mid-publish, four request timeouts, well below delivery.timeout.ms.

    Checks that the job completes on its own after the broker resumes, that
    its accounting balances over every line of the file, and that every event
    id is on the topic.
    """
    topic, dead_letter_topic = proxied_broker.create_topics("events", "dead-letters")
    kafka_config = json.dumps({"socket.timeout.ms": REQUEST_TIMEOUT_MS})
    pauser = BrokerPauser(proxied_broker, pause_seconds=8)
    summary_path = tmp_path / "summary.json"

    job = JobProcess(publish_command(predictions, proxied_broker.bootstrap_servers, topic, dead_letter_topic,
                                     summary_path, "--kafka_config", kafka_config),
                     tmp_path / "publish.log", summary_path)
    pauser.arm(job)
    try:
        run = job.wait(timeout_seconds=180)
    finally:
        pauser.wait_resumed()
    expected = expected_event_ids(predictions)
    keys = topic_keys(proxied_broker.bootstrap_servers, topic)
    _LOGGER.info("Short pause: job exit %d after %.1f s, %.1f s after the resume; %d messages for %d ids",
                 run.returncode, run.seconds, run.ended_at - (pauser.resumed_at or 0), len(keys), len(expected))

    assert pauser.paused_at is not None
    assert pauser.job_running_at_pause is True
    assert run.ended_at > pauser.resumed_at
    assert "Timed out ProduceRequest" in run.output
    assert run.returncode == 0, run.output[-3000:]
    assert run.summary["balanced"] is True
    assert run.summary["lines_read"] == len(expected)
    assert run.summary["published"] == len(expected)
    assert missing_ids(expected, keys) == set()


@pytest.mark.slow
def test_publish_pause_longer_than_delivery_timeout(proxied_broker, predictions, tmp_path):
    """Freeze the broker for 15 s mid-publish with delivery.timeout.ms at 6 s, then rerun the job.

    Checks that the first run fails with exit code 3 and a message naming the
    topic and the timeout, no later than 6 s plus 15 s of slack after the
    freeze, and writes no summary. After the broker resumes, a rerun on the
    same generation completes with balanced accounting, and the topic contains
    every event id at least once.
    """
    topic, dead_letter_topic = proxied_broker.create_topics("events", "dead-letters")
    delivery_timeout_seconds = 6
    kafka_config = json.dumps({"socket.timeout.ms": REQUEST_TIMEOUT_MS,
                               "delivery.timeout.ms": delivery_timeout_seconds * 1000})
    pauser = BrokerPauser(proxied_broker, pause_seconds=15)
    summary_path = tmp_path / "summary.json"
    command = publish_command(predictions, proxied_broker.bootstrap_servers, topic, dead_letter_topic,
                              summary_path, "--kafka_config", kafka_config)

    job = JobProcess(command, tmp_path / "publish.log", summary_path)
    pauser.arm(job)
    try:
        failed = job.wait(timeout_seconds=180)
    finally:
        pauser.wait_resumed()
    rerun = run_job(command, tmp_path / "rerun.log", summary_path)
    expected = expected_event_ids(predictions)
    keys = topic_keys(proxied_broker.bootstrap_servers, topic)
    _LOGGER.info("Long pause: first run exit %d %.1f s after the freeze; rerun exit %d; %d messages for %d ids",
                 failed.returncode, failed.ended_at - pauser.paused_at, rerun.returncode, len(keys), len(expected))

    assert pauser.job_running_at_pause is True
    assert failed.returncode == 3, failed.output[-3000:]
    assert failed.ended_at - pauser.paused_at < delivery_timeout_seconds + 15
    assert failed.ended_at < pauser.resumed_at
    assert "The publish job failed because Kafka did not acknowledge every message" in failed.output
    assert f"messages to topic {topic} failed" in failed.output
    assert "Message timed out" in failed.output
    assert failed.summary is None
    assert rerun.returncode == 0, rerun.output[-3000:]
    assert rerun.summary["balanced"] is True
    assert rerun.summary["lines_read"] == len(expected)
    assert missing_ids(expected, keys) == set()
