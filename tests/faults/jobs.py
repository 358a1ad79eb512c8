"""Helpers that run the jobs as separate processes and check what reached Kafka.

A fault test runs a job in its own process, so that it can time it, kill it
or capture every line it logs. Each job's output (stdout and stderr) goes to a
file, and every wait has a timeout after which the process is killed by its
PID.
"""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import time
from typing import Optional

from apache_beam.pvalue import TaggedOutput

from localdev.topic_reader import read_topic
from samples.generate_predictions import INJECTIONS, generate
from transforms.events import event_id
from transforms.extraction import ExtractFindingsFn
from transforms.kafka_read import ConsumedRecord

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

# The batch job names the FnApiRunner explicitly. The default DirectRunner in
# Beam 2.77 first tries to download the Prism runner from the internet, and
# when that succeeds it runs the job on Prism instead of the FnApiRunner.
PUBLISH_RUNNER_ARGS = ("--runner", "FnApiRunner")

# Object generation used for every generated input, so event ids are known in advance.
GENERATION = "1764468000000000"

# Where Vertex AI writes a batch job's output, below a results bucket or folder.
RESULT_PATH = "results/2026/11/30/prediction-model-2026-11-30T02:00:00.000000Z/predictions.jsonl"


@dataclasses.dataclass
class JobRun:
    """A finished job process.

    Attributes:
        returncode: The exit code.
        seconds: Wall time from start to exit.
        output: Everything the process wrote to stdout and stderr.
        summary: The `--summary_json` file's content, or None when the job wrote none.
        ended_at: `time.monotonic()` when the exit was seen.
    """

    returncode: int
    seconds: float
    output: str
    summary: Optional[dict]
    ended_at: float


def write_predictions(folder: pathlib.Path, lines: int, seed: int = 20261130) -> pathlib.Path:
    """Write a generated Vertex AI result file of `lines` lines below `folder` and return its path."""
    path = folder / RESULT_PATH
    generate(str(path), lines, seed)
    return path


def write_unique_predictions(folder: pathlib.Path, lines: int, seed: int, label: str) -> pathlib.Path:
    """Write a generated result file in which every quoted injection string is unique.

    Each injection string of the generator gets the suffix "Ticket <label>-<line>." in
    both the transcript and the judge's answer, so that every positive verdict
    yields its own finding. The file goes into its own prediction folder.
    """
    path = folder / RESULT_PATH.replace("prediction-model-2026-11-30T02:00:00.000000Z",
                                        f"prediction-model-2026-11-30T02:00:00.000000Z-{label}")
    generate(str(path), lines, seed)
    unique = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        for injection, _ in INJECTIONS:
            line = line.replace(injection, f"{injection} Ticket {label}-{number}.")
        unique.append(line)
    path.write_text("\n".join(unique) + "\n", encoding="utf-8")
    return path


@dataclasses.dataclass
class ExpectedOutcomes:
    """What the extraction step makes of each event, computed in memory.

    Attributes:
        finding_hashes: Hash of the finding of each event with one, by event id.
        dead_letter_events: Ids of the events that become dead letters.
        negative_events: Ids of the events with a negative verdict (no output).
    """

    finding_hashes: dict
    dead_letter_events: set
    negative_events: set

    @property
    def event_count(self) -> int:
        return len(self.finding_hashes) + len(self.dead_letter_events) + len(self.negative_events)


def expected_outcomes(bootstrap_servers: str, topic: str) -> ExpectedOutcomes:
    """Run the extraction step in memory over every event on `topic` and classify each event."""
    function = ExtractFindingsFn()
    function.setup()
    outcomes = ExpectedOutcomes({}, set(), set())
    for message in read_topic(bootstrap_servers, topic, idle_seconds=2, timeout_seconds=120):
        identifier = message.key.decode("ascii")
        outputs = list(function.process(ConsumedRecord(topic, message.partition, message.offset, message.key,
                                                       message.value, None, ())))
        if not outputs:
            outcomes.negative_events.add(identifier)
        elif isinstance(outputs[0], TaggedOutput):
            outcomes.dead_letter_events.add(identifier)
        else:
            outcomes.finding_hashes[identifier] = outputs[0]["hash"]
    return outcomes


