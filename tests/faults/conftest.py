"""Fixtures of the fault tests: a broker behind a fault-injecting proxy, and generated input."""

import dataclasses
import uuid

import pytest

from localdev.broker import LocalBroker
from localdev.ports import free_port
from tests.faults.jobs import write_predictions
from tests.faults.tcp_proxy import FaultProxy

# Lines of the generated result file that most fault tests publish: about 14 MB.
PREDICTION_LINES = 5000


@dataclasses.dataclass
class ProxiedBroker:
    """A Tansu broker that clients reach only through a `FaultProxy`.

    Attributes:
        broker: The broker; it advertises the proxy's port in metadata.
        proxy: The proxy in front of it.
    """

    broker: LocalBroker
    proxy: FaultProxy

    @property
    def bootstrap_servers(self) -> str:
        return self.broker.bootstrap_servers

    def create_topics(self, *names: str, partitions: int = 1) -> list[str]:
        """Create uniquely named topics while no fault plan is active; return their names."""
        suffix = uuid.uuid4().hex[:8]
        unique = [f"{name}-{suffix}" for name in names]
        self.broker.create_topics(unique, partitions=partitions)
        return unique


@pytest.fixture(scope="module")
def proxied_broker():
    """A broker of this module's own behind a proxy, so tests may pause it or break its connections.

    The session's shared broker is never paused or proxied.
    """
    broker_port = free_port()
    with FaultProxy(target_port=broker_port) as proxy:
        broker = LocalBroker(port=broker_port, advertised_port=proxy.port)
        with broker:
            yield ProxiedBroker(broker, proxy)
            proxy.clear_plan()
            broker.resume()


@pytest.fixture(autouse=True)
def _no_faults_left(request):
    """End every fault plan and pause a test started, even when it fails."""
    yield
    if "proxied_broker" in request.fixturenames:
        proxied = request.getfixturevalue("proxied_broker")
        proxied.proxy.clear_plan()
        proxied.broker.resume()


@pytest.fixture(scope="module")
def predictions(tmp_path_factory):
    """A generated result file of `PREDICTION_LINES` lines, shared by a module's tests."""
    return write_predictions(tmp_path_factory.mktemp("input"), PREDICTION_LINES)
