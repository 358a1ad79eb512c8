"""Deterministic Dataflow job names for publish jobs.

A name is `publish-YYYYMMDD-<hash>`: the batch date from the object path and
the first 10 hex digits of sha256("<object name>#<generation>"). The same
object generation always gets the same name, so a repeated finalize event
requests a job name that exists already, and a new generation of the same object
gets a new name. Names are 26 characters, well within Dataflow's rule
`[a-z]([-a-z0-9]{0,1022}[a-z0-9])?` and the 63 characters that labels and
DNS names allow.

Ten hex digits are 40 bits: two different object generations with the same
batch date share a name with probability about n²/2⁴¹ for n generations on
that date, about 5e-9 for n = 100.
"""

import hashlib
import re

JOB_NAME_PREFIX = "publish"
HASH_HEX_DIGITS = 10

# Dataflow's job name rule.
JOB_NAME_PATTERN = re.compile(r"[a-z]([-a-z0-9]{0,1022}[a-z0-9])?")

_PATH_DATE = re.compile(r"results/(\d{4})/(\d{2})/(\d{2})/")


def publish_job_name(object_name: str, generation: str) -> str:
    """Return the Dataflow job name for one generation of one object.

    Args:
        object_name: The object name inside the bucket.
        generation: The object generation as a decimal string.

    Returns:
        `publish-YYYYMMDD-<10 hex>`, or `publish-<10 hex>` when the name has
        no `results/YYYY/MM/DD/` part.
    """
    digest = hashlib.sha256(f"{object_name}#{generation}".encode("utf-8")).hexdigest()[:HASH_HEX_DIGITS]
    date = _PATH_DATE.match(object_name)
    if date is None:
        return f"{JOB_NAME_PREFIX}-{digest}"
    return f"{JOB_NAME_PREFIX}-{''.join(date.groups())}-{digest}"
