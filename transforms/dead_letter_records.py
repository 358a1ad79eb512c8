"""Dead-letter records: what a step rejected, why, and where it came from.

Every record that a step rejects becomes one dead letter with a plain reason,
the error type, the provenance and the raw input. The raw bytes are kept as
UTF-8 text when they decode, else as base64, and are capped at
`MAX_RAW_BYTES`; the original size is always recorded. Dead letters follow
`schemas/dead-letter.schema.json`.
"""

import base64
import datetime
import hashlib
from typing import Optional

# Tag of the dead-letter output of every multi-output step.
DEAD_LETTERS = "dead_letters"

# Dead letters keep at most this many bytes of the rejected input, so that a
# dead letter for a huge line still fits in one Kafka message.
MAX_RAW_BYTES = 64 * 1024


def utc_now_text() -> str:
    """Return the current UTC time in RFC 3339 form with microseconds."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def encode_raw(raw: bytes, size: Optional[int] = None) -> dict:
    """Encode rejected input bytes for a dead letter.

    Args:
        raw: The input bytes, possibly already cut to a prefix by the caller.
        size: The size of the original input when `raw` is only its prefix.

    Returns:
        A dict with `encoding` ("utf-8" or "base64"), `data`, `size` and
        `truncated`.
    """
    original_size = len(raw) if size is None else size
    prefix = raw[:MAX_RAW_BYTES]
    truncated = len(prefix) < original_size
    try:
        text = prefix.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError as error:
        # A cut can split a multi-byte character: keep the prefix as text if
        # the only invalid bytes are at the cut.
        if truncated and error.start >= len(prefix) - 3 and error.reason == "unexpected end of data":
            text = prefix[:error.start].decode("utf-8")
            encoding = "utf-8"
        else:
            text = base64.b64encode(prefix).decode("ascii")
            encoding = "base64"
    return {"encoding": encoding, "data": text, "size": original_size, "truncated": truncated}


def decode_raw(raw: dict) -> bytes:
    """Return the bytes kept in a dead letter's `raw` field."""
    if raw["encoding"] == "base64":
        return base64.b64decode(raw["data"])
    return raw["data"].encode("utf-8")


def dead_letter_id(pipeline: str, step: str, source: dict, event_id: Optional[str]) -> str:
    """Return a deterministic id, so the same rejection always gets the same id."""
    parts = [pipeline, step, event_id or "", str(source.get("uri", "")), str(source.get("generation", "")),
             str(source.get("line", "")), str(source.get("partition", "")), str(source.get("offset", ""))]
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:32]


def make_dead_letter(*, pipeline: str, step: str, reason: str, error_type: str, source: dict,
                     raw: bytes, raw_size: Optional[int] = None,
                     event_id: Optional[str] = None) -> dict:
    """Build one dead-letter record.

    Args:
        pipeline: "publish_results" or "extract_injections".
        step: The step that rejected the input, in snake case.
        reason: A plain sentence saying why.
        error_type: The exception class name, or a short name for a rule.
        source: Provenance with at least `uri`, `object`, `generation` and `line`.
        raw: The rejected input bytes (only the first `MAX_RAW_BYTES` are kept).
        raw_size: The original input size when `raw` is already a prefix.
        event_id: The BatchResultEvent id, where one exists.
    """
    return {
        "schemaversion": 1,
        "id": dead_letter_id(pipeline, step, source, event_id),
        "pipeline": pipeline,
        "step": step,
        "reason": reason,
        "error_type": error_type,
        "time": utc_now_text(),
        "event_id": event_id,
        "source": source,
        "raw": encode_raw(raw, raw_size),
    }
