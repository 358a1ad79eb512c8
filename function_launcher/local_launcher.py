"""Running publish jobs on the local DirectRunner, one child process per job name.

The launcher claims a job name by creating a marker file with
`O_CREAT | O_EXCL` in the state folder. The operating system lets exactly one
creator succeed, so concurrent or repeated deliveries of the same event start
one job, even across several function processes that share the folder. The
claim is permanent: to run a generation again, delete its marker.

The job runs as `python -m pipelines.publish_results ...` in a child process
with the project root as working folder, so a crash of the job cannot take
the function down. The function does not wait for the job: `launch` returns
once the process has started (a few milliseconds), and a thread of the
function process waits for the child and records its exit code. Use
`wait_for_job` to wait for a job from the same machine.

Files in the state folder, per job name:

| file | written | content |
| --- | --- | --- |
| `<job>.claim.json` | when the job is claimed | object, generation, claim time, process id |
| `<job>.log` | while the job runs | the job's standard output and error |
| `<job>.summary.json` | when the job ends normally | the job's accounting (`--summary_json`) |
| `<job>.exit` | when the job ends | `{"returncode": N, ...}`; missing if the function process ended first |

This launcher needs the repository (the `pipelines` and `transforms`
packages), so it is for local runs and tests, never for the deployed function.
"""

import dataclasses
import datetime
import json
import logging
import os
import pathlib
import subprocess
import sys
import threading
import time
from typing import Optional, Sequence

from .config import ConfigError, LauncherConfig
from .launch import LaunchRequest, LaunchResult, LaunchStatus, TransientLaunchError, publish_parameters

_LOGGER = logging.getLogger(__name__)

PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent
PUBLISH_MODULE = "pipelines.publish_results"


@dataclasses.dataclass(frozen=True)
class JobFiles:
    """Paths of one local job's files in the state folder."""

    marker: pathlib.Path
    log: pathlib.Path
    summary: pathlib.Path
    exit_status: pathlib.Path

    @classmethod
    def of(cls, state_dir: os.PathLike, job_name: str) -> "JobFiles":
        """Return the file paths of job `job_name` in `state_dir`."""
        folder = pathlib.Path(state_dir)
        return cls(marker=folder / f"{job_name}.claim.json", log=folder / f"{job_name}.log",
                   summary=folder / f"{job_name}.summary.json", exit_status=folder / f"{job_name}.exit")


