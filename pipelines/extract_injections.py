"""Streaming job: extract prompt-injection strings from BatchResultEvents on Kafka.

Usage:
    python -m pipelines.extract_injections --bootstrap_servers HOST:PORT \
        --input_topic batch-job-results --output_topic prompt-injections \
        --dead_letter_topic extract-injections-dlq --consumer_group extract-injections

The job reads `--input_topic` with the native `KafkaRead`, from the consumer
group's committed offsets (earliest when it has none). It turns positive
judge verdicts into findings keyed by the SHA-256 of the normalised
injection string and writes them to `--output_topic`. Every rejected event
goes to `--dead_letter_topic`. Offsets are committed after the bundle's writes are
acknowledged, so a restart loses nothing and repeats at most the bundles
that were not finalized.

It runs until SIGINT or SIGTERM, or until `--stop_after_idle_seconds` or
`--max_records` ends the read. Then it stops reading, writes and commits
what it read, writes `--summary_json`, and exits 0. The default runner is
the local FnApiRunner (what the DirectRunner uses for streaming), with one
worker, because on more workers the self-checkpointing read stops after its
first bundle.
"""

import logging
import signal
import sys
import threading
import time
from typing import Optional

# Signals that arrive while the job starts. Run as a program, the job catches SIGINT before the slow
# imports below, because one of them can swallow the KeyboardInterrupt, and the stop request is lost.
_EARLY_SIGNALS: list[int] = []
if __name__ == "__main__":
    signal.signal(signal.SIGINT, lambda signum, frame: _EARLY_SIGNALS.append(signum))

import apache_beam as beam  # noqa: E402  (after the early signal handler on purpose)
from apache_beam.options.pipeline_options import (DirectOptions, GoogleCloudOptions, PipelineOptions,
                                                  StandardOptions)
from confluent_kafka import KafkaException

from pipelines.common_options import (KafkaOptions, check_kafka, is_local_runner, kafka_connection,
                                     parse_job_options)
from pipelines.runtime_tuning import shorten_state_sampling, start_up_objects_frozen
from pipelines.summary import counter_totals, report_summary
from transforms.dead_letter_records import DEAD_LETTERS
from transforms.dead_letters import WriteDeadLetters
from transforms.extraction import DEFAULT_CACHE_SIZE, PIPELINE, InjectionExtraction
from transforms.kafka_config import KafkaConfigError, KafkaConnection
from transforms.kafka_read import KafkaRead, clear_stop, committed_offsets, request_stop
from transforms.kafka_write import DEFAULT_MAX_MESSAGE_BYTES, WriteToKafka

_LOGGER = logging.getLogger(__name__)

NAMESPACE = PIPELINE
DEFAULT_DEAD_LETTER_TOPIC = "extract-injections-dlq"

# With a backlog, a bundle ends after this many records or after --max_bundle_seconds. Every bundle ends
# with the flushes, the commit and a wait for Beam's state-sampler thread, which `shorten_state_sampling`
# bounds at 20 ms on the local runner (Beam's own period allows 200 ms). The throughput measurement of
# benchmarks/extract_figures.py (100,000 events, 2-vCPU Intel benchmark machine, before that bound) gave
# 23,400 events per second with 500 records per bundle, 31,000 with 5,000, 34,100 with 20,000 and 32,600
# with 50,000. A bundle of 20,000 takes under a second at those rates, and a failed one is read again whole.
DEFAULT_MAX_BUNDLE_RECORDS = 20_000


class ExtractInjectionsOptions(PipelineOptions):
    """Options of the extraction job.

    The Kafka options (`--bootstrap_servers`, `--kafka_config`,
    `--kafka_config_secret`, `--max_message_bytes`, `--dead_letter_topic`,
    `--summary_json`) are in `pipelines.common_options`.
    """

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--input_topic", default="batch-job-results", help="Topic of BatchResultEvents to read.")
        parser.add_argument("--output_topic", default="prompt-injections", help="Topic for prompt-injection findings.")
        parser.add_argument(
            "--consumer_group", default="extract-injections",
            help="Kafka consumer group that stores the committed offsets of the read.")
        parser.add_argument(
            "--stop_after_idle_seconds", type=float, default=None,
            help="End the read of a partition after this many seconds without a message; unset reads forever.")
        parser.add_argument(
            "--max_records", type=int, default=None,
            help="End the read after this many messages (counted per worker process); unset for no limit.")
        parser.add_argument(
            "--dedupe_cache_size", type=int, default=DEFAULT_CACHE_SIZE,
            help="Event ids and finding hashes each repeat filter remembers, per worker thread.")
        parser.add_argument(
            "--poll_timeout_seconds", type=float, default=0.5,
            help="Seconds one Kafka poll waits for messages; an idle partition costs one poll per bundle.")
        parser.add_argument(
            "--max_bundle_records", type=int, default=DEFAULT_MAX_BUNDLE_RECORDS,
            help="Messages per bundle; offsets are committed after each bundle. A bundle also ends after "
                 "--max_bundle_seconds, or as soon as the read has caught up with the partition.")
        parser.add_argument(
            "--max_bundle_seconds", type=float, default=2.0,
            help="Seconds per bundle before the read checkpoints and commits.")


