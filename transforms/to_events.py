"""The step that turns raw result lines into BatchResultEvents or dead letters."""

import logging
import time

import apache_beam as beam
from apache_beam.metrics import Metrics

import schemas
from transforms import validation
from transforms.dead_letter_records import DEAD_LETTERS, make_dead_letter, utc_now_text
from transforms.events import EVENT_HEADERS, build_event
from transforms.json_lines import InvalidLineError, parse_object
from transforms.jsonl_read import Line, source_of
from transforms.kafka_write import KafkaRecord

_LOGGER = logging.getLogger(__name__)


class LineToEventFn(beam.DoFn):
    """Parse, validate and wrap each line as a Kafka record of a BatchResultEvent.

    Parsing, validation and wrapping run in one DoFn because each extra step
    costs the local runner a few microseconds per element, about as much as
    the work itself. Each concern lives in its own module.

    Outputs:
        main: `KafkaRecord`s keyed by event id.
        dead_letters: lines that are not JSON objects (step `parse_json`) or
            do not match the prediction-line schema (step `validate_schema`).
    """

    def __init__(self, namespace: str = "publish_results"):
        self._namespace = namespace

    def setup(self):
        self._validator = validation.validator(schemas.PREDICTION_LINE)
        self._events = Metrics.counter(self._namespace, "events_built")
        self._failed_rows = Metrics.counter(self._namespace, "rows_failed_in_vertex")
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

    def _now(self) -> str:
        # Formatting the time costs more than the rest of the envelope; once a second is enough.
        second = int(time.time())
        if second != self._clock_second:
            self._clock_second = second
            self._clock_text = utc_now_text()
        return self._clock_text

    def process(self, line: Line):
        try:
            record = parse_object(line.data)
        except InvalidLineError as error:
            yield self._dead_letter(line, "parse_json", str(error), error.error_type)
            return

        if not self._validator.is_valid(record):
            violation = validation.first_error(schemas.PREDICTION_LINE, record)
            reason = f"The line does not match the prediction-line schema: {violation}."
            yield self._dead_letter(line, "validate_schema", reason, "SchemaValidationError")
            return

        identifier, value = build_event(line.file, line.number, record, line.data, self._now())
        if record.get("status"):
            self._failed_rows_in_bundle += 1
        self._events_in_bundle += 1
        yield KafkaRecord(key=identifier.encode("ascii"), value=value, headers=EVENT_HEADERS,
                          source=source_of(line.file, line.number))

    def _dead_letter(self, line: Line, step: str, reason: str, error_type: str):
        _LOGGER.debug("Rejected %s line %d at %s: %s", line.file.uri, line.number, step, reason)
        return beam.pvalue.TaggedOutput(DEAD_LETTERS, make_dead_letter(
            pipeline=self._namespace, step=step, reason=reason, error_type=error_type,
            source=source_of(line.file, line.number), raw=line.data))
