"""A fault-injecting TCP proxy on 127.0.0.1, for tests that put it between Kafka clients and a broker.

Each accepted connection is forwarded to `127.0.0.1:target_port` by two
threads, one per direction. The proxy can inject these faults:

* reset: close both sides of a connection abruptly (`SO_LINGER` 0, so the
  peers get a TCP RST and not an orderly FIN);
* stall: stop forwarding on a connection for some seconds while keeping
  it open, as a hung peer or a congested network does.

Faults come from a `FaultPlan`. Its random draws (byte budgets, waits,
which connection is hit, reset or stall) come from one `random.Random(seed)`.
Thread timing still decides which bytes are in flight when a fault hits, so
the seed fixes the plan but not the exact bytes hit. Every plan is bounded by
a number of faults and a deadline: once either is used up, the proxy forwards
cleanly. Every injected fault is appended to `FaultProxy.faults`, so a test
can check that faults really happened.

A Kafka client learns the broker's address from metadata and then connects to
it directly. To keep a client on the proxy, the broker must advertise the
proxy's port (`LocalBroker(advertised_port=proxy.port)`).
"""

import dataclasses
import logging
import random
import select
import socket
import struct
import threading
import time
from typing import Callable, Optional

_LOGGER = logging.getLogger(__name__)

_CHUNK_BYTES = 64 * 1024
# How often a pump thread wakes up to notice a stall or a stop, in seconds.
_WAKE_SECONDS = 0.05


@dataclasses.dataclass(frozen=True)
class FaultPlan:
    """Which faults to inject, and the bounds that end them.

    Attributes:
        seed: Seed of the plan's random draws.
        max_faults: No fault is injected after this many.
        duration_seconds: No fault is injected later than this many seconds
            after the plan was set.
        reset_after_bytes: `(low, high)`: each new connection is reset after it
            has forwarded a random number of bytes in this range, counting
            both directions. None disables byte-triggered resets.
        random_fault_interval: `(low, high)` seconds between random faults on
            a randomly chosen open connection; the first one hits when the
            plan is set. None disables them.
        stall_probability: Chance that a random fault is a stall instead of
            a reset.
        stall_seconds: `(low, high)` length of a stall in seconds.
    """

    seed: int = 0
    max_faults: int = 5
    duration_seconds: float = 30.0
    reset_after_bytes: Optional[tuple[int, int]] = None
    random_fault_interval: Optional[tuple[float, float]] = None
    stall_probability: float = 0.0
    stall_seconds: tuple[float, float] = (1.0, 3.0)


@dataclasses.dataclass(frozen=True)
class InjectedFault:
    """One fault the proxy injected.

    Attributes:
        kind: "reset" or "stall".
        connection: The connection's sequence number, from 1.
        forwarded_bytes: Bytes the connection had forwarded when it was hit.
        at_seconds: Seconds since the plan was set.
        stall_seconds: The stall's length; 0 for a reset.
    """

    kind: str
    connection: int
    forwarded_bytes: int
    at_seconds: float
    stall_seconds: float = 0.0


class _Connection:
    """A client connection and its upstream connection to the target."""

    def __init__(self, number: int, client: socket.socket, upstream: socket.socket):
        self.number = number
        self.client = client
        self.upstream = upstream
        self.forwarded_bytes = 0
        self.reset_budget: Optional[int] = None
        self.stalled_until = 0.0
        self.closed = threading.Event()
        self.lock = threading.Lock()

    def reset(self) -> None:
        """Close both sockets with SO_LINGER 0, so that each peer gets a TCP RST."""
        with self.lock:
            if self.closed.is_set():
                return
            self.closed.set()
            for sock in (self.client, self.upstream):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
                sock.close()

    def close(self) -> None:
        """Close both sockets in the ordinary way."""
        with self.lock:
            if self.closed.is_set():
                return
            self.closed.set()
            for sock in (self.client, self.upstream):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()


