"""Parsing one JSONL line into a JSON object, with a plain reason for every rejection.

Parsing uses orjson, which follows RFC 8259 strictly: `NaN`, `Infinity`,
invalid UTF-8 and lone surrogates are rejected, and nesting deeper than
orjson's limit (1024 levels in orjson 3.x) is an error instead of a crash.
"""

import re

import orjson

# orjson's nesting limit (1024 in orjson 3.x) less the two levels of the event envelope.
MAX_RECORD_DEPTH = 1022

_NON_FINITE = re.compile(rb"-?(?:NaN|Infinity)")

_JSON_TYPE_NAMES = {list: "an array", str: "a string", int: "a number", float: "a number",
                    bool: "a boolean", type(None): "null"}


class InvalidLineError(ValueError):
    """Raised for a line that is not one JSON object.

    Attributes:
        error_type: A short name for the rule that failed.
    """

    def __init__(self, message: str, error_type: str):
        super().__init__(message)
        self.error_type = error_type


def parse_object(data: bytes) -> dict:
    """Parse a line that must hold exactly one JSON object.

    Raises:
        InvalidLineError: With a plain reason for invalid UTF-8, NaN or
            Infinity, nesting that is too deep, syntax errors, and values that
            are not objects.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise InvalidLineError(describe_decode_error(data, error), "JSONDecodeError") from None
    if not isinstance(value, dict):
        kind = _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
        raise InvalidLineError(f"The line is {kind}, not a JSON object.", "NotAnObject")
    if data.count(b"[") + data.count(b"{") > MAX_RECORD_DEPTH:
        _check_depth_in_envelope(data)
    return value


def _check_depth_in_envelope(data: bytes) -> None:
    """Reject a line that would nest too deeply once wrapped in the event envelope.

    The envelope puts the record two levels down, so a record that orjson
    accepts on its own could make an event that consumers cannot parse.
    Only lines with enough brackets to be that deep reach this check.
    """
    try:
        orjson.loads(b"[[" + data + b"]]")
    except orjson.JSONDecodeError:
        raise InvalidLineError(
            f"The line nests arrays or objects deeper than {MAX_RECORD_DEPTH} levels, the limit for a record "
            "inside the two levels of the event envelope.", "JSONDecodeError") from None


def describe_decode_error(data: bytes, error: orjson.JSONDecodeError) -> str:
    """Turn an orjson decode error into a sentence that names the real cause."""
    message = str(error)
    if "UTF-8" in message:
        return "The line is not valid UTF-8, so it cannot be JSON; the original bytes are kept."
    if "depth limit" in message or "recursion" in message:
        return "The line nests arrays or objects deeper than the parser's limit of 1024 levels."
    if "surrogate" in message:
        return f"The line contains an invalid Unicode escape: {message}."
    if _NON_FINITE.match(data, error.pos) or _NON_FINITE.match(data, max(error.pos - 1, 0)):
        return "The line contains NaN or Infinity, which are not valid JSON numbers."
    return f"The line is not valid JSON: {message}."
