"""Run summaries built from a finished pipeline's Beam metrics."""

import json
import logging
import os

from apache_beam.metrics.metric import MetricsFilter

_LOGGER = logging.getLogger(__name__)


def counter_totals(result, namespace: str) -> dict[str, int]:
    """Sum each counter of `namespace` over all steps.

    Committed values are used where the runner reports them, else attempted
    values, so retried bundles are not counted twice on runners that commit.
    """
    totals: dict[str, int] = {}
    for counter in result.metrics().query(MetricsFilter().with_namespace(namespace))["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + (value or 0)
    return totals


def write_summary_json(path: str, summary: dict) -> None:
    """Write `summary` as JSON to a local path, creating parent folders."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(summary, stream, indent=2, sort_keys=True)
        stream.write("\n")
    _LOGGER.info("Wrote run summary to %s", path)


def report_summary(job: str, summary: dict, path: str | None) -> None:
    """Log a finished job's summary, write it to `path` if set, and log an error if it does not balance."""
    _LOGGER.info("%s summary: %s", job, summary)
    if path:
        write_summary_json(path, summary)
    if not summary["balanced"]:
        _LOGGER.error("%s accounting does not balance: %s", job, summary)
