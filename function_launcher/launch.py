"""Types shared by the launchers: what to launch and how a launch ended."""

import dataclasses
import enum
from typing import Optional, Protocol

from .config import LauncherConfig


class LaunchStatus(enum.Enum):
    """Outcome of a launch request, from the event's point of view."""

    STARTED = "started"
    """A new job was started for the object generation."""

    DUPLICATE = "duplicate"
    """A job with the same name exists already: the event was delivered before."""

    REJECTED = "rejected"
    """The launch failed with a permanent error; it was logged and will not be retried."""


class TransientLaunchError(RuntimeError):
    """Raised when a launch failed in a way that a later retry may fix.

    The function lets it propagate, so the delivery fails with HTTP 500 and
    Eventarc delivers the event again with backoff.
    """


@dataclasses.dataclass(frozen=True)
class LaunchRequest:
    """One publish job to start.

    Attributes:
        job_name: Deterministic job name (see `job_names.publish_job_name`).
        bucket: Bucket of the result file.
        object_name: Object name of the result file.
        generation: Object generation to read, as a decimal string.
        batch_date: `YYYY-MM-DD` from the object path.
    """

    job_name: str
    bucket: str
    object_name: str
    generation: str
    batch_date: str

    @property
    def input_uri(self) -> str:
        """`gs://bucket/object` of the result file."""
        return f"gs://{self.bucket}/{self.object_name}"


@dataclasses.dataclass(frozen=True)
class LaunchResult:
    """The outcome of one launch.

    Attributes:
        status: How the launch ended.
        job_name: The job name that was requested.
        job_id: The runner's id of the job when known: the Dataflow job id, or
            the process id of a local job.
        detail: A sentence for logs, such as the error of a rejected launch.
    """

    status: LaunchStatus
    job_name: str
    job_id: Optional[str] = None
    detail: str = ""


class Launcher(Protocol):
    """Something that starts a publish job at most once per job name."""

    def launch(self, request: LaunchRequest) -> LaunchResult:
        """Start the job, or report that it exists already.

        Raises:
            TransientLaunchError: If a retry may succeed.
        """


def publish_parameters(config: LauncherConfig, request: LaunchRequest) -> dict[str, str]:
    """Return the publish job's options for one request, keyed by option name.

    The keys are the pipeline option names of `pipelines.publish_results`,
    which are also its Flex Template parameter names. Unset optional
    settings are left out, so the job's own defaults apply.
    """
    parameters = {
        "input": request.input_uri,
        "source_generation": request.generation,
        "bootstrap_servers": config.bootstrap_servers,
        "topic": config.topic,
        "dead_letter_topic": config.dead_letter_topic,
    }
    optional = {
        "kafka_config": config.kafka_config,
        "kafka_config_secret": config.kafka_config_secret,
        "dead_letter_path": config.dead_letter_path,
    }
    for name, value in optional.items():
        if value is not None:
            parameters[name] = value
    return parameters
