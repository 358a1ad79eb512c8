"""The native Kafka read against the real local broker: offsets, commits, restarts and stops."""

import time

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to
from confluent_kafka import Producer

from transforms.kafka_config import KafkaConnection
from transforms.kafka_read import (ConsumedBatch, ConsumedRecord, KafkaRead, clear_stop, committed_offsets,
                                  request_stop)


def produce(broker, topic, count, partitions=1):
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for index in range(count):
        producer.produce(topic, key=f"k{index}".encode(), value=f"v{index}".encode(), partition=index % partitions)
    assert producer.flush(15) == 0


def read(broker, topic, group, expected=None, after_read=None, **read_options):
    """Run a pipeline that reads `topic` until idle; check `(partition, value)` pairs against `expected`."""
    read_options.setdefault("stop_after_idle_seconds", 1.5)
    options = PipelineOptions(["--runner=FnApiRunner", "--streaming"])
    clear_stop()
    with beam.Pipeline(options=options) as pipeline:
        records = pipeline | KafkaRead(KafkaConnection(broker.bootstrap_servers), [topic], group,
                                       poll_timeout_seconds=0.2, max_records_per_bundle=7, **read_options)
        if after_read is not None:
            records = records | "AfterRead" >> beam.Map(after_read)
        if expected is not None:
            pairs = records | beam.Map(lambda record: (record.partition, record.value))
            assert_that(pairs, equal_to(expected))


def values(first, last, partitions=1):
    return [(index % partitions, f"v{index}".encode()) for index in range(first, last)]


def test_read_all_partitions_from_earliest(broker, topics):
    (topic,) = topics("read", partitions=3)
    produce(broker, topic, 30, partitions=3)
    read(broker, topic, "group-a", expected=values(0, 30, partitions=3))


def test_read_commits_offsets(broker, topics):
    (topic,) = topics("read", partitions=3)
    produce(broker, topic, 30, partitions=3)
    read(broker, topic, "group-a")
    connection = KafkaConnection(broker.bootstrap_servers)
    assert committed_offsets(connection, "group-a", topic) == {0: 10, 1: 10, 2: 10}


def test_read_resumes_after_max_records(broker, topics):
    (topic,) = topics("read")
    produce(broker, topic, 30)
    read(broker, topic, "group-b", expected=values(0, 12), max_records=12)
    read(broker, topic, "group-b", expected=values(12, 30))


def test_read_other_group_starts_over(broker, topics):
    (topic,) = topics("read")
    produce(broker, topic, 5)
    read(broker, topic, "group-c")
    read(broker, topic, "group-d", expected=values(0, 5))


def test_stop_request_commits_what_was_read(broker, topics):
    (topic,) = topics("read")
    produce(broker, topic, 40)

    def stop_at_fifth(record):
        if record.offset == 4:
            request_stop()
        return record

    read(broker, topic, "group-e", after_read=stop_at_fifth, stop_after_idle_seconds=30)
    clear_stop()
    committed = committed_offsets(KafkaConnection(broker.bootstrap_servers), "group-e", topic)[0]
    # The stop takes effect at the end of the bundle that contains offset 4 (bundles of 7).
    assert committed == 7
    read(broker, topic, "group-e", expected=values(7, 40))


def test_read_rejects_missing_group():
    with pytest.raises(ValueError):
        KafkaRead(KafkaConnection("127.0.0.1:1"), ["t"], "")


def test_slow_bundle_is_not_idleness(broker, topics):
    (topic,) = topics("read")
    produce(broker, topic, 14)

    def slow_after_first_bundle(record):
        if record.offset == 6:
            time.sleep(0.8)  # Longer than the idle limit, after the last record of the first bundle of 7.
        return record

    # Only a poll that finds nothing counts as idle, so the second bundle is still read.
    read(broker, topic, "group-slow", expected=values(0, 14), after_read=slow_after_first_bundle,
         stop_after_idle_seconds=0.5)


def test_read_outputs_batches(broker, topics):
    (topic,) = topics("read", partitions=3)
    produce(broker, topic, 60, partitions=3)
    options = PipelineOptions(["--runner=FnApiRunner", "--streaming"])
    clear_stop()

    def check_batch(batch):
        assert isinstance(batch, ConsumedBatch)
        assert 0 < len(batch) <= 7
        assert len({record.partition for record in batch}) == 1
        assert [record.offset for record in batch] == sorted(record.offset for record in batch)
        return batch

    with beam.Pipeline(options=options) as pipeline:
        batches = pipeline | KafkaRead(KafkaConnection(broker.bootstrap_servers), [topic], "group-batches",
                                       poll_timeout_seconds=0.2, max_records_per_bundle=7,
                                       stop_after_idle_seconds=1.5, output_batches=True)
        pairs = (batches
                 | "Check" >> beam.Map(check_batch)
                 | beam.FlatMap(lambda batch: [(record.partition, record.value) for record in batch]))
        assert_that(pairs, equal_to(values(0, 60, partitions=3)))
    connection = KafkaConnection(broker.bootstrap_servers)
    assert committed_offsets(connection, "group-batches", topic) == {0: 20, 1: 20, 2: 20}


def test_consumed_batch_coder_round_trip():
    batch = ConsumedBatch([ConsumedRecord("t", 0, 5, b"k", b"v" * 100, 1764468000000, (("h", b"1"),)),
                           ConsumedRecord("t", 0, 6, None, None, None, ())])
    coder = beam.coders.registry.get_coder(ConsumedBatch)
    decoded = coder.decode(coder.encode(batch))
    assert isinstance(decoded, ConsumedBatch)
    assert decoded == batch
    # The size is estimated from the keys and values, without encoding the batch.
    assert coder.estimate_size(batch) == 2 * 64 + 1 + 100
