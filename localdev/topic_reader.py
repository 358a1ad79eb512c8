"""Reading a whole topic back, for the demo and the tests."""

import time
from typing import NamedTuple, Optional

from confluent_kafka import Consumer, TopicPartition


class Message(NamedTuple):
    """A consumed message with the fields tests look at."""

    key: Optional[bytes]
    value: Optional[bytes]
    headers: dict
    partition: int
    offset: int


def read_topic(bootstrap_servers: str, topic: str, expected: Optional[int] = None,
               idle_seconds: float = 3.0, timeout_seconds: float = 60.0,
               config: Optional[dict] = None) -> list[Message]:
    """Read every message of a topic from the beginning, without a consumer group.

    Reading stops when `expected` messages were read, or when no message
    arrived for `idle_seconds`, or after `timeout_seconds`. Counting by
    consuming is deliberate: Tansu's reported high watermark can lag the end.
    """
    settings = {"bootstrap.servers": bootstrap_servers, "group.id": "topic-reader",
                "enable.auto.commit": "false", "enable.partition.eof": "false"}
    settings.update(config or {})
    consumer = Consumer(settings)
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, partition, 0) for partition in metadata.partitions])
        messages: list[Message] = []
        deadline = time.monotonic() + timeout_seconds
        last_arrival = time.monotonic()
        while time.monotonic() < deadline:
            if expected is not None and len(messages) >= expected:
                break
            if time.monotonic() - last_arrival > idle_seconds:
                break
            message = consumer.poll(0.2)
            if message is None or message.error():
                continue
            last_arrival = time.monotonic()
            messages.append(Message(message.key(), message.value(), dict(message.headers() or []),
                                    message.partition(), message.offset()))
        return messages
    finally:
        consumer.close()