class LocalLauncher:
    """Starts the publish job on the DirectRunner at most once per job name and state folder.

    Args:
        config: The launcher configuration; `local_state_dir` is created if missing.
        job_command: The command that runs the publish job, before its options;
            `python -m pipelines.publish_results` with this interpreter when None.
        project_root: Working folder of the job; the repository root when None.

    Raises:
        ConfigError: If the default job command is used and the project root
            has no `pipelines/publish_results.py`, as in a deployed function.
    """

    def __init__(self, config: LauncherConfig, *, job_command: Optional[Sequence[str]] = None,
                 project_root: Optional[os.PathLike] = None):
        self._config = config
        self._state_dir = pathlib.Path(config.local_state_dir)
        self._project_root = pathlib.Path(project_root or PROJECT_ROOT)
        if job_command is None:
            module_path = self._project_root / (PUBLISH_MODULE.replace(".", "/") + ".py")
            if not module_path.is_file():
                raise ConfigError(f"LAUNCHER=local needs the repository, but {module_path} does not exist; "
                                  "use LAUNCHER=dataflow in a deployed function.")
            job_command = [sys.executable, "-m", PUBLISH_MODULE]
        self._job_command = list(job_command)
        self._state_dir.mkdir(parents=True, exist_ok=True)

    @property
    def state_dir(self) -> pathlib.Path:
        """The folder that contains the job markers, logs and summaries."""
        return self._state_dir

    def launch(self, request: LaunchRequest) -> LaunchResult:
        """Start the job for `request` in a child process unless its name was claimed before.

        Returns:
            STARTED with the child's process id, or DUPLICATE when a marker
            for the job name exists.

        Raises:
            TransientLaunchError: If the marker cannot be written or the
                process cannot start; the claim is then released, so a
                redelivered event tries again.
        """
        files = JobFiles.of(self._state_dir, request.job_name)
        try:
            descriptor = os.open(files.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            _LOGGER.info("Local job %s for %s#%s was claimed before (%s); duplicate event",
                         request.job_name, request.input_uri, request.generation, files.marker)
            return LaunchResult(LaunchStatus.DUPLICATE, request.job_name, None, f"marker {files.marker} exists")
        except OSError as error:
            raise TransientLaunchError(f"Could not create the job marker {files.marker}: {error}") from error

        try:
            process = self._start(request, files)
        except OSError as error:
            os.close(descriptor)
            files.marker.unlink(missing_ok=True)
            _LOGGER.warning("Could not start local job %s for %s#%s; released the claim: %s",
                            request.job_name, request.input_uri, request.generation, error)
            raise TransientLaunchError(f"Could not start local job {request.job_name}: {error}") from error

        with os.fdopen(descriptor, "w", encoding="utf-8") as marker:
            json.dump({"job_name": request.job_name, "input": request.input_uri, "generation": request.generation,
                       "claimed_at": _now(), "pid": process.pid}, marker, indent=2)
            marker.write("\n")

        threading.Thread(target=_record_exit, args=(process, request.job_name, files),
                         name=f"wait-{request.job_name}", daemon=True).start()
        _LOGGER.info("Started local job %s (pid %d) for %s#%s; log %s", request.job_name, process.pid,
                     request.input_uri, request.generation, files.log)
        return LaunchResult(LaunchStatus.STARTED, request.job_name, str(process.pid))

    def job_arguments(self, request: LaunchRequest) -> list[str]:
        """Return the command line that runs the job for `request`."""
        arguments = list(self._job_command)
        for name, value in publish_parameters(self._config, request).items():
            arguments += [f"--{name}", value]
        arguments += ["--summary_json", str(JobFiles.of(self._state_dir, request.job_name).summary)]
        return arguments

    def _start(self, request: LaunchRequest, files: JobFiles) -> subprocess.Popen:
        with open(files.log, "ab") as log:
            # A session of its own: a Ctrl-C meant for the function's terminal
            # does not interrupt a job half-way through.
            return subprocess.Popen(self.job_arguments(request), cwd=self._project_root, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _record_exit(process: subprocess.Popen, job_name: str, files: JobFiles) -> None:
    """Wait for a job's process and write its exit status file atomically."""
    returncode = process.wait()
    status = {"job_name": job_name, "returncode": returncode, "finished_at": _now()}
    partial = files.exit_status.with_suffix(".exit.partial")
    partial.write_text(json.dumps(status) + "\n", encoding="utf-8")
    os.replace(partial, files.exit_status)
    if returncode == 0:
        _LOGGER.info("Local job %s (pid %d) finished; summary %s", job_name, process.pid, files.summary)
    else:
        _LOGGER.error("Local job %s (pid %d) failed with exit code %d; see %s", job_name, process.pid,
                      returncode, files.log)


def wait_for_job(state_dir: os.PathLike, job_name: str, timeout_seconds: float) -> int:
    """Wait until a local job has ended and return its exit code.

    Args:
        state_dir: The launcher's state folder.
        job_name: The job name.
        timeout_seconds: How long to wait.

    Raises:
        TimeoutError: If no exit status appears in time, also when the function
            process that started the job ended before the job did.
    """
    files = JobFiles.of(state_dir, job_name)
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if files.exit_status.exists():
            return int(json.loads(files.exit_status.read_text(encoding="utf-8"))["returncode"])
        time.sleep(0.1)
    raise TimeoutError(f"Local job {job_name} did not end within {timeout_seconds:.0f} s; see {files.log}.")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()
