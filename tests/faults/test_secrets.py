"""Kafka passwords given to the jobs never show up in their logs, dead letters, summaries or messages.

Tansu has no working SASL, so two paths are exercised:

* failure path: `security.protocol` SASL_PLAINTEXT with a literal password.
  Authentication fails, and the job's whole output is searched;
* success path: the password set as `sasl.password` while the protocol stays
  PLAINTEXT, so librdkafka has it in its configuration but never sends it.
  The job completes, and every place it writes to is searched: its output,
  the summary, dead-letter files and every message on every topic it wrote.

The password is resolved into the librdkafka configuration on both paths.
A password written as `${NAME}` also stays off the command line.
"""

import json

import pytest

from localdev.topic_reader import read_topic
from tests.conftest import CASES_DIR
from tests.faults.jobs import RESULT_PATH, extract_command, job_environment, publish_command, run_job

PASSWORD = "fault-test-Pw-7Qx9-never-logged"
PASSWORD_VARIABLE = "FAULT_TEST_KAFKA_PASSWORD"

SASL_SETTINGS = {"sasl.mechanism": "PLAIN", "sasl.username": "pipeline-service"}


@pytest.fixture
def mixed_input(tmp_path):
    """A result file with a positive verdict, a blocked prompt and a line that is not JSON."""
    path = tmp_path / RESULT_PATH
    path.parent.mkdir(parents=True)
    broken = (CASES_DIR / "one-broken-line.jsonl").read_bytes().split(b"\n")[2]
    path.write_bytes((CASES_DIR / "blocked.jsonl").read_bytes().rstrip(b"\n") + b"\n" + broken + b"\n")
    return path


