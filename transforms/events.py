"""The BatchResultEvent envelope: a CloudEvents 1.0 structured-mode JSON message.

The event id is deterministic: a hash of bucket, object, generation and line
number. A replayed or retried line keeps its id, so downstream consumers can
drop repeats, while a new generation of the same object gets new ids.

The original line is spliced into the envelope as bytes instead of being
serialized again, so the record arrives unchanged (apart from the line end,
BOM and surrounding whitespace) and the cost of re-encoding is avoided. This
is safe because the line was parsed as one valid JSON object before.
"""

import functools
import hashlib
from typing import NamedTuple, Optional

import orjson

from transforms.result_files import ResultFile

EVENT_TYPE = "dev.batchresults.prediction.line.v1"
SCHEMA_VERSION = 1
DATA_SCHEMA = "https://schemas.batch-results-pipeline.dev/batch-result-event.schema.json"

EVENT_HEADERS = (
    ("content-type", b"application/cloudevents+json; charset=UTF-8"),
    ("schema-version", str(SCHEMA_VERSION).encode("ascii")),
)

# Labels that Vertex AI batch requests commonly carry as a row id.
_ID_LABELS = ("id", "request_id", "conversation_id")

_RECORD_PLACEHOLDER = b'"record":null}}'


def event_id(bucket: str, object_name: str, generation: str, line_number: int) -> str:
    """Return the deterministic event id: 32 hex digits of a SHA-256."""
    key = f"{bucket}\x00{object_name}\x00{generation}\x00{line_number}".encode("utf-8")
    return hashlib.sha256(key).hexdigest()[:32]


class _FileFields(NamedTuple):
    """The envelope fields that are the same for every line of one file generation."""

    source_uri: str
    batch_date: Optional[str]
    prediction_folder: Optional[str]
    subject_prefix: str
    id_hash: "hashlib._Hash"  # SHA-256 state after the bytes that `event_id` hashes before the line number.


@functools.lru_cache(maxsize=64)
def _file_fields(result_file: ResultFile) -> _FileFields:
    # batch_date and prediction_folder each parse the path with a regular
    # expression (about 1.5 µs each, together as much as the rest of the
    # envelope), so this runs once per file instead of once per line.
    id_prefix = f"{result_file.bucket}\x00{result_file.object_name}\x00{result_file.generation}\x00"
    return _FileFields(result_file.source_uri, result_file.batch_date, result_file.prediction_folder,
                       f"{result_file.object_name}#L", hashlib.sha256(id_prefix.encode("utf-8")))


def _line_event_id(fields: _FileFields, line_number: int) -> str:
    """Return the same id as `event_id` from the file's precomputed hash state."""
    state = fields.id_hash.copy()
    state.update(str(line_number).encode("ascii"))
    return state.hexdigest()[:32]


def request_id_of(record: dict) -> Optional[str]:
    """Return the row's own id: top-level `id` or `key`, else an id label of the request."""
    for field in ("id", "key"):
        value = record.get(field)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    request = record.get("request")
    labels = request.get("labels") if isinstance(request, dict) else None
    if isinstance(labels, dict):
        for label in _ID_LABELS:
            if isinstance(labels.get(label), str):
                return labels[label]
    return None


def build_event(result_file: ResultFile, line_number: int, record: dict, raw_line: bytes,
                published_at: str) -> tuple[str, bytes]:
    """Wrap one parsed and validated line as a BatchResultEvent.

    Args:
        result_file: The file the line came from.
        line_number: The 1-based line number.
        record: The parsed line, used for the id and status fields only.
        raw_line: The line's bytes, which must be the JSON object `record`.
        published_at: The event time, RFC 3339.

    Returns:
        `(event_id, event_bytes)`.
    """
    fields = _file_fields(result_file)
    identifier = _line_event_id(fields, line_number)
    status_text = record.get("status")
    failed = isinstance(status_text, str) and status_text != ""
    envelope = {
        "specversion": "1.0",
        "id": identifier,
        "source": fields.source_uri,
        "type": EVENT_TYPE,
        "subject": fields.subject_prefix + str(line_number),
        "time": published_at,
        "datacontenttype": "application/json",
        "dataschema": DATA_SCHEMA,
        "schemaversion": SCHEMA_VERSION,
        "data": {
            "source": {
                "uri": result_file.uri,
                "bucket": result_file.bucket,
                "object": result_file.object_name,
                "generation": result_file.generation,
                "line": line_number,
                "batch_date": fields.batch_date,
                "prediction_folder": fields.prediction_folder,
            },
            "request_id": request_id_of(record),
            "status": "failed" if failed else "succeeded",
            "error": status_text if failed else None,
            # Must stay the last key of the last object: the raw line replaces it.
            "record": None,
        },
    }
    encoded = orjson.dumps(envelope)
    return identifier, encoded[:-len(_RECORD_PLACEHOLDER)] + b'"record":' + raw_line.strip() + b"}}"
