"""A native Kafka sink on confluent-kafka (librdkafka) that runs on every runner.

Beam's own `apache_beam.io.kafka` is a cross-language transform that needs Java
and an expansion service fetched from Maven Central; this one needs neither.
"""

import functools
import logging
import time
from typing import NamedTuple, Optional

import apache_beam as beam
from apache_beam.metrics import Metrics
from confluent_kafka import KafkaError, KafkaException, Producer

from transforms.batch_coders import SizeEstimatingPickleCoder
from transforms.dead_letter_records import DEAD_LETTERS, make_dead_letter
from transforms.kafka_config import KafkaConnection

_LOGGER = logging.getLogger(__name__)

# librdkafka's default for message.max.bytes, the largest record a producer sends.
DEFAULT_MAX_MESSAGE_BYTES = 1_000_000

PRODUCER_DEFAULTS = {
    "enable.idempotence": "true",
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": "20",
    # Bounds how long a bundle can wait for an unreachable broker before it fails.
    "delivery.timeout.ms": "120000",
    # Bounds the local send queue at 128 MiB. With librdkafka's default of 1 GiB, the publish job's peak memory
    # depended on how far the broker fell behind: 280 to 453 MB on the same 200 MB file, 347 MB with this bound.
    "queue.buffering.max.kbytes": "131072",
}


class KafkaRecord(NamedTuple):
    """One message to produce.

    Attributes:
        key: The message key.
        value: The message value.
        headers: `(name, value)` pairs.
        source: Provenance of the record (as in a dead letter's `source`), used
            when the record has to become a dead letter.
    """

    key: bytes
    value: bytes
    headers: tuple = ()
    source: Optional[dict] = None


class KafkaRecordBatch:
    """Records with the same headers that travel as one Beam element, kept as a list of keys and one of values.

    Producing a batch costs less per record than producing `KafkaRecord`s
    one by one: no tuple per record, and the headers are converted once.

    Attributes:
        headers: The `(name, value)` pairs of every record.
        keys: The key of each record.
        values: The value of each record.
    """

    __slots__ = ("headers", "keys", "values")

    def __init__(self, headers: tuple = (), keys: Optional[list] = None, values: Optional[list] = None):
        self.headers = headers
        self.keys = [] if keys is None else keys
        self.values = [] if values is None else values

    def __reduce__(self):
        return KafkaRecordBatch, (self.headers, self.keys, self.values)

    def __len__(self):
        return len(self.values)

    def records(self) -> list[KafkaRecord]:
        """Return the batch as single `KafkaRecord`s."""
        return [KafkaRecord(key, value, self.headers) for key, value in zip(self.keys, self.values)]


class KafkaRecordBatchCoder(SizeEstimatingPickleCoder):
    """Pickles a `KafkaRecordBatch`; its size estimate is its keys and values plus 64 bytes per record."""

    element_type = KafkaRecordBatch
    _RECORD_SIZE_OVERHEAD = 64

    def estimate_size(self, value) -> int:
        return self._RECORD_SIZE_OVERHEAD * len(value) + sum(map(len, value.keys)) + sum(map(len, value.values))


beam.coders.registry.register_coder(KafkaRecordBatch, KafkaRecordBatchCoder)


class KafkaDeliveryError(RuntimeError):
    """Raised when a bundle's records were not all acknowledged by the broker."""


# librdkafka's produce() rejects a message when key + value + serialized headers + 36 bytes of record
# framing exceed message.max.bytes (measured with librdkafka 2.16.0, from confluent-kafka 2.16.1).
RECORD_FRAMING_BYTES = 36


def _varint_size(value: int) -> int:
    """Return the bytes of `value` as a zigzag varint, as Kafka record headers encode their lengths."""
    zigzag = (value << 1) ^ (value >> 63)
    size = 1
    while zigzag >= 0x80:
        zigzag >>= 7
        size += 1
    return size


def message_too_large_reason(size: int, max_message_bytes: int) -> str:
    """Return the dead-letter reason for a record of `size` bytes over the producer's limit."""
    return (f"The message is {size} bytes, larger than the maximum Kafka message size of {max_message_bytes} "
            "bytes; raise --max_message_bytes (and the broker's limit) to let it through.")


