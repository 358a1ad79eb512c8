"""End-to-end demo on local defaults: result file → publish job → Kafka → extraction job → findings.

Starts a Tansu broker on a free loopback port, runs the publish job on the
sample Vertex AI result file, reads the topics back and prints a summary and
one event. Then runs the streaming extraction job until the topic has been
idle for a few seconds, and prints the extracted prompt injections. Stops the
broker at the end. Exits 0 only when both jobs account for every input and
the topics contain every record they reported.

Usage:
    python -m localdev.demo [--input PATH]
"""

import argparse
import json
import logging
import os
import sys
import tempfile

from localdev.broker import LocalBroker
from localdev.topic_reader import read_topic

_LOGGER = logging.getLogger(__name__)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_INPUT = os.path.join(REPO_ROOT, "samples", "results", "2026", "11", "30",
                            "prediction-model-2026-11-30T02:00:00.000000Z", "predictions.jsonl")

EVENT_TOPIC = "batch-job-results"
EVENT_DEAD_LETTER_TOPIC = "batch-job-results-dlq"
FINDING_TOPIC = "prompt-injections"
FINDING_DEAD_LETTER_TOPIC = "extract-injections-dlq"


def _print_event(value: bytes) -> None:
    event = json.loads(value)
    record = event["data"]["record"]
    # The transcript is long: show the envelope and shorten the record.
    event["data"]["record"] = {"id": record.get("id"), "status": record.get("status"), "...": "original line"}
    print(json.dumps(event, indent=2))


def run_publish(broker: LocalBroker, input_path: str, work_dir: str) -> bool:
    """Publish the input file and read it back; return True when the counts agree."""
    from pipelines import publish_results  # Imported late: Beam takes a few seconds to load.

    summary_path = os.path.join(work_dir, "publish-summary.json")
    summary = publish_results.run([
        "--input", input_path, "--bootstrap_servers", broker.bootstrap_servers,
        "--topic", EVENT_TOPIC, "--dead_letter_topic", EVENT_DEAD_LETTER_TOPIC,
        "--summary_json", summary_path])
    events = read_topic(broker.bootstrap_servers, EVENT_TOPIC, expected=summary["published"])
    dead_letters = read_topic(broker.bootstrap_servers, EVENT_DEAD_LETTER_TOPIC, expected=summary["dead_letters"])

    print("\n== Publish job ==")
    print(f"input:        {input_path}")
    print(f"lines read:   {summary['lines_read']}")
    print(f"published:    {summary['published']}  (read back from {EVENT_TOPIC}: {len(events)})")
    print(f"dead letters: {summary['dead_letters']}  (read back from {EVENT_DEAD_LETTER_TOPIC}: {len(dead_letters)})")
    print(f"skipped:      {summary['skipped']}")
    print(f"balanced:     {summary['balanced']}  (lines read = published + dead letters + skipped)")
    if events:
        print("\nOne event:")
        _print_event(events[0].value)
    for message in dead_letters[:3]:
        letter = json.loads(message.value)
        print(f"dead letter: line {letter['source']['line']}: {letter['reason']}")

    return (summary["balanced"] and len(events) == summary["published"]
            and len(dead_letters) == summary["dead_letters"])


def run_extraction(broker: LocalBroker, work_dir: str) -> bool:
    """Run the extraction job over the event topic; return True when its counts agree with the topics."""
    from pipelines import extract_injections

    summary = extract_injections.run([
        "--bootstrap_servers", broker.bootstrap_servers, "--input_topic", EVENT_TOPIC,
        "--output_topic", FINDING_TOPIC, "--dead_letter_topic", FINDING_DEAD_LETTER_TOPIC,
        "--consumer_group", "extract-injections", "--stop_after_idle_seconds", "3",
        "--summary_json", os.path.join(work_dir, "extract-summary.json")])
    findings = read_topic(broker.bootstrap_servers, FINDING_TOPIC, expected=summary["findings_written"])
    dead_letters = read_topic(broker.bootstrap_servers, FINDING_DEAD_LETTER_TOPIC,
                              expected=summary["dead_letters"])

    print("\n== Extraction job ==")
    print(f"events read:           {summary['events_read']}")
    print(f"verdicts:              {summary['verdicts_positive']} positive, {summary['verdicts_negative']} negative")
    print(f"findings written:      {summary['findings_written']}  (read back from {FINDING_TOPIC}: {len(findings)})")
    print(f"duplicates suppressed: {summary['duplicates_suppressed']}")
    print(f"dead letters:          {summary['dead_letters']}  (read back from {FINDING_DEAD_LETTER_TOPIC}: "
          f"{len(dead_letters)})")
    for reason, count in summary["dead_letters_by_reason"].items():
        print(f"  {reason}: {count}")
    print(f"balanced:              {summary['balanced']}")

    print("\nExtracted prompt injections (key = SHA-256 of the normalised text):")
    for message in findings:
        finding = json.loads(message.value)
        print(f"  {message.key.decode()[:16]}…  [{finding['category']}, {finding['confidence']}] {finding['text']}")

    return (summary["balanced"] and len(findings) == summary["findings_written"]
            and len(dead_letters) == summary["dead_letters"])


def main(argv=None) -> int:
    """Run the demo; return the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=SAMPLE_INPUT, help="Result file to publish.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if not os.path.exists(args.input):
        print(f"Input file not found: {args.input}. Create the sample with "
              "`python -m samples.generate_predictions`.", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="demo-") as work_dir, LocalBroker() as broker:
        print(f"Local broker (Tansu) on {broker.bootstrap_servers}")
        broker.create_topics([EVENT_TOPIC, EVENT_DEAD_LETTER_TOPIC, FINDING_TOPIC, FINDING_DEAD_LETTER_TOPIC])
        published_ok = run_publish(broker, args.input, work_dir)
        extracted_ok = run_extraction(broker, work_dir)

    ok = published_ok and extracted_ok
    print("\nDemo finished: " + ("every line and every event is accounted for." if ok else "COUNTS DO NOT AGREE."))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
