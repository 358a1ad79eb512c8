"""A stand-in for the Dataflow REST API on a loopback port, for launcher tests.

It serves the two calls the launcher makes, and responds as the real API
does in the ways the tests need:

* `POST /v1b3/projects/P/locations/L/flexTemplates:launch` creates a job,
  or returns 409 ALREADY_EXISTS while an active job of that name exists;
* `GET /v1b3/projects/P/locations/L/jobs?name=N` lists the jobs named N.

Tests can queue scripted error responses, hide jobs from the listing (as a
listing that lags a launch would), and slow the answers down. Every request
is recorded with its path, query and JSON body.
"""

import dataclasses
import http.server
import json
import threading
import time
import urllib.parse
from typing import Optional

_LAUNCH_SUFFIX = "/flexTemplates:launch"
_ENDED_STATES = ("JOB_STATE_DONE", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_DRAINED")


@dataclasses.dataclass
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    query: dict
    body: Optional[dict]
    status: int = 0


@dataclasses.dataclass
class ScriptedAnswer:
    """An error response to send instead of the normal one."""

    status: int
    error_status: str
    message: str = "scripted error"


class FakeDataflow:
    """The fake API server; use as a context manager.

    Attributes:
        requests: Every request received, in order.
        jobs: Jobs created by launches or `add_job`, in order.
        listing_visible: When False, listings return no jobs, as if the
            listing lagged behind the launches.
        filter_by_name: When False, listings ignore the `name` query and
            return every job, as an API without that filter would.
        delays: Seconds to sleep before responding, by call: "launch" or "list".
    """

    def __init__(self):
        self.requests: list[RecordedRequest] = []
        self.jobs: list[dict] = []
        self.listing_visible = True
        self.filter_by_name = True
        self.delays: dict[str, float] = {}
        self._launch_answers: list[ScriptedAnswer] = []
        self._list_answers: list[ScriptedAnswer] = []
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-dataflow", daemon=True)

    @property
    def endpoint(self) -> str:
        """`http://127.0.0.1:PORT` of the server."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail_next_launch(self, status: int, error_status: str, message: str = "scripted error") -> None:
        """Fail the next launch with an error response."""
        self._launch_answers.append(ScriptedAnswer(status, error_status, message))

    def fail_next_list(self, status: int, error_status: str, message: str = "scripted error") -> None:
        """Fail the next job listing with an error response."""
        self._list_answers.append(ScriptedAnswer(status, error_status, message))

    def add_job(self, name: str, state: str) -> None:
        """Add an existing job, as if it had been launched earlier."""
        self.jobs.append({"id": f"existing-{len(self.jobs) + 1}", "name": name, "currentState": state})

    def launches(self) -> list[RecordedRequest]:
        """Return the launch requests received."""
        return [request for request in self.requests if request.path.endswith(_LAUNCH_SUFFIX)]

    def __enter__(self) -> "FakeDataflow":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _answer(self, method: str, raw_path: str, body: Optional[dict]) -> tuple[int, dict]:
        parsed = urllib.parse.urlsplit(raw_path)
        query = {key: values[0] for key, values in urllib.parse.parse_qs(parsed.query).items()}
        recorded = RecordedRequest(method, parsed.path, query, body)
        with self._lock:
            self.requests.append(recorded)
            if method == "POST" and parsed.path.endswith(_LAUNCH_SUFFIX):
                status, answer = self._launch(body)
            elif method == "GET" and parsed.path.endswith("/jobs"):
                status, answer = self._list(query.get("name"))
            else:
                status, answer = 404, _error(404, "NOT_FOUND", f"No such method: {method} {parsed.path}")
            recorded.status = status
        return status, answer

    def _launch(self, body: dict) -> tuple[int, dict]:
        if self._launch_answers:
            scripted = self._launch_answers.pop(0)
            return scripted.status, _error(scripted.status, scripted.error_status, scripted.message)
        name = body["launchParameter"]["jobName"]
        # Dataflow keeps job names unique among active jobs only.
        if any(job["name"] == name and job["currentState"] not in _ENDED_STATES for job in self.jobs):
            return 409, _error(409, "ALREADY_EXISTS", f"There is already an active job named {name}.")
        job = {"id": f"2026-11-30_00_00_00-{len(self.jobs) + 1}", "name": name,
               "currentState": "JOB_STATE_QUEUED"}
        self.jobs.append(job)
        return 200, {"job": job}

    def _list(self, name: Optional[str]) -> tuple[int, dict]:
        if self._list_answers:
            scripted = self._list_answers.pop(0)
            return scripted.status, _error(scripted.status, scripted.error_status, scripted.message)
        if not self.listing_visible:
            return 200, {}
        if not self.filter_by_name or name is None:
            return 200, {"jobs": list(self.jobs)}
        return 200, {"jobs": [job for job in self.jobs if job["name"] == name]}

    def _handler_class(self):
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                call = "launch" if self.path.split("?")[0].endswith(_LAUNCH_SUFFIX) else "list"
                time.sleep(fake.delays.get(call, 0.0))
                status, answer = fake._answer(self.command, self.path, json.loads(raw) if raw else None)
                payload = json.dumps(answer).encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # The client timed out and closed the connection.

            do_GET = _serve
            do_POST = _serve

            def log_message(self, format, *args):
                pass

        return Handler


def _error(code: int, status: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "status": status}}
