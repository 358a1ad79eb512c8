"""The extraction steps: consumed BatchResultEvents in, keyed prompt-injection findings out.

`InjectionExtraction` chains three DoFns that the runner fuses into the
read's stage:

1. `SkipRepeatedEventsFn` drops an event id already seen (the same event
   delivered twice), before any parsing.
2. `ExtractFindingsFn` parses and validates the event, parses the judge's
   verdict and checks the quoted injection against the transcript. Every
   event ends as a negative verdict (counted), a finding, or a dead letter.
3. `SuppressRepeatedFindingsFn` drops a finding whose key was already
   written in this run.

Both repeat filters remember keys in a bounded least-recently-used cache per
DoFn instance, so repeats further apart than the cache size, on another
worker, or in another run pass through. They then carry the same key, so a
compacted topic or a keyed store still keeps the string once. A key enters
the cache only when its bundle has been committed (in bundle finalization),
so a bundle that fails and is retried is not filtered against itself.

Nothing here uses a GroupByKey: the local runner fires steps after one only
when an unbounded read ends.
"""

import collections
import logging
import threading
from typing import Optional

import apache_beam as beam
import orjson
from apache_beam.metrics import Metrics

import schemas
from transforms import validation
from transforms.dead_letter_records import DEAD_LETTERS, make_dead_letter, utc_now_text
from transforms.findings import FINDING_HEADERS, QuoteRejected, build_finding, find_quote, transcript_text
from transforms.kafka_read import ConsumedRecord
from transforms.kafka_write import KafkaRecord
from transforms.verdicts import VerdictRejected, parse_verdict

_LOGGER = logging.getLogger(__name__)

PIPELINE = "extract_injections"

DEFAULT_CACHE_SIZE = 100_000

# The dead-letter `source` of a message whose event cannot be read.
_UNKNOWN_FILE = {"uri": "", "object": "", "generation": "", "line": None}


