"""Kafka configuration parsing, environment references and redaction."""

import pytest

from transforms.kafka_config import KafkaConfigError, KafkaConnection, expand_environment, parse_config_json, redact


def test_parse_config_json_converts_values():
    config = parse_config_json('{"linger.ms": 5, "enable.idempotence": true, "security.protocol": "SASL_SSL"}')

    assert config == {"linger.ms": "5", "enable.idempotence": "true", "security.protocol": "SASL_SSL"}


@pytest.mark.parametrize("text", ["[1]", '{"a": {"b": 1}}', '{"sasl.password": "hunter2"'])
def test_parse_config_json_rejects(text):
    with pytest.raises(KafkaConfigError):
        parse_config_json(text)


def test_parse_error_hides_secret_value():
    with pytest.raises(KafkaConfigError) as raised:
        parse_config_json('{"sasl.password": "hunter2"')

    assert "hunter2" not in str(raised.value)


def test_parse_config_json_reads_file(tmp_path):
    path = tmp_path / "kafka.json"
    path.write_text('{"client.id": "x"}')

    assert parse_config_json(f"@{path}") == {"client.id": "x"}


def test_expand_environment_substitutes():
    assert expand_environment({"sasl.password": "${PW}"}, {"PW": "s3cret"}) == {"sasl.password": "s3cret"}


def test_expand_environment_missing_variable():
    with pytest.raises(KafkaConfigError) as raised:
        expand_environment({"sasl.password": "${PW}"}, {})

    assert "PW" in str(raised.value)


def test_redact_hides_secrets():
    redacted = redact({"sasl.password": "s3cret", "sasl.username": "svc", "ssl.key.pem": "PEM"})

    assert redacted == {"sasl.password": "[redacted]", "sasl.username": "svc", "ssl.key.pem": "[redacted]"}


def test_connection_repr_hides_secrets():
    connection = KafkaConnection("127.0.0.1:1", {"sasl.password": "s3cret"})

    assert "s3cret" not in repr(connection)


def test_client_config_user_settings_win():
    connection = KafkaConnection("127.0.0.1:1", {"acks": "1"})

    config = connection.client_config({"acks": "all", "linger.ms": "20"})

    assert config == {"acks": "1", "linger.ms": "20", "bootstrap.servers": "127.0.0.1:1"}