def files_under(folder) -> dict:
    """Return `{path: bytes}` of every file below `folder`."""
    return {str(path): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def topic_bytes(bootstrap_servers: str, topic: str) -> list[bytes]:
    """Return every key, value and header value on a topic."""
    found = []
    for message in read_topic(bootstrap_servers, topic, idle_seconds=1, timeout_seconds=30):
        found += [message.key or b"", message.value or b"", *message.headers.values()]
    return found


def test_publish_sasl_failure_hides_password(broker, topics, mixed_input, tmp_path):
    """Publishes with SASL_PLAINTEXT and a literal password read from an @FILE, which Tansu rejects.

    Checks that the job stops before reading with exit 2, that its output names
    the SASL failure, and that the password is in no output line, no summary
    and no dead-letter file.
    """
    event_topic, dead_letter_topic = topics("events", "dead-letters")
    config_path = tmp_path / "kafka.json"
    config_path.write_text(json.dumps({"security.protocol": "SASL_PLAINTEXT", "sasl.password": PASSWORD,
                                       "delivery.timeout.ms": 5000, **SASL_SETTINGS}))
    summary_path = tmp_path / "summary.json"

    run = run_job(publish_command(mixed_input, broker.bootstrap_servers, event_topic, dead_letter_topic,
                                  summary_path, "--kafka_config", f"@{config_path}",
                                  "--dead_letter_path", str(tmp_path / "dead-letters" / "letters")),
                  tmp_path / "publish.log", summary_path, timeout_seconds=120)

    assert run.returncode == 2, run.output[-3000:]
    assert "SASL" in run.output
    assert PASSWORD not in run.output
    assert run.summary is None
    assert [path for path, data in files_under(tmp_path / "dead-letters").items()
            if PASSWORD.encode() in data] == []


@pytest.mark.parametrize("reference", ["environment", "literal"])
def test_publish_sasl_success_hides_password(broker, topics, mixed_input, tmp_path, reference):
    """Publishes with the password in sasl.password over PLAINTEXT, as `${NAME}` or as a literal value.

    Checks that the job completes with one dead letter, and that the password
    is in no output line, in neither summary nor dead-letter file, and in no
    key, value or header on the event and dead-letter topics.
    """
    event_topic, dead_letter_topic = topics("events", "dead-letters")
    value = f"${{{PASSWORD_VARIABLE}}}" if reference == "environment" else PASSWORD
    kafka_config = json.dumps({"sasl.password": value, **SASL_SETTINGS})
    summary_path = tmp_path / "summary.json"
    environment = {PASSWORD_VARIABLE: PASSWORD}

    run = run_job(publish_command(mixed_input, broker.bootstrap_servers, event_topic, dead_letter_topic,
                                  summary_path, "--kafka_config", kafka_config,
                                  "--dead_letter_path", str(tmp_path / "dead-letters" / "letters")),
                  tmp_path / "publish.log", summary_path, environment=job_environment(environment))
    written = (topic_bytes(broker.bootstrap_servers, event_topic)
               + topic_bytes(broker.bootstrap_servers, dead_letter_topic))
    dead_letter_files = files_under(tmp_path / "dead-letters")

    assert run.returncode == 0, run.output[-3000:]
    assert run.summary["dead_letters"] == 1
    assert "sasl.mechanism" in run.output  # librdkafka's warning shows that it received the SASL settings.
    assert PASSWORD not in run.output
    assert PASSWORD not in json.dumps(run.summary)
    assert len(dead_letter_files) == 1
    assert [path for path, data in dead_letter_files.items() if PASSWORD.encode() in data] == []
    assert len(written) > 0
    assert [data for data in written if PASSWORD.encode() in data] == []


@pytest.fixture
def published_events(broker, topics, mixed_input, tmp_path):
    """The topic of events that a publish job without secrets made from `mixed_input`."""
    event_topic, dead_letter_topic = topics("events", "dead-letters")
    run = run_job(publish_command(mixed_input, broker.bootstrap_servers, event_topic, dead_letter_topic,
                                  tmp_path / "publish-summary.json"), tmp_path / "publish.log")
    assert run.returncode == 0, run.output[-3000:]
    return event_topic


@pytest.mark.parametrize("reference", ["environment", "literal"])
def test_extract_sasl_success_hides_password(broker, topics, published_events, tmp_path, reference):
    """Extracts with the password in sasl.password over PLAINTEXT, as `${NAME}` or as a literal value.

    Checks that the job ends with a finding and a dead letter, and that the
    password is in no output line, not in the summary, and in no key, value
    or header on the finding and dead-letter topics.
    """
    finding_topic, dead_letter_topic = topics("findings", "extract-dead-letters")
    value = f"${{{PASSWORD_VARIABLE}}}" if reference == "environment" else PASSWORD
    kafka_config = json.dumps({"sasl.password": value, **SASL_SETTINGS})
    summary_path = tmp_path / "extract-summary.json"

    run = run_job(extract_command(broker.bootstrap_servers, published_events, finding_topic, dead_letter_topic,
                                  f"secrets-{reference}", summary_path, "--kafka_config", kafka_config,
                                  "--stop_after_idle_seconds", "3"),
                  tmp_path / "extract.log", summary_path, environment=job_environment({PASSWORD_VARIABLE: PASSWORD}))
    written = (topic_bytes(broker.bootstrap_servers, finding_topic)
               + topic_bytes(broker.bootstrap_servers, dead_letter_topic))

    assert run.returncode == 0, run.output[-3000:]
    assert run.summary["findings"] == 1
    assert run.summary["dead_letters"] == 1
    assert "sasl.mechanism" in run.output  # librdkafka's warning shows that it received the SASL settings.
    assert PASSWORD not in run.output
    assert PASSWORD not in json.dumps(run.summary)
    assert len(written) > 0
    assert [data for data in written if PASSWORD.encode() in data] == []


@pytest.mark.slow
def test_extract_sasl_failure_hides_password(broker, topics, published_events, tmp_path):
    """Extracts with SASL_PLAINTEXT and a literal password, which Tansu rejects.

    The job fails after its 30 s timeout for the partition metadata. Checks that the job exits non-zero, writes no summary, and that the
    password is in no output line.
    """
    finding_topic, dead_letter_topic = topics("findings", "extract-dead-letters")
    kafka_config = json.dumps({"security.protocol": "SASL_PLAINTEXT", "sasl.password": PASSWORD, **SASL_SETTINGS})
    summary_path = tmp_path / "extract-summary.json"

    run = run_job(extract_command(broker.bootstrap_servers, published_events, finding_topic, dead_letter_topic,
                                  "secrets-failure", summary_path, "--kafka_config", kafka_config,
                                  "--stop_after_idle_seconds", "3"),
                  tmp_path / "extract.log", summary_path, timeout_seconds=150)

    assert run.returncode != 0
    assert "Failed to get metadata" in run.output
    assert PASSWORD not in run.output
    assert run.summary is None
