"""Counting the messages on a topic by consuming it, and removing topics after a figure.

Tansu's high watermark can lag the real end of a partition, so the benchmark
never trusts offsets for "no record dropped". It reads the topic from the
start and counts the messages and the distinct keys. A message count above
the number of distinct keys means that a retried bundle wrote duplicates,
which at-least-once delivery allows.
"""

import dataclasses
import logging
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

_LOGGER = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TopicCount:
    """The result of reading a topic to its end.

    Attributes:
        messages: Messages read.
        distinct_keys: Distinct message keys among them.
        seconds: Time taken to read them.
    """

    messages: int
    distinct_keys: int
    seconds: float


def count_topic(bootstrap_servers: str, topic: str, expected: int, *, idle_seconds: float = 5.0,
                timeout_seconds: float = 600.0) -> TopicCount:
    """Read `topic` from offset 0 of every partition, counting messages and distinct keys.

    Reading stops when no message arrived for `idle_seconds` or after
    `timeout_seconds`. After `expected` messages it waits only one more
    second for extra messages, so a complete topic does not cost the full
    idle time.
    """
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": f"benchmark-count-{topic}",
                         "enable.auto.commit": "false", "enable.partition.eof": "false",
                         "fetch.max.bytes": str(64 << 20), "max.partition.fetch.bytes": str(16 << 20)})
    started = time.monotonic()
    messages = 0
    keys = set()
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, partition, 0) for partition in metadata.partitions])
        last_arrival = time.monotonic()
        deadline = started + timeout_seconds
        while time.monotonic() < deadline:
            idle_limit = 1.0 if messages >= expected else idle_seconds
            if time.monotonic() - last_arrival > idle_limit:
                break
            batch = consumer.consume(num_messages=10_000, timeout=0.5)
            for message in batch:
                if message.error():
                    _LOGGER.warning("Consumer error on %s: %s", topic, message.error())
                    continue
                messages += 1
                keys.add(message.key())
            if batch:
                last_arrival = time.monotonic()
        else:
            _LOGGER.warning("Counting %s timed out after %.0f s at %d messages", topic, timeout_seconds, messages)
    finally:
        consumer.close()
    return TopicCount(messages, len(keys), time.monotonic() - started)


def delete_topics(bootstrap_servers: str, topics: list[str]) -> None:
    """Delete topics so that the in-memory broker can free their data; failures are logged, not raised."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    for topic, future in admin.delete_topics(topics, operation_timeout=30).items():
        try:
            future.result(timeout=60)
        except KafkaException as error:
            _LOGGER.warning("Deleting topic %s failed: %s", topic, error)
