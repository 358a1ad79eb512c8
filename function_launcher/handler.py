"""Handling one finalize event: check the object, name the job, launch it."""

import dataclasses
import logging
from typing import Any, Optional

from .config import LauncherConfig
from .job_names import publish_job_name
from .launch import Launcher, LaunchRequest, LaunchResult
from .result_names import check_object
from .storage_events import FINALIZED_EVENT_TYPE, parse_finalized_object

_LOGGER = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class EventOutcome:
    """The result of handling one event.

    Attributes:
        ignored_reason: Why no job was launched, or empty when one was requested.
        launch: The launcher's result, or None when the event was ignored.
    """

    ignored_reason: str = ""
    launch: Optional[LaunchResult] = None


def build_launcher(config: LauncherConfig) -> Launcher:
    """Create the launcher that `config.launcher` names.

    The launcher modules are imported here, so a deployed function never
    imports the local launcher and a local run never needs the Dataflow client.
    """
    if config.launcher == "local":
        from .local_launcher import LocalLauncher

        return LocalLauncher(config)

    from .dataflow_launcher import DataflowLauncher

    return DataflowLauncher(config)


def handle_event(event_type: str, event_id: str, data: Any, config: LauncherConfig,
                 launcher: Launcher) -> EventOutcome:
    """Launch the publish job for a finalized result file, or log why not.

    Args:
        event_type: The CloudEvent `type` attribute.
        event_id: The CloudEvent `id` attribute.
        data: The decoded event data.
        config: The launcher configuration.
        launcher: Starts the job.

    Returns:
        What was done. An ignored event is logged once at INFO level.

    Raises:
        MalformedEventError: If the data is not a Cloud Storage object resource.
        TransientLaunchError: If the launch may succeed on a later delivery.
    """
    if event_type != FINALIZED_EVENT_TYPE:
        reason = f"its type is {event_type!r}, not {FINALIZED_EVENT_TYPE!r}"
        _LOGGER.info("Ignoring event %s: %s", event_id, reason)
        return EventOutcome(ignored_reason=reason)

    finalized = parse_finalized_object(event_id, data)
    check = check_object(finalized.bucket, finalized.name, finalized.size, config.results_bucket)
    if not check.accepted:
        _LOGGER.info("Ignoring %s (event %s): it is %s", finalized, event_id, check.reason)
        return EventOutcome(ignored_reason=check.reason)

    request = LaunchRequest(job_name=publish_job_name(finalized.name, finalized.generation),
                            bucket=finalized.bucket, object_name=finalized.name,
                            generation=finalized.generation, batch_date=check.batch_date)
    _LOGGER.info("Result file %s (event %s, %s bytes): requesting job %s", finalized, event_id,
                 finalized.size, request.job_name)
    return EventOutcome(launch=launcher.launch(request))
