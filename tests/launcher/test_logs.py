"""Structured log lines for Cloud Logging."""

import json
import logging
import sys

from function_launcher.logs import CloudLoggingFormatter


def make_record(level, message, *args, exc_info=None):
    return logging.LogRecord("function_launcher.handler", level, __file__, 1, message, args, exc_info)


def test_formatter_writes_severity():
    line = CloudLoggingFormatter().format(make_record(logging.WARNING, "Ignoring %s", "gs://b/o#1"))
    assert json.loads(line) == {"severity": "WARNING", "message": "Ignoring gs://b/o#1",
                                "logger": "function_launcher.handler"}


def test_formatter_keeps_traceback():
    try:
        raise ValueError("bad value")
    except ValueError:
        record = make_record(logging.ERROR, "Launch failed", exc_info=sys.exc_info())
    message = json.loads(CloudLoggingFormatter().format(record))["message"]
    assert message.startswith("Launch failed\nTraceback")
    assert "ValueError: bad value" in message
