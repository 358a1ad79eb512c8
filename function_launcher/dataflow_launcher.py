"""Launching publish jobs from the publish_results Flex Template on Dataflow.

Dataflow rejects a second active job with the same name with HTTP 409
(ALREADY_EXISTS), but accepts the name again once the first job has ended. So
the launcher first lists the region's jobs with that name, and then launches:

* an earlier job with the name in any state but failed means the event is a
  duplicate, and nothing is launched;
* a 409 ALREADY_EXISTS from the launch call (two deliveries racing past the
  listing) means the same;
* HTTP 408, 429, 409 ABORTED, 5xx, timeouts and connection errors raise
  `TransientLaunchError`, so Eventarc retries the delivery;
* any other 4xx (invalid parameter, permission denied, template not found) is
  permanent: it is logged with the object and the event is acknowledged.

Calls are made once, without the client library's own retries, because
Eventarc retries the whole delivery with backoff.
"""

import logging
from typing import Optional

from google.api_core import exceptions as api_exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import dataflow_v1beta3 as dataflow

from .config import LauncherConfig
from .launch import LaunchRequest, LaunchResult, LaunchStatus, TransientLaunchError, publish_parameters

_LOGGER = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 60.0

# Stop looking through the job listing after this many jobs. The API filters by
# name, so a real listing contains a handful; the cap only bounds a listing that
# ignores the filter.
MAX_LISTED_JOBS = 1000

# HTTP status codes of client errors that a retry can fix.
_RETRYABLE_CLIENT_CODES = (408, 429)


