"""The BatchResultEvent envelope: a CloudEvents 1.0 structured-mode JSON message.

The event id is deterministic: a hash of bucket, object, generation and line
number. A replayed or retried line keeps its id, so downstream consumers can
drop repeats, while a new generation of the same object gets new ids.

The original line is spliced as bytes between envelope parts made once per
file, instead of being serialized again. So the record arrives unchanged
(apart from the line end, BOM and surrounding whitespace), and the cost of
re-encoding is avoided. This is safe because the line was parsed as one
valid JSON object before.
"""

import binascii
import functools
import hashlib
from typing import Optional

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


def event_id(bucket: str, object_name: str, generation: str, line_number: int) -> str:
    """Return the deterministic event id: 32 hex digits of a SHA-256."""
    key = f"{bucket}\x00{object_name}\x00{generation}\x00{line_number}".encode("utf-8")
    return hashlib.sha256(key).hexdigest()[:32]


class EventTemplate:
    """Writes the events of one file generation from envelope bytes made once for the file.

    An event is the file's envelope parts joined with the per-line fields
    between them, in the key order of `envelope_of`. It is the same text that
    `orjson.dumps(envelope_of(...))` gives, without a dict or a str per field.
    Get one with `event_template`.
    """

    def __init__(self, result_file: ResultFile):
        json = orjson.dumps
        id_prefix = f"{result_file.bucket}\x00{result_file.object_name}\x00{result_file.generation}\x00"
        # SHA-256 state after the bytes that `event_id` hashes before the line number.
        self._id_hash = hashlib.sha256(id_prefix.encode("utf-8"))
        self._before_id = b'{"specversion":"1.0","id":"'
        self._before_subject_line = (
            b'","source":' + json(result_file.source_uri) + b',"type":' + json(EVENT_TYPE)
            + b',"subject":' + json(f"{result_file.object_name}#L")[:-1])  # Without the closing quote.
        self._before_time = b'","time":"'
        self._before_source_line = (
            b'","datacontenttype":"application/json","dataschema":' + json(DATA_SCHEMA)
            + b',"schemaversion":' + json(SCHEMA_VERSION) + b',"data":{"source":{"uri":' + json(result_file.uri)
            + b',"bucket":' + json(result_file.bucket) + b',"object":' + json(result_file.object_name)
            + b',"generation":' + json(result_file.generation) + b',"line":')
        # batch_date and prediction_folder each parse the path with a regular expression: once per file.
        self._before_request_id = (
            b',"batch_date":' + json(result_file.batch_date) + b',"prediction_folder":'
            + json(result_file.prediction_folder) + b'},"request_id":')

    def key_and_value(self, line_number: int, record: dict, raw_line: bytes,
                      published_at: bytes) -> tuple[bytes, bytes]:
        """Return the event id as ASCII bytes and the event, for one parsed and validated line.

        Args:
            line_number: The 1-based line number.
            record: The parsed line, used for the id and status fields only.
            raw_line: The line's bytes, which must be the JSON object `record`.
            published_at: The event time, RFC 3339 in ASCII.
        """
        number = b"%d" % line_number
        state = self._id_hash.copy()
        state.update(number)
        key = binascii.hexlify(state.digest()[:16])  # The same id as `event_id`.
        error = _failure_text(record)
        if error is None:
            status = _SUCCEEDED
        else:
            status = b',"status":"failed","error":' + orjson.dumps(error) + b',"record":'
        request_id = record.get("id")
        if type(request_id) is not str:  # The common case, a string id, needs no further look.
            request_id = request_id_of(record)
        value = b"".join((
            self._before_id, key, self._before_subject_line, number, self._before_time, published_at,
            self._before_source_line, number, self._before_request_id, orjson.dumps(request_id),
            status, raw_line.strip(), b"}}"))
        return key, value


@functools.lru_cache(maxsize=64)
def event_template(result_file: ResultFile) -> EventTemplate:
    """Return the `EventTemplate` of a file generation, made once per process."""
    return EventTemplate(result_file)


def request_id_of(record: dict) -> Optional[str]:
    """Return the row's own id: top-level `id` or `key`, else an id label of the request."""
    for field in ("id", "key"):
        value = record.get(field)
        if type(value) is str:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    request = record.get("request")
    labels = request.get("labels") if isinstance(request, dict) else None
    if isinstance(labels, dict):
        for label in _ID_LABELS:
            if isinstance(labels.get(label), str):
                return labels[label]
    return None


def _failure_text(record: dict) -> Optional[str]:
    """Return the row's error text when Vertex AI marked it failed (a non-empty `status`), else None."""
    status_text = record.get("status")
    return status_text if status_text and isinstance(status_text, str) else None


def envelope_of(result_file: ResultFile, line_number: int, identifier: str, published_at: str, record: dict,
                raw_record) -> dict:
    """Return the event as a dict, with `raw_record` as its `data.record`.

    This is the reference form of the envelope; `build_event` writes the same
    JSON text from per-file byte templates.
    """
    error = _failure_text(record)
    return {
        "specversion": "1.0",
        "id": identifier,
        "source": result_file.source_uri,
        "type": EVENT_TYPE,
        "subject": f"{result_file.object_name}#L{line_number}",
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
                "batch_date": result_file.batch_date,
                "prediction_folder": result_file.prediction_folder,
            },
            "request_id": request_id_of(record),
            "status": "failed" if error is not None else "succeeded",
            "error": error,
            "record": raw_record,
        },
    }


_SUCCEEDED = b',"status":"succeeded","error":null,"record":'


def build_event(result_file: ResultFile, line_number: int, record: dict, raw_line: bytes,
                published_at: str) -> tuple[str, bytes]:
    """Wrap one parsed and validated line as a BatchResultEvent.

    Args:
        result_file: The file the line came from.
        line_number: The 1-based line number.
        record: The parsed line, used for the id and status fields only.
        raw_line: The line's bytes, which must be the JSON object `record`.
        published_at: The event time, RFC 3339. It must need no JSON escaping.

    Returns:
        `(event_id, event_bytes)`.
    """
    key, value = event_template(result_file).key_and_value(line_number, record, raw_line,
                                                           published_at.encode("ascii"))
    return key.decode("ascii"), value