class RecentKeys:
    """A thread-safe set of at most `capacity` keys that evicts the least recently seen first."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"The cache capacity must be at least 1, not {capacity}.")
        self._capacity = capacity
        self._keys: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    def seen(self, key) -> bool:
        """Return whether `key` is in the set; a hit makes it the most recently seen."""
        with self._lock:
            if key not in self._keys:
                return False
            self._keys.move_to_end(key)
            return True

    def add_all(self, keys) -> None:
        """Add keys, dropping the least recently seen beyond the capacity."""
        with self._lock:
            for key in keys:
                self._keys[key] = None
                self._keys.move_to_end(key)
            while len(self._keys) > self._capacity:
                self._keys.popitem(last=False)

    def __len__(self) -> int:
        return len(self._keys)


class _RepeatFilter:
    """Filter keys against a `RecentKeys` cache, adding new keys when their bundle is finalized."""

    def __init__(self, capacity: int):
        self.recent = RecentKeys(capacity)
        self._pending: Optional[set] = None

    def start_bundle(self) -> None:
        self._pending = None

    def is_repeat(self, key, bundle_finalizer) -> bool:
        """Return whether `key` was seen in an earlier committed bundle or earlier in this one."""
        if self._pending is not None and key in self._pending:
            return True
        if self.recent.seen(key):
            return True
        if self._pending is None:
            pending = set()
            self._pending = pending
            bundle_finalizer.register(lambda: self.recent.add_all(pending))
        self._pending.add(key)
        return False


class SkipRepeatedEventsFn(beam.DoFn):
    """Count each consumed event and drop one whose message key (the event id) was already seen.

    Messages without a key pass through: the event parser rejects or
    accepts them on their own.
    """

    def __init__(self, namespace: str = PIPELINE, cache_size: int = DEFAULT_CACHE_SIZE):
        self._namespace = namespace
        self._cache_size = cache_size

    def setup(self):
        self._filter = _RepeatFilter(self._cache_size)
        self._read = Metrics.counter(self._namespace, "events_read")
        self._repeated = Metrics.counter(self._namespace, "events_repeated")

    def start_bundle(self):
        self._filter.start_bundle()

    def process(self, record: ConsumedRecord, bundle_finalizer=beam.DoFn.BundleFinalizerParam):
        self._read.inc()
        if record.key and self._filter.is_repeat(record.key, bundle_finalizer):
            self._repeated.inc()
            _LOGGER.debug("Skipping repeated event %r at %s partition %d offset %d", record.key, record.topic,
                          record.partition, record.offset)
            return
        yield record


class ExtractFindingsFn(beam.DoFn):
    """Turn each consumed BatchResultEvent into a finding, a counted negative verdict, or a dead letter.

    The steps run in one DoFn, so that one dead-letter output serves them
    all; each concern lives in its own module (`transforms.verdicts`,
    `transforms.findings`).

    Outputs:
        main: finding dicts (`schemas/prompt-injection.schema.json`).
        dead_letters: events that are not JSON (step `parse_event`), do not
            match the BatchResultEvent schema (`validate_event`), give no
            verdict (`parse_verdict`: failed row, blocked prompt, truncated,
            stopped, empty or unparseable answer, invalid verdict), or whose
            quote is not in the transcript (`check_quote`).

    Counters: `verdicts_positive`, `verdicts_negative`, `findings_extracted`,
    `events_rejected` (no verdict), `quotes_rejected` (positive verdict
    without a usable quote), and `rejected.<code>` for each cause.
    """

    def __init__(self, namespace: str = PIPELINE):
        self._namespace = namespace

    def setup(self):
        validation.validator(schemas.BATCH_RESULT_EVENT)
        self._positive = Metrics.counter(self._namespace, "verdicts_positive")
        self._negative = Metrics.counter(self._namespace, "verdicts_negative")
        self._extracted = Metrics.counter(self._namespace, "findings_extracted")
        self._events_rejected = Metrics.counter(self._namespace, "events_rejected")
        self._quotes_rejected = Metrics.counter(self._namespace, "quotes_rejected")
        self._by_code = {}

    def _count_rejection(self, code: str) -> None:
        if code not in self._by_code:
            self._by_code[code] = Metrics.counter(self._namespace, f"rejected.{code}")
        self._by_code[code].inc()

    def process(self, record: ConsumedRecord):
        kafka_source = record.provenance()
        message_key = record.key.decode("utf-8", "replace") if record.key else None

        if record.value is None:
            yield self._reject_event(record, None, message_key, "parse_event", "The message has no value.",
                                     "empty_message", "EmptyMessage")
            return
        try:
            event = orjson.loads(record.value)
        except orjson.JSONDecodeError as error:
            yield self._reject_event(record, None, message_key, "parse_event",
                                     f"The message value is not valid JSON: {error}.", "invalid_event_json",
                                     "JSONDecodeError")
            return

        violation = validation.first_error(schemas.BATCH_RESULT_EVENT, event)
        if violation is not None:
            event_id = event.get("id") if isinstance(event, dict) and isinstance(event.get("id"), str) else None
            yield self._reject_event(record, None, event_id or message_key, "validate_event",
                                     f"The event does not match the BatchResultEvent schema: {violation}.",
                                     "invalid_event", "SchemaValidationError")
            return

        data = event["data"]
        source = dict(data["source"], **kafka_source)
        try:
            if data["status"] == "failed":
                raise VerdictRejected(f"The row failed in Vertex AI, so there is no verdict: {data['error']}",
                                      "row_failed", "RowFailed")
            verdict = parse_verdict(data["record"])
        except VerdictRejected as rejection:
            yield self._reject_event(record, source, event["id"], "parse_verdict", str(rejection),
                                     rejection.code, rejection.error_type)
            return

        if not verdict.is_prompt_injection:
            self._negative.inc()
            return
        self._positive.inc()

        try:
            quote = find_quote(verdict.injection_text, transcript_text(data["record"]))
        except QuoteRejected as rejection:
            self._quotes_rejected.inc()
            self._count_rejection(rejection.code)
            yield self._dead_letter(record, source, event["id"], "check_quote", str(rejection), rejection.error_type)
            return

        self._extracted.inc()
        yield build_finding(event, verdict, quote, utc_now_text(), kafka_source)

    def _reject_event(self, record: ConsumedRecord, source: Optional[dict], event_id: Optional[str], step: str,
                      reason: str, code: str, error_type: str):
        self._events_rejected.inc()
        self._count_rejection(code)
        if source is None:
            source = dict(_UNKNOWN_FILE, **record.provenance())
        return self._dead_letter(record, source, event_id, step, reason, error_type)

    def _dead_letter(self, record: ConsumedRecord, source: dict, event_id: Optional[str], step: str, reason: str,
                     error_type: str):
        _LOGGER.debug("Rejected event %s at %s partition %d offset %d in %s: %s", event_id, record.topic,
                      record.partition, record.offset, step, reason)
        return beam.pvalue.TaggedOutput(DEAD_LETTERS, make_dead_letter(
            pipeline=self._namespace, step=step, reason=reason, error_type=error_type, source=source,
            raw=record.value or b"", event_id=event_id))


class SuppressRepeatedFindingsFn(beam.DoFn):
    """Drop a finding whose hash was already seen; count `findings` and `duplicates_suppressed`."""

    def __init__(self, namespace: str = PIPELINE, cache_size: int = DEFAULT_CACHE_SIZE):
        self._namespace = namespace
        self._cache_size = cache_size

    def setup(self):
        self._filter = _RepeatFilter(self._cache_size)
        self._findings = Metrics.counter(self._namespace, "findings")
        self._duplicates = Metrics.counter(self._namespace, "duplicates_suppressed")

    def start_bundle(self):
        self._filter.start_bundle()

    def process(self, finding: dict, bundle_finalizer=beam.DoFn.BundleFinalizerParam):
        if self._filter.is_repeat(finding["hash"], bundle_finalizer):
            self._duplicates.inc()
            return
        self._findings.inc()
        yield finding


def to_finding_record(finding: dict) -> KafkaRecord:
    """Serialize a finding as a Kafka record keyed by its hash."""
    source = dict(finding["source"])
    source.update(finding.get("kafka") or {})
    return KafkaRecord(key=finding["hash"].encode("ascii"), value=orjson.dumps(finding), headers=FINDING_HEADERS,
                       source=source)


class InjectionExtraction(beam.PTransform):
    """Consumed BatchResultEvents to finding records and dead letters.

    Args:
        namespace: The metrics namespace, usually the pipeline name.
        cache_size: Keys each repeat filter remembers (event ids and finding
            hashes, each per DoFn instance).

    Returns:
        A `DoOutputsTuple` with `findings` (`KafkaRecord`s keyed by hash) and
        `dead_letters` (dead-letter dicts).
    """

    def __init__(self, namespace: str = PIPELINE, cache_size: int = DEFAULT_CACHE_SIZE):
        super().__init__()
        self._namespace = namespace
        self._cache_size = cache_size

    def expand(self, records):
        events = records | "SkipRepeatedEvents" >> beam.ParDo(SkipRepeatedEventsFn(self._namespace, self._cache_size))
        extracted = events | "ExtractFindings" >> beam.ParDo(ExtractFindingsFn(self._namespace)).with_outputs(
            DEAD_LETTERS, main="findings")
        findings = (extracted.findings
                    | "SuppressRepeatedFindings" >> beam.ParDo(
                        SuppressRepeatedFindingsFn(self._namespace, self._cache_size))
                    | "ToFindingRecords" >> beam.Map(to_finding_record))
        return {"findings": findings, DEAD_LETTERS: extracted[DEAD_LETTERS]}
