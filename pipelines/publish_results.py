"""Batch job: publish every line of Vertex AI batch result files as BatchResultEvents on Kafka.

Usage:
    python -m pipelines.publish_results --input GLOB --bootstrap_servers HOST:PORT \
        --topic batch-job-results --dead_letter_topic batch-job-results-dlq

`--input` takes local paths or `gs://` URIs with globs and can be repeated, so
the job also serves as a backfill tool over many days. Each line ends as
exactly one of: an event on `--topic`, a dead letter with a reason, or a
counted skip (blank lines). The summary checks that lines read = published +
dead letters + skipped. The default runner is the FnApiRunner, the local
DirectRunner's in-process engine for batch pipelines.

Exit codes:
    0: every line is accounted for.
    1: the accounting does not balance, or an unexpected error (with its traceback).
    2: invalid options, invalid Kafka settings, or an input file or generation that is missing.
    3: Kafka did not acknowledge every message. The job wrote no summary and can be rerun.
"""

import argparse
import logging
import sys
from typing import Optional

import apache_beam as beam
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions

from pipelines.runtime_tuning import shorten_state_sampling, start_up_objects_frozen
from pipelines.summary import counter_totals, report_summary
from transforms.dead_letter_records import DEAD_LETTERS
from transforms.dead_letters import WriteDeadLetters
from transforms.jsonl_read import DEFAULT_BLOCK_SIZE, ReadResultLines
from pipelines.common_options import (KafkaOptions, check_kafka, is_local_runner, kafka_connection,
                                     parse_job_options)
from transforms.kafka_config import KafkaConfigError, KafkaConnection
from transforms.kafka_write import DEFAULT_MAX_MESSAGE_BYTES, KafkaDeliveryError, KafkaRecordBatch, WriteToKafka
from transforms.result_files import ResultFile, match_result_files
from transforms.to_events import BuildEventsFn

_LOGGER = logging.getLogger(__name__)

NAMESPACE = "publish_results"
DEFAULT_DEAD_LETTER_TOPIC = "batch-job-results-dlq"

# A block size that no file reaches, so each file is one block.
WHOLE_FILE_BLOCK_SIZE = 1 << 62

# Each block is one element and one pass over its bytes to count lines, so tiny blocks only cost time and
# memory: 1-byte blocks of the 2.8 MB sample file took more than 3 GB of RSS.
MIN_BLOCK_SIZE = 64 << 10


class PublishResultsOptions(PipelineOptions):
    """Options of the publish job; each is also a Flex Template parameter.

    The Kafka options (`--bootstrap_servers`, `--kafka_config`,
    `--kafka_config_secret`, `--max_message_bytes`, `--dead_letter_topic`,
    `--summary_json`) are in `pipelines.common_options`.
    """

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--input", action="append", default=None,
            help="Result file path or glob, local or gs://BUCKET/...; repeat for several globs.")
        parser.add_argument(
            "--source_generation", default=None,
            help="Object generation to read; only with an --input that names one file.")
        parser.add_argument("--topic", default="batch-job-results", help="Topic for BatchResultEvents.")
        parser.add_argument(
            "--dead_letter_path", default=None,
            help="Optional file prefix (local or gs://) for dead letters as JSONL files.")
        parser.add_argument(
            "--block_size_bytes", type=int, default=None,
            help=(f"Files larger than this are read in parallel blocks of this many bytes (default "
                  f"{DEFAULT_BLOCK_SIZE}). On a local runner the default reads each file whole, because one "
                  "local worker gains nothing from blocks and would pay for the pass that counts their lines."))


def build_publish_graph(pipeline: beam.Pipeline, files: list[ResultFile], *, connection: KafkaConnection,
                        topic: str, dead_letter_topic: Optional[str], dead_letter_path: Optional[str] = None,
                        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                        block_size: int = DEFAULT_BLOCK_SIZE) -> dict:
    """Add the publish steps to `pipeline`.

    Returns:
        The PCollections `lines` (`LineBatch`es), `records`
        (`KafkaRecordBatch`es of events) and `dead_letters`, for tests to inspect.
    """
    read = pipeline | "ReadResultLines" >> ReadResultLines(
        files, max_line_bytes=max_message_bytes, block_size=block_size, namespace=NAMESPACE)

    built = read.lines | "BuildEvents" >> beam.ParDo(
        BuildEventsFn(NAMESPACE, max_message_bytes)).with_output_types(KafkaRecordBatch).with_outputs(
            DEAD_LETTERS, main="records")

    oversized = built.records | "WriteEvents" >> WriteToKafka(
        connection, topic, max_message_bytes=max_message_bytes, namespace=NAMESPACE,
        counter_name="published")

    dead_letters = (
        (read[DEAD_LETTERS], built[DEAD_LETTERS], oversized)
        | "CollectDeadLetters" >> beam.Flatten()
        | "WriteDeadLetters" >> WriteDeadLetters(NAMESPACE, connection, dead_letter_topic or None,
                                                 dead_letter_path, max_message_bytes=max_message_bytes))
    return {"lines": read.lines, "records": built.records, "dead_letters": dead_letters}


