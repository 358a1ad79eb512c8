"""The extraction figures: throughput on one worker, and end-to-end latency at a steady input rate.

Both run the extraction job as its own process,
`python -m pipelines.extract_injections ... --stop_after_idle_seconds S`, on
the local runner with its defaults (one worker), against fresh topics.

Throughput. `--extract-events` events (see `benchmarks.extract_events`) are
produced to the input topic before the job starts. A thread then reads the
job's committed offsets every `COMMIT_SAMPLE_SECONDS` (0.05 s). The job commits after each bundle, once
the bundle's findings and dead letters are acknowledged. The rate is measured
between the first commit and the commit that covers every event, so the
job's start-up and its idle time at the end are not part of it. The findings
produced are read back from the output topic and counted.

Latency. The job starts first. Events are produced at `--extract-rate` per
second, in 10 ms steps, until a finding arrives, which shows that the job
is reading, and for `SETTLE_SECONDS` more, while the job catches up with
the events that arrived during its start-up. Then events are produced at
that rate for `--extract-seconds`.
For each of these events that yields a finding, the latency is the time from
the broker's acknowledgement of the event (the producer's delivery report)
to the arrival of its finding at a consumer of the output topic. Both times
are taken in this process with `time.time()`. Delivery reports are served
every step, so an acknowledgement time can be up to about 10 ms late, which
makes a latency look shorter by that much.
"""

import logging
import json
import os
import signal
import statistics
import sys
import threading
import time
from typing import Optional

from confluent_kafka import Consumer, Producer, TopicPartition

from benchmarks.extract_events import EventFactory, FindingReader
from benchmarks.processes import MeasuredRun, run_measured
from benchmarks.topics import count_topic, delete_topics
from transforms.kafka_write import PRODUCER_DEFAULTS

_LOGGER = logging.getLogger(__name__)

THROUGHPUT_TARGET = 30_000
LATENCY_TARGET_SECONDS = 3.0
LATENCY_TARGET_RATE = 5000
IDLE_SECONDS = 5.0
# Input at the steady rate after the first finding and before the measured period, so that the backlog
# of the job's start-up is gone and the measured period shows the steady state.
SETTLE_SECONDS = 5.0
_STEP_SECONDS = 0.01


def _producer(bootstrap_servers: str) -> Producer:
    config = dict(PRODUCER_DEFAULTS)
    config["bootstrap.servers"] = bootstrap_servers
    return Producer(config)


def _produce(producer: Producer, topic: str, key: bytes, value: bytes, on_delivery=None) -> None:
    while True:
        try:
            producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
            return
        except BufferError:
            producer.poll(0.1)


class _JobThread(threading.Thread):
    """Runs one measured job process in the background; `run_measured` kills it on timeout."""

    def __init__(self, command: list[str], cwd: str, stderr_path: str, timeout_seconds: float):
        super().__init__(name="extraction-job", daemon=True)
        self._arguments = (command, cwd, stderr_path, timeout_seconds)
        self.pid: Optional[int] = None
        self.result: Optional[MeasuredRun] = None
        self.error: Optional[BaseException] = None

    def run(self):
        command, cwd, stderr_path, timeout_seconds = self._arguments
        try:
            self.result = run_measured(command, cwd=cwd, stderr_path=stderr_path, timeout_seconds=timeout_seconds,
                                       on_start=self._record_pid)
        except BaseException as error:  # Reported by the caller after join().
            self.error = error

    def _record_pid(self, pid: int) -> None:
        self.pid = pid

    def stop(self) -> None:
        """Ask the job to stop (SIGTERM: it drains, commits and writes its summary), then wait for it."""
        if self.pid is not None and self.is_alive():
            _LOGGER.info("Stopping the extraction job (pid %d) with SIGTERM", self.pid)
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.join()


# One committed-offsets request to the local broker per sample. A rate can only change at a sample, so
# frequent samples keep its error small on short runs.
COMMIT_SAMPLE_SECONDS = 0.05


class _CommitMonitor(threading.Thread):
    """Samples the consumer group's committed offsets, summed over partitions, every `COMMIT_SAMPLE_SECONDS`."""

    def __init__(self, bootstrap_servers: str, group_id: str, topic: str, stop_after_seconds: float):
        super().__init__(name="commit-monitor", daemon=True)
        self._config = {"bootstrap.servers": bootstrap_servers, "group.id": group_id,
                        "enable.auto.commit": "false"}
        self._topic = topic
        self._stop_after_seconds = stop_after_seconds
        self._stop_event = threading.Event()
        self.samples: list[tuple[float, int]] = []

    def run(self):
        consumer = Consumer(self._config)
        deadline = time.monotonic() + self._stop_after_seconds
        try:
            partitions = consumer.list_topics(self._topic, timeout=10).topics[self._topic].partitions
            assigned = [TopicPartition(self._topic, partition) for partition in partitions]
            while not self._stop_event.is_set() and time.monotonic() < deadline:
                committed = consumer.committed(assigned, timeout=10)
                total = sum(max(item.offset, 0) for item in committed)
                self.samples.append((time.monotonic(), total))
                self._stop_event.wait(COMMIT_SAMPLE_SECONDS)
        finally:
            consumer.close()

    def stop(self):
        self._stop_event.set()
        self.join(timeout=30)


