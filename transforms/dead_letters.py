"""Writing dead letters to Kafka and to files, with a counter per step."""

import logging
from typing import Any, Optional

import apache_beam as beam
import orjson
from apache_beam.metrics import Metrics

from transforms.kafka_write import KafkaRecord, WriteToKafka

_LOGGER = logging.getLogger(__name__)

DEAD_LETTER_HEADERS = (
    ("content-type", b"application/json"),
    ("schema-version", b"1"),
)


def to_kafka_record(dead_letter: dict) -> KafkaRecord:
    """Serialize a dead letter as a Kafka record keyed by its id."""
    return KafkaRecord(key=dead_letter["id"].encode("ascii"), value=orjson.dumps(dead_letter),
                       headers=DEAD_LETTER_HEADERS, source=dead_letter["source"])


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
    """

    def __init__(self, namespace: str, connection=None, topic: Optional[str] = None,
                 path_prefix: Optional[str] = None):
        super().__init__()
        if not topic and not path_prefix:
            raise ValueError("Dead letters need a destination: set --dead_letter_topic or --dead_letter_path.")
        self._namespace = namespace
        self._connection = connection
        self._topic = topic
        self._path_prefix = path_prefix

    def expand(self, dead_letters):
        counted = dead_letters | "CountDeadLetters" >> beam.ParDo(_CountDeadLettersFn(self._namespace))

        if self._topic:
            # Dead letters carry at most MAX_RAW_BYTES of input, so they fit in a
            # message; one that still does not fit fails the bundle loudly.
            undeliverable = (
                counted
                | "ToDeadLetterRecords" >> beam.Map(to_kafka_record)
                | "ProduceDeadLetters" >> WriteToKafka(self._connection, self._topic, namespace=self._namespace,
                                                       counter_name="dead_letters_written"))
            _ = undeliverable | "FailOnUndeliverable" >> beam.Map(_raise_undeliverable)

        if self._path_prefix:
            _ = (counted
                 | "DeadLettersToJson" >> beam.Map(lambda record: orjson.dumps(record).decode("utf-8"))
                 | "WriteDeadLetterFiles" >> beam.io.WriteToText(self._path_prefix, file_name_suffix=".jsonl"))
        return counted


def _raise_undeliverable(dead_letter: Any):
    raise RuntimeError(f"A dead letter could not be written to Kafka: {dead_letter.get('reason')}")
