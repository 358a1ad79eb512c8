"""Reading the Cloud Storage object from a `finalized` CloudEvent.

Eventarc delivers `google.cloud.storage.object.v1.finalized` events whose data
is the object's JSON resource (`bucket`, `name`, `generation`, `size`, ...).
Cloud Storage encodes the 64-bit numbers `generation` and `size` as decimal
strings; integers are accepted too.
"""

import dataclasses
import re
from typing import Any, Optional

FINALIZED_EVENT_TYPE = "google.cloud.storage.object.v1.finalized"

_DECIMAL = re.compile(r"[0-9]+")


class MalformedEventError(ValueError):
    """Raised when an event's data is not a Cloud Storage object resource."""


@dataclasses.dataclass(frozen=True)
class FinalizedObject:
    """The object named by a finalize event.

    Attributes:
        event_id: The CloudEvent id, for logs.
        bucket: The bucket name.
        name: The object name.
        generation: The object generation as a decimal string.
        size: The object size in bytes, or None when the event has no size.
    """

    event_id: str
    bucket: str
    name: str
    generation: str
    size: Optional[int]

    @property
    def uri(self) -> str:
        """`gs://bucket/name` of the object."""
        return f"gs://{self.bucket}/{self.name}"

    def __str__(self) -> str:
        return f"{self.uri}#{self.generation}"


def parse_finalized_object(event_id: str, data: Any) -> FinalizedObject:
    """Read bucket, name, generation and size from a finalize event's data.

    Args:
        event_id: The CloudEvent id.
        data: The event data as decoded by the CloudEvents SDK: a dict for
            JSON content, bytes or str otherwise.

    Returns:
        The object the event names.

    Raises:
        MalformedEventError: If the data is not a JSON object, or `bucket`,
            `name` or `generation` is missing or invalid, or `size` is not a
            number.
    """
    if not isinstance(data, dict):
        raise MalformedEventError(
            f"Event {event_id}: the data must be a JSON object (a Cloud Storage object resource), "
            f"not {type(data).__name__}. Send it with content type application/json.")

    bucket = _required_string(event_id, data, "bucket")
    name = _required_string(event_id, data, "name")
    generation = _decimal(event_id, data, "generation", required=True)
    size = _decimal(event_id, data, "size", required=False)
    return FinalizedObject(event_id=event_id, bucket=bucket, name=name, generation=generation,
                           size=None if size is None else int(size))


def _required_string(event_id: str, data: dict, field: str) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value:
        raise MalformedEventError(
            f"Event {event_id}: field {field!r} is missing or not a non-empty string in the event data.")
    return value


def _decimal(event_id: str, data: dict, field: str, required: bool) -> Optional[str]:
    value = data.get(field)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not _DECIMAL.fullmatch(str(value)):
        raise MalformedEventError(
            f"Event {event_id}: field {field!r} must be a non-negative integer or decimal string, "
            f"got {value!r}.")
    return str(int(value))
