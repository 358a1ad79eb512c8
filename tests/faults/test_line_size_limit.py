"""Lines at the size limit of the publish job: the largest that becomes an event, and one byte more.

A line becomes an event only if the whole Kafka message fits in
`--max_message_bytes`: the line spliced into its envelope, the key, the
headers and librdkafka's record framing. The tests compute that largest
line from the envelope the job builds, and check both sides of the limit on
the real broker.
"""

import json
import logging
import random

from confluent_kafka import KafkaError, KafkaException, Producer

from localdev.ports import free_port
from localdev.topic_reader import read_topic
from pipelines import publish_results
from tests.faults.jobs import GENERATION, PUBLISH_RUNNER_ARGS, RESULT_PATH
from transforms.dead_letter_records import decode_raw
from transforms.events import EVENT_HEADERS, build_event
from transforms.kafka_write import KafkaRecord, record_size
from transforms.result_files import match_result_files

_LOGGER = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 20_000

PUBLISHED_AT = "2026-11-30T02:30:00.000000Z"


def padded_line(number: int, size: int) -> bytes:
    """Return a valid prediction line of exactly `size` bytes; lines of equal size differ only in the padding."""
    record = {"id": f"conv-{number:04d}", "status": "", "request": {"contents": []},
              "response": {"candidates": []}, "padding": ""}
    empty = len(json.dumps(record).encode())
    record["padding"] = "x" * (size - empty)
    line = json.dumps(record).encode()
    assert len(line) == size
    return line


def largest_event_line(path, number: int) -> int:
    """Return the size of the largest line at `number` whose event fits in `MAX_MESSAGE_BYTES`."""
    result_file = match_result_files([str(path)], GENERATION)[0]
    probe = padded_line(number, 200)
    identifier, value = build_event(result_file, number, json.loads(probe), probe, PUBLISHED_AT)
    overhead = record_size(KafkaRecord(identifier.encode("ascii"), value, EVENT_HEADERS)) - len(probe)
    return MAX_MESSAGE_BYTES - overhead


def test_record_size_matches_librdkafka():
    """Produces 300 seeded random records near the limit to a producer with no broker.

    Checks that `record_size` predicts exactly which ones librdkafka's
    produce() accepts, so no oversized record reaches librdkafka.
    """
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{free_port()}", "message.max.bytes": 5000,
                         "log_level": 0})
    rng = random.Random(5)
    mismatches = []

    for _ in range(300):
        key = b"k" * rng.randint(0, 100)
        headers = [("h" * rng.randint(1, 100), b"v" * rng.randint(0, 300) if rng.random() < 0.9 else None)
                   for _ in range(rng.randint(0, 3))]
        value = b"x" * rng.randint(4000, 5000)
        try:
            producer.produce("unused", value=value, key=key, headers=headers)
            accepted = True
        except KafkaException as error:
            assert error.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
            accepted = False
        except BufferError:
            accepted = True
        if accepted != (record_size(KafkaRecord(key, value, tuple(headers))) <= 5000):
            mismatches.append((len(key), [(len(n), v and len(v)) for n, v in headers], len(value)))
    producer.purge()

    assert mismatches == []


def test_line_size_limit_boundary(broker, topics, tmp_path):
    """Publishes lines of the largest event size, one byte more, and one byte over --max_message_bytes.

    Checks that the largest line and smaller ones become events whose message
    ends with the line unchanged. One byte more must become a MessageTooLarge
    dead letter, and a line longer than the limit a LineTooLong dead letter.
    The accounting must balance.
    """
    path = tmp_path / RESULT_PATH
    path.parent.mkdir(parents=True)
    path.write_bytes(padded_line(1, 300) + b"\n")
    largest = largest_event_line(path, 1)
    _LOGGER.info("Largest line that becomes an event: %d bytes (%d bytes of overhead, path of %d characters)",
                 largest, MAX_MESSAGE_BYTES - largest, len(str(path)))
    lines = [padded_line(1, largest - 1000), padded_line(2, largest - 1), padded_line(3, largest),
             padded_line(4, largest + 1), padded_line(5, MAX_MESSAGE_BYTES + 1)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    event_topic, dead_letter_topic = topics("events", "dead-letters")

    summary = publish_results.run([
        *PUBLISH_RUNNER_ARGS, "--input", str(path), "--source_generation", GENERATION,
        "--bootstrap_servers", broker.bootstrap_servers, "--topic", event_topic,
        "--dead_letter_topic", dead_letter_topic, "--max_message_bytes", str(MAX_MESSAGE_BYTES)])
    events = {json.loads(m.value)["data"]["source"]["line"]: m
              for m in read_topic(broker.bootstrap_servers, event_topic, expected=3, idle_seconds=1)}
    dead_letter_messages = read_topic(broker.bootstrap_servers, dead_letter_topic, expected=2, idle_seconds=1)
    dead_letters = {json.loads(m.value)["source"]["line"]: json.loads(m.value) for m in dead_letter_messages}

    assert largest == largest_event_line(path, 3)
    assert summary == {"lines_read": 5, "published": 3, "dead_letters": 2, "skipped": 0, "balanced": True}
    assert sorted(events) == [1, 2, 3]
    for number in (1, 2, 3):
        assert events[number].value.endswith(b'"record":' + lines[number - 1] + b"}}")
        assert len(events[number].value) <= MAX_MESSAGE_BYTES
    assert sorted(dead_letters) == [4, 5]
    assert dead_letters[4]["error_type"] == "MessageTooLarge"
    assert dead_letters[4]["step"] == "wrap_event"
    # The dead letter must fit in a message too, so it keeps the start of the line and its size.
    assert lines[3].startswith(decode_raw(dead_letters[4]["raw"]))
    assert dead_letters[4]["raw"]["size"] == len(lines[3])
    assert f"The message is {MAX_MESSAGE_BYTES + 1} bytes" in dead_letters[4]["reason"]
    assert dead_letters[5]["error_type"] == "LineTooLong"
    assert dead_letters[5]["raw"]["size"] == MAX_MESSAGE_BYTES + 1
    for message in dead_letter_messages:
        assert len(message.value) <= MAX_MESSAGE_BYTES
