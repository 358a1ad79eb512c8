"""Deterministic Dataflow job names."""

import hashlib

import pytest

from function_launcher.job_names import JOB_NAME_PATTERN, publish_job_name
from tests.launcher.conftest import GENERATION, RESULT_NAME

NAMES = [
    (RESULT_NAME, GENERATION),
    (RESULT_NAME.replace(".jsonl", ".jsonl.gz"), "1"),
    ("results/2026/11/30/prediction-model-" + "x" * 900 + "/predictions.jsonl", "9" * 19),
    ("Results/ÄÖÜ/weird name with spaces", "42"),
    ("no-date.jsonl", "7"),
]


@pytest.mark.parametrize("object_name, generation", NAMES)
def test_job_name_valid_for_dataflow(object_name, generation):
    name = publish_job_name(object_name, generation)
    assert JOB_NAME_PATTERN.fullmatch(name)
    assert len(name) <= 63


def test_job_name_format():
    expected_hash = hashlib.sha256(f"{RESULT_NAME}#{GENERATION}".encode()).hexdigest()[:10]
    assert publish_job_name(RESULT_NAME, GENERATION) == f"publish-20261130-{expected_hash}"


def test_job_name_deterministic():
    assert publish_job_name(RESULT_NAME, GENERATION) == publish_job_name(RESULT_NAME, GENERATION)


def test_job_name_new_generation_differs():
    assert publish_job_name(RESULT_NAME, "1") != publish_job_name(RESULT_NAME, "2")


def test_job_name_other_object_differs():
    other = RESULT_NAME.replace("T02:00", "T03:00")
    assert publish_job_name(RESULT_NAME, GENERATION) != publish_job_name(other, GENERATION)


def test_job_name_without_date():
    assert publish_job_name("no-date.jsonl", "7").startswith("publish-")
    assert len(publish_job_name("no-date.jsonl", "7")) == len("publish-") + 10
