"""Turning a positive verdict into a finding: a checked, normalised, keyed injection string.

Normalisation applies Unicode NFKC and folds every run of whitespace
(including line breaks) into one space, trimming both ends. The finding keeps
that text with its case. Its key is the SHA-256 (hex) of the casefolded
normalised text, so the same string in another case, width or spacing gets the
same key.

A quote counts only if it occurs in the transcript that was judged: the text
parts of `request.contents`, never `request.systemInstruction` (the judge's
own prompt). Both sides are normalised and compared case-sensitively first,
then casefolded. One pair of quotation marks wrapped around the whole quote
is removed when the quote occurs only without them. Anything else, such as a
shortened quote with "...", is rejected, because a finding must be text that
a user really sent.

Findings follow `schemas/prompt-injection.schema.json`.
"""

import hashlib
import unicodedata
from typing import NamedTuple, Optional

from transforms.rejections import RecordRejected
from transforms.verdicts import Verdict

SCHEMA_VERSION = 1

FINDING_HEADERS = (
    ("content-type", b"application/json"),
    ("schema-version", str(SCHEMA_VERSION).encode("ascii")),
)

# Opening and closing quotation marks a judge may wrap around its quote.
_WRAPPING_QUOTES = {'"': '"', "'": "'", "`": "`", "\u201c": "\u201d", "\u2018": "\u2019", "\u00ab": "\u00bb",
                    "\u201e": "\u201c"}


class QuoteRejected(RecordRejected):
    """Raised when a positive verdict's quote cannot become a finding."""


class QuoteMatch(NamedTuple):
    """A quote found in its transcript.

    Attributes:
        text: The normalised quote, case kept.
        match: "exact" when it occurs with the same case, else "case_insensitive".
    """

    text: str
    match: str


def normalize_text(text: str) -> str:
    """Apply NFKC, fold whitespace runs into one space and trim the ends."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def finding_key(normalized: str) -> str:
    """Return the finding key: the SHA-256 hex digest of the casefolded normalised text, UTF-8 encoded."""
    return hashlib.sha256(normalized.casefold().encode("utf-8")).hexdigest()


def transcript_text(record: dict) -> str:
    """Return the judged transcript: every text part of `request.contents`, one per line.

    `request.systemInstruction` is not part of it.
    """
    request = record.get("request")
    contents = request.get("contents") if isinstance(request, dict) else None
    texts = []
    for content in contents if isinstance(contents, list) else ():
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else ():
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
    return "\n".join(texts)


def _unwrapped(text: str) -> Optional[str]:
    """Return `text` without one pair of quotation marks around all of it, or None if it has none."""
    if len(text) >= 2 and _WRAPPING_QUOTES.get(text[0]) == text[-1]:
        return text[1:-1].strip()
    return None


def find_quote(quote: str, transcript: str) -> QuoteMatch:
    """Check that a quote occurs in a transcript after normalising both.

    Raises:
        QuoteRejected: If the quote is empty after normalisation or does not
            occur in the transcript.
    """
    candidates = [normalize_text(quote)]
    if not candidates[0]:
        raise QuoteRejected("The verdict's injection_text is only whitespace.", "missing_injection_text",
                            "MissingInjectionText")
    if candidates[0] in transcript and (transcript.isascii() or unicodedata.is_normalized("NFKC", transcript)):
        # The common case skips normalising the transcript. NFKC leaves an NFKC-normalised transcript as it
        # is. The quote has only single spaces between other characters, so each of its spaces is a whole
        # whitespace run of the transcript, which folding keeps. The quote therefore also occurs in the
        # normalised transcript, and the full check below would return this same match.
        return QuoteMatch(candidates[0], "exact")

    normalized_transcript = normalize_text(transcript)
    folded_transcript = None
    unwrapped = _unwrapped(candidates[0])
    if unwrapped:
        candidates.append(unwrapped)
    for candidate in candidates:
        if candidate in normalized_transcript:
            return QuoteMatch(candidate, "exact")
    for candidate in candidates:
        if folded_transcript is None:
            folded_transcript = normalized_transcript.casefold()
        if candidate.casefold() in folded_transcript:
            return QuoteMatch(candidate, "case_insensitive")

    preview = candidates[0][:120]
    raise QuoteRejected(f"The judge's injection_text does not occur in the judged transcript, so it is not "
                        f"a finding: {preview!r}.", "quote_not_in_transcript", "QuoteNotInTranscript")


def build_finding(event: dict, verdict: Verdict, quote: QuoteMatch, extracted_at: str,
                  kafka_source: Optional[dict] = None) -> dict:
    """Build a prompt-injection record for a quote found in an event's transcript.

    Args:
        event: The BatchResultEvent, already validated.
        verdict: The positive verdict of its record.
        quote: The quote as found in the transcript.
        extracted_at: The extraction time, RFC 3339.
        kafka_source: `{"topic", "partition", "offset"}` of the consumed event.
    """
    data = event["data"]
    source = data["source"]
    response = data["record"].get("response")
    model_version = response.get("modelVersion") if isinstance(response, dict) else None
    finding = {
        "schemaversion": SCHEMA_VERSION,
        "hash": finding_key(quote.text),
        "text": quote.text,
        "category": verdict.category,
        "confidence": verdict.confidence,
        "reason": verdict.reason,
        "match": quote.match,
        "request_id": data["request_id"],
        "source": {
            "uri": source["uri"],
            "bucket": source["bucket"],
            "object": source["object"],
            "generation": source["generation"],
            "line": source["line"],
            "prediction_folder": source["prediction_folder"],
        },
        "batch_date": source["batch_date"],
        "model_version": model_version if isinstance(model_version, str) else None,
        "event_id": event["id"],
        "extracted_at": extracted_at,
    }
    if kafka_source is not None:
        finding["kafka"] = dict(kafka_source)
    return finding