def build_extract_graph(records: beam.PCollection, *, connection: KafkaConnection, output_topic: str,
                        dead_letter_topic: str, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                        cache_size: int = DEFAULT_CACHE_SIZE) -> dict:
    """Add the extraction and write steps after a PCollection of lists of `ConsumedRecord`s.

    The lists are what `KafkaRead(output_batches=True)` outputs, one per poll.

    Every step is a ParDo fused with the read, with no Flatten, GroupByKey or
    Reshuffle. The local runner runs a step after one of those only when the
    read ends, but the read commits its offsets when its own bundle is
    finalized, so a write behind one would run after the commit. Each
    dead-letter output therefore gets its own `WriteDeadLetters`.

    Returns:
        The PCollections `findings` (Kafka records of findings, after the
        repeat filter) and `dead_letters` (extraction dead letters), for
        tests to inspect.
    """
    extracted = records | "ExtractInjections" >> InjectionExtraction(NAMESPACE, cache_size, batched=True)

    oversized = extracted["findings"] | "WriteFindings" >> WriteToKafka(
        connection, output_topic, max_message_bytes=max_message_bytes, namespace=NAMESPACE,
        counter_name="findings_written")

    dead_letters = extracted[DEAD_LETTERS] | "WriteDeadLetters" >> WriteDeadLetters(
        NAMESPACE, connection, dead_letter_topic, max_message_bytes=max_message_bytes)
    _ = oversized | "WriteOversizedFindings" >> WriteDeadLetters(NAMESPACE, connection, dead_letter_topic,
                                                                 max_message_bytes=max_message_bytes)
    return {"findings": extracted["findings"], "dead_letters": dead_letters}


def summarize(result) -> dict:
    """Return the run's accounting from its metrics, with `balanced` true when nothing is missing.

    Balanced means: events read = repeated events + positive and negative
    verdicts + events rejected before a verdict, and positive verdicts =
    findings + suppressed duplicates + rejected quotes.
    """
    totals = counter_totals(result, NAMESPACE)
    summary = {
        "records_consumed": totals.get("records_consumed", 0),
        "events_read": totals.get("events_read", 0),
        "events_repeated": totals.get("events_repeated", 0),
        "verdicts_positive": totals.get("verdicts_positive", 0),
        "verdicts_negative": totals.get("verdicts_negative", 0),
        "events_rejected": totals.get("events_rejected", 0),
        "quotes_rejected": totals.get("quotes_rejected", 0),
        "findings": totals.get("findings", 0),
        "duplicates_suppressed": totals.get("duplicates_suppressed", 0),
        "findings_written": totals.get("findings_written", 0),
        "dead_letters": totals.get("dead_letters", 0),
        "dead_letters_by_reason": {name[len("rejected."):]: value for name, value in sorted(totals.items())
                                   if name.startswith("rejected.")},
    }
    oversized = totals.get("findings_written.oversized", 0)
    if oversized:
        summary["dead_letters_by_reason"]["finding_too_large"] = oversized
    summary["balanced"] = (
        summary["events_read"] == summary["events_repeated"] + summary["verdicts_positive"]
        + summary["verdicts_negative"] + summary["events_rejected"]
        and summary["verdicts_positive"] == summary["findings"] + summary["duplicates_suppressed"]
        + summary["quotes_rejected"])
    return summary


def _local_runner_settings(options: PipelineOptions) -> None:
    """Choose the FnApiRunner when no runner is set, keep it on one in-process worker, and shorten its sampling."""
    standard = options.view_as(StandardOptions)
    standard.streaming = True
    if not standard.runner or standard.runner == "DirectRunner":
        # The DirectRunner tries Prism for streaming and, when that cannot be
        # downloaded, falls back to the FnApiRunner anyway.
        standard.runner = "FnApiRunner"
    if not is_local_runner(options):
        return
    # Every bundle ends with a wait for the state sampler, and the read ends a bundle every 20,000 records.
    shorten_state_sampling()
    direct = options.view_as(DirectOptions)
    if direct.direct_num_workers not in (None, 1):
        _LOGGER.warning("Ignoring --direct_num_workers=%s: with more than one local worker the read stops "
                        "after its first bundle; using 1.", direct.direct_num_workers)
        direct.direct_num_workers = 1
    if direct.direct_running_mode == "multi_processing":
        _LOGGER.warning("Ignoring --direct_running_mode=multi_processing: the stop signal reaches only this "
                        "process; using in_memory.")
        direct.direct_running_mode = "in_memory"


