"""The local Cloud Storage emulator and the finalize events built for it."""

import uuid

import pytest

from localdev.gcs_emulator import FINALIZED_EVENT_TYPE, finalized_event
from tests.launcher.conftest import RESULT_NAME
from transforms import result_files


@pytest.fixture
def bucket(gcs_emulator):
    name = f"results-{uuid.uuid4().hex[:8]}"
    gcs_emulator.create_bucket(name)
    return name


@pytest.fixture
def emulator_client(gcs_emulator, monkeypatch):
    """Point the publish job's storage client at the emulator."""
    for name, value in gcs_emulator.environment().items():
        monkeypatch.setenv(name, value)
    result_files.storage_client.cache_clear()
    yield
    result_files.storage_client.cache_clear()


def test_upload_resource_fields(gcs_emulator, bucket):
    resource = gcs_emulator.upload(bucket, RESULT_NAME, b'{"id": 1}\n')
    assert resource["size"] == "10"
    assert resource["generation"].isdigit()
    assert resource["bucket"] == bucket


def test_new_upload_new_generation(gcs_emulator, bucket):
    first = gcs_emulator.upload(bucket, RESULT_NAME, b"a\n")
    second = gcs_emulator.upload(bucket, RESULT_NAME, b"b\n")
    assert first["generation"] != second["generation"]


def test_finalized_event_attributes(gcs_emulator, bucket):
    event = finalized_event(gcs_emulator.upload(bucket, RESULT_NAME, b"a\n"), event_id="event-1")
    assert event["type"] == FINALIZED_EVENT_TYPE
    assert event["source"] == f"//storage.googleapis.com/projects/_/buckets/{bucket}"
    assert event["subject"] == f"objects/{RESULT_NAME}"
    assert event["id"] == "event-1"


def test_publish_reader_pins_generation(gcs_emulator, bucket, emulator_client):
    resource = gcs_emulator.upload(bucket, RESULT_NAME, b"first line\nsecond line\n")
    [found] = result_files.match_result_files([f"gs://{bucket}/{RESULT_NAME}"], resource["generation"])
    assert b"".join(result_files.iter_byte_range(found, 0, found.size)) == b"first line\nsecond line\n"


def test_publish_reader_replaced_generation_missing(gcs_emulator, bucket, emulator_client):
    first = gcs_emulator.upload(bucket, RESULT_NAME, b"old\n")
    gcs_emulator.upload(bucket, RESULT_NAME, b"new\n")
    with pytest.raises(FileNotFoundError):
        result_files.match_result_files([f"gs://{bucket}/{RESULT_NAME}"], first["generation"])


def test_publish_reader_finds_name_like_glob(gcs_emulator, bucket, emulator_client):
    name = "results/2026/11/30/prediction-model-[1]/predictions.jsonl"
    resource = gcs_emulator.upload(bucket, name, b"line\n")

    [found] = result_files.match_result_files([f"gs://{bucket}/{name}"], resource["generation"])

    assert found.object_name == name
    assert found.generation == resource["generation"]
    assert b"".join(result_files.iter_byte_range(found, 0, found.size)) == b"line\n"
