"""Reading the judge's verdict out of a Vertex AI Gemini batch prediction record.

The judge is asked to answer with one JSON object:
`{"is_prompt_injection": bool, "confidence": 0..1, "injection_text": str|null,
"category": str, "reason": str}`. Real answers also arrive wrapped in a
Markdown code fence, with prose around the JSON, or split over several
response parts, and these are all handled. A record that cannot give a
verdict raises `VerdictRejected` with a plain reason instead; the parser never
guesses:

* the row failed in Vertex AI (non-empty `status`);
* the prompt was blocked (`response.promptFeedback.blockReason`);
* the answer was cut off (`finishReason` `MAX_TOKENS`) or stopped for
  another reason than `STOP` (for example `SAFETY`);
* the answer has no text, contains no JSON object with `is_prompt_injection`,
  contains several that disagree, or has fields of the wrong type.

Only the first candidate is read; Vertex AI batch jobs return one unless the
request asked for more.

Speed: JSON in the answer is decoded with orjson where orjson gives the same
value as the standard `json` module, and with `json` everywhere else, so every
verdict and every rejection reason is the same as with `json` alone (see
`_orjson_value` and `_json_objects`). On the benchmark's generated answers
`parse_verdict` takes about 4 µs for a plain JSON answer and 7 µs for a fenced
one, against 7.5 and 12.5 µs with `json` alone (timeit, 2-vCPU benchmark
machine).
"""

import json
import re
from typing import NamedTuple, Optional

import orjson

from transforms.rejections import RecordRejected