def expected_event_ids(path: pathlib.Path, generation: str = GENERATION) -> set[str]:
    """Return the event id of every non-blank line of a local result file read at `generation`."""
    object_name = str(path.resolve())
    ids = set()
    with open(path, "rb") as stream:
        for number, line in enumerate(stream, start=1):
            if line.strip():
                ids.add(event_id("", object_name, generation, number))
    return ids


def job_environment(extra: Optional[dict] = None) -> dict:
    """Return the environment of a job process: this one's, with the repository on PYTHONPATH."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = str(REPO_ROOT)
    environment.update(extra or {})
    return environment


def publish_command(input_path, bootstrap_servers: str, topic: str, dead_letter_topic: str,
                    summary_path, *extra: str, generation: Optional[str] = GENERATION) -> list[str]:
    """Return the command line of a publish job."""
    command = [sys.executable, "-m", "pipelines.publish_results", *PUBLISH_RUNNER_ARGS,
               "--input", str(input_path), "--bootstrap_servers", bootstrap_servers, "--topic", topic,
               "--dead_letter_topic", dead_letter_topic, "--summary_json", str(summary_path)]
    if generation is not None:
        command += ["--source_generation", generation]
    return command + list(extra)


def extract_command(bootstrap_servers: str, input_topic: str, output_topic: str, dead_letter_topic: str,
                    group: str, summary_path, *extra: str) -> list[str]:
    """Return the command line of an extraction job."""
    return [sys.executable, "-m", "pipelines.extract_injections", "--bootstrap_servers", bootstrap_servers,
            "--input_topic", input_topic, "--output_topic", output_topic, "--dead_letter_topic",
            dead_letter_topic, "--consumer_group", group, "--summary_json", str(summary_path), *extra]


class JobProcess:
    """A job started in its own process, with its output in a file.

    Args:
        command: The command line.
        log_path: Where stdout and stderr go.
        summary_path: The job's `--summary_json` path, read when it exits.
        environment: The process environment; `job_environment()` when None.
    """

    def __init__(self, command: list[str], log_path: pathlib.Path, summary_path: Optional[pathlib.Path] = None,
                 environment: Optional[dict] = None):
        self.log_path = pathlib.Path(log_path)
        self.summary_path = pathlib.Path(summary_path) if summary_path else None
        if self.summary_path is not None and self.summary_path.exists():
            self.summary_path.unlink()
        self.started_at = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=environment or job_environment(),
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        """Whether the process has not exited yet."""
        return self.process.poll() is None

    def output(self) -> str:
        """Return what the process has written so far."""
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def wait(self, timeout_seconds: float) -> JobRun:
        """Wait for the process to exit; kill it (SIGKILL, by PID) and raise if it runs past the timeout.

        Raises:
            TimeoutError: If the job did not exit in time.
        """
        try:
            returncode = self.process.wait(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TimeoutError(f"The job did not exit within {timeout_seconds:.0f} s and was killed; "
                               f"its output is in {self.log_path}.") from None
        ended_at = time.monotonic()
        summary = None
        if self.summary_path is not None and self.summary_path.exists():
            summary = json.loads(self.summary_path.read_text(encoding="utf-8"))
        return JobRun(returncode, ended_at - self.started_at, self.output(), summary, ended_at)

    def kill(self) -> None:
        """Kill the process with SIGKILL if it still runs, and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def run_job(command: list[str], log_path: pathlib.Path, summary_path: Optional[pathlib.Path] = None,
            timeout_seconds: float = 180.0, environment: Optional[dict] = None) -> JobRun:
    """Run a job process to its end and return the result."""
    return JobProcess(command, log_path, summary_path, environment).wait(timeout_seconds)


def topic_keys(bootstrap_servers: str, topic: str, idle_seconds: float = 2.0) -> list[bytes]:
    """Return the key of every message on a topic, repeats included."""
    return [message.key for message in read_topic(bootstrap_servers, topic, idle_seconds=idle_seconds,
                                                  timeout_seconds=120)]


def topic_values(bootstrap_servers: str, topic: str, idle_seconds: float = 2.0) -> list[dict]:
    """Return every message value on a topic, parsed as JSON."""
    return [json.loads(message.value) for message in read_topic(bootstrap_servers, topic,
                                                                idle_seconds=idle_seconds, timeout_seconds=120)]


def missing_ids(expected: set[str], keys: list[bytes]) -> set[str]:
    """Return the expected ids that no key on the topic carries."""
    return expected - {key.decode("ascii") for key in keys if key is not None}
