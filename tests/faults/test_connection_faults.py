"""The publish job with a proxy that resets or stalls its broker connections at random points.

The broker advertises the proxy's port, so every connection of the job, the
bootstrap one and the ones learned from metadata, runs through the proxy.
Each plan starts once 200 kB have passed the proxy, so that the faults hit
the produce traffic and not only the job's start-up, and each plan ends
after a bounded number of faults or 30 s, whichever comes first.

The job may complete or fail, since a fault can time a request out. Either
way the same accounting must hold. A completed run balances over every line
and leaves every event id on the topic. A failed run exits 3 with a clear
error, and then a rerun without faults completes and leaves every event id
on the topic.
"""

import collections
import json
import logging

import pytest

from tests.faults.jobs import JobProcess, expected_event_ids, missing_ids, publish_command, run_job, topic_keys
from tests.faults.tcp_proxy import FaultPlan

_LOGGER = logging.getLogger(__name__)

PLAN_START_BYTES = 200_000

# librdkafka's client-side request timeout, so that stalls longer than it time requests out.
KAFKA_CONFIG = json.dumps({"socket.timeout.ms": 2000})


def publish_with_plan(proxied_broker, predictions, tmp_path, plan: FaultPlan):
    """Publish the file while `plan` runs; rerun without faults if the first run failed.

    Returns:
        `(first_run, rerun_or_None, topic_keys, faults)`, where `faults` are
        the faults injected during the first run.
    """
    topic, dead_letter_topic = proxied_broker.create_topics("events", "dead-letters")
    summary_path = tmp_path / "summary.json"
    command = publish_command(predictions, proxied_broker.bootstrap_servers, topic, dead_letter_topic,
                              summary_path, "--kafka_config", KAFKA_CONFIG)
    proxy = proxied_broker.proxy
    faults_before = len(proxy.faults)
    proxy.call_after_bytes(proxy.total_forwarded_bytes + PLAN_START_BYTES, lambda: proxy.set_plan(plan))

    first = JobProcess(command, tmp_path / "publish.log", summary_path).wait(timeout_seconds=240)
    proxy.clear_plan()
    faults = proxy.faults[faults_before:]
    rerun = None
    if first.returncode != 0:
        rerun = run_job(command, tmp_path / "rerun.log", summary_path)
    _LOGGER.info("Plan seed %d: faults %s; first run exit %d in %.1f s; rerun exit %s", plan.seed,
                 dict(collections.Counter(fault.kind for fault in faults)), first.returncode, first.seconds,
                 rerun.returncode if rerun else None)
    return first, rerun, topic_keys(proxied_broker.bootstrap_servers, topic), faults


def check_accounting(first, rerun, keys, expected: set[str]) -> None:
    """Assert the accounting of a run under faults, whether it completed or failed."""
    if first.returncode == 0:
        assert first.summary["balanced"] is True
        assert first.summary["lines_read"] == len(expected)
        assert first.summary["published"] == len(expected)
    else:
        assert first.returncode == 3, first.output[-3000:]
        assert "Kafka did not acknowledge every message" in first.output
        assert rerun.returncode == 0, rerun.output[-3000:]
        assert rerun.summary["balanced"] is True
        assert rerun.summary["lines_read"] == len(expected)
    assert missing_ids(expected, keys) == set()


@pytest.mark.parametrize("seed", [11, 12])
def test_publish_connection_resets(proxied_broker, predictions, tmp_path, seed):
    """Resets connections after a random 20 kB-1 MB each and at random times every 0.2-1 s, up to 10 resets.

    Checks that resets really happened, and the accounting described in the
    module docstring.
    """
    plan = FaultPlan(seed=seed, max_faults=10, duration_seconds=30, reset_after_bytes=(20_000, 1_000_000),
                     random_fault_interval=(0.2, 1.0))

    first, rerun, keys, faults = publish_with_plan(proxied_broker, predictions, tmp_path, plan)

    assert [fault for fault in faults if fault.kind == "reset"]
    check_accounting(first, rerun, keys, expected_event_ids(predictions))


@pytest.mark.parametrize("seed", [21])
def test_publish_connection_stalls(proxied_broker, predictions, tmp_path, seed):
    """Stalls a random connection every 0.3-1 s for 0.5-4 s (past the 2 s request timeout), up to 6 times.

    Checks that stalls really happened, and the accounting described in the
    module docstring.
    """
    plan = FaultPlan(seed=seed, max_faults=6, duration_seconds=30, random_fault_interval=(0.3, 1.0),
                     stall_probability=1.0, stall_seconds=(0.5, 4.0))

    first, rerun, keys, faults = publish_with_plan(proxied_broker, predictions, tmp_path, plan)

    assert [fault for fault in faults if fault.kind == "stall"]
    check_accounting(first, rerun, keys, expected_event_ids(predictions))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [31, 32, 33])
def test_publish_mixed_faults(proxied_broker, predictions, tmp_path, seed):
    """Mixes byte-triggered resets with random resets and stalls (40% stalls of 0.5-4 s), up to 15 faults.

    Checks that faults really happened, and the accounting described in the
    module docstring.
    """
    plan = FaultPlan(seed=seed, max_faults=15, duration_seconds=30, reset_after_bytes=(50_000, 2_000_000),
                     random_fault_interval=(0.2, 0.8), stall_probability=0.4, stall_seconds=(0.5, 4.0))

    first, rerun, keys, faults = publish_with_plan(proxied_broker, predictions, tmp_path, plan)

    assert faults
    check_accounting(first, rerun, keys, expected_event_ids(predictions))
