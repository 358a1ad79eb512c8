"""The fault-injecting proxy itself, against a loopback echo server."""

import socket
import threading
import time

import pytest

from tests.faults.tcp_proxy import FaultPlan, FaultProxy


@pytest.fixture
def echo_port():
    """A loopback server that echoes every byte back, one thread per connection."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stopped = threading.Event()

    def echo(connection):
        with connection:
            while not stopped.is_set():
                try:
                    data = connection.recv(65536)
                    if not data:
                        return
                    connection.sendall(data)
                except OSError:
                    return

    def accept():
        while not stopped.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    stopped.set()
    listener.close()


def exchange(port: int, payload: bytes, timeout: float = 5.0) -> bytes:
    """Send `payload` through a new connection and return what comes back before the peer closes or the timeout."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as client:
        client.sendall(payload)
        while len(received) < len(payload):
            chunk = client.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def test_proxy_forwards_unchanged(echo_port):
    """With no fault plan, checks that bytes pass both ways unchanged."""
    payload = bytes(range(256)) * 1000

    with FaultProxy(target_port=echo_port) as proxy:
        received = exchange(proxy.port, payload)

    assert received == payload
    assert proxy.faults == []


def test_proxy_reset_after_bytes(echo_port):
    """Injects a reset after 10-20 kB; checks that the client sees a reset and the fault is recorded."""
    with FaultProxy(target_port=echo_port) as proxy:
        proxy.set_plan(FaultPlan(seed=1, max_faults=1, reset_after_bytes=(10_000, 20_000)))
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            exchange(proxy.port, b"x" * 200_000)

    assert len(proxy.faults) == 1
    assert proxy.faults[0].kind == "reset"
    assert 10_000 <= proxy.faults[0].forwarded_bytes < 20_000 + 65_536


def test_proxy_stops_after_max_faults(echo_port):
    """Allows one reset; checks that the second connection is forwarded cleanly."""
    payload = b"y" * 100_000

    with FaultProxy(target_port=echo_port) as proxy:
        proxy.set_plan(FaultPlan(seed=2, max_faults=1, reset_after_bytes=(1_000, 2_000)))
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            exchange(proxy.port, payload)
        received = exchange(proxy.port, payload)

    assert received == payload
    assert len(proxy.faults) == 1


def test_proxy_stall_delays_bytes(echo_port):
    """Stalls every open connection for 1 s; checks that the reply arrives late but complete."""
    with FaultProxy(target_port=echo_port) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as client:
            client.sendall(b"warm-up")
            assert client.recv(100) == b"warm-up"
            proxy.stall_all(1.0)
            started = time.monotonic()
            client.sendall(b"after stall")
            reply = client.recv(100)
            waited = time.monotonic() - started

    assert reply == b"after stall"
    assert waited >= 0.9
    assert [fault.kind for fault in proxy.faults] == ["stall"]


def test_proxy_byte_hook_runs_once(echo_port):
    """Registers a callback at 50 kB; checks that it runs once, before the total passes 50 kB plus one chunk."""
    calls = []

    with FaultProxy(target_port=echo_port) as proxy:
        proxy.call_after_bytes(50_000, lambda: calls.append(proxy.total_forwarded_bytes))
        exchange(proxy.port, b"z" * 200_000)

    assert len(calls) == 1
    assert 50_000 <= calls[0] < 50_000 + 65_536
