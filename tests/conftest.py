"""Shared fixtures: a real local Kafka-compatible broker and the input cases."""

import pathlib
import uuid

import pytest

from localdev.broker import LocalBroker

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent

# Failure-shaped Vertex AI output files with their expected outcomes in README.md.
CASES_DIR = REPO_ROOT / "tests" / "cases"


@pytest.fixture(scope="session")
def broker():
    """One Tansu broker for the whole test session, on a free loopback port."""
    with LocalBroker() as local_broker:
        yield local_broker


@pytest.fixture
def topics(broker):
    """Return a function that creates uniquely named topics on the shared broker."""

    def create(*names: str, partitions: int = 1, config=None) -> list[str]:
        suffix = uuid.uuid4().hex[:8]
        unique = [f"{name}-{suffix}" for name in names]
        broker.create_topics(unique, partitions=partitions, config=config)
        return unique

    return create
