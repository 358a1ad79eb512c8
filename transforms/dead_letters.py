"""Writing dead letters to Kafka and to files, with a counter per step."""

import logging
import math
from typing import Any, Optional

import apache_beam as beam
import orjson
from apache_beam.metrics import Metrics

from transforms.dead_letter_records import decode_raw, encode_raw
from transforms.kafka_write import DEFAULT_MAX_MESSAGE_BYTES, KafkaRecord, WriteToKafka, record_overhead

_LOGGER = logging.getLogger(__name__)

DEAD_LETTER_HEADERS = (
    ("content-type", b"application/json"),
    ("schema-version", b"1"),
)


# Cuts of the raw input tried before a dead letter is left as it is. Each cut aims at the excess, so a later
# cut only corrects an estimate that fell short.
_MAX_CUTS = 8


def to_kafka_record(dead_letter: dict, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> KafkaRecord:
    """Serialize a dead letter as a Kafka record keyed by its id, within `max_message_bytes`.

    When the whole record would be larger, the record carries a shorter
    prefix of the raw input, with `raw.truncated` set and `raw.size` still the
    original size. A dead letter that is too large even without raw input is
    returned as it is, so that the sink rejects it loudly.
    """
    key = dead_letter["id"].encode("ascii")
    value = orjson.dumps(dead_letter)
    limit = max_message_bytes - record_overhead(DEAD_LETTER_HEADERS) - len(key)
    if len(value) > limit:
        value = _value_within(dead_letter, value, limit)
    return KafkaRecord(key=key, value=value, headers=DEAD_LETTER_HEADERS, source=dead_letter["source"])


def _value_within(dead_letter: dict, value: bytes, limit: int) -> bytes:
    """Return the dead letter serialized with as much of its raw input as fits in `limit` bytes."""
    raw = dead_letter["raw"]
    data = decode_raw(raw)
    prefix_raw = raw
    prefix_size = len(data)
    for _ in range(_MAX_CUTS):
        excess = len(value) - limit
        if excess <= 0 or prefix_size == 0:
            break
        # A byte of input takes from 1 byte (plain text) to 6 (an escaped control character) in the value,
        # and 4/3 in base64. So the cut is the excess divided by the average over the current prefix, plus
        # 4 bytes for base64 padding and a UTF-8 character split by the cut.
        bytes_per_input_byte = max(len(orjson.dumps(prefix_raw["data"])) - 2, 1) / prefix_size
        prefix_size = max(prefix_size - math.ceil(excess / bytes_per_input_byte) - 4, 0)
        prefix_raw = encode_raw(data[:prefix_size], size=raw["size"])
        value = orjson.dumps(dict(dead_letter, raw=prefix_raw))
    if len(value) > limit:
        _LOGGER.warning("Dead letter %s is %d bytes with %d bytes of its raw input, over the limit of %d bytes.",
                        dead_letter["id"], len(value), prefix_size, limit)
    return value


# Each DoFn instance (one per worker thread) logs the first LOG_FIRST_DEAD_LETTERS dead letters of a step at
# INFO, then one in LOG_EVERY_DEAD_LETTERS. A line for every dead letter took 6.7% of the extraction job's
# time in a py-spy profile, with 7% of the events dead letters. Every dead letter, with its reason and
# provenance, is on the dead-letter topic or in the files.
LOG_FIRST_DEAD_LETTERS = 10
LOG_EVERY_DEAD_LETTERS = 1000


class _CountDeadLettersFn(beam.DoFn):
    """Count dead letters by step, and log them with their provenance at a limited rate.

    Every dead letter increments `dead_letters` and `dead_letters.<step>`,
    so the counters are exact. The INFO log of each step and worker thread has
    the first `LOG_FIRST_DEAD_LETTERS` dead letters, then every
    `LOG_EVERY_DEAD_LETTERS`-th with the running count. The others are logged
    at DEBUG.
    """

    def __init__(self, namespace: str):
        self._namespace = namespace
        self._total = None
        self._by_step = {}
        self._seen_by_step = {}

    def setup(self):
        self._total = Metrics.counter(self._namespace, "dead_letters")

    def process(self, dead_letter: dict):
        self._total.inc()
        step = dead_letter["step"]
        if step not in self._by_step:
            self._by_step[step] = Metrics.counter(self._namespace, f"dead_letters.{step}")
            self._seen_by_step[step] = 0
        self._by_step[step].inc()
        seen = self._seen_by_step[step] + 1
        self._seen_by_step[step] = seen
        source = dead_letter["source"]
        if seen <= LOG_FIRST_DEAD_LETTERS:
            _LOGGER.info("Dead letter from %s for %s line %s: %s", step, source.get("uri"), source.get("line"),
                         dead_letter["reason"])
            if seen == LOG_FIRST_DEAD_LETTERS:
                _LOGGER.info("Logged %d dead letters from %s; from now on one in %d is logged, the rest at "
                             "DEBUG. The dead-letter output has every one.", seen, step, LOG_EVERY_DEAD_LETTERS)
        elif seen % LOG_EVERY_DEAD_LETTERS == 0:
            _LOGGER.info("Dead letter %d from %s in this worker, for %s line %s: %s", seen, step, source.get("uri"),
                         source.get("line"), dead_letter["reason"])
        else:
            _LOGGER.debug("Dead letter from %s for %s line %s: %s", step, source.get("uri"), source.get("line"),
                          dead_letter["reason"])
        yield dead_letter


class WriteDeadLetters(beam.PTransform):
    """Write dead letters to a Kafka topic, to JSONL files, or both.

    Dead letters are counted per step under `<namespace>/dead_letters` and
    `<namespace>/dead_letters.<step>`. Kafka delivery is at-least-once; a
    retried bundle writes the same dead-letter ids again.

    Args:
        namespace: The metrics namespace, usually the pipeline name.
        connection: Kafka connection settings; needed when `topic` is set.
        topic: The dead-letter topic, or None to skip Kafka.
        path_prefix: A file prefix (local or gs://) for JSONL shards, or None.
        max_message_bytes: The largest Kafka message. A dead letter that
            would be larger keeps a shorter prefix of its raw input on the
            topic (see `to_kafka_record`); the files keep all of it.
    """

    def __init__(self, namespace: str, connection=None, topic: Optional[str] = None,
                 path_prefix: Optional[str] = None, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        super().__init__()
        if not topic and not path_prefix:
            raise ValueError("Dead letters need a destination: set --dead_letter_topic or --dead_letter_path.")
        self._namespace = namespace
        self._connection = connection
        self._topic = topic
        self._path_prefix = path_prefix
        self._max_message_bytes = max_message_bytes

    def expand(self, dead_letters):
        counted = dead_letters | "CountDeadLetters" >> beam.ParDo(_CountDeadLettersFn(self._namespace))

        if self._topic:
            # A dead letter too large even without its raw input fails the job loudly.
            undeliverable = (
                counted
                | "ToDeadLetterRecords" >> beam.Map(to_kafka_record, self._max_message_bytes)
                | "ProduceDeadLetters" >> WriteToKafka(self._connection, self._topic,
                                                       max_message_bytes=self._max_message_bytes,
                                                       namespace=self._namespace,
                                                       counter_name="dead_letters_written"))
            _ = undeliverable | "FailOnUndeliverable" >> beam.Map(_raise_undeliverable)

        if self._path_prefix:
            _ = (counted
                 | "DeadLettersToJson" >> beam.Map(lambda record: orjson.dumps(record).decode("utf-8"))
                 | "WriteDeadLetterFiles" >> beam.io.WriteToText(self._path_prefix, file_name_suffix=".jsonl"))
        return counted


def _raise_undeliverable(dead_letter: Any):
    raise RuntimeError(f"A dead letter could not be written to Kafka: {dead_letter.get('reason')}")