def record_size(record: KafkaRecord) -> int:
    """Return the size that librdkafka checks against message.max.bytes before it accepts a message."""
    return record_overhead(record.headers) + len(record.key or b"") + len(record.value)


def record_overhead(headers: tuple) -> int:
    """Return the part of `record_size` that is not key or value: the headers and the record framing."""
    return RECORD_FRAMING_BYTES + _headers_size(headers)


@functools.lru_cache(maxsize=256)
def _headers_size(headers: tuple) -> int:
    # Cached because jobs send the same few header tuples with every record.
    size = 0
    for name, value in headers:
        name_size = len(name.encode("utf-8") if isinstance(name, str) else name)
        value_size = len(value) if value is not None else -1
        size += _varint_size(name_size) + name_size + _varint_size(value_size) + max(value_size, 0)
    return size


@functools.lru_cache(maxsize=256)
def _headers_list(headers: tuple) -> list:
    # produce() takes a list; the same list object is reused for every record with these headers.
    return list(headers)


# Records produced between two polls for delivery reports. Only failures are reported, so polling
# after every record costs time for nothing; the flush at the end of the bundle serves the rest.
POLL_INTERVAL = 100

# `Producer.produce` is called with positional arguments in the order of its C signature: topic, value, key,
# partition, callback, on_delivery (an alias of callback), timestamp, headers. Parsing them by keyword took
# 0.6 µs of its 4.7 µs per message (confluent-kafka 2.16, 3 KB values, two headers). These are its defaults.
ANY_PARTITION = -1  # librdkafka's RD_KAFKA_PARTITION_UA: the configured partitioner picks one by key.
PRODUCE_TIME = 0  # No timestamp: librdkafka stamps the message when it is produced.


