"""Configuration of the launcher function, read from environment variables.

Every variable is read once, when the function starts, and checked together:
`load_config()` raises one `ConfigError` that lists every problem, so a
deployment with a wrong setting fails at start-up instead of on the first
event. An empty value counts as unset, because Terraform passes "" for
optional settings.

Variables (`ENVIRONMENT_VARIABLES` lists them all):

| name | used by | meaning |
| --- | --- | --- |
| RESULTS_BUCKET | both | bucket whose result files start jobs (name only, no gs://); required |
| LAUNCHER | both | `dataflow` (default) or `local` |
| KAFKA_BOOTSTRAP_SERVERS | both | Kafka bootstrap servers passed to the job; required |
| KAFKA_TOPIC | both | topic for BatchResultEvents (default `batch-job-results`) |
| DEAD_LETTER_TOPIC | both | dead-letter topic (default `batch-job-results-dlq`) |
| KAFKA_CONFIG | both | JSON object of non-secret librdkafka properties |
| KAFKA_CONFIG_SECRET | both | Secret Manager version `projects/P/secrets/S/versions/V` with secret properties |
| DEAD_LETTER_PATH | both | optional file prefix for dead letters (gs:// for Dataflow) |
| GCP_PROJECT | dataflow | project that runs the jobs; required |
| DATAFLOW_REGION | dataflow | Dataflow regional endpoint, e.g. `europe-west1`; required |
| TEMPLATE_GCS_PATH | dataflow | gs:// path of the publish_results Flex Template spec; required |
| DATAFLOW_SERVICE_ACCOUNT | dataflow | worker service account email |
| DATAFLOW_TEMP_LOCATION | dataflow | gs:// temp location |
| DATAFLOW_STAGING_LOCATION | dataflow | gs:// staging location |
| DATAFLOW_NETWORK | dataflow | VPC network name |
| DATAFLOW_SUBNETWORK | dataflow | subnetwork, `regions/R/subnetworks/S` or a full URL |
| DATAFLOW_MAX_WORKERS | dataflow | upper bound of autoscaling, a positive integer |
| DATAFLOW_SDK_CONTAINER_IMAGE | dataflow | worker image; set it to the template image so workers have the project's packages |
| DATAFLOW_API_ENDPOINT | dataflow | API endpoint override; `http://` endpoints are local test servers and get no credentials |
| LOCAL_STATE_DIR | local | folder for job markers, logs and summaries (default: a folder under the system temp dir) |
"""

import dataclasses
import json
import os
import re
import tempfile
from typing import Mapping, Optional

ENVIRONMENT_VARIABLES = (
    "RESULTS_BUCKET",
    "LAUNCHER",
    "GCP_PROJECT",
    "DATAFLOW_REGION",
    "TEMPLATE_GCS_PATH",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_TOPIC",
    "DEAD_LETTER_TOPIC",
    "KAFKA_CONFIG",
    "KAFKA_CONFIG_SECRET",
    "DATAFLOW_SERVICE_ACCOUNT",
    "DATAFLOW_TEMP_LOCATION",
    "DATAFLOW_STAGING_LOCATION",
    "DATAFLOW_NETWORK",
    "DATAFLOW_SUBNETWORK",
    "DATAFLOW_MAX_WORKERS",
    "DATAFLOW_SDK_CONTAINER_IMAGE",
    "DATAFLOW_API_ENDPOINT",
    "DEAD_LETTER_PATH",
    "LOCAL_STATE_DIR",
)

LAUNCHERS = ("dataflow", "local")
DEFAULT_TOPIC = "batch-job-results"
DEFAULT_DEAD_LETTER_TOPIC = "batch-job-results-dlq"
DEFAULT_LOCAL_STATE_DIR = os.path.join(tempfile.gettempdir(), "function-launcher-state")