def _extraction_command(context, input_topic: str, output_topic: str, dead_letter_topic: str, group: str,
                        summary_path: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.extract_injections", "--bootstrap_servers",
            context.broker.bootstrap_servers, "--input_topic", input_topic, "--output_topic", output_topic,
            "--dead_letter_topic", dead_letter_topic, "--consumer_group", group,
            "--stop_after_idle_seconds", str(IDLE_SECONDS), "--summary_json", summary_path, *context.extract_args]


def _read_summary(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)


def _steady_rate(samples: list[tuple[float, int]], total: int) -> Optional[float]:
    """Return events per second between the first commit and the first sample that covers `total`."""
    started = next(((moment, offset) for moment, offset in samples if offset > 0), None)
    ended = next(((moment, offset) for moment, offset in samples if offset >= total), None)
    if started is None or ended is None or ended[0] <= started[0]:
        return None
    return (ended[1] - started[1]) / (ended[0] - started[0])


def measure_throughput(context, input_path: str, events: int) -> dict:
    """Preload `events` events, run the job over them and return its rate and counts."""
    bootstrap = context.broker.bootstrap_servers
    input_topic, output_topic = context.new_topic("extract-in"), context.new_topic("extract-out")
    dead_letter_topic = context.new_topic("extract-dlq")
    group = f"benchmark-extract-{input_topic}"
    factory = EventFactory(input_path, generation=str(time.time_ns() // 1000))

    producer = _producer(bootstrap)
    expected_findings = 0
    started = time.monotonic()
    for sequence in range(events):
        key, value, yields_finding = factory.event(sequence)
        expected_findings += yields_finding
        _produce(producer, input_topic, key, value)
        producer.poll(0)
    if producer.flush(120):
        raise RuntimeError(f"Preloading {input_topic} timed out; check the broker log.")
    _LOGGER.info("Preloaded %d events (%d should yield findings) in %.1f s", events, expected_findings,
                 time.monotonic() - started)

    summary_path = os.path.join(context.work_dir, "extract-throughput.summary.json")
    command = _extraction_command(context, input_topic, output_topic, dead_letter_topic, group, summary_path)
    monitor = _CommitMonitor(bootstrap, group, input_topic, context.job_timeout_seconds)
    job = _JobThread(command, context.repo_root, os.path.join(context.work_dir, "extract-throughput.log"),
                     context.job_timeout_seconds)
    monitor.start()
    job.start()
    job.join()
    monitor.stop()
    if job.error is not None:
        raise job.error
    summary = _read_summary(summary_path)
    findings = count_topic(bootstrap, output_topic, expected_findings)
    dead_letters = count_topic(bootstrap, dead_letter_topic, summary.get("dead_letters", 0))
    delete_topics(bootstrap, [input_topic, output_topic, dead_letter_topic])

    rate = _steady_rate(monitor.samples, events)
    first_commit = next((moment for moment, offset in monitor.samples if offset > 0), None)
    return {
        "events": events,
        "expected_findings": expected_findings,
        "events_per_second": rate,
        # Findings are spread evenly over the events, so they are produced at this share of the event rate.
        "findings_per_second": rate * findings.distinct_keys / events if rate else None,
        "job_wall_seconds": round(job.result.wall_seconds, 2),
        "idle_seconds": IDLE_SECONDS,
        "job_returncode": job.result.returncode,
        "job_peak_rss_bytes": job.result.peak_rss_bytes,
        "seconds_to_first_commit": (round(first_commit - (monitor.samples[0][0]), 2)
                                    if first_commit and monitor.samples else None),
        "summary": summary,
        "findings_on_topic": findings.messages,
        "distinct_findings_on_topic": findings.distinct_keys,
        "dead_letters_on_topic": dead_letters.messages,
        "commit_samples": [(round(moment - monitor.samples[0][0], 2), offset) for moment, offset in monitor.samples],
        "log": os.path.join(context.work_dir, "extract-throughput.log"),
    }


class _AckTimes:
    """Delivery-report callback that stores the acknowledgement time of each event whose key is in `watched`."""

    def __init__(self):
        self.watched: set[bytes] = set()
        self.acknowledged: dict[bytes, float] = {}
        self.failed = 0

    def __call__(self, error, message):
        if error is not None:
            self.failed += 1
        elif message.key() in self.watched:
            self.acknowledged[message.key()] = time.time()


def _produce_steadily(producer: Producer, topic: str, factory: EventFactory, acks: _AckTimes, first: int,
                      rate: float, seconds: float, until=None) -> int:
    """Produce events at `rate` per second for at most `seconds`, or until `until()` is true.

    Returns:
        The next event sequence number.
    """
    sequence = first
    started = time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= seconds or (until is not None and until()):
            return sequence
        due = first + int(elapsed * rate) + 1
        while sequence < due:
            key, value, yields_finding = factory.event(sequence)
            if yields_finding:
                acks.watched.add(key)
            _produce(producer, topic, key, value, acks)
            sequence += 1
        producer.poll(0)
        time.sleep(_STEP_SECONDS)


def _percentile(values: list[float], share: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure_latency(context, input_path: str, rate: float, seconds: float) -> dict:
    """Feed the running job at `rate` events per second for `seconds` and return finding latencies."""
    bootstrap = context.broker.bootstrap_servers
    input_topic, output_topic = context.new_topic("latency-in"), context.new_topic("latency-out")
    dead_letter_topic = context.new_topic("latency-dlq")
    group = f"benchmark-latency-{input_topic}"
    factory = EventFactory(input_path, generation=str(time.time_ns() // 1000))
    summary_path = os.path.join(context.work_dir, "extract-latency.summary.json")
    command = _extraction_command(context, input_topic, output_topic, dead_letter_topic, group, summary_path)

    reader = FindingReader(bootstrap, output_topic, stop_after_seconds=seconds + 600)
    job = _JobThread(command, context.repo_root, os.path.join(context.work_dir, "extract-latency.log"),
                     context.job_timeout_seconds)
    producer = _producer(bootstrap)
    producer.poll(0)
    acks = _AckTimes()
    reader.start()
    job.start()
    try:
        # Warm-up: the same rate until the first finding shows that the job reads, for at most 120 s.
        warm_up_started = time.monotonic()
        next_sequence = _produce_steadily(producer, input_topic, factory, acks, 0, rate, 120,
                                          until=lambda: reader.count() > 0 or not job.is_alive())
        if reader.count() == 0:
            raise RuntimeError("The extraction job wrote no finding within 120 s of warm-up; see "
                               f"{os.path.join(context.work_dir, 'extract-latency.log')}.")
        next_sequence = _produce_steadily(producer, input_topic, factory, acks, next_sequence, rate, SETTLE_SECONDS)
        warm_up_seconds = time.monotonic() - warm_up_started
        acks.watched.clear()

        measured_first = next_sequence
        measured_started = time.monotonic()
        next_sequence = _produce_steadily(producer, input_topic, factory, acks, measured_first, rate, seconds)
        measured_seconds = time.monotonic() - measured_started
        producer.flush(60)
        measured_events = next_sequence - measured_first
        watched = set(acks.watched)

        # Wait for the findings of the measured events, at most 60 s.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(key.decode() in reader.arrivals for key in watched):
            time.sleep(0.2)
    except BaseException:
        job.stop()
        raise
    finally:
        job.join()
        reader.stop()
    if job.error is not None:
        raise job.error

    latencies = []
    series = []
    for key in watched:
        acknowledged = acks.acknowledged.get(key)
        arrived = reader.arrivals.get(key.decode())
        if acknowledged is not None and arrived is not None:
            latencies.append(arrived - acknowledged)
            series.append((acknowledged, arrived - acknowledged))
    series.sort()
    origin = series[0][0] if series else 0.0
    summary = _read_summary(summary_path)
    delete_topics(bootstrap, [input_topic, output_topic, dead_letter_topic])
    return {
        "rate_requested": rate,
        "rate_achieved": measured_events / measured_seconds if measured_seconds else None,
        "seconds": round(measured_seconds, 1),
        "warm_up_seconds": round(warm_up_seconds, 1),
        "events": measured_events,
        "findings_expected": len(watched),
        "findings_measured": len(latencies),
        "findings_missing": len(watched) - len(latencies),
        "delivery_failures": acks.failed,
        "p50_seconds": statistics.median(latencies) if latencies else None,
        "p99_seconds": _percentile(latencies, 0.99),
        "max_seconds": max(latencies) if latencies else None,
        "job_returncode": job.result.returncode,
        "job_peak_rss_bytes": job.result.peak_rss_bytes,
        "summary": summary,
        # At most 2,000 points, for the plot.
        "series": [(round(moment - origin, 3), round(latency, 4))
                   for moment, latency in series[::max(1, len(series) // 2000)]],
        "log": os.path.join(context.work_dir, "extract-latency.log"),
    }


def measure_extraction(context, input_path: str) -> dict:
    """Run both extraction figures and return them with their targets."""
    args = context.args
    throughput = measure_throughput(context, input_path, args.extract_events)
    latency = measure_latency(context, input_path, args.extract_rate, args.extract_seconds)
    rate = throughput["events_per_second"]
    p99 = latency["p99_seconds"]
    return {
        "throughput": throughput,
        "latency": latency,
        "targets": {
            "events_per_second": THROUGHPUT_TARGET,
            "p99_seconds": LATENCY_TARGET_SECONDS,
            "at_rate": LATENCY_TARGET_RATE,
            "throughput_met": bool(rate and rate >= THROUGHPUT_TARGET),
            "latency_met": bool(p99 is not None and p99 < LATENCY_TARGET_SECONDS
                                and latency["findings_missing"] == 0
                                and latency["rate_achieved"] >= 0.95 * LATENCY_TARGET_RATE),
        },
    }
