"""Log set-up for the function process.

On Cloud Run and Cloud Functions (2nd gen), which set `K_SERVICE`, every
record is written to standard error as one JSON line with a `severity`
field. Cloud Logging reads the severity from such structured lines and gives
plain text lines no severity at all. Elsewhere records are plain text. Either
way INFO and above are shown.
"""

import json
import logging
import os
import sys


class CloudLoggingFormatter(logging.Formatter):
    """Formats a record as a Cloud Logging structured JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        return json.dumps({"severity": record.levelname, "message": message, "logger": record.name})


def configure_logging() -> None:
    """Send INFO and above to standard error, unless the root logger is set up already."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("K_SERVICE"):
        handler.setFormatter(CloudLoggingFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
