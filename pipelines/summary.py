"""Run summaries built from a finished pipeline's Beam metrics."""

import json
import logging
import os
import sys
import threading

from apache_beam.metrics.metric import MetricsFilter

_LOGGER = logging.getLogger(__name__)


# NOTE: On the FnApiRunner of Beam 2.77, each bundle wraps a stage's metrics in one more lazy
# generator, so reading the metrics of a run with many bundles (a long streaming run) recurses once per
# bundle. The query therefore runs in a thread with a large stack and a high recursion limit.
_METRICS_STACK_BYTES = 512 << 20
_METRICS_RECURSION_LIMIT = 1_000_000


def counter_totals(result, namespace: str) -> dict[str, int]:
    """Sum each counter of `namespace` over all steps.

    Committed values are used where the runner reports them, else attempted
    values, so retried bundles are not counted twice on runners that commit.
    """
    outcome = {}

    def query():
        try:
            outcome["counters"] = result.metrics().query(MetricsFilter().with_namespace(namespace))["counters"]
        except BaseException as error:  # Re-raised in the calling thread.
            outcome["error"] = error

    previous_stack = threading.stack_size(_METRICS_STACK_BYTES)
    previous_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous_limit, _METRICS_RECURSION_LIMIT))
    try:
        worker = threading.Thread(target=query, name="metrics-query")
        worker.start()
        worker.join()
    finally:
        threading.stack_size(previous_stack)
        sys.setrecursionlimit(previous_limit)
    if "error" in outcome:
        raise outcome["error"]

    totals: dict[str, int] = {}
    for counter in outcome["counters"]:
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
