"""Pipeline options shared by both jobs.

Beam parses every `PipelineOptions` subclass that has been imported into one
argument parser, so an option may be defined only once in the process. Options
that both jobs take live here; each job's own options use names the other
job does not use.

`--bootstrap_servers` is already defined by Beam 2.77 itself (in
`KafkaStreamsRunnerOptions`, default `localhost:9092`), so the jobs read that
option instead of defining their own.
"""

from apache_beam.options.pipeline_options import KafkaStreamsRunnerOptions, PipelineOptions

from transforms.kafka_config import KafkaConnection, parse_config_json
from transforms.kafka_write import DEFAULT_MAX_MESSAGE_BYTES


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
    return KafkaConnection(bootstrap_servers, parse_config_json(kafka.kafka_config), kafka.kafka_config_secret)
