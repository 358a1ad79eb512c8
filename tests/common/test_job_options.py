"""Command-line checks shared by both jobs: help, unknown arguments, option ranges, Kafka reachability."""

import pytest

from localdev.ports import free_port
from pipelines import publish_results
from pipelines.common_options import check_kafka, kafka_connection, parse_job_options
from pipelines.extract_injections import ExtractInjectionsOptions
from pipelines.publish_results import PublishResultsOptions
from transforms.kafka_config import KafkaConfigError, KafkaConnection


@pytest.mark.parametrize("job_options, option", [(PublishResultsOptions, "--source_generation"),
                                                 (ExtractInjectionsOptions, "--consumer_group")])
def test_help_lists_job_options(capsys, job_options, option):
    with pytest.raises(SystemExit) as raised:
        parse_job_options(["--help"], job_options, "A job.")

    assert raised.value.code == 0
    assert option in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["--input", "a.jsonl", "b.jsonl"],
    ["--input", "a.jsonl", "--dead_letter_topik", "x"],
    ["--input", "a.jsonl", "--sumary_json", "s.json"],
], ids=["expanded-glob", "misspelled-topic", "misspelled-summary"])
def test_unknown_arguments_rejected(argv):
    with pytest.raises(ValueError) as raised:
        parse_job_options(argv, PublishResultsOptions, "A job.")

    assert "Unknown arguments" in str(raised.value)


def test_unknown_arguments_only_logged_on_dataflow():
    options = parse_job_options(["--runner", "DataflowRunner", "--future_launcher_option", "1"],
                                PublishResultsOptions, "A job.")

    assert options is not None


@pytest.mark.parametrize("value", ["0", "999", "1000000001"])
def test_max_message_bytes_out_of_range(value):
    with pytest.raises(ValueError) as raised:
        parse_job_options(["--max_message_bytes", value], PublishResultsOptions, "A job.")

    assert "--max_message_bytes" in str(raised.value)


def test_message_max_bytes_in_kafka_config_rejected():
    options = parse_job_options(["--kafka_config", '{"message.max.bytes": "70000"}'], PublishResultsOptions, "A job.")

    with pytest.raises(KafkaConfigError) as raised:
        kafka_connection(options)

    assert "--max_message_bytes" in str(raised.value)


@pytest.mark.parametrize("value", ["0", "-5", "1", "65535"])
def test_block_size_below_minimum_rejected(value):
    with pytest.raises(ValueError) as raised:
        publish_results.run(["--input", "predictions.jsonl", "--block_size_bytes", value])

    assert "--block_size_bytes must be at least 65536 bytes" in str(raised.value)
    assert f"not {value}" in str(raised.value)


def test_check_kafka_unreachable_broker():
    connection = KafkaConnection(f"127.0.0.1:{free_port()}")

    with pytest.raises(KafkaConfigError) as raised:
        check_kafka(connection, ["events"], timeout_seconds=2)

    assert "Cannot reach Kafka" in str(raised.value)


def test_check_kafka_unknown_property(broker):
    connection = KafkaConnection(broker.bootstrap_servers, {"no.such.property": "1"})

    with pytest.raises(KafkaConfigError) as raised:
        check_kafka(connection, ["events"])

    assert "no.such.property" in str(raised.value)


def test_check_kafka_reachable_broker(broker, topics):
    (topic,) = topics("events")

    check_kafka(KafkaConnection(broker.bootstrap_servers), [topic])