def _block_size(publish: PublishResultsOptions, options: PipelineOptions) -> int:
    if publish.block_size_bytes is not None:
        return publish.block_size_bytes
    return WHOLE_FILE_BLOCK_SIZE if is_local_runner(options) else DEFAULT_BLOCK_SIZE


def summarize(result) -> dict:
    """Return the run's accounting from its metrics, with `balanced` true when nothing is missing."""
    totals = counter_totals(result, NAMESPACE)
    summary = {
        "lines_read": totals.get("lines_read", 0),
        "published": totals.get("published", 0),
        "dead_letters": totals.get("dead_letters", 0),
        "skipped": totals.get("lines_skipped_blank", 0),
    }
    summary["balanced"] = summary["lines_read"] == summary["published"] + summary["dead_letters"] + summary["skipped"]
    return summary


def run(argv: Optional[list[str]] = None) -> dict:
    """Run the publish job from command-line arguments and return its summary."""
    options = parse_job_options(argv, PublishResultsOptions, __doc__.splitlines()[0])
    publish = options.view_as(PublishResultsOptions)
    kafka = options.view_as(KafkaOptions)
    dead_letter_topic = DEFAULT_DEAD_LETTER_TOPIC if kafka.dead_letter_topic is None else kafka.dead_letter_topic
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        # The DirectRunner's own in-process engine. The DirectRunner itself would first try
        # to download the Prism runner, which is a download at run time that fails offline.
        standard.runner = "FnApiRunner"

    if not publish.input:
        raise ValueError("--input is missing: give a result file path or glob, local or gs://.")
    if publish.block_size_bytes is not None and publish.block_size_bytes < MIN_BLOCK_SIZE:
        raise ValueError(f"--block_size_bytes must be at least {MIN_BLOCK_SIZE} bytes (64 KiB), "
                         f"not {publish.block_size_bytes}.")
    if publish.source_generation is not None and not str(publish.source_generation).isdigit():
        raise ValueError(f"--source_generation must be a decimal object generation, not {publish.source_generation!r}.")
    files = match_result_files(publish.input, publish.source_generation)
    _LOGGER.info("Publishing %d file(s) to topic %s: %s", len(files), publish.topic,
                 ", ".join(f"{item.uri}#{item.generation}" for item in files))
    connection = kafka_connection(options)
    if is_local_runner(options):
        check_kafka(connection, [publish.topic, dead_letter_topic])
        # The main stage's single bundle would end with a wait of up to 200 ms for Beam's state sampler.
        shorten_state_sampling()

    pipeline = beam.Pipeline(options=options)
    build_publish_graph(pipeline, files, connection=connection, topic=publish.topic,
                        dead_letter_topic=dead_letter_topic, dead_letter_path=publish.dead_letter_path,
                        max_message_bytes=kafka.max_message_bytes, block_size=_block_size(publish, options))
    with start_up_objects_frozen():
        result = pipeline.run()
        template_location = options.view_as(GoogleCloudOptions).template_location
        if template_location:
            # A Flex Template launch only stages the job here; its counters are in the Dataflow job's metrics.
            _LOGGER.info("Staged the publish job as a template at %s", template_location)
            return {}
        result.wait_until_finish()

    summary = summarize(result)
    report_summary("Publish", summary, kafka.summary_json)
    return summary


def main(argv: Optional[list[str]] = None) -> int:
    """Command-line entry point; returns the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        summary = run(argv)
    except (FileNotFoundError, PermissionError, KafkaConfigError, ValueError) as error:
        _LOGGER.error("%s", error)
        return 2
    except KafkaDeliveryError as error:
        # The local runner does not retry a failed bundle: the job ends here without a summary.
        _LOGGER.error("The publish job failed because Kafka did not acknowledge every message: %s "
                      "Rerun the job on the same input and generation; the rerun publishes every line again "
                      "with the same event ids.", error)
        return 3
    if not summary:
        return 0
    print(f"lines_read={summary['lines_read']} published={summary['published']} "
          f"dead_letters={summary['dead_letters']} skipped={summary['skipped']}")
    return 0 if summary["balanced"] else 1


if __name__ == "__main__":
    sys.exit(main())
