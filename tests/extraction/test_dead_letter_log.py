"""Counting and logging dead letters: exact counters, a log line rate that stays bounded."""

import logging

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline

from pipelines.summary import counter_totals
from transforms.dead_letters import LOG_EVERY_DEAD_LETTERS, LOG_FIRST_DEAD_LETTERS, _CountDeadLettersFn


def dead_letter(step: str, line: int) -> dict:
    return {"step": step, "reason": f"Reason {line}.", "source": {"uri": "gs://b/o", "line": line}}


def test_dead_letter_log_rate_limited(caplog):
    caplog.set_level(logging.INFO, logger="transforms.dead_letters")
    letters = [dead_letter("parse_verdict", line) for line in range(2500)]
    letters += [dead_letter("check_quote", line) for line in range(3)]
    pipeline = TestPipeline()
    _ = pipeline | beam.Create(letters, reshuffle=False) | beam.ParDo(_CountDeadLettersFn("test"))
    result = pipeline.run()
    result.wait_until_finish()

    totals = counter_totals(result, "test")
    assert totals == {"dead_letters": 2503, "dead_letters.parse_verdict": 2500, "dead_letters.check_quote": 3}
    info = [record.getMessage() for record in caplog.records if record.levelno == logging.INFO]
    one_by_one = [message for message in info if message.startswith("Dead letter from parse_verdict")]
    assert len(one_by_one) == LOG_FIRST_DEAD_LETTERS
    assert len([message for message in info if message.startswith("Dead letter 1000 from parse_verdict")]) == 1
    assert len([message for message in info if message.startswith("Dead letter from check_quote")]) == 3
    # 10 one by one, the notice that the log thins out, then every 1000th: the 1000th and the 2000th.
    assert len([message for message in info if "parse_verdict" in message]) == (
        LOG_FIRST_DEAD_LETTERS + 1 + 2500 // LOG_EVERY_DEAD_LETTERS)
