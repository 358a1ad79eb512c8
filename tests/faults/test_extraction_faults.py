"""The extraction job killed with SIGKILL while events flow, and behind a proxy that breaks its connections.

Each test publishes generated result files in which every quoted injection
string is unique, so every positive verdict has its own finding. The
expected outcome of every event (finding, dead letter or negative verdict)
is computed in memory by the same extraction step. After the faults, a last
run without faults drains the topic. Then every expected finding hash must be
on the finding topic, every expected dead letter on the dead-letter topic
under its event id, and the consumer group's committed offset must be at the
end of the event topic.
"""

import collections
import logging
import random
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.faults.jobs import (JobProcess, expected_outcomes, extract_command, publish_command, run_job,
                               topic_values, write_unique_predictions)
from tests.faults.tcp_proxy import FaultPlan
from transforms.kafka_config import KafkaConnection
from transforms.kafka_read import committed_offsets

_LOGGER = logging.getLogger(__name__)

LINES_PER_FILE = 1000

# Small bundles, so that offsets are committed often and a kill can fall between many commits.
EXTRACT_ARGS = ("--max_bundle_records", "20", "--poll_timeout_seconds", "0.2")


def committed_offset(bootstrap_servers: str, group: str, topic: str) -> int:
    """Return the group's committed offset of partition 0, or 0 when it has none."""
    return committed_offsets(KafkaConnection(bootstrap_servers), group, topic).get(0) or 0


def drain(bootstrap_servers: str, topics: dict, group: str, tmp_path, name: str, idle_seconds: float = 3):
    """Run the extraction job until no event has arrived for `idle_seconds`."""
    summary_path = tmp_path / f"{name}-summary.json"
    return run_job(extract_command(bootstrap_servers, topics["events"], topics["findings"], topics["dead_letters"],
                                   group, summary_path, *EXTRACT_ARGS, "--stop_after_idle_seconds", str(idle_seconds)),
                   tmp_path / f"{name}.log", summary_path, timeout_seconds=180)


def check_outcomes(bootstrap_servers: str, topics: dict, group: str, final_run) -> None:
    """Assert that every event's expected outcome is on the output topics, and the group is at the end."""
    expected = expected_outcomes(bootstrap_servers, topics["events"])
    findings = topic_values(bootstrap_servers, topics["findings"])
    dead_letters = topic_values(bootstrap_servers, topics["dead_letters"])
    found_hashes = {finding["hash"] for finding in findings}
    dead_letter_events = {letter["event_id"] for letter in dead_letters}

    assert final_run.returncode == 0, final_run.output[-3000:]
    assert final_run.summary["balanced"] is True
    assert committed_offset(bootstrap_servers, group, topics["events"]) == expected.event_count
    assert expected.finding_hashes
    assert set(expected.finding_hashes.values()) - found_hashes == set()
    assert found_hashes - set(expected.finding_hashes.values()) == set()
    assert expected.dead_letter_events - dead_letter_events == set()
    assert dead_letter_events - expected.dead_letter_events == set()


class CommittedOffsetWatcher:
    """Read a consumer group's committed offset of partition 0 quickly, with one long-lived consumer.

    The consumer never joins the group and never commits, so it does not
    disturb the job that owns the group.
    """

    def __init__(self, bootstrap_servers: str, group: str, topic: str):
        self._consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": group,
                                   "enable.auto.commit": "false"})
        self._partition = TopicPartition(topic, 0)

    def offset(self) -> int:
        """Return the committed offset, or 0 when the group has none."""
        return max(self._consumer.committed([self._partition], timeout=10)[0].offset, 0)

    def close(self) -> None:
        self._consumer.close()