class ProduceToKafkaFn(beam.DoFn):
    """Produce each record, or each record of a batch, and finish the bundle only when all are acknowledged.

    The producer is idempotent with `acks=all`, so librdkafka's own retries
    add no duplicates. `finish_bundle` flushes and raises `KafkaDeliveryError`
    if any delivery failed or the flush timed out, so the runner retries the
    bundle: delivery is at-least-once, and a retried bundle sends the same
    keys again.

    A record larger than `max_message_bytes` is not produced. It goes to the
    `dead_letters` output at once, with the record's provenance.
    """

    def __init__(self, connection: KafkaConnection, topic: str, max_message_bytes: int,
                 namespace: str, counter_name: str, flush_timeout_seconds: float):
        self._connection = connection
        self._topic = topic
        self._max_message_bytes = max_message_bytes
        self._namespace = namespace
        self._counter_name = counter_name
        self._flush_timeout_seconds = flush_timeout_seconds
        self._producer = None

    def setup(self):
        defaults = dict(PRODUCER_DEFAULTS)
        defaults["message.max.bytes"] = str(self._max_message_bytes)
        config = self._connection.client_config(defaults)
        self._max_message_bytes = int(config.get("message.max.bytes", self._max_message_bytes))
        # A report for each successful delivery costs a Python callback, about 1 µs per message
        # (5% of the publish job's time per line), so only failures are reported and the count
        # of delivered messages is sent minus failed.
        config["delivery.report.only.error"] = True  # confluent-kafka accepts only a bool here.
        self._producer = Producer(config)
        self._delivered_counter = Metrics.counter(self._namespace, self._counter_name)
        self._oversized_counter = Metrics.counter(self._namespace, f"{self._counter_name}.oversized")
        _LOGGER.info("Kafka producer ready for topic %s at %s", self._topic, self._connection.bootstrap_servers)

    def start_bundle(self):
        self._sent = 0
        self._failures = []

    def _on_delivery(self, error, message):
        # With delivery.report.only.error, librdkafka calls this only for failed messages.
        if error is not None:
            self._failures.append((error, message.key()))

    def process(self, element):
        if isinstance(element, KafkaRecordBatch):
            records, source = zip(element.keys, element.values), None
        else:
            records, source = ((element.key, element.value),), element.source
        headers = _headers_list(element.headers)
        size_without_key_and_value = record_overhead(element.headers)
        produce, topic, on_delivery = self._producer.produce, self._topic, self._on_delivery
        for key, value in records:
            size = size_without_key_and_value + len(key or b"") + len(value)
            if size > self._max_message_bytes:
                yield self._oversized(key, value, size, source)
                continue
            try:
                produce(topic, value, key, ANY_PARTITION, on_delivery, None, PRODUCE_TIME, headers)
            except (BufferError, KafkaException):
                if not self._produce_after_error(key, value, headers):
                    yield self._oversized(key, value, size, source)
                    continue
            self._sent += 1
            if self._sent % POLL_INTERVAL == 0:
                self._producer.poll(0)

    def _produce_after_error(self, key: Optional[bytes], value: bytes, headers: list) -> bool:
        """Queue a record that produce() refused; return False if librdkafka rejects it as too large."""
        while True:
            try:
                self._producer.produce(self._topic, value, key, ANY_PARTITION, self._on_delivery, None,
                                       PRODUCE_TIME, headers)
                return True
            except BufferError:
                # The local queue is full: wait while librdkafka sends messages, serving failure reports.
                # Only failures are reported, so poll() sleeps its whole timeout; a short one resumes soon
                # after there is room.
                self._producer.poll(0.005)
            except KafkaException as error:
                if error.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE:
                    return False
                raise

    def _oversized(self, key: Optional[bytes], value: bytes, size: int, source: Optional[dict]):
        self._oversized_counter.inc()
        return beam.pvalue.TaggedOutput(DEAD_LETTERS, make_dead_letter(
            pipeline=self._namespace, step="produce_to_kafka",
            reason=message_too_large_reason(size, self._max_message_bytes),
            error_type="MessageTooLarge", source=source or {"uri": "", "object": "", "generation": "", "line": None},
            raw=value, event_id=key.decode("utf-8", "replace") if key else None))

    def finish_bundle(self):
        if not self._sent:
            return
        started = time.monotonic()
        remaining = self._producer.flush(self._flush_timeout_seconds)
        if remaining:
            raise KafkaDeliveryError(
                f"{remaining} of {self._sent} messages to topic {self._topic} were not acknowledged within "
                f"{self._flush_timeout_seconds:.0f} s; the bundle fails, so the runner retries it or fails the job.")
        if self._failures:
            error, key = self._failures[0]
            raise KafkaDeliveryError(
                f"{len(self._failures)} of {self._sent} messages to topic {self._topic} failed, "
                f"first with key {key!r}: {error}; the bundle fails, so the runner retries it or fails the job.")
        # flush() returned with nothing left in the queue, so every message was delivered or failed.
        self._delivered_counter.inc(self._sent - len(self._failures))
        _LOGGER.debug("Flushed %d messages to %s in %.3f s", self._sent, self._topic, time.monotonic() - started)

    def teardown(self):
        if self._producer is not None:
            self._producer.flush(self._flush_timeout_seconds)
            self._producer = None


class WriteToKafka(beam.PTransform):
    """Write `KafkaRecord`s or `KafkaRecordBatch`es to a topic; returns the dead letters of oversized records.

    Args:
        connection: Kafka connection settings.
        topic: The destination topic. It must exist.
        max_message_bytes: librdkafka's `message.max.bytes` for this producer;
            larger records become dead letters.
        namespace: The metrics namespace, usually the pipeline name.
        counter_name: The counter of acknowledged messages.
        flush_timeout_seconds: How long `finish_bundle` waits for
            acknowledgements before it fails the bundle.
    """

    def __init__(self, connection: KafkaConnection, topic: str,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, namespace: str = "kafka",
                 counter_name: str = "messages_written", flush_timeout_seconds: float = 150.0):
        super().__init__()
        self._fn = ProduceToKafkaFn(connection, topic, max_message_bytes, namespace, counter_name,
                                    flush_timeout_seconds)

    def expand(self, records):
        results = records | "Produce" >> beam.ParDo(self._fn).with_outputs(DEAD_LETTERS, main="delivered")
        return results[DEAD_LETTERS]
