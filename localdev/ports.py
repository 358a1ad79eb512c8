"""Helpers for servers on loopback ports."""

import socket
import time


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout_seconds: float, process=None) -> None:
    """Wait until something accepts connections on 127.0.0.1:`port`.

    Raises:
        RuntimeError: If `process` exits first.
        TimeoutError: If nothing listens within the timeout.
    """
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"The server process exited with code {process.returncode} before listening.")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"Nothing listens on 127.0.0.1:{port} after {timeout_seconds:.0f} s.")
