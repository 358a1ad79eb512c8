"""The native Kafka sink against the real local broker."""

import pytest

from localdev.ports import free_port
from localdev.topic_reader import read_topic
from transforms.kafka_config import KafkaConnection
from transforms.kafka_write import KafkaDeliveryError, KafkaRecord, ProduceToKafkaFn

SOURCE = {"uri": "/tmp/p.jsonl", "bucket": "", "object": "/tmp/p.jsonl", "generation": "1", "line": 1}


def produce_bundle(fn, records):
    """Run one bundle through the DoFn; return what `process` yielded."""
    fn.start_bundle()
    outputs = [output for record in records for output in fn.process(record)]
    fn.finish_bundle()
    return outputs


def test_records_arrive_with_keys_and_headers(broker, topics):
    (topic,) = topics("sink")
    fn = ProduceToKafkaFn(KafkaConnection(broker.bootstrap_servers), topic, 1_000_000, "test", "written", 30)
    fn.setup()
    records = [KafkaRecord(f"k{index}".encode(), f"v{index}".encode(), (("schema-version", b"1"),), SOURCE)
               for index in range(50)]

    outputs = produce_bundle(fn, records)
    fn.teardown()
    messages = read_topic(broker.bootstrap_servers, topic, expected=50)

    assert outputs == []
    assert sorted(m.key for m in messages) == sorted(r.key for r in records)
    assert all(m.headers["schema-version"] == b"1" for m in messages)


def test_oversized_record_becomes_dead_letter(broker, topics):
    (topic,) = topics("sink")
    fn = ProduceToKafkaFn(KafkaConnection(broker.bootstrap_servers), topic, 1000, "test", "written", 30)
    fn.setup()

    outputs = produce_bundle(fn, [KafkaRecord(b"big", b"x" * 2000, (), SOURCE), KafkaRecord(b"ok", b"small")])
    fn.teardown()
    messages = read_topic(broker.bootstrap_servers, topic, expected=1)

    assert len(outputs) == 1
    assert outputs[0].value["error_type"] == "MessageTooLarge"
    assert outputs[0].value["source"] == SOURCE
    assert [m.key for m in messages] == [b"ok"]


def test_unreachable_broker_fails_bundle():
    connection = KafkaConnection(f"127.0.0.1:{free_port()}", {"message.timeout.ms": "1500"})
    fn = ProduceToKafkaFn(connection, "nowhere", 1_000_000, "test", "written", 10)
    fn.setup()
    fn.start_bundle()
    list(fn.process(KafkaRecord(b"k", b"v")))

    with pytest.raises(KafkaDeliveryError):
        fn.finish_bundle()