@pytest.mark.slow
def test_extract_killed_at_random_points(broker, topics, tmp_path):
    """Starts the extraction job 4 times while a new file is published each time, and SIGKILLs each run.

    Each kill comes at a seeded random point: as soon as the group's
    committed offset passes a random target in the first 90% of the file being
    published, plus a random 0-50 ms. Checks that at least two kills fell
    before the job had consumed that file, and the outcomes described in the
    module docstring after a last run drains the topic.
    """
    rng = random.Random(41)
    names = dict(zip(["events", "publish_dead_letters", "findings", "dead_letters"],
                     topics("events", "publish-dead-letters", "findings", "dead-letters")))
    group = "extract-kills"
    watcher = CommittedOffsetWatcher(broker.bootstrap_servers, group, names["events"])
    published = 0
    kills = []  # (committed offset after the kill, offset at the end of the file being published)

    try:
        for attempt in range(4):
            path = write_unique_predictions(tmp_path / "input", LINES_PER_FILE, seed=100 + attempt,
                                            label=f"k{attempt}")
            extraction = JobProcess(extract_command(broker.bootstrap_servers, names["events"], names["findings"],
                                                    names["dead_letters"], group, tmp_path / "unused.json",
                                                    *EXTRACT_ARGS), tmp_path / f"extract-{attempt}.log")
            publisher = JobProcess(publish_command(path, broker.bootstrap_servers, names["events"],
                                                   names["publish_dead_letters"],
                                                   tmp_path / f"publish-{attempt}.json"),
                                   tmp_path / f"publish-{attempt}.log", tmp_path / f"publish-{attempt}.json")
            target = published + rng.randint(1, LINES_PER_FILE * 9 // 10)
            deadline = time.monotonic() + 90
            try:
                while watcher.offset() < target:
                    assert extraction.running(), extraction.output()[-3000:]
                    assert time.monotonic() < deadline, f"the committed offset did not reach {target} within 90 s"
                    time.sleep(0.01)
                time.sleep(rng.uniform(0, 0.05))
            finally:
                extraction.kill()
            publish_run = publisher.wait(timeout_seconds=120)
            assert publish_run.returncode == 0, publish_run.output[-3000:]
            published += publish_run.summary["published"]
            kills.append((watcher.offset(), published))
    finally:
        watcher.close()

    final_run = drain(broker.bootstrap_servers, names, group, tmp_path, "drain")
    _LOGGER.info("Kills at (committed offset, end of file) %s; the drain read %s events", kills,
                 final_run.summary["events_read"] if final_run.summary else None)

    assert sum(1 for committed, end in kills if committed < end) >= 2, kills
    check_outcomes(broker.bootstrap_servers, names, group, final_run)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [51])
def test_extract_connection_faults(proxied_broker, tmp_path, seed):
    """Runs the extraction job through the proxy while it resets and stalls connections, up to 12 faults in 30 s.

    The plan resets a connection after a random 20 kB-1 MB and hits a random
    connection every 0.2-1 s, with stalls of 0.5-4 s in 40% of the cases.
    The run under faults stops after 12 s without a message. It may still
    end early or fail, and a run without faults then drains the topic.
    Checks that faults really happened, and the outcomes described in the
    module docstring.
    """
    names = dict(zip(["events", "publish_dead_letters", "findings", "dead_letters"],
                     proxied_broker.create_topics("events", "publish-dead-letters", "findings", "dead-letters")))
    group = "extract-proxy"
    paths = [write_unique_predictions(tmp_path / "input", LINES_PER_FILE, seed=200 + index, label=f"p{index}")
             for index in range(2)]
    for index, path in enumerate(paths):
        published = run_job(publish_command(path, proxied_broker.bootstrap_servers, names["events"],
                                            names["publish_dead_letters"], tmp_path / f"publish-{index}.json"),
                            tmp_path / f"publish-{index}.log", tmp_path / f"publish-{index}.json")
        assert published.returncode == 0, published.output[-3000:]
    proxy = proxied_broker.proxy
    faults_before = len(proxy.faults)
    plan = FaultPlan(seed=seed, max_faults=12, duration_seconds=30, reset_after_bytes=(20_000, 1_000_000),
                     random_fault_interval=(0.2, 1.0), stall_probability=0.4, stall_seconds=(0.5, 4.0))
    proxy.call_after_bytes(proxy.total_forwarded_bytes + 100_000, lambda: proxy.set_plan(plan))

    # Stalls and reconnects can keep messages away for several seconds: a short idle limit would end the read.
    first = drain(proxied_broker.bootstrap_servers, names, group, tmp_path, "under-faults", idle_seconds=12)
    proxy.clear_plan()
    faults = proxy.faults[faults_before:]
    final_run = drain(proxied_broker.bootstrap_servers, names, group, tmp_path, "drain")
    _LOGGER.info("Faults %s; run under faults exit %d, read %s events; the drain read %s events",
                 dict(collections.Counter(fault.kind for fault in faults)), first.returncode,
                 first.summary["events_read"] if first.summary else None,
                 final_run.summary["events_read"] if final_run.summary else None)

    assert faults
    check_outcomes(proxied_broker.bootstrap_servers, names, group, final_run)