class FaultProxy:
    """Forward TCP connections from a loopback port to a loopback target, injecting faults.

    Args:
        target_port: The port on 127.0.0.1 to forward to.
        listen_port: The port on 127.0.0.1 to listen on; a free one when None.

    Usage:
        with FaultProxy(target_port=broker_port) as proxy:
            proxy.set_plan(FaultPlan(seed=7, reset_after_bytes=(10_000, 200_000)))
            ... clients connect to 127.0.0.1:proxy.port ...
            proxy.clear_plan()
    """

    def __init__(self, target_port: int, listen_port: Optional[int] = None):
        self.target_port = target_port
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", listen_port or 0))
        self.port = self._listener.getsockname()[1]
        self.faults: list[InjectedFault] = []
        self.total_forwarded_bytes = 0
        self._connections: dict[int, _Connection] = {}
        self._connection_count = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._plan: Optional[FaultPlan] = None
        self._plan_started = 0.0
        self._faults_before_plan = 0
        self._random = random.Random(0)
        self._plan_generation = 0
        self._threads: list[threading.Thread] = []
        self._byte_hooks: list[tuple[int, Callable[[], None]]] = []

    # Life cycle.

    def start(self) -> "FaultProxy":
        """Start accepting connections."""
        self._listener.listen(64)
        self._spawn(self._accept_loop, "proxy-accept")
        _LOGGER.info("Proxy listening on 127.0.0.1:%d, forwarding to 127.0.0.1:%d", self.port, self.target_port)
        return self

    def stop(self) -> None:
        """Stop accepting, close every connection and wait for the threads to end."""
        self._stopped.set()
        self._listener.close()
        with self._lock:
            connections = list(self._connections.values())
        for connection in connections:
            connection.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # Fault control.

    def set_plan(self, plan: FaultPlan) -> None:
        """Start injecting the faults of `plan`, in place of any earlier plan."""
        with self._lock:
            self._plan = plan
            self._plan_started = time.monotonic()
            self._faults_before_plan = len(self.faults)
            self._random = random.Random(plan.seed)
            self._plan_generation += 1
            generation = self._plan_generation
            for connection in self._connections.values():
                connection.reset_budget = self._draw_budget()
        if plan.random_fault_interval is not None:
            self._spawn(lambda: self._random_fault_loop(generation), "proxy-faults")

    def clear_plan(self) -> None:
        """Stop injecting faults. Stalls already running end at their set time."""
        with self._lock:
            self._plan = None
            self._plan_generation += 1
            for connection in self._connections.values():
                connection.reset_budget = None

    def call_after_bytes(self, threshold: int, callback: Callable[[], None]) -> None:
        """Call `callback` once, in a pump thread, when the proxy has forwarded `threshold` bytes in total.

        The pump thread runs the callback before it forwards the chunk that
        crosses the threshold, so a callback that pauses the target takes
        effect at that byte count.
        """
        with self._lock:
            self._byte_hooks.append((threshold, callback))

    def reset_all(self) -> int:
        """Reset every open connection now and return how many were reset."""
        with self._lock:
            connections = list(self._connections.values())
        for connection in connections:
            self._inject_reset(connection)
        return len(connections)

    def stall_all(self, seconds: float) -> None:
        """Stop forwarding on every open connection for `seconds`."""
        with self._lock:
            connections = list(self._connections.values())
        for connection in connections:
            self._inject_stall(connection, seconds)

    @property
    def connection_count(self) -> int:
        """Connections accepted since the proxy started."""
        return self._connection_count

    # Internals.

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _plan_active(self) -> bool:
        plan = self._plan
        if plan is None:
            return False
        if len(self.faults) - self._faults_before_plan >= plan.max_faults:
            return False
        return time.monotonic() - self._plan_started < plan.duration_seconds

    def _draw_budget(self) -> Optional[int]:
        # Called with self._lock held.
        if self._plan is None or self._plan.reset_after_bytes is None:
            return None
        low, high = self._plan.reset_after_bytes
        return self._random.randint(low, high)

    def _record(self, kind: str, connection: _Connection, stall_seconds: float = 0.0) -> bool:
        """Record a fault and return True, or return False when the plan's bounds are used up."""
        with self._lock:
            if self._plan is not None and not self._plan_active():
                return False
            self.faults.append(InjectedFault(kind, connection.number, connection.forwarded_bytes,
                                             round(time.monotonic() - self._plan_started, 3), stall_seconds))
        _LOGGER.info("Proxy fault: %s on connection %d after %d bytes", kind, connection.number,
                     connection.forwarded_bytes)
        return True

    def _inject_reset(self, connection: _Connection) -> None:
        if connection.closed.is_set() or not self._record("reset", connection):
            return
        connection.reset()

    def _inject_stall(self, connection: _Connection, seconds: float) -> None:
        if connection.closed.is_set() or not self._record("stall", connection, seconds):
            return
        connection.stalled_until = time.monotonic() + seconds

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                # A blocking accept() would not notice that stop() closed the listener.
                readable, _, _ = select.select([self._listener], [], [], _WAKE_SECONDS)
                if not readable:
                    continue
                client, _ = self._listener.accept()
            except (OSError, ValueError):
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError as error:
                _LOGGER.warning("Proxy cannot reach 127.0.0.1:%d: %s", self.target_port, error)
                client.close()
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._connection_count += 1
                connection = _Connection(self._connection_count, client, upstream)
                connection.reset_budget = self._draw_budget() if self._plan_active() else None
                self._connections[connection.number] = connection
            self._spawn(lambda c=connection: self._pump(c, c.client, c.upstream), f"proxy-up-{connection.number}")
            self._spawn(lambda c=connection: self._pump(c, c.upstream, c.client), f"proxy-down-{connection.number}")

    def _pump(self, connection: _Connection, source: socket.socket, destination: socket.socket) -> None:
        try:
            while not connection.closed.is_set() and not self._stopped.is_set():
                if time.monotonic() < connection.stalled_until:
                    time.sleep(_WAKE_SECONDS)
                    continue
                try:
                    readable, _, _ = select.select([source], [], [], _WAKE_SECONDS)
                except (OSError, ValueError):
                    return
                if not readable:
                    continue
                chunk = source.recv(_CHUNK_BYTES)
                if not chunk:
                    connection.close()
                    return
                self._run_byte_hooks(len(chunk))
                while time.monotonic() < connection.stalled_until and not connection.closed.is_set():
                    time.sleep(_WAKE_SECONDS)
                destination.sendall(chunk)
                with self._lock:
                    connection.forwarded_bytes += len(chunk)
                budget = connection.reset_budget
                if budget is not None and connection.forwarded_bytes >= budget and self._plan_active():
                    self._inject_reset(connection)
                    return
        except OSError:
            connection.close()
        finally:
            with self._lock:
                if connection.closed.is_set():
                    self._connections.pop(connection.number, None)

    def _run_byte_hooks(self, size: int) -> None:
        due = []
        with self._lock:
            self.total_forwarded_bytes += size
            for hook in list(self._byte_hooks):
                if self.total_forwarded_bytes >= hook[0]:
                    self._byte_hooks.remove(hook)
                    due.append(hook[1])
        for callback in due:
            callback()

    def _random_fault_loop(self, generation: int) -> None:
        # The first fault hits when the plan is set; the random waits come after each fault.
        while not self._stopped.is_set():
            with self._lock:
                if generation != self._plan_generation or not self._plan_active():
                    return
                plan = self._plan
                stall = self._random.random() < plan.stall_probability
                stall_seconds = self._random.uniform(*plan.stall_seconds)
                pick = self._random.random()
                wait = self._random.uniform(*plan.random_fault_interval)
                open_connections = sorted(self._connections.values(), key=lambda item: item.number)
            if open_connections:
                connection = open_connections[int(pick * len(open_connections))]
                if stall:
                    self._inject_stall(connection, stall_seconds)
                else:
                    self._inject_reset(connection)
            if self._stopped.wait(wait):
                return