class DataflowLauncher:
    """Starts one Flex Template job per job name on Dataflow.

    Args:
        config: The launcher configuration; `project`, `region` and
            `template_gcs_path` must be set.
        templates_client: A `FlexTemplatesServiceClient`; one on the REST
            transport is created when None.
        jobs_client: A `JobsV1Beta3Client` for the existing-job check; one on
            the REST transport is created when None.
        timeout_seconds: Timeout of each API call, in seconds.
    """

    def __init__(self, config: LauncherConfig, *, templates_client=None, jobs_client=None,
                 timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS):
        self._config = config
        self._timeout_seconds = timeout_seconds
        if templates_client is None or jobs_client is None:
            default_templates, default_jobs = _create_clients(config.api_endpoint)
            templates_client = templates_client or default_templates
            jobs_client = jobs_client or default_jobs
        self._templates = templates_client
        self._jobs = jobs_client

    def launch(self, request: LaunchRequest) -> LaunchResult:
        """Launch the publish job for `request` unless a job with its name exists.

        Returns:
            STARTED with the new job's id, DUPLICATE when the job exists
            already, or REJECTED after a permanent error (logged here).

        Raises:
            TransientLaunchError: If Dataflow or the network failed in a way
                that a later delivery may not.
        """
        try:
            existing = self._find_job(request.job_name)
        except Exception as error:  # Classified below: transient ones raise, permanent ones reject.
            return self._handle_error(request, "list jobs", error)
        if existing is not None:
            _LOGGER.info("Job %s for %s#%s exists already (id %s, state %s); duplicate event",
                         request.job_name, request.input_uri, request.generation, existing.id,
                         existing.current_state.name)
            return LaunchResult(LaunchStatus.DUPLICATE, request.job_name, existing.id, "found by name")

        try:
            response = self._templates.launch_flex_template(
                request=self.build_launch_request(request), timeout=self._timeout_seconds, retry=None)
        except api_exceptions.Conflict as error:
            if _error_status(error) == "ABORTED":
                return self._handle_error(request, "launch", error)
            _LOGGER.info("Job %s for %s#%s is already running (HTTP 409); duplicate event",
                         request.job_name, request.input_uri, request.generation)
            return LaunchResult(LaunchStatus.DUPLICATE, request.job_name, None, "HTTP 409 from launch")
        except Exception as error:  # Classified below: transient ones raise, permanent ones reject.
            return self._handle_error(request, "launch", error)

        job_id = response.job.id or None
        _LOGGER.info("Launched Dataflow job %s (id %s) in %s for %s#%s", request.job_name, job_id,
                     self._config.region, request.input_uri, request.generation)
        return LaunchResult(LaunchStatus.STARTED, request.job_name, job_id)

    def build_launch_request(self, request: LaunchRequest) -> dataflow.LaunchFlexTemplateRequest:
        """Build the `LaunchFlexTemplateRequest` that `launch` sends for `request`."""
        config = self._config
        environment = dataflow.FlexTemplateRuntimeEnvironment(
            additional_user_labels={
                "pipeline": "publish-results",
                "batch-date": request.batch_date,
                "source-generation": request.generation,
            })
        optional_environment = {
            "service_account_email": config.service_account,
            "temp_location": config.temp_location,
            "staging_location": config.staging_location,
            "network": config.network,
            "subnetwork": config.subnetwork,
            "max_workers": config.max_workers,
            "sdk_container_image": config.sdk_container_image,
        }
        for field, value in optional_environment.items():
            if value is not None:
                setattr(environment, field, value)

        parameter = dataflow.LaunchFlexTemplateParameter(
            job_name=request.job_name,
            container_spec_gcs_path=config.template_gcs_path,
            parameters=publish_parameters(config, request),
            environment=environment,
        )
        return dataflow.LaunchFlexTemplateRequest(
            project_id=config.project, location=config.region, launch_parameter=parameter)

    def _find_job(self, job_name: str):
        """Return an earlier job named `job_name` that blocks a new launch, or None.

        A failed job does not block: a redelivered event may then try again.
        """
        listing = self._jobs.list_jobs(
            request=dataflow.ListJobsRequest(
                project_id=self._config.project, location=self._config.region, name=job_name,
                filter=dataflow.ListJobsRequest.Filter.ALL),
            timeout=self._timeout_seconds, retry=None)
        for count, job in enumerate(listing, start=1):
            if job.name == job_name and job.current_state != dataflow.JobState.JOB_STATE_FAILED:
                return job
            if count >= MAX_LISTED_JOBS:
                # NOTE: the launch's 409 still catches a duplicate of an active job.
                _LOGGER.warning("Stopped looking for job %s after %d listed jobs; launching", job_name, count)
                break
        return None

    def _handle_error(self, request: LaunchRequest, action: str, error: Exception) -> LaunchResult:
        if is_transient(error):
            _LOGGER.warning("Could not %s for job %s (%s#%s), will be retried: %s: %s", action,
                            request.job_name, request.input_uri, request.generation, type(error).__name__, error)
            raise TransientLaunchError(
                f"Dataflow call '{action}' for job {request.job_name} failed: {error}") from error
        _LOGGER.error("Could not %s for job %s (%s#%s); the error is permanent and the event will not be "
                      "retried. Fix the cause, then launch the template by hand. %s: %s", action,
                      request.job_name, request.input_uri, request.generation, type(error).__name__, error)
        return LaunchResult(LaunchStatus.REJECTED, request.job_name, None, f"{type(error).__name__}: {error}")


def is_transient(error: Exception) -> bool:
    """Return whether a failed Dataflow call may succeed when retried later.

    Client errors (HTTP 4xx) are permanent except 408, 429 and 409 ABORTED.
    Everything else is transient: server errors, timeouts, connection and
    token errors, and unexpected exceptions, whose cause is unknown.
    """
    if isinstance(error, api_exceptions.ClientError):
        if error.code in _RETRYABLE_CLIENT_CODES:
            return True
        return isinstance(error, api_exceptions.Conflict) and _error_status(error) == "ABORTED"
    return True


def _error_status(error: api_exceptions.GoogleAPICallError) -> Optional[str]:
    """Return the `error.status` string of a REST error response, such as ABORTED."""
    response = getattr(error, "response", None)
    if response is None:
        return None
    try:
        return response.json().get("error", {}).get("status")
    except (ValueError, AttributeError):
        return None


def _create_clients(api_endpoint: Optional[str]):
    """Create the Flex Templates and Jobs clients on the REST transport.

    A plain `http://` endpoint is a local test server, so it gets anonymous
    credentials: a real token must never travel over plain HTTP.
    """
    options = {"transport": "rest"}
    if api_endpoint:
        options["client_options"] = ClientOptions(api_endpoint=api_endpoint)
        if api_endpoint.startswith("http://"):
            options["credentials"] = AnonymousCredentials()
    return dataflow.FlexTemplatesServiceClient(**options), dataflow.JobsV1Beta3Client(**options)