# Cloud Storage bucket names are 3 to 63 characters, or up to 222 when they
# contain dots. This check allows 222 for every name.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
_SECRET_VERSION = re.compile(r"projects/[^/]+/secrets/[^/]+/versions/[^/]+")

# Property names that contain credentials. They belong in KAFKA_CONFIG_SECRET,
# because KAFKA_CONFIG is visible in the job's parameters.
_SECRET_PROPERTY_MARKERS = ("password", "secret", "token", "jaas", "credentials", "key.pem", "keystore")


class ConfigError(ValueError):
    """Raised when the environment does not contain a valid launcher configuration."""


@dataclasses.dataclass(frozen=True)
class LauncherConfig:
    """The launcher function's settings; see the module docstring for each field's variable."""

    results_bucket: str
    launcher: str
    bootstrap_servers: str
    topic: str
    dead_letter_topic: str
    kafka_config: Optional[str] = None
    kafka_config_secret: Optional[str] = None
    dead_letter_path: Optional[str] = None
    project: Optional[str] = None
    region: Optional[str] = None
    template_gcs_path: Optional[str] = None
    service_account: Optional[str] = None
    temp_location: Optional[str] = None
    staging_location: Optional[str] = None
    network: Optional[str] = None
    subnetwork: Optional[str] = None
    max_workers: Optional[int] = None
    sdk_container_image: Optional[str] = None
    api_endpoint: Optional[str] = None
    local_state_dir: str = DEFAULT_LOCAL_STATE_DIR