# finishReason values after which the answer text is complete.
_COMPLETE_FINISH_REASONS = frozenset({"STOP", "FINISH_REASON_UNSPECIFIED"})

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\r?\n?(.*?)```", re.DOTALL)

_VERDICT_FIELDS = ("is_prompt_injection", "confidence", "injection_text", "category", "reason")
_VERDICT_FIELD_SET = frozenset(_VERDICT_FIELDS)


class Verdict(NamedTuple):
    """The judge's answer for one transcript.

    Attributes:
        is_prompt_injection: Whether the judge found a prompt injection.
        confidence: The judge's confidence, from 0 to 1.
        injection_text: The quoted injection, or None for a negative verdict.
        category: The judge's category, for example "instruction_override".
        reason: The judge's one-sentence explanation.
    """

    is_prompt_injection: bool
    confidence: float
    injection_text: Optional[str]
    category: str
    reason: str


class VerdictRejected(RecordRejected):
    """Raised when a record yields no verdict."""


def _reject(message: str, code: str, error_type: str) -> VerdictRejected:
    return VerdictRejected(message, code, error_type)


def response_text(record: dict) -> str:
    """Return the text of the first candidate, its parts joined without separators.

    Parts marked `"thought": true` (a thinking model's reasoning) are left
    out. Joining without separators restores JSON that the model split in
    the middle of a token.

    Raises:
        VerdictRejected: If the row failed, the prompt was blocked, the answer
            was cut off or stopped early, or the answer has no text.
    """
    status = record.get("status")
    if isinstance(status, str) and status:
        raise _reject(f"The row failed in Vertex AI, so there is no verdict: {status}", "row_failed", "RowFailed")

    response = record.get("response")
    if not isinstance(response, dict):
        raise _reject("The row has no response from the model.", "no_response", "NoResponse")

    feedback = response.get("promptFeedback")
    block_reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if block_reason:
        raise _reject(f"Vertex AI blocked the prompt with block reason {block_reason}, so there is no verdict.",
                      "prompt_blocked", "PromptBlocked")

    candidates = response.get("candidates")
    if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], dict):
        raise _reject("The response has no candidates, so there is no verdict.", "no_candidates", "NoCandidates")
    candidate = candidates[0]

    finish_reason = candidate.get("finishReason")
    if finish_reason == "MAX_TOKENS":
        raise _reject("The answer was truncated at the output token limit (finishReason MAX_TOKENS), "
                      "so the verdict is incomplete.", "answer_truncated", "AnswerTruncated")
    if finish_reason is not None and finish_reason not in _COMPLETE_FINISH_REASONS:
        raise _reject(f"The model stopped the answer with finishReason {finish_reason}, so the verdict "
                      "cannot be trusted.", "answer_stopped", "AnswerStopped")

    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    texts = []
    for part in parts if isinstance(parts, list) else ():
        if isinstance(part, dict) and not part.get("thought") and isinstance(part.get("text"), str):
            texts.append(part["text"])
    text = "".join(texts)
    if not text.strip():
        raise _reject("The answer has no text, so there is no verdict.", "empty_answer", "EmptyAnswer")
    return text


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a valid JSON number")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)

# Decoding a verdict with orjson takes 0.3 µs, with `json` 1.5 µs (orjson 3.13). Both accept strict RFC 8259
# JSON without NaN or Infinity and build equal values, with two exceptions that `_orjson_value` avoids. First,
# orjson turns an integer beyond 64 bits into a float where `json` keeps an int. Second, orjson's nesting
# limit (1024) is above the depth where `json` raises RecursionError. Where orjson rejects a text that `json`
# accepts (a lone surrogate escape, a number that overflows to infinity), the callers fall back to `json`.
_MAX_FAST_BRACKETS = 500
_HUGE_FLOAT = float(2 ** 63)

_NOT_DECODED = object()


def _has_huge_float(value) -> bool:
    """Return whether a value decoded by orjson contains a float of magnitude 2**63 or more, at any depth."""
    # orjson builds exact dicts, lists and floats, so `type(...) is` is enough and faster than isinstance.
    kind = type(value)
    if kind is float:
        return not -_HUGE_FLOAT < value < _HUGE_FLOAT
    if kind is dict:
        items = value.values()
    elif kind is list:
        items = value
    else:
        return False
    for item in items:
        kind = type(item)
        if kind is float:
            if not -_HUGE_FLOAT < item < _HUGE_FLOAT:
                return True
        elif (kind is dict or kind is list) and _has_huge_float(item):
            return True
    return False


def _orjson_value(text: str):
    """Return the value orjson decodes from `text` if `json` would decode the same, else `_NOT_DECODED`.

    `_NOT_DECODED` means "ask `json`", not "invalid": the text may still be
    JSON that only `json` decodes, or be decoded by it differently.
    """
    # Fewer than 500 brackets keep the nesting far below Python's recursion limit.
    if text.count("{") + text.count("[") >= _MAX_FAST_BRACKETS:
        return _NOT_DECODED
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _NOT_DECODED
    # A float this large may come from an integer literal that `json` keeps exact.
    return _NOT_DECODED if _has_huge_float(value) else value


def _json_objects(text: str) -> list[dict]:
    """Return every JSON object that starts at a `{` in `text` and is not inside an earlier one.

    Fast path: when the text from its first `{` to its last `}` is one JSON
    object, that object is the whole answer. The object that `json` decodes
    at the first `{` ends at its matching `}`, which is then the last one, and
    no later `{` can start an object without a `}` after it.
    """
    first = text.find("{")
    if first == -1:
        return []
    last = text.rfind("}")
    if last > first:
        value = _orjson_value(text[first:last + 1])
        if value is not _NOT_DECODED:
            return [value]
    objects = []
    position = first
    while position != -1:
        try:
            value, end = _DECODER.raw_decode(text, position)
        except (ValueError, RecursionError):
            # RecursionError: nesting deeper than Python's recursion limit, which the json module does not catch.
            position = text.find("{", position + 1)
            continue
        if isinstance(value, dict):
            objects.append(value)
        position = text.find("{", end)
    return objects


def _one_verdict(found: list) -> Optional[dict]:
    """Return the verdict among the objects one way found, None if there is none.

    Raises:
        VerdictRejected: If the way found several verdict objects that differ.
    """
    if len(found) == 1:
        # The usual case, one object, without building lists.
        return found[0] if "is_prompt_injection" in found[0] else None
    verdicts = [value for value in found if "is_prompt_injection" in value]
    if not verdicts:
        return None
    if any(value != verdicts[0] for value in verdicts[1:]):
        raise _reject(f"The answer contains {len(verdicts)} different verdict objects, so the verdict is "
                      "ambiguous.", "ambiguous_answer", "AmbiguousVerdict")
    return verdicts[0]


def find_verdict_object(text: str) -> dict:
    """Find the verdict JSON object in an answer.

    The whole text is tried first, then the contents of Markdown code
    fences, then every JSON object in the text. The first of these ways that
    finds objects with an `is_prompt_injection` field decides. Several such
    objects are accepted only when they are equal.

    Raises:
        VerdictRejected: If there is no such object or the objects disagree.
    """
    stripped = text.strip()
    # The ways run one after the other and stop at the first that decides. Each call of the json module is
    # made from this function, at the same stack depth as before orjson was added, because whether json
    # raises RecursionError on deep nesting depends on that depth.
    if stripped.startswith("{") and stripped.endswith("}"):
        # Only a whole text that is one object can decide, and an object starts with { and ends with }.
        whole = _orjson_value(stripped)
        if whole is _NOT_DECODED:
            try:
                whole = _DECODER.decode(stripped)
            except (ValueError, RecursionError):
                whole = None
        if isinstance(whole, dict):
            verdict = _one_verdict([whole])
            if verdict is not None:
                return verdict
    fenced = _FENCE.findall(stripped) if "```" in stripped else []
    if fenced:
        verdict = _one_verdict([value for body in fenced for value in _json_objects(body)])
        if verdict is not None:
            return verdict
    verdict = _one_verdict(_json_objects(stripped))
    if verdict is not None:
        return verdict

    preview = stripped[:120]
    raise _reject(f"The answer contains no JSON object with an is_prompt_injection field: {preview!r}.",
                  "unparseable_answer", "UnparseableVerdict")


def _has_unpaired_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_verdict_fields(value: dict) -> Verdict:
    """Check the types and ranges of a verdict object's fields.

    Raises:
        VerdictRejected: For a missing field, a wrong type, a confidence
            outside 0..1, a string with an unpaired surrogate, or a positive
            verdict without injection text.
    """
    if not _VERDICT_FIELD_SET <= value.keys():
        missing = [name for name in _VERDICT_FIELDS if name not in value]
        raise _reject(f"The verdict lacks the field(s) {', '.join(missing)}.", "invalid_verdict", "InvalidVerdict")

    flag = value["is_prompt_injection"]
    if not isinstance(flag, bool):
        raise _reject(f"is_prompt_injection must be true or false, not {flag!r}.", "invalid_verdict",
                      "InvalidVerdict")
    confidence = value["confidence"]
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
        raise _reject(f"confidence must be a number from 0 to 1, not {confidence!r}.", "invalid_verdict",
                      "InvalidVerdict")
    for name in ("category", "reason"):
        if not isinstance(value[name], str):
            raise _reject(f"{name} must be a string, not {value[name]!r}.", "invalid_verdict", "InvalidVerdict")
    injection_text = value["injection_text"]
    if injection_text is not None and not isinstance(injection_text, str):
        raise _reject(f"injection_text must be a string or null, not {injection_text!r}.", "invalid_verdict",
                      "InvalidVerdict")
    for name in ("category", "reason", "injection_text"):
        # An ASCII string cannot contain a surrogate, so only the others are encoded to check.
        if isinstance(value[name], str) and not value[name].isascii() and _has_unpaired_surrogate(value[name]):
            # JSON can escape one half of a surrogate pair (\ud800); such a string cannot be encoded as UTF-8.
            raise _reject(f"{name} contains an unpaired surrogate escape, so it is not valid Unicode text.",
                          "invalid_verdict", "InvalidVerdict")
    if flag and not (injection_text or "").strip():
        raise _reject("The verdict is positive but injection_text is empty, so there is nothing to extract.",
                      "missing_injection_text", "MissingInjectionText")

    return Verdict(flag, float(confidence), injection_text if flag else None, value["category"], value["reason"])


def parse_verdict(record: dict) -> Verdict:
    """Return the judge's verdict from one prediction record.

    Args:
        record: The original Vertex AI batch output line, parsed.

    Raises:
        VerdictRejected: With a plain reason when the record gives no verdict.
    """
    return check_verdict_fields(find_verdict_object(response_text(record)))
