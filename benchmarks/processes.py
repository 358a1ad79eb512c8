"""Running a job in its own process while sampling the memory of its process tree.

`run_measured` starts a command, and a thread reads the resident set size
(RSS) of the process and of all its descendants every `interval_seconds`
(100 ms by default) with psutil. Each sample is the sum over the tree at that
moment, and the peak is the largest sample. A peak shorter than the interval
can be missed, so the reported peak is a lower bound. RSS counts shared pages
once per process, so a tree of forked workers can report more than the
memory it really uses. The publish job on the local runner is one process,
where this does not apply.
"""

import dataclasses
import logging
import subprocess
import threading
import time
from typing import Callable, Optional

import psutil

_LOGGER = logging.getLogger(__name__)


@dataclasses.dataclass
class MeasuredRun:
    """The outcome of one measured process.

    Attributes:
        command: The command line.
        returncode: The exit code.
        started_at: Wall-clock time (`time.time()`) just before the process was started.
        wall_seconds: Seconds from just before the start to the exit.
        peak_rss_bytes: The largest sum of RSS over the process tree.
        rss_samples: `(seconds since start, RSS sum in bytes)` for every sample.
        stdout: The process's standard output.
        stderr_path: File that contains the process's standard error.
    """

    command: list[str]
    returncode: int
    started_at: float
    wall_seconds: float
    peak_rss_bytes: int
    rss_samples: list[tuple[float, int]]
    stdout: str
    stderr_path: str


def tree_rss_bytes(process: psutil.Process) -> int:
    """Return the RSS of a process plus all its descendants; processes that exit meanwhile count as 0."""
    total = 0
    try:
        members = [process] + process.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    for member in members:
        try:
            total += member.memory_info().rss
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
    return total


def kill_tree(pid: int) -> None:
    """Kill a process and every descendant of it, by process id."""
    try:
        root = psutil.Process(pid)
        members = root.children(recursive=True) + [root]
    except psutil.NoSuchProcess:
        return
    for member in members:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            continue


class _RssSampler(threading.Thread):
    def __init__(self, pid: int, interval_seconds: float, started: float):
        super().__init__(name=f"rss-sampler-{pid}", daemon=True)
        self._process = psutil.Process(pid)
        self._interval = interval_seconds
        self._start_time = started
        self._stop_event = threading.Event()
        self.samples: list[tuple[float, int]] = []

    def run(self):
        while not self._stop_event.is_set():
            rss = tree_rss_bytes(self._process)
            if rss:
                self.samples.append((time.monotonic() - self._start_time, rss))
            self._stop_event.wait(self._interval)

    def stop(self):
        self._stop_event.set()
        self.join()


def run_measured(command: list[str], *, cwd: str, stderr_path: str, timeout_seconds: float,
                 interval_seconds: float = 0.1, env: Optional[dict] = None,
                 on_start: Optional[Callable[[int], None]] = None) -> MeasuredRun:
    """Run `command` to its end, timing it and sampling the RSS of its process tree.

    `on_start` receives the process id as soon as the process has started,
    for callers that run this in a thread and may need to stop the process.

    Raises:
        subprocess.TimeoutExpired: If the process runs longer than
            `timeout_seconds`; it is killed first.
    """
    _LOGGER.info("Running: %s", " ".join(command))
    with open(stderr_path, "wb") as stderr:
        started_at = time.time()
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=stderr)
        sampler = None
        try:
            sampler = _RssSampler(process.pid, interval_seconds, started)
            sampler.start()
            if on_start is not None:
                on_start(process.pid)
            stdout, _ = process.communicate(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            _LOGGER.error("Killing pid %d after %.0f s: %s", process.pid, timeout_seconds, " ".join(command))
            raise
        finally:
            wall_seconds = time.monotonic() - started
            if sampler is not None:
                sampler.stop()
            if process.poll() is None:
                # Also reached on Ctrl-C or any error here: never leave the job running.
                kill_tree(process.pid)
                process.communicate()

    peak = max((rss for _, rss in sampler.samples), default=0)
    return MeasuredRun(command=command, returncode=process.returncode, started_at=started_at,
                       wall_seconds=wall_seconds, peak_rss_bytes=peak, rss_samples=sampler.samples,
                       stdout=stdout.decode("utf-8", "replace"), stderr_path=stderr_path)
