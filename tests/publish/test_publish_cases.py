"""The publish job on every failure-shaped input case, checked on the real broker."""

import json
import uuid

import jsonschema
import pytest

import schemas
from localdev.topic_reader import read_topic
from pipelines import publish_results
from tests.conftest import CASES_DIR
from transforms.dead_letter_records import decode_raw

# file: (events, dead letters, skipped lines)
EXPECTED_COUNTS = {
    "crlf.jsonl": (5, 0, 0),
    "bom.jsonl": (3, 0, 0),
    "no-final-newline.jsonl": (4, 0, 0),
    "blank-lines.jsonl": (4, 0, 3),
    "failed-row.jsonl": (2, 0, 0),
    "blocked.jsonl": (2, 0, 0),
    "fenced-verdict.jsonl": (2, 0, 0),
    "truncated-verdict.jsonl": (2, 0, 0),
    "nan.jsonl": (2, 1, 0),
    "one-broken-line.jsonl": (4, 1, 0),
    "oversized-line.jsonl": (2, 1, 0),
    "invalid-utf8.jsonl": (2, 1, 0),
    "deep-nesting.jsonl": (2, 1, 0),
}

EVENT_VALIDATOR = jsonschema.Draft202012Validator(
    schemas.load(schemas.BATCH_RESULT_EVENT), format_checker=jsonschema.FormatChecker())
DEAD_LETTER_VALIDATOR = jsonschema.Draft202012Validator(
    schemas.load(schemas.DEAD_LETTER), format_checker=jsonschema.FormatChecker())


def publish(broker, topics, path, *extra):
    """Run the publish job on `path`; return its summary, events and dead letters as read back."""
    event_topic, dead_letter_topic = topics("events", "dead-letters")
    return run_job(broker, event_topic, dead_letter_topic, path, *extra)


def run_job(broker, event_topic, dead_letter_topic, path, *extra):
    summary = publish_results.run([
        "--input", str(path), "--bootstrap_servers", broker.bootstrap_servers,
        "--topic", event_topic, "--dead_letter_topic", dead_letter_topic, *extra])
    events = read_topic(broker.bootstrap_servers, event_topic, expected=summary["published"], idle_seconds=1)
    dead_letters = read_topic(broker.bootstrap_servers, dead_letter_topic, expected=summary["dead_letters"],
                              idle_seconds=1)
    return summary, events, dead_letters


def test_expected_counts_cover_every_case_file():
    case_files = {path.name for path in CASES_DIR.glob("*.jsonl")}
    assert case_files == set(EXPECTED_COUNTS)


@pytest.fixture(scope="module")
def case_runs(broker):
    """Publish each case file at most once per module; return a function from file name to results."""
    runs = {}

    def get(name):
        if name not in runs:
            suffix = uuid.uuid4().hex[:8]
            event_topic, dead_letter_topic = f"case-events-{suffix}", f"case-dead-letters-{suffix}"
            broker.create_topics([event_topic, dead_letter_topic])
            runs[name] = run_job(broker, event_topic, dead_letter_topic, CASES_DIR / name)
        return runs[name]

    return get


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_case_counts_on_broker(case_runs, name):
    expected_events, expected_dead_letters, expected_skipped = EXPECTED_COUNTS[name]

    summary, events, dead_letters = case_runs(name)

    assert len(events) == expected_events
    assert len(dead_letters) == expected_dead_letters
    assert summary["published"] == expected_events
    assert summary["dead_letters"] == expected_dead_letters
    assert summary["skipped"] == expected_skipped
    assert summary["lines_read"] == expected_events + expected_dead_letters + expected_skipped
    for message in events:
        EVENT_VALIDATOR.validate(json.loads(message.value))
    for message in dead_letters:
        DEAD_LETTER_VALIDATOR.validate(json.loads(message.value))


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_case_events_keep_original_record(case_runs, name):
    _, events, _ = case_runs(name)
    lines = (CASES_DIR / name).read_bytes().split(b"\n")

    for message in events:
        event = json.loads(message.value)
        number = event["data"]["source"]["line"]
        original = lines[number - 1].removeprefix(b"\xef\xbb\xbf").rstrip(b"\r")
        assert message.key == event["id"].encode()
        assert event["data"]["record"] == json.loads(original)


