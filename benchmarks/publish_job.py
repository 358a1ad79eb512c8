"""Running the publish job as its own process, as a user would, and taking its timings apart.

The job runs as `python -m pipelines.publish_results ... --summary_json`, so
the measurement includes everything a real run pays for: interpreter
start-up, imports, runner start-up, the pipeline and the exit. The job's own
log lines separate these phases. The job logs "Publishing ..." after its
imports and option parsing, just before it builds the pipeline, and logs
"Publish summary" after `wait_until_finish()`. Log timestamps have
millisecond resolution, and they are compared with the wall clock at which
this process started the job, so both clocks are the same system clock.
"""

import dataclasses
import datetime
import json
import logging
import os
import re
import sys
from typing import Optional

from benchmarks.processes import MeasuredRun, run_measured

_LOGGER = logging.getLogger(__name__)

_LOG_LINE = re.compile(r"^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (?P<level>\w+) (?P<name>\S+): (?P<message>.*)$")
_RUNNER = re.compile(r"Running pipeline with (\w+)")
_FALLBACK = "Falling back to DirectRunner"


@dataclasses.dataclass
class PublishJobRun:
    """One run of the publish job.

    Attributes:
        process: Timing and memory of the job's process tree.
        summary: The job's `--summary_json` content.
        startup_seconds: From process start to the job's "Publishing" log
            line (interpreter, imports, option parsing, file matching).
        pipeline_seconds: From "Publishing" to "Publish summary" (graph
            construction, runner start-up, reading, producing, flushing).
        shutdown_seconds: From "Publish summary" to process exit.
        runner: The runner that ran the pipeline, as read from Beam's log.
            Beam 2.77's DirectRunner tries Prism first. When Prism cannot be
            downloaded, it falls back to the FnApiRunner for batch pipelines
            it supports, else to the BundleBasedDirectRunner.
    """

    process: MeasuredRun
    summary: dict
    startup_seconds: Optional[float]
    pipeline_seconds: Optional[float]
    shutdown_seconds: Optional[float]
    runner: str


def _log_time(text: str) -> float:
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _runner(names: list[str], fell_back: bool) -> str:
    if not fell_back:
        return names[-1] if names else "unknown"
    if "DirectRunner" in names:
        return "BundleBasedDirectRunner (Prism not available)"
    return "FnApiRunner (Prism not available)"


def log_phase_times(stderr_path: str) -> tuple[Optional[float], Optional[float], str]:
    """Return the wall-clock times of the "Publishing" and "Publish summary" log lines, and the runner."""
    publishing = summary = None
    runners = []
    fell_back = False
    with open(stderr_path, encoding="utf-8", errors="replace") as stream:
        for text in stream:
            match = _LOG_LINE.match(text.rstrip("\n"))
            if not match:
                continue
            message = match["message"]
            # Matched on the message only: which module logs these lines may change.
            if message.startswith("Publishing ") and publishing is None:
                publishing = _log_time(match["time"])
            elif message.startswith("Publish summary"):
                summary = _log_time(match["time"])
            runner = _RUNNER.search(message)
            if runner:
                runners.append(runner.group(1))
            fell_back = fell_back or message.startswith(_FALLBACK)
    return publishing, summary, _runner(runners, fell_back)


def run_publish_job(*, repo_root: str, input_path: str, bootstrap_servers: str, topic: str, dead_letter_topic: str,
                    work_dir: str, label: str, timeout_seconds: float, extra_args: tuple[str, ...] = (),
                    python: str = sys.executable) -> PublishJobRun:
    """Run the publish job on one file and return its timings, peak RSS and summary.

    Raises:
        RuntimeError: If the job exits with an error or writes no summary;
            the message names the file with the job's log.
    """
    summary_path = os.path.join(work_dir, f"{label}.summary.json")
    stderr_path = os.path.join(work_dir, f"{label}.log")
    if os.path.exists(summary_path):
        os.remove(summary_path)
    command = [python, "-m", "pipelines.publish_results", "--input", input_path,
               "--bootstrap_servers", bootstrap_servers, "--topic", topic, "--dead_letter_topic", dead_letter_topic,
               "--summary_json", summary_path, *extra_args]
    process = run_measured(command, cwd=repo_root, stderr_path=stderr_path, timeout_seconds=timeout_seconds)
    if process.returncode != 0 or not os.path.exists(summary_path):
        raise RuntimeError(f"The publish job exited with code {process.returncode}; see its log {stderr_path}.")
    with open(summary_path, encoding="utf-8") as stream:
        summary = json.load(stream)

    publishing, summarized, runner = log_phase_times(stderr_path)
    ended = process.started_at + process.wall_seconds
    startup = publishing - process.started_at if publishing else None
    pipeline = summarized - publishing if publishing and summarized else None
    shutdown = ended - summarized if summarized else None
    if pipeline is None:
        _LOGGER.warning("The log %s has no \"Publishing\" or \"Publish summary\" line; only the wall time is known.",
                        stderr_path)
    return PublishJobRun(process, summary, startup, pipeline, shutdown, runner)
