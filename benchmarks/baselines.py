"""The two baselines that the publish job is compared with, as plain Python loops.

Both loops read the file line by line and produce with one confluent-kafka
producer configured like the publish job's sink (`PRODUCER_DEFAULTS`:
idempotent, `acks=all`, lz4, `linger.ms=20`). Each call times the whole run in
this process, from opening the file until `flush()` returns and every
delivery report has arrived, so a run counts only acknowledged messages.

* `raw_produce`: produces each line unchanged, with no key and no parsing.
  This is the most a single Python producer can send to the broker, the
  limit for any job that must send every line.
* `single_process`: what a Cloud Function that streams the file would do.
  It parses each line with `json.loads` and validates it against the
  prediction-line schema with the reference `jsonschema` package, using a
  validator compiled once. Then it builds the same CloudEvents envelope as
  the publish job with the record inside, serializes it with `json.dumps`
  and produces it keyed by the event id.
"""

import dataclasses
import datetime
import json
import os
import time

import jsonschema
from confluent_kafka import Producer

import schemas
from transforms.events import DATA_SCHEMA, EVENT_TYPE, SCHEMA_VERSION, event_id, request_id_of
from transforms.kafka_write import PRODUCER_DEFAULTS
from transforms.result_files import parse_result_path


@dataclasses.dataclass(frozen=True)
class LoopRun:
    """One run of a baseline loop.

    Attributes:
        name: `raw_produce` or `single_process`.
        lines: Lines read from the file.
        produced: Messages acknowledged by the broker.
        rejected: Lines that failed parsing or validation (not produced).
        seconds: Time from opening the file to the end of `flush()`.
        size_bytes: Bytes of the file.
    """

    name: str
    lines: int
    produced: int
    rejected: int
    seconds: float
    size_bytes: int


class _DeliveryCounter:
    def __init__(self):
        self.delivered = 0
        self.failed = 0

    def __call__(self, error, message):
        if error is None:
            self.delivered += 1
        else:
            self.failed += 1


def _producer(bootstrap_servers: str) -> Producer:
    config = dict(PRODUCER_DEFAULTS)
    config["bootstrap.servers"] = bootstrap_servers
    return Producer(config)


def _produce(producer: Producer, topic: str, value: bytes, key, on_delivery) -> None:
    while True:
        try:
            producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
            break
        except BufferError:
            # The local queue is full: serve delivery reports to make room.
            producer.poll(0.1)
    producer.poll(0)


def _finish(producer: Producer, counter: _DeliveryCounter, name: str, topic: str) -> None:
    remaining = producer.flush(120)
    if remaining or counter.failed:
        raise RuntimeError(f"Baseline {name} failed: {remaining} messages to {topic} were not acknowledged within "
                           f"120 s and {counter.failed} deliveries failed; check the broker log.")


def raw_produce(path: str, bootstrap_servers: str, topic: str) -> LoopRun:
    """Produce every line of `path` unchanged, without its line end, and return the timing."""
    producer = _producer(bootstrap_servers)
    counter = _DeliveryCounter()
    lines = 0
    started = time.perf_counter()
    with open(path, "rb") as stream:
        for line in stream:
            _produce(producer, topic, line.rstrip(b"\r\n"), None, counter)
            lines += 1
    _finish(producer, counter, "raw_produce", topic)
    seconds = time.perf_counter() - started
    return LoopRun("raw_produce", lines, counter.delivered, 0, seconds, os.path.getsize(path))


def _envelope(path: str, generation: str, line_number: int, record: dict, published_at: str) -> dict:
    identifier = event_id("", path, generation, line_number)
    batch_date, prediction_folder = parse_result_path(path)
    status_text = record.get("status")
    failed = isinstance(status_text, str) and status_text != ""
    return {
        "specversion": "1.0", "id": identifier, "source": "file://" + path, "type": EVENT_TYPE,
        "subject": f"{path}#L{line_number}", "time": published_at, "datacontenttype": "application/json",
        "dataschema": DATA_SCHEMA, "schemaversion": SCHEMA_VERSION,
        "data": {
            "source": {"uri": path, "bucket": "", "object": path, "generation": generation, "line": line_number,
                       "batch_date": batch_date, "prediction_folder": prediction_folder},
            "request_id": request_id_of(record),
            "status": "failed" if failed else "succeeded",
            "error": status_text if failed else None,
            "record": record,
        },
    }


def single_process(path: str, bootstrap_servers: str, topic: str) -> LoopRun:
    """Parse, validate, wrap and produce every line of `path` with the standard library and `jsonschema`."""
    validator = jsonschema.Draft202012Validator(schemas.load(schemas.PREDICTION_LINE))
    generation = str(os.stat(path).st_mtime_ns // 1000)
    producer = _producer(bootstrap_servers)
    counter = _DeliveryCounter()
    lines = 0
    rejected = 0
    started = time.perf_counter()
    with open(path, "rb") as stream:
        for line_number, line in enumerate(stream, start=1):
            lines += 1
            try:
                record = json.loads(line)
                validator.validate(record)
            except (ValueError, jsonschema.ValidationError):
                rejected += 1
                continue
            published_at = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
            envelope = _envelope(path, generation, line_number, record, published_at)
            _produce(producer, topic, json.dumps(envelope).encode("utf-8"), envelope["id"].encode("ascii"), counter)
    _finish(producer, counter, "single_process", topic)
    seconds = time.perf_counter() - started
    return LoopRun("single_process", lines, counter.delivered, rejected, seconds, os.path.getsize(path))