def load_config(environ: Optional[Mapping[str, str]] = None) -> LauncherConfig:
    """Read and check the launcher configuration.

    Args:
        environ: The variables to read; `os.environ` when None.

    Returns:
        The checked configuration.

    Raises:
        ConfigError: If any variable is missing or invalid. The message lists
            every problem, one per line, and never contains a variable's value
            when that value may be secret.
    """
    environ = os.environ if environ is None else environ
    problems: list[str] = []

    def read(name: str) -> Optional[str]:
        value = environ.get(name, "")
        value = value.strip()
        return value or None

    launcher = (read("LAUNCHER") or "dataflow").lower()
    if launcher not in LAUNCHERS:
        problems.append(f"LAUNCHER={launcher!r} is invalid: use 'dataflow' or 'local'.")

    results_bucket = read("RESULTS_BUCKET")
    _check_bucket(results_bucket, problems)

    bootstrap_servers = read("KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap_servers is None:
        problems.append("KAFKA_BOOTSTRAP_SERVERS is missing: set it to the Kafka bootstrap servers, "
                        "for example 'broker-1:9092,broker-2:9092'.")

    kafka_config = read("KAFKA_CONFIG")
    _check_kafka_config(kafka_config, problems)

    kafka_config_secret = read("KAFKA_CONFIG_SECRET")
    if kafka_config_secret is not None and not _SECRET_VERSION.fullmatch(kafka_config_secret):
        problems.append(f"KAFKA_CONFIG_SECRET={kafka_config_secret!r} is invalid: expected a secret version "
                        "name such as projects/P/secrets/S/versions/latest.")

    max_workers = _read_positive_int(read("DATAFLOW_MAX_WORKERS"), "DATAFLOW_MAX_WORKERS", problems)

    config = LauncherConfig(
        results_bucket=results_bucket or "",
        launcher=launcher,
        bootstrap_servers=bootstrap_servers or "",
        topic=read("KAFKA_TOPIC") or DEFAULT_TOPIC,
        dead_letter_topic=read("DEAD_LETTER_TOPIC") or DEFAULT_DEAD_LETTER_TOPIC,
        kafka_config=kafka_config,
        kafka_config_secret=kafka_config_secret,
        dead_letter_path=read("DEAD_LETTER_PATH"),
        project=read("GCP_PROJECT"),
        region=read("DATAFLOW_REGION"),
        template_gcs_path=read("TEMPLATE_GCS_PATH"),
        service_account=read("DATAFLOW_SERVICE_ACCOUNT"),
        temp_location=read("DATAFLOW_TEMP_LOCATION"),
        staging_location=read("DATAFLOW_STAGING_LOCATION"),
        network=read("DATAFLOW_NETWORK"),
        subnetwork=read("DATAFLOW_SUBNETWORK"),
        max_workers=max_workers,
        sdk_container_image=read("DATAFLOW_SDK_CONTAINER_IMAGE"),
        api_endpoint=read("DATAFLOW_API_ENDPOINT"),
        local_state_dir=read("LOCAL_STATE_DIR") or DEFAULT_LOCAL_STATE_DIR,
    )

    if launcher == "dataflow":
        _check_dataflow(config, problems)

    if problems:
        raise ConfigError("Invalid launcher configuration:\n  - " + "\n  - ".join(problems))
    return config


def _check_bucket(bucket: Optional[str], problems: list[str]) -> None:
    if bucket is None:
        problems.append("RESULTS_BUCKET is missing: set it to the name of the results bucket, without gs://.")
    elif bucket.startswith("gs://"):
        problems.append(f"RESULTS_BUCKET={bucket!r} is invalid: give the bucket name without gs://.")
    elif not _BUCKET_NAME.fullmatch(bucket):
        problems.append(f"RESULTS_BUCKET={bucket!r} is not a valid bucket name: use 3 to 222 lowercase "
                        "letters, digits, dots, hyphens or underscores.")


def _check_kafka_config(text: Optional[str], problems: list[str]) -> None:
    if text is None:
        return
    try:
        properties = json.loads(text)
    except json.JSONDecodeError as error:
        # The position only, because the value may contain a credential put there by mistake.
        problems.append(f"KAFKA_CONFIG is not valid JSON (line {error.lineno}, column {error.colno}); "
                        'expected an object such as {"security.protocol": "SASL_SSL"}.')
        return
    if not isinstance(properties, dict):
        problems.append("KAFKA_CONFIG must be a JSON object of librdkafka properties.")
        return
    for name, value in properties.items():
        if not isinstance(value, (str, int, float, bool)):
            problems.append(f"KAFKA_CONFIG property {name!r} must be a string, number or boolean.")
        if any(marker in name.lower() for marker in _SECRET_PROPERTY_MARKERS):
            problems.append(f"KAFKA_CONFIG property {name!r} contains a credential: move it to the secret "
                            "named by KAFKA_CONFIG_SECRET, because job parameters are visible to project viewers.")


def _read_positive_int(text: Optional[str], name: str, problems: list[str]) -> Optional[int]:
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        problems.append(f"{name}={text!r} is not an integer.")
        return None
    if value < 1:
        problems.append(f"{name}={value} is invalid: it must be at least 1.")
        return None
    return value


def _check_dataflow(config: LauncherConfig, problems: list[str]) -> None:
    required = {"GCP_PROJECT": config.project, "DATAFLOW_REGION": config.region,
                "TEMPLATE_GCS_PATH": config.template_gcs_path}
    for name, value in required.items():
        if value is None:
            problems.append(f"{name} is missing: LAUNCHER=dataflow needs GCP_PROJECT, DATAFLOW_REGION "
                            "and TEMPLATE_GCS_PATH.")

    gcs_paths = {"TEMPLATE_GCS_PATH": config.template_gcs_path, "DATAFLOW_TEMP_LOCATION": config.temp_location,
                 "DATAFLOW_STAGING_LOCATION": config.staging_location, "DEAD_LETTER_PATH": config.dead_letter_path}
    for name, value in gcs_paths.items():
        if value is not None and not value.startswith("gs://"):
            problems.append(f"{name}={value!r} is invalid: Dataflow jobs need a gs:// path.")

    if config.api_endpoint is not None and not re.match(r"https?://", config.api_endpoint):
        problems.append(f"DATAFLOW_API_ENDPOINT={config.api_endpoint!r} is invalid: expected an http:// or "
                        "https:// URL.")
