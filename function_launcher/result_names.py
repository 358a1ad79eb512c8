"""Rules that decide which finalized objects are result files.

A result file is the object Vertex AI batch prediction writes at
`results/YYYY/MM/DD/prediction-model-<timestamp>/predictions.jsonl` (or the
same name ending in `.gz`), with a real calendar date, in the configured
bucket, and with at least one byte. Everything else is ignored with a reason
that the function logs. The reasons name the common look-alikes, so a log
reader can tell a folder placeholder from an upload part at a glance.
"""

import dataclasses
import datetime
import re
from typing import Optional

_RESULT_NAME = re.compile(
    r"results/(?P<year>\d{4})/(?P<month>\d{2})/(?P<day>\d{2})/"
    r"(?P<folder>prediction-model-[^/]+)/(?P<file>[^/]+)")

RESULT_FILE_NAMES = ("predictions.jsonl", "predictions.jsonl.gz")

# Components of parallel composite uploads: gsutil and gcloud storage write them
# under these folders (at the bucket root or beside the destination object)
# and delete them after composing the final object.
_COMPOSITE_PART = re.compile(r"(?:^|/)(?:gsutil|gcloud)/tmp/parallel_composite_uploads/")

# Temporary objects of common writers: Beam's and Hadoop's temporary folders and
# the suffixes that copy tools use while an upload is in progress.
_TEMPORARY_FOLDER = re.compile(r"(?:^|/)(?:_temporary|\.temp-beam[^/]*|beam-temp[^/]*)/")
_TEMPORARY_SUFFIXES = (".tmp", ".temp", ".part", "._COPYING_", ".crdownload")


@dataclasses.dataclass(frozen=True)
class NameCheck:
    """The outcome of checking one finalized object.

    Attributes:
        accepted: Whether the object is a result file that starts a job.
        reason: Why the object is ignored; empty when accepted.
        batch_date: `YYYY-MM-DD` from the path when the path has a valid date.
    """

    accepted: bool
    reason: str = ""
    batch_date: Optional[str] = None


def check_object(bucket: str, name: str, size: Optional[int], results_bucket: str) -> NameCheck:
    """Decide whether a finalized object is a result file.

    Args:
        bucket: The object's bucket.
        name: The object name.
        size: The object size in bytes, or None when the event did not carry it
            (then the size check is skipped).
        results_bucket: The bucket the function is configured for.

    Returns:
        An accepted check with the batch date, or a rejected one whose reason
        reads well after "ignored because it is ...".
    """
    if bucket != results_bucket:
        return NameCheck(False, f"in bucket {bucket!r}, not the configured results bucket {results_bucket!r}")
    if name.endswith("/"):
        return NameCheck(False, "a folder placeholder (the name ends with '/')")
    if _COMPOSITE_PART.search(name):
        return NameCheck(False, "a part of a parallel composite upload")
    if _TEMPORARY_FOLDER.search(name) or name.endswith(_TEMPORARY_SUFFIXES):
        return NameCheck(False, "a temporary object of an upload or a pipeline")

    match = _RESULT_NAME.fullmatch(name)
    if not match:
        return NameCheck(False, "not under results/YYYY/MM/DD/prediction-model-<timestamp>/")
    try:
        batch_date = datetime.date(int(match["year"]), int(match["month"]), int(match["day"]))
    except ValueError:
        return NameCheck(False, f"dated {match['year']}/{match['month']}/{match['day']}, "
                                "which is not a calendar date")
    if match["file"] not in RESULT_FILE_NAMES:
        return NameCheck(False, f"{match['file']!r}, another file of the prediction folder "
                                "(only predictions.jsonl and predictions.jsonl.gz start a job)")
    if size == 0:
        return NameCheck(False, "a zero-byte object")
    return NameCheck(True, batch_date=batch_date.isoformat())
