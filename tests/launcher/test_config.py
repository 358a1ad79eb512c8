"""Reading and checking the launcher's environment variables."""

import ast
import pathlib

import pytest

from function_launcher import config as config_module
from function_launcher.config import ENVIRONMENT_VARIABLES, ConfigError, load_config

LOCAL = {"RESULTS_BUCKET": "results-test", "LAUNCHER": "local", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"}
DATAFLOW = {
    "RESULTS_BUCKET": "results-test",
    "GCP_PROJECT": "test-project",
    "DATAFLOW_REGION": "europe-west1",
    "TEMPLATE_GCS_PATH": "gs://templates/publish_results.json",
    "KAFKA_BOOTSTRAP_SERVERS": "broker:9092",
}


class RecordingEnvironment(dict):
    """A mapping that records every name read from it."""

    def __init__(self, values):
        super().__init__(values)
        self.read_names = set()

    def get(self, name, default=None):
        self.read_names.add(name)
        return super().get(name, default)

    def __getitem__(self, name):
        self.read_names.add(name)
        return super().__getitem__(name)


def test_config_local_defaults():
    config = load_config(LOCAL)
    assert config.topic == "batch-job-results"
    assert config.dead_letter_topic == "batch-job-results-dlq"
    assert config.launcher == "local"


def test_config_launcher_defaults_to_dataflow():
    assert load_config(DATAFLOW).launcher == "dataflow"


def test_config_reads_every_listed_name():
    environment = RecordingEnvironment(DATAFLOW)
    load_config(environment)
    assert environment.read_names == set(ENVIRONMENT_VARIABLES)


def test_config_lists_every_name_in_source():
    source = pathlib.Path(config_module.__file__).read_text(encoding="utf-8")
    read_calls = {
        node.args[0].value for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "read"
        and node.args and isinstance(node.args[0], ast.Constant)
    }
    assert read_calls == set(ENVIRONMENT_VARIABLES)


def test_config_full_dataflow_settings():
    config = load_config({**DATAFLOW, "DATAFLOW_MAX_WORKERS": "8", "DATAFLOW_NETWORK": "vpc",
                          "KAFKA_CONFIG": '{"security.protocol": "SASL_SSL"}',
                          "KAFKA_CONFIG_SECRET": "projects/p/secrets/kafka/versions/latest"})
    assert config.max_workers == 8
    assert config.network == "vpc"
    assert config.kafka_config_secret == "projects/p/secrets/kafka/versions/latest"


def test_config_empty_values_unset():
    config = load_config({**DATAFLOW, "DATAFLOW_NETWORK": "", "DEAD_LETTER_PATH": "  ", "KAFKA_TOPIC": ""})
    assert config.network is None
    assert config.dead_letter_path is None
    assert config.topic == "batch-job-results"


# (environment, text the error must contain)
INVALID = [
    ({}, "RESULTS_BUCKET is missing"),
    ({**LOCAL, "RESULTS_BUCKET": "gs://results-test"}, "without gs://"),
    ({**LOCAL, "RESULTS_BUCKET": "Results"}, "not a valid bucket name"),
    ({**LOCAL, "LAUNCHER": "docker"}, "LAUNCHER='docker' is invalid"),
    ({**LOCAL, "KAFKA_BOOTSTRAP_SERVERS": ""}, "KAFKA_BOOTSTRAP_SERVERS is missing"),
    ({**LOCAL, "KAFKA_CONFIG": "{not json"}, "KAFKA_CONFIG is not valid JSON"),
    ({**LOCAL, "KAFKA_CONFIG": "[1, 2]"}, "must be a JSON object"),
    ({**LOCAL, "KAFKA_CONFIG": '{"acks": ["all"]}'}, "'acks' must be a string, number or boolean"),
    ({**LOCAL, "KAFKA_CONFIG": '{"sasl.password": "x"}'}, "contains a credential"),
    ({**LOCAL, "KAFKA_CONFIG_SECRET": "kafka-secret"}, "expected a secret version"),
    ({**LOCAL, "DATAFLOW_MAX_WORKERS": "many"}, "not an integer"),
    ({**LOCAL, "DATAFLOW_MAX_WORKERS": "0"}, "must be at least 1"),
    ({**DATAFLOW, "GCP_PROJECT": ""}, "GCP_PROJECT is missing"),
    ({**DATAFLOW, "DATAFLOW_REGION": ""}, "DATAFLOW_REGION is missing"),
    ({**DATAFLOW, "TEMPLATE_GCS_PATH": ""}, "TEMPLATE_GCS_PATH is missing"),
    ({**DATAFLOW, "TEMPLATE_GCS_PATH": "/tmp/spec.json"}, "need a gs:// path"),
    ({**DATAFLOW, "DATAFLOW_TEMP_LOCATION": "bucket/tmp"}, "DATAFLOW_TEMP_LOCATION='bucket/tmp' is invalid"),
    ({**DATAFLOW, "DEAD_LETTER_PATH": "/tmp/dead"}, "DEAD_LETTER_PATH='/tmp/dead' is invalid"),
    ({**DATAFLOW, "DATAFLOW_API_ENDPOINT": "127.0.0.1:80"}, "expected an http:// or https:// URL"),
]


@pytest.mark.parametrize("environment, message", INVALID)
def test_config_invalid_rejected(environment, message):
    with pytest.raises(ConfigError) as raised:
        load_config(environment)
    assert message in str(raised.value)


def test_config_lists_every_problem():
    with pytest.raises(ConfigError) as raised:
        load_config({"LAUNCHER": "dataflow"})
    lines = str(raised.value).splitlines()
    assert len(lines) == 1 + 5  # The heading, then bucket, bootstrap servers, project, region, template path.


def test_config_error_hides_kafka_config_value():
    with pytest.raises(ConfigError) as raised:
        load_config({**LOCAL, "KAFKA_CONFIG": '{"sasl.username": "alice", broken'})
    assert "alice" not in str(raised.value)


def test_config_local_dead_letter_path_may_be_local():
    assert load_config({**LOCAL, "DEAD_LETTER_PATH": "/tmp/dead"}).dead_letter_path == "/tmp/dead"
