"""Cloud Functions (2nd gen) entry point: `on_result_finalized`.

Eventarc posts a `google.cloud.storage.object.v1.finalized` CloudEvent for
every object finalized in the results bucket. For a result file this
function starts one publish job for that object generation; see
`function_launcher.handler`. The HTTP status decides whether Eventarc
delivers the event again:

| outcome | status | Eventarc |
| --- | --- | --- |
| job started, duplicate event, ignored object, permanent launch error (logged) | 200 | done |
| data is not a Cloud Storage object resource | 400 | retries, because retries are on; the error is logged |
| not a CloudEvent at all (rejected by functions-framework) | 400 | as above |
| transient launch error, or any unexpected exception | 500 | retries with backoff |

The configuration is read and checked when this module is imported, so an
invalid setting stops the instance from starting, with a `ConfigError` that
lists each problem.

Run locally with:
    python -m functions_framework --source function_launcher/main.py --target on_result_finalized

Imports inside the package are relative: functions-framework loads this file
as a module whose package is its folder, and tests import
`function_launcher.main`; both resolve the same sibling modules.
"""

import logging

import functions_framework
from werkzeug.exceptions import BadRequest

from .config import load_config
from .handler import build_launcher, handle_event
from .logs import configure_logging
from .storage_events import MalformedEventError

configure_logging()
_LOGGER = logging.getLogger(__name__)

CONFIG = load_config()
LAUNCHER = build_launcher(CONFIG)
_LOGGER.info("Launcher function ready: launcher=%s, bucket=%s, topic=%s", CONFIG.launcher,
             CONFIG.results_bucket, CONFIG.topic)
if CONFIG.launcher == "dataflow" and CONFIG.sdk_container_image is None:
    _LOGGER.warning("DATAFLOW_SDK_CONTAINER_IMAGE is not set: workers run on Dataflow's default image, which "
                    "lacks this project's packages; set it to the Flex Template image.")


@functions_framework.cloud_event
def on_result_finalized(event) -> None:
    """Start the publish job for a finalized result file.

    Args:
        event: The CloudEvent, in binary or structured content mode.

    Raises:
        BadRequest: If the event data is not a Cloud Storage object
            resource; functions-framework returns HTTP 400 with the message.
        TransientLaunchError: If the launch may succeed when retried; the
            response is HTTP 500 and Eventarc delivers the event again.
    """
    try:
        handle_event(event["type"], event["id"], event.get_data(), CONFIG, LAUNCHER)
    except MalformedEventError as error:
        _LOGGER.warning("Rejected event %s with HTTP 400: %s", event["id"], error)
        raise BadRequest(description=str(error)) from error
