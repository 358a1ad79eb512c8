"""The step that turns batches of raw result lines into BatchResultEvents or dead letters."""

import logging
import time

import apache_beam as beam
from apache_beam.metrics import Metrics

import schemas
from transforms import validation
from transforms.dead_letter_records import DEAD_LETTERS, make_dead_letter, utc_now_text
from transforms.events import EVENT_HEADERS, event_template
from transforms.json_lines import InvalidLineError, parse_object
from transforms.jsonl_read import LineBatch, source_of
from transforms.kafka_write import (DEFAULT_MAX_MESSAGE_BYTES, KafkaRecordBatch, message_too_large_reason,
                                    record_overhead)

_LOGGER = logging.getLogger(__name__)


class BuildEventsFn(beam.DoFn):
    """Parse, validate and wrap each line of a `LineBatch` as a Kafka record of a BatchResultEvent.

    Parsing, validation and wrapping run in one DoFn, on a batch of lines,
    because each step and each element costs the runner a few microseconds,
    about as much as the work on a line. Each concern lives in its own module.

    Outputs:
        main: one `KafkaRecordBatch` of records keyed by event id per batch
            that has any event.
        dead_letters: lines that are not JSON objects (step `parse_json`), do
            not match the prediction-line schema (step `validate_schema`), or
            whose event is larger than `max_message_bytes` (step
            `wrap_event`, error type `MessageTooLarge`, with the line as raw).
    """

    def __init__(self, namespace: str = "publish_results", max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        self._namespace = namespace
        self._max_message_bytes = max_message_bytes

    def setup(self):
        self._validator = validation.validator(schemas.PREDICTION_LINE)
        self._events = Metrics.counter(self._namespace, "events_built")
        self._failed_rows = Metrics.counter(self._namespace, "rows_failed_in_vertex")
        self._too_large = Metrics.counter(self._namespace, "events_too_large")
        self._clock_second = None
        self._clock_text = None
        self.start_bundle()

    def start_bundle(self):
        # Counted per bundle: a counter update per line costs as much as the envelope.
        self._events_in_bundle = 0
        self._failed_rows_in_bundle = 0

    def finish_bundle(self):
        self._events.inc(self._events_in_bundle)
        self._failed_rows.inc(self._failed_rows_in_bundle)

    def _now(self) -> bytes:
        # Formatting the time costs more than the rest of the envelope; once a second is enough.
        second = int(time.time())
        if second != self._clock_second:
            self._clock_second = second
            self._clock_text = utc_now_text().encode("ascii")
        return self._clock_text

    def process(self, batch: LineBatch):
        key_and_value = event_template(batch.file).key_and_value
        published_at = self._now()
        is_valid = self._validator.is_valid
        size_without_key_and_value = record_overhead(EVENT_HEADERS)
        max_message_bytes = self._max_message_bytes
        records = KafkaRecordBatch(EVENT_HEADERS)
        add_key, add_value = records.keys.append, records.values.append
        for number, data in zip(batch.numbers, batch.data):
            try:
                record = parse_object(data)
            except InvalidLineError as error:
                yield self._dead_letter(batch, number, data, "parse_json", str(error), error.error_type)
                continue

            if not is_valid(record):
                violation = validation.first_error(schemas.PREDICTION_LINE, record)
                reason = f"The line does not match the prediction-line schema: {violation}."
                yield self._dead_letter(batch, number, data, "validate_schema", reason, "SchemaValidationError")
                continue

            key, value = key_and_value(number, record, data, published_at)
            size = size_without_key_and_value + len(key) + len(value)
            if size > max_message_bytes:
                self._too_large.inc()
                yield self._dead_letter(batch, number, data, "wrap_event",
                                        message_too_large_reason(size, max_message_bytes), "MessageTooLarge",
                                        event_id=key.decode("ascii"))
                continue

            if record.get("status"):
                self._failed_rows_in_bundle += 1
            add_key(key)
            add_value(value)

        self._events_in_bundle += len(records)
        if records:
            yield records

    def _dead_letter(self, batch: LineBatch, number: int, data: bytes, step: str, reason: str, error_type: str,
                     event_id=None):
        _LOGGER.debug("Rejected %s line %d at %s: %s", batch.file.uri, number, step, reason)
        return beam.pvalue.TaggedOutput(DEAD_LETTERS, make_dead_letter(
            pipeline=self._namespace, step=step, reason=reason, error_type=error_type,
            source=source_of(batch.file, number), raw=data, event_id=event_id))
