"""Fixtures of the launcher tests: a fake Dataflow API, the GCS emulator, event data."""

import pytest

from localdev.gcs_emulator import GcsEmulator
from tests.launcher.fake_dataflow import FakeDataflow

RESULTS_BUCKET = "results-test"
RESULT_NAME = "results/2026/11/30/prediction-model-2026-11-30T02:00:00.000000Z/predictions.jsonl"
GENERATION = "1796416713031548"


def object_resource(name: str = RESULT_NAME, bucket: str = RESULTS_BUCKET, generation: str = GENERATION,
                    size: str = "1234") -> dict:
    """Return a Cloud Storage object resource as a finalize event carries it."""
    return {"kind": "storage#object", "bucket": bucket, "name": name, "generation": generation,
            "metageneration": "1", "size": size, "contentType": "application/jsonl",
            "id": f"{bucket}/{name}/{generation}", "timeCreated": "2026-11-30T02:10:00.000Z",
            "updated": "2026-11-30T02:10:00.000Z"}


def dataflow_environment(endpoint: str, **overrides: str) -> dict[str, str]:
    """Return launcher environment variables for the Dataflow launcher at `endpoint`."""
    environment = {
        "RESULTS_BUCKET": RESULTS_BUCKET,
        "LAUNCHER": "dataflow",
        "GCP_PROJECT": "test-project",
        "DATAFLOW_REGION": "europe-west1",
        "TEMPLATE_GCS_PATH": "gs://templates-test/templates/publish_results.json",
        "KAFKA_BOOTSTRAP_SERVERS": "broker-1:9092,broker-2:9092",
        "DATAFLOW_API_ENDPOINT": endpoint,
    }
    environment.update(overrides)
    return environment


@pytest.fixture
def fake_dataflow():
    """A fake Dataflow REST API on a free loopback port."""
    with FakeDataflow() as server:
        yield server


@pytest.fixture(scope="session")
def gcs_emulator():
    """One fake-gcs-server for the session; tests use their own buckets."""
    with GcsEmulator() as emulator:
        yield emulator
