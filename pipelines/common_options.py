"""Pipeline options shared by both jobs.

Beam parses every `PipelineOptions` subclass that has been imported into one
argument parser, so an option may be defined only once in the process. Options
that both jobs take live here; each job's own options use names the other
job does not use.

`--bootstrap_servers` is already defined by Beam 2.77 itself (in
`KafkaStreamsRunnerOptions`, default `localhost:9092`), so the jobs read that
option instead of defining their own.
"""

import argparse
import logging
import sys
from typing import Optional

from apache_beam.options.pipeline_options import (KafkaStreamsRunnerOptions, PipelineOptions, StandardOptions,
                                                  _BeamArgumentParser)
from confluent_kafka import KafkaException, Producer

from transforms.kafka_config import KafkaConfigError, KafkaConnection, parse_config_json
from transforms.kafka_write import DEFAULT_MAX_MESSAGE_BYTES

_LOGGER = logging.getLogger(__name__)

# librdkafka's allowed range for message.max.bytes.
MIN_MESSAGE_BYTES = 1000
MAX_MESSAGE_BYTES = 1_000_000_000


class KafkaOptions(PipelineOptions):
    """Kafka connection, dead-letter and summary options of both jobs."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--kafka_config", default=None,
            help=("JSON object of extra librdkafka properties, or @FILE holding one, for example SASL settings. "
                  "Values written as ${NAME} are read from the environment on the worker; the value is never logged."))
        parser.add_argument(
            "--kafka_config_secret", default=None,
            help="Secret Manager version (projects/P/secrets/S/versions/V) whose payload is a JSON object of "
                 "more librdkafka properties, read on the worker.")
        parser.add_argument(
            "--max_message_bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES,
            help="Largest Kafka message in bytes (librdkafka message.max.bytes); larger records become dead letters.")
        parser.add_argument(
            "--dead_letter_topic", default=None,
            help="Topic for dead letters; each job has its own default. An empty value disables it.")
        parser.add_argument(
            "--summary_json", default=None,
            help="Local path where the job writes a JSON summary of its counters when it ends.")


def kafka_connection(options: PipelineOptions) -> KafkaConnection:
    """Build the Kafka connection settings from parsed options."""
    kafka = options.view_as(KafkaOptions)
    bootstrap_servers = options.view_as(KafkaStreamsRunnerOptions).bootstrap_servers
    config = parse_config_json(kafka.kafka_config)
    if "message.max.bytes" in config:
        # The jobs check each record against --max_message_bytes before producing, so that an oversized
        # record becomes a dead letter with its line. A different producer limit would bypass that check.
        raise KafkaConfigError(
            f"--kafka_config sets message.max.bytes to {config['message.max.bytes']!r}: set the message size "
            "limit with --max_message_bytes instead.")
    return KafkaConnection(bootstrap_servers, config, kafka.kafka_config_secret)


# Runners that run the pipeline in this process, where the checks below are safe to make.
LOCAL_RUNNERS = ("DirectRunner", "SwitchingDirectRunner", "FnApiRunner", "BundleBasedDirectRunner")


def is_local_runner(options: PipelineOptions) -> bool:
    """Return whether the job runs on a local runner (or on the default, which is local)."""
    runner = options.view_as(StandardOptions).runner
    return not runner or runner in LOCAL_RUNNERS


def unknown_arguments(argv: list[str]) -> list[str]:
    """Return the arguments that no imported `PipelineOptions` class accepts.

    Beam itself only warns about them, so a misspelled option or a glob that
    the shell expanded into many paths would otherwise be dropped silently.
    """
    parser = _BeamArgumentParser(allow_abbrev=False)
    # The same set of classes that PipelineOptions.get_all_options() parses with.
    classes = {str(cls): cls for cls in PipelineOptions.__subclasses__()}
    for cls in classes.values():
        cls._add_argparse_args(parser)  # pylint: disable=protected-access
    _, unknown = parser.parse_known_args(argv)
    return unknown


def parse_job_options(argv: Optional[list[str]], job_options: type, description: str) -> PipelineOptions:
    """Parse a job's command line, with `--help` and a check for unknown arguments.

    Args:
        argv: The arguments, or None for `sys.argv[1:]`.
        job_options: The job's own `PipelineOptions` subclass.
        description: The first line of the job's help text.

    Raises:
        SystemExit: With code 0 after printing the help for `-h` or `--help`.
        ValueError: For arguments that no option accepts, on a local runner.
            On other runners they are only logged, as Beam does, because a
            launcher may add options that this Beam version does not know.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        _print_help(job_options, description)
        raise SystemExit(0)

    options = PipelineOptions(argv)
    unknown = unknown_arguments(argv)
    if unknown and is_local_runner(options):
        raise ValueError(
            f"Unknown arguments: {' '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}. Check the option "
            "names with --help, and quote globs so that the shell does not expand them.")
    if unknown:
        _LOGGER.warning("Ignoring unknown arguments: %s", " ".join(unknown))

    max_message_bytes = options.view_as(KafkaOptions).max_message_bytes
    if not MIN_MESSAGE_BYTES <= max_message_bytes <= MAX_MESSAGE_BYTES:
        raise ValueError(f"--max_message_bytes must be between {MIN_MESSAGE_BYTES} and {MAX_MESSAGE_BYTES} "
                         f"(librdkafka's range for message.max.bytes), not {max_message_bytes}.")
    return options


def _print_help(job_options: type, description: str) -> None:
    module = sys.modules[job_options.__module__]
    # Under `python -m`, the module is __main__ and its spec has the real name.
    module_name = module.__spec__.name if getattr(module, "__spec__", None) else job_options.__module__
    parser = argparse.ArgumentParser(
        prog=f"python -m {module_name}", description=description,
        epilog="Beam's own pipeline options (--runner, --project, --region, --temp_location, --setup_file, ...) "
               "are accepted too.")
    job_options._add_argparse_args(parser)  # pylint: disable=protected-access
    KafkaOptions._add_argparse_args(parser)  # pylint: disable=protected-access
    parser.add_argument("--bootstrap_servers", default="localhost:9092",
                        help="Kafka bootstrap servers, HOST:PORT[,HOST:PORT] (default localhost:9092).")
    parser.print_help()


def check_kafka(connection: KafkaConnection, topics: list[str], timeout_seconds: float = 15.0) -> None:
    """Check before the job starts that Kafka is reachable with the job's settings.

    A producer is created with the full configuration, so an unknown or
    invalid librdkafka property fails here, and it requests the cluster's
    metadata. Topics that do not exist are only logged, because a broker may
    create them on first use.

    Raises:
        KafkaConfigError: With the reason, if the settings are invalid or
            the metadata request fails within the timeout.
    """
    config = connection.client_config({})
    try:
        producer = Producer(config)
    except KafkaException as error:
        raise KafkaConfigError(f"Invalid Kafka settings: {error.args[0].str()}. Check --kafka_config.") from None
    try:
        metadata = producer.list_topics(timeout=timeout_seconds)
    except KafkaException as error:
        raise KafkaConfigError(
            f"Cannot reach Kafka at {connection.bootstrap_servers} within {timeout_seconds:.0f} s: "
            f"{error.args[0].str()}. Check --bootstrap_servers and the security settings in --kafka_config."
        ) from None
    for topic in topics:
        if topic and topic not in metadata.topics:
            _LOGGER.warning("Topic %s does not exist at %s; the job fails unless the broker creates topics "
                            "on first use.", topic, connection.bootstrap_servers)