class _StopOnSignals:
    """While active, the first SIGINT or SIGTERM requests a clean stop; a second one interrupts at once."""

    def __init__(self):
        self._previous = {}
        self._received = 0

    def _handle(self, signum, frame):
        self._received += 1
        if self._received > 1:
            raise KeyboardInterrupt(f"Second {signal.Signals(signum).name}: stopping without draining.")
        _LOGGER.info("Received %s: stopping the read, then writing and committing what was read.",
                     signal.Signals(signum).name)
        request_stop()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        if _EARLY_SIGNALS:
            _LOGGER.info("Received SIGINT during start-up: stopping the read at once, then writing and committing.")
            request_stop()
        return self

    def __exit__(self, *exc_info):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _committed_offsets_or_none(connection: KafkaConnection, group_id: str, topic: str) -> Optional[dict]:
    """Return the group's committed offsets by partition (as strings, for JSON), or None if the broker fails."""
    try:
        offsets = committed_offsets(connection, group_id, topic)
    except KafkaException as error:
        _LOGGER.warning("Reading the committed offsets of group %s failed: %s", group_id, error)
        return None
    return {str(partition): offset for partition, offset in offsets.items()}


def run(argv: Optional[list[str]] = None) -> dict:
    """Run the extraction job until it is stopped, and return its summary."""
    options = parse_job_options(argv, ExtractInjectionsOptions, __doc__.splitlines()[0])
    extract = options.view_as(ExtractInjectionsOptions)
    kafka = options.view_as(KafkaOptions)
    dead_letter_topic = DEFAULT_DEAD_LETTER_TOPIC if kafka.dead_letter_topic is None else kafka.dead_letter_topic
    if not dead_letter_topic:
        raise ValueError("The extraction job needs a dead-letter topic: set --dead_letter_topic.")
    if extract.max_bundle_records < 1:
        raise ValueError(f"--max_bundle_records must be at least 1, not {extract.max_bundle_records}.")
    _local_runner_settings(options)
    connection = kafka_connection(options)
    if is_local_runner(options):
        check_kafka(connection, [extract.input_topic, extract.output_topic, dead_letter_topic])

    clear_stop()
    pipeline = beam.Pipeline(options=options)
    records = pipeline | "ReadEvents" >> KafkaRead(
        connection, [extract.input_topic], extract.consumer_group, namespace=NAMESPACE,
        poll_timeout_seconds=extract.poll_timeout_seconds, max_records_per_bundle=extract.max_bundle_records,
        max_bundle_seconds=extract.max_bundle_seconds, stop_after_idle_seconds=extract.stop_after_idle_seconds,
        max_records=extract.max_records, output_batches=True)
    build_extract_graph(records, connection=connection, output_topic=extract.output_topic,
                        dead_letter_topic=dead_letter_topic, max_message_bytes=kafka.max_message_bytes,
                        cache_size=extract.dedupe_cache_size)

    _LOGGER.info("Extracting from %s (group %s) to %s, dead letters to %s, at %s", extract.input_topic,
                 extract.consumer_group, extract.output_topic, dead_letter_topic, connection.bootstrap_servers)
    started = time.monotonic()
    template_location = options.view_as(GoogleCloudOptions).template_location
    if template_location:
        # A Flex Template launch only stages the job here; its counters are in the Dataflow job's metrics.
        pipeline.run()
        _LOGGER.info("Staged the extraction job as a template at %s", template_location)
        return {}
    with _StopOnSignals(), start_up_objects_frozen():
        result = pipeline.run()
        result.wait_until_finish()
    elapsed = time.monotonic() - started

    summary = summarize(result)
    summary["elapsed_seconds"] = round(elapsed, 3)
    summary["committed_offsets"] = _committed_offsets_or_none(connection, extract.consumer_group,
                                                              extract.input_topic)
    report_summary("Extraction", summary, kafka.summary_json)
    return summary


def main(argv: Optional[list[str]] = None) -> int:
    """Command-line entry point; returns the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        summary = run(argv)
    except (KafkaConfigError, ValueError) as error:
        _LOGGER.error("%s", error)
        return 2
    if not summary:
        return 0
    print(f"events_read={summary['events_read']} verdicts_positive={summary['verdicts_positive']} "
          f"verdicts_negative={summary['verdicts_negative']} findings={summary['findings']} "
          f"duplicates_suppressed={summary['duplicates_suppressed']} dead_letters={summary['dead_letters']}")
    return 0 if summary["balanced"] else 1


if __name__ == "__main__":
    sys.exit(main())
