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

    The line is parsed inside two extra array levels, `[[line]]`, the depth
    it gets in the event envelope, so one parse checks both the syntax and
    the nesting limit. A failed parse is repeated on the bare line to name
    the cause.

    Raises:
        InvalidLineError: With a plain reason for invalid UTF-8, NaN or
            Infinity, nesting that is too deep, syntax errors, and values that
            are not objects.
    """
    # "[[" + data + "]]" parses to [[object]] only when data is one object with optional whitespace.
    # Text such as '{}],[{}' also parses, but to two elements, so the unpacking rejects it.
    try:
        [[value]] = orjson.loads(b"".join((b"[[", data, b"]]")))  # One copy; `+` would make two.
    except ValueError:  # Also orjson.JSONDecodeError.
        raise _rejection(data) from None
    if type(value) is not dict:
        raise _rejection(data)
    return value


def _rejection(data: bytes) -> InvalidLineError:
    """Return the error for a line that did not parse as one object inside the envelope's two levels."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        return InvalidLineError(describe_decode_error(data, error), "JSONDecodeError")
    if not isinstance(value, dict):
        kind = _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
        return InvalidLineError(f"The line is {kind}, not a JSON object.", "NotAnObject")
    # The bare line is an object, so only the two extra levels made it fail: the record would make an
    # event that consumers cannot parse.
    return InvalidLineError(
        f"The line nests arrays or objects deeper than {MAX_RECORD_DEPTH} levels, the limit for a record "
        "inside the two levels of the event envelope.", "JSONDecodeError")


def describe_decode_error(data: bytes, error: orjson.JSONDecodeError) -> str:
    """Turn an orjson decode error into a sentence that names the real cause."""
    message = str(error)
    if data.startswith(b"\xef\xbb\xbf"):
        # Only a BOM at the start of the file is removed; one here usually comes from joined files.
        return "The line starts with a UTF-8 byte-order mark, which JSON does not allow inside a file."
    if "UTF-8" in message:
        return "The line is not valid UTF-8, so it cannot be JSON; the original bytes are kept."
    if "depth limit" in message or "recursion" in message:
        return "The line nests arrays or objects deeper than the parser's limit of 1024 levels."
    if "surrogate" in message:
        return f"The line contains an invalid Unicode escape: {message}."
    if _NON_FINITE.match(data, error.pos) or _NON_FINITE.match(data, max(error.pos - 1, 0)):
        return "The line contains NaN or Infinity, which are not valid JSON numbers."
    return f"The line is not valid JSON: {message}."
