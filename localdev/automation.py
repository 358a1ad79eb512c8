"""Local automation: a result file uploaded to the emulator becomes findings on Kafka, with no cloud account.

Starts, each on a free loopback port:

1. a Tansu broker with the four topics;
2. fake-gcs-server with the results bucket;
3. the extraction job (`pipelines.extract_injections`, streaming on the local runner);
4. the launcher function (`function_launcher/main.py`) under functions-framework,
   with `LAUNCHER=local`.

Then it uploads a result file, posts the finalize CloudEvent that Eventarc
would send, and prints each finding as it arrives on the findings topic. The
function starts the publish job on the DirectRunner. The publish job reads
the object from the emulator through `gs://`, and the extraction job reads
the published events. At the end it prints both jobs' summaries and the
time from the finalize event to the first event and the first finding.

By default the extraction job stops after `--idle-seconds` without a new
event and the command then stops everything and exits: 0 when the publish job
balanced its accounting and the extraction job ended cleanly with at least one
finding. With `--keep-running` everything stays up until Ctrl-C.

Usage:
    python -m localdev.automation [--input PATH] [--object-name NAME] [--work-dir DIR]
"""

import argparse
import json
import logging
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Optional

from confluent_kafka import Consumer, TopicPartition

from function_launcher.config import ENVIRONMENT_VARIABLES
from function_launcher.job_names import publish_job_name
from function_launcher.local_launcher import JobFiles, wait_for_job
from function_launcher.result_names import check_object
from localdev.broker import LocalBroker
from localdev.gcs_emulator import GcsEmulator, finalized_event, post_event
from localdev.ports import free_port, wait_for_port

_LOGGER = logging.getLogger(__name__)

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
SAMPLE_OBJECT_NAME = "results/2026/11/30/prediction-model-2026-11-30T02:00:00.000000Z/predictions.jsonl"
SAMPLE_INPUT = REPO_ROOT / "samples" / SAMPLE_OBJECT_NAME

BUCKET = "results-local"
EVENT_TOPIC = "batch-job-results"
EVENT_DEAD_LETTER_TOPIC = "batch-job-results-dlq"
FINDING_TOPIC = "prompt-injections"
EXTRACT_DEAD_LETTER_TOPIC = "extract-injections-dlq"
CONSUMER_GROUP = "extract-injections-local"

FUNCTION_TARGET = "on_result_finalized"
FUNCTION_SOURCE = REPO_ROOT / "function_launcher" / "main.py"

class FunctionServer:
    """The launcher function served by `python -m functions_framework` on a free loopback port.

    Args:
        environment: Launcher variables (see `function_launcher.config`); any
            launcher variable of this process's environment that is not
            given here is removed.
        log_path: Where the server's output goes.
    """

    def __init__(self, environment: dict[str, str], log_path: os.PathLike):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self._environment = environment
        self._log_path = log_path
        self.process: Optional[subprocess.Popen] = None

    def start(self, timeout_seconds: float = 60.0) -> "FunctionServer":
        """Start the server and wait until it accepts connections.

        Raises:
            RuntimeError: If the server exits first, for example on an invalid
                configuration; its log contains the error.
        """
        # Launcher settings of the calling shell must not leak into the local run.
        environment = {name: value for name, value in os.environ.items() if name not in ENVIRONMENT_VARIABLES}
        environment.update(self._environment)
        command = [sys.executable, "-m", "functions_framework", "--source", str(FUNCTION_SOURCE),
                   "--target", FUNCTION_TARGET, "--host", "127.0.0.1", "--port", str(self.port)]
        with open(self._log_path, "ab") as log:
            self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=environment, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT)
        _LOGGER.info("Started the launcher function (pid %d) at %s, log %s", self.process.pid, self.url,
                     self._log_path)
        try:
            wait_for_port(self.port, timeout_seconds, self.process)
        except RuntimeError as error:
            raise RuntimeError(f"The launcher function did not start: {error} See {self._log_path}.") from None
        return self

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after 10 s."""
        _stop_process(self.process, "launcher function", signal.SIGTERM, 10)

    def __enter__(self) -> "FunctionServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


class TopicWatcher:
    """Reads a topic from its beginning in a thread and hands each message value to a callback.

    Attributes:
        count: Messages read so far.
        first_arrival: `time.monotonic()` when the first message arrived, or None.
    """

    def __init__(self, bootstrap_servers: str, topic: str, on_message: Callable[[bytes], None]):
        self.count = 0
        self.first_arrival: Optional[float] = None
        self._bootstrap_servers = bootstrap_servers
        self._topic = topic
        self._on_message = on_message
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{topic}", daemon=True)

    def start(self) -> "TopicWatcher":
        """Start reading."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop reading and wait for the thread."""
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        consumer = Consumer({"bootstrap.servers": self._bootstrap_servers, "group.id": f"watch-{self._topic}",
                             "enable.auto.commit": "false", "enable.partition.eof": "false"})
        try:
            partitions = consumer.list_topics(self._topic, timeout=10).topics[self._topic].partitions
            consumer.assign([TopicPartition(self._topic, partition, 0) for partition in partitions])
            while not self._stop.is_set():
                message = consumer.poll(0.2)
                if message is None or message.error():
                    continue
                if self.first_arrival is None:
                    self.first_arrival = time.monotonic()
                self.count += 1
                self._on_message(message.value())
        finally:
            consumer.close()