def test_crlf_leaves_no_carriage_return(case_runs):
    _, events, _ = case_runs("crlf.jsonl")

    assert events
    for message in events:
        assert b"\r" not in message.value
        assert b"\\r" not in message.value


def test_bom_first_line_is_an_event(case_runs):
    _, events, _ = case_runs("bom.jsonl")

    lines = sorted(json.loads(message.value)["data"]["source"]["line"] for message in events)
    assert lines == [1, 2, 3]


def test_failed_row_keeps_error_text(case_runs):
    _, events, _ = case_runs("failed-row.jsonl")

    by_line = {json.loads(m.value)["data"]["source"]["line"]: json.loads(m.value)["data"] for m in events}
    assert by_line[1]["status"] == "succeeded"
    assert by_line[2]["status"] == "failed"
    assert by_line[2]["error"].startswith("Bad Request")
    assert by_line[2]["error"] == by_line[2]["record"]["status"]


def test_invalid_utf8_dead_letter_keeps_bytes(case_runs):
    _, _, dead_letters = case_runs("invalid-utf8.jsonl")
    original = (CASES_DIR / "invalid-utf8.jsonl").read_bytes().split(b"\n")[1]

    letter = json.loads(dead_letters[0].value)
    assert letter["source"]["line"] == 2
    assert letter["raw"]["encoding"] == "base64"
    assert decode_raw(letter["raw"]) == original
    assert "UTF-8" in letter["reason"]


def test_broken_line_dead_letter_names_line(case_runs):
    _, _, dead_letters = case_runs("one-broken-line.jsonl")

    letter = json.loads(dead_letters[0].value)
    assert letter["source"]["line"] == 3
    assert letter["step"] == "parse_json"
    assert letter["reason"].startswith("The line is not valid JSON")


def test_oversized_line_capped_in_dead_letter(case_runs):
    _, _, dead_letters = case_runs("oversized-line.jsonl")

    letter = json.loads(dead_letters[0].value)
    assert letter["raw"]["truncated"] is True
    assert letter["raw"]["size"] > 2_000_000
    assert "maximum" in letter["reason"]
    assert len(dead_letters[0].value) < 100_000


def test_oversized_line_passes_raised_limit(broker, topics):
    summary, events, dead_letters = publish(broker, topics, CASES_DIR / "oversized-line.jsonl",
                                            "--max_message_bytes", str(4 << 20))

    assert summary["published"] == 3
    assert len(events) == 3
    assert dead_letters == []


def test_nan_dead_letter_reason(case_runs):
    _, _, dead_letters = case_runs("nan.jsonl")

    assert "NaN" in json.loads(dead_letters[0].value)["reason"]


def test_deep_nesting_dead_letter_reason(case_runs):
    _, _, dead_letters = case_runs("deep-nesting.jsonl")

    assert "deeper" in json.loads(dead_letters[0].value)["reason"]


def test_resumed_run_ids_are_distinct(broker, topics):
    folder = CASES_DIR / "resumed-run"
    summary, events, _ = publish(broker, topics, folder / "first-predictions.jsonl",
                                 "--input", str(folder / "second-predictions.jsonl"))

    assert summary["published"] == 11
    assert len({message.key for message in events}) == 11


def test_rerun_same_generation_keeps_ids(broker, topics):
    path = CASES_DIR / "crlf.jsonl"
    _, first, _ = publish(broker, topics, path, "--source_generation", "42")
    _, second, _ = publish(broker, topics, path, "--source_generation", "42")
    _, third, _ = publish(broker, topics, path, "--source_generation", "43")

    assert {m.key for m in first} == {m.key for m in second}
    assert not {m.key for m in first} & {m.key for m in third}
