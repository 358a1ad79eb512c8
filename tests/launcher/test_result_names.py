"""Which finalized objects start a publish job."""

import pytest

from function_launcher.result_names import check_object
from tests.launcher.conftest import RESULT_NAME, RESULTS_BUCKET

FOLDER = "results/2026/11/30/prediction-model-2026-11-30T02:00:00.000000Z"

ACCEPTED = [
    (f"{FOLDER}/predictions.jsonl", "2026-11-30"),
    (f"{FOLDER}/predictions.jsonl.gz", "2026-11-30"),
    ("results/2024/02/29/prediction-model-2024-02-29T23:59:59Z/predictions.jsonl", "2024-02-29"),
    ("results/2026/01/05/prediction-model-1/predictions.jsonl", "2026-01-05"),
]

# (object name, a word the reason must contain)
IGNORED = [
    ("results/2026/11/30/", "folder placeholder"),
    (f"{FOLDER}/", "folder placeholder"),
    ("gsutil/tmp/parallel_composite_uploads/for_details_see/gsutil_help_cp/abc_0", "composite upload"),
    (f"{FOLDER}/gcloud/tmp/parallel_composite_uploads/see_gcloud_storage_cp_help_for_details/x_1",
     "composite upload"),
    (f"{FOLDER}/predictions.jsonl.tmp", "temporary"),
    (f"{FOLDER}/predictions.jsonl._COPYING_", "temporary"),
    (f"{FOLDER}/_temporary/0/predictions.jsonl", "temporary"),
    (f"{FOLDER}/.temp-beam-1234/predictions.jsonl", "temporary"),
    (f"{FOLDER}/incremental_predictions.jsonl", "another file"),
    (f"{FOLDER}/predictions.json", "another file"),
    (f"{FOLDER}/predictions.jsonl.gz.md5", "another file"),
    ("results/2026/02/30/prediction-model-x/predictions.jsonl", "not a calendar date"),
    ("results/2026/13/01/prediction-model-x/predictions.jsonl", "not a calendar date"),
    ("results/2026/11/00/prediction-model-x/predictions.jsonl", "not a calendar date"),
    ("results/2026/11/30/predictions.jsonl", "not under"),
    ("results/2026/11/30/batch-1/predictions.jsonl", "not under"),
    ("results/26/11/30/prediction-model-x/predictions.jsonl", "not under"),
    (f"archive/{FOLDER}/predictions.jsonl", "not under"),
    (f"{FOLDER}/nested/predictions.jsonl", "not under"),
    ("predictions.jsonl", "not under"),
]


@pytest.mark.parametrize("name, batch_date", ACCEPTED)
def test_result_name_accepted(name, batch_date):
    check = check_object(RESULTS_BUCKET, name, 10, RESULTS_BUCKET)
    assert check.accepted
    assert check.batch_date == batch_date


@pytest.mark.parametrize("name, reason_word", IGNORED)
def test_other_name_ignored(name, reason_word):
    check = check_object(RESULTS_BUCKET, name, 10, RESULTS_BUCKET)
    assert not check.accepted
    assert reason_word in check.reason


def test_zero_byte_result_ignored():
    check = check_object(RESULTS_BUCKET, RESULT_NAME, 0, RESULTS_BUCKET)
    assert check.reason == "a zero-byte object"


def test_unknown_size_accepted():
    assert check_object(RESULTS_BUCKET, RESULT_NAME, None, RESULTS_BUCKET).accepted


def test_other_bucket_ignored():
    check = check_object("someone-elses-bucket", RESULT_NAME, 10, RESULTS_BUCKET)
    assert not check.accepted
    assert "someone-elses-bucket" in check.reason
