"""Input events for the extraction figures, and a reader that times each finding's arrival.

Events are BatchResultEvents built by `transforms.events.build_event`, the
same function the publish job uses, from the lines of a generated result file.
The generated lines quote only eight distinct injection strings, and the
extraction job writes each distinct string once per run, so nearly every
positive verdict would end as a suppressed duplicate and no latency could be
measured. `EventFactory` therefore rewrites each positive line once, so that
the quoted string ends with a reference number. That number differs for every
event. Every positive verdict then yields its own finding, which is also the
most work for the finding writes. Negative, failed, blocked and truncated
lines stay as generated.
"""

import dataclasses
import json
import logging
import threading
import time
from typing import Optional

import orjson
from confluent_kafka import Consumer, TopicPartition

from samples.generate_predictions import INJECTIONS
from transforms.dead_letter_records import utc_now_text
from transforms.events import build_event
from transforms.result_files import ResultFile

_LOGGER = logging.getLogger(__name__)

# Replaced in each event by a 9-digit sequence number; letters and digits only, so JSON needs no escapes.
_PLACEHOLDER = b"REF000000"
_INJECTION_STRINGS = [text for text, _ in INJECTIONS]
_OBJECT_NAME = "results/2026/11/30/prediction-model-2026-11-30T02:00:00.000000Z/predictions.jsonl"


@dataclasses.dataclass(frozen=True)
class _Template:
    raw: bytes
    record: dict
    yields_finding: bool


def _make_unique_quote(record: dict) -> bool:
    """Add the placeholder to the quoted injection in the transcript and the verdict, in place.

    Returns:
        True when the record is a complete positive verdict whose quote now
        carries the placeholder in both places, so it must yield a finding.
    """
    contents = record.get("request", {}).get("contents") or []
    transcript_parts = [part for content in contents for part in content.get("parts", []) if "text" in part]
    response = record.get("response") or {}
    candidates = response.get("candidates") or []
    if record.get("status") or not candidates:
        return False
    answer_parts = [part for part in candidates[0].get("content", {}).get("parts", []) if "text" in part]
    for injection in _INJECTION_STRINGS:
        if not any(injection in part["text"] for part in transcript_parts):
            continue
        marked = f"{injection[:-1]} (ref {_PLACEHOLDER.decode('ascii')}){injection[-1]}"
        for part in transcript_parts:
            part["text"] = part["text"].replace(injection, marked)
        in_answer = False
        for part in answer_parts:
            if injection in part["text"]:
                part["text"] = part["text"].replace(injection, marked)
                in_answer = True
        return in_answer and candidates[0].get("finishReason") == "STOP"
    return False


class EventFactory:
    """Builds unique BatchResultEvents from the first `template_lines` lines of a result file.

    Event `n` uses template `n % template_lines`, line number `n + 1` (so
    its event id is unique) and, for a positive template, reference number
    `n` in its quote. `generation` keeps ids apart between runs.
    """

    def __init__(self, input_path: str, generation: str, template_lines: int = 2000):
        self._file = ResultFile(uri=f"gs://benchmark-results/{_OBJECT_NAME}", bucket="benchmark-results",
                                object_name=_OBJECT_NAME, generation=generation, size=0)
        self._templates: list[_Template] = []
        with open(input_path, "rb") as stream:
            for line in stream:
                record = json.loads(line)
                yields_finding = _make_unique_quote(record)
                raw = json.dumps(record, ensure_ascii=False).encode("utf-8")
                self._templates.append(_Template(raw, record, yields_finding))
                if len(self._templates) >= template_lines:
                    break
        if not self._templates:
            raise ValueError(f"{input_path} has no lines to build events from.")

    @property
    def finding_share(self) -> float:
        """The share of events that must yield a finding."""
        return sum(template.yields_finding for template in self._templates) / len(self._templates)

    def event(self, sequence: int, published_at: Optional[str] = None) -> tuple[bytes, bytes, bool]:
        """Return `(key, value, yields_finding)` of event number `sequence`."""
        template = self._templates[sequence % len(self._templates)]
        raw = template.raw
        if template.yields_finding:
            raw = raw.replace(_PLACEHOLDER, b"REF%09d" % sequence)
        identifier, value = build_event(self._file, sequence + 1, template.record, raw,
                                        published_at or utc_now_text())
        return identifier.encode("ascii"), value, template.yields_finding


class FindingReader(threading.Thread):
    """Reads a findings topic from its start and stores when each finding arrived, by event id.

    Arrival is `time.time()` when the consumer hands the message over, so it
    includes the fetch wait (`fetch.wait.max.ms`, 10 ms here) and is an upper
    bound of the moment the finding was on the topic.
    """

    def __init__(self, bootstrap_servers: str, topic: str, stop_after_seconds: float):
        super().__init__(name=f"finding-reader-{topic}", daemon=True)
        self._bootstrap_servers = bootstrap_servers
        self._topic = topic
        self._stop_after_seconds = stop_after_seconds
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self.arrivals: dict[str, float] = {}
        self.messages = 0

    def run(self):
        consumer = Consumer({"bootstrap.servers": self._bootstrap_servers, "group.id": f"benchmark-{self._topic}",
                             "enable.auto.commit": "false", "enable.partition.eof": "false",
                             "fetch.wait.max.ms": "10"})
        deadline = time.monotonic() + self._stop_after_seconds
        try:
            partitions = consumer.list_topics(self._topic, timeout=10).topics[self._topic].partitions
            consumer.assign([TopicPartition(self._topic, partition, 0) for partition in partitions])
            while not self._stop_event.is_set() and time.monotonic() < deadline:
                for message in consumer.consume(num_messages=1000, timeout=0.05):
                    arrived = time.time()
                    if message.error():
                        continue
                    event_id = orjson.loads(message.value()).get("event_id")
                    with self._lock:
                        self.messages += 1
                        self.arrivals.setdefault(event_id, arrived)
        finally:
            consumer.close()

    def count(self) -> int:
        """Return the number of distinct events that have a finding so far."""
        with self._lock:
            return len(self.arrivals)

    def stop(self) -> None:
        """Stop reading and wait for the thread."""
        self._stop_event.set()
        self.join(timeout=30)