def _stop_process(process: Optional[subprocess.Popen], label: str, first_signal: int, grace_seconds: float) -> None:
    """Send `first_signal` to a child process this module started, then SIGKILL after the grace period."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(first_signal)
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        _LOGGER.warning("The %s (pid %d) did not stop within %.0f s; killing it", label, process.pid, grace_seconds)
        process.kill()
        process.wait()
    _LOGGER.info("Stopped the %s (pid %d)", label, process.pid)


def start_extraction(bootstrap_servers: str, work_dir: pathlib.Path, idle_seconds: Optional[float]) -> subprocess.Popen:
    """Start the extraction job in a child process; its output goes to `extract.log` in `work_dir`."""
    command = [sys.executable, "-m", "pipelines.extract_injections", "--bootstrap_servers", bootstrap_servers,
               "--input_topic", EVENT_TOPIC, "--output_topic", FINDING_TOPIC,
               "--dead_letter_topic", EXTRACT_DEAD_LETTER_TOPIC, "--consumer_group", CONSUMER_GROUP,
               "--summary_json", str(work_dir / "extract-summary.json")]
    if idle_seconds is not None:
        command += ["--stop_after_idle_seconds", str(idle_seconds)]
    with open(work_dir / "extract.log", "ab") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT)
    _LOGGER.info("Started the extraction job (pid %d), log %s", process.pid, work_dir / "extract.log")
    return process


def print_finding(value: bytes) -> None:
    """Print one finding as one line: key prefix, category, confidence and the start of the text."""
    try:
        finding = json.loads(value)
    except ValueError:
        print(f"  finding (not JSON): {value[:80]!r}", flush=True)
        return
    text = finding.get("text", "")
    shortened = text if len(text) <= 70 else text[:67] + "..."
    print(f"  finding {finding.get('hash', '')[:12]}  {finding.get('category', '?'):<20} "
          f"confidence={finding.get('confidence')}  {shortened!r}", flush=True)


def run(input_path: pathlib.Path, object_name: str, work_dir: pathlib.Path, idle_seconds: float,
        keep_running: bool, job_timeout_seconds: float) -> int:
    """Start everything, upload `input_path` as `object_name`, and report; return the exit code."""
    state_dir = work_dir / "launcher-state"
    extraction: Optional[subprocess.Popen] = None
    watchers: list[TopicWatcher] = []
    with LocalBroker(log_path=str(work_dir / "tansu.log")) as broker, \
            GcsEmulator(log_path=str(work_dir / "fake-gcs-server.log")) as emulator:
        try:
            broker.create_topics([EVENT_TOPIC, EVENT_DEAD_LETTER_TOPIC, FINDING_TOPIC, EXTRACT_DEAD_LETTER_TOPIC])
            emulator.create_bucket(BUCKET)
            print(f"Broker (Tansu):        {broker.bootstrap_servers}")
            print(f"Cloud Storage (fake):  {emulator.endpoint}, bucket gs://{BUCKET}")

            extraction = start_extraction(broker.bootstrap_servers, work_dir, None if keep_running else idle_seconds)
            print(f"Extraction job:        pid {extraction.pid}, log {work_dir / 'extract.log'}")

            function_environment = {
                "RESULTS_BUCKET": BUCKET, "LAUNCHER": "local", "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                "KAFKA_TOPIC": EVENT_TOPIC, "DEAD_LETTER_TOPIC": EVENT_DEAD_LETTER_TOPIC,
                "LOCAL_STATE_DIR": str(state_dir), **emulator.environment(),
            }
            with FunctionServer(function_environment, work_dir / "function.log") as function:
                print(f"Launcher function:     {function.url}, log {work_dir / 'function.log'}")

                events = TopicWatcher(broker.bootstrap_servers, EVENT_TOPIC, lambda value: None).start()
                findings = TopicWatcher(broker.bootstrap_servers, FINDING_TOPIC, print_finding).start()
                watchers += [events, findings]

                resource = emulator.upload(BUCKET, object_name, input_path.read_bytes(), "application/jsonl")
                job_name = publish_job_name(object_name, resource["generation"])
                print(f"\nUploaded gs://{BUCKET}/{object_name} (generation {resource['generation']}, "
                      f"{resource['size']} bytes)")
                finalized_at = time.monotonic()
                status, body = post_event(function.url, finalized_event(resource))
                print(f"Finalize event -> function: HTTP {status}; publish job {job_name}\n")
                if status != 200:
                    print(f"The function rejected the event: {body[:500]!r}", file=sys.stderr)
                    return 1

                print("Findings as they arrive:", flush=True)
                publish_exit = wait_for_job(state_dir, job_name, job_timeout_seconds)
                publish_ended = time.monotonic()

                if keep_running:
                    print("\nEverything keeps running; press Ctrl-C to stop.", flush=True)
                    try:
                        extraction.wait()
                    except KeyboardInterrupt:
                        print()
                extraction_exit = _wait_for_extraction(extraction, idle_seconds)

        finally:
            for watcher in watchers:
                watcher.stop()
            _stop_process(extraction, "extraction job", signal.SIGINT, 30)

    publish_summary = _read_json(JobFiles.of(state_dir, job_name).summary)
    extract_summary = _read_json(work_dir / "extract-summary.json")
    _print_report(publish_exit, publish_summary, extraction_exit, extract_summary, events, findings,
                  finalized_at, publish_ended)

    succeeded = (publish_exit == 0 and extraction_exit == 0 and findings.count > 0
                 and bool(publish_summary and publish_summary.get("balanced")))
    print("\nAutomation finished: " + ("findings arrived from the uploaded file." if succeeded else "FAILED; see the logs in "
                                       f"{work_dir}."))
    return 0 if succeeded else 1


def _wait_for_extraction(extraction: subprocess.Popen, idle_seconds: float) -> int:
    """Wait for the extraction job to stop after its idle time; stop it with SIGINT if it does not."""
    try:
        return extraction.wait(timeout=idle_seconds + 60)
    except subprocess.TimeoutExpired:
        _LOGGER.warning("The extraction job did not stop after %.0f idle seconds; sending SIGINT", idle_seconds)
        _stop_process(extraction, "extraction job", signal.SIGINT, 30)
        return extraction.returncode


def _read_json(path: pathlib.Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _print_report(publish_exit, publish_summary, extraction_exit, extract_summary, events, findings,
                  finalized_at, publish_ended) -> None:
    def since_finalize(moment: Optional[float]) -> str:
        return "never" if moment is None else f"{moment - finalized_at:.1f} s"

    print("\n== Publish job ==")
    print(f"exit code {publish_exit}; summary {json.dumps(publish_summary)}")
    print("== Extraction job ==")
    print(f"exit code {extraction_exit}; summary {json.dumps(extract_summary)}")
    print("== Timing from the finalize event ==")
    print(f"first event on {EVENT_TOPIC}:   {since_finalize(events.first_arrival)}")
    print(f"publish job ended:                  {since_finalize(publish_ended)}")
    print(f"first finding on {FINDING_TOPIC}: {since_finalize(findings.first_arrival)}")
    print(f"events read back: {events.count}; findings read back: {findings.count}")


def main(argv: Optional[list[str]] = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=pathlib.Path, default=SAMPLE_INPUT,
                        help="Local result file to upload (default: the 1000-line sample).")
    parser.add_argument("--object-name", default=SAMPLE_OBJECT_NAME,
                        help="Object name in the bucket; it must follow the result file name rule "
                             "results/YYYY/MM/DD/prediction-model-<timestamp>/predictions.jsonl[.gz].")
    parser.add_argument("--work-dir", type=pathlib.Path, default=None,
                        help="Folder for logs, job state and summaries (default: a new temporary folder, kept).")
    parser.add_argument("--idle-seconds", type=float, default=20.0,
                        help="The extraction job stops after this many seconds without a new event.")
    parser.add_argument("--job-timeout-seconds", type=float, default=600.0,
                        help="How long to wait for the publish job to end.")
    parser.add_argument("--keep-running", action="store_true",
                        help="Keep every process running after the file is processed, until Ctrl-C.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    check = check_object(BUCKET, args.object_name, None, BUCKET)
    if not check.accepted:
        print(f"--object-name {args.object_name!r} would be ignored by the function: it is {check.reason}.",
              file=sys.stderr)
        return 2
    if not args.input.is_file():
        print(f"Input file not found: {args.input}. Create the sample with `python -m samples.generate_predictions`, "
              "or pass --input.", file=sys.stderr)
        return 2
    work_dir = args.work_dir or pathlib.Path(tempfile.mkdtemp(prefix="automation-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    print(f"Work folder (logs, state, summaries): {work_dir}")
    return run(args.input, args.object_name, work_dir, args.idle_seconds, args.keep_running,
               args.job_timeout_seconds)


if __name__ == "__main__":
    sys.exit(main())
